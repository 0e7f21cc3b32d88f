"""``logs NAME``: the journalctl argv it plans, and the containers it refuses."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from syscontainers import journal
from syscontainers.errors import ContainerNotFoundError, UsageError
from syscontainers.operations.install import InstallRequest, install
from syscontainers.operations.logs import LogsRequest, show_logs
from tests.unit.lifecycle_fixtures import Env

BASE = ["journalctl", "--unit", "web.service", "--no-pager"]


@pytest.mark.parametrize(
    ("req", "tail"),
    [
        (LogsRequest("web"), []),
        (LogsRequest("web", lines=20), ["--lines", "20"]),
        (LogsRequest("web", lines=0, follow=True), ["--lines", "0", "--follow"]),
        (LogsRequest("web", since="-1h"), ["--since", "-1h"]),
        (LogsRequest("web", 5, "today", True), ["--lines", "5", "--since", "today", "--follow"]),
    ],
)
def test_the_journalctl_argv(
    env: Env, atomic_image: str, req: LogsRequest, tail: list[str]
) -> None:
    install(env.host, InstallRequest(atomic_image, name="web"))
    ran: list[Sequence[str]] = []

    def execute(argv: Sequence[str]) -> int:
        ran.append(argv)
        return 3

    assert show_logs(env.paths, req, execute) == 3
    assert ran == [BASE + tail]


def test_the_tail_of_a_failed_start_reads_bare_messages() -> None:
    assert journal.argv("a.service", lines=10, quiet=True, bare=True) == [
        "journalctl",
        "--unit",
        "a.service",
        "--no-pager",
        "--lines",
        "10",
        "--quiet",
        "--output",
        "cat",
    ]


def test_unknown_bad_and_negative_are_refused(env: Env) -> None:
    never = lambda argv: pytest.fail("journalctl ran")  # noqa: E731
    with pytest.raises(ContainerNotFoundError, match="no container named ghost is installed"):
        show_logs(env.paths, LogsRequest("ghost"), never)
    with pytest.raises(UsageError, match="invalid container name"):
        show_logs(env.paths, LogsRequest("../etc"), never)
    with pytest.raises(UsageError, match="--lines -1 is negative"):
        show_logs(env.paths, LogsRequest("web", lines=-1), never)
