"""Tests for syscontainers.store.access: private directory modes, tightening, and verify's report.

Real stores on disk, run as whoever runs the tests; the attacks themselves (a user other than
the store's owner running a setuid object) are in tests/integration/test_store_access.py.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from syscontainers import cli
from syscontainers.store import Store, access
from syscontainers.store.fsck import verify
from syscontainers.store.lock import LockMode
from tests.imagebuild import layer_tar, write_oci_layout
from tests.unit.store_fixtures import can_chown, new_store, put_object


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def old_layout(root: Path) -> list[Path]:
    """The directories as versions before 0700 left them: 0755."""
    dirs = [root / "store", root / "store" / "objects", root / "containers", root / "mounts"]
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
        d.chmod(0o755)
    return dirs


def test_a_new_store_is_private(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    assert mode(store.path) == 0o700
    assert mode(store.objects_dir) == 0o700
    assert mode(store.tmp_dir) == 0o700
    assert access.check(store.path) == []


def test_the_next_writer_tightens_an_old_store(tmp_path: Path) -> None:
    dirs = old_layout(tmp_path)
    store = Store(tmp_path / "store", privileged=False)
    with store.locked(LockMode.SHARED):  # readers change nothing
        pass
    assert all(mode(d) == 0o755 for d in dirs)
    with store.locked(LockMode.EXCLUSIVE):
        pass
    assert [mode(d) for d in dirs] == [0o700] * 4
    assert access.check(store.path) == []


def test_tighten_keeps_the_owner_bits_and_skips_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "store").mkdir(mode=0o755)
    (tmp_path / "store").chmod(0o1775)
    access.tighten(tmp_path / "store")
    assert mode(tmp_path / "store") == 0o1700
    assert not (tmp_path / "containers").exists() and not (tmp_path / "mounts").exists()


def test_check_names_each_open_directory(tmp_path: Path) -> None:
    dirs = old_layout(tmp_path)
    problems = access.check(tmp_path / "store")
    assert [p.path for p in problems] == dirs
    assert all(p.fixable and "0755" in p.detail and "0700" in p.detail for p in problems)


def test_a_root_others_can_write_to_is_reported_not_changed(tmp_path: Path) -> None:
    root = tmp_path / "root"
    store = new_store(root)
    root.chmod(0o777)
    (problem,) = access.check(store.path)
    assert problem.path == root and not problem.fixable and "0777" in problem.detail
    with store.locked(LockMode.EXCLUSIVE):
        pass
    assert mode(root) == 0o777  # not ours to change: the administrator chose it


def test_a_directory_owned_by_another_user_is_reported(tmp_path: Path) -> None:
    if not can_chown(tmp_path):
        pytest.skip("needs CAP_CHOWN to give a directory away")
    store = new_store(tmp_path)
    os.chown(store.objects_dir, 4321, 4321)
    (problem,) = access.check(store.path)
    assert problem.path == store.objects_dir and "uid 4321" in problem.detail
    assert not problem.fixable


def test_verify_makes_quarantine_private(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    with store.locked(LockMode.EXCLUSIVE):
        name = put_object(store, b"payload", 0o4755)
        path = store.object_path(name)
        path.chmod(0o644)
        path.write_bytes(b"changed through a checkout")
        path.chmod(0o4755)
        assert not verify(store).ok
    assert mode(store.path / "quarantine") == 0o700


def test_images_verify_reports_and_fixes_the_modes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout = write_oci_layout(tmp_path / "img", [layer_tar({"etc/motd": b"hi\n"})], "v1")
    root = tmp_path / "root"
    argv = ["--root", str(root), "-q"]
    assert cli.main([*argv, "pull", f"oci:{layout}:v1", "--name", "app:1"]) == 0
    capsys.readouterr()
    dirs = old_layout(root)

    assert cli.main([*argv, "images", "verify"]) == 1
    out = capsys.readouterr().out
    for d in dirs:
        assert f"bad-permissions: {d}: mode 0755 lets every local user reach" in out
    assert out.count("(now fixed) (affects every image)") == 4
    assert "could reach the store" in out and "damaged objects" not in out
    assert [mode(d) for d in dirs] == [0o700] * 4

    assert cli.main([*argv, "images", "verify", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is True and doc["problems"] == []


def test_images_verify_json_names_what_an_administrator_must_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "root"
    new_store(root)
    root.chmod(0o757)
    assert cli.main(["--root", str(root), "images", "verify", "--json"]) == 1
    (problem,) = json.loads(capsys.readouterr().out)["problems"]
    assert problem["kind"] == "bad-permissions" and problem["item"] == str(root)
    assert "(now fixed)" not in problem["detail"]
