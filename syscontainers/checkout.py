"""Checkout: the union of an image's layers, materialised as a directory of hardlinks.

``merge`` (pure, in its own module) folds the layer trees into one parent-first entry
list; ``checkout`` builds that list in a temp sibling of the destination and renames it
into place, so a failed checkout leaves nothing behind under the final name.

Regular files are hardlinks of store objects, which already carry their mode,
owner and xattrs (their mtime is the object's, shared by every checkout); so are
symlinks, where the store holds a symlink object (see ``store.objects``), else they
are made in place.
When hardlinking is impossible (another filesystem, protected hardlinks, link
count limit) the rest of the tree is copied (reflinked where the filesystem
can) and the entry's metadata, including its mtime, is applied to the copy.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from syscontainers import progress
from syscontainers.errors import CheckoutError
from syscontainers.fsutil import remove_tree, tmp_name
from syscontainers.merge import merge
from syscontainers.progress import Reporter
from syscontainers.record import record
from syscontainers.store import Store
from syscontainers.store.objects import object_relpath, symlink_object
from syscontainers.tree import Entry, EntryKind, LayerTree, collector_paused

FICLONE = 0x40049409  # _IOW(0x94, 9, int) from linux/fs.h
MISSING_HINT = "run syscontainers images verify, then pull the image again"
_LINK_FALLBACK = {
    errno.EXDEV: "{dest} is on another filesystem than the store",
    errno.EPERM: "the kernel refuses hardlinks to the store's files",
    errno.EMLINK: "a store object has reached the filesystem's link limit",
}

LINK_THREAD_MIN = 512  # below this many files, threads cost more than they save
_FILE, _DIR, _SYMLINK = EntryKind.FILE, EntryKind.DIR, EntryKind.SYMLINK
_NODE_TYPES = {EntryKind.CHAR: stat.S_IFCHR, EntryKind.BLOCK: stat.S_IFBLK}


@record
class CheckoutResult:
    """What a checkout made."""

    files: int
    dirs: int  # including the root
    links: int  # symlinks
    copied: bool  # True if hardlinking failed and files were copied
    skipped_devices: int = 0  # device nodes not made without privilege


# ---- checkout (I/O) ---------------------------------------------------------


class _Copier:
    """The fallback when hardlinking fails: copy (or reflink) objects, apply metadata."""

    def __init__(self, privileged: bool) -> None:
        self.privileged = privileged
        self.clone = True
        self.first: dict[str, str] = {}  # object -> its first copy in this checkout

    def put(self, src: str, dst: str, entry: Entry) -> None:
        """Make DST a copy of SRC with ENTRY's metadata (or a link to an earlier copy)."""
        first = self.first.get(entry.obj)
        if first is not None:
            try:
                os.link(first, dst)
                return
            except OSError as e:
                if e.errno != errno.EMLINK:
                    raise
        sfd = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
        try:
            dfd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                self._data(sfd, dfd)
                _apply_fd(dfd, entry, self.privileged)
            finally:
                os.close(dfd)
        finally:
            os.close(sfd)
        self.first[entry.obj] = dst

    def _data(self, sfd: int, dfd: int) -> None:
        if self.clone:
            try:
                fcntl.ioctl(dfd, FICLONE, sfd)
                return
            except OSError:
                self.clone = False  # the filesystem (or the pair) cannot reflink
        try:
            while os.sendfile(dfd, sfd, None, 1 << 30):
                pass
        except OSError as e:
            if e.errno not in (errno.EINVAL, errno.ENOSYS):
                raise
            while chunk := os.read(sfd, 1 << 20):
                os.write(dfd, chunk)


def _set_xattrs(path: str, entry: Entry, privileged: bool) -> None:
    for key, value in entry.xattrs:
        if privileged or key.startswith("user."):
            with contextlib.suppress(OSError):  # as for objects: best effort per filesystem
                os.setxattr(path, key, value, follow_symlinks=False)


