"""Read-only image mounts: a cached checkout per image, bind-mounted read-only and pinned.

Scanners such as OpenSCAP want an image's files at a path without running it.
The image is checked out once, then bind-mounted read-only onto each target.
Layout under the mounts directory (``Paths.mounts``)::

    mounts/                     mode 0700: checkouts hold setuid files
      MANIFESTHEX/rootfs        the checkout that backs every mount of that image; itself
                                a bind mount with VIEW_OPTIONS, made where no user can reach
      TARGETHASH.json           {"target": "/abs/dir", "manifest": "sha256:…"}, one per
                                mount; TARGETHASH = sha256 of the resolved target path

The image is untrusted, so the view is ``ro,nosuid,nodev,noexec``: its setuid files
do not raise anyone's privileges, its device nodes open nothing, and none of its
programs run from the view (a scanner reads files; running an image is what
``install`` and ``run`` are for). A bind mount copies the flags of the mount it
binds, so the target is bound from the already restricted mount at rootfs and is
never, even for an instant, a writable or setuid view.

Each mount also pins its image in the store (``mount:/abs/dir``) so that prune
and delete see it in use. The plan functions are pure; ``mount_image`` and
``unmount_image`` observe the system, plan, then act. Call them under the
store's exclusive lock.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from syscontainers import progress
from syscontainers.checkout import checkout
from syscontainers.errors import CheckoutError, CommandError, ManifestError
from syscontainers.fsutil import atomic_write, read_bytes_if_exists, remove_tree
from syscontainers.hashing import sha256
from syscontainers.oci import check_digest, digest_hex
from syscontainers.process import run
from syscontainers.progress import Reporter
from syscontainers.record import record
from syscontainers.store import Store
from syscontainers.tree import LayerTree

MOUNTINFO = Path("/proc/self/mountinfo")
ROOT_HINT = "mounting needs root (CAP_SYS_ADMIN): run the command as root"
VIEW_OPTIONS = "ro,nosuid,nodev,noexec"

Argv = tuple[str, ...]


@record
class MountRecord:
    """One mount that syscontainers made: where, and of which image."""

    target: str
    manifest: str

    def to_json(self) -> bytes:
        """The record file's content."""
        return json.dumps({"manifest": self.manifest, "target": self.target}).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes, what: str) -> MountRecord:
        """Parse a record file, raising CheckoutError if it is damaged."""
        try:
            doc = json.loads(data)
            target, manifest = doc["target"], doc["manifest"]
            if not isinstance(target, str) or not target.startswith("/"):
                raise ValueError(f"bad target {target!r}")
            return cls(target, check_digest(manifest, what))
        except (ValueError, KeyError, TypeError, ManifestError) as e:
            raise CheckoutError(
                f"mount record {what} is damaged: {e}",
                hint="unmount the directory with umount(8) and remove the record file",
            ) from e


@record
class MountPlan:
    """What mounting an image at a target does, in order."""

    record: MountRecord
    record_path: Path
    pin: str
    rootfs: Path  # the shared checkout to bind-mount
    build_rootfs: bool  # check the image out first (no cached checkout yet)
    commands: tuple[Argv, ...]  # restrict rootfs (once per checkout), then bind it at target


@record
class UnmountPlan:
    """What undoing a mount does, in order."""

    record: MountRecord
    record_path: Path
    pin: str
    commands: tuple[Argv, ...]  # umount target (if mounted), then rootfs (if removed)
    remove: Path | None  # the cached checkout, once no other mount uses it


def record_path(mounts_dir: Path, target: str) -> Path:
    """Where the record for the resolved path TARGET lives."""
    return mounts_dir / f"{sha256(os.fsencode(target)).hexdigest()}.json"


def pin_name(target: str) -> str:
    """The store pin that holds a mount's image."""
    return f"mount:{target}"


def image_dir(mounts_dir: Path, manifest_digest: str) -> Path:
    """The directory holding the cached checkout of MANIFEST_DIGEST."""
    return mounts_dir / digest_hex(manifest_digest)


def _restrict(path: str) -> Argv:
    return ("mount", "-o", f"remount,bind,{VIEW_OPTIONS}", path)


def plan_mount(
    mounts_dir: Path,
    manifest_digest: str,
    target: str,
    rootfs_exists: bool,
    rootfs_mounted: bool = False,
) -> MountPlan:
    """Plan a read-only mount of MANIFEST_DIGEST at the resolved path TARGET; MOUNTS_DIR is
    resolved, ROOTFS_MOUNTED says whether the checkout is already its restricted bind mount."""
    rootfs = image_dir(mounts_dir, manifest_digest) / "rootfs"
    restrict_rootfs: tuple[Argv, ...] = ()
    if not rootfs_mounted:
        restrict_rootfs = (("mount", "--bind", str(rootfs), str(rootfs)), _restrict(str(rootfs)))
    return MountPlan(
        record=MountRecord(target, manifest_digest),
        record_path=record_path(mounts_dir, target),
        pin=pin_name(target),
        rootfs=rootfs,
        build_rootfs=not rootfs_exists,
        # the second remount changes nothing when the bind kept rootfs's flags: a safeguard
        commands=(*restrict_rootfs, ("mount", "--bind", str(rootfs), target), _restrict(target)),
    )


