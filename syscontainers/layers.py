"""Layer import: one pass from a layer blob through decompression, digest checks and tar parsing
into the object store, refusing hostile archives.

The tar reader is our own, not ``tarfile``: it is several times faster per
entry, and it lets us refuse what tarfile quietly accepts (unknown entry
types, sizes on entries that carry no data, missing end-of-archive marker).
It reads ustar, GNU (long names) and PAX (including ``SCHILY.xattr.*``)
headers; PAX global headers are ignored, as Docker and containerd do.

Decompression runs in a read-ahead thread and the blob's and the tar's sha256 in another
(zlib, libzstd and hashlib release the GIL), overlapped with parsing and object writes here.
Entries go to a tree sink as they are read (``Store.layer_writer`` writes them to disk), so
memory does not grow with the entries: the safety checks keep only a compact index of the
paths seen (``pathindex``) and read an earlier entry back from the sink when they need it.
Nothing is published: objects are content-addressed and harmless, and the caller publishes
the tree with ``Store.publish_layer``.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from typing import BinaryIO, NamedTuple, cast

from syscontainers.compression import CHUNK, HashingReader, ReadAhead, open_decompressed
from syscontainers.errors import DigestMismatchError, LayerError
from syscontainers.hashthread import HashThread
from syscontainers.oci import Descriptor
from syscontainers.pathindex import PathIndex
from syscontainers.store.objects import IN_MEMORY_LIMIT, ObjectMeta, ObjectWriter
from syscontainers.tree import Entry, EntryKind, TreeSink

BLOCK = 512
MAX_EXTENSION = 8 << 20  # PAX and GNU long-name records: names and xattrs, never content
PROGRESS_STEP = 1 << 20
_ZERO_BLOCK = bytes(BLOCK)
_REGULAR = frozenset((b"0", b"\0", b"7"))
_HEADER_ONLY = {
    b"1": EntryKind.FILE,  # hardlink, resolved to the FILE it names
    b"2": EntryKind.SYMLINK,
    b"3": EntryKind.CHAR,
    b"4": EntryKind.BLOCK,
    b"5": EntryKind.DIR,
    b"6": EntryKind.FIFO,
}
_EXTENSIONS = frozenset((b"x", b"g", b"L", b"K"))
_FILE = EntryKind.FILE
_MAX_ID = 0xFFFFFFFE
_HINT_HOSTILE = "the layer is malformed or hostile; do not use this image, and tell its publisher"
_HINT_TYPES = "a layer may hold files, directories, links, devices and FIFOs; rebuild it plainly"
_HINT_DAMAGED = "the layer is damaged or cut short; pull the image again"
# What the path index records of a path's latest entry: its kind, beside the sink offset.
_OTHER, _IS_FILE, _IS_SYMLINK = 0, 1, 2


def import_layer(
    writer: ObjectWriter,
    blob: BinaryIO,
    desc: Descriptor | None,
    diff_id: str,
    what: str,
    on_progress: Callable[[int], None] | None = None,
    *,
    tree: TreeSink,
) -> None:
    """Store every file of the layer BLOB as objects and its entries in TREE, checking all
    digests; TREE is finished only when every check passed.

    BLOB is read to its end. With DESC, its sha256 and size must match the raw
    bytes; the uncompressed tar must always match DIFF_ID. WHAT names the layer
    in errors; ON_PROGRESS gets the raw bytes consumed, about every MiB.
    """
    hashing = HashThread()
    try:
        raw, tar = _import(writer, blob, desc, what, on_progress, tree, hashing)
    finally:
        hashing.close()
    if on_progress is not None:
        on_progress(raw.count)
    if tar.digest() != diff_id:
        raise DigestMismatchError(
            f"{what}: the uncompressed layer has digest {tar.digest()}, "
            f"but the image config names {diff_id}",
            hint="the image is inconsistent or damaged; pull it again or ask its publisher",
        )
    tree.finish(diff_id, tar.count)


def _import(
    writer: ObjectWriter,
    blob: BinaryIO,
    desc: Descriptor | None,
    what: str,
    on_progress: Callable[[int], None] | None,
    tree: TreeSink,
    hashing: HashThread,
) -> tuple[HashingReader, HashingReader]:
    """Import the entries and read the blob to its end; (the blob, the tar) read."""
    limit = desc.size if desc is not None else None
    raw = HashingReader(blob, limit, hashing.sha256())
    try:
        tar = HashingReader(open_decompressed(cast(BinaryIO, raw)), digest=hashing.sha256())
    except LayerError as e:
        raise LayerError(f"{what}: {e.message}", e.hint) from e
    ahead = ReadAhead(cast(BinaryIO, tar))
    try:
        stream = _TarStream(cast(BinaryIO, ahead), what, raw, on_progress)
        _Importer(writer, what, stream, tree).run()
        stream.drain()
    except LayerError as e:
        ahead.close()
        if desc is not None:
            # A cut-off or wrong download also looks corrupt; the digest says which it was.
            while raw.read(CHUNK):
                pass
            if mismatch := _blob_mismatch(raw, desc, what):
                raise mismatch from e
        raise
    finally:
        ahead.close()
    if desc is not None and (mismatch := _blob_mismatch(raw, desc, what)):
        raise mismatch
    return raw, tar


def _blob_mismatch(raw: HashingReader, desc: Descriptor, what: str) -> DigestMismatchError | None:
    hint = "the download was damaged or cut short, or the source is corrupt; pull again"
    if raw.count != desc.size:
        got = "it is longer" if raw.count > desc.size else f"only {raw.count} arrived"
        return DigestMismatchError(
            f"{what}: blob {desc.digest} should be {desc.size} bytes, but {got}", hint=hint
        )
    if raw.digest() != desc.digest:
        return DigestMismatchError(
            f"{what}: blob {desc.digest} has content with digest {raw.digest()}", hint=hint
        )
    return None


class _TarStream:
    """The uncompressed tar, read in 512-byte blocks and content runs over a chunk buffer."""

    def __init__(
        self,
        source: BinaryIO,
        what: str,
        raw: HashingReader,
        on_progress: Callable[[int], None] | None,
    ) -> None:
        self._source = source
        self._what = what
        self._raw = raw
        self._on_progress = on_progress
        self._reported = 0
        self._buf = b""
        self._pos = 0
        self._view, self._view_of = memoryview(b""), b""  # a view of _buf, made once per chunk
        self.entry: str | None = None  # the entry being read, for error messages

    def _fill(self) -> bytes:
        try:
            data = self._source.read(CHUNK)
        except LayerError as e:
            where = "after the end of the archive" if self.entry is None else f"in {self.entry!r}"
            raise LayerError(f"{self._what}: {e.message} ({where})", e.hint) from e
        if self._on_progress is not None and self._raw.count - self._reported >= PROGRESS_STEP:
            self._reported = self._raw.count
            self._on_progress(self._reported)
        return data

    def read(self, n: int) -> bytes:
        """Exactly N bytes, or fewer at the end of the stream."""
        buf, pos = self._buf, self._pos
        if pos + n <= len(buf):
            self._pos = pos + n
            return buf[pos : pos + n]
        parts = [buf[pos:]]
        got = len(buf) - pos
        self._buf, self._pos = b"", 0
        while got < n:
            chunk = self._fill()
            if not chunk:
                break
            need = n - got
            if len(chunk) > need:
                parts.append(chunk[:need])
                self._buf, self._pos = chunk, need
                break
            parts.append(chunk)
            got += len(chunk)
        return b"".join(parts)

    def read_view(self, n: int) -> bytes | memoryview:
        """As ``read``, but without copying when the N bytes lie in the current chunk."""
        buf, pos = self._buf, self._pos
        if pos + n > len(buf):
            return self.read(n)
        if self._view_of is not buf:
            self._view, self._view_of = memoryview(buf), buf
        self._pos = pos + n
        return self._view[pos : pos + n]

    def skip(self, n: int) -> int:
        """Pass over N bytes; return how many there were."""
        left = n
        while left:
            avail = len(self._buf) - self._pos
            if avail >= left:
                self._pos += left
                return n
            left -= avail
            self._buf, self._pos = self._fill(), 0
            if not self._buf:
                break
        return n - left

    def drain(self) -> None:
        """Read to the end, so the digests cover every byte."""
        self.entry = None
        self._buf, self._pos = b"", 0
        while self._fill():
            pass


class _Content:
    """SIZE bytes of one file's content, as a stream for ObjectWriter.put."""

    __slots__ = ("_tar", "left")

    def __init__(self, tar: _TarStream, size: int) -> None:
        self._tar = tar
        self.left = size

    def read(self, n: int = -1) -> bytes:
        data = self._tar.read(self.left if n < 0 or n > self.left else n)
        self.left -= len(data)
        return data


