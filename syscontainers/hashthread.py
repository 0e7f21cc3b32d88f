"""sha256 digests computed in a thread of their own, so that a layer's two digests (of the
blob and of the uncompressed tar) do not add to the decompressing thread's work.

hashlib releases the GIL while it hashes a chunk, so the hashing overlaps decompression
and tar parsing on another core. Chunks are hashed in the order they were handed over; at
most ``depth`` of them wait, so memory stays bounded whatever the producer's pace.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

from syscontainers.hashing import sha256


class HashThread:
    """One thread that hashes the chunks of any number of digests; ``close()`` it."""

    def __init__(self, depth: int = 8) -> None:
        self._q: queue.Queue[tuple[Any, bytes] | threading.Event | None] = queue.Queue(depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="layer-hash", daemon=True)
        self._thread.start()

    def sha256(self) -> QueuedSha256:
        """A new sha256 whose chunks this thread hashes."""
        return QueuedSha256(self)

    def _run(self) -> None:
        while (item := self._q.get()) is not None:
            if isinstance(item, threading.Event):
                item.set()
            elif self._error is None:
                try:
                    item[0].update(item[1])
                except BaseException as e:  # MemoryError, say: raised by hexdigest
                    self._error = e

    def put(self, h: Any, data: bytes) -> None:
        """Hash DATA into H, after every chunk handed over before it."""
        if not self._thread.is_alive():  # closed: hash here
            h.update(data)
            return
        self._q.put((h, data))

    def wait(self) -> None:
        """Return once every chunk handed over so far is hashed."""
        if self._thread.is_alive():
            done = threading.Event()
            self._q.put(done)
            done.wait()
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        """Hash what is queued, then stop the thread."""
        if self._thread.is_alive():
            self._q.put(None)
            self._thread.join()


class QueuedSha256:
    """The update/hexdigest part of hashlib's sha256, with the hashing done by a HashThread."""

    def __init__(self, thread: HashThread) -> None:
        self._thread = thread
        self._h = sha256()

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Queue DATA (bytes are queued as they are, anything else as a copy)."""
        self._thread.put(self._h, data if type(data) is bytes else bytes(data))

    def hexdigest(self) -> str:
        """The digest of every chunk queued so far (waits for them)."""
        self._thread.wait()
        return self._h.hexdigest()
