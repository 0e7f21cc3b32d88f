"""A compact map from paths to small ints, for the membership tests of a layer import.

A layer of a million empty files is a 9 MB download; a dict of its paths would take
~100 bytes an entry, a set of the path strings more. This keeps two flat arrays of
64-bit slots instead (16 bytes a slot, at most two-thirds full): the key is the path's
``hash()``, the value an int the caller chooses. Two paths of one hash share a slot, so
a caller verifies a hit that matters against the path it stands for.
"""

from __future__ import annotations

from array import array

_FILL_NUM, _FILL_DEN = 2, 3  # grow beyond two-thirds full


class PathIndex:
    """path -> int (a value >= 0), in open addressing over two arrays."""

    __slots__ = ("_keys", "_values", "_mask", "_used")

    def __init__(self, capacity: int = 1024) -> None:
        assert capacity & (capacity - 1) == 0, "capacity must be a power of two"
        self._keys = _zeros(capacity)  # 0 marks an empty slot
        self._values = _zeros(capacity)
        self._mask = capacity - 1
        self._used = 0

    def __len__(self) -> int:
        return self._used

    @property
    def nbytes(self) -> int:
        """The memory the slots take."""
        return 2 * self._keys.itemsize * len(self._keys)

    def get(self, path: str) -> int | None:
        """The value last put for PATH (or for a path of the same hash), or None."""
        h = hash(path) or 1
        keys, mask = self._keys, self._mask
        i = h & mask
        while k := keys[i]:
            if k == h:
                return self._values[i]
            i = (i + 1) & mask
        return None

    def put(self, path: str, value: int) -> None:
        """Map PATH to VALUE, replacing what it had."""
        h = hash(path) or 1
        keys, mask = self._keys, self._mask
        i = h & mask
        while k := keys[i]:
            if k == h:
                self._values[i] = value
                return
            i = (i + 1) & mask
        keys[i] = h
        self._values[i] = value
        self._used += 1
        if self._used * _FILL_DEN > (mask + 1) * _FILL_NUM:
            self._grow()

    def _grow(self) -> None:
        keys, values = self._keys, self._values
        size = 2 * len(keys)
        self._keys, self._values = _zeros(size), _zeros(size)
        self._mask = mask = size - 1
        new_keys, new_values = self._keys, self._values
        for h, v in zip(keys, values, strict=True):
            if h:
                i = h & mask
                while new_keys[i]:
                    i = (i + 1) & mask
                new_keys[i] = h
                new_values[i] = v


def _zeros(n: int) -> array[int]:
    """N zero slots, made without a temporary buffer of the same size."""
    return array("q", (0,)) * n
