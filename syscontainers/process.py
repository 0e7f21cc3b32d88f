"""The one place that runs external commands: argv in, a result or a CommandError out.

subprocess (with threading, selectors and signal: 2-3 ms) is imported by the function that
runs a command: most verbs import this module and run nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from syscontainers.errors import CommandError
from syscontainers.record import record


@record
class Result:
    """What a finished command returned."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    input_text: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    timeout: float | None = None,
    hint: str | None = None,
) -> Result:
    """Run ARGV to completion and capture its output; raise CommandError if it fails."""
    import subprocess

    try:
        proc = subprocess.run(
            list(argv),
            input=input_text,
            capture_output=True,
            text=True,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as e:
        raise CommandError(f"cannot run {argv[0]!r}: it is not installed", hint=hint) from e
    except subprocess.TimeoutExpired as e:
        raise CommandError(f"{argv[0]} did not finish within {timeout} s", hint=hint) from e
    result = Result(tuple(argv), proc.returncode, proc.stdout, proc.stderr)
    if check and proc.returncode != 0:
        detail = proc.stderr.strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        raise CommandError(f"{' '.join(argv[:3])} failed: {detail[0]}", hint=hint)
    return result


def exec_interactive(argv: Sequence[str], env: Mapping[str, str] | None = None) -> int:
    """Run ARGV attached to our terminal and return its exit status."""
    import subprocess

    try:
        return subprocess.call(list(argv), env=dict(env) if env is not None else None)
    except FileNotFoundError as e:
        raise CommandError(
            f"cannot run {argv[0]!r}: it is not installed", hint=f"install {argv[0]}, or check PATH"
        ) from e
