"""File and symlink objects: content plus the metadata a hardlink shares, stored once by key.

A file object's name is ``HEX.MODE.UID.GID[.XH]``: the sha256 of the content, the
permission bits in octal (including setuid, setgid and sticky), the owner,
and, when the file has xattrs, the first 16 hex digits of the sha256 of its
canonical xattr list. Two files share an object exactly when a hardlink
between them would be indistinguishable from two copies.

A symlink object (as in OSTree) is a symlink named ``HEX.link.UID.GID.MTIME``: the sha256 of
its target, its owner and its mtime, which a hardlink shares too. Checkouts hardlink it
instead of creating a symlink, which costs an inode each time. Symlink objects are a cache:
import makes them where it can (not for symlinks with xattrs, nor for another owner without
privilege), and a checkout that finds none creates the symlink itself.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from syscontainers.errors import LayerError, StoreCorruptError
from syscontainers.hashing import sha256
from syscontainers.record import record
from syscontainers.tree import Entry, EntryKind

TRUNCATED_HINT = "the layer is truncated; pull the image again, or ask its publisher to rebuild it"

CHUNK = 1 << 20
IN_MEMORY_LIMIT = 4 << 20
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC


@record
class ObjectMeta:
    """The metadata that every hardlink of an object shares."""

    mode: int
    uid: int
    gid: int
    xattrs: tuple[tuple[str, bytes], ...] = ()


OBJECT_DIRS = tuple(f"{i:02x}" for i in range(256))  # objects/00 … objects/ff


def object_dir(name: str) -> str:
    """The ``objects/`` subdirectory that holds the object NAME: the first two hex digits of
    its content hash (256 directories, made when the store is created)."""
    return name[:2]


def object_relpath(name: str) -> str:
    """Where the object NAME lives, relative to ``objects/``: ``XX/NAME``."""
    return f"{object_dir(name)}/{name}"


def xattr_hash(xattrs: Iterable[tuple[str, bytes]]) -> str:
    """A short, stable hash of an xattr list."""
    h = sha256()
    for key, value in sorted(xattrs):
        h.update(key.encode() + b"\0" + len(value).to_bytes(8, "big") + value)
    return h.hexdigest()[:16]


def object_name(content_hex: str, meta: ObjectMeta) -> str:
    """The store name of a file with this content and metadata."""
    name = f"{content_hex}.{meta.mode & 0o7777:04o}.{meta.uid}.{meta.gid}"
    if meta.xattrs:
        name += "." + xattr_hash(meta.xattrs)
    return name


def target_hex(target: str) -> str:
    """The sha256 of a symlink target: the first part of its object name."""
    return sha256(os.fsencode(target)).hexdigest()


def link_name(target: str, uid: int, gid: int, mtime: int) -> str:
    """The store name of a symlink to TARGET with this owner and mtime."""
    return f"{target_hex(target)}.link.{uid}.{gid}.{mtime}"


def is_link_object(name: str) -> bool:
    """True if NAME is a symlink object's (``HEX.link.…``, see link_name), not a file object's."""
    return name[64:70] == ".link."


def entry_object(entry: Entry) -> tuple[str, int] | None:
    """The object a tree ENTRY uses and its size (0 for a symlink object); None if it uses none
    (a directory, a device, a symlink made in place)."""
    if entry.kind is EntryKind.FILE:
        return entry.obj, entry.size
    link = symlink_object(entry)
    return (link, 0) if link else None


def symlink_object(entry: Entry) -> str:
    """The symlink object a layer's symlink ENTRY is checked out from; "" for a symlink with
    xattrs (made in place: objects carry none) or another kind of entry."""
    if entry.kind is not EntryKind.SYMLINK or entry.xattrs:
        return ""
    return link_name(entry.target, entry.uid, entry.gid, entry.mtime)


@record
class ParsedName:
    """The parts of an object name."""

    content_hex: str
    mode: int
    uid: int
    gid: int
    xhash: str
    link_mtime: int | None = None  # a symlink object's mtime; None for a file object


def parse_name(name: str) -> ParsedName:
    """Split an object name into its parts; raise StoreCorruptError if it is not one."""
    parts = name.split(".")
    try:
        if len(parts) not in (4, 5) or len(parts[0]) != 64:
            raise ValueError(name)
        int(parts[0], 16)
        if parts[1] == "link":
            if len(parts) != 5:
                raise ValueError(name)
            return ParsedName(parts[0], 0o777, int(parts[2]), int(parts[3]), "", int(parts[4]))
        xhash = parts[4] if len(parts) == 5 else ""
        return ParsedName(parts[0], int(parts[1], 8), int(parts[2]), int(parts[3]), xhash)
    except ValueError:
        raise StoreCorruptError(
            f"{name!r} is not an object name in the store", hint="run 'syscontainers images verify'"
        ) from None


class ObjectWriter:
    """Writes objects into ``objects/`` with their metadata applied, deduplicating by name.

    Every ``put`` has finished writing when it returns. (Worker threads that created the
    files in parallel were measured and made pulls slower here: the read-ahead thread
    already keeps the second core busy.)
    """

    def __init__(
        self, objects_dir: Path, tmp_dir: Path, privileged: bool, empty: Iterable[str] = ()
    ) -> None:
        """EMPTY names objects/XX directories known to be empty (just made): not listed."""
        self.objects_dir = objects_dir
        self.tmp_dir = tmp_dir
        self.privileged = privileged
        self.bytes_written = 0
        self.objects_written = 0
        self._objects = str(objects_dir)
        self._tmp_prefix = f"{tmp_dir}/.obj-{os.getpid()}-{id(self):x}-"
        self._counter = itertools.count()
        self._known: dict[str, set[str]] = {p: set() for p in empty}  # XX -> names in objects/XX
        self._owner = (os.geteuid(), os.getegid())
        self._umask = _current_umask()

    def path(self, name: str) -> Path:
        """Where the object NAME lives."""
        return self.objects_dir / object_relpath(name)

    def _final(self, name: str) -> str:
        return f"{self._objects}/{object_relpath(name)}"

    def _have(self, name: str) -> bool:
        """True if the object is stored. Each objects/XX is listed once instead of one stat
        per file: the writer holds the exclusive lock, so only it adds objects."""
        prefix = object_dir(name)
        known = self._known.get(prefix)
        if known is None:
            try:
                known = self._known[prefix] = set(os.listdir(f"{self._objects}/{prefix}"))
            except FileNotFoundError:
                known = self._known[prefix] = set()
        return name in known

    def put(self, stream: BinaryIO, size: int, meta: ObjectMeta, what: str) -> str:
        """Store SIZE bytes read from STREAM; return the object name."""
        if size > IN_MEMORY_LIMIT:
            return self._put_large(stream, size, meta, what)
        return self.put_bytes(_read_exact(stream, size, what), meta)

    def put_bytes(self, data: bytes | memoryview, meta: ObjectMeta) -> str:
        """Store DATA (at most IN_MEMORY_LIMIT bytes, as ``put`` would); return the name."""
        name = object_name(sha256(data).hexdigest(), meta)
        if self._have(name):
            return name
        self._publish(name, meta, data)
        self._known[object_dir(name)].add(name)
        self.bytes_written += len(data)
        self.objects_written += 1
        return name

    def put_symlink(self, target: str, uid: int, gid: int, mtime: int) -> str:
        """Store a symlink to TARGET with this owner and mtime; its name, or "" when this writer
        cannot give it that owner (unprivileged): the checkout then makes the symlink itself."""
        if (uid, gid) != self._owner and not self.privileged:
            return ""
        name = link_name(target, uid, gid, mtime)
        if self._have(name):
            return name
        tmp = self._tmp()
        os.symlink(target, tmp)
        try:
            if (uid, gid) != self._owner:
                os.lchown(tmp, uid, gid)
            os.utime(tmp, (mtime, mtime), follow_symlinks=False)
            os.rename(tmp, self._final(name))
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        self._known[object_dir(name)].add(name)
        self.objects_written += 1
        return name

    def _tmp(self) -> str:
        return f"{self._tmp_prefix}{next(self._counter)}"

    def _put_large(self, stream: BinaryIO, size: int, meta: ObjectMeta, what: str) -> str:
        tmp = self._tmp()
        fd = os.open(tmp, _CREATE, 0o600)
        try:
            h = sha256()
            left = size
            while left:
                chunk = stream.read(min(CHUNK, left))
                if not chunk:
                    raise LayerError(
                        f"{what}: content ends {left} bytes before its declared size",
                        hint=TRUNCATED_HINT,
                    )
                h.update(chunk)
                _write_all(fd, chunk)
                left -= len(chunk)
            name = object_name(h.hexdigest(), meta)
            if self._have(name):
                os.close(fd)
                fd = -1
                os.unlink(tmp)
                return name
            self._apply_meta(fd, meta)
            os.close(fd)
            fd = -1
            os.rename(tmp, self._final(name))
            self._known[object_dir(name)].add(name)
            self.bytes_written += size
            self.objects_written += 1
            return name
        finally:
            if fd >= 0:
                os.close(fd)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)

    def _publish(self, name: str, meta: ObjectMeta, data: bytes | memoryview) -> None:
        tmp = self._tmp()
        mode = meta.mode & 0o7777
        # Create it with its final permissions where open(2) can give them, so that most
        # files need no fchmod (and, when owned by us, no fchown): two syscalls of six.
        plain = not mode & 0o7000 and not mode & self._umask
        fd = os.open(tmp, _CREATE, mode if plain else 0o600)
        try:
            if (n := os.write(fd, data)) < len(data):  # one write, but for a short one
                _write_all(fd, memoryview(data)[n:])
            if not plain or meta.xattrs or (meta.uid, meta.gid) != self._owner:
                self._apply_meta(fd, meta, chmod=not plain)
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        os.close(fd)
        os.rename(tmp, self._final(name))

    def _apply_meta(self, fd: int, meta: ObjectMeta, chmod: bool = True) -> None:
        # chown first: it clears setuid/setgid bits, which fchmod then restores.
        if self.privileged and (meta.uid, meta.gid) != self._owner:
            os.fchown(fd, meta.uid, meta.gid)
            chmod = True
        if chmod:
            os.fchmod(fd, meta.mode & 0o7777)
        for key, value in meta.xattrs:
            if self.privileged or key.startswith("user."):
                with contextlib.suppress(OSError):
                    os.setxattr(fd, key, value)


def _current_umask() -> int:
    """The process umask, read without changing it (Linux shows it in /proc/self/status)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o777  # unknown: assume it may strip anything, so always fchmod


def _write_all(fd: int, data: bytes | memoryview) -> int:
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
        raise LayerError(
            f"{what}: content ends {size - len(data)} bytes before its declared size",
            hint=TRUNCATED_HINT,
        )
    return data


def hash_file(path: Path) -> str:
    """The sha256 hex digest of a file's content."""
    h = sha256()
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
