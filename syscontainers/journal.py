"""A unit's last journal lines, read with journalctl, for the errors of a failed start."""

from __future__ import annotations

from syscontainers import process
from syscontainers.errors import CommandError

DEFAULT_LINES = 10


def tail(unit: str, lines: int = DEFAULT_LINES) -> tuple[str, ...]:
    """The last LINES messages of UNIT's journal (none if journalctl cannot be run)."""
    try:
        done = process.run(["journalctl", "--unit", unit, "--lines", str(lines), "--no-pager",
                            "--quiet", "--output", "cat"], check=False, timeout=20)
    except CommandError:
        return ()
    if done.returncode != 0:
        return ()
    return tuple(line for line in done.stdout.splitlines() if line.strip())[-lines:]
