"""The layer tree: every entry of one layer, as stored, so that a checkout is exact.

A tree is serialised as one JSON document per layer, one entry a line, so that the import
writes it as the layer streams past and readers can take it a piece at a time::

    {"version":1,"entries":[
    [path, kind, mode, uid, gid, mtime, data, xattrs]
    ,[…]
    ],"diff_id":"sha256:…","size":<uncompressed tar bytes>,"count":<entries>}

Trees written before this layout hold the same keys (without "count") on one line; they
are still read, whole.

``path`` is relative, normalised, without a leading ``./``; ``""`` is the
root directory. ``kind`` is one of the EntryKind values. ``data`` depends on
the kind: the object name for a file, the target for a symlink,
``[major, minor]`` for a device, null otherwise. ``xattrs`` maps names to
base64 values, or is omitted when empty.
"""

from __future__ import annotations

import contextlib
import gc
import json
import sys
from binascii import a2b_base64, b2a_base64  # base64's own import costs 0.7 ms
from collections.abc import Iterator
from enum import Enum
from itertools import chain
from json.encoder import encode_basestring_ascii as _esc
from typing import IO, Any, NamedTuple, Protocol

from syscontainers.errors import StoreCorruptError
from syscontainers.record import record

TREE_VERSION = 1
HEADER = b'{"version":1,"entries":[\n'
READ_CHUNK = 1 << 20  # bytes of rows parsed at once when streaming


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
            row.append({k: b2a_base64(v, newline=False).decode() for k, v in self.xattrs})
        return row

    def to_line(self) -> bytes:
        """The row as one line of the on-disk tree (formatted directly for the usual kinds:
        several times faster than the JSON encoder per row)."""
        kind = self.kind
        if self.xattrs or kind is EntryKind.CHAR or kind is EntryKind.BLOCK:
            return _ENCODE(self.to_row()).encode() + b"\n"
        head = f'[{_esc(self.path)},"{kind.value}",{self.mode},{self.uid},{self.gid},{self.mtime}'
        if kind is _FILE:
            return f"{head},[{_esc(self.obj)},{self.size}]]\n".encode()
        if kind is _SYMLINK:
            return f"{head},{_esc(self.target)}]\n".encode()
        return f"{head},null]\n".encode()

    @classmethod
    def from_row(cls, row: list[Any]) -> Entry:
        """Parse one compact JSON row (the hot path of every checkout: positional, few
        branches, and tuple.__new__ rather than the NamedTuple's Python-level __new__)."""
        if len(row) == 7:  # no xattrs: unpacked whole, without slicing a copy
            path, kind_s, mode, uid, gid, mtime, data = row
            xattrs: tuple[tuple[str, bytes], ...] = ()
        else:
            path, kind_s, mode, uid, gid, mtime, data = row[:7]
            xattrs = tuple(sorted((k, a2b_base64(v)) for k, v in row[7].items()))
        kind = _KINDS[kind_s]
        if kind is _FILE:  # object names repeat (every empty file has one): keep each once
            obj = _intern(data[0])
            return _tuple_new(
                cls, (path, kind, mode, uid, gid, mtime, obj, data[1], "", _NO_DEV, xattrs)
            )
        if kind is _SYMLINK:
            return _tuple_new(
                cls, (path, kind, mode, uid, gid, mtime, "", 0, data, _NO_DEV, xattrs)
            )
        if kind is _CHAR or kind is _BLOCK:
            rdev = (data[0], data[1])
            return _tuple_new(cls, (path, kind, mode, uid, gid, mtime, "", 0, "", rdev, xattrs))
        return _tuple_new(cls, (path, kind, mode, uid, gid, mtime, "", 0, "", _NO_DEV, xattrs))


_KINDS = {k.value: k for k in EntryKind}
_VALUES = {k: k.value for k in EntryKind}
_tuple_new = tuple.__new__
_intern = sys.intern
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode
_FILE, _SYMLINK = EntryKind.FILE, EntryKind.SYMLINK
_CHAR, _BLOCK = EntryKind.CHAR, EntryKind.BLOCK
_NO_DEV = (0, 0)


@record
class LayerTree:
    """All entries of one layer, in tar order, with the layer's identity."""

    diff_id: str
    size: int
    entries: tuple[Entry, ...]

    def to_json(self) -> bytes:
        """Serialise to the on-disk JSON form."""
        lines = [HEADER]
        lines += [b"," + e.to_line() if i else e.to_line() for i, e in enumerate(self.entries)]
        lines.append(trailer(self.diff_id, self.size, len(self.entries)))
        return b"".join(lines)

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
            raise damaged(what, e) from e


def damaged(what: str, why: object) -> StoreCorruptError:
    """The error for a tree (or its object list) that cannot be read."""
    return StoreCorruptError(
        f"{what} is damaged: {why}",
        hint="run 'syscontainers images verify', then pull the affected image again",
    )


