"""Tests for syscontainers.store.gc and the graph it walks: prune frees exactly the unreachable."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from syscontainers.oci import digest_hex
from syscontainers.store import Store
from syscontainers.store.gc import PruneResult, prune
from syscontainers.store.graph import roots, walk
from tests.unit.store_fixtures import (
    add_image,
    add_layer,
    blob_of,
    config_digest,
    new_store,
    objects_of,
    put_object,
    store_files,
)


@dataclass
class World:
    """A store with a tagged image A, an untagged image B, a pinned image C, and debris."""

    store: Store
    a: str
    b: str
    c: str
    d: str
    l1: str
    l2: str
    l3: str
    l4: str
    lost: str
    stray_obj: str

    def rel_object(self, name: str) -> str:
        return f"objects/{name[:2]}/{name}"

    def rel_layer(self, diff_id: str) -> list[str]:
        h = digest_hex(diff_id)
        return [
            f"layers/{h}.json",
            f"layers/{h}.objects",
            f"layers/by-blob/{digest_hex(blob_of(diff_id))}",
        ]

    def rel_blobs(self, manifest: str) -> list[str]:
        cfg = config_digest(self.store, manifest)
        return [f"blobs/sha256/{digest_hex(manifest)}", f"blobs/sha256/{digest_hex(cfg)}"]


@pytest.fixture
def world(tmp_path: Path) -> World:
    store = new_store(tmp_path)
    l1 = add_layer(store, {"etc/a": b"A file", "shared": b"shared by A and B"})
    l2 = add_layer(store, {"bin/x": b"X binary"})
    l3 = add_layer(store, {"only-b": b"only in B", "shared": b"shared by A and B"})
    l4 = add_layer(store, {"c": b"pinned content"})
    lost = add_layer(store, {"lost": b"a layer no image names"})
    a = add_image(store, [l1, l2])
    b = add_image(store, [l2, l3])
    c = add_image(store, [l4])
    d = add_image(store, [l1], created="2020-01-01T00:00:00Z")  # blobs, never tagged
    stray = put_object(store, b"an object a crash left behind")
    store.set_ref("example.org/a:1", a)
    store.set_ref("example.org/a:latest", a)
    store.set_ref("example.org/b:1", b)
    store.pin("mount:/srv/c", c)
    store.delete_ref("example.org/b:1")
    return World(store, a, b, c, d, l1, l2, l3, l4, lost, stray)


def expected_garbage(w: World) -> set[str]:
    return {
        w.rel_object(objects_of(w.store, w.l3)["only-b"]),
        w.rel_object(objects_of(w.store, w.lost)["lost"]),
        w.rel_object(w.stray_obj),
        *w.rel_layer(w.l3),
        *w.rel_layer(w.lost),
        *w.rel_blobs(w.b),
        *w.rel_blobs(w.d),
    }


def test_graph_of_the_world(world: World) -> None:
    assert {k: sorted(v) for k, v in roots(world.store).items()} == {
        world.a: ["example.org/a:1", "example.org/a:latest"],
        world.c: ["[mount:/srv/c]"],
    }
    graph = walk(world.store)
    assert set(graph.images) == {world.a, world.c}
    assert graph.images[world.a].diff_ids == (world.l1, world.l2)
    assert graph.images[world.a].names == ("example.org/a:1", "example.org/a:latest")
    assert set(graph.layers) == {world.l1, world.l2, world.l4}
    assert graph.broken == []
    shared = objects_of(world.store, world.l1)["shared"]
    assert graph.images_of_object(shared) == ["example.org/a:1", "example.org/a:latest"]
    assert graph.images_of_layer(world.l4) == ["[mount:/srv/c]"]
    assert graph.image_objects(world.c) == set(objects_of(world.store, world.l4).values())
    sizes = {name: size for name, size, _ in graph.objects()}
    assert sizes[shared] == len(b"shared by A and B")
    assert graph.blobs() == {
        world.a,
        world.c,
        config_digest(world.store, world.a),
        config_digest(world.store, world.c),
    }


def test_prune_removes_exactly_the_garbage(world: World) -> None:
    before = store_files(world.store)
    garbage = expected_garbage(world)
    assert garbage <= set(before)
    result = prune(world.store)
    after = store_files(world.store)
    assert set(after) == set(before) - garbage
    assert result == PruneResult(
        objects=3, layers=2, blobs=4, bytes_freed=sum(before[p] for p in garbage), dry_run=False
    )
    # what is left is whole: every kept image still has every object
    for image in (world.a, world.c):
        for diff_id in walk(world.store).images[image].diff_ids:
            assert world.store.missing_objects(diff_id) == []
    assert prune(world.store) == PruneResult(0, 0, 0, 0, False)  # nothing left to do


def test_dry_run_changes_nothing(world: World) -> None:
    before = store_files(world.store)
    dry = prune(world.store, dry_run=True)
    assert store_files(world.store) == before
    assert dry.dry_run is True
    real = prune(world.store)
    assert (dry.objects, dry.layers, dry.blobs, dry.bytes_freed) == (
        real.objects,
        real.layers,
        real.blobs,
        real.bytes_freed,
    )
    assert dry.bytes_freed > 0


def test_unpinning_and_untagging_frees_the_rest(world: World) -> None:
    prune(world.store)
    world.store.unpin("mount:/srv/c")
    world.store.delete_ref("example.org/a:1")
    result = prune(world.store)
    assert result.layers == 1 and result.blobs == 2  # C only: A still has a tag
    world.store.delete_ref("example.org/a:latest")
    prune(world.store)
    assert store_files(world.store) == {}
    assert world.store.list_layers() == [] and world.store.list_blobs() == []


def test_hardlinked_objects_free_nothing(world: World, tmp_path: Path) -> None:
    checkout = tmp_path / "checkout-file"
    os.link(world.store.object_path(world.stray_obj), checkout)
    stray_size = checkout.stat().st_size
    dry = prune(world.store, dry_run=True)
    before = store_files(world.store)
    garbage = expected_garbage(world)
    result = prune(world.store)
    assert result.objects == 3  # removed from the store all the same...
    assert result.bytes_freed == sum(before[p] for p in garbage) - stray_size  # ...freeing 0
    assert dry.bytes_freed == result.bytes_freed
    assert not world.store.object_path(world.stray_obj).exists()
    assert checkout.read_bytes() == b"an object a crash left behind"


@pytest.mark.parametrize("made", [True, False])
def test_prune_an_empty_store(tmp_path: Path, made: bool) -> None:
    store = new_store(tmp_path) if made else Store(tmp_path / "none", privileged=False)
    assert prune(store) == PruneResult(0, 0, 0, 0, False)
    assert prune(store, dry_run=True) == PruneResult(0, 0, 0, 0, True)


def test_two_tags_one_image(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    image = add_image(store, [add_layer(store, {"f": b"f"})])
    store.set_ref("x:1", image)
    store.set_ref("y:2", image)
    before = store_files(store)
    store.delete_ref("x:1")
    assert prune(store) == PruneResult(0, 0, 0, 0, False)
    assert store_files(store) == before


def test_prune_refuses_while_an_image_is_damaged(world: World) -> None:
    """A damaged manifest hides what its image uses: prune must not guess and delete it."""
    from syscontainers.errors import StoreCorruptError

    path = world.store.blobs_dir / digest_hex(world.a)
    path.write_bytes(path.read_bytes() + b" ")
    before = store_files(world.store)
    with pytest.raises(StoreCorruptError) as e:
        prune(world.store)
    assert "example.org/a" in e.value.message and e.value.hint
    assert store_files(world.store) == before


def test_prune_empties_the_quarantine(world: World) -> None:
    qdir = world.store.path / "quarantine"
    qdir.mkdir()
    (qdir / "damaged-object").write_bytes(b"12345")
    result = prune(world.store)
    assert not os.listdir(qdir)
    assert result.bytes_freed >= 5
