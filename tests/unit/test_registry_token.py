"""Tests for syscontainers.registry.token: WWW-Authenticate parsing."""

from __future__ import annotations

import pytest

from syscontainers.registry.token import Challenge, parse_challenges


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
            'scope="repository:library/busybox:pull"',
            [
                Challenge(
                    "bearer",
                    (
                        ("realm", "https://auth.docker.io/token"),
                        ("service", "registry.docker.io"),
                        ("scope", "repository:library/busybox:pull"),
                    ),
                )
            ],
        ),
        ('Basic realm="test-realm"', [Challenge("basic", (("realm", "test-realm"),))]),
        (
            'Basic realm="a, b", Bearer realm="https://x/t", error="insufficient_scope"',
            [
                Challenge("basic", (("realm", "a, b"),)),
                Challenge("bearer", (("realm", "https://x/t"), ("error", "insufficient_scope"))),
            ],
        ),
        (
            "Bearer realm=https://x/token,service=reg",
            [Challenge("bearer", (("realm", "https://x/token"), ("service", "reg")))],
        ),
        ('Bearer realm="say \\"hi\\""', [Challenge("bearer", (("realm", 'say "hi"'),))]),
        ("", []),
    ],
)
def test_parse_challenges(header: str, expected: list[Challenge]) -> None:
    assert parse_challenges(header) == expected


def test_param_lookup() -> None:
    (challenge,) = parse_challenges('Bearer Realm="https://r", Service="s"')
    assert (challenge.param("realm"), challenge.param("service"), challenge.param("x")) == (
        "https://r",
        "s",
        "",
    )
