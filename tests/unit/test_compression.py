"""Tests for syscontainers.compression: sniffing, bounded decompression, hashing, read-ahead."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import threading
from collections.abc import Callable
from typing import BinaryIO, cast

import pytest
import zstandard

from syscontainers.compression import (
    HashingReader,
    ReadAhead,
    open_decompressed,
    read_fully,
    sniff,
)
from syscontainers.errors import LayerError
from syscontainers.oci import Compression

PAYLOAD = os.urandom(3000) * 700 + b"tail"  # ~2 MB: several zlib windows and zstd blocks


def _zstd(data: bytes, **kw: object) -> bytes:
    return zstandard.ZstdCompressor(**kw).compress(data)  # type: ignore[arg-type]


def _zstd_stream(data: bytes) -> bytes:
    """A frame without a content size (as streaming compressors write them)."""
    out = io.BytesIO()
    with zstandard.ZstdCompressor(write_checksum=True).stream_writer(out, closefd=False) as w:
        w.write(data)
    return out.getvalue()


def _skippable(payload: bytes) -> bytes:
    return b"\x5a\x2a\x4d\x18" + len(payload).to_bytes(4, "little") + payload


def _read_all(blob: bytes, n: int = 65536) -> bytes:
    stream = open_decompressed(io.BytesIO(blob))
    parts = []
    while chunk := stream.read(n):
        assert len(chunk) <= n
        parts.append(chunk)
    return b"".join(parts)


VALID: list[tuple[str, Callable[[bytes], bytes]]] = [
    ("plain", lambda d: d),
    ("gzip", lambda d: gzip.compress(d)),
    ("gzip-fast", lambda d: gzip.compress(d, compresslevel=1)),
    ("gzip-multi-member", lambda d: gzip.compress(d[:1000]) + gzip.compress(d[1000:])),
    ("gzip-empty-member", lambda d: gzip.compress(b"") + gzip.compress(d)),
    ("zstd", lambda d: _zstd(d)),
    ("zstd-checksum", lambda d: _zstd(d, write_checksum=True, level=19)),
    ("zstd-no-size", lambda d: _zstd(d, write_content_size=False)),
    ("zstd-stream", _zstd_stream),
    ("zstd-multi-frame", lambda d: _zstd(d[:5]) + _zstd(d[5:])),
    ("zstd-skippable", lambda d: _skippable(b"meta") + _zstd(d) + _skippable(b"")),
]


@pytest.mark.parametrize("make", [m for _, m in VALID], ids=[i for i, _ in VALID])
@pytest.mark.parametrize("data", [PAYLOAD, bytes(3 << 20), b"x"], ids=["random", "zeros", "tiny"])
def test_round_trip(make: Callable[[bytes], bytes], data: bytes) -> None:
    assert _read_all(make(data)) == data


def test_read_all_at_once() -> None:
    assert open_decompressed(io.BytesIO(gzip.compress(PAYLOAD))).read() == PAYLOAD


def test_empty_blob_is_an_empty_plain_stream() -> None:
    assert open_decompressed(io.BytesIO(b"")).read(10) == b""


@pytest.mark.parametrize(
    "compress",
    [lambda d: gzip.compress(d, 9), lambda d: _zstd(d, level=19)],
    ids=["gzip-bomb", "zstd-bomb"],
)
def test_output_is_bounded_by_the_read_size(compress: Callable[[bytes], bytes]) -> None:
    blob = compress(bytes(64 << 20))
    assert len(blob) < 200_000
    stream = open_decompressed(io.BytesIO(blob))
    sizes = [len(stream.read(4096)) for _ in range(50)]
    assert sizes == [4096] * 50


BROKEN: list[tuple[str, bytes, str]] = [
    ("gzip-truncated", gzip.compress(PAYLOAD)[:-100], "truncated"),
    ("gzip-no-trailer", gzip.compress(PAYLOAD)[:-4], "truncated"),
    ("gzip-trailing-garbage", gzip.compress(PAYLOAD) + b"garbage!", "trailing garbage"),
    ("gzip-trailing-zeros", gzip.compress(PAYLOAD) + bytes(10), "trailing garbage"),
    (
        "gzip-corrupt",
        (lambda b: b[:200] + bytes([b[200] ^ 0xFF]) + b[201:])(gzip.compress(PAYLOAD)),
        "corrupt",
    ),
    ("gzip-bad-crc", (lambda b: b[:-8] + b"\0\0\0\0" + b[-4:])(gzip.compress(PAYLOAD)), "corrupt"),
    ("zstd-truncated", _zstd(PAYLOAD)[:-100], "truncated"),
    ("zstd-no-checksum-bytes", _zstd(PAYLOAD, write_checksum=True)[:-2], "truncated"),
    ("zstd-trailing-garbage", _zstd(PAYLOAD) + b"garbage!", "trailing garbage"),
    ("zstd-trailing-zeros", _zstd(PAYLOAD) + bytes(8), "trailing garbage"),
    ("zstd-skippable-truncated", _zstd(PAYLOAD) + _skippable(b"abcdef")[:-2], "truncated"),
    (
        "zstd-corrupt",
        (lambda b: b[:200] + bytes([b[200] ^ 0xFF]) + b[201:])(_zstd(PAYLOAD, write_checksum=True)),
        "zstd",
    ),
]


@pytest.mark.parametrize("blob,message", [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_broken_streams_raise_layer_error(blob: bytes, message: str) -> None:
    with pytest.raises(LayerError, match=message) as info:
        _read_all(blob)
    assert info.value.hint


@pytest.mark.parametrize(
    "blob", [gzip.compress(b"hello world" * 50), _zstd(b"hello world" * 50, write_checksum=True)]
)
def test_every_truncation_is_noticed(blob: bytes) -> None:
    # Below 4 bytes the magic is incomplete and the blob reads as a plain tar.
    for cut in range(4, len(blob)):
        with pytest.raises(LayerError):
            _read_all(blob[:cut])


@pytest.mark.parametrize(
    "head,fmt",
    [
        (b"\x1f\x8b\x08\x00", Compression.GZIP),
        (b"\x28\xb5\x2f\xfd", Compression.ZSTD),
        (b"etc/", Compression.NONE),
        (b"\0\0\0\0", Compression.NONE),
        (b"", Compression.NONE),
    ],
)
def test_sniff(head: bytes, fmt: Compression) -> None:
    assert sniff(head) is fmt


@pytest.mark.parametrize("head", [b"\xfd7zXZ\x00", b"BZh91AY"])
def test_sniff_refuses_xz_and_bzip2(head: bytes) -> None:
    with pytest.raises(LayerError, match="xz or bzip2"):
        open_decompressed(io.BytesIO(head + bytes(100)))


class _Dribble(io.RawIOBase):
    """A stream that returns at most 3 bytes per read, like a slow socket."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1, /) -> bytes:
        return self._data.read(min(n, 3) if n >= 0 else 3)


