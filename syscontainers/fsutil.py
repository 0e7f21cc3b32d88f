"""Atomic file publication: write a temp file beside the target, fsync, rename."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def tmp_name(directory: Path, stem: str) -> Path:
    """A fresh, unpredictable temp path inside DIRECTORY."""
    return directory / f".tmp-{stem}-{os.urandom(6).hex()}"


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
def flushing(path: Path, interval: float = 0.25) -> Iterator[None]:
    """While the body writes, flush PATH's filesystem every INTERVAL seconds in a thread, so
    that the syncfs that must follow (before publishing) finds little left to write: the
    disk works while the caller parses, instead of after it."""
    import threading

    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval):
            syncfs(path)

    thread = threading.Thread(target=loop, name="flusher", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def remove_tree(path: Path) -> None:
    """Remove a file or directory tree, making read-only directories writable first."""
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

    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path, onerror=onerror)
