"""Planning a container's host files: from what it owns now to what a deployment needs (pure).

``plan`` takes the container's name, the files and directories the target
deployment ships (none for uninstall), the host-file database, the checksums
found on the host and the checksums of every version the container's slots
ship, and decides, like a package manager:

- a file that is missing is written (the container created it);
- a file that already holds our bytes is claimed, not written; if no
  container made it, it was the admin's, and it is never removed;
- a file another container owns with other bytes is a conflict naming both;
  with the same bytes it is shared, and removed only with its last owner;
- a file that holds an older version of ours, unchanged, is replaced;
- a file that holds other bytes and is not ours to replace (an admin's, or one
  an admin edited after we installed it) is kept, and when our version differs
  from what we shipped before, it goes beside it as PATH.syscontainers-new;
- a path the container no longer ships is released: removed when no one else
  claims it, a container created it and it is unchanged (a directory: empty);
  an edited one is kept and named;
- a missing directory is made; an existing one is claimed.

``intent`` holds the claims to record before anything is written; ``final``
every entry as it is once the plan has been carried out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from syscontainers.deploy.hostdb import (
    BESIDE_SUFFIX,
    Claim,
    Entry,
    HostDB,
    Kind,
    State,
    with_claim,
    without_claim,
)
from syscontainers.deploy.hostfiles import IS_DIR, NOT_A_FILE
from syscontainers.deploy.layout import HostDirRecord, HostFileRecord
from syscontainers.record import field, fields, mutable_record, record

IN_THE_WAY = (IS_DIR, NOT_A_FILE)


@record
class Write:
    """Publish the staged copy of REC at DEST (its path, or the beside path)."""

    dest: str
    rec: HostFileRecord


@record
class Conflict:
    """A host path the deployment cannot have: who holds it and why."""

    path: str
    owners: tuple[str, ...]
    why: str


@record
class HostPlan:
    """What moving one container's host files does."""

    mkdirs: tuple[HostDirRecord, ...] = ()
    writes: tuple[Write, ...] = ()
    removes: tuple[str, ...] = ()
    rmdirs: tuple[str, ...] = ()  # removed if empty
    kept: tuple[str, ...] = ()  # changed on the host after we installed them: left alone
    beside: tuple[Write, ...] = ()  # the host's file kept, ours written next to it
    adopted: tuple[str, ...] = ()  # already there with our bytes and made by no container
    shared: tuple[str, ...] = ()  # released, still owned by other containers: left
    conflicts: tuple[Conflict, ...] = ()
    intent: tuple[Entry, ...] = ()
    final: tuple[Entry, ...] = ()

    @property
    def targets(self) -> tuple[str, ...]:
        """Every host path this plan creates or replaces."""
        return (*(d.path for d in self.mkdirs), *(w.dest for w in self.writes))


@mutable_record
class _Builder:
    owner: str
    ours: Mapping[str, frozenset[str]]
    current: Mapping[str, str | None]
    out: dict[str, list[object]] = field(default_factory=dict)

    def add(self, what: str, item: object) -> None:
        self.out.setdefault(what, []).append(item)

    def claim(
        self,
        entry: Entry | None,
        path: str,
        kind: Kind,
        created: bool,
        sha: str = "",
        state: State = State.INSTALLED,
    ) -> None:
        new = with_claim(entry, path, kind, created, Claim(self.owner, sha, state))
        self.add("intent", new)
        self.add("final", new)

    def ours_at(self, path: str, mine: Claim | None) -> frozenset[str]:
        """The checksums of every version of PATH this container shipped."""
        return self.ours.get(path, frozenset()) | ({mine.sha256} if mine else set())

    def drop_stale_beside(self, entry: Entry | None, mine: Claim | None) -> None:
        """Remove our old copy beside ENTRY's path once ours is at the path itself."""
        if entry is None or mine is None or mine.state is not State.BESIDE:
            return
        if entry.others(self.owner):
            return
        now = self.current.get(entry.beside_path)
        if now is not None and now in self.ours_at(entry.path, mine):
            self.add("removes", entry.beside_path)

    def done(self) -> HostPlan:
        got = {f.name: tuple(self.out.get(f.name, ())) for f in fields(HostPlan)}
        return HostPlan(**got)  # type: ignore[arg-type]  # each list holds its field's type


