"""Tests for syscontainers.registry.stream: resumable blob streams and the retry policy."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from syscontainers.errors import RegistryError
from syscontainers.registry.stream import (
    Body,
    Counters,
    Interrupted,
    ResumableStream,
    RetryPolicy,
)

BLOB = os.urandom(300_000)
CHUNK = 64 << 10
Step = tuple[str] | tuple[str, int]


@dataclass
class Server:
    """Serves BLOB; each open follows the next step of the script.

    Steps: ("ok",) honours the range; ("norange",) always sends from 0; ("cut", N) sends N bytes
    of this body, then the connection breaks; ("short", N) ends cleanly after N bytes;
    ("extra",) appends bytes that do not belong; ("fail",) refuses to open at all.
    """

    script: list[Step]
    opened_at: list[int] = field(default_factory=list)
    closed: int = 0

    def __call__(self, start: int) -> Body:
        step = self.script.pop(0) if self.script else ("ok",)
        self.opened_at.append(start)
        if step[0] == "fail":
            raise RegistryError("blob X: cannot reach the registry")
        begin = 0 if step[0] == "norange" else start
        data = BLOB[begin:] + (b"junk" if step[0] == "extra" else b"")
        limit = step[1] if len(step) == 2 else len(data)
        return Body(begin, self._chunks(data[:limit], step[0] == "cut"), self._close)

    def _close(self) -> None:
        self.closed += 1

    @staticmethod
    def _chunks(data: bytes, breaks: bool) -> Iterator[bytes]:
        for i in range(0, len(data), CHUNK):
            yield data[i : i + CHUNK]
        if breaks:
            raise Interrupted("connection reset by peer")


def stream(server: Server, policy: RetryPolicy | None = None) -> tuple[ResumableStream, Counters]:
    counters = Counters()
    waits: list[float] = []
    s = ResumableStream(server, len(BLOB), "blob X", counters, policy, sleep=waits.append)
    return s, counters


def read_all(s: ResumableStream) -> bytes:
    with io.BufferedReader(s, 8192) as reader:
        return reader.read()


def test_plain_read() -> None:
    server = Server([])
    s, counters = stream(server)
    assert read_all(s) == BLOB
    assert server.opened_at == [0] and server.closed == 1
    assert counters.snapshot().bytes_downloaded == len(BLOB)
    assert counters.snapshot().resumes == 0


def test_cut_is_resumed_with_a_range() -> None:
    server = Server([("cut", 100_000)])
    s, counters = stream(server)
    assert read_all(s) == BLOB
    assert server.opened_at == [0, 100_000]
    stats = counters.snapshot()
    assert (stats.resumes, stats.bytes_redownloaded) == (1, 0)
    assert stats.bytes_downloaded == len(BLOB)


def test_cut_without_range_support_skips_and_counts() -> None:
    server = Server([("cut", 100_000), ("norange",)])
    s, counters = stream(server)
    assert read_all(s) == BLOB
    stats = counters.snapshot()
    assert stats.bytes_redownloaded == 100_000
    assert stats.bytes_downloaded == len(BLOB) + 100_000


def test_a_clean_but_early_end_is_resumed_too() -> None:
    server = Server([("short", 5)])
    s, counters = stream(server)
    assert read_all(s) == BLOB
    assert server.opened_at == [0, 5] and counters.snapshot().resumes == 1


def test_gives_up_after_attempts_without_progress() -> None:
    server = Server([("cut", 1000), *[("cut", 0)] * 10])
    s, _ = stream(server, RetryPolicy(attempts=3))
    with pytest.raises(RegistryError, match="broke off at 1000 of 300000 bytes") as err:
        read_all(s)
    assert err.value.hint and "pull again" in err.value.hint
    assert server.opened_at == [0, 1000, 1000]  # 3 bodies in a row broke at 1000


def test_progress_resets_the_attempts_but_resumes_are_bounded() -> None:
    server = Server([("cut", 20_000)] * 50)
    s, _ = stream(server, RetryPolicy(attempts=2, max_resumes=5))
    with pytest.raises(RegistryError, match="could not be resumed"):
        read_all(s)
    assert len(server.opened_at) == 6


def test_reopen_failure_after_a_cut_says_where() -> None:
    server = Server([("cut", 70_000), ("fail",)])
    s, _ = stream(server)
    with pytest.raises(RegistryError, match="broke off at 70000 .*cannot reach the registry"):
        read_all(s)


def test_first_open_failure_is_passed_through() -> None:
    s, _ = stream(Server([("fail",)]))
    with pytest.raises(RegistryError, match="^blob X: cannot reach the registry$"):
        s.connect()


def test_too_many_bytes_are_refused() -> None:
    s, _ = stream(Server([("extra",)]))
    with pytest.raises(RegistryError, match="more than the 300000 bytes"):
        read_all(s)


def test_empty_blob_needs_no_request() -> None:
    server = Server([])
    s = ResumableStream(server, 0, "blob E", Counters())
    s.connect()
    assert s.read() == b"" and server.opened_at == []


@pytest.mark.parametrize(
    ("failures", "retry_after", "expected"),
    [
        (1, None, 0.5),
        (2, None, 1.0),
        (4, None, 4.0),
        (10, None, 10.0),
        (1, "3", 3.0),
        (1, "999", 10.0),
        (3, "Wed, 21 Oct 2015 07:28:00 GMT", 2.0),
        (1, "-5", 0.0),
    ],
)
def test_retry_delays(failures: int, retry_after: str | None, expected: float) -> None:
    assert RetryPolicy().delay(failures, retry_after) == expected
