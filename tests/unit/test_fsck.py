"""Tests for syscontainers.store.fsck: every kind of damage is found, named and quarantined."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from syscontainers.oci import digest_hex
from syscontainers.store import Store
from syscontainers.store.fsck import Problem, ProblemKind, check_object, verify
from syscontainers.store.gc import prune
from syscontainers.store.lock import LockMode
from syscontainers.store.objects import ObjectMeta
from tests.unit.store_fixtures import (
    add_image,
    add_layer,
    can_chown,
    can_set_user_xattr,
    config_digest,
    new_store,
    objects_of,
    put_object,
)

A, B = "example.org/a:1", "example.org/b:2"
FILES_1 = {"etc/a": b"A file\n", "shared": b"shared by A and B\n"}
FILES_2 = {"bin/x": b"X binary"}
FILES_3 = {"only-b": b"only in B", "shared": b"shared by A and B\n"}


@dataclass
class World:
    store: Store
    a: str
    b: str
    l1: str
    l2: str
    l3: str

    def obj(self, diff_id: str, path: str) -> str:
        return objects_of(self.store, diff_id)[path]

    def quarantined(self) -> list[bytes]:
        qdir = self.store.path / "quarantine"
        return sorted(p.read_bytes() for p in qdir.iterdir()) if qdir.is_dir() else []


@pytest.fixture
def world(tmp_path: Path) -> World:
    store = new_store(tmp_path)
    l1, l2, l3 = (add_layer(store, f) for f in (FILES_1, FILES_2, FILES_3))
    a = add_image(store, [l1, l2])
    b = add_image(store, [l3])
    store.set_ref(A, a)
    store.set_ref(B, b)
    return World(store, a, b, l1, l2, l3)


def flip_byte(path: Path, offset: int = 0) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x20
    path.write_bytes(bytes(data))


def total_size(*files: dict[str, bytes]) -> int:
    return sum(len(v) for v in {v for f in files for v in f.values()})


def test_clean_store(world: World) -> None:
    report = verify(world.store)
    assert report.ok and report.problems == ()
    assert report.objects_checked == 4  # "shared" is one object
    assert report.bytes_checked == total_size(FILES_1, FILES_2, FILES_3)
    assert world.quarantined() == []


def test_empty_and_missing_stores_are_clean(tmp_path: Path) -> None:
    for store in (new_store(tmp_path), Store(tmp_path / "none", privileged=False)):
        report = verify(store)
        assert report.ok and report.objects_checked == 0


def test_flipped_byte_is_corrupt_and_quarantined(world: World) -> None:
    name = world.obj(world.l1, "etc/a")
    path = world.store.object_path(name)
    flip_byte(path)
    report = verify(world.store)
    assert not report.ok
    [problem] = report.problems
    assert (problem.kind, problem.item, problem.images) == (ProblemKind.CORRUPT_OBJECT, name, (A,))
    assert problem.detail.startswith("content hashes to ")
    assert not path.exists()  # moved aside, so nothing dedups against it
    assert world.quarantined() == [b"a file\n"]
    # a second run finds the layer incomplete until the image is pulled again
    again = verify(world.store)
    assert again.problems == (Problem(ProblemKind.MISSING_OBJECT, name, "missing", (A,)),)


def test_shared_object_names_every_image(world: World) -> None:
    name = world.obj(world.l1, "shared")
    assert name == world.obj(world.l3, "shared")
    flip_byte(world.store.object_path(name), offset=3)
    [problem] = verify(world.store).problems
    assert problem.kind is ProblemKind.CORRUPT_OBJECT
    assert problem.images == (A, B)


def test_repair_false_leaves_the_object(world: World) -> None:
    name = world.obj(world.l2, "bin/x")
    flip_byte(world.store.object_path(name))
    [problem] = verify(world.store, repair=False).problems
    assert problem.kind is ProblemKind.CORRUPT_OBJECT
    assert world.store.object_path(name).exists()
    assert world.quarantined() == []


def test_deleted_object_is_missing(world: World) -> None:
    name = world.obj(world.l3, "only-b")
    os.unlink(world.store.object_path(name))
    report = verify(world.store)
    assert report.problems == (Problem(ProblemKind.MISSING_OBJECT, name, "missing", (B,)),)
    assert world.quarantined() == []


def test_chmod_is_corruption(world: World) -> None:
    name = world.obj(world.l1, "etc/a")
    path = world.store.object_path(name)
    os.chmod(path, 0o600)  # e.g. through a hardlinked checkout: every user of it changed
    [problem] = verify(world.store).problems
    assert problem == Problem(ProblemKind.CORRUPT_OBJECT, name, "mode is 0600, not 0644", (A,))
    assert not path.exists()
    assert world.quarantined() == [FILES_1["etc/a"]]


@pytest.mark.parametrize("which", ["manifest", "config"])
def test_damaged_image_blob_is_a_bad_image(world: World, which: str) -> None:
    digest = world.a if which == "manifest" else config_digest(world.store, world.a)
    flip_byte(world.store.blobs_dir / digest_hex(digest), offset=5)
    report = verify(world.store)
    [problem] = report.problems  # A's objects are still sound: no other complaint
    assert (problem.kind, problem.item, problem.images) == (ProblemKind.BAD_IMAGE, A, (A,))
    assert "damaged" in problem.detail
    assert report.objects_checked == 4


def test_missing_manifest_blob_is_a_bad_image(world: World) -> None:
    os.unlink(world.store.blobs_dir / digest_hex(world.b))
    [problem] = verify(world.store).problems
    assert (problem.kind, problem.item) == (ProblemKind.BAD_IMAGE, B)
    assert "not in the store" in problem.detail


@pytest.mark.parametrize("damage", ["delete", "garble"])
def test_bad_layer_tree(world: World, damage: str) -> None:
    path = world.store.layer_path(world.l2)
    if damage == "delete":
        path.unlink()
    else:
        path.write_bytes(b'{"version": 1, "entries": [')
    [problem] = verify(world.store).problems
    assert (problem.kind, problem.item, problem.images) == (ProblemKind.BAD_LAYER, world.l2, (A,))


def test_stray_objects_are_checked_too(world: World) -> None:
    stray = put_object(world.store, b"nobody uses me")
    flip_byte(world.store.object_path(stray))
    report = verify(world.store)
    assert report.objects_checked == 5
    [problem] = report.problems
    assert (problem.kind, problem.item, problem.images) == (ProblemKind.CORRUPT_OBJECT, stray, ())


def test_junk_in_the_objects_directory(world: World) -> None:
    junk = world.store.objects_dir / "ab" / "not-an-object"
    junk.write_bytes(b"?")
    [problem] = verify(world.store).problems
    assert problem.kind is ProblemKind.CORRUPT_OBJECT
    assert problem.item == "not-an-object"
    assert "is not an object name" in problem.detail
    assert prune(world.store).objects == 1  # not ours to move: prune removes it
    assert not junk.exists()


def test_verify_only_some_images(world: World) -> None:
    flip_byte(world.store.object_path(world.obj(world.l2, "bin/x")))  # A's, not B's
    report = verify(world.store, [world.b])
    assert report.ok
    assert report.objects_checked == 2
    assert report.bytes_checked == total_size(FILES_3)
    assert not verify(world.store, [world.a, world.b]).ok


def test_progress_is_reported(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    files = {f"f{i:03d}": f"file {i}".encode() for i in range(300)}
    store.set_ref("many:1", add_image(store, [add_layer(store, files)]))
    calls: list[tuple[int, int]] = []
    report = verify(store, on_progress=lambda done, total: calls.append((done, total)))
    assert report.objects_checked == 300
    [(done, total)] = calls  # every 256 objects
    assert total == total_size(files) == report.bytes_checked
    assert 0 < done < total


# ---- check_object, and the owner and xattr checks of a privileged store ---------------


def test_check_object(world: World) -> None:
    name = world.obj(world.l1, "etc/a")
    assert check_object(world.store, name) is None
    assert check_object(world.store, "f" * 64 + ".0644.0.0") == "missing"
    assert "is not an object name" in (check_object(world.store, "bogus") or "")


def test_owner_is_checked_only_in_a_privileged_store(tmp_path: Path) -> None:
    if not can_chown(tmp_path):
        pytest.skip("needs CAP_CHOWN")
    store = new_store(tmp_path, privileged=True)
    with store.locked(LockMode.EXCLUSIVE):
        name = store.object_writer().put(io.BytesIO(b"x"), 1, ObjectMeta(0o644, 10, 20), "f")
    assert check_object(store, name) is None
    os.chown(store.object_path(name), 4321, 20)
    assert check_object(store, name) == "owner is 4321:20, not 10:20"
    assert check_object(Store(store.path, privileged=False), name) is None


def test_xattrs_are_checked_in_a_privileged_store(tmp_path: Path) -> None:
    if not can_chown(tmp_path) or not can_set_user_xattr(tmp_path):
        pytest.skip("needs CAP_CHOWN and user xattrs")
    store = new_store(tmp_path, privileged=True)
    meta = ObjectMeta(0o644, 0, 0, (("user.k", b"v"),))
    with store.locked(LockMode.EXCLUSIVE):
        name = store.object_writer().put(io.BytesIO(b"x"), 1, meta, "f")
    assert check_object(store, name) is None
    os.removexattr(store.object_path(name), "user.k")
    assert check_object(store, name) == "xattrs differ"