def _apply_fd(fd: int, entry: Entry, privileged: bool) -> None:
    # chown first: it clears setuid/setgid bits, which fchmod then restores.
    if privileged:
        os.fchown(fd, entry.uid, entry.gid)
    os.fchmod(fd, entry.mode & 0o7777)
    for key, value in entry.xattrs:
        if privileged or key.startswith("user."):
            with contextlib.suppress(OSError):
                os.setxattr(fd, key, value)
    os.utime(fd, (entry.mtime, entry.mtime))


def _apply_path(path: str, entry: Entry, privileged: bool) -> None:
    if privileged:
        os.lchown(path, entry.uid, entry.gid)
    os.chmod(path, entry.mode & 0o7777)
    _set_xattrs(path, entry, privileged)
    os.utime(path, (entry.mtime, entry.mtime))


class _Builder:
    """Materialises a merged entry list under one temp directory."""

    def __init__(self, store: Store, dest: Path, root: str, reporter: Reporter) -> None:
        self.objects = str(store.objects_dir) + "/"
        self.privileged = store.privileged
        self.dest = dest
        self.root = root
        self.reporter = reporter
        self.copier: _Copier | None = None

    def build(self, entries: list[Entry]) -> CheckoutResult:
        """Create the directories, then files and links, then fix directory metadata deepest
        first."""
        root, privileged = self.root + "/", self.privileged
        mkdir, symlink = os.mkdir, os.symlink
        dirs: list[Entry] = []
        files: list[Entry] = []
        others: list[Entry] = []
        for e in entries:
            kind = e.kind
            if kind is _FILE:
                files.append(e)
            elif kind is _DIR:
                if e.path:
                    mkdir(root + e.path, 0o700)
                dirs.append(e)
            else:
                others.append(e)
        self._files(files)
        links = skipped = 0
        for e in others:
            if e.kind is _SYMLINK:
                target = root + e.path
                if not self._link_symlink(e, target):
                    symlink(e.target, target)
                    if privileged:
                        os.lchown(target, e.uid, e.gid)
                    os.utime(target, (e.mtime, e.mtime), follow_symlinks=False)
                links += 1
            elif not self._node(e):
                skipped += 1
        for e in reversed(dirs):
            _apply_path(root + e.path if e.path else self.root, e, privileged)
        if skipped:
            progress.warn(
                self.reporter,
                f"{skipped} device nodes were not created in {self.dest}: that needs root",
                skipped=skipped,
            )
        return CheckoutResult(len(files), len(dirs), links, self.copier is not None, skipped)

    def _link_symlink(self, e: Entry, dest: str) -> bool:
        """Hardlink the store's symlink object for E at DEST, as cp -al would; False when
        there is none (or it cannot be linked here), so the caller makes the symlink."""
        name = symlink_object(e) if self.copier is None else ""
        if not name:
            return False
        try:
            os.link(self._object(name), dest, follow_symlinks=False)
        except OSError:
            return False
        return True

    def _object(self, name: str) -> str:
        return self.objects + object_relpath(name)

    def _src(self, e: Entry) -> str:
        return self._object(e.obj)

    def _files(self, files: list[Entry]) -> None:
        """Hardlink FILES; the first link tells whether DEST can share the store's inodes."""
        if not files:
            return
        self._one_file(files[0])
        rest = files[1:]
        if self.copier is not None or len(rest) < LINK_THREAD_MIN:
            for e in rest:
                self._one_file(e)
            return
        # link(2) waits on the filesystem, not on Python: two threads nearly halve the time.
        # (A bare thread, not concurrent.futures: importing that costs a checkout 10 ms.)
        import threading  # only here: a small checkout does not load it

        half = len(rest) // 2
        other: list[list[Entry] | BaseException] = []

        def link_upper() -> None:
            try:
                other.append(self._link_chunk(rest[half:]))
            except BaseException as e:  # re-raised below, in the caller's thread
                other.append(e)

        thread = threading.Thread(target=link_upper, name="checkout-link", daemon=True)
        thread.start()
        try:
            failed = self._link_chunk(rest[:half])
        finally:
            thread.join()
        if isinstance(other[0], BaseException):
            raise other[0]
        failed += other[0]
        for e in failed:  # each gets the sequential treatment: an error or the copy fallback
            self._one_file(e)

    def _link_chunk(self, chunk: list[Entry]) -> list[Entry]:
        link, root, failed = os.link, self.root + "/", []
        for e in chunk:
            try:
                link(self._src(e), root + e.path)
            except OSError:
                failed.append(e)
        return failed

    def _one_file(self, e: Entry) -> None:
        src = self._src(e)
        if self.copier is not None:
            self._copy(src, e)
            return
        try:
            os.link(src, self.root + "/" + e.path)
        except OSError as err:
            self._link_failed(err, src, e)

    def _link_failed(self, err: OSError, src: str, entry: Entry) -> None:
        if isinstance(err, FileNotFoundError):
            raise self._missing(entry) from err
        reason = _LINK_FALLBACK.get(err.errno or 0)
        if reason is None:
            raise err
        progress.warn(
            self.reporter,
            f"checkout copies files because {reason.format(dest=self.dest)}",
            dest=str(self.dest),
        )
        self.copier = _Copier(self.privileged)
        self._copy(src, entry)

    def _copy(self, src: str, entry: Entry) -> None:
        assert self.copier is not None
        try:
            self.copier.put(src, self.root + "/" + entry.path, entry)
        except FileNotFoundError as err:
            raise self._missing(entry) from err

    def _missing(self, entry: Entry) -> CheckoutError:
        return CheckoutError(
            f"object {entry.obj} for /{entry.path} is missing from the store", hint=MISSING_HINT
        )

    def _node(self, e: Entry) -> bool:
        """Make a device node or FIFO; False if a device was skipped for lack of privilege."""
        path = self.root + "/" + e.path
        if e.kind is EntryKind.FIFO:
            os.mkfifo(path, 0o600)  # needs no privilege, unlike device nodes
        elif self.privileged:
            os.mknod(path, 0o600 | _NODE_TYPES[e.kind], os.makedev(*e.rdev))
        else:
            return False
        if self.privileged:
            os.lchown(path, e.uid, e.gid)
        os.chmod(path, e.mode & 0o7777)  # mknod's mode is cut by the umask
        _set_xattrs(path, e, self.privileged)
        os.utime(path, (e.mtime, e.mtime))
        return True


