"""Layer blob streams: sniff and decompress gzip or zstd, hash what passes, read ahead in a thread.

Every reader here is pull-based and bounded: one ``read(n)`` returns at most
``n`` bytes whatever the compression ratio, so a decompression bomb costs
time, never memory. Corrupt, truncated or trailing-garbage input raises
LayerError; the caller adds which layer it was.
"""

from __future__ import annotations

import importlib
import io
import queue
import threading
import types
import zlib
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, cast

from syscontainers.errors import LayerError
from syscontainers.hashing import sha256
from syscontainers.oci import Compression


def _inflate_module() -> types.ModuleType:
    """python-isal (Intel ISA-L) inflates gzip about 2.5x faster than zlib, with zlib's API;
    without it (Debian's python3 inside the booted test hosts, say) zlib is used."""
    try:
        return importlib.import_module("isal.isal_zlib")
    except ImportError:
        return zlib


_INFLATE = _inflate_module()

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

CHUNK = 1 << 20
_ZSTD_FRAME = b"\x28\xb5\x2f\xfd"
_HINT = "the blob is damaged; pull the image again, or ask its publisher to rebuild it"


class Sha256(Protocol):
    """What HashingReader needs of a sha256: hashlib's, or a HashThread's."""

    def update(self, data: bytes, /) -> None: ...

    def hexdigest(self) -> str: ...


class _Reader(io.RawIOBase):
    """A readable raw stream built on ``_read1``: at most N bytes, b"" only at the end."""

    def readable(self) -> bool:
        return True

    def _read1(self, n: int) -> bytes:
        raise NotImplementedError

    def read(self, size: int = -1, /) -> bytes:
        if size >= 0:
            return self._read1(size) if size else b""
        parts = []
        while chunk := self._read1(CHUNK):
            parts.append(chunk)
        return b"".join(parts)

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        view = memoryview(buffer).cast("B")
        data = self._read1(len(view))
        view[: len(data)] = data
        return len(data)


class HashingReader(_Reader):
    """Passes a stream through unchanged, keeping the sha256 and the length of what passed.

    With LIMIT, it ends the stream after LIMIT + 1 bytes, so a source that
    never ends is caught by the size check instead of being read forever. DIGEST is the
    sha256 the bytes go to: a new hashlib one by default, or one a ``HashThread`` computes.
    """

    def __init__(
        self, raw: BinaryIO, limit: int | None = None, digest: Sha256 | None = None
    ) -> None:
        super().__init__()
        self._raw = raw
        self._hash = sha256() if digest is None else digest
        self._limit = limit
        self.count = 0

    def _read1(self, n: int) -> bytes:
        if self._limit is not None:
            # Stop one byte past LIMIT: enough to tell that the stream is too long.
            n = min(n, self._limit + 1 - self.count)
            if n <= 0:
                return b""
        data = self._raw.read(n)
        if data:
            self._hash.update(data)
            self.count += len(data)
        return data

    def digest(self) -> str:
        """``sha256:HEX`` of every byte read so far."""
        return "sha256:" + self._hash.hexdigest()


def read_fully(stream: BinaryIO, n: int) -> bytes:
    """Up to N bytes, fewer only at the end of STREAM (plain read() may return short)."""
    data = stream.read(n)
    if len(data) == n or not data:
        return data
    parts = [data]
    got = len(data)
    while got < n and (more := stream.read(n - got)):
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def sniff(head: bytes) -> Compression:
    """The format of a blob that starts with HEAD; LayerError for compressions we do not read."""
    if head.startswith(b"\x1f\x8b"):
        return Compression.GZIP
    if head.startswith(_ZSTD_FRAME) or _is_skippable(head):
        return Compression.ZSTD
    if head.startswith(b"\xfd7zX") or head.startswith(b"BZh"):
        raise LayerError(
            "the blob is compressed with xz or bzip2, which OCI layers do not use",
            hint="layers must be plain tar, gzip or zstd; ask the publisher to rebuild the image",
        )
    return Compression.NONE


