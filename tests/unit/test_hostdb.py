"""Tests for syscontainers.deploy.hostdb: the host-file database, its file and its rebuild."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from syscontainers.deploy import hostdb
from syscontainers.deploy.hostdb import Claim, Entry, HostDB, Kind, State
from syscontainers.deploy.layout import DeploymentInfo, HostFileRecord
from syscontainers.errors import StoreCorruptError
from syscontainers.render import KeptValues


def test_the_file_round_trips_and_is_private(tmp_path: Path) -> None:
    db = HostDB(
        {
            "/etc/a": Entry("/etc/a", Kind.FILE, True, (Claim("x", "1"), Claim("y", "1"))),
            "/etc/b": Entry("/etc/b", Kind.SYMLINK, False, (Claim("x", "2", State.BESIDE),)),
            "/etc": Entry("/etc", Kind.DIR, False, (Claim("x"),)),
        }
    )
    path = hostdb.db_path(tmp_path)
    assert hostdb.load(path) is None
    hostdb.save(path, db)
    assert hostdb.load(path) == db
    assert path.stat().st_mode & 0o777 == 0o600
    assert os.listdir(tmp_path) == ["hostfiles.json"]  # no temp file left


@pytest.mark.parametrize(
    "text",
    ["{", "[]", '{"version": 2, "paths": {}}', '{"version": 1, "paths": {"/a": {"kind": "sock"}}}'],
)
def test_a_damaged_file_is_a_store_error_with_a_hint(tmp_path: Path, text: str) -> None:
    path = hostdb.db_path(tmp_path)
    path.write_text(text)
    with pytest.raises(StoreCorruptError) as info:
        hostdb.load(path)
    assert str(path) in info.value.message and "rebuilds" in (info.value.hint or "")


def test_find_maps_a_beside_copy_to_its_entry() -> None:
    beside = Entry("/a", Kind.FILE, False, (Claim("x", "1", State.BESIDE),))
    plain = Entry("/b", Kind.FILE, True, (Claim("x", "1"),))
    db = HostDB({"/a": beside, "/b": plain})
    assert db.find("/a.syscontainers-new") == beside and db.find("/a") == beside
    assert db.find("/b.syscontainers-new") is None


def info(
    name: str, complete: bool, *files: tuple[str, str], dirs: tuple[str, ...] = ()
) -> DeploymentInfo:
    return DeploymentInfo(
        name,
        0,
        "img",
        "img",
        "",
        "sha256:x",
        "runc",
        KeptValues((), "u"),
        host_files=tuple(HostFileRecord(p, s, "") for p, s in files),
        host_dirs=dirs,
        complete=complete,
    )


def test_seed_counts_complete_ledgers_as_made_by_their_containers() -> None:
    db = hostdb.seed(
        [
            info("a", True, ("/etc/x", "1"), dirs=("/etc/a",)),
            info("b", True, ("/etc/x", "1")),
            info("c", False, ("/etc/c", "3")),
        ]
    )  # being built: not on the host
    assert db.get("/etc/x") == Entry("/etc/x", Kind.FILE, True, (Claim("a", "1"), Claim("b", "1")))
    assert db.get("/etc/a") == Entry("/etc/a", Kind.DIR, True, (Claim("a"),))
    assert db.get("/etc/c") is None
