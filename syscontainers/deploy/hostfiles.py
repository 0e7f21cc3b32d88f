"""Host files: an image's hostfs/ files staged in a slot, and safe file work on the host.

Each deployment keeps the exact bytes it installs under ``NAME.N/hostfs/PATH``
and records their sha256 in info.json (the ledger), with the directories it
needs on the host (``host_directories``). Which container owns what on the
host, and what a move from one deployment to another does, are decided in
``deploy.hostdb`` and ``deploy.hostplan``; this module does the I/O.

Every host path is reached from ``Paths.host_root`` one component at a time
with O_NOFOLLOW, so neither '..' nor a symlink (planted in a parent directory
or at the destination itself) can lead a write or a delete elsewhere. Files
are published by writing a temp file beside the destination and renaming it.
``check_writable`` finds a read-only or unwritable directory before anything
is written. ``useLinks`` is not honoured: a hardlink into the store or a slot
would let an edit on the host change the stored copy, so host files are
always copies.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from syscontainers.deploy.layout import HostDirRecord, HostFileRecord
from syscontainers.errors import CheckoutError, FilesystemError
from syscontainers.hashing import sha256
from syscontainers.record import record

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_CHUNK = 1 << 20
NOT_A_FILE = "not-a-file"  # the checksum we report for a device, or a path we cannot reach
IS_DIR = "directory"  # the checksum we report for a directory


@record
class HostFileSource:
    """One host file to stage: rendered bytes, a file to copy, or a symlink target."""

    dest: str
    source: str  # relative to /exports, for the ledger and messages
    mode: int = 0o644
    content: bytes | None = None
    copy_from: Path | None = None
    target: str | None = None  # a symlink


def sha256_hex(data: bytes) -> str:
    """The hex sha256 of DATA."""
    return sha256(data).hexdigest()


def link_checksum(target: str) -> str:
    """The ledger checksum of a symlink: its target's, marked so no file can match it."""
    return sha256_hex(b"symlink\0" + os.fsencode(target))


def staged_path(hostfs_dir: Path, dest: str) -> Path:
    """Where a slot keeps its copy of host file DEST."""
    return hostfs_dir / dest.lstrip("/")


def host_directories(
    file_dests: Iterable[str], dir_modes: Mapping[str, int]
) -> tuple[HostDirRecord, ...]:
    """The directories a deployment needs: DIR_MODES (its hostfs directories, renamed, with
    their modes) and every parent of those and of FILE_DESTS (0755), '/' excepted."""
    modes: dict[str, int] = {}
    for path in (*file_dests, *dir_modes):
        parts = path.split("/")[1:-1]
        for i in range(1, len(parts) + 1):
            modes.setdefault("/" + "/".join(parts[:i]), 0o755)
    modes.update(dir_modes)
    return tuple(HostDirRecord(p, m) for p, m in sorted(modes.items()))


# --- staging into a slot ----------------------------------------------------------


def stage(hostfs_dir: Path, item: HostFileSource) -> HostFileRecord:
    """Keep ITEM's bytes (or link) under HOSTFS_DIR and return its ledger record."""
    path = staged_path(hostfs_dir, item.dest)
    path.parent.mkdir(parents=True, exist_ok=True)
    if item.target is not None:
        os.symlink(item.target, path)
        return HostFileRecord(item.dest, link_checksum(item.target), item.source, True, 0o777)
    digest = sha256()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as out:
        for chunk in _chunks(item):
            digest.update(chunk)
            out.write(chunk)
        os.fchmod(out.fileno(), item.mode & 0o7777)
    return HostFileRecord(item.dest, digest.hexdigest(), item.source, False, item.mode & 0o7777)


def _chunks(item: HostFileSource) -> Iterator[bytes]:
    if item.content is not None:
        yield item.content
        return
    if item.copy_from is None:
        raise ValueError(f"host file {item.dest} has neither content nor a source")
    with open(item.copy_from, "rb") as f:
        while chunk := f.read(_CHUNK):
            yield chunk


# --- the host side -----------------------------------------------------------------


def _escape_error(dest: str, part: str, why: str) -> CheckoutError:
    return CheckoutError(
        f"host file {dest}: {part} {why}",
        hint="host files may not leave their destination through '..' or symlinks; "
        "fix the path on the host, or the image's renameFiles",
    )


def _parts(dest: str) -> list[str]:
    parts = dest.split("/")
    if not dest.startswith("/") or any(p in ("", ".", "..") for p in parts[1:]):
        raise _escape_error(dest, dest, "is not a clean absolute path")
    return parts[1:]


@contextlib.contextmanager
def _parent(
    host_root: Path, dest: str, create: bool, made: list[str] | None = None
) -> Iterator[tuple[int | None, str]]:
    """Yield an fd of DEST's parent (None if missing and not CREATE) and DEST's base name."""
    parts = _parts(dest)
    fds = [os.open(host_root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)]
    try:
        for i, part in enumerate(parts[:-1]):
            here = "/" + "/".join(parts[: i + 1])
            try:
                fds.append(os.open(part, _DIR, dir_fd=fds[-1]))
                continue
            except FileNotFoundError:
                if not create:
                    yield None, parts[-1]
                    return
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise _escape_error(dest, here, "is a symlink or not a directory") from e
                raise
            os.mkdir(part, 0o755, dir_fd=fds[-1])
            if made is not None:
                made.append(here)
            fds.append(os.open(part, _DIR, dir_fd=fds[-1]))
        yield fds[-1], parts[-1]
    finally:
        for fd in fds:
            os.close(fd)


