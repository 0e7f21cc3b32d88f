"""Garbage collection: remove every object, layer tree and blob no root reaches.

The objects to keep are never held all at once: the layers' sorted object lists are merged,
and each ``objects/XX`` directory is swept against the names that start with XX.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from syscontainers.errors import StoreCorruptError
from syscontainers.oci import digest_hex
from syscontainers.record import record
from syscontainers.store import Store
from syscontainers.store.graph import Graph, walk
from syscontainers.store.objects import object_dir


@record
class PruneResult:
    """What prune removed, and the disk it gave back."""

    objects: int
    layers: int
    blobs: int
    bytes_freed: int
    dry_run: bool


def _remove(path: str, dry_run: bool) -> int:
    """Unlink PATH; return the bytes this frees (0 while checkouts still hardlink it)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return 0
    freed = st.st_size if st.st_nlink == 1 else 0
    if not dry_run:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    return freed


class ByPrefix:
    """The names of a sorted stream, handed out one objects/XX directory at a time."""

    def __init__(self, names: Iterator[str]) -> None:
        self._names = names
        self._next = next(names, None)

    def take(self, prefix: str) -> set[str]:
        """The names that start with PREFIX (two characters; call in increasing order)."""
        out = set()
        while self._next is not None and object_dir(self._next) <= prefix:
            if object_dir(self._next) == prefix:
                out.add(self._next)
            self._next = next(self._names, None)
        return out


def object_dirs(store: Store) -> list[os.DirEntry[str]]:
    """The objects/XX directories, in name order."""
    if not store.objects_dir.is_dir():
        return []
    return sorted((d for d in os.scandir(store.objects_dir) if d.is_dir()), key=lambda d: d.name)


def _sweep_objects(store: Store, graph: Graph, dry_run: bool) -> tuple[int, int]:
    count = freed = 0
    kept = ByPrefix(name for name, _, _ in graph.objects())
    for sub in object_dirs(store):
        keep = kept.take(sub.name)
        for entry in os.scandir(sub.path):
            if entry.name not in keep:
                freed += _remove(entry.path, dry_run)
                count += 1
    return count, freed


def _sweep_layers(store: Store, graph: Graph, dry_run: bool) -> tuple[int, int]:
    count = freed = 0
    for diff_id in store.list_layers():
        if diff_id not in graph.layers:
            freed += _remove(str(store.layer_path(diff_id)), dry_run)
            count += 1
    for entry in os.scandir(store.layers_dir) if store.layers_dir.is_dir() else ():
        if entry.name.endswith(".objects") and "sha256:" + entry.name[:-8] not in graph.layers:
            freed += _remove(entry.path, dry_run)
    if store.by_blob_dir.is_dir():
        kept_blobs = {digest_hex(b) for img in graph.images.values() for b in img.blob_digests}
        for entry in os.scandir(store.by_blob_dir):
            if entry.name not in kept_blobs:
                freed += _remove(entry.path, dry_run)
    return count, freed


def _sweep_blobs(store: Store, graph: Graph, dry_run: bool) -> tuple[int, int]:
    keep = graph.blobs()
    count = freed = 0
    for digest in store.list_blobs():
        if digest not in keep:
            freed += _remove(str(store.blobs_dir / digest_hex(digest)), dry_run)
            count += 1
    return count, freed


def prune(store: Store, dry_run: bool = False) -> PruneResult:
    """Remove what no tag or pin reaches (call under the exclusive lock)."""
    graph = walk(store, migrate=not dry_run)
    if graph.broken:
        what, item, detail = graph.broken[0]
        raise StoreCorruptError(
            f"cannot prune: the {what} {item} is damaged ({detail}), so what it uses is unknown",
            hint="run 'syscontainers images verify', then pull the damaged image again "
            "or delete its tag",
        )
    n_obj, b_obj = _sweep_objects(store, graph, dry_run)
    n_lay, b_lay = _sweep_layers(store, graph, dry_run)
    n_blob, b_blob = _sweep_blobs(store, graph, dry_run)
    freed = _sweep_quarantine(store, dry_run)
    return PruneResult(n_obj, n_lay, n_blob, b_obj + b_lay + b_blob + freed, dry_run)


def _sweep_quarantine(store: Store, dry_run: bool) -> int:
    qdir = store.path / "quarantine"
    if not qdir.is_dir():
        return 0
    return sum(_remove(entry.path, dry_run) for entry in os.scandir(qdir))
