"""Tests for syscontainers.deploy.hostfiles: the ledger plan and safe host-side file work."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from syscontainers.deploy import hostfiles
from syscontainers.deploy.hostfiles import HostFileSource, plan_transition
from syscontainers.deploy.layout import HostFileRecord
from syscontainers.errors import CheckoutError


def rec(path: str, sha: str) -> HostFileRecord:
    return HostFileRecord(path, sha, "hostfs" + path)


@pytest.mark.parametrize(
    ("old", "new", "current", "expected"),
    [
        pytest.param([], [rec("/a", "1")], {"/a": None}, ((("/a", "1"),), (), (), ()),
                     id="new-file"),
        pytest.param([], [rec("/a", "1")], {"/a": "1"}, ((), (), (), ()), id="already-there"),
        pytest.param([], [rec("/a", "1")], {"/a": "x"}, ((), (), (), ("/a",)), id="not-ours"),
        pytest.param([rec("/a", "0")], [rec("/a", "1")], {"/a": "0"},
                     ((("/a", "1"),), (), (), ()), id="replace-ours"),
        pytest.param([rec("/a", "0")], [rec("/a", "1")], {"/a": "e"}, ((), (), ("/a",), ()),
                     id="edited-kept"),
        pytest.param([rec("/a", "0")], [], {"/a": "0"}, ((), ("/a",), (), ()), id="remove"),
        pytest.param([rec("/a", "0")], [], {"/a": "e"}, ((), (), ("/a",), ()),
                     id="edited-not-removed"),
        pytest.param([rec("/a", "0")], [], {"/a": None}, ((), (), (), ()), id="already-gone"),
        pytest.param([rec("/a", "0"), rec("/a", "1")], [], {"/a": "1"}, ((), ("/a",), (), ()),
                     id="either-slot-is-ours"),
    ],
)
def test_plan_transition(
    old: list[HostFileRecord],
    new: list[HostFileRecord],
    current: dict[str, str | None],
    expected: tuple[object, ...],
) -> None:
    plan = plan_transition(old, new, current)
    got = (tuple((r.path, r.sha256) for r in plan.write), plan.remove, plan.kept, plan.conflicts)
    assert got == expected


def test_host_files_install_check_and_remove(tmp_path: Path) -> None:
    root, stage = tmp_path / "host", tmp_path / "stage"
    root.mkdir()
    recs = [
        hostfiles.stage(stage, HostFileSource("/etc/app/a.conf", "hostfs/x", 0o640, b"abc")),
        hostfiles.stage(stage, HostFileSource("/usr/bin/app", "hostfs/y", target="../lib/app")),
    ]
    assert recs[0].sha256 == hostfiles.sha256_hex(b"abc") and recs[1].symlink
    made: list[str] = []
    for r in recs:
        made += hostfiles.install_file(root, stage, r)
    assert sorted(made) == ["/etc", "/etc/app", "/usr", "/usr/bin"]
    assert (root / "etc/app/a.conf").stat().st_mode & 0o777 == 0o640
    assert os.readlink(root / "usr/bin/app") == "../lib/app"
    sums = hostfiles.checksums(root, [r.path for r in recs])
    assert sums == {r.path: r.sha256 for r in recs}
    for r in recs:
        hostfiles.remove_file(root, r.path)
    hostfiles.remove_empty_dirs(root, made)
    assert list(root.iterdir()) == []


def test_symlinked_parent_is_refused_everywhere(tmp_path: Path) -> None:
    root, outside = tmp_path / "host", tmp_path / "outside"
    (root / "etc").mkdir(parents=True)
    outside.mkdir()
    (outside / "app.conf").write_text("secret")
    (root / "etc/app").symlink_to(outside)
    rec_ = hostfiles.stage(tmp_path / "stage", HostFileSource("/etc/app/app.conf", "s",
                                                              content=b"x"))
    for action in (
        lambda: hostfiles.current_checksum(root, "/etc/app/app.conf"),
        lambda: hostfiles.install_file(root, tmp_path / "stage", rec_),
        lambda: hostfiles.remove_file(root, "/etc/app/app.conf"),
    ):
        with pytest.raises(CheckoutError, match="symlink"):
            action()
    assert (outside / "app.conf").read_text() == "secret"
    assert hostfiles.checksums(root, ["/etc/app/app.conf"], strict=False) == {
        "/etc/app/app.conf": hostfiles.NOT_A_FILE}


@pytest.mark.parametrize("dest", ["relative", "/a/../b", "/a//b", "/a/./b"])
def test_unclean_destinations_are_refused(tmp_path: Path, dest: str) -> None:
    with pytest.raises(CheckoutError):
        hostfiles.current_checksum(tmp_path, dest)
