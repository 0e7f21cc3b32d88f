"""The reference graph of the store: images -> config and layers -> objects.

``walk`` reads every root (refs and pins) and follows it down; garbage
collection, fsck and the image listing all work from the same Graph.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator

from syscontainers.errors import SysContainersError
from syscontainers.oci import parse_config, parse_manifest
from syscontainers.record import field, mutable_record, record
from syscontainers.store import Store, missing_layer
from syscontainers.store.objects import is_link_object
from syscontainers.store.trees import Source, merged_objects


@record
class ImageNode:
    """One image reachable from a root."""

    manifest_digest: str
    config_digest: str
    diff_ids: tuple[str, ...]
    blob_digests: tuple[str, ...]
    names: tuple[str, ...]  # the tags (and pins) that reach it


@mutable_record
class Graph:
    """Everything reachable, plus what could not be read. The objects are not held: each
    layer's sorted object list is merged on demand (``objects``)."""

    images: dict[str, ImageNode] = field(default_factory=dict)
    layers: dict[str, Source] = field(default_factory=dict)  # diff_id -> its object list
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
        return self.images_of_layers((diff_id,))

    def images_of_layers(self, diff_ids: Iterable[str]) -> list[str]:
        """The names of every image that uses one of DIFF_IDS."""
        wanted = set(diff_ids)
        return sorted(
            {n for img in self.images.values() if wanted & set(img.diff_ids) for n in img.names}
        )

    def layer_images(self) -> dict[str, set[str]]:
        """diff_id -> the manifest digests of the images that use it."""
        out: dict[str, set[str]] = defaultdict(set)
        for digest, img in self.images.items():
            for diff_id in img.diff_ids:
                out[diff_id].add(digest)
        return out

    def objects(
        self, diff_ids: Iterable[str] | None = None
    ) -> Iterator[tuple[str, int, tuple[str, ...]]]:
        """(name, size, layers using it) for every object of DIFF_IDS (default: all readable
        layers), in name order, file and symlink objects alike."""
        wanted = self.layers if diff_ids is None else set(diff_ids)
        return merged_objects({d: self.layers[d] for d in wanted if d in self.layers})

    def image_layers(self, manifest_digests: Iterable[str]) -> set[str]:
        """The layers of the images MANIFEST_DIGESTS."""
        return {d for m in manifest_digests for d in self.images[m].diff_ids}

    def image_objects(self, manifest_digest: str) -> set[str]:
        """Every file object one image's layers reference (held whole: for small uses)."""
        layers = self.images[manifest_digest].diff_ids
        return {name for name, _, _ in self.objects(layers) if not is_link_object(name)}

    def images_of_object(self, obj: str) -> list[str]:
        """The names of every image that uses an object (a scan: for single lookups)."""
        for name, _, layers in self.objects():
            if name == obj:
                return self.images_of_layers(layers)
        return []


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


def walk(store: Store, migrate: bool = False) -> Graph:
    """Follow every root down to the layers' object lists (checked whole, not held), noting
    what is missing or damaged. With MIGRATE (under the exclusive lock), a layer stored
    before object lists gets one written."""
    graph = Graph()
    for digest, names in roots(store).items():
        try:
            graph.images[digest] = _image(store, digest, names)
        except SysContainersError as e:
            graph.broken.append(("image", ", ".join(sorted(names)), e.message))
            graph.images[digest] = ImageNode(digest, "", (), (), tuple(sorted(names)))
    seen: set[str] = set()
    for img in list(graph.images.values()):
        for diff_id in img.diff_ids:
            if diff_id in seen:
                continue
            seen.add(diff_id)
            try:
                graph.layers[diff_id] = _layer(store, diff_id, migrate)
            except SysContainersError as e:
                graph.broken.append(("layer", diff_id, e.message))
    return graph


def _layer(store: Store, diff_id: str, migrate: bool) -> Source:
    if not store.has_layer(diff_id):
        raise missing_layer(diff_id)
    return store.layer_objects(diff_id, migrate)
