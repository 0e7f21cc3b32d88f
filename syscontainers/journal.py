"""A unit's journal through journalctl: its last lines for the errors of a failed start, and
the argv that ``logs`` runs."""

from __future__ import annotations

from syscontainers import process
from syscontainers.errors import CommandError

DEFAULT_LINES = 10


def argv(
    unit: str,
    *,
    lines: int | None = None,
    since: str | None = None,
    follow: bool = False,
    quiet: bool = False,
    bare: bool = False,
) -> list[str]:
    """journalctl's argv for UNIT's journal: the last LINES entries, those SINCE a time,
    then FOLLOW new ones; QUIET drops its notes, BARE prints messages alone."""
    args = ["journalctl", "--unit", unit, "--no-pager"]
    if lines is not None:
        args += ["--lines", str(lines)]
    if since:
        args += ["--since", since]
    if follow:
        args.append("--follow")
    if quiet:
        args.append("--quiet")
    if bare:
        args += ["--output", "cat"]
    return args


def tail(unit: str, lines: int = DEFAULT_LINES) -> tuple[str, ...]:
    """The last LINES messages of UNIT's journal (none if journalctl cannot be run)."""
    try:
        done = process.run(argv(unit, lines=lines, quiet=True, bare=True), check=False, timeout=20)
    except CommandError:
        return ()
    if done.returncode != 0:
        return ()
    return tuple(line for line in done.stdout.splitlines() if line.strip())[-lines:]
