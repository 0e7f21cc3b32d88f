"""The content-addressed image store: objects, blobs, layer trees, refs and pins.

On-disk layout under the store root (``ROOT/store``)::

    store/                      0700, as are objects/ and quarantine/ (see store.access)
      lock                      flock(2): shared for readers, exclusive for writers;
                                holds the writer's pid while it runs
      tmp/                      staging for every write; emptied when a writer locks
      objects/XX/NAME           one file per (content, mode, uid, gid, xattrs);
                                NAME = HEX.MODE.UID.GID[.XH], XX = HEX[:2]. Checkouts
                                hardlink these, so they are never written in place.
      objects/XX/HEX.link.UID.GID.MTIME
                                one symlink per (target, owner, mtime), HEX = sha256 of
                                the target; checkouts hardlink it too. A cache: where it
                                is missing, a checkout makes the symlink itself.
      blobs/sha256/HEX          manifests and image configs, verbatim
      layers/HEX.json           the tree of the layer whose diff_id is sha256:HEX
                                (see syscontainers.tree)
      layers/HEX.objects        the objects that tree uses, sorted (see store.trees)
      layers/by-blob/HEX        "sha256:DIFFHEX": the layer stored from blob sha256:HEX
      refs/ENC                  "sha256:MANIFESTHEX": one tag; ENC is the URL-quoted name:tag
      refs/=KEYHEX              a tag whose quoted form is too long for a file name:
                                KEYHEX = sha256 of name:tag, and a second line holds the
                                URL-quoted name:tag ("=" is never left unquoted)
      pins/ENC, pins/=KEYHEX    "sha256:MANIFESTHEX": an image in use (a mount, a
                                deployment); prune keeps it, delete refuses it

Publication order makes a crash harmless: objects and the layer's object list first (then
one syncfs), then its tree, then blobs, then the ref. A reader that finds a ref
finds everything below it; whatever a crash leaves unreferenced, ``prune``
removes, and ``tmp/`` is cleared by the next writer.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote, unquote

from syscontainers.errors import ImageNotFoundError, StoreCorruptError
from syscontainers.fsutil import atomic_write, read_bytes_if_exists, remove_tree, syncfs
from syscontainers.hashing import sha256
from syscontainers.oci import check_digest, digest_hex, sha256_digest
from syscontainers.store import access
from syscontainers.store.lock import LockMode, store_lock
from syscontainers.store.objects import OBJECT_DIRS, ObjectWriter, is_link_object, object_relpath
from syscontainers.store.trees import (
    LayerWriter,
    ObjectList,
    Source,
    build_object_list,
    check_object_list,
    read_object_list,
    tree_entries,
    write_object_list,
)
from syscontainers.tree import Entry, LayerTree, read_tree


class Store:
    """Access to one store directory (``ROOT/store``). Methods do I/O; callers hold the lock."""

    def __init__(
        self, path: Path, privileged: bool | None = None, lock_timeout: float | None = None
    ) -> None:
        self.path = path
        self.lock_timeout = lock_timeout
        self.privileged = os.geteuid() == 0 if privileged is None else privileged
        self.objects_dir = path / "objects"
        self.blobs_dir = path / "blobs" / "sha256"
        self.layers_dir = path / "layers"
        self.by_blob_dir = path / "layers" / "by-blob"
        self.refs_dir = path / "refs"
        self.pins_dir = path / "pins"
        self.tmp_dir = path / "tmp"
        self._new_object_dirs: tuple[str, ...] = ()  # made by this lock's _prepare, empty

    # ---- locking and setup -------------------------------------------------

    @contextlib.contextmanager
    def locked(
        self, mode: LockMode, on_wait: Callable[[str], None] | None = None
    ) -> Iterator[Store]:
        """Hold the store lock; a writer also creates the layout, makes sure no other user
        can reach it (see ``store.access``) and clears tmp/."""
        if mode is LockMode.SHARED and not self.path.exists():
            yield self
            return
        with store_lock(self.path / "lock", mode, self.lock_timeout, on_wait):
            if mode is LockMode.EXCLUSIVE:
                self._prepare()
            yield self

    def _prepare(self) -> None:
        access.tighten(self.path)  # a store made by an older version is 0755
        for d in (self.blobs_dir, self.by_blob_dir, self.refs_dir, self.pins_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.objects_dir.mkdir(mode=access.PRIVATE_MODE, exist_ok=True)
        self._new_object_dirs = ()  # another writer may have filled them since the last lock
        if not (self.objects_dir / OBJECT_DIRS[-1]).is_dir():
            self._new_object_dirs = _make_object_dirs(self.objects_dir)
        remove_tree(self.tmp_dir)
        self.tmp_dir.mkdir(mode=0o700)

    def object_writer(self) -> ObjectWriter:
        """A writer for new objects (call under the exclusive lock)."""
        # The first writer after the store was made knows that its objects/XX are empty,
        # and need not list them.
        empty, self._new_object_dirs = self._new_object_dirs, ()
        return ObjectWriter(self.objects_dir, self.tmp_dir, self.privileged, empty)

    def object_path(self, name: str) -> Path:
        """Where the object NAME lives."""
        return self.objects_dir / object_relpath(name)

    def sync(self) -> None:
        """Make every object written so far durable, before anything refers to it."""
        syncfs(self.path)

    # ---- blobs (manifests, configs) -----------------------------------------

    def put_blob(self, data: bytes, digest: str | None = None) -> str:
        """Store DATA verbatim; if DIGEST is given it must match. Returns the digest."""
        actual = sha256_digest(data)
        if digest is not None and digest != actual:
            from syscontainers.errors import DigestMismatchError

            raise DigestMismatchError(
                f"blob {digest} has content with digest {actual}",
                hint="the source sent damaged bytes; pull the image again, or tell its publisher",
            )
        path = self.blobs_dir / digest_hex(actual)
        # Compare rather than test existence, so that a new put heals a damaged blob.
        if read_bytes_if_exists(path) != data:
            atomic_write(path, data, mode=0o644)
        return actual

    def get_blob(self, digest: str) -> bytes:
        """The blob named DIGEST, checked against it."""
        data = read_bytes_if_exists(self.blobs_dir / digest_hex(check_digest(digest, "blob")))
        if data is None:
            raise ImageNotFoundError(
                f"blob {digest} is not in the store",
                hint="run 'syscontainers images verify', then pull the affected image again",
            )
        if sha256_digest(data) != digest:
            raise StoreCorruptError(
                f"blob {digest} in the store is damaged",
                hint="run 'syscontainers images verify' and pull the affected image again",
            )
        return data

    def has_blob(self, digest: str) -> bool:
        """True if the blob DIGEST is stored."""
        return (self.blobs_dir / digest_hex(digest)).exists()

    def list_blobs(self) -> list[str]:
        """Every stored blob digest."""
        if not self.blobs_dir.is_dir():
            return []
        return ["sha256:" + n for n in os.listdir(self.blobs_dir) if not n.startswith(".")]

    # ---- layers ------------------------------------------------------------

    def layer_path(self, diff_id: str) -> Path:
        """Where the tree for DIFF_ID lives."""
        return self.layers_dir / f"{digest_hex(diff_id)}.json"

    def has_layer(self, diff_id: str) -> bool:
        """True if the layer's tree is stored (its objects may still be checked)."""
        return self.layer_path(diff_id).exists()

    def objects_list_path(self, diff_id: str) -> Path:
        """Where the object list of layer DIFF_ID lives."""
        return self.layers_dir / f"{digest_hex(diff_id)}.objects"

    def get_layer(self, diff_id: str) -> LayerTree:
        """The stored tree of layer DIFF_ID, whole (a checkout needs it all)."""
        what = f"layer tree {diff_id}"
        try:
            with open(self.layer_path(diff_id), "rb") as f:
                return read_tree(f, what)
        except FileNotFoundError:
            raise missing_layer(diff_id) from None

    def layer_entries(self, diff_id: str) -> Iterator[Entry]:
        """The entries of layer DIFF_ID, streamed from disk."""
        if not self.has_layer(diff_id):
            raise missing_layer(diff_id)
        return tree_entries(self.layer_path(diff_id), f"layer tree {diff_id}")

    def layer_objects(self, diff_id: str, migrate: bool = False) -> Source:
        """The object list of layer DIFF_ID: its file, checked whole; or, when that is missing
        (a store from before object lists) or damaged, a list built from the tree, which
        with MIGRATE (under the exclusive lock) replaces the file."""
        path = self.objects_list_path(diff_id)
        what = f"object list of layer {diff_id}"
        if path.exists():
            try:
                check_object_list(path, what)
                return path
            except StoreCorruptError:
                if not migrate:
                    raise
        objects = build_object_list(self.layer_entries(diff_id))
        if not migrate:
            return objects
        write_object_list(path, objects)
        return path

    def check_layer(self, diff_id: str) -> ObjectList:
        """Read the whole tree of DIFF_ID (StoreCorruptError if damaged) and return its object
        list, rewriting the stored one if it disagrees (call under the exclusive lock)."""
        objects = build_object_list(self.layer_entries(diff_id))
        path = self.objects_list_path(diff_id)
        try:
            same = list(read_object_list(path, str(path))) == objects
        except (OSError, StoreCorruptError):
            same = False
        if not same:
            write_object_list(path, objects)
        return objects

    def layer_writer(self) -> LayerWriter:
        """A tree to import a layer into (call under the exclusive lock)."""
        return LayerWriter(self.tmp_dir)

    def publish_layer(self, tree: LayerWriter, blob_digest: str | None) -> None:
        """Publish a finished layer tree (after syncing its objects) and its blob mapping."""
        tree.write_list(self.objects_list_path(tree.diff_id))
        self.sync()
        tree.publish(self.layer_path(tree.diff_id))
        self._map_blob(blob_digest, tree.diff_id)

    def put_layer(self, tree: LayerTree, blob_digest: str | None) -> None:
        """Publish a layer tree held in memory, as ``publish_layer`` does."""
        self.sync()
        write_object_list(self.objects_list_path(tree.diff_id), build_object_list(tree.entries))
        atomic_write(self.layer_path(tree.diff_id), tree.to_json())
        self._map_blob(blob_digest, tree.diff_id)

    def _map_blob(self, blob_digest: str | None, diff_id: str) -> None:
        if blob_digest and blob_digest != diff_id:
            atomic_write(self.by_blob_dir / digest_hex(blob_digest), diff_id.encode())

    def diff_id_for_blob(self, blob_digest: str) -> str | None:
        """The diff_id of the layer stored from BLOB_DIGEST, if known."""
        data = read_bytes_if_exists(self.by_blob_dir / digest_hex(blob_digest))
        if data is None:
            return blob_digest if self.has_layer(blob_digest) else None
        return data.decode().strip()

    def missing_objects(self, diff_id: str) -> list[str]:
        """The file objects layer DIFF_ID uses that are not in the store, after checking its
        tree (symlink objects are a cache: not counted)."""
        return [
            n
            for n, _ in self.check_layer(diff_id)
            if not is_link_object(n) and not os.path.exists(self.object_path(n))
        ]

    def list_layers(self) -> list[str]:
        """Every stored layer diff_id."""
        if not self.layers_dir.is_dir():
            return []
        return ["sha256:" + n[:-5] for n in os.listdir(self.layers_dir) if n.endswith(".json")]

    # ---- refs and pins -----------------------------------------------------

    def set_ref(self, key: str, manifest_digest: str) -> None:
        """Point the tag KEY (``name:tag``) at a manifest; the last step of every pull."""
        _write_entry(self.refs_dir, key, manifest_digest)

    def delete_ref(self, key: str) -> bool:
        """Remove a tag; False if it did not exist."""
        try:
            os.unlink(self.refs_dir / entry_name(key))
        except FileNotFoundError:
            return False
        return True

    def refs(self) -> dict[str, str]:
        """Every tag and the manifest digest it names."""
        return _read_dir_map(self.refs_dir)

    def pin(self, pin_name: str, manifest_digest: str) -> None:
        """Record that something (a mount, a deployment) uses an image."""
        _write_entry(self.pins_dir, pin_name, manifest_digest)

    def unpin(self, pin_name: str) -> None:
        """Drop a pin; missing pins are fine."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.pins_dir / entry_name(pin_name))

    def pins(self) -> dict[str, str]:
        """Every pin and the manifest digest it holds."""
        return _read_dir_map(self.pins_dir)


def _make_object_dirs(objects_dir: Path) -> tuple[str, ...]:
    """Make objects/00 … objects/ff; the ones this made (so empty), not those already there."""
    made = []
    for prefix in OBJECT_DIRS:
        with contextlib.suppress(FileExistsError):
            os.mkdir(f"{objects_dir}/{prefix}")  # not pathlib: 256 of them, on a first pull
            made.append(prefix)
    return tuple(made)


def missing_layer(diff_id: str) -> ImageNotFoundError:
    """The error for a layer whose tree is not stored."""
    return ImageNotFoundError(
        f"layer {diff_id} is not in the store",
        hint="pull the image again to fetch the missing layer",
    )


# A ref or pin file is written as .tmp-NAME-XXXXXXXXXXXX first: 18 more bytes, within 255.
MAX_ENTRY_NAME = 200
HASHED = "="  # quote() never leaves "=" as it is, so no quoted key starts with it


def entry_name(key: str) -> str:
    """The file name of the ref or pin KEY: URL-quoted, or HASHED + sha256 when that is too
    long for a file name (a long image name, a deep mount path)."""
    quoted = quote(key, safe="")
    if len(quoted) <= MAX_ENTRY_NAME:
        return quoted
    return HASHED + sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


def _write_entry(directory: Path, key: str, manifest_digest: str) -> None:
    name = entry_name(key)
    text = manifest_digest + "\n"
    if name.startswith(HASHED):  # the name cannot give the key back: the file does
        text += quote(key, safe="") + "\n"
    atomic_write(directory / name, text.encode())


def _read_dir_map(directory: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    if not directory.is_dir():
        return out
    for name in os.listdir(directory):
        if name.startswith("."):
            continue
        data = read_bytes_if_exists(directory / name)
        if data is None:
            continue
        digest, _, rest = data.decode().strip().partition("\n")
        out[unquote(rest.strip() if name.startswith(HASHED) else name)] = digest.strip()
    return out
