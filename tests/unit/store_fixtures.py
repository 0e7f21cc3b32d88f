"""Builds stores by hand: an empty store (new_store, the one way tests make a fresh store), and
objects, layer trees, configs and manifests in it for the GC, fsck and tree tests."""

from __future__ import annotations

import io
import os
from pathlib import Path

from syscontainers.oci import (
    MT_OCI_CONFIG,
    MT_OCI_MANIFEST,
    canonical_json,
    parse_manifest,
    sha256_digest,
)
from syscontainers.store import Store
from syscontainers.store.lock import LockMode
from syscontainers.store.objects import ObjectMeta
from syscontainers.tree import Entry, EntryKind, LayerTree

MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def new_store(root: Path, privileged: bool | None = False) -> Store:
    """An empty store at ROOT/store with its layout made; unprivileged (owners are not checked)
    unless PRIVILEGED says otherwise (None: privileged when running as root, Store's default).
    The ``store`` fixture (tests/conftest.py) is ``new_store(tmp_path)``."""
    store = Store(root / "store", privileged=privileged)
    with store.locked(LockMode.EXCLUSIVE):
        pass
    return store


def put_object(store: Store, data: bytes, mode: int = 0o644) -> str:
    """Write one object; return its name."""
    return store.object_writer().put(io.BytesIO(data), len(data), ObjectMeta(mode, 0, 0), "f")


def blob_of(diff_id: str) -> str:
    """The (made-up) compressed blob digest of a layer."""
    return sha256_digest(b"gzip of " + diff_id.encode())


def add_layer(store: Store, files: dict[str, bytes]) -> str:
    """Write FILES as objects and publish their tree; return the diff_id."""
    entries = [Entry("", EntryKind.DIR, 0o755)]
    for path, data in sorted(files.items()):
        obj = put_object(store, data)
        entries.append(Entry(path, EntryKind.FILE, 0o644, obj=obj, size=len(data)))
    diff_id = sha256_digest(canonical_json(sorted((k, v.hex()) for k, v in files.items())))
    tree = LayerTree(diff_id, sum(len(v) for v in files.values()), tuple(entries))
    store.put_layer(tree, blob_of(diff_id))
    return diff_id


def add_image(store: Store, diff_ids: list[str], created: str = "2024-01-01T00:00:00Z") -> str:
    """Write the config and manifest blobs of an image made of DIFF_IDS; return its digest."""
    config = canonical_json(
        {
            "created": created,
            "os": "linux",
            "architecture": "amd64",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
    )
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": MT_OCI_MANIFEST,
            "config": {
                "mediaType": MT_OCI_CONFIG,
                "digest": sha256_digest(config),
                "size": len(config),
            },
            "layers": [{"mediaType": MT_LAYER, "digest": blob_of(d), "size": 1} for d in diff_ids],
        }
    )
    store.put_blob(config)
    return store.put_blob(manifest)


def config_digest(store: Store, manifest_digest: str) -> str:
    """The config digest a stored manifest names."""
    return parse_manifest(store.get_blob(manifest_digest)).config.digest


def objects_of(store: Store, diff_id: str) -> dict[str, str]:
    """Path -> object name for one layer."""
    return {e.path: e.obj for e in store.get_layer(diff_id).entries if e.obj}


def store_files(store: Store) -> dict[str, int]:
    """Every file under objects/, layers/ and blobs/ (relative path -> size)."""
    out: dict[str, int] = {}
    for top in ("objects", "layers", "blobs"):
        for dirpath, _, names in os.walk(store.path / top):
            for name in names:
                path = Path(dirpath) / name
                out[str(path.relative_to(store.path))] = path.lstat().st_size
    return out


# ---- capability probes: tests gate on what the machine can do, not on the uid ----------


def can_chown(tmp: Path) -> bool:
    """True if this process may give a file away (CAP_CHOWN)."""
    probe = tmp / "chown-probe"
    probe.write_bytes(b"")
    try:
        os.chown(probe, 4321, 4321)
    except OSError:
        return False
    finally:
        probe.unlink()
    return True


def can_set_user_xattr(tmp: Path) -> bool:
    """True if the filesystem under TMP takes user.* xattrs."""
    probe = tmp / "xattr-probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.probe", b"1")
    except OSError:
        return False
    return True
