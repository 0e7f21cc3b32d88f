"""Tests for reference normalisation (syscontainers.reference.normalize/qualify), as the containers
tools do it: docker.io/library/NAME and the default tag."""

from __future__ import annotations

import pytest

from syscontainers.errors import ReferenceParseError
from syscontainers.reference import is_short_name, normalize, parse, qualify

DIG = "sha256:" + "ab" * 32

NORMALIZED = [
    ("docker.io/busybox", "docker.io/library/busybox:latest"),
    ("docker.io/library/busybox:1.36", "docker.io/library/busybox:1.36"),
    ("index.docker.io/busybox", "docker.io/library/busybox:latest"),
    ("registry-1.docker.io/team/app:v1", "docker.io/team/app:v1"),
    ("docker.io/team/app", "docker.io/team/app:latest"),
    ("quay.io/app", "quay.io/app:latest"),  # only Docker Hub gets library/
    ("127.0.0.1:5000/a/b:2", "127.0.0.1:5000/a/b:2"),
    ("localhost/app", "localhost/app:latest"),
    (f"quay.io/app@{DIG}", f"quay.io/app@{DIG}"),  # a digest needs no tag
    (f"docker.io/app:1@{DIG}", f"docker.io/library/app:1@{DIG}"),
]


@pytest.mark.parametrize(("text", "expected"), NORMALIZED)
def test_normalize(text: str, expected: str) -> None:
    assert str(normalize(parse(text))) == expected


@pytest.mark.parametrize("text", ["busybox", "library/busybox:1", "team/app"])
def test_short_names_cannot_be_normalized(text: str) -> None:
    ref = parse(text)
    assert is_short_name(ref)
    with pytest.raises(ReferenceParseError, match="names no registry") as err:
        normalize(ref)
    assert err.value.hint and "docker.io/library/" in err.value.hint


def test_parse_is_unchanged_for_short_names() -> None:
    assert parse("busybox").domain == "" and parse("busybox").path == "busybox"
    assert not is_short_name(parse("docker.io/busybox"))


@pytest.mark.parametrize(
    ("short", "name", "expected"),
    [
        ("busybox", "docker.io/library/busybox", "docker.io/library/busybox:latest"),
        ("busybox:1", "docker.io/busybox", "docker.io/library/busybox:1"),
        (f"app@{DIG}", "quay.io/team/app", f"quay.io/team/app@{DIG}"),
    ],
)
def test_qualify_keeps_tag_and_digest(short: str, name: str, expected: str) -> None:
    assert str(qualify(parse(short), name)) == expected
