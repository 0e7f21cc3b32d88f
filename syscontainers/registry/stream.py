"""Resumable blob streams: read a blob in chunks, and pick up where a broken transfer stopped.

The stream knows nothing of HTTP. It asks a ``BodyOpener`` for the blob from
an offset; the opener answers with the offset its body really starts at (the
offset asked for when the server honoured the Range request, 0 when it sent
the whole blob again) and an iterator of chunks that raises ``Interrupted``
when the connection breaks. Bytes received twice are counted, so tests and
progress output can see what a fault cost. Memory stays at one chunk.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from typing import Protocol

from syscontainers.errors import RegistryError
from syscontainers.record import record


class Interrupted(Exception):
    """A transfer broke off in a way that trying again may fix (internal to the registry)."""


@record
class Body:
    """One response body: where it starts in the blob, its chunks, and how to drop it."""

    start: int
    chunks: Iterator[bytes]
    close: Callable[[], None]


class BodyOpener(Protocol):
    """Fetches a blob from byte START on (or from 0, if the server will not do ranges)."""

    def __call__(self, start: int) -> Body:
        """Open the body; raise a SysContainersError when the registry cannot serve it."""


@record
class TransferStats:
    """What the transfers of one client cost, as a snapshot."""

    bytes_downloaded: int = 0  # every body byte received, duplicates included
    bytes_redownloaded: int = 0  # body bytes received a second time after a fault
    resumes: int = 0  # bodies reopened after an interruption
    retries: int = 0  # requests repeated after a connection error or a 5xx/429


class Counters:
    """Thread-safe running totals behind TransferStats."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values = dict.fromkeys(
            ("bytes_downloaded", "bytes_redownloaded", "resumes", "retries"), 0
        )

    def add(self, name: str, amount: int = 1) -> None:
        """Add AMOUNT to the counter NAME."""
        with self._lock:
            self._values[name] += amount

    def snapshot(self) -> TransferStats:
        """The totals so far."""
        with self._lock:
            return TransferStats(**self._values)


@record
class RetryPolicy:
    """How hard requests and streams try before they give up, and how long they wait."""

    attempts: int = 5  # tries of one request; interruptions of a stream without progress
    max_resumes: int = 20  # interruptions in total, for one blob
    base_delay: float = 0.5  # seconds before the first retry; doubled each time
    max_delay: float = 10.0

    def delay(self, failures: int, retry_after: str | None = None) -> float:
        """Seconds to wait after the FAILURES-th failure (Retry-After wins, capped)."""
        if retry_after:
            try:
                seconds = float(retry_after)
                return min(self.max_delay, max(0.0, seconds))
            except ValueError:
                pass  # an HTTP date: fall back to our own backoff
        return min(self.max_delay, self.base_delay * 2.0 ** max(0, failures - 1))


class ResumableStream(io.RawIOBase):
    """A raw, read-only stream of one blob of a known size, resumed across interruptions."""

    def __init__(
        self,
        opener: BodyOpener,
        size: int,
        what: str,
        counters: Counters,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__()
        self._opener = opener
        self._size = size
        self._what = what
        self._counters = counters
        self._policy = policy or RetryPolicy()
        self._sleep = sleep or _sleep
        self._body: Body | None = None
        self._position = 0  # bytes of the blob received (handed out or pending)
        self._cursor = 0  # where the current body is, in blob offsets
        self._pending = memoryview(b"")
        self._failures = 0
        self._resumes = 0

    def readable(self) -> bool:
        """Always true."""
        return True

    def connect(self) -> None:
        """Open the first response now, so that a missing blob shows before any byte is read."""
        if self._body is None and self._position < self._size:
            self._open()

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        """Fill BUFFER with the next bytes of the blob; 0 at its end."""
        while not self._pending:
            if self._position >= self._size:
                return 0
            self._fill()
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        """Drop the response body."""
        self._drop()
        super().close()

    def _drop(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None

    def _fill(self) -> None:
        if self._body is None:
            self._reopen()
        assert self._body is not None
        try:
            chunk = next(self._body.chunks, b"")
        except Interrupted as e:
            self._interrupted(str(e))
            return
        if not chunk:
            self._interrupted(f"the response ended after {self._position} bytes")
            return
        self._counters.add("bytes_downloaded", len(chunk))
        self._failures = 0
        start = self._cursor
        self._cursor += len(chunk)
        if self._cursor <= self._position:  # still repeating bytes we already have
            self._counters.add("bytes_redownloaded", len(chunk))
            return
        if start < self._position:
            self._counters.add("bytes_redownloaded", self._position - start)
            chunk = chunk[self._position - start :]
        if self._cursor > self._size:
            raise RegistryError(
                f"{self._what}: the registry sent more than the {self._size} bytes "
                "the manifest gives",
                hint="the registry or a proxy in between is serving the wrong content",
            )
        self._position = self._cursor
        self._pending = memoryview(chunk)

    def _reopen(self) -> None:
        try:
            self._open()
        except RegistryError as e:
            if not self._resumes:
                raise
            reason = e.message.removeprefix(f"{self._what}: ")
            raise self._broken_off(reason) from e

    def _broken_off(self, reason: str) -> RegistryError:
        return RegistryError(
            f"{self._what}: the download broke off at {self._position} of {self._size} "
            f"bytes and could not be resumed: {reason}",
            hint="check the network and the registry, then pull again: "
            "what was stored completely is not fetched again",
        )

    def _open(self) -> None:
        body = self._opener(self._position)
        if body.start not in (0, self._position):
            body.close()
            raise RegistryError(
                f"{self._what}: asked for bytes from {self._position}, "
                f"the registry answered from {body.start}",
                hint="the registry, or a proxy in front of it, mishandles ranges; try again",
            )
        self._body = body
        self._cursor = body.start

    def _interrupted(self, reason: str) -> None:
        self._drop()
        self._failures += 1
        self._resumes += 1
        if self._failures >= self._policy.attempts or self._resumes > self._policy.max_resumes:
            raise self._broken_off(reason)
        self._counters.add("resumes")
        self._sleep(self._policy.delay(self._failures))


def _sleep(seconds: float) -> None:
    import time

    time.sleep(seconds)
