"""Checkout: the union of an image's layers, materialised as a directory of hardlinks.

``merge`` (pure, in its own module) folds the layer trees into one parent-first entry
list; ``checkout`` builds that list in a temp sibling of the destination and renames it
into place, so a failed checkout leaves nothing behind under the final name.

Regular files are hardlinks of store objects, which already carry their mode,
owner and xattrs (their mtime is the object's, shared by every checkout); so are
symlinks, where the store holds a symlink object (see ``store.objects``), else they
are made in place. A large tree is made by two processes at once (see ``forked``).
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
from operator import countOf, itemgetter  # C loops: an Enum's hash is Python code
from pathlib import Path

from syscontainers import forked, progress
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

FORK_MIN = 1024  # below this many entries, forking a second process costs more than it saves
# Above this many, one process makes them all: the child writes to the pages it reads (their
# reference counts), so it holds a private copy of about 0.23 MB per 1,000 entries (23 MB
# at this bound), which a million-file tree would pay in hundreds of megabytes.
FORK_MAX = 100_000
_FILE, _DIR, _SYMLINK = EntryKind.FILE, EntryKind.DIR, EntryKind.SYMLINK
_kind_of = itemgetter(1)  # Entry.kind, from the tuple
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
        self.skipped = 0  # device nodes not made

    def build(self, entries: list[Entry]) -> CheckoutResult:
        """Make every entry in order (parents first), then fix directory metadata deepest
        first. Entries up to the first file are made one by one: that link tells whether
        DEST can share the store's inodes. If it can, the rest go through ``_fast`` (and if
        there are many, a forked child makes the second half of them while this process
        makes the first: ``forked`` says why not threads); what fails there is made again
        afterwards, in order, by ``_make``, which reports errors and takes fallbacks."""
        n = len(entries)
        start = next((i + 1 for i, e in enumerate(entries) if e.kind is _FILE), n)
        for e in entries[:start]:
            self._make(e)
        done = n  # the directories from here on have their metadata
        if self.copier is not None:  # every entry is copied
            failed = list(range(start, n))
        elif FORK_MIN <= n - start <= FORK_MAX and forked.can_fork():
            cut = start + (n - start) * 52 // 100  # the child also pays for its fork
            made = self._premake(entries[cut].path)
            failed = forked.in_two(
                lambda: self._child(entries, cut, made),
                lambda: self._fast(entries, start, cut, made),
            )
            done = n if n in failed else cut
        else:
            failed = self._fast(entries, start, n, set())
        for i in sorted(failed):
            if i < n:
                self._make(entries[i])
        self._dir_metadata(entries, 0, done)
        if self.skipped:
            progress.warn(
                self.reporter,
                f"{self.skipped} device nodes were not created in {self.dest}: that needs root",
                skipped=self.skipped,
            )
        files, dirs, links = (countOf(map(_kind_of, entries), k) for k in (_FILE, _DIR, _SYMLINK))
        return CheckoutResult(files, dirs, links, self.copier is not None, self.skipped)

    def _child(self, entries: list[Entry], cut: int, made: set[str]) -> list[int]:
        """The forked child's half: ENTRIES[CUT:], then, if all of it was made, the metadata
        of its directories (nothing else is made in them: their entries come after them).
        The indices that failed; len(ENTRIES) among them if the metadata is left to do."""
        n = len(entries)
        failed = self._fast(entries, cut, n, made)
        if failed:
            return [*failed, n]
        try:
            self._dir_metadata(entries, cut, n)
        except OSError:
            return [n]
        return []

    def _dir_metadata(self, entries: list[Entry], start: int, stop: int) -> None:
        """Give the directories of ENTRIES[START:STOP] their mode, owner, xattrs and mtime,
        deepest first (a directory without write or search permission for its owner would
        stop an unprivileged checkout from reaching below it)."""
        root, privileged = self.root, self.privileged
        for e in reversed([e for e in entries[start:stop] if e.kind is _DIR]):
            _apply_path(f"{root}/{e.path}" if e.path else root, e, privileged)

    def _premake(self, path: str) -> set[str]:
        """Make the directories above PATH that are not there yet, so that the child, which
        starts at PATH, need not wait for this process to reach them: the ones made."""
        made: set[str] = set()
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            above = "/".join(parts[:i])
            try:
                os.mkdir(f"{self.root}/{above}", 0o700)
            except FileExistsError:
                continue
            made.add(above)
        return made

    def _fast(self, entries: list[Entry], start: int, stop: int, made: set[str]) -> list[int]:
        """Make ENTRIES[START:STOP] that need one system call (directories, files, symlinks
        with a symlink object) and skip the directories in MADE; the indices of the others
        and of those that failed, for ``_make``. A failure can be an entry whose parent the
        other process had not made yet."""
        link, mkdir, root, objects = os.link, os.mkdir, self.root + "/", self.objects
        failed = []
        for i in range(start, stop):
            e = entries[i]
            kind = e.kind
            try:
                if kind is _FILE:
                    link(objects + object_relpath(e.obj), root + e.path)
                elif kind is _DIR:
                    if e.path not in made:
                        mkdir(root + e.path, 0o700)
                elif kind is _SYMLINK and (name := symlink_object(e)):
                    link(objects + object_relpath(name), root + e.path, follow_symlinks=False)
                else:
                    failed.append(i)
            except OSError:
                failed.append(i)
        return failed

    def _make(self, e: Entry) -> None:
        """Make E, whatever its kind, with every fallback (the slow path)."""
        kind, path = e.kind, f"{self.root}/{e.path}"
        if kind is _FILE:
            self._one_file(e)
        elif kind is _DIR:
            if e.path:
                os.mkdir(path, 0o700)
        elif kind is _SYMLINK:
            if not self._link_symlink(e, path):
                os.symlink(e.target, path)
                if self.privileged:
                    os.lchown(path, e.uid, e.gid)
                os.utime(path, (e.mtime, e.mtime), follow_symlinks=False)
        elif not self._node(e):
            self.skipped += 1

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