def _is_skippable(head: bytes) -> bool:
    """A zstd skippable frame's magic, 0x184D2A5?, little-endian."""
    return len(head) >= 4 and head[0] & 0xF0 == 0x50 and head[1:4] == b"\x2a\x4d\x18"


def open_decompressed(raw: BinaryIO) -> BinaryIO:
    """A stream of the uncompressed bytes of RAW (gzip, zstd, or a plain tar passed through)."""
    head = read_fully(raw, 4)
    fmt = sniff(head)
    reader: _Reader
    if fmt is Compression.GZIP:
        reader = _GzipReader(_Prefixed(head, raw))
    elif fmt is Compression.ZSTD:
        reader = _ZstdReader(_Prefixed(head, raw))
    else:
        reader = _Prefixed(head, raw)
    return cast(BinaryIO, reader)


class _Prefixed(_Reader):
    """HEAD, then the rest of RAW: gives back the bytes that sniffing consumed."""

    def __init__(self, head: bytes, raw: BinaryIO) -> None:
        super().__init__()
        self._head = head
        self._raw = raw

    def _read1(self, n: int) -> bytes:
        if not self._head:
            return self._raw.read(n)
        data, self._head = self._head[:n], self._head[n:]
        return data


class _GzipReader(_Reader):
    """Multi-member gzip with bounded output; trailing bytes must be another member."""

    def __init__(self, raw: _Reader) -> None:
        super().__init__()
        self._raw = raw
        self._inflate: Any = None  # a zlib-compatible decompressobj
        self._input = b""
        self._pending = False  # zlib may hold output after consuming all input
        self._members = 0
        self._fresh = False  # the current member has produced nothing yet

    def _read1(self, n: int) -> bytes:
        while True:
            d = self._inflate
            if d is not None and (self._input or self._pending):
                try:
                    out: bytes = d.decompress(self._input, n)
                except _INFLATE.error as e:
                    raise self._corrupt(e) from e
                self._pending = len(out) == n
                self._fresh = self._fresh and not out
                if d.eof:
                    self._input, self._inflate, self._pending = d.unused_data, None, False
                else:
                    self._input = d.unconsumed_tail
                if out:
                    return out
                continue
            if not self._input:
                self._input = self._raw.read(CHUNK)
                if not self._input:
                    if d is None and self._members:
                        return b""
                    if self._fresh and self._members > 1:  # isal waits where zlib fails
                        raise self._corrupt(_INFLATE.error("not a gzip member"))
                    raise LayerError("the gzip stream is truncated", hint=_HINT)
            if self._inflate is None:
                # wbits 31: gzip framing; a non-gzip header here is trailing garbage.
                self._inflate = _INFLATE.decompressobj(31)
                self._members += 1
                self._fresh = True

    def _corrupt(self, e: Exception) -> LayerError:
        if self._fresh and self._members > 1:
            return LayerError("the gzip stream has trailing garbage after its end", hint=_HINT)
        return LayerError(f"the gzip stream is corrupt ({e})", hint=_HINT)


class _ZstdReader(_Reader):
    """Multi-frame zstd with bounded output; a frame walker notices truncation.

    libzstd's streaming reader reports a cut-off frame as a clean end, so the
    raw bytes also pass through _ZstdFrames, which knows where frames end.
    """

    def __init__(self, raw: _Reader) -> None:
        super().__init__()
        import zstandard  # 5 ms to import (it loads platform): only for zstd layers

        self._error = zstandard.ZstdError
        self._frames = _ZstdFrames(raw)
        self._reader = zstandard.ZstdDecompressor().stream_reader(
            cast(BinaryIO, self._frames), read_size=CHUNK, read_across_frames=True, closefd=False
        )

    def _read1(self, n: int) -> bytes:
        try:
            data: bytes = self._reader.read(n)
        except self._error as e:
            raise LayerError(f"the zstd stream is corrupt: {e}", hint=_HINT) from e
        if not data:
            while self._frames.read(CHUNK):
                pass
            self._frames.check_complete()
        return data


