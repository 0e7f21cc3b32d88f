"""Moving a container's host files and directories to what one deployment needs.

``sync`` is the one way install, update, rollback, reconcile and uninstall
change the host's files: it reads the host-file database (``deploy.hostdb``,
rebuilt from the ledgers when it is missing), the checksums on the host and the
ledgers of the container's slots, plans purely (``deploy.hostplan``), refuses
conflicts naming both owners, checks that every directory it will write to is
writable, records the new claims (intent), writes, removes, and records the
final state. All of it runs under the store's exclusive lock, which every
caller holds. ``strict`` is for moving forward; the cleanup paths (restoring
after a failure, discarding debris, uninstall) pass False: then a conflict or a
path that cannot be reached safely is left alone, and a failed removal is
reported and kept instead of stopping the cleanup.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from syscontainers import progress
from syscontainers.deploy import hostdb, hostfiles
from syscontainers.deploy.hostdb import BESIDE_SUFFIX, HostDB, Kind
from syscontainers.deploy.hostplan import Conflict, HostPlan, plan
from syscontainers.deploy.layout import (
    ContainerDir,
    DeploymentInfo,
    HostDirRecord,
    HostFileRecord,
    active_slot,
    container_names,
    half_installed_names,
    info_or_none,
    slot_files,
)
from syscontainers.errors import CheckoutError
from syscontainers.fsutil import host_error
from syscontainers.operations.host import Host
from syscontainers.paths import Paths
from syscontainers.record import replace


def load_db(paths: Paths) -> HostDB:
    """The host-file database, or one rebuilt from every container's ledgers."""
    db = hostdb.load(hostdb.db_path(paths.root))
    return db if db is not None else hostdb.seed(_all_infos(paths))


def _all_infos(paths: Paths) -> list[DeploymentInfo]:
    base = paths.deployments
    found: list[DeploymentInfo] = []
    for name in (*container_names(base), *half_installed_names(base)):
        cd = ContainerDir(base, name)
        slot = active_slot(cd)
        slots = sorted(cd.present_slots(), key=lambda s: s != slot)
        found += [i for i in (info_or_none(cd, s) for s in slots) if i is not None]
    return found


def conflict_error(name: str, conflicts: Sequence[Conflict]) -> CheckoutError:
    """The error for host paths container NAME cannot have."""
    parts = []
    for c in conflicts:
        by = (
            f" (owned by {', '.join(c.owners)}, and {name} ships other content)"
            if c.owners
            else f" {c.why}"
        )
        parts.append(f"{c.path}{by}")
    owned = [o for c in conflicts for o in c.owners]
    hint = (
        (
            f"uninstall {', '.join(sorted(set(owned)))} first, or install {name}'s files "
            "elsewhere with renameFiles and --set"
        )
        if owned
        else "move it away, or install the image's files elsewhere with renameFiles and --set"
    )
    return CheckoutError(
        f"container {name}: cannot install host path(s) {'; '.join(parts)}", hint=hint
    )


def sync(
    host: Host, cd: ContainerDir, target: DeploymentInfo | None, strict: bool = True
) -> HostPlan:
    """Make CD's host files those of TARGET (None: none at all); see the module docstring."""
    db = load_db(host.paths)
    root = host.paths.host_root
    files = target.host_files if target is not None else ()
    dirs = target.host_directories if target is not None else ()
    current, ours = _survey(host, cd, db, files, dirs, strict)
    todo = plan(cd.name, files, dirs, db, current, ours)
    if todo.conflicts and strict:
        raise conflict_error(cd.name, todo.conflicts)
    if strict:
        hostfiles.check_writable(root, todo.targets)
    path = hostdb.db_path(host.paths.root)
    intent = _save(path, db, db.with_entries(todo.intent))
    if todo.writes:
        progress.step(host.reporter, f"installing {len(todo.writes)} host file(s) of {cd.name}")
    hostfs = slot_files(cd, cd.slot_dir(target.slot))["hostfs"] if target is not None else None
    failed = _apply(host, root, hostfs, todo, strict)
    _save(path, intent, db.with_entries(todo.final))
    if failed:
        todo = replace(
            todo,
            removes=tuple(p for p in todo.removes if p not in failed),
            kept=(*todo.kept, *failed),
        )
    _report(host, cd.name, todo)
    return todo


def _survey(
    host: Host,
    cd: ContainerDir,
    db: HostDB,
    files: Sequence[HostFileRecord],
    dirs: Sequence[HostDirRecord],
    strict: bool,
) -> tuple[dict[str, str | None], dict[str, frozenset[str]]]:
    """The checksums on the host of every path involved (and of each PATH.syscontainers-new),
    and the checksums every slot of CD ships for each path."""
    owned = db.owned_by(cd.name)
    file_paths = {r.path for r in files} | {e.path for e in owned if e.kind is not Kind.DIR}
    probe = file_paths | {p + BESIDE_SUFFIX for p in file_paths}
    probe |= {d.path for d in dirs} | {e.path for e in owned if e.kind is Kind.DIR}
    current = hostfiles.checksums(host.paths.host_root, sorted(probe), strict)
    ours: dict[str, frozenset[str]] = {}
    for slot in cd.present_slots():
        info = info_or_none(cd, slot)
        for rec in info.host_files if info is not None else ():
            ours[rec.path] = ours.get(rec.path, frozenset()) | {rec.sha256}
    return current, ours


def _save(path: Path, old: HostDB, new: HostDB) -> HostDB:
    """Save NEW unless it is OLD, which is already on disk."""
    if new != old or not path.exists():
        hostdb.save(path, new)
    return new


def _apply(host: Host, root: Path, hostfs: Path | None, todo: HostPlan, strict: bool) -> list[str]:
    """Carry TODO out; return the paths that could not be removed."""
    for d in sorted(todo.mkdirs, key=lambda d: d.path.count("/")):
        with _naming(root, d.path):
            hostfiles.make_dir(root, d)
        host.crashpoint("host-path-changed")
    for w in todo.writes:
        assert hostfs is not None
        with _naming(root, w.dest):
            hostfiles.install_file(root, hostfs, w.rec, w.dest)
        host.crashpoint("host-path-changed")
    failed: list[str] = []
    for path in todo.removes:
        try:
            with _naming(root, path):
                hostfiles.remove_file(root, path)
        except CheckoutError as e:
            if strict:
                raise
            progress.warn(host.reporter, e.message, path=path)
            failed.append(path)
        host.crashpoint("host-path-changed")
    hostfiles.remove_empty_dirs(root, todo.rmdirs)
    return failed


@contextmanager
def _naming(root: Path, path: str) -> Iterator[None]:
    """Turn an OSError in the body into an error that names host path PATH."""
    try:
        yield
    except OSError as e:
        error = host_error(
            e, root / path.lstrip("/"), f"changing host path {path}", "run the command again"
        )
        raise error or CheckoutError(
            f"cannot change host path {path}: {e.strerror or e}",
            hint=f"check {path} on the host, then run the command again",
        ) from e


def _report(host: Host, name: str, todo: HostPlan) -> None:
    for path in todo.kept:
        progress.warn(
            host.reporter,
            f"kept {path}: it was changed on the host, so {name} neither replaced nor removed it",
            path=path,
        )
    for w in todo.beside:
        progress.warn(
            host.reporter,
            f"kept the host's {w.rec.path}: {name}'s version is installed beside it as {w.dest}",
            path=w.rec.path,
        )
    for path in todo.shared:
        progress.step(host.reporter, f"left {path}: other containers still use it")
