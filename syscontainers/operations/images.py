"""Image management: resolve names, list, inspect, tag, delete, prune and verify."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from syscontainers.errors import ImageInUseError, ImageNotFoundError, UsageError
from syscontainers.oci import ImageConfig, Manifest, digest_hex, parse_config, parse_manifest
from syscontainers.record import record, replace
from syscontainers.reference import parse as parse_reference
from syscontainers.store import Store, access
from syscontainers.store.lock import LockMode
from syscontainers.tree import LayerTree

if TYPE_CHECKING:  # gc, fsck and the store graph load only for the verbs that use them
    from syscontainers.store.fsck import Problem, VerifyReport
    from syscontainers.store.gc import PruneResult
    from syscontainers.store.graph import Graph


@record
class StoredImage:
    """An image in the store, with everything needed to check it out."""

    label: str  # the name the user gave, or the digest
    manifest_digest: str
    manifest: Manifest
    config: ImageConfig
    layers: tuple[tuple[str, LayerTree], ...]  # (label, tree) bottom first


def _by_digest(store: Store, text: str) -> str | None:
    hexpart = text.removeprefix("sha256:")
    if len(hexpart) < 6 or any(c not in "0123456789abcdef" for c in hexpart):
        return None
    known = set(store.refs().values()) | set(store.pins().values())
    found = sorted(d for d in known if digest_hex(d).startswith(hexpart))
    if len(found) > 1:
        raise UsageError(
            f"image id {text!r} is ambiguous: it matches {len(found)} images",
            hint="give more digits of the id",
        )
    return found[0] if found else None


def resolve(store: Store, text: str) -> str:
    """The manifest digest of the image TEXT names: a tag, a short name or an id prefix."""
    refs = store.refs()
    digest = _by_digest(store, text)
    if digest is not None:
        return digest
    ref = parse_reference(text)
    if ref.digest:
        if ref.digest in refs.values() or ref.digest in store.pins().values():
            return ref.digest
    elif ref.store_key in refs:
        return refs[ref.store_key]
    elif not ref.domain:
        suffix = "/" + ref.store_key
        hits = sorted(k for k in refs if k.endswith(suffix))
        if len(hits) == 1:
            return refs[hits[0]]
        if hits:
            raise UsageError(
                f"image name {text!r} is ambiguous: {', '.join(hits)}",
                hint="give the full name",
            )
    raise ImageNotFoundError(
        f"image {text!r} is not in the store",
        hint="see 'syscontainers images list', or pull it first",
    )


def load_image(store: Store, manifest_digest: str, label: str) -> StoredImage:
    """Read an image's manifest, config and layer trees from the store."""
    manifest = parse_manifest(store.get_blob(manifest_digest), f"manifest of {label}")
    config = parse_config(store.get_blob(manifest.config.digest), f"config of {label}")
    n = len(config.diff_ids)
    layers = tuple(
        (f'image "{label}" layer {i + 1}/{n}', store.get_layer(d))
        for i, d in enumerate(config.diff_ids)
    )
    return StoredImage(label, manifest_digest, manifest, config, layers)


def find_image(store: Store, text: str) -> StoredImage:
    """Resolve TEXT and load the image (call under a lock)."""
    return load_image(store, resolve(store, text), text)


@record
class ImageRow:
    """One line of ``images list``."""

    name: str
    tag: str
    image_id: str
    created: str
    size: int
    unique_size: int
    in_use: bool


def split_key(key: str) -> tuple[str, str]:
    """``name:tag`` -> (name, tag); ``name@sha256:…`` -> (name, "<none>")."""
    if "@" in key:
        return key.split("@", 1)[0], "<none>"
    name, _, tag = key.rpartition(":")
    return name, tag


