"""Tests for syscontainers.store: layout, blobs, layer trees, refs and pins."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from syscontainers.errors import (
    DigestMismatchError,
    ImageNotFoundError,
    ManifestError,
    StoreCorruptError,
)
from syscontainers.oci import digest_hex, sha256_digest
from syscontainers.store import Store
from syscontainers.store.lock import LockMode
from syscontainers.store.objects import OBJECT_DIRS, ObjectMeta, object_dir, object_relpath
from syscontainers.tree import Entry, EntryKind, LayerTree

DIFF = "sha256:" + "d" * 64
BLOB = "sha256:" + "b" * 64


def tree_with(store: Store, files: dict[str, bytes], diff_id: str = DIFF) -> LayerTree:
    writer = store.object_writer()
    entries = [Entry("", EntryKind.DIR, 0o755)]
    for path, data in files.items():
        name = writer.put(io.BytesIO(data), len(data), ObjectMeta(0o644, 0, 0), path)
        entries.append(Entry(path, EntryKind.FILE, 0o644, obj=name, size=len(data)))
    entries.append(Entry("bin/sh", EntryKind.SYMLINK, 0o777, target="busybox"))
    entries.append(Entry("dev/null", EntryKind.CHAR, 0o666, rdev=(1, 3)))
    entries.append(Entry("gone", EntryKind.WHITEOUT))
    return LayerTree(diff_id, 4096, tuple(entries))


# ---- layout and locking -----------------------------------------------------------


def test_writer_lock_creates_the_layout(tmp_path: Path) -> None:
    s = Store(tmp_path / "store", privileged=False)
    assert not s.path.exists()
    with s.locked(LockMode.EXCLUSIVE) as held:
        assert held is s
        for d in (s.blobs_dir, s.by_blob_dir, s.refs_dir, s.pins_dir, s.tmp_dir):
            assert d.is_dir(), d
        assert sorted(os.listdir(s.objects_dir)) == [f"{i:02x}" for i in range(256)]
        assert stat.S_IMODE(s.tmp_dir.stat().st_mode) == 0o700
        assert (s.path / "lock").read_text().strip() == str(os.getpid())


def _put(store: Store, writer_count: list[int], data: bytes) -> str:
    writer = store.object_writer()
    name = writer.put(io.BytesIO(data), len(data), ObjectMeta(0o644, 0, 0), "f")
    writer_count.append(writer.objects_written)
    return name


def test_objects_are_deduplicated_in_a_new_store_and_after_it(tmp_path: Path) -> None:
    """The first writer of a new store skips listing its empty objects/XX; every later one
    (even of the same Store, after another process wrote) must see what is there."""
    first, other = Store(tmp_path / "s", privileged=False), Store(tmp_path / "s", privileged=False)
    written: list[int] = []
    with first.locked(LockMode.EXCLUSIVE):
        w = first.object_writer()
        names = {w.put(io.BytesIO(b"same"), 4, ObjectMeta(0o644, 0, 0), "f") for _ in range(2)}
        assert len(names) == 1 and w.objects_written == 1
        _put(first, written, b"same")
    with other.locked(LockMode.EXCLUSIVE):
        _put(other, written, b"same")
    assert written == [0, 0]


def test_a_store_made_without_writing_does_not_trust_its_dirs_later(tmp_path: Path) -> None:
    first, other = Store(tmp_path / "s", privileged=False), Store(tmp_path / "s", privileged=False)
    written: list[int] = []
    with first.locked(LockMode.EXCLUSIVE):
        pass  # makes objects/00..ff, takes no writer
    with other.locked(LockMode.EXCLUSIVE):
        name = _put(other, written, b"by another process")
    with first.locked(LockMode.EXCLUSIVE):
        assert _put(first, written, b"by another process") == name
    assert written == [1, 0]


def test_object_dirs_made_earlier_are_not_taken_for_empty(tmp_path: Path) -> None:
    """A store whose objects/ff is missing (cut short while made) is completed, and the
    directories that were there already are listed, not assumed empty."""
    s = Store(tmp_path / "s", privileged=False)
    with s.locked(LockMode.EXCLUSIVE):
        name = _put(s, [], b"kept")
    assert object_dir(name) != "ff"
    os.rmdir(s.objects_dir / "ff")
    written: list[int] = []
    with s.locked(LockMode.EXCLUSIVE):
        assert sorted(os.listdir(s.objects_dir)) == list(OBJECT_DIRS)
        _put(s, written, b"kept")
    assert written == [0]


def test_reader_lock_on_a_missing_store_creates_nothing(tmp_path: Path) -> None:
    s = Store(tmp_path / "nowhere", privileged=False)
    with s.locked(LockMode.SHARED):
        assert s.refs() == {} and s.pins() == {}
        assert s.list_blobs() == [] and s.list_layers() == []
    assert not s.path.exists()


def test_writer_clears_tmp_and_reader_does_not(store: Store) -> None:
    (store.tmp_dir / "half-written").write_bytes(b"x")
    (store.tmp_dir / "sub").mkdir()
    (store.tmp_dir / "sub" / "f").write_bytes(b"y")
    os.chmod(store.tmp_dir / "sub", 0o500)  # even a read-only leftover goes
    with store.locked(LockMode.SHARED):
        assert (store.tmp_dir / "half-written").exists()
    with store.locked(LockMode.EXCLUSIVE):
        assert os.listdir(store.tmp_dir) == []


def test_privileged_defaults_to_euid(tmp_path: Path) -> None:
    assert Store(tmp_path).privileged is (os.geteuid() == 0)
    assert Store(tmp_path, privileged=False).privileged is False


def test_object_path(store: Store) -> None:
    name = "ab" + "0" * 62 + ".0644.0.0"
    assert store.object_path(name) == store.objects_dir / "ab" / name
    assert store.object_writer().path(name) == store.object_path(name)
    assert object_relpath(name) == f"{object_dir(name)}/{name}" == f"ab/{name}"
    # the store makes every objects/XX that a name can map to, and nothing else
    assert sorted(os.listdir(store.objects_dir)) == list(OBJECT_DIRS)
    assert len(OBJECT_DIRS) == 256 and object_dir("ff" + name[2:]) == OBJECT_DIRS[-1]


# ---- blobs --------------------------------------------------------------------------


def test_blob_round_trip(store: Store) -> None:
    data = b'{"schemaVersion":2}'
    digest = store.put_blob(data)
    assert digest == sha256_digest(data)
    assert store.get_blob(digest) == data
    assert store.has_blob(digest)
    assert store.list_blobs() == [digest]
    path = store.blobs_dir / digest_hex(digest)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert store.put_blob(data, digest) == digest  # idempotent, with the digest checked
    assert store.list_blobs() == [digest]


def test_put_blob_checks_the_digest(store: Store) -> None:
    with pytest.raises(DigestMismatchError) as e:
        store.put_blob(b"real content", BLOB)
    assert BLOB in e.value.message and sha256_digest(b"real content") in e.value.message
    assert store.list_blobs() == []
    assert os.listdir(store.blobs_dir) == []  # not even a temp file


def test_get_missing_blob(store: Store) -> None:
    with pytest.raises(ImageNotFoundError, match="is not in the store"):
        store.get_blob(BLOB)
    assert not store.has_blob(BLOB)


def test_get_blob_with_a_malformed_digest(store: Store) -> None:
    with pytest.raises(ManifestError, match="not a sha256 digest"):
        store.get_blob("sha256:../../etc/passwd")


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[:-1] + bytes([b[-1] ^ 1]),  # one flipped bit
        lambda b: b[:-1],  # truncated
        lambda b: b + b" ",  # extended
        lambda b: b"",  # emptied
    ],
    ids=["flipped", "truncated", "extended", "emptied"],
)
def test_damaged_blob_is_detected_and_healed_by_a_new_put(store: Store, damage: object) -> None:
    data = b'{"config":{},"layers":[]}'
    digest = store.put_blob(data)
    path = store.blobs_dir / digest_hex(digest)
    path.write_bytes(damage(data))  # type: ignore[operator]
    with pytest.raises(StoreCorruptError, match=f"blob {digest} in the store is damaged") as e:
        store.get_blob(digest)
    assert e.value.hint and "verify" in e.value.hint
    # pulling the image again puts the same blob: that must repair it, not keep the damage
    store.put_blob(data, digest)
    assert store.get_blob(digest) == data


# ---- layers ---------------------------------------------------------------------------


def test_layer_round_trip_with_blob_mapping(store: Store) -> None:
    tree = tree_with(store, {"etc/hostname": b"box\n", "empty": b""})
    assert not store.has_layer(DIFF)
    store.put_layer(tree, BLOB)
    assert store.has_layer(DIFF)
    assert store.get_layer(DIFF) == tree
    assert store.layer_path(DIFF) == store.layers_dir / f"{'d' * 64}.json"
    assert store.list_layers() == [DIFF]
    assert store.diff_id_for_blob(BLOB) == DIFF
    assert (store.by_blob_dir / ("b" * 64)).read_text() == DIFF


def test_uncompressed_layer_maps_to_itself(store: Store) -> None:
    store.put_layer(tree_with(store, {"a": b"a"}), DIFF)
    assert os.listdir(store.by_blob_dir) == []
    assert store.diff_id_for_blob(DIFF) == DIFF
    assert store.diff_id_for_blob(BLOB) is None


def test_get_missing_layer(store: Store) -> None:
    with pytest.raises(ImageNotFoundError, match=f"layer {DIFF} is not in the store") as e:
        store.get_layer(DIFF)
    assert e.value.hint and "pull" in e.value.hint


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b"{",
        b"[]",
        b'{"version": 2, "diff_id": "x", "size": 0, "entries": []}',
        b'{"version": 1, "size": 0, "entries": []}',
        b'{"version": 1, "diff_id": "x", "size": 0, "entries": [["a", "?", 0, 0, 0, 0, null]]}',
    ],
)
def test_damaged_layer_tree(store: Store, text: bytes) -> None:
    store.layer_path(DIFF).write_bytes(text)
    with pytest.raises(StoreCorruptError, match=f"layer tree {DIFF} is damaged"):
        store.get_layer(DIFF)


def test_missing_objects(store: Store) -> None:
    tree = tree_with(store, {"a": b"A", "b": b"B", "a2": b"A"})
    store.put_layer(tree, None)
    assert store.missing_objects(DIFF) == []
    obj_b = next(e.obj for e in tree.entries if e.path == "b")
    os.unlink(store.object_path(obj_b))
    assert store.missing_objects(DIFF) == [obj_b]


# ---- refs and pins ---------------------------------------------------------------------

KEYS = [
    "busybox:latest",
    "example.org/etcd:3.5",
    "example.org:5000/team/app:v1.2",
    "[::1]:5000/a/b:c",
    "localhost/x:y",
    "name%with%percent:1",
    "a/b/c/d/e:f",
]


@pytest.mark.parametrize("key", KEYS)
def test_ref_round_trip(store: Store, key: str) -> None:
    digest = sha256_digest(key.encode())
    store.set_ref(key, digest)
    assert store.refs() == {key: digest}
    assert len(os.listdir(store.refs_dir)) == 1  # one flat file, whatever the slashes
    assert store.delete_ref(key) is True
    assert store.refs() == {}
    assert store.delete_ref(key) is False


def test_refs_are_independent_and_overwritable(store: Store) -> None:
    for key in KEYS:
        store.set_ref(key, sha256_digest(key.encode()))
    store.set_ref(KEYS[0], BLOB)
    refs = store.refs()
    assert set(refs) == set(KEYS)
    assert refs[KEYS[0]] == BLOB
    assert refs[KEYS[1]] == sha256_digest(KEYS[1].encode())


def test_refs_ignore_temp_files(store: Store) -> None:
    store.set_ref("a:b", BLOB)
    (store.refs_dir / ".tmp-a%3Ab-123456").write_text("sha256:junk")
    assert store.refs() == {"a:b": BLOB}


def test_pins(store: Store) -> None:
    store.pin("mount:/var/lib/x", BLOB)
    store.pin("container:etcd.0", DIFF)
    assert store.pins() == {"mount:/var/lib/x": BLOB, "container:etcd.0": DIFF}
    store.unpin("mount:/var/lib/x")
    store.unpin("never-pinned")  # no error
    assert store.pins() == {"container:etcd.0": DIFF}
    assert store.refs() == {}  # pins are not tags
