"""Tests for syscontainers.deploy.hostplan: what moving one container's host paths does (pure)."""

from __future__ import annotations

import pytest

from syscontainers.deploy.hostdb import EMPTY, Claim, Entry, HostDB, Kind, State
from syscontainers.deploy.hostfiles import IS_DIR
from syscontainers.deploy.hostplan import HostPlan, plan
from syscontainers.deploy.layout import HostDirRecord, HostFileRecord

NEW = "/a.syscontainers-new"


def rec(sha: str, path: str = "/a") -> HostFileRecord:
    return HostFileRecord(path, sha, "hostfs" + path)


def db(*claims: tuple[str, str, State], created: bool = True, path: str = "/a") -> HostDB:
    entry = Entry(path, Kind.FILE, created, tuple(Claim(o, s, st) for o, s, st in claims))
    return HostDB({path: entry})


INS, BES = State.INSTALLED, State.BESIDE


def summary(p: HostPlan) -> dict[str, object]:
    out: dict[str, object] = {
        "writes": [(w.dest, w.rec.sha256) for w in p.writes],
        "removes": list(p.removes),
        "kept": list(p.kept),
        "conflicts": [(c.path, c.owners) for c in p.conflicts],
        "shared": list(p.shared),
        "adopted": list(p.adopted),
    }
    final = {e.path: e for e in p.final}
    entry = final.get("/a")
    out["claims"] = (
        sorted((c.owner, c.sha256, c.state.value) for c in entry.claims) if entry else None
    )
    out["created"] = entry.created if entry and entry.claims else None
    return {k: v for k, v in out.items() if v not in ([], None)}


@pytest.mark.parametrize(
    ("files", "database", "current", "ours", "expected"),
    [
        pytest.param(
            [rec("1")],
            EMPTY,
            {},
            {},
            {"writes": [("/a", "1")], "claims": [("me", "1", "installed")], "created": True},
            id="missing-is-written-and-made-by-us",
        ),
        pytest.param(
            [rec("1")],
            EMPTY,
            {"/a": "1"},
            {},
            {"adopted": ["/a"], "claims": [("me", "1", "installed")], "created": False},
            id="admins-identical-file-is-claimed-not-made",
        ),
        pytest.param(
            [rec("1")],
            EMPTY,
            {"/a": "x"},
            {},
            {"writes": [(NEW, "1")], "claims": [("me", "1", "beside")], "created": False},
            id="admins-other-file-is-kept-ours-beside",
        ),
        pytest.param(
            [rec("1")],
            db(("b", "1", INS)),
            {"/a": "1"},
            {},
            {"claims": [("b", "1", "installed"), ("me", "1", "installed")], "created": True},
            id="same-bytes-as-another-owner-is-shared",
        ),
        pytest.param(
            [rec("2")],
            db(("b", "1", INS)),
            {"/a": "1"},
            {},
            {"conflicts": [("/a", ("b",))]},
            id="other-bytes-than-another-owner-conflict",
        ),
        pytest.param(
            [rec("2")],
            db(("me", "1", INS)),
            {"/a": "1"},
            {},
            {"writes": [("/a", "2")], "claims": [("me", "2", "installed")], "created": True},
            id="unchanged-old-version-of-ours-is-replaced",
        ),
        pytest.param(
            [rec("1")],
            db(("me", "1", INS)),
            {"/a": "e"},
            {},
            {"kept": ["/a"], "claims": [("me", "1", "installed")], "created": True},
            id="edited-and-same-version-is-kept",
        ),
        pytest.param(
            [rec("2")],
            db(("me", "1", INS)),
            {"/a": "e"},
            {},
            {"writes": [(NEW, "2")], "claims": [("me", "2", "beside")], "created": True},
            id="edited-and-new-version-goes-beside",
        ),
        pytest.param(
            [rec("1")],
            db(("me", "1", BES), created=False),
            {"/a": None, NEW: "1"},
            {},
            {
                "writes": [("/a", "1")],
                "removes": [NEW],
                "claims": [("me", "1", "installed")],
                "created": True,
            },
            id="admins-file-gone-ours-moves-in",
        ),
        pytest.param(
            [rec("1")],
            EMPTY,
            {"/a": IS_DIR},
            {},
            {"conflicts": [("/a", ())]},
            id="directory-in-the-way",
        ),
        pytest.param(
            [],
            db(("me", "1", INS)),
            {"/a": "1"},
            {},
            {"removes": ["/a"]},
            id="released-unchanged-is-removed",
        ),
        pytest.param(
            [],
            db(("me", "1", INS)),
            {"/a": "e"},
            {},
            {"kept": ["/a"]},
            id="released-edited-is-kept",
        ),
        pytest.param(
            [],
            db(("me", "0", INS)),
            {"/a": "1"},
            {"/a": frozenset({"1"})},
            {"removes": ["/a"]},
            id="any-slots-version-counts-as-ours",
        ),
        pytest.param(
            [],
            db(("me", "1", INS), created=False),
            {"/a": "1"},
            {},
            {},
            id="released-never-made-by-us-stays",
        ),
        pytest.param(
            [],
            db(("me", "1", INS), ("b", "1", INS)),
            {"/a": "1"},
            {},
            {"shared": ["/a"], "claims": [("b", "1", "installed")], "created": True},
            id="released-still-shared-stays",
        ),
        pytest.param(
            [],
            db(("me", "1", BES), created=False),
            {"/a": "x", NEW: "1"},
            {},
            {"removes": [NEW]},
            id="released-beside-copy-is-removed",
        ),
    ],
)
def test_plan_files(
    files: list[HostFileRecord],
    database: HostDB,
    current: dict[str, str | None],
    ours: dict[str, frozenset[str]],
    expected: dict[str, object],
) -> None:
    assert summary(plan("me", files, (), database, current, ours)) == expected


def test_plan_directories() -> None:
    dirs = [HostDirRecord("/etc", 0o755), HostDirRecord("/etc/new", 0o700)]
    old = HostDB(
        {
            "/gone": Entry("/gone", Kind.DIR, True, (Claim("me"),)),
            "/kept": Entry("/kept", Kind.DIR, True, (Claim("me"), Claim("b"))),
        }
    )
    got = plan("me", (), dirs, old, {"/etc": IS_DIR, "/gone": IS_DIR, "/kept": IS_DIR}, {})
    assert [d.path for d in got.mkdirs] == ["/etc/new"]
    assert got.rmdirs == ("/gone",)
    final = {e.path: e for e in got.final}
    assert not final["/etc"].created and final["/etc/new"].created
    assert final["/gone"].claims == () and final["/kept"].owners == ("b",)
    assert {e.path for e in got.intent} == {"/etc", "/etc/new"}  # released only at the end


def test_a_file_where_a_directory_belongs_conflicts() -> None:
    got = plan("me", (), [HostDirRecord("/etc/x")], EMPTY, {"/etc/x": "sha"}, {})
    assert [(c.path, c.why) for c in got.conflicts] == [("/etc/x", "is in the way of a directory")]
    assert got.intent == ()