def list_images(store: Store, show_all: bool = False) -> list[ImageRow]:
    """Every tagged image (and, with SHOW_ALL, untagged ones still pinned), under the shared
    lock."""
    from syscontainers.store.graph import walk  # not for checkout, which finds one image

    with store.locked(LockMode.SHARED):
        graph = walk(store)
        size, unique = image_sizes(graph)
        pinned = set(store.pins().values())
        rows = []
        for digest, node in graph.images.items():
            created = _created(store, node.config_digest)
            tags = [n for n in node.names if not n.startswith("[")]
            if not tags and show_all:
                tags = ["<none>:<none>"]
            for key in tags:
                name, tag = split_key(key)
                rows.append(
                    ImageRow(
                        name, tag, digest, created, size[digest], unique[digest], digest in pinned
                    )
                )
    return sorted(rows, key=lambda r: (r.name, r.tag))


def image_sizes(graph: Graph) -> tuple[Counter[str], Counter[str]]:
    """Per image: the bytes of the objects it uses, and of those no other image uses.
    One merge of every layer's sorted object list: memory does not grow with the objects."""
    layer_images = graph.layer_images()
    size: Counter[str] = Counter()
    unique: Counter[str] = Counter()
    for _, nbytes, layers in graph.objects():
        holders = layer_images[layers[0]]
        if len(layers) > 1:
            holders = set().union(*(layer_images[d] for d in layers))
        for digest in holders:
            size[digest] += nbytes
        if len(holders) == 1:
            unique[next(iter(holders))] += nbytes
    return size, unique


def _created(store: Store, config_digest: str) -> str:
    if not config_digest:
        return ""
    try:
        return parse_config(store.get_blob(config_digest)).created
    except Exception:  # noqa: BLE001 - a damaged config shows as unknown, verify reports it
        return ""


def tag_image(store: Store, source: str, dest: str) -> str:
    """Point the tag DEST at the image SOURCE names, under the exclusive lock; returns the
    new key."""
    with store.locked(LockMode.EXCLUSIVE):
        digest = resolve(store, source)
        key = parse_reference(dest).store_key
        store.set_ref(key, digest)
    return key


def delete_images(store: Store, names: Sequence[str], force: bool = False) -> list[str]:
    """Remove tags (an id removes all its tags), under the exclusive lock; refuse images in
    use unless FORCE."""
    with store.locked(LockMode.EXCLUSIVE):
        return _delete_images(store, names, force)


def _delete_images(store: Store, names: Sequence[str], force: bool) -> list[str]:
    refs = store.refs()
    pins = store.pins()
    plan: list[str] = []
    for text in names:
        digest = resolve(store, text)
        ref = parse_reference(text) if _by_digest(store, text) is None else None
        keys = (
            [ref.store_key]
            if ref and ref.store_key in refs
            else [k for k, d in refs.items() if d == digest]
        )
        users = sorted(p for p, d in pins.items() if d == digest)
        if users and not force:
            raise ImageInUseError(
                f"image {text!r} is in use by {', '.join(users)}",
                hint="unmount or uninstall it first, or pass --force to remove the tag anyway",
            )
        plan.extend(keys)
    for key in plan:
        store.delete_ref(key)
    return plan


def prune_store(store: Store, dry_run: bool = False) -> PruneResult:
    """Garbage-collect under the exclusive lock."""
    from syscontainers.store.gc import prune

    with store.locked(LockMode.EXCLUSIVE):
        return prune(store, dry_run)


def verify_images(
    store: Store,
    names: Sequence[str],
    on_progress: Callable[[int, int], None] | None = None,
) -> VerifyReport:
    """fsck the named images (all objects if none) under the exclusive lock, and the store's
    permissions: those the lock fixed (as every writer does) are reported too, since other
    users could reach the objects until then; the re-hash shows whether any was changed."""
    from syscontainers.store.fsck import verify

    found = access.check(store.path)
    with store.locked(LockMode.EXCLUSIVE):
        manifests = [resolve(store, n) for n in names] if names else None
        report = verify(store, manifests, on_progress)
        left = access.check(store.path)
    return replace(report, problems=_access_problems(found, left) + report.problems)


def _access_problems(
    found: Sequence[access.AccessProblem], left: Sequence[access.AccessProblem]
) -> tuple[Problem, ...]:
    from syscontainers.store.fsck import Problem, ProblemKind

    return tuple(
        Problem(
            ProblemKind.BAD_PERMISSIONS,
            str(p.path),
            p.detail + ("" if p in left else " (now fixed)"),
            (),
        )
        for p in found
    )
