"""Tests for syscontainers.store.trees and the streamed tree format: object lists, trees stored
before them, damage, and the listing, prune and verify that read them."""

from __future__ import annotations

import gc
import io
import json
from pathlib import Path

import pytest

from syscontainers.errors import StoreCorruptError
from syscontainers.operations.images import list_images
from syscontainers.store import Store
from syscontainers.store.fsck import verify
from syscontainers.store.gc import prune
from syscontainers.store.graph import walk
from syscontainers.store.trees import LayerWriter, read_object_list, write_object_list
from syscontainers.tree import Entry, EntryKind, LayerTree, iter_entries, read_tree
from tests.unit.store_fixtures import add_image, add_layer, objects_of, store_files

SHARED = b"shared by A and B"
FILES_A = {"etc/a": b"only in A", "shared": SHARED}
FILES_B = {"bin/b": b"only in B, longer", "shared": SHARED}


@pytest.fixture
def store(store: Store) -> Store:
    """The empty store (tests/conftest.py) with the images a and b."""
    store.set_ref("example.org/a:1", add_image(store, [add_layer(store, FILES_A)]))
    store.set_ref("example.org/b:1", add_image(store, [add_layer(store, FILES_B)]))
    return store


def to_old_format(store: Store) -> None:
    """Rewrite every tree as a store from before object lists held it: one line, no list."""
    for diff_id in store.list_layers():
        tree = store.get_layer(diff_id)
        doc = {
            "version": 1,
            "diff_id": diff_id,
            "size": tree.size,
            "entries": [e.to_row() for e in tree.entries],
        }
        store.layer_path(diff_id).write_text(json.dumps(doc))
        store.objects_list_path(diff_id).unlink()


def sizes(store: Store) -> dict[str, tuple[int, int]]:
    return {r.name: (r.size, r.unique_size) for r in list_images(store)}


EXPECTED_SIZES = {
    "example.org/a": (len(b"only in A") + len(SHARED), len(b"only in A")),
    "example.org/b": (len(b"only in B, longer") + len(SHARED), len(b"only in B, longer")),
}


def test_list_counts_shared_objects_once_and_unique_bytes(store: Store) -> None:
    assert sizes(store) == EXPECTED_SIZES


def test_a_store_from_before_object_lists_is_read_and_migrated(store: Store) -> None:
    to_old_format(store)
    before = store_files(store)
    assert sizes(store) == EXPECTED_SIZES
    assert not verify(store, repair=False).problems
    assert prune(store).objects == 0  # nothing in use went
    after = store_files(store)
    lists = {p for p in after if p.endswith(".objects")}
    assert len(lists) == 2 and set(after) - set(before) == lists  # written, nothing else
    assert sizes(store) == EXPECTED_SIZES


def test_listing_a_store_from_before_object_lists_writes_nothing(store: Store) -> None:
    to_old_format(store)
    before = store_files(store)
    assert sizes(store) == EXPECTED_SIZES
    assert store_files(store) == before


@pytest.mark.parametrize("cut", [1, 20, 40])
def test_a_damaged_object_list_never_lets_prune_drop_objects_in_use(store: Store, cut: int) -> None:
    (diff_id,) = walk(store).images[store.refs()["example.org/a:1"]].diff_ids
    path = store.objects_list_path(diff_id)
    path.write_bytes(path.read_bytes()[:-cut])
    assert ("layer", diff_id) in [(w, i) for w, i, _ in walk(store).broken]  # the listing skips it
    assert prune(store).objects == 0  # rebuilt from the tree, not trusted
    assert list(read_object_list(path, "list"))  # and whole again
    assert sizes(store) == EXPECTED_SIZES


def test_verify_makes_an_object_list_agree_with_its_tree(store: Store) -> None:
    (diff_id,) = walk(store).images[store.refs()["example.org/a:1"]].diff_ids
    kept = objects_of(store, diff_id)["etc/a"]
    good = store.objects_list_path(diff_id).read_bytes()
    # a list that is whole in itself but lacks an object the tree uses
    write_object_list(
        store.objects_list_path(diff_id),
        [(n, s) for n, s in read_object_list(store.objects_list_path(diff_id), "l") if n != kept],
    )
    assert verify(store).ok
    assert store.objects_list_path(diff_id).read_bytes() == good
    assert prune(store).objects == 0


