"""Two processes for a run of short system calls: one half in a forked child, one here.

A checkout makes thousands of hardlinks of a few microseconds each. Threads do not
overlap them: every ``os.link`` gives the GIL up and takes it back, and on a small VM the
hand-over costs about what the call does, so two linking threads were no faster than one
(measured on debian minbase: 32 ms either way). A forked child has its own interpreter
and links in parallel for the cost of one fork (under a millisecond for a checkout's
process). The child only makes system calls and reports which items failed; whatever
needs judgement (errors, fallbacks) happens afterwards in this process.

The child is reaped before ``in_two`` returns or raises: if this process's half raises
(KeyboardInterrupt included) the child is killed first, so that the caller may remove
what the two made. A child that is killed or crashes is an error (``ChildProcessError``),
since what it did is unknown. The child shares the parent's memory copy-on-write and
writes only the pages of the objects it reads (their reference counts).
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable


def can_fork() -> bool:
    """True when forking is safe: no other thread may hold a lock the child would need.
    (A process that never imported threading started none through it.)"""
    threading = sys.modules.get("threading")
    return hasattr(os, "fork") and (threading is None or threading.active_count() == 1)


def in_two(child: Callable[[], list[int]], here: Callable[[], list[int]]) -> list[int]:
    """Run CHILD in a forked child while HERE runs in this process; both return the indices
    of the items they failed on, and this returns the two lists joined (CHILD's first).
    If the fork itself fails, CHILD runs here after HERE."""
    r, w = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(r)
        os.close(w)
        return [*here(), *child()]
    if pid == 0:  # pragma: no cover - the child's half (coverage does not follow forks)
        _child(r, w, child)
    os.close(w)
    try:
        mine = here()
        theirs = _read_all(r)
        _, status = os.waitpid(pid, 0)
        pid = 0
    finally:
        os.close(r)
        if pid:
            import signal  # only here: it costs a checkout's start-up its enums

            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise ChildProcessError(errno.ECHILD, f"the forked half of the work ended with {code}")
    return [*map(int, theirs.split()), *mine]


def _child(r: int, w: int, work: Callable[[], list[int]]) -> None:  # pragma: no cover
    """The child: do WORK, write the failed indices to W, and leave without running any of
    the parent's exit handlers or flushing its buffers (hence os._exit, also on errors)."""
    status = 1
    try:
        os.close(r)
        data = " ".join(map(str, work())).encode()
        while data:
            data = data[os.write(w, data) :]
        status = 0
    finally:
        os._exit(status)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)