class _ZstdFrames(_Reader):
    """Passes raw zstd bytes through while walking frame and block headers (RFC 8878)."""

    def __init__(self, raw: _Reader) -> None:
        super().__init__()
        self._raw = raw
        self._hdr = bytearray()
        self._need = 4  # header bytes wanted next
        self._state = "magic"
        self._skip = 0  # content bytes to pass over before the next header
        self._checksum = False
        self.frames = 0

    def _read1(self, n: int) -> bytes:
        data = self._raw.read(n)
        self._walk(data)
        return data

    def _walk(self, data: bytes) -> None:
        pos, end = 0, len(data)
        while pos < end:
            if self._skip:
                step = min(self._skip, end - pos)
                pos += step
                self._skip -= step
                continue
            take = min(self._need - len(self._hdr), end - pos)
            self._hdr += data[pos : pos + take]
            pos += take
            if len(self._hdr) == self._need:
                hdr = bytes(self._hdr)
                self._hdr.clear()
                self._header(hdr)

    def _header(self, hdr: bytes) -> None:
        state = self._state
        if state == "magic":
            if hdr == _ZSTD_FRAME:
                self._state, self._need = "descriptor", 1
            elif _is_skippable(hdr):
                self._state, self._need = "skippable", 4
            else:
                raise LayerError("the zstd stream has trailing garbage after a frame", hint=_HINT)
        elif state == "skippable":
            self._skip = int.from_bytes(hdr, "little")
            self._state, self._need = "magic", 4
            self.frames += 1
        elif state == "descriptor":
            fhd = hdr[0]
            single = (fhd >> 5) & 1
            fcs = (1 if single else 0, 2, 4, 8)[fhd >> 6]
            self._checksum = bool(fhd & 4)
            rest = (0 if single else 1) + (0, 1, 2, 4)[fhd & 3] + fcs
            self._state = "block"
            self._need = 3
            self._skip = rest
        elif state == "block":
            value = int.from_bytes(hdr, "little")
            kind, size = (value >> 1) & 3, value >> 3
            if kind == 3:
                raise LayerError("the zstd stream has a reserved block type", hint=_HINT)
            self._skip = 1 if kind == 1 else size
            if value & 1:
                self._skip += 4 if self._checksum else 0
                self._state, self._need = "magic", 4
                self.frames += 1

    def check_complete(self) -> None:
        """Raise LayerError unless the stream ended exactly after a whole frame."""
        if self._state != "magic" or self._hdr or self._skip or not self.frames:
            raise LayerError("the zstd stream is truncated", hint=_HINT)


class ReadAhead(_Reader):
    """Reads SOURCE in a thread into a bounded queue, so decompression and hashing
    (which release the GIL) overlap with the consumer's work.

    Exceptions in the thread are raised from ``read``. Always ``close()``: it
    stops the thread and waits for it.
    """

    _EOF = object()

    def __init__(self, source: BinaryIO, chunk: int = CHUNK, depth: int = 8) -> None:
        super().__init__()
        self._q: queue.Queue[object] = queue.Queue(depth)
        self._stop = threading.Event()
        self._buf = b""
        self._done = False
        self._thread = threading.Thread(
            target=self._produce, args=(source, chunk), name="layer-read-ahead", daemon=True
        )
        self._thread.start()

    def _produce(self, source: BinaryIO, chunk: int) -> None:
        try:
            while not self._stop.is_set():
                data = source.read(chunk)
                self._q.put(data if data else self._EOF)
                if not data:
                    return
        except BaseException as e:  # handed to the consumer, who raises it
            self._q.put(e)

    def _read1(self, n: int) -> bytes:
        if not self._buf:
            if self._done:
                return b""
            item = self._q.get()
            if isinstance(item, BaseException):
                self._done = True
                raise item
            if item is self._EOF:
                self._done = True
                return b""
            self._buf = cast(bytes, item)
        if len(self._buf) <= n:
            data, self._buf = self._buf, b""
            return data
        data, self._buf = self._buf[:n], self._buf[n:]
        return data

    def close(self) -> None:
        """Stop the reader thread and wait until it has finished."""
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._q.get(timeout=0.05)
            except queue.Empty:
                pass
        self._thread.join()
        super().close()
