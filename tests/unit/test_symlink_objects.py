"""Symlink objects: import stores each symlink once, checkouts hardlink it (as cp -al does), and
verify, prune and a missing object are handled (the objects are a cache)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from syscontainers.checkout import checkout
from syscontainers.operations.images import find_image
from syscontainers.operations.pull import PullOptions, pull_image
from syscontainers.progress import NullReporter
from syscontainers.sources import open_source, parse_source
from syscontainers.store import Store
from syscontainers.store.fsck import ProblemKind, verify
from syscontainers.store.gc import prune
from syscontainers.store.lock import LockMode
from syscontainers.store.objects import link_name, parse_name
from tests.imagebuild import layer_tar, write_oci_layout
from tests.unit.store_fixtures import new_store

MTIME = 1_700_000_000  # what tests/imagebuild.py gives every entry


def pull(store: Store, tmp: Path, name: str, symlinks: dict[str, str]) -> None:
    layer = layer_tar({"lib/libfoo.so.1": b"elf"}, symlinks=symlinks)
    layout = write_oci_layout(tmp / f"layout-{name.replace(':', '-')}", [layer], "v1")
    source = open_source(parse_source(f"oci:{layout}:v1"))
    try:
        pull_image(store, source, PullOptions(name=name))
    finally:
        source.close()


def check_out(store: Store, name: str, dest: Path) -> None:
    with store.locked(LockMode.SHARED):
        checkout(store, find_image(store, name).layers, dest, NullReporter())


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = new_store(tmp_path, privileged=None)
    pull(s, tmp_path, "app:1", {"lib/libfoo.so": "libfoo.so.1", "bin/sh": "/bin/busybox"})
    return s


def link_object(store: Store, target: str) -> Path:
    uid, gid = (0, 0) if store.privileged else (os.geteuid(), os.getegid())
    return store.object_path(link_name(target, uid, gid, MTIME))


def test_import_stores_each_symlink_as_an_object(store: Store) -> None:
    obj = link_object(store, "libfoo.so.1")
    assert obj.is_symlink() and os.readlink(obj) == "libfoo.so.1"
    assert int(os.lstat(obj).st_mtime) == MTIME
    parsed = parse_name(obj.name)
    assert parsed.link_mtime == MTIME and parsed.mode == 0o777


def test_checkout_hardlinks_the_symlink_objects(store: Store, tmp_path: Path) -> None:
    check_out(store, "app:1", tmp_path / "co")
    link = tmp_path / "co" / "lib" / "libfoo.so"
    assert os.readlink(link) == "libfoo.so.1"
    obj = link_object(store, "libfoo.so.1")
    assert os.lstat(link).st_ino == os.lstat(obj).st_ino  # the same inode: no new symlink
    assert os.lstat(obj).st_nlink == 2
    assert int(os.lstat(link).st_mtime) == MTIME


def test_a_missing_symlink_object_is_made_in_place(store: Store, tmp_path: Path) -> None:
    obj = link_object(store, "/bin/busybox")
    obj.unlink()
    check_out(store, "app:1", tmp_path / "co")
    link = tmp_path / "co" / "bin" / "sh"
    assert os.readlink(link) == "/bin/busybox" and int(os.lstat(link).st_mtime) == MTIME
    assert os.lstat(link).st_nlink == 1
    assert verify(store).ok  # a cache: a missing one is no fault


def test_verify_finds_a_retargeted_symlink_object(store: Store, tmp_path: Path) -> None:
    obj = link_object(store, "libfoo.so.1")
    obj.unlink()
    os.symlink("/etc/shadow", obj)
    os.utime(obj, (MTIME, MTIME), follow_symlinks=False)
    report = verify(store)
    [problem] = report.problems
    assert problem.kind is ProblemKind.CORRUPT_OBJECT and problem.item == obj.name
    assert "/etc/shadow" in problem.detail and problem.images == ("app:1",)
    assert not os.path.lexists(obj)  # quarantined: the checkout now makes it in place
    check_out(store, "app:1", tmp_path / "co")
    assert os.readlink(tmp_path / "co" / "lib" / "libfoo.so") == "libfoo.so.1"


def test_prune_keeps_symlink_objects_in_use_and_drops_the_rest(
    store: Store, tmp_path: Path
) -> None:
    pull(store, tmp_path, "other:1", {"lib/other.so": "other.so.1"})
    kept, dropped = link_object(store, "libfoo.so.1"), link_object(store, "other.so.1")
    assert os.path.lexists(dropped)
    store.delete_ref("other:1")
    with store.locked(LockMode.EXCLUSIVE):
        prune(store)
    assert os.path.lexists(kept) and not os.path.lexists(dropped)


def test_no_symlink_object_for_another_owner_without_privilege(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    with store.locked(LockMode.EXCLUSIVE):
        writer = store.object_writer()
        foreign = os.geteuid() + 1
        assert writer.put_symlink("x", foreign, foreign, MTIME) == ""
        name = writer.put_symlink("x", os.geteuid(), os.getegid(), MTIME)
    assert name and os.readlink(writer.path(name)) == "x"
