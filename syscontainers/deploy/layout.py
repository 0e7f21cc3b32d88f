"""The deployment layout: container names, slot directories, info.json and the symlink flip.

On-disk layout under ``Paths.deployments`` (``ROOT/containers``)::

    containers/
      NAME -> NAME.0            the active deployment; switched atomically by making
                                .tmp-NAME-XXXX -> NAME.N and renaming it over NAME
      NAME.0/                   one deployment (slot 0 or 1)
        rootfs/                 hardlink checkout of the image (a symlink with --rootfs;
                                absent for a noContainerService image)
        config.json             the rendered OCI runtime config
        NAME.service            the rendered unit ("" file absent: no service)
        tmpfiles-NAME.conf      the rendered tmpfiles.d lines
        hostfs/PATH             the bytes of each host file as this deployment installs
                                it at /PATH (what rollback and reconcile re-publish)
        info.json               DeploymentInfo: image, id, runtime, kept values, the
                                host-file ledger (files and directories it needs on
                                the host), mode, created, complete, and
                                activating/restart while a switch to it is under way,
                                auto_update (install --auto-update's policy, if given),
                                auto_update_failed (an image auto-update rolled back from)
      NAME.1/                   the other slot: the previous deployment, for rollback
      .tmp-NAME.N-XXXX/         a slot being built; renamed to NAME.N when complete
      .run/                     throwaway bundles of `syscontainers run`
    Paths.unit_dir/NAME.service       the published copy of the active slot's unit
    Paths.tmpfiles_dir/NAME.conf      the published copy of its tmpfiles lines
    store pins container:NAME.N       one per slot directory, so prune keeps the image

A slot is built under a temp name and renamed into place (``complete`` false),
its host files and unit are published, then the symlink flips: the flip is the
commit point. ``complete`` turns true once systemd has taken the new unit and,
when the service is to run (``restart``), it has been started and watched over
the health window. An inactive slot that is not complete is the debris of a
crash and is removed by the next command; an active one that is not complete,
or still ``activating`` (a rollback to it), is finished by it.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

from syscontainers.errors import StoreCorruptError, UsageError
from syscontainers.fsutil import atomic_write, fsync_dir, read_bytes_if_exists, tmp_name
from syscontainers.record import field, record
from syscontainers.render.values import KeptValues
from syscontainers.runtime import RuntimeMode

SLOTS = (0, 1)
INFO = "info.json"
INFO_VERSION = 1
MAX_NAME = 200
RUN_DIR = ".run"
_NAME_CHARS = re.compile(r"[A-Za-z0-9_.:-]+")
_RUNTIME_ID = re.compile(r"[A-Za-z0-9_.-]+")  # what runc accepts as a container id
_NAME_HINT = "use letters, digits, '_', '-' and '.', not starting with '-' or '.'"


def validate_name(name: str) -> str:
    """Return NAME if it can name a container, its unit and its runtime id; else UsageError."""
    problem = name_problem(name)
    if problem:
        raise UsageError(f"invalid container name {name!r}: {problem}", hint=_NAME_HINT)
    return name


def name_problem(name: str) -> str:
    """Why NAME cannot name a container ("" if it can)."""
    if not name:
        return "it is empty"
    if len(name) > MAX_NAME:
        return f"it is longer than {MAX_NAME} characters"
    if "/" in name or ".." in name:
        return "it contains '/' or '..'"
    if any(c.isspace() or ord(c) < 32 or ord(c) == 0x7F for c in name):
        return "it contains whitespace or control characters"
    if name[0] in "-.":
        return "it starts with '-' or '.'"
    if not _NAME_CHARS.fullmatch(name):
        return "it contains characters not valid in a systemd unit name"
    if not _RUNTIME_ID.fullmatch(name):
        return "runc and crun do not accept ':' in a container id"
    if re.search(r"\.\d+$", name):
        return "it ends in '.N', which names a deployment slot"
    if name.endswith(".service"):
        return "it ends in '.service' (the unit name adds that)"
    return ""


def now_utc() -> str:
    """The current time as an ISO 8601 UTC string, for info.json."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@record
class HostFileRecord:
    """One host file in the ledger: where it went, its checksum, and where it came from."""

    path: str  # the host path, absolute ("/etc/app/app.conf")
    sha256: str  # of the content, or of the link target for a symlink
    source: str  # relative to /exports ("hostfs/etc/app/app.conf")
    symlink: bool = False
    mode: int = 0o644

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "path": self.path,
            "sha256": self.sha256,
            "source": self.source,
            "symlink": self.symlink,
            "mode": self.mode,
        }

    @classmethod
    def from_json(cls, doc: Any) -> HostFileRecord:
        """Parse what to_json wrote."""
        if not isinstance(doc, dict) or not isinstance(doc.get("path"), str):
            raise StoreCorruptError("a host-file ledger entry is not an object with a path")
        return cls(
            str(doc["path"]),
            str(doc.get("sha256", "")),
            str(doc.get("source", "")),
            bool(doc.get("symlink", False)),
            int(doc.get("mode", 0o644)),
        )


