"""Tests for syscontainers.pathindex: a compact path -> int map that grows."""

from __future__ import annotations

from syscontainers.pathindex import PathIndex


def test_put_get_replace_and_grow() -> None:
    index = PathIndex(capacity=4)
    paths = [f"d{i // 100}/f{i}" for i in range(5000)] + [""]
    for n, path in enumerate(paths):
        index.put(path, n)
    assert len(index) == len(paths)
    assert all(index.get(p) == n for n, p in enumerate(paths))
    index.put("d0/f7", 123)
    assert index.get("d0/f7") == 123 and len(index) == len(paths)
    assert index.get("d0/f7/x") is None and index.get("missing") is None


def test_memory_is_sixteen_bytes_a_slot() -> None:
    index = PathIndex()
    for i in range(100_000):
        index.put(str(i), i)
    # two arrays of 64-bit slots, at most two-thirds full: 2**18 slots for 100k paths
    assert index.nbytes == 16 << 18