def trailer(diff_id: str, size: int, count: int) -> bytes:
    """The last line of a tree: what closes the entry list and names the layer."""
    return b'],"diff_id":%s,"size":%d,"count":%d}\n' % (_esc(diff_id).encode(), size, count)


class TreeSink(Protocol):
    """Where a layer import puts the entries, in order (``store.trees.LayerWriter`` writes
    them to disk; ``MemoryTree`` keeps them)."""

    def add(self, entry: Entry) -> int:
        """Record ENTRY; return a position that ``entry_at`` takes back."""

    def entry_at(self, position: int) -> Entry:
        """The entry recorded at POSITION."""

    def finish(self, diff_id: str, size: int) -> None:
        """Close the tree: every entry is in, and the layer checked."""


class MemoryTree:
    """A tree sink that keeps the entries in memory, for callers
    that want the LayerTree itself (tests, small layers)."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.tree: LayerTree | None = None

    def add(self, entry: Entry) -> int:
        """Keep ENTRY; its position is its index."""
        self.entries.append(entry)
        return len(self.entries) - 1

    def entry_at(self, position: int) -> Entry:
        """The entry at POSITION."""
        return self.entries[position]

    def finish(self, diff_id: str, size: int) -> None:
        """Make ``tree``."""
        self.tree = LayerTree(diff_id, size, tuple(self.entries))


class TreeWriter:
    """Writes a tree to F a line at a time, as entries arrive (nothing is held in memory)."""

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f
        self.count = 0
        self.offset = len(HEADER)  # where the next line starts
        f.write(HEADER)

    def add(self, entry: Entry) -> int:
        """Write ENTRY; return the offset of its line, for ``read_line``."""
        line = b"," + entry.to_line() if self.count else entry.to_line()
        at = self.offset
        self._f.write(line)
        self.offset += len(line)
        self.count += 1
        return at

    def finish(self, diff_id: str, size: int) -> None:
        """Close the entry list with the layer's identity."""
        self._f.write(trailer(diff_id, size, self.count))


def parse_line(line: bytes) -> Entry:
    """The entry on one line of a tree written by TreeWriter."""
    return Entry.from_row(json.loads(line[1:] if line.startswith(b",") else line))


def iter_entries(f: IO[bytes], what: str = "layer tree") -> Iterator[Entry]:
    """Every entry of the tree in F, in order, parsed a chunk of lines at a time (a tree in
    the old one-line form is read whole). Raises StoreCorruptError when F is damaged, which
    may be after some entries: callers that act on entries must not trust a partial read."""
    return chain.from_iterable(_batches(f, what, {}))


def read_tree(f: IO[bytes], what: str = "layer tree") -> LayerTree:
    """The whole tree in F, parsed a chunk at a time: only the entries are held, never the
    document and its parse as well (StoreCorruptError if F is damaged)."""
    last: dict[str, Any] = {}
    entries: list[Entry] = []
    with collector_paused():
        for batch in _batches(f, what, last):
            entries += batch
    return LayerTree(last["diff_id"], last["size"], tuple(entries))


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while many entries are made or walked. They hold
    no cycles, but each thousand new rows would start a collection that walks them all
    (about a fifth of the time to read a debian base's tree), and in a forked child the
    walk would write to every page it shares with the parent."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _batches(f: IO[bytes], what: str, last: dict[str, Any]) -> Iterator[list[Entry]]:
    """The entries of F, a chunk at a time; at the end, LAST holds the keys of its last line."""
    first = f.readline()
    if first != HEADER:
        tree = LayerTree.from_json(first + f.read(), what)
        last.update(diff_id=tree.diff_id, size=tree.size)
        yield list(tree.entries)
        return
    count = 0
    carry = b""
    try:
        while True:  # a block of whole lines at a time, parsed as one JSON array
            block = f.read(READ_CHUNK)
            data = carry + block
            cut = data.rfind(b"\n") + 1 if block else len(data)
            body, carry = data[:cut], data[cut:]
            start = body.rfind(b"\n", 0, len(body) - 1) + 1  # of the block's last line
            end = body.startswith(b"]", start)
            if end:
                body, tail = body[:start], body[start:]
            if body:
                rows = json.loads(b"[" + (body[1:] if body.startswith(b",") else body) + b"]")
                count += len(rows)
                yield list(map(Entry.from_row, rows))
            if end:
                last.update(_check_trailer(tail, count, carry + f.read()))
                return
            if not block:
                raise ValueError("it ends before its last line")
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
        raise damaged(what, e) from e


def _check_trailer(line: bytes, count: int, rest: bytes) -> dict[str, Any]:
    doc = json.loads(b"{" + line[2:])
    if not isinstance(doc.get("diff_id"), str) or not isinstance(doc.get("size"), int):
        raise ValueError("its last line does not name the layer")
    if doc.get("count") != count or rest:
        raise ValueError(f"it holds {count} entries, but its last line says {doc.get('count')}")
    return {"diff_id": doc["diff_id"], "size": doc["size"]}
