"""Atomic file publication: write a temp file beside the target, fsync, rename."""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from syscontainers.errors import FilesystemError

# Errors of the host, not of our code: full, over quota, read-only, no permission, too long.
HOST_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENAMETOOLONG}
)


TMP_STEM_MAX = 255 - len(".tmp--") - 12  # bytes of STEM that fit in a file name


def tmp_name(directory: Path, stem: str) -> Path:
    """A fresh, unpredictable temp path inside DIRECTORY; STEM is cut to fit a file name."""
    cut = os.fsdecode(os.fsencode(stem)[:TMP_STEM_MAX])
    return directory / f".tmp-{cut}-{os.urandom(6).hex()}"


def fsync_dir(path: Path) -> None:
    """Make a rename or link inside PATH durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, mode: int = 0o644, sync: bool = True) -> None:
    """Publish DATA at PATH atomically: readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_name(path.parent, path.name)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        with os.fdopen(fd, "wb", closefd=False) as f:
            f.write(data)
            f.flush()
            if sync:
                os.fsync(fd)
        os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    os.close(fd)
    os.rename(tmp, path)
    if sync:
        fsync_dir(path.parent)


def read_bytes_if_exists(path: Path) -> bytes | None:
    """The content of PATH, or None when it does not exist."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def syncfs(path: Path) -> None:
    """Flush every dirty page of the filesystem holding PATH (one call, not one per file)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        libc_syncfs(fd)
    finally:
        os.close(fd)


def libc_syncfs(fd: int) -> None:
    """syncfs(2) through ctypes; falls back to sync(2) where it is missing."""
    fn = _syncfs_function()
    if fn is None or fn(fd) != 0:
        os.sync()


@functools.cache
def _syncfs_function() -> Any:
    """libc's syncfs, looked up once. (ctypes.util.find_library would run ldconfig in a
    subprocess on every call; the running interpreter has libc loaded already.)"""
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None


@contextlib.contextmanager
def flushing(
    path: Path,
    interval: float = 0.25,
    first: float = 0.025,
    early: float = 0.2,
    sync: Callable[[Path], None] = syncfs,
) -> Iterator[None]:
    """While the body writes, flush PATH's filesystem in a thread, so that the syncfs that
    must follow (before publishing) finds little left to write: the disk works while the
    caller parses, instead of after it. Every FIRST seconds for the first EARLY seconds (a
    small image imports in a fifth of a second, and all it leaves to the final syncfs is
    what it wrote since the last flush), then at doubling delays up to every INTERVAL
    seconds, so that a large import does not pay for a journal commit every FIRST seconds."""
    import threading

    stop = threading.Event()

    def loop() -> None:
        for delay in flush_delays(first, interval, early):
            if stop.wait(delay):
                return
            sync(path)

    thread = threading.Thread(target=loop, name="flusher", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def flush_delays(first: float, interval: float, early: float = 0.0) -> Iterator[float]:
    """The waits between ``flushing``'s syncs: FIRST until EARLY seconds have passed, then
    doubling up to INTERVAL, then INTERVAL."""
    delay, passed = min(first, interval), 0.0
    while True:
        yield delay
        passed += delay
        if passed >= early - 1e-9:
            delay = min(2 * delay, interval)


def remove_tree(path: Path) -> None:
    """Remove a file or directory tree, making read-only directories writable first."""
    try:
        is_dir = stat.S_ISDIR(os.lstat(path).st_mode)
    except FileNotFoundError:
        return
    if not is_dir:  # a file, a link, a FIFO (which shutil.rmtree would open, and wait on)
        os.unlink(path)
        return
    try:  # the usual case (a store's tmp/ when a writer locks): empty
        os.rmdir(path)
        return
    except OSError:
        pass  # not empty, or not ours to remove as it stands: shutil, with onerror's help
    import shutil

    def onerror(func: object, p: str, exc: object) -> None:
        parent = os.path.dirname(p)
        with contextlib.suppress(OSError):
            os.chmod(parent, 0o700)
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p, onerror=onerror)
            else:
                os.unlink(p)

    shutil.rmtree(path, onerror=onerror)


def _existing(path: Path) -> Path:
    """PATH, or its nearest ancestor that exists (a failed write names a file never made)."""
    for parent in (path, *path.parents):
        try:
            parent.lstat()
        except OSError:  # missing, or in a directory this user may not search
            continue
        return parent
    return path


def _no_free_inodes(path: Path) -> bool:
    try:
        st = os.statvfs(path)
    except OSError:
        return False
    return st.f_files > 0 and st.f_favail == 0


def _full(errno_: int, path: Path) -> tuple[str, str]:
    """(what is wrong, where to look) for a full filesystem holding PATH."""
    if errno_ == errno.EDQUOT:
        return "is over its disk quota", f"quota; df -h {path}"
    if _no_free_inodes(path):
        return "has no free inodes left", f"df -i {path}"
    return "has no space left", f"df -h {path}"


def host_error(e: OSError, path: Path, doing: str, again: str) -> FilesystemError | None:
    """E as a FilesystemError when the host caused it (HOST_ERRNOS) while DOING something
    under PATH; AGAIN says what to do once it is fixed. None for any other error."""
    if e.errno not in HOST_ERRNOS:
        return None
    if e.errno == errno.ENAMETOOLONG:
        return FilesystemError(
            f"a file name is too long for the filesystem ({doing}): {e.filename or path}",
            hint=f"use shorter names (of images, containers or paths), then {again}",
        )
    path = _existing(path)
    if e.errno in (errno.EACCES, errno.EPERM):
        return FilesystemError(
            f"permission denied on {e.filename or path} ({doing})",
            hint=f"run as root, or pick a --root you may write to, then {again}",
        )
    where = f"the filesystem that holds {path}"
    if e.errno == errno.EROFS:
        return FilesystemError(
            f"{where} is read-only ({doing})", hint=f"remount it read-write, then {again}"
        )
    wrong, see = _full(e.errno, path)
    return FilesystemError(
        f"{where} {wrong} ({doing})",
        hint=f"free some room there ({see}; 'syscontainers images prune' removes what no image "
        f"uses), then {again}",
    )


@contextlib.contextmanager
def filesystem_errors(path: Path, doing: str, again: str) -> Iterator[None]:
    """Turn an OSError the host caused (see host_error) under PATH into a FilesystemError."""
    try:
        yield
    except OSError as e:
        error = host_error(e, path, doing, again)
        if error is None:
            raise
        raise error from e