def current_checksum(host_root: Path, dest: str) -> str | None:
    """The checksum of what is at DEST now (link_checksum for a symlink, IS_DIR for a
    directory), or None."""
    with _parent(host_root, dest, create=False) as (parent, base):
        if parent is None:
            return None
        try:
            st = os.stat(base, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return None
        if stat.S_ISLNK(st.st_mode):
            return link_checksum(os.readlink(base, dir_fd=parent))
        if stat.S_ISDIR(st.st_mode):
            return IS_DIR
        if not stat.S_ISREG(st.st_mode):
            return NOT_A_FILE
        fd = os.open(base, _READ, dir_fd=parent)
        digest = sha256()
        with os.fdopen(fd, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
        return digest.hexdigest()


def checksums(host_root: Path, paths: Sequence[str], strict: bool = True) -> dict[str, str | None]:
    """current_checksum for each of PATHS; unless STRICT, a path that cannot be reached
    safely reads as NOT_A_FILE (so a cleanup leaves it alone) instead of raising."""
    out: dict[str, str | None] = {}
    for path in paths:
        try:
            out[path] = current_checksum(host_root, path)
        except CheckoutError:
            if strict:
                raise
            out[path] = NOT_A_FILE
    return out


def install_file(
    host_root: Path, hostfs_dir: Path, rec: HostFileRecord, dest: str | None = None
) -> list[str]:
    """Publish the staged copy of REC at DEST (default: its own path); return the
    directories made."""
    made: list[str] = []
    src = staged_path(hostfs_dir, rec.path)
    dest = dest or rec.path
    with _parent(host_root, dest, create=True, made=made) as (parent, base):
        assert parent is not None
        tmp = f".{base}.sc-{os.urandom(6).hex()}"
        if rec.symlink:
            os.symlink(os.readlink(src), tmp, dir_fd=parent)
        else:
            _copy_into(src, parent, tmp, rec.mode)
        try:
            os.rename(tmp, base, src_dir_fd=parent, dst_dir_fd=parent)
        except OSError as e:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=parent)
            raise CheckoutError(
                f"cannot install host file {dest}: {e.strerror}",
                hint=f"check the directory of {dest} on the host, then run the command again",
            ) from e
        os.fsync(parent)
    return made


def _copy_into(src: Path, parent: int, name: str, mode: int) -> None:
    out_fd = os.open(
        name,
        os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
        0o600,
        dir_fd=parent,
    )
    try:
        with open(src, "rb") as f:
            while chunk := f.read(_CHUNK):
                os.write(out_fd, chunk)
        os.fchmod(out_fd, mode)
        os.fsync(out_fd)
    except BaseException:
        os.close(out_fd)
        with contextlib.suppress(OSError):
            os.unlink(name, dir_fd=parent)
        raise
    os.close(out_fd)


def remove_file(host_root: Path, dest: str) -> None:
    """Remove the file or link at DEST (gone already is fine)."""
    with _parent(host_root, dest, create=False) as (parent, base):
        if parent is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(base, dir_fd=parent)


def remove_empty_dirs(host_root: Path, dirs: Sequence[str]) -> None:
    """Remove the directories DIRS that are empty, deepest first."""
    for path in sorted(set(dirs), key=lambda d: -d.count("/")):
        with _parent(host_root, path, create=False) as (parent, base):
            if parent is not None:
                with contextlib.suppress(OSError):  # not empty, gone, or not a directory
                    os.rmdir(base, dir_fd=parent)


def make_dir(host_root: Path, rec: HostDirRecord) -> None:
    """Make the directory REC with its mode (its parent exists or is made 0755)."""
    with _parent(host_root, rec.path, create=True) as (parent, base):
        assert parent is not None
        os.mkdir(base, 0o700, dir_fd=parent)
        fd = os.open(base, _DIR, dir_fd=parent)
        try:
            os.fchmod(fd, rec.mode & 0o7777)
        finally:
            os.close(fd)
        os.fsync(parent)


def check_writable(host_root: Path, dests: Iterable[str]) -> None:
    """Raise FilesystemError naming the first of DESTS that could not be made: its nearest
    existing directory is on a read-only file system or is not writable for us."""
    seen: set[str] = set()
    for dest in dests:
        with _nearest_dir(host_root, dest) as (fd, where):
            if where in seen:
                continue
            seen.add(where)
            if os.statvfs(fd).f_flag & os.ST_RDONLY:
                why = "is on a read-only file system"
            elif not os.access(".", os.W_OK, dir_fd=fd):
                why = "is not writable (permission denied)"
            else:
                continue
        raise FilesystemError(
            f"cannot install {dest} on the host: {where} {why}",
            hint=f"make {where} writable (remount it read-write), or install the image's "
            "files elsewhere with renameFiles and --set",
        )


@contextlib.contextmanager
def _nearest_dir(host_root: Path, dest: str) -> Iterator[tuple[int, str]]:
    """Yield an fd of the deepest existing directory above DEST, and its host path."""
    parts = _parts(dest)
    fds = [os.open(host_root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)]
    depth = 0
    try:
        for part in parts[:-1]:
            try:
                fds.append(os.open(part, _DIR, dir_fd=fds[-1]))
            except FileNotFoundError:
                break
            except OSError as e:
                here = "/" + "/".join(parts[: depth + 1])
                raise _escape_error(dest, here, "is a symlink or not a directory") from e
            depth += 1
        yield fds[-1], "/" + "/".join(parts[:depth])
    finally:
        for fd in fds:
            os.close(fd)