def test_missing_objects_rewrites_a_missing_object_list(store: Store) -> None:
    for diff_id in store.list_layers():
        store.objects_list_path(diff_id).unlink()
        assert store.missing_objects(diff_id) == []
        assert store.objects_list_path(diff_id).exists()


# ---- the streamed tree format --------------------------------------------------------------

ENTRIES = (
    Entry("", EntryKind.DIR, 0o755),
    Entry("etc", EntryKind.DIR, 0o755, 0, 0, 5),
    Entry("etc/a\udcff\u00e9", EntryKind.FILE, 0o644, 1, 2, 3, "a" * 64 + ".0644.1.2", 9),
    Entry("etc/l", EntryKind.SYMLINK, 0o777, target='a\n"b'),
    Entry("dev/null", EntryKind.CHAR, 0o666, rdev=(1, 3)),
    Entry("x", EntryKind.FILE, 0o600, obj="b" * 64 + ".0600.0.0.x", xattrs=(("user.k", b"\0"),)),
    Entry("gone", EntryKind.WHITEOUT),
    Entry("opq", EntryKind.OPAQUE),
)
TREE = LayerTree("sha256:" + "d" * 64, 4096, ENTRIES)


def test_one_entry_a_line_and_the_same_document() -> None:
    data = TREE.to_json()
    assert data.count(b"\n") == len(ENTRIES) + 2
    assert LayerTree.from_json(data) == TREE
    doc = json.loads(data)
    assert (doc["diff_id"], doc["size"], doc["count"]) == (TREE.diff_id, 4096, len(ENTRIES))


def test_streaming_reads_every_entry_in_small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("syscontainers.tree.READ_CHUNK", 10)  # a few lines a chunk
    assert tuple(iter_entries(io.BytesIO(TREE.to_json()))) == ENTRIES


def test_streaming_reads_a_tree_in_the_old_one_line_form() -> None:
    old = json.dumps(
        {
            "version": 1,
            "diff_id": TREE.diff_id,
            "size": 4096,
            "entries": [e.to_row() for e in ENTRIES],
        }
    ).encode()
    assert tuple(iter_entries(io.BytesIO(old))) == ENTRIES


def test_an_empty_tree_streams() -> None:
    empty = LayerTree(TREE.diff_id, 0, ())
    assert tuple(iter_entries(io.BytesIO(empty.to_json()))) == ()


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d[: d.index(b"\n],")],  # cut before the last line
        lambda d: d[:-40],  # the last line cut
        lambda d: d.replace(b'"count":8', b'"count":9'),
        lambda d: d + b"junk",
        lambda d: d.replace(b'["etc","d"', b'["etc","?"'),
        lambda d: d.replace(b'\n,["x"', b'\n,["x"]]'),
    ],
    ids=["no-last-line", "cut-last-line", "wrong-count", "trailing", "bad-kind", "bad-json"],
)
def test_damage_is_reported_when_streaming(damage: object) -> None:
    data = damage(TREE.to_json())  # type: ignore[operator]
    with pytest.raises(StoreCorruptError, match="tree t is damaged"):
        tuple(iter_entries(io.BytesIO(data), "tree t"))


@pytest.mark.parametrize("enabled", [True, False])
def test_reading_a_tree_leaves_the_collector_as_it_was(enabled: bool) -> None:
    was = gc.isenabled()
    gc.enable() if enabled else gc.disable()
    try:
        assert read_tree(io.BytesIO(TREE.to_json())).entries == ENTRIES  # paused meanwhile
        assert gc.isenabled() == enabled
        with pytest.raises(StoreCorruptError):
            read_tree(io.BytesIO(TREE.to_json()[:-40]))
        assert gc.isenabled() == enabled
    finally:
        gc.enable() if was else gc.disable()


def test_layer_writer_reads_back_what_it_wrote(tmp_path: Path) -> None:
    writer = LayerWriter(tmp_path)
    xattrs = (("user.k", b"v" * 200_000),)
    big = Entry("big", EntryKind.FILE, obj="c" * 64 + ".0644.0.0", xattrs=xattrs)
    where = [writer.add(e) for e in (*ENTRIES, big)]
    assert [writer.entry_at(w) for w in where] == [*ENTRIES, big]  # lines longer than a read too
    writer.finish(TREE.diff_id, 4096)
    with open(writer.path, "rb") as f:
        assert tuple(iter_entries(f)) == (*ENTRIES, big)