@record
class HostDirRecord:
    """A directory a deployment needs on the host: an /exports/hostfs directory (renamed),
    or the parent of a host file. Who created it is in the host-file database."""

    path: str
    mode: int = 0o755

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {"path": self.path, "mode": self.mode}

    @classmethod
    def from_json(cls, doc: Any) -> HostDirRecord:
        """Parse what to_json wrote."""
        if not isinstance(doc, dict) or not isinstance(doc.get("path"), str):
            raise StoreCorruptError("a host-directory entry is not an object with a path")
        return cls(str(doc["path"]), int(doc.get("mode", 0o755)))


@record
class DeploymentInfo:
    """What info.json records about one deployment."""

    name: str
    slot: int
    image: str  # the image as the user gave it (IMAGE_NAME)
    ref: str  # what to resolve in the store to find the image again
    source: str  # a transport string to pull updates from, or "" for a store-only image
    image_id: str  # the manifest digest
    runtime: str  # the runtime setting, e.g. "/usr/sbin/runc" or "/usr/bin/crun --x"
    kept: KeptValues
    mode: RuntimeMode = RuntimeMode.FOREGROUND
    service: bool = True  # False for a noContainerService image
    host_files: tuple[HostFileRecord, ...] = ()
    host_dirs: tuple[str, ...] = ()  # before the host-file database: directories it made
    host_directories: tuple[HostDirRecord, ...] = ()
    created: str = field(default_factory=now_utc)
    complete: bool = False  # its first activation finished (false: a slot still being made)
    # A switch to this slot began and has not ended: a crash leaves it for the next command
    # to finish (the same way, health gate included). RESTART: the service is to run after it.
    activating: bool = False
    restart: bool = False
    # the auto-update policy install --auto-update gave ("": the image's label decides)
    auto_update: str = ""
    # the image auto-update tried and rolled back from this deployment: not tried again
    auto_update_failed: str = ""

    def to_json(self) -> dict[str, Any]:
        """The JSON form written to info.json."""
        return {
            "version": INFO_VERSION,
            "name": self.name,
            "slot": self.slot,
            "image": self.image,
            "ref": self.ref,
            "source": self.source,
            "image_id": self.image_id,
            "runtime": self.runtime,
            "values": self.kept.to_json(),
            "mode": self.mode.value,
            "service": self.service,
            "host_files": [h.to_json() for h in self.host_files],
            "host_dirs": list(self.host_dirs),
            "host_directories": [d.to_json() for d in self.host_directories],
            "created": self.created,
            "complete": self.complete,
            "activating": self.activating,
            "restart": self.restart,
            "auto_update": self.auto_update,
            "auto_update_failed": self.auto_update_failed,
        }

    @classmethod
    def from_json(cls, doc: Any, what: str) -> DeploymentInfo:
        """Parse info.json; StoreCorruptError names WHAT when it is malformed."""
        try:
            return cls(
                name=str(doc["name"]),
                slot=int(doc["slot"]),
                image=str(doc["image"]),
                ref=str(doc.get("ref", doc["image"])),
                source=str(doc.get("source", "")),
                image_id=str(doc["image_id"]),
                runtime=str(doc["runtime"]),
                kept=KeptValues.from_json(doc.get("values")),
                mode=RuntimeMode(doc.get("mode", "foreground")),
                service=bool(doc.get("service", True)),
                host_files=tuple(HostFileRecord.from_json(h) for h in doc.get("host_files", [])),
                host_dirs=tuple(str(d) for d in doc.get("host_dirs", [])),
                host_directories=tuple(
                    HostDirRecord.from_json(d) for d in doc.get("host_directories", [])
                ),
                created=str(doc.get("created", "")),
                complete=bool(doc.get("complete", False)),
                activating=bool(doc.get("activating", False)),
                restart=bool(doc.get("restart", False)),
                auto_update=str(doc.get("auto_update", "")),
                auto_update_failed=str(doc.get("auto_update_failed", "")),
            )
        except (KeyError, TypeError, ValueError, StoreCorruptError) as e:
            raise StoreCorruptError(
                f"{what} is damaged: {e}",
                hint="uninstall the container and install it again",
            ) from e


@record
class ContainerDir:
    """The paths of one container's deployments under the deployments directory."""

    base: Path
    name: str

    @property
    def link(self) -> Path:
        """The NAME symlink to the active slot."""
        return self.base / self.name

    @property
    def unit_name(self) -> str:
        """The systemd unit name."""
        return f"{self.name}.service"

    def slot_dir(self, slot: int) -> Path:
        """NAME.SLOT."""
        return self.base / f"{self.name}.{slot}"

    def pin(self, slot: int) -> str:
        """The store pin that holds SLOT's image."""
        return f"container:{self.name}.{slot}"

    def new_temp(self, slot: int) -> Path:
        """A fresh temp directory path to build SLOT in."""
        return tmp_name(self.base, f"{self.name}.{slot}")

    def temps(self) -> list[Path]:
        """Temp slots and temp symlinks of this container (debris of a crash)."""
        pattern = re.compile(rf"\.tmp-{re.escape(self.name)}(\.\d+)?-[0-9a-f]{{12}}")
        try:
            names = os.listdir(self.base)
        except FileNotFoundError:
            return []
        return sorted(self.base / n for n in names if pattern.fullmatch(n))

    def present_slots(self) -> list[int]:
        """The slots whose directory exists (or is a dangling link)."""
        return [s for s in SLOTS if os.path.lexists(self.slot_dir(s))]

    def exists(self) -> bool:
        """True if anything of this container is on disk under the deployments directory."""
        return os.path.lexists(self.link) or bool(self.present_slots()) or bool(self.temps())


