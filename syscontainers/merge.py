"""Merge: the union of an image's layer trees as one entry list, parents first (pure).

``merge`` folds the layers bottom-first, applying OCI whiteouts and opaque directories
(each layer's, in tar order, before its other entries) and refusing entries that would be
written through a symlink or below a non-directory, or whose path is not normalised.
A later entry replaces an earlier one at the same path in place, so the list stays in
parent-first order: ``checkout`` makes it in that order.

It runs at every checkout, once per entry (9k for a debian base), so the common case is
cheap: paths are checked a layer at a time, and the index of each directory's children
(what whiteouts, opaque directories and replaced directories need) is built only when
something is first removed, which a single-layer image never does.
"""

from __future__ import annotations

from collections.abc import Sequence

from syscontainers.errors import CheckoutError
from syscontainers.tree import Entry, EntryKind, LayerTree

HOSTILE_HINT = "the image is malformed or hostile; do not use it, and tell its publisher"
_DIR, _SYMLINK = EntryKind.DIR, EntryKind.SYMLINK
_WHITEOUT, _OPAQUE = EntryKind.WHITEOUT, EntryKind.OPAQUE


def _implied(path: str) -> Entry:
    return Entry(path, _DIR, 0o755)


class _Union:
    """The union built so far: entries in parent-first order, and (once needed) an index
    of each directory's children."""

    __slots__ = ("entries", "_children")

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {"": _implied("")}
        self._children: dict[str, set[str]] | None = None

    def kids(self) -> dict[str, set[str]]:
        """The child index, built from the entries on first use, then kept up to date."""
        if self._children is None:
            entries = self.entries
            children: dict[str, set[str]] = {p: set() for p, e in entries.items() if e.kind is _DIR}
            for path in entries:
                if path:
                    children[path.rpartition("/")[0]].add(path)
            self._children = children
        return self._children

    def parent_dir(self, label: str, entry: Entry, create: bool) -> str | None:
        """The parent of ENTRY if it is (or, with CREATE, is made) a directory.

        Raises if the nearest existing ancestor is a symlink or not a directory;
        returns None if the parent is missing and CREATE is false.
        """
        parent = entry.path.rpartition("/")[0]
        missing: list[str] = []
        found = self.entries.get(parent)
        while found is None:
            missing.append(parent)
            parent = parent.rpartition("/")[0]
            found = self.entries.get(parent)
        if found.kind is not _DIR:
            what = "a symbolic link" if found.kind is _SYMLINK else "not a directory"
            raise CheckoutError(
                f"layer {label}: {entry.kind.name.lower()} entry {entry.path!r} lies below "
                f"{found.path!r}, which is {what}",
                hint=HOSTILE_HINT,
            )
        if not missing:
            return parent
        if not create:
            return None
        for path in reversed(missing):
            self._insert(_implied(path), path.rpartition("/")[0])
        return missing[0]

    def _insert(self, entry: Entry, parent: str) -> None:
        self.entries[entry.path] = entry
        if self._children is not None:
            self._children[parent].add(entry.path)
            if entry.kind is _DIR:
                self._children[entry.path] = set()

    def _drop(self, path: str, children: dict[str, set[str]]) -> None:
        """Forget PATH and its subtree (the caller unlinks it from its parent)."""
        del self.entries[path]
        for child in children.pop(path, ()):
            self._drop(child, children)

    def clear_below(self, path: str) -> None:
        """Forget everything below the directory PATH."""
        children = self.kids()
        kids = children.get(path)
        if kids:
            for child in kids:
                self._drop(child, children)
            kids.clear()

    def remove(self, path: str, parent: str) -> None:
        """Forget PATH and its subtree, if present."""
        if path in self.entries:
            children = self.kids()
            self._drop(path, children)
            children[parent].discard(path)

    def add_all(self, label: str, entries: Sequence[Entry]) -> None:
        """Add ENTRIES in order; the usual one (new, below a directory already there) is
        inserted here, the others go through ``add``."""
        known = self.entries
        for entry in entries:
            path = entry.path
            if path and path not in known:
                parent = path.rpartition("/")[0]
                found = known.get(parent)
                if found is not None and found.kind is _DIR:
                    known[path] = entry
                    if self._children is not None:
                        self._insert(entry, parent)
                    continue
            self.add(label, entry)

    def add(self, label: str, entry: Entry) -> None:
        """Add ENTRY, replacing whatever is at its path."""
        path = entry.path
        if not path:
            if entry.kind is not _DIR:
                raise CheckoutError(f"layer {label}: the root is not a directory", HOSTILE_HINT)
            self.entries[""] = entry
            return
        parent = self.parent_dir(label, entry, create=True)
        assert parent is not None
        old = self.entries.get(path)
        if old is None:
            self._insert(entry, parent)
            return
        # Replacing in place keeps the parent-first order: PATH's parent is earlier.
        if old.kind is _DIR and entry.kind is not _DIR:
            self.clear_below(path)  # (first: the index is built from what is there)
            del self.kids()[path]
        self.entries[path] = entry
        if old.kind is not _DIR and entry.kind is _DIR and self._children is not None:
            self._children[path] = set()


def _check_paths(label: str, entries: Sequence[Entry]) -> None:
    """Refuse a path of ENTRIES that is not normalised. All of a layer's paths are searched
    at once, each wrapped in slashes, one a line: a wrapped path holds "//", "/./" or
    "/../" only if the joined text does (a line break between two cannot make one)."""
    paths = [e.path for e in entries if e.path]
    text = "/" + "/\n/".join(paths) + "/"
    if "//" in text or "/./" in text or "/../" in text or "\0" in text:
        for path in paths:
            wrapped = f"/{path}/"
            if "//" in wrapped or "/../" in wrapped or "/./" in wrapped or "\0" in path:
                raise CheckoutError(
                    f"layer {label}: entry path {path!r} is not normalised", HOSTILE_HINT
                )


def merge(layers: Sequence[tuple[str, LayerTree]]) -> list[Entry]:
    """Union LAYERS (label, tree), bottom first, into one parent-first entry list."""
    union = _Union()
    for label, tree in layers:
        entries: Sequence[Entry] = tree.entries
        _check_paths(label, entries)
        removals = [e for e in entries if e.kind is _WHITEOUT or e.kind is _OPAQUE]
        for entry in removals:
            if entry.kind is _WHITEOUT:
                if not entry.path:
                    raise CheckoutError(f"layer {label}: whiteout of the root", HOSTILE_HINT)
                parent = union.parent_dir(label, entry, create=False)
                if parent is not None:
                    union.remove(entry.path, parent)
            else:
                if entry.path:
                    union.parent_dir(label, entry, create=False)
                union.clear_below(entry.path)
        if removals:
            entries = [e for e in entries if e.kind is not _WHITEOUT and e.kind is not _OPAQUE]
        union.add_all(label, entries)
    return list(union.entries.values())
