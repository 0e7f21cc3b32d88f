"""The store lock: one writer at a time, readers share, waiting is reported."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from enum import Enum
from pathlib import Path

from syscontainers.errors import StoreLockedError


class LockMode(Enum):
    """Shared for readers (list, inspect, checkout), exclusive for writers."""

    SHARED = fcntl.LOCK_SH
    EXCLUSIVE = fcntl.LOCK_EX


def _holder(path: Path) -> str:
    try:
        text = path.read_text().strip()
    except OSError:
        return "another command"
    return f"pid {text}" if text else "another command"


@contextlib.contextmanager
def store_lock(
    path: Path,
    mode: LockMode,
    timeout: float | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold the lock at PATH for the body; wait up to TIMEOUT seconds (None: forever)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # the store: see store.access
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except PermissionError:
        if mode is not LockMode.SHARED:
            raise
        # A reader that may not write the lock (not root, on a store it may read) can still
        # share it: flock works on a read-only descriptor.
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _acquire(fd, path, mode, timeout, on_wait)
        if mode is LockMode.EXCLUSIVE:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        if mode is LockMode.EXCLUSIVE:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
        os.close(fd)


def _try_lock(fd: int, mode: LockMode) -> bool:
    """One non-blocking attempt; False if someone else holds the lock."""
    try:
        fcntl.flock(fd, mode.value | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno not in (errno.EAGAIN, errno.EACCES):
            raise
        return False
    return True


def _acquire(
    fd: int,
    path: Path,
    mode: LockMode,
    timeout: float | None,
    on_wait: Callable[[str], None] | None,
) -> None:
    if _try_lock(fd, mode):
        return
    holder = _holder(path)
    if on_wait is not None:
        on_wait(f"waiting for the store lock held by {holder}")
    deadline = None if timeout is None else time.monotonic() + timeout
    while not _try_lock(fd, mode):
        if deadline is not None and time.monotonic() >= deadline:
            raise StoreLockedError(
                f"the store {path.parent} is locked by {holder}",
                hint="wait for the other syscontainers command to finish",
            )
        time.sleep(0.05)