def slot_files(cd: ContainerDir, slot_dir: Path) -> dict[str, Path]:
    """The rendered files inside a slot directory, by role."""
    return {
        "config": slot_dir / "config.json",
        "unit": slot_dir / cd.unit_name,
        "tmpfiles": slot_dir / f"tmpfiles-{cd.name}.conf",
        "hostfs": slot_dir / "hostfs",
        "rootfs": slot_dir / "rootfs",
    }


def active_slot(cd: ContainerDir) -> int | None:
    """The slot the NAME symlink points at, or None if there is none."""
    try:
        target = os.readlink(cd.link)
    except (FileNotFoundError, OSError):
        return None
    for slot in SLOTS:
        if target == f"{cd.name}.{slot}":
            return slot
    raise StoreCorruptError(
        f"{cd.link} points at {target!r}, not at a deployment of {cd.name}",
        hint=f"remove the link, then run 'syscontainers uninstall {cd.name}'",
    )


def read_info(slot_dir: Path) -> DeploymentInfo | None:
    """The info.json of a slot directory, or None if it has none (a half-built slot).

    A damaged one is a StoreCorruptError that names the file and says how to repair it.
    """
    path = slot_dir / INFO
    try:
        data = read_bytes_if_exists(path)
    except OSError as e:
        raise damaged_info(path, e.strerror or str(e)) from e
    if data is None:
        return None
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise damaged_info(path, f"not valid JSON ({e})") from e
    try:
        return DeploymentInfo.from_json(doc, str(path))
    except StoreCorruptError as e:
        cause = e.__cause__
        raise damaged_info(
            path, f"no {cause}" if isinstance(cause, KeyError) else str(cause or e)
        ) from e


def damaged_info(path: Path, detail: str) -> StoreCorruptError:
    """The error for a deployment record at PATH (…/NAME.N/info.json) that cannot be read."""
    deployment = path.parent.name
    name = deployment.rpartition(".")[0] or deployment
    return StoreCorruptError(
        f"the record of deployment {deployment} is damaged: {path}: {detail}",
        hint=f"repair or restore {path} (the other slot's info.json shows the format), or "
        f"run 'syscontainers uninstall {name}' and install it again (uninstall leaves in "
        "place the host files it can no longer tell apart)",
    )


def info_or_none(cd: ContainerDir, slot: int) -> DeploymentInfo | None:
    """read_info that treats a damaged info.json like a missing one (for cleanup paths)."""
    try:
        return read_info(cd.slot_dir(slot))
    except StoreCorruptError:
        return None


def slot_info(cd: ContainerDir, slot: int | None) -> DeploymentInfo | None:
    """SLOT's info (None for no slot or a half-built one); damage raises StoreCorruptError."""
    return read_info(cd.slot_dir(slot)) if slot is not None else None


def write_info(slot_dir: Path, info: DeploymentInfo) -> None:
    """Publish info.json in SLOT_DIR atomically."""
    data = json.dumps(info.to_json(), indent=2, sort_keys=True) + "\n"
    atomic_write(slot_dir / INFO, data.encode())


def flip(cd: ContainerDir, slot: int) -> None:
    """Point NAME at NAME.SLOT atomically: a new symlink renamed over the old one."""
    tmp = tmp_name(cd.base, cd.name)
    os.symlink(f"{cd.name}.{slot}", tmp)
    try:
        os.rename(tmp, cd.link)
    except BaseException:
        os.unlink(tmp)
        raise
    fsync_dir(cd.base)


def container_names(base: Path) -> list[str]:
    """Names of containers with an active-deployment symlink, sorted."""
    try:
        entries = sorted(os.scandir(base), key=lambda e: e.name)
    except FileNotFoundError:
        return []
    return [e.name for e in entries if e.is_symlink() and not name_problem(e.name)]


def half_installed_names(base: Path) -> list[str]:
    """Names that have slot directories but no symlink (a crashed install), sorted."""
    try:
        names = os.listdir(base)
    except FileNotFoundError:
        return []
    linked = set(container_names(base))
    found = set()
    for entry in names:
        stem, dot, slot = entry.rpartition(".")
        if dot and slot.isdigit() and int(slot) in SLOTS and not name_problem(stem):
            found.add(stem)
    return sorted(found - linked)


def run_dir(base: Path) -> Path:
    """Where `syscontainers run` makes its throwaway bundles."""
    return base / RUN_DIR
