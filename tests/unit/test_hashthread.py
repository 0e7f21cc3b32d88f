"""HashThread: a layer's sha256 digests computed in a thread, in order, and always stopped."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import threading

import pytest

from syscontainers.errors import LayerError
from syscontainers.hashthread import HashThread
from syscontainers.layers import import_layer
from syscontainers.store import Store
from syscontainers.store.lock import LockMode
from syscontainers.tree import MemoryTree

CHUNKS = [os.urandom(n) for n in (0, 1, 2047, 2048, 1 << 16, 1 << 20, 3)]


def test_digests_match_hashlib_over_interleaved_chunks() -> None:
    thread = HashThread(depth=2)  # a small queue: the producer waits for the hasher
    try:
        a, b = thread.sha256(), thread.sha256()
        for chunk in CHUNKS:
            a.update(chunk)
            b.update(chunk[::-1])
            b.update(bytearray(b"x"))  # not bytes: copied before it is queued
        assert a.hexdigest() == hashlib.sha256(b"".join(CHUNKS)).hexdigest()
        a.update(b"more")  # a digest goes on after it was read
        assert a.hexdigest() == hashlib.sha256(b"".join(CHUNKS) + b"more").hexdigest()
        want = b"".join(c[::-1] + b"x" for c in CHUNKS)
        assert b.hexdigest() == hashlib.sha256(want).hexdigest()
    finally:
        thread.close()


def test_after_close_updates_are_hashed_in_place() -> None:
    thread = HashThread()
    h = thread.sha256()
    h.update(b"before")
    thread.close()
    assert not any(t.name == "layer-hash" for t in threading.enumerate())
    h.update(b"after")
    assert h.hexdigest() == hashlib.sha256(b"beforeafter").hexdigest()


def test_an_error_in_the_thread_is_raised_by_the_reader() -> None:
    class Broken:
        def update(self, data: bytes) -> None:
            raise MemoryError("no room")

    thread = HashThread()
    try:
        thread.put(Broken(), b"x")
        good = thread.sha256()
        good.update(b"y")
        with pytest.raises(MemoryError, match="no room"):
            good.hexdigest()
    finally:
        thread.close()


def _threads() -> set[str]:
    return {t.name for t in threading.enumerate()}


def _tar() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for name, data in (("a", b"x" * 5000), ("b", b"y")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.mark.parametrize("good", [True, False])
def test_import_layer_stops_its_threads(store: Store, good: bool) -> None:
    tar = _tar()
    blob = tar if good else tar[:700]  # cut inside "a": a LayerError
    diff_id = "sha256:" + hashlib.sha256(tar).hexdigest()
    with store.locked(LockMode.EXCLUSIVE):
        sink = MemoryTree()
        try:
            import_layer(store.object_writer(), io.BytesIO(blob), None, diff_id, "l", tree=sink)
        except LayerError:
            assert not good
        else:
            assert good and sink.tree is not None and len(sink.tree.entries) == 2
    assert not {"layer-hash", "layer-read-ahead"} & _threads()