def checkout(
    store: Store, layers: Sequence[tuple[str, LayerTree]], dest: Path, reporter: Reporter
) -> CheckoutResult:
    """Check the union of LAYERS out at DEST, which must not exist yet."""
    if os.path.lexists(dest):
        raise CheckoutError(
            f"cannot check out into {dest}: it already exists",
            hint="remove it or choose another destination",
        )
    if not dest.parent.is_dir():
        raise CheckoutError(
            f"cannot check out into {dest}: {dest.parent} is not a directory",
            hint="create the parent directory first",
        )
    with collector_paused():
        entries = merge(layers)
    progress.step(reporter, f"checking out {len(entries)} entries into {dest}", dest=str(dest))
    tmp = tmp_name(dest.parent, dest.name)
    try:
        os.mkdir(tmp, 0o700)
        with collector_paused():
            result = _Builder(store, dest, str(tmp), reporter).build(entries)
        if os.path.lexists(dest):
            raise CheckoutError(
                f"cannot check out into {dest}: it appeared meanwhile",
                hint="another command made it; remove it or choose another destination",
            )
        os.rename(tmp, dest)
    except OSError as e:
        remove_tree(tmp)
        where = str(e.filename or dest).replace(str(tmp), str(dest), 1)
        raise CheckoutError(
            f"cannot check out into {dest}: {where}: {e.strerror}",
            hint="check the free space and permissions of the destination",
        ) from e
    except BaseException:
        remove_tree(tmp)
        raise
    progress.task_done(reporter, f"checkout {dest}", f"checked out {result.files} files")
    return result