def plan_unmount(
    mounts_dir: Path,
    record: MountRecord,
    mounted: bool,
    others: Iterable[MountRecord],
    rootfs_mounted: bool = False,
) -> UnmountPlan:
    """Plan undoing RECORD's mount; OTHERS are the remaining records."""
    shared = any(o.manifest == record.manifest for o in others if o.target != record.target)
    commands: tuple[Argv, ...] = (("umount", record.target),) if mounted else ()
    remove = None if shared else image_dir(mounts_dir, record.manifest)
    if remove is not None and rootfs_mounted:
        commands += (("umount", str(remove / "rootfs")),)
    return UnmountPlan(
        record=record,
        record_path=record_path(mounts_dir, record.target),
        pin=pin_name(record.target),
        commands=commands,
        remove=remove,
    )


_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


def mount_points(mountinfo: str) -> set[str]:
    """The mount points listed in a /proc/PID/mountinfo text (escapes decoded)."""
    points = set()
    for line in mountinfo.splitlines():
        fields = line.split(" ")
        if len(fields) > 4:
            points.add(_OCTAL_ESCAPE.sub(lambda m: chr(int(m[1], 8)), fields[4]))
    return points


# ---- acting -----------------------------------------------------------------


def _check_empty_dir(target: Path, image_label: str) -> None:
    if not target.is_dir():
        raise CheckoutError(
            f"cannot mount {image_label} at {target}: it is not an existing directory",
            hint=f"create an empty directory first: mkdir {target}",
        )
    if os.listdir(target):
        raise CheckoutError(
            f"cannot mount {image_label} at {target}: the directory is not empty",
            hint="mount onto an empty directory, so that nothing is hidden under the mount",
        )


def _records(mounts_dir: Path) -> list[MountRecord]:
    if not mounts_dir.is_dir():
        return []
    out = []
    for name in sorted(os.listdir(mounts_dir)):
        if name.endswith(".json") and not name.startswith("."):
            data = read_bytes_if_exists(mounts_dir / name)
            if data is not None:
                out.append(MountRecord.from_json(data, str(mounts_dir / name)))
    return out


def _run_all(commands: Sequence[Argv], failure: str, hint: str) -> None:
    for argv in commands:
        try:
            run(argv, hint=hint)
        except CommandError as e:
            raise CheckoutError(f"{failure}: {e.message}", hint=hint) from e


def _mount_table() -> set[str]:
    return mount_points(MOUNTINFO.read_text(errors="surrogateescape"))


def _is_mounted(path: Path) -> bool:
    return str(path) in _mount_table()


def cached_rootfs_exists(mounts_dir: Path, manifest_digest: str) -> bool:
    """True if a cached checkout of MANIFEST_DIGEST exists (the fact plan_mount needs)."""
    return os.path.isdir(image_dir(mounts_dir, manifest_digest) / "rootfs")


def mount_image(
    store: Store,
    mounts_dir: Path,
    image_label: str,
    manifest_digest: str,
    layers: Sequence[tuple[str, LayerTree]],
    target: Path,
    reporter: Reporter,
) -> None:
    """Mount the image read-only at TARGET, an existing empty directory."""
    resolved = str(target.resolve())
    mounts_dir = mounts_dir.resolve()  # rootfs is compared with the mount table
    if os.path.exists(record_path(mounts_dir, resolved)):
        raise CheckoutError(
            f"{target} already has an image mounted by syscontainers",
            hint=f"run 'syscontainers umount {target}' first",
        )
    _check_empty_dir(target, image_label)
    if os.geteuid() != 0:
        raise CheckoutError(f"cannot mount {image_label} at {target}: not root", hint=ROOT_HINT)
    cached = cached_rootfs_exists(mounts_dir, manifest_digest)
    rootfs = image_dir(mounts_dir, manifest_digest) / "rootfs"
    plan = plan_mount(mounts_dir, manifest_digest, resolved, cached, _is_mounted(rootfs))
    if plan.build_rootfs:
        mounts_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        plan.rootfs.parent.mkdir(mode=0o700, exist_ok=True)
        try:
            checkout(store, layers, plan.rootfs, reporter)
        except BaseException:
            with contextlib.suppress(OSError):
                plan.rootfs.parent.rmdir()
            raise
    progress.step(reporter, f"mounting {image_label} read-only at {target}", target=resolved)
    atomic_write(plan.record_path, plan.record.to_json())
    try:
        store.pin(plan.pin, manifest_digest)
        _run_all(plan.commands, f"cannot mount {image_label} at {target}", ROOT_HINT)
    except BaseException:
        _undo(store, mounts_dir, plan.record)
        raise


def _undo(store: Store, mounts_dir: Path, record: MountRecord) -> None:
    """Roll back a half-made mount without masking the error that caused it."""
    with contextlib.suppress(Exception):
        unmount_image(store, mounts_dir, Path(record.target))


def unmount_image(store: Store, mounts_dir: Path, target: Path) -> str:
    """Undo mount_image at TARGET; returns the manifest digest that was mounted."""
    resolved = str(target.resolve())
    mounts_dir = mounts_dir.resolve()
    path = record_path(mounts_dir, resolved)
    data = read_bytes_if_exists(path)
    if data is None:
        raise CheckoutError(
            f"{target} is not an image mount made by syscontainers",
            hint="pass the directory that 'syscontainers mount' mounted",
        )
    record = MountRecord.from_json(data, str(path))
    points = _mount_table()
    rootfs = image_dir(mounts_dir, record.manifest) / "rootfs"
    others = [r for r in _records(mounts_dir) if r.target != record.target]
    plan = plan_unmount(mounts_dir, record, record.target in points, others, str(rootfs) in points)
    _run_all(
        plan.commands,
        f"cannot unmount {target}",
        f"stop the programs using it (fuser -vm {target}), then try again",
    )
    os.unlink(plan.record_path)
    store.unpin(plan.pin)
    if plan.remove is not None:
        remove_tree(plan.remove)
    return record.manifest
