"""File objects: content plus the metadata a hardlink shares, stored once under their key.

An object's name is ``HEX.MODE.UID.GID[.XH]``: the sha256 of the content, the
permission bits in octal (including setuid, setgid and sticky), the owner,
and, when the file has xattrs, the first 16 hex digits of the sha256 of its
canonical xattr list. Two files share an object exactly when a hardlink
between them would be indistinguishable from two copies.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

from syscontainers.errors import LayerError, StoreCorruptError

CHUNK = 1 << 20
IN_MEMORY_LIMIT = 4 << 20


@dataclass(frozen=True, slots=True)
class ObjectMeta:
    """The metadata that every hardlink of an object shares."""

    mode: int
    uid: int
    gid: int
    xattrs: tuple[tuple[str, bytes], ...] = ()


def xattr_hash(xattrs: Iterable[tuple[str, bytes]]) -> str:
    """A short, stable hash of an xattr list."""
    h = hashlib.sha256()
    for key, value in sorted(xattrs):
        h.update(key.encode() + b"\0" + len(value).to_bytes(8, "big") + value)
    return h.hexdigest()[:16]


def object_name(content_hex: str, meta: ObjectMeta) -> str:
    """The store name of a file with this content and metadata."""
    name = f"{content_hex}.{meta.mode & 0o7777:04o}.{meta.uid}.{meta.gid}"
    if meta.xattrs:
        name += "." + xattr_hash(meta.xattrs)
    return name


@dataclass(frozen=True, slots=True)
class ParsedName:
    """The parts of an object name."""

    content_hex: str
    mode: int
    uid: int
    gid: int
    xhash: str


def parse_name(name: str) -> ParsedName:
    """Split an object name into its parts; raise StoreCorruptError if it is not one."""
    parts = name.split(".")
    try:
        if len(parts) not in (4, 5) or len(parts[0]) != 64:
            raise ValueError(name)
        int(parts[0], 16)
        xhash = parts[4] if len(parts) == 5 else ""
        return ParsedName(parts[0], int(parts[1], 8), int(parts[2]), int(parts[3]), xhash)
    except ValueError:
        raise StoreCorruptError(f"{name!r} is not an object name in the store") from None


class ObjectWriter:
    """Writes objects into ``objects/`` with their metadata applied, deduplicating by name.

    Small objects are hashed in the caller's thread and written by a few worker
    threads, so that the latency of creating many small files overlaps with
    parsing; ``drain`` waits for them (and raises the first failure). At most
    PENDING_LIMIT bytes wait in memory.
    """

    PENDING_LIMIT = 32 << 20

    def __init__(
        self, objects_dir: Path, tmp_dir: Path, privileged: bool, workers: int = 0
    ) -> None:
        self.objects_dir = objects_dir
        self.tmp_dir = tmp_dir
        self.privileged = privileged
        self.bytes_written = 0
        self.objects_written = 0
        self._objects = str(objects_dir)
        self._tmp_prefix = f"{tmp_dir}/.obj-{os.getpid()}-{id(self):x}-"
        self._counter = itertools.count()
        self._pool: ThreadPoolExecutor | None = None
        if workers:
            from concurrent.futures import ThreadPoolExecutor  # only writers that use threads

            self._pool = ThreadPoolExecutor(workers)
        self._pending: deque[tuple[Future[None], int]] = deque()
        self._pending_bytes = 0
        self._seen: set[str] = set()

    def path(self, name: str) -> Path:
        """Where the object NAME lives."""
        return self.objects_dir / name[:2] / name

    def _final(self, name: str) -> str:
        return f"{self._objects}/{name[:2]}/{name}"

    def put(self, stream: BinaryIO, size: int, meta: ObjectMeta, what: str) -> str:
        """Store SIZE bytes read from STREAM; return the object name."""
        if size > IN_MEMORY_LIMIT:
            return self._put_large(stream, size, meta, what)
        data = _read_exact(stream, size, what)
        name = object_name(hashlib.sha256(data).hexdigest(), meta)
        if name in self._seen or os.path.exists(self._final(name)):
            return name
        self._seen.add(name)
        self.bytes_written += size
        self.objects_written += 1
        if self._pool is None:
            self._publish(name, meta, data)
            return name
        self._pending.append((self._pool.submit(self._publish, name, meta, data), size))
        self._pending_bytes += size
        while self._pending_bytes > self.PENDING_LIMIT:
            self._wait_oldest()
        return name

    def _wait_oldest(self) -> None:
        future, size = self._pending.popleft()
        self._pending_bytes -= size
        future.result()

    def drain(self) -> None:
        """Wait until every object handed to ``put`` is on disk; raise the first failure."""
        try:
            while self._pending:
                self._wait_oldest()
        finally:
            for future, _ in self._pending:
                future.cancel()
            self._pending.clear()
            self._pending_bytes = 0

    def close(self) -> None:
        """Drain and stop the worker threads."""
        try:
            self.drain()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    def __enter__(self) -> ObjectWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is None:
            self.close()
            return
        # Already failing: stop the workers, but let the original error through.
        with contextlib.suppress(Exception):
            self.close()

    def _tmp(self) -> str:
        return f"{self._tmp_prefix}{next(self._counter)}"

    def _put_large(self, stream: BinaryIO, size: int, meta: ObjectMeta, what: str) -> str:
        tmp = self._tmp()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            h = hashlib.sha256()
            left = size
            while left:
                chunk = stream.read(min(CHUNK, left))
                if not chunk:
                    raise LayerError(f"{what}: content ends {left} bytes before its declared size")
                h.update(chunk)
                _write_all(fd, chunk)
                left -= len(chunk)
            name = object_name(h.hexdigest(), meta)
            if name in self._seen or os.path.exists(self._final(name)):
                os.close(fd)
                fd = -1
                os.unlink(tmp)
                return name
            self._apply_meta(fd, meta)
            os.close(fd)
            fd = -1
            os.rename(tmp, self._final(name))
            self._seen.add(name)
            self.bytes_written += size
            self.objects_written += 1
            return name
        finally:
            if fd >= 0:
                os.close(fd)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)

    def _publish(self, name: str, meta: ObjectMeta, data: bytes) -> None:
        tmp = self._tmp()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            _write_all(fd, data)
            self._apply_meta(fd, meta)
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        os.close(fd)
        os.rename(tmp, self._final(name))

    def _apply_meta(self, fd: int, meta: ObjectMeta) -> None:
        # chown first: it clears setuid/setgid bits, which fchmod then restores.
        if self.privileged:
            os.fchown(fd, meta.uid, meta.gid)
        os.fchmod(fd, meta.mode & 0o7777)
        for key, value in meta.xattrs:
            if self.privileged or key.startswith("user."):
                with contextlib.suppress(OSError):
                    os.setxattr(fd, key, value)


def _write_all(fd: int, data: bytes) -> int:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]
    return len(data)


def _read_exact(stream: BinaryIO, size: int, what: str) -> bytes:
    data = stream.read(size)
    if len(data) < size:  # a raw stream may return less than asked before its end
        buf = bytearray(data)
        while len(buf) < size and (chunk := stream.read(size - len(buf))):
            buf += chunk
        data = bytes(buf)
    if len(data) != size:
        raise LayerError(f"{what}: content ends {size - len(data)} bytes before its declared size")
    return data


def hash_file(path: Path) -> str:
    """The sha256 hex digest of a file's content."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def read_xattrs(path: Path) -> tuple[tuple[str, bytes], ...]:
    """The xattrs of PATH (without following symlinks), sorted."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return ()
    return tuple(sorted((n, os.getxattr(path, n, follow_symlinks=False)) for n in names))
