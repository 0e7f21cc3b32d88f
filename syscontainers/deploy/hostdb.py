"""The host-file database: which containers own each host file and directory.

A container's info.json says what one deployment ships; this database says
what is on the host and whose it is, across all containers, the way a package
manager's file database does. It lives at ``ROOT/hostfiles.json``::

    {"version": 1,
     "paths": {
       "/etc/shared.conf": {"kind": "file", "created": true,
                            "claims": [{"owner": "a", "sha256": "…", "state": "installed"},
                                       {"owner": "b", "sha256": "…", "state": "installed"}]},
       "/etc/app.conf":    {"kind": "file", "created": false,
                            "claims": [{"owner": "c", "sha256": "…", "state": "beside"}]},
       "/etc/flanneld":    {"kind": "directory", "created": true,
                            "claims": [{"owner": "flannel", "sha256": "", "state": "installed"}]}}}

- ``created``: a container made the path (it did not exist when first claimed).
  A path that was on the host before (an admin's file, /etc) is never removed.
- ``claims``: one per owning container; a path is shared (reference counted)
  when several claim it, all with the same bytes. The last claim released
  removes a created path that is unchanged (a directory: that is empty).
- ``state`` ``beside``: the host keeps a file that is not ours (an admin's, or
  one edited after we installed it); the container's version is installed
  beside it as ``PATH.syscontainers-new`` (rpm's ``.rpmnew``).

The file is only changed under the store's exclusive lock, and always replaced
whole (temp file, fsync, rename). A command records its claims (intent) before
it writes any host file, and the final state after, so a kill in between never
leaves a host file that no record owns. A missing database is rebuilt from the
ledgers of the complete deployments (``seed``), counting every ledger file as
created by its container, which is what syscontainers assumed before the
database existed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from enum import Enum
from pathlib import Path
from typing import Any

from syscontainers.deploy.layout import DeploymentInfo
from syscontainers.errors import StoreCorruptError
from syscontainers.fsutil import atomic_write, read_bytes_if_exists
from syscontainers.record import record, replace

DB_NAME = "hostfiles.json"
DB_VERSION = 1
BESIDE_SUFFIX = ".syscontainers-new"


class Kind(Enum):
    """What a host path is."""

    FILE = "file"
    SYMLINK = "symlink"
    DIR = "directory"


class State(Enum):
    """How a container's version of a host file is installed."""

    INSTALLED = "installed"  # at the path itself
    BESIDE = "beside"  # at PATH.syscontainers-new; the host keeps its own file at PATH


@record
class Claim:
    """One container's ownership of a host path."""

    owner: str
    sha256: str = ""  # of the bytes (or link target) it ships; "" for a directory
    state: State = State.INSTALLED


@record
class Entry:
    """One host path in the database."""

    path: str
    kind: Kind
    created: bool  # a container made it: it may be removed when the last claim goes
    claims: tuple[Claim, ...] = ()

    @property
    def owners(self) -> tuple[str, ...]:
        """The containers that claim this path, sorted."""
        return tuple(sorted(c.owner for c in self.claims))

    @property
    def beside_path(self) -> str:
        """Where a container's version goes when the host keeps its own file."""
        return self.path + BESIDE_SUFFIX

    def claim_of(self, owner: str) -> Claim | None:
        """OWNER's claim, if it has one."""
        return next((c for c in self.claims if c.owner == owner), None)

    def others(self, owner: str) -> tuple[Claim, ...]:
        """The claims of containers other than OWNER."""
        return tuple(c for c in self.claims if c.owner != owner)

    def to_json(self) -> dict[str, Any]:
        """The JSON form (without the path, which is its key)."""
        return {
            "kind": self.kind.value,
            "created": self.created,
            "claims": [
                {"owner": c.owner, "sha256": c.sha256, "state": c.state.value}
                for c in sorted(self.claims, key=lambda c: c.owner)
            ],
        }

    @classmethod
    def from_json(cls, path: str, doc: Any) -> Entry:
        """Parse what to_json wrote."""
        claims = tuple(
            Claim(str(c["owner"]), str(c.get("sha256", "")), State(c.get("state", "installed")))
            for c in doc["claims"]
        )
        return cls(path, Kind(doc["kind"]), bool(doc["created"]), claims)


