"""The reference graph of the store: images -> config and layers -> objects.

``walk`` reads every root (refs and pins) and follows it down; garbage
collection, fsck and the image listing all work from the same Graph.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from syscontainers.errors import SysContainersError
from syscontainers.oci import parse_config, parse_manifest
from syscontainers.store import Store
from syscontainers.store.objects import symlink_object
from syscontainers.tree import LayerTree


@dataclass(frozen=True, slots=True)
class ImageNode:
    """One image reachable from a root."""

    manifest_digest: str
    config_digest: str
    diff_ids: tuple[str, ...]
    blob_digests: tuple[str, ...]
    names: tuple[str, ...]  # the tags (and pins) that reach it


@dataclass(slots=True)
class Graph:
    """Everything reachable, plus what could not be read."""

    images: dict[str, ImageNode] = field(default_factory=dict)
    layers: dict[str, LayerTree] = field(default_factory=dict)
    object_sizes: dict[str, int] = field(default_factory=dict)
    object_layers: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    link_objects: set[str] = field(default_factory=set)  # symlink objects the layers can use
    broken: list[tuple[str, str, str]] = field(default_factory=list)  # (what, item, detail)

    def blobs(self) -> set[str]:
        """Every blob digest the images need (manifests and configs)."""
        out: set[str] = set()
        for img in self.images.values():
            out.add(img.manifest_digest)
            if img.config_digest:
                out.add(img.config_digest)
        return out

    def images_of_layer(self, diff_id: str) -> list[str]:
        """The names of every image that uses a layer."""
        return sorted(
            {n for img in self.images.values() if diff_id in img.diff_ids for n in img.names}
        )

    def images_of_object(self, obj: str) -> list[str]:
        """The names of every image that uses an object."""
        return sorted({n for d in self.object_layers.get(obj, ()) for n in self.images_of_layer(d)})

    def image_objects(self, manifest_digest: str) -> set[str]:
        """Every file object one image's layers reference."""
        out: set[str] = set()
        for diff_id in self.images[manifest_digest].diff_ids:
            tree = self.layers.get(diff_id)
            if tree is not None:
                out.update(tree.objects())
        return out

    def image_links(self, manifest_digest: str) -> set[str]:
        """Every symlink object one image's layers can use (some may not exist: a cache)."""
        out: set[str] = set()
        for diff_id in self.images[manifest_digest].diff_ids:
            tree = self.layers.get(diff_id)
            if tree is not None:
                out.update(filter(None, map(symlink_object, tree.entries)))
        return out


def roots(store: Store) -> dict[str, list[str]]:
    """Manifest digest -> the tags and pins that keep it alive."""
    out: dict[str, list[str]] = defaultdict(list)
    for key, digest in store.refs().items():
        out[digest].append(key)
    for pin, digest in store.pins().items():
        out[digest].append(f"[{pin}]")
    return out


def _image(store: Store, digest: str, names: list[str]) -> ImageNode:
    manifest = parse_manifest(store.get_blob(digest), f"manifest {digest}")
    config = parse_config(store.get_blob(manifest.config.digest), f"config of {digest}")
    return ImageNode(
        digest,
        manifest.config.digest,
        config.diff_ids,
        tuple(d.digest for d in manifest.layers),
        tuple(sorted(names)),
    )


def walk(store: Store, with_objects: bool = True) -> Graph:
    """Follow every root down to the objects, noting what is missing or damaged."""
    graph = Graph()
    for digest, names in roots(store).items():
        try:
            graph.images[digest] = _image(store, digest, names)
        except SysContainersError as e:
            graph.broken.append(("image", ", ".join(sorted(names)), e.message))
            graph.images[digest] = ImageNode(digest, "", (), (), tuple(sorted(names)))
    for img in list(graph.images.values()):
        for diff_id in img.diff_ids:
            if diff_id in graph.layers:
                continue
            try:
                graph.layers[diff_id] = store.get_layer(diff_id)
            except SysContainersError as e:
                graph.broken.append(("layer", diff_id, e.message))
    if with_objects:
        for diff_id, tree in graph.layers.items():
            for entry in tree.entries:
                if entry.obj:
                    graph.object_sizes[entry.obj] = entry.size
                    graph.object_layers[entry.obj].add(diff_id)
                elif link := symlink_object(entry):
                    graph.link_objects.add(link)
                    graph.object_layers[link].add(diff_id)
    return graph
