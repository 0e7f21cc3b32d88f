"""The layer tree: every entry of one layer, as stored, so that a checkout is exact.

A tree is serialised as one JSON document per layer::

    {"version": 1, "diff_id": "sha256:…", "size": <uncompressed tar bytes>,
     "entries": [[path, kind, mode, uid, gid, mtime, data, xattrs], …]}

``path`` is relative, normalised, without a leading ``./``; ``""`` is the
root directory. ``kind`` is one of the EntryKind values. ``data`` depends on
the kind: the object name for a file, the target for a symlink,
``[major, minor]`` for a device, null otherwise. ``xattrs`` maps names to
base64 values, or is omitted when empty.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any, NamedTuple

from syscontainers.errors import StoreCorruptError

TREE_VERSION = 1


class EntryKind(Enum):
    """What an entry is."""

    FILE = "f"
    DIR = "d"
    SYMLINK = "l"
    CHAR = "c"
    BLOCK = "b"
    FIFO = "p"
    WHITEOUT = "w"  # deletes PATH (and below) from the lower layers
    OPAQUE = "o"  # PATH is a directory whose lower-layer content is hidden


class Entry(NamedTuple):
    """One entry of a layer.

    A NamedTuple rather than a frozen dataclass: it is just as immutable, and a checkout
    builds one per file (9k for a debian base), where a tuple is several times cheaper to
    make than a frozen dataclass, whose __init__ goes through object.__setattr__.
    """

    path: str
    kind: EntryKind
    mode: int = 0
    uid: int = 0
    gid: int = 0
    mtime: int = 0
    obj: str = ""  # FILE: the object name in the store
    size: int = 0  # FILE: content length
    target: str = ""  # SYMLINK: the link target
    rdev: tuple[int, int] = (0, 0)  # CHAR/BLOCK: major, minor
    xattrs: tuple[tuple[str, bytes], ...] = ()

    def to_row(self) -> list[Any]:
        """The compact JSON row for this entry."""
        kind = self.kind
        row: list[Any] = [self.path, _VALUES[kind], self.mode, self.uid, self.gid, self.mtime]
        if kind is _FILE:
            row.append([self.obj, self.size])
        elif kind is _SYMLINK:
            row.append(self.target)
        elif kind is EntryKind.CHAR or kind is EntryKind.BLOCK:
            row.append(list(self.rdev))
        else:
            row.append(None)
        if self.xattrs:
            row.append({k: base64.b64encode(v).decode() for k, v in self.xattrs})
        return row

    @classmethod
    def from_row(cls, row: list[Any]) -> Entry:
        """Parse one compact JSON row (the hot path of every checkout: positional, few
        branches, and tuple.__new__ rather than the NamedTuple's Python-level __new__)."""
        path, kind_s, mode, uid, gid, mtime, data = row[:7]
        kind = _KINDS[kind_s]
        xattrs: tuple[tuple[str, bytes], ...] = ()
        if len(row) > 7:
            xattrs = tuple(sorted((k, base64.b64decode(v)) for k, v in row[7].items()))
        if kind is _FILE:
            fields = (path, kind, mode, uid, gid, mtime, data[0], data[1], "", _NO_DEV, xattrs)
        elif kind is _SYMLINK:
            fields = (path, kind, mode, uid, gid, mtime, "", 0, data, _NO_DEV, xattrs)
        elif kind is EntryKind.CHAR or kind is EntryKind.BLOCK:
            fields = (path, kind, mode, uid, gid, mtime, "", 0, "", (data[0], data[1]), xattrs)
        else:
            fields = (path, kind, mode, uid, gid, mtime, "", 0, "", _NO_DEV, xattrs)
        return _tuple_new(cls, fields)


_KINDS = {k.value: k for k in EntryKind}
_VALUES = {k: k.value for k in EntryKind}
_tuple_new = tuple.__new__
_FILE, _SYMLINK = EntryKind.FILE, EntryKind.SYMLINK
_NO_DEV = (0, 0)


@dataclass(frozen=True, slots=True)
class LayerTree:
    """All entries of one layer, in tar order, with the layer's identity."""

    diff_id: str
    size: int
    entries: tuple[Entry, ...]

    def to_json(self) -> bytes:
        """Serialise to the on-disk JSON form."""
        doc = {
            "version": TREE_VERSION,
            "diff_id": self.diff_id,
            "size": self.size,
            "entries": [e.to_row() for e in self.entries],
        }
        return json.dumps(doc, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes, what: str = "layer tree") -> LayerTree:
        """Parse the on-disk JSON form, raising StoreCorruptError if it is damaged."""
        try:
            doc = json.loads(data)
            if doc.get("version") != TREE_VERSION:
                raise ValueError(f"unknown version {doc.get('version')!r}")
            entries = tuple(Entry.from_row(r) for r in doc["entries"])
            return cls(str(doc["diff_id"]), int(doc["size"]), entries)
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
            raise StoreCorruptError(
                f"{what} is damaged: {e}",
                hint="run 'syscontainers images verify', then pull the affected image again",
            ) from e

    def objects(self) -> Iterable[str]:
        """The object names this layer references."""
        return (e.obj for e in self.entries if e.kind is EntryKind.FILE)