def plan(
    owner: str,
    files: Sequence[HostFileRecord],
    dirs: Sequence[HostDirRecord],
    db: HostDB,
    current: Mapping[str, str | None],
    ours: Mapping[str, frozenset[str]],
) -> HostPlan:
    """Plan moving OWNER's host paths to FILES and DIRS (see the module docstring).

    CURRENT maps each path (and each PATH.syscontainers-new) to its checksum now;
    OURS maps each path to the checksums the owner's deployments ship for it.
    """
    b = _Builder(owner, ours, current)
    for d in sorted(dirs, key=lambda d: d.path):
        _want_dir(b, d, db.get(d.path))
    for rec in files:
        _want_file(b, rec, db.get(rec.path))
    wanted = {r.path for r in files} | {d.path for d in dirs}
    for entry in db.owned_by(owner):
        if entry.path not in wanted:
            _release(b, entry)
    return b.done()


def _want_dir(b: _Builder, d: HostDirRecord, entry: Entry | None) -> None:
    now = b.current.get(d.path)
    if now is None:
        b.add("mkdirs", d)
        b.claim(entry, d.path, Kind.DIR, created=True)
    elif now == IS_DIR:
        b.claim(entry, d.path, Kind.DIR, created=entry.created if entry else False)
    else:
        owners = entry.others(b.owner) if entry else ()
        b.add(
            "conflicts",
            Conflict(d.path, tuple(c.owner for c in owners), "is in the way of a directory"),
        )


def _want_file(b: _Builder, rec: HostFileRecord, entry: Entry | None) -> None:
    path = rec.path
    mine = entry.claim_of(b.owner) if entry else None
    others = entry.others(b.owner) if entry else ()
    created = entry.created if entry else False
    kind = Kind.SYMLINK if rec.symlink else Kind.FILE
    now = b.current.get(path)
    clash = sorted({c.owner for c in others if c.sha256 != rec.sha256})
    if clash:
        b.add("conflicts", Conflict(path, tuple(clash), "holds other content"))
    elif now in IN_THE_WAY:
        b.add("conflicts", Conflict(path, (), "is a directory or special file"))
    elif now is None or now == rec.sha256:
        if now is None:
            b.add("writes", Write(path, rec))
        elif entry is None:
            b.add("adopted", path)
        b.claim(entry, path, kind, created or now is None, rec.sha256)
        b.drop_stale_beside(entry, mine)
    elif mine is not None and mine.state is State.INSTALLED and now in b.ours_at(path, mine):
        b.add("writes", Write(path, rec))  # an unchanged older version of ours
        b.claim(entry, path, kind, created, rec.sha256)
    elif others or (mine is not None and mine.sha256 == rec.sha256):
        # The host's file differs from a version that is already accounted for: keep it.
        state = others[0].state if others else mine.state  # type: ignore[union-attr]
        if state is State.INSTALLED:
            b.add("kept", path)
        b.claim(entry, path, kind, created, rec.sha256, state)
    else:
        _beside(b, rec, entry, kind, created)


def _beside(
    b: _Builder, rec: HostFileRecord, entry: Entry | None, kind: Kind, created: bool
) -> None:
    beside = rec.path + BESIDE_SUFFIX
    if b.current.get(beside) in IN_THE_WAY:
        b.add("conflicts", Conflict(beside, (), "is a directory or special file"))
        return
    write = Write(beside, rec)
    b.add("writes", write)
    b.add("beside", write)
    b.claim(entry, rec.path, kind, created, rec.sha256, State.BESIDE)


def _release(b: _Builder, entry: Entry) -> None:
    mine = entry.claim_of(b.owner)
    rest = without_claim(entry, b.owner)
    b.add("final", rest)
    if entry.kind is Kind.DIR:
        if not rest.claims and entry.created:
            b.add("rmdirs", entry.path)
        return
    if rest.claims:
        b.add("shared", entry.path)
        return
    assert mine is not None
    at = entry.beside_path if mine.state is State.BESIDE else entry.path
    if mine.state is State.INSTALLED and not entry.created:
        return  # it was on the host before any container: never ours to remove
    now = b.current.get(at)
    if now is None:
        return
    b.add("removes" if now in b.ours_at(entry.path, mine) else "kept", at)