class _Header(NamedTuple):
    """One tar entry, after its extension headers are applied. (A NamedTuple, not a frozen
    dataclass: one is made per entry, and a tuple is several times cheaper to make.)"""

    name: str
    linkname: str
    typeflag: bytes
    mode: int
    uid: int
    gid: int
    size: int
    mtime: int
    rdev: tuple[int, int]
    xattrs: tuple[tuple[str, bytes], ...] = ()


class _Importer:
    """Walks the archive, checking each entry, writing files, collecting tree entries."""

    def __init__(self, writer: ObjectWriter, what: str, tar: _TarStream, tree: TreeSink) -> None:
        self._writer = writer
        self._what = what
        self._tar = tar
        self._tree = tree
        self._paths = PathIndex()  # path -> its latest entry: sink position << 2 | kind
        self._checked = ""  # a directory known to have no symlink of this layer above it
        self._checked_at = 0  # ... as of this many symlinks
        self._symlinks = 0
        self._offset = 0
        self._last = ""  # the previous entry's name, to place header errors
        self._metas: dict[tuple[int, int, int, tuple[tuple[str, bytes], ...]], ObjectMeta] = {}

    def run(self) -> None:
        """Import every entry up to the end-of-archive marker."""
        tar = self._tar
        ext: dict[bytes, bytes] = {}
        while True:
            block = tar.read(BLOCK)
            if len(block) < BLOCK:
                self._fail_truncated()
            if block == _ZERO_BLOCK:
                if ext:
                    raise self._error("", "extended headers are not followed by an entry")
                return
            try:
                h = _parse_header(block)
            except ValueError as e:
                raise self._error("", f"not a valid tar header ({e})", _HINT_DAMAGED) from None
            self._offset += BLOCK
            if h.typeflag in _EXTENSIONS:
                self._extension(h, ext)
                continue
            if ext:
                try:
                    h = _apply_extensions(h, ext)
                except ValueError as e:
                    raise self._error(h.name, f"its PAX header is not valid: {e}") from None
                ext = {}
            tar.entry = h.name
            self._entry(h)
            self._last = h.name
            self._offset += -(-h.size // BLOCK) * BLOCK if h.typeflag in _REGULAR else 0

    def _where(self, prefix: str = "the header at ") -> str:
        after = f" (after entry {self._last!r})" if self._last else ""
        return f"{prefix}byte {self._offset}{after}"

    def _error(self, name: str, why: str, hint: str = _HINT_HOSTILE) -> LayerError:
        subject = f"entry {name!r}" if name else self._where()
        return LayerError(f"{self._what}: {subject}: {why}", hint=hint)

    def _fail_truncated(self) -> None:
        raise LayerError(
            f"{self._what}: the archive ends at {self._where('')} without an end-of-archive marker",
            hint=_HINT_DAMAGED,
        )

    def _extension(self, h: _Header, ext: dict[bytes, bytes]) -> None:
        if h.size > MAX_EXTENSION:
            raise self._error("", f"an extended header of {h.size} bytes is too large")
        data = self._tar.read(h.size)
        if len(data) < h.size or self._tar.skip(-h.size % BLOCK) < -h.size % BLOCK:
            self._fail_truncated()
        self._offset += -(-h.size // BLOCK) * BLOCK
        if h.typeflag == b"x":
            try:
                ext.update(_parse_pax(data))
            except ValueError as e:
                raise self._error("", f"not a valid PAX header ({e})", _HINT_DAMAGED) from None
        elif h.typeflag == b"L":
            ext[b"path"] = data.split(b"\0", 1)[0]
        elif h.typeflag == b"K":
            ext[b"linkpath"] = data.split(b"\0", 1)[0]

    def _entry(self, h: _Header) -> None:
        path = self._normalise(h.name, h.name, "name")
        flag = h.typeflag
        if flag not in _REGULAR:
            if flag not in _HEADER_ONLY:
                kind = flag.decode("latin-1")
                raise self._error(h.name, f"entry type {kind!r} is not supported", _HINT_TYPES)
            if h.size:
                raise self._error(h.name, f"a type {flag.decode()!r} entry has a size of {h.size}")
        if not 0 <= h.uid <= _MAX_ID or not 0 <= h.gid <= _MAX_ID:
            raise self._error(h.name, f"owner {h.uid}:{h.gid} is not valid")
        self._check_parents(path, h.name)
        if ".wh." in path and self._whiteout(h, path):
            return
        if flag in _REGULAR:
            self._file(h, path)
        elif flag == b"1":
            self._hardlink(h, path)
        else:
            self._special(h, path, _HEADER_ONLY[flag])

    def _normalise(self, name: str, entry: str, label: str) -> str:
        if name.startswith("/"):
            raise self._error(entry, f"the {label} is absolute", _HINT_HOSTILE)
        if name in (".", "./"):
            return ""
        path = name[2:] if name.startswith("./") else name
        path = path.rstrip("/") if path.endswith("/") else path
        parts = path.split("/")
        if "" in parts or "." in parts or ".." in parts or "\0" in path:
            raise self._error(entry, f"the {label} {name!r} has {_bad_part(parts)}")
        return path

    def _add(self, entry: Entry, kind: int) -> None:
        """Record ENTRY in the tree and the path index."""
        self._paths.put(entry.path, self._tree.add(entry) << 2 | kind)

    def _latest(self, path: str, kind: int) -> Entry | None:
        """The latest entry at PATH if it is of KIND (the index's hit checked against it)."""
        found = self._paths.get(path)
        if found is None or found & 3 != kind:
            return None
        entry = self._tree.entry_at(found >> 2)
        return entry if entry.path == path else None

    def _check_parents(self, path: str, name: str) -> None:
        if not self._symlinks:
            return
        parent = path.rpartition("/")[0]
        # Entries come directory by directory: check each directory once per new symlink.
        if parent == self._checked and self._checked_at == self._symlinks:
            return
        i = path.find("/")
        while i != -1:
            if self._latest(path[:i], _IS_SYMLINK) is not None:
                raise self._error(name, f"it lies under {path[:i]!r}, a symlink in this layer")
            i = path.find("/", i + 1)
        self._checked, self._checked_at = parent, self._symlinks

    def _whiteout(self, h: _Header, path: str) -> bool:
        """Record a whiteout or opaque marker, or skip aufs metadata; False if PATH is neither."""
        parent, _, base = path.rpartition("/")
        if "/.wh..wh." in "/" + parent:
            pass  # inside an aufs metadata directory such as .wh..wh.plnk
        elif not base.startswith(".wh."):
            return False
        elif base == ".wh..wh..opq":
            self._tree.add(Entry(parent, EntryKind.OPAQUE))
        elif not base.startswith(".wh..wh."):  # other .wh..wh.* are aufs metadata
            target = base[4:]
            if target in ("", ".", ".."):
                raise self._error(h.name, "it is a whiteout of no valid name")
            whiteout = f"{parent}/{target}" if parent else target
            self._tree.add(Entry(whiteout, EntryKind.WHITEOUT))
        self._skip_content(h)
        return True

    def _file(self, h: _Header, path: str) -> None:
        if not path:
            raise self._error(h.name, "the root of the layer must be a directory")
        key = (h.mode, h.uid, h.gid, h.xattrs)
        meta = self._metas.get(key)
        if meta is None:
            meta = self._metas[key] = ObjectMeta(*key)
        size = h.size
        try:
            if size <= IN_MEMORY_LIMIT:  # most files: read whole, no stream wrapper
                data = self._tar.read_view(size)
                if len(data) < size:
                    raise self._error(h.name, "the archive ends inside this entry", _HINT_DAMAGED)
                obj = self._writer.put_bytes(data, meta)
                left = 0
            else:
                content = _Content(self._tar, size)
                obj = self._writer.put(
                    cast(BinaryIO, content), size, meta, f"{self._what}: entry {h.name!r}"
                )
                left = content.left
        except LayerError as e:
            raise LayerError(e.message, e.hint or _HINT_DAMAGED) from e
        self._skip_content(h, left)
        fields = (path, _FILE, h.mode, h.uid, h.gid, h.mtime, obj, size, "", _NO_DEV, h.xattrs)
        self._add(_tuple_new(Entry, fields), _IS_FILE)

    def _skip_content(self, h: _Header, left: int | None = None) -> None:
        if h.typeflag not in _REGULAR:
            return
        left = h.size if left is None else left
        want = left + -h.size % BLOCK
        if self._tar.skip(want) < want:
            raise self._error(h.name, "the archive ends inside this entry", _HINT_DAMAGED)

    def _hardlink(self, h: _Header, path: str) -> None:
        if not path:
            raise self._error(h.name, "the root of the layer must be a directory")
        target = self._normalise(h.linkname, h.name, "hardlink target")
        hit = self._latest(target, _IS_FILE)
        if hit is None:
            raise self._error(
                h.name, f"its hardlink target {h.linkname!r} is not an earlier file in this layer"
            )
        self._add(hit._replace(path=path), _IS_FILE)  # one inode: the target's metadata

    def _special(self, h: _Header, path: str, kind: EntryKind) -> None:
        if not path and kind is not EntryKind.DIR:
            raise self._error(h.name, "the root of the layer must be a directory")
        target = ""
        if kind is EntryKind.SYMLINK:
            target = h.linkname
            if not target or "\0" in target:
                raise self._error(h.name, "its symlink target is empty or has a NUL byte")
            self._symlinks += 1
            if not h.xattrs:  # a symlink object, for checkouts to hardlink (see store.objects)
                self._writer.put_symlink(target, h.uid, h.gid, h.mtime)
        rdev = h.rdev if kind in (EntryKind.CHAR, EntryKind.BLOCK) else (0, 0)
        entry = Entry(path, kind, h.mode, h.uid, h.gid, h.mtime, "", 0, target, rdev, h.xattrs)
        self._add(entry, _IS_SYMLINK if kind is EntryKind.SYMLINK else _OTHER)


def _bad_part(parts: list[str]) -> str:
    if ".." in parts:
        return "a '..' part"
    return "a NUL byte" if any("\0" in p for p in parts) else "an empty or '.' part"


def _parse_header(block: bytes) -> _Header:
    """Decode one ustar/GNU header block; ValueError if its checksum or fields are bad."""
    # The usual fields are octal digits padded with NULs or spaces: with NULs made spaces,
    # int() reads them directly (unpacked in one call). Anything else (base-256, empty, a
    # checksum that does not start with a digit) takes the careful path.
    m, u, g, s, t, c = _NUMBERS.unpack_from(block.translate(_NUL_TO_SPACE), 100)
    try:
        stored = int(c, 8) if 0x30 <= block[148] <= 0x37 else _number(block[148:156])
    except ValueError:
        stored = _number(block[148:156])
    if stored != _unsigned_sum(block) and stored != _signed_sum(block):
        raise ValueError("the header checksum does not match")
    try:
        mode, uid, gid, size, mtime = int(m, 8), int(u, 8), int(g, 8), int(s, 8), int(t, 8)
    except ValueError:
        mode, uid, gid = _number(block[100:108]), _number(block[108:116]), _number(block[116:124])
        size, mtime = _number(block[124:136]), _number(block[136:148])
    if size < 0:
        raise ValueError("the size is negative")
    name = block[:100].split(b"\0", 1)[0]
    if block[257:263] == b"ustar\0" and block[345] != 0:
        name = block[345:500].split(b"\0", 1)[0] + b"/" + name
    typeflag = block[156:157]
    fields = (
        name.decode("utf-8", "surrogateescape"),
        block[157:257].split(b"\0", 1)[0].decode("utf-8", "surrogateescape"),
        typeflag,
        mode & 0o7777,
        uid,
        gid,
        size,
        mtime,
        _rdev(block) if typeflag in (b"3", b"4") else _NO_DEV,
        (),
    )
    return _tuple_new(_Header, fields)  # without the NamedTuple's Python-level __new__


_NUMBERS = struct.Struct("8s8s8s12s12s8s")  # mode, uid, gid, size, mtime, checksum: at 100
_tuple_new = tuple.__new__
_NUL_TO_SPACE = bytes.maketrans(b"\0", b" ")
_NO_DEV = (0, 0)


def _number(field: bytes) -> int:
    """An octal or base-256 numeric field."""
    if field[0] < 0x80:
        try:
            return int(field.rstrip(b"\0"), 8)  # the usual "0000644\0"
        except ValueError:
            digits = field.split(b"\0", 1)[0].strip(b" ")
            return int(digits, 8) if digits else 0
    value = int.from_bytes(field, "big", signed=field[0] == 0xFF)
    return value if field[0] == 0xFF else value - (0x80 << 8 * (len(field) - 1))


def _rdev(block: bytes) -> tuple[int, int]:
    return _number(block[329:337]), _number(block[337:345])


def _unsigned_sum(block: bytes) -> int:
    """The ustar checksum of BLOCK: its byte sum with the checksum field read as spaces.

    In C rather than sum() over 512 bytes: the low half of an Adler-32 is 1 + the byte sum
    mod 65521, and a 256-byte half sums to at most 65280, so each half is exact.
    """
    first = block[:148] + b"        " + block[156:256]
    return (zlib.adler32(first) & 0xFFFF) + (zlib.adler32(block[256:]) & 0xFFFF) - 2


def _signed_sum(block: bytes) -> int:
    return sum(b - 256 if b > 127 else b for b in block[:148] + block[156:]) + 256


def _parse_pax(data: bytes) -> dict[bytes, bytes]:
    """The KEY=VALUE records of a PAX extended header (values are raw bytes); ValueError if bad."""
    out: dict[bytes, bytes] = {}
    pos = 0
    while pos < len(data) and data[pos] != 0:
        space = data.find(b" ", pos)
        length = int(data[pos:space]) if space > pos else 0
        end = pos + length
        if length <= 0 or end > len(data) or data[end - 1] != 0x0A:
            raise ValueError(f"a record at byte {pos} is malformed")
        key, eq, value = data[space + 1 : end - 1].partition(b"=")
        if not eq:
            raise ValueError(f"a record at byte {pos} has no '='")
        out[key] = value
        pos = end
    return out


def _apply_extensions(h: _Header, ext: dict[bytes, bytes]) -> _Header:
    """H with PAX / GNU long-name values applied; ValueError if one is bad."""
    fields = list(h)  # set in place and made a _Header once: _replace(**changes) costs more
    if path := ext.get(b"path"):
        fields[_NAME_AT] = path.decode("utf-8", "surrogateescape")
    if linkpath := ext.get(b"linkpath"):
        fields[_LINKNAME_AT] = linkpath.decode("utf-8", "surrogateescape")
    xattrs = []
    for key, value in ext.items():
        if key == b"mtime":
            fields[_MTIME_AT] = int(value.partition(b".")[0] or b"0")
        elif (at := _PAX_NUMBERS.get(key)) is not None:
            fields[at] = number = int(value)
            if number < 0:
                raise ValueError(f"{key.decode()} is negative")
        elif key.startswith(b"SCHILY.xattr."):
            xattrs.append((key[13:].decode("utf-8", "surrogateescape"), value))
        elif key.startswith(b"GNU.sparse."):
            raise ValueError("GNU sparse files are not supported")
    if xattrs:
        fields[_XATTRS_AT] = tuple(sorted(xattrs))
    return _tuple_new(_Header, fields)


# Where _apply_extensions sets each value in a _Header's fields
_NAME_AT, _LINKNAME_AT, _MTIME_AT, _XATTRS_AT = map(
    _Header._fields.index, ("name", "linkname", "mtime", "xattrs")
)
_PAX_NUMBERS = {key: _Header._fields.index(key.decode()) for key in (b"uid", b"gid", b"size")}