def test_short_reads_from_the_source_are_fine() -> None:
    for blob in (gzip.compress(PAYLOAD[:5000]), _zstd(PAYLOAD[:5000]), PAYLOAD[:5000]):
        stream = open_decompressed(cast(BinaryIO, _Dribble(blob)))
        assert read_fully(stream, 10**6) == PAYLOAD[:5000]


def test_hashing_reader_digest_and_count() -> None:
    reader = HashingReader(io.BytesIO(PAYLOAD))
    assert reader.digest() == "sha256:" + hashlib.sha256(b"").hexdigest()
    got = reader.read(100) + reader.read()
    assert got == PAYLOAD
    assert reader.count == len(PAYLOAD)
    assert reader.digest() == "sha256:" + hashlib.sha256(PAYLOAD).hexdigest()


def test_hashing_reader_readinto() -> None:
    reader = HashingReader(io.BytesIO(b"abcdef"))
    buf = bytearray(4)
    assert reader.readinto(buf) == 4
    assert bytes(buf) == b"abcd"
    assert reader.count == 4


def test_hashing_reader_limit_stops_one_byte_past() -> None:
    reader = HashingReader(io.BytesIO(bytes(100)), limit=10)
    assert len(reader.read()) == 11
    assert reader.count == 11
    exact = HashingReader(io.BytesIO(bytes(10)), limit=10)
    assert len(exact.read()) == 10


def test_read_ahead_passes_everything_through() -> None:
    ahead = ReadAhead(cast(BinaryIO, io.BytesIO(PAYLOAD)), chunk=4096, depth=2)
    try:
        assert read_fully(cast(BinaryIO, ahead), len(PAYLOAD) + 1) == PAYLOAD
        assert ahead.read(10) == b""
    finally:
        ahead.close()


def test_read_ahead_raises_the_producers_error() -> None:
    blob = gzip.compress(PAYLOAD)[:-50]
    ahead = ReadAhead(open_decompressed(io.BytesIO(blob)), chunk=4096)
    try:
        with pytest.raises(LayerError, match="truncated"):
            while ahead.read(4096):
                pass
    finally:
        ahead.close()


def test_read_ahead_close_stops_the_thread_early() -> None:
    before = threading.active_count()
    ahead = ReadAhead(cast(BinaryIO, io.BytesIO(bytes(50 << 20))), chunk=4096, depth=2)
    assert ahead.read(10) == bytes(10)
    ahead.close()
    assert threading.active_count() == before