@record
class HostDB:
    """Every claimed host path, by path."""

    entries: Mapping[str, Entry]

    def get(self, path: str) -> Entry | None:
        """The entry of PATH, if any container claims it."""
        return self.entries.get(path)

    def owned_by(self, owner: str) -> list[Entry]:
        """The entries OWNER claims, sorted by path."""
        return [e for _, e in sorted(self.entries.items()) if e.claim_of(owner) is not None]

    def find(self, path: str) -> Entry | None:
        """The entry PATH belongs to: its own, or the one whose beside copy it is."""
        entry = self.entries.get(path)
        if entry is None and path.endswith(BESIDE_SUFFIX):
            base = self.entries.get(path[: -len(BESIDE_SUFFIX)])
            if base is not None and any(c.state is State.BESIDE for c in base.claims):
                return base
        return entry

    def with_entries(self, changed: Iterable[Entry]) -> HostDB:
        """This database with CHANGED put in (an entry without claims is dropped)."""
        entries = dict(self.entries)
        for entry in changed:
            if entry.claims:
                entries[entry.path] = entry
            else:
                entries.pop(entry.path, None)
        return HostDB(entries)

    def to_json(self) -> dict[str, Any]:
        """The JSON document."""
        return {
            "version": DB_VERSION,
            "paths": {p: e.to_json() for p, e in sorted(self.entries.items())},
        }


EMPTY = HostDB({})


def with_claim(entry: Entry | None, path: str, kind: Kind, created: bool, claim: Claim) -> Entry:
    """ENTRY (or a new one for PATH) with CLAIM in place of its owner's old claim."""
    if entry is None:
        return Entry(path, kind, created, (claim,))
    claims = sorted((*entry.others(claim.owner), claim), key=lambda c: c.owner)
    return replace(entry, kind=kind, created=created, claims=tuple(claims))


def without_claim(entry: Entry, owner: str) -> Entry:
    """ENTRY with OWNER's claim released."""
    return replace(entry, claims=entry.others(owner))


def seed(infos: Iterable[DeploymentInfo]) -> HostDB:
    """A database rebuilt from the ledgers of the complete deployments in INFOS (each
    container's active slot first): every ledger file, and every directory the old ledgers
    say were made, counts as made by its container, as uninstall assumed before this
    database existed. (A slot being built is not complete: its files are not on the host.)"""
    entries: dict[str, Entry] = {}
    for info in (i for i in infos if i.complete):
        found = [
            (r.path, Kind.SYMLINK if r.symlink else Kind.FILE, r.sha256) for r in info.host_files
        ]
        found += [(d, Kind.DIR, "") for d in info.host_dirs]
        for path, kind, sha in found:
            entry = entries.get(path)
            if entry is None or entry.claim_of(info.name) is None:
                entries[path] = with_claim(entry, path, kind, True, Claim(info.name, sha))
    return HostDB(entries)


def db_path(root: Path) -> Path:
    """Where the database of the store root ROOT lives."""
    return root / DB_NAME


def load(path: Path) -> HostDB | None:
    """The database at PATH, or None if there is none yet."""
    data = read_bytes_if_exists(path)
    if data is None:
        return None
    try:
        doc = json.loads(data)
        if doc.get("version") != DB_VERSION:
            raise ValueError(f"version {doc.get('version')!r} is not {DB_VERSION}")
        return HostDB({str(p): Entry.from_json(str(p), e) for p, e in doc["paths"].items()})
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise StoreCorruptError(
            f"the host-file database {path} is damaged: {e}",
            hint=f"move {path} away: the next command rebuilds it from the installed "
            "containers' ledgers (every file then counts as made by its container)",
        ) from e


def save(path: Path, db: HostDB) -> None:
    """Replace the database at PATH with DB atomically and durably."""
    data = json.dumps(db.to_json(), indent=1, sort_keys=True) + "\n"
    atomic_write(path, data.encode(), mode=0o600)
