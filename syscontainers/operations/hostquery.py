"""``hostfiles owner``, ``hostfiles list`` and ``hostfiles verify``: the host-file database read.

``owner`` answers which containers own a host path (rpm -qf), also for a
``PATH.syscontainers-new`` copy; ``list`` shows every path a container owns;
``verify`` compares what is on the host with what the database says (rpm -V):
a file is ``ok``, ``missing``, ``modified`` (other bytes) or ``replaced`` (a
directory or device where a file belongs, or the other way round). For a file
whose host version was kept, the container's copy beside it is what is checked.
All three read under the store's shared lock and change nothing.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from enum import Enum
from typing import Any

from syscontainers.deploy import hostfiles
from syscontainers.deploy.hostdb import Entry, Kind, State
from syscontainers.deploy.layout import ContainerDir, validate_name
from syscontainers.errors import ContainerNotFoundError, UsageError
from syscontainers.operations.hostsync import load_db
from syscontainers.paths import Paths
from syscontainers.record import record
from syscontainers.store import Store
from syscontainers.store.lock import LockMode


class Status(Enum):
    """What verify found at a host path."""

    OK = "ok"
    MISSING = "missing"
    MODIFIED = "modified"
    REPLACED = "replaced"


@record
class HostPath:
    """One host path of the database, as the queries show it."""

    path: str  # the database's path
    kind: Kind
    owners: tuple[str, ...]
    created: bool  # made by a container (else it was on the host before)
    beside: str = ""  # where the owners' version is when the host kept its own file
    status: Status | None = None  # verify's finding

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        doc: dict[str, Any] = {
            "path": self.path,
            "kind": self.kind.value,
            "owners": list(self.owners),
            "created": self.created,
            "beside": self.beside,
        }
        if self.status is not None:
            doc["status"] = self.status.value
        return doc


def _row(entry: Entry, status: Status | None = None) -> HostPath:
    beside = any(c.state is State.BESIDE for c in entry.claims)
    return HostPath(
        entry.path,
        entry.kind,
        entry.owners,
        entry.created,
        entry.beside_path if beside else "",
        status,
    )


def _clean(path: str) -> str:
    if not path.startswith("/"):
        raise UsageError(
            f"{path!r} is not an absolute host path",
            hint="give host paths from the root, e.g. /etc/app.conf",
        )
    return posixpath.normpath(path)


def owners(store: Store, paths: Paths, asked: Sequence[str]) -> dict[str, HostPath | None]:
    """The database entry each of ASKED belongs to (None: no container owns it)."""
    wanted = [_clean(p) for p in asked]
    with store.locked(LockMode.SHARED):
        db = load_db(paths)
    out: dict[str, HostPath | None] = {}
    for path in wanted:
        entry = db.find(path)
        out[path] = _row(entry) if entry is not None else None
    return out


def listing(store: Store, paths: Paths, names: Sequence[str] = ()) -> list[HostPath]:
    """Every path the containers NAMES (default: all) own."""
    with store.locked(LockMode.SHARED):
        db = load_db(paths)
        entries = _selected(paths, db.entries.values(), names)
    return [_row(e) for e in entries]


def verify(store: Store, paths: Paths, names: Sequence[str] = ()) -> list[HostPath]:
    """Every path the containers NAMES (default: all) own, with what is on the host."""
    with store.locked(LockMode.SHARED):
        db = load_db(paths)
        entries = _selected(paths, db.entries.values(), names)
        return [_row(e, _status(paths, e)) for e in entries]


def _selected(paths: Paths, entries: Any, names: Sequence[str]) -> list[Entry]:
    for name in names:
        if not ContainerDir(paths.deployments, validate_name(name)).exists():
            raise ContainerNotFoundError(
                f"no container named {name} is installed", hint="see 'syscontainers list --all'"
            )
    chosen = [e for e in entries if not names or set(e.owners) & set(names)]
    return sorted(chosen, key=lambda e: e.path)


def _status(paths: Paths, entry: Entry) -> Status:
    beside = any(c.state is State.BESIDE for c in entry.claims)
    at = entry.beside_path if beside else entry.path
    now = hostfiles.checksums(paths.host_root, [at], strict=False)[at]
    if now is None:
        return Status.MISSING
    if entry.kind is Kind.DIR:
        return Status.OK if now == hostfiles.IS_DIR else Status.REPLACED
    if now in (hostfiles.IS_DIR, hostfiles.NOT_A_FILE):
        return Status.REPLACED
    return Status.OK if now in {c.sha256 for c in entry.claims} else Status.MODIFIED
