"""``logs NAME``: the journal of an installed container's unit, shown by journalctl."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from syscontainers import journal, process
from syscontainers.deploy.layout import ContainerDir, validate_name
from syscontainers.errors import UsageError
from syscontainers.operations.containers import service_info
from syscontainers.paths import Paths
from syscontainers.record import record


@record
class LogsRequest:
    """Which container, and how much of its journal."""

    name: str
    lines: int | None = None  # the last LINES entries (None: all)
    since: str | None = None  # a journalctl time ("2026-12-01 10:00", "-1h", "today")
    follow: bool = False  # keep printing new entries until interrupted


def show_logs(
    paths: Paths,
    req: LogsRequest,
    execute: Callable[[Sequence[str]], int] = process.exec_interactive,
) -> int:
    """Show the journal REQ asks for on our terminal; journalctl's exit status."""
    if req.lines is not None and req.lines < 0:
        raise UsageError(f"--lines {req.lines} is negative", hint="give a count of entries, 0 up")
    cd = ContainerDir(paths.deployments, validate_name(req.name))
    service_info(cd, "and so no journal")
    argv = journal.argv(cd.unit_name, lines=req.lines, since=req.since, follow=req.follow)
    return execute(argv)
