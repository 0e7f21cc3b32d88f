"""Run a command in a child process and measure that child's own peak RSS.

A child's ru_maxrss starts from the high-water mark of the process it was forked from: the
kernel records the old address space's peak at exec. A CLI started straight from pytest (whose
size grows over a whole-suite run to hundreds of MB) would report pytest's size, not its own.
So the command is forked from a small launcher, which applies the address-space limit, waits,
and reports its child's peak on a pipe.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

_LAUNCHER = """
import os, resource, signal, sys
fd, limit, timeout = (int(a) for a in sys.argv[1:4])
pid = os.fork()
if pid == 0:
    if limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    os.execv(sys.argv[4], sys.argv[4:])
signal.signal(signal.SIGALRM, lambda *_: os.kill(pid, signal.SIGKILL))
signal.alarm(timeout)
_, status, usage = os.wait4(pid, 0)
os.write(fd, str(usage.ru_maxrss * 1024).encode())
sys.exit(os.waitstatus_to_exitcode(status) & 0xFF)
"""


@dataclass(frozen=True)
class Measured:
    """What one measured child did."""

    code: int
    out: str
    err: str
    max_rss: int  # bytes, the child's own peak
    seconds: float


def run_measured(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    address_space: int = 0,
    timeout: int = 120,
) -> Measured:
    """Run ARGV (killed after TIMEOUT s, under ADDRESS_SPACE bytes if set): result and peak."""
    peak_r, peak_w = os.pipe()
    start = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _LAUNCHER, str(peak_w), str(address_space), str(timeout), *argv],
            capture_output=True,
            text=True,
            env=env,
            pass_fds=(peak_w,),
        )
    finally:
        os.close(peak_w)
    with os.fdopen(peak_r, "rb") as peak:
        rss = int(peak.read() or b"0")
    return Measured(proc.returncode, proc.stdout, proc.stderr, rss, time.monotonic() - start)
