"""Tests for syscontainers.layers: tar → store import, digests, whiteouts, and a hostile corpus."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, cast

import pytest
import zstandard

from syscontainers import record
from syscontainers.compression import CHUNK
from syscontainers.errors import DigestMismatchError, LayerError
from syscontainers.layers import PROGRESS_STEP, import_layer
from syscontainers.oci import Descriptor
from syscontainers.store import Store
from syscontainers.store.lock import LockMode
from syscontainers.store.objects import ObjectWriter, xattr_hash
from syscontainers.tree import Entry, EntryKind, LayerTree, MemoryTree
from tests.unit.store_fixtures import new_store

WHAT = "layer 2/3 (sha256:abc)"

# ---- building archives byte by byte (tarfile refuses to write most hostile ones) -----


def header(
    name: str | bytes,
    flag: bytes = b"0",
    size: int = 0,
    link: str = "",
    mode: int = 0o644,
    uid: int = 0,
    gid: int = 0,
    mtime: int = 0,
    dev: tuple[int, int] = (0, 0),
) -> bytes:
    """One ustar header block with a correct checksum."""
    block = bytearray(512)

    def put(offset: int, value: bytes) -> None:
        block[offset : offset + len(value)] = value

    put(0, name.encode() if isinstance(name, str) else name)
    put(100, b"%07o\0" % mode)
    put(108, b"%07o\0" % uid)
    put(116, b"%07o\0" % gid)
    put(124, b"%011o\0" % size)
    put(136, b"%011o\0" % mtime)
    put(148, b" " * 8)
    put(156, flag)
    put(157, link.encode())
    put(257, b"ustar\x0000")
    put(329, b"%07o\0" % dev[0])
    put(337, b"%07o\0" % dev[1])
    put(148, b"%06o\0 " % sum(block))
    return bytes(block)


def pad(data: bytes) -> bytes:
    return data + bytes(-len(data) % 512)


def file(name: str, data: bytes, **kw: int) -> bytes:
    return header(name, b"0", len(data), **kw) + pad(data)  # type: ignore[arg-type]


def pax(records: dict[str, bytes], flag: bytes = b"x") -> bytes:
    """A PAX extended header holding RECORDS (values are raw bytes)."""
    body = b""
    for key, value in records.items():
        text = b" " + key.encode() + b"=" + value + b"\n"
        length = len(text) + 1
        while len(str(length).encode()) + len(text) != length:
            length += 1
        body += str(length).encode() + text
    return header("PaxHeaders/x", flag, len(body)) + pad(body)


def archive(*parts: bytes, end: bool = True) -> bytes:
    return b"".join(parts) + (bytes(1024) if end else b"")


def zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


COMPRESSIONS: dict[str, Callable[[bytes], bytes]] = {
    "plain": lambda d: d,
    "gzip": lambda d: gzip.compress(d, compresslevel=1),
    "zstd": zstd,
}


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """The store (privileged as root), held locked for writing."""
    store = new_store(tmp_path, privileged=None)
    with store.locked(LockMode.EXCLUSIVE):
        yield store


@pytest.fixture
def writer(store: Store) -> ObjectWriter:
    return store.object_writer()


def run(
    writer: ObjectWriter,
    tar: bytes,
    compress: str = "plain",
    desc: bool = False,
    progress: Callable[[int], None] | None = None,
) -> LayerTree:
    blob = COMPRESSIONS[compress](tar)
    d = Descriptor("application/vnd.oci.image.layer.v1.tar", sha(blob), len(blob))
    return imported(writer, io.BytesIO(blob), d if desc else None, sha(tar), WHAT, progress)


def imported(
    writer: ObjectWriter,
    blob: BinaryIO,
    desc: Descriptor | None,
    diff_id: str,
    what: str,
    progress: Callable[[int], None] | None = None,
) -> LayerTree:
    """import_layer into a tree kept in memory."""
    sink = MemoryTree()
    import_layer(writer, blob, desc, diff_id, what, progress, tree=sink)
    assert sink.tree is not None
    return sink.tree


def content(store: Store, entry: Entry) -> bytes:
    return store.object_path(entry.obj).read_bytes()


# ---- what a good layer becomes ----------------------------------------------------------

EVERY_KIND = archive(
    header("./", b"5", mode=0o755, mtime=100),
    header("./etc/", b"5", mode=0o755, mtime=101),
    file("./etc/passwd", b"root:x:0:0\n", mode=0o644, mtime=102),
    file("./etc/shadow", b"root:*:1::::::\n", mode=0o640, gid=42, mtime=103),
    header("./etc/passwd-", b"1", link="./etc/passwd", mode=0o777, uid=5, mtime=9),
    header("./bin/sh", b"2", link="busybox", mode=0o777, mtime=104),
    header("./dev/null", b"3", mode=0o666, dev=(1, 3)),
    header("./dev/sda", b"4", mode=0o660, gid=6, dev=(8, 0)),
    header("./run/initctl", b"6", mode=0o600),
    file("./usr/.wh.gone", b""),
    header("./opt/.wh..wh..opq", b"0"),
    header("./.wh..wh.plnk/", b"5"),
    file("./.wh..wh.plnk/123.4", b"aufs hardlink"),
    file(".wh.top", b""),
    file("./usr/bin/setuid", b"#!", mode=0o4755, uid=1000, gid=1000),
)


def _expected(obj: Callable[[str], str]) -> list[Entry]:
    f, d = EntryKind.FILE, EntryKind.DIR
    return [
        Entry("", d, 0o755, mtime=100),
        Entry("etc", d, 0o755, mtime=101),
        Entry("etc/passwd", f, 0o644, mtime=102, obj=obj("etc/passwd"), size=11),
        Entry("etc/shadow", f, 0o640, gid=42, mtime=103, obj=obj("etc/shadow"), size=15),
        Entry("etc/passwd-", f, 0o644, mtime=102, obj=obj("etc/passwd"), size=11),
        Entry("bin/sh", EntryKind.SYMLINK, 0o777, mtime=104, target="busybox"),
        Entry("dev/null", EntryKind.CHAR, 0o666, rdev=(1, 3)),
        Entry("dev/sda", EntryKind.BLOCK, 0o660, gid=6, rdev=(8, 0)),
        Entry("run/initctl", EntryKind.FIFO, 0o600),
        Entry("usr/gone", EntryKind.WHITEOUT),
        Entry("opt", EntryKind.OPAQUE),
        Entry("top", EntryKind.WHITEOUT),
        Entry("usr/bin/setuid", f, 0o4755, 1000, 1000, obj=obj("usr/bin/setuid"), size=2),
    ]


@pytest.mark.parametrize("compress", COMPRESSIONS)
def test_every_kind_of_entry(store: Store, writer: ObjectWriter, compress: str) -> None:
    tree = run(writer, EVERY_KIND, compress)
    by_path = {e.path: e for e in tree.entries if e.kind is EntryKind.FILE}
    assert list(tree.entries) == _expected(lambda p: by_path[p].obj)
    assert tree.diff_id == sha(EVERY_KIND)
    assert tree.size == len(EVERY_KIND)
    assert content(store, by_path["etc/passwd"]) == b"root:x:0:0\n"
    assert content(store, by_path["etc/shadow"]) == b"root:*:1::::::\n"
    assert by_path["usr/bin/setuid"].obj.endswith(".4755.1000.1000")
    assert os.stat(store.object_path(by_path["usr/bin/setuid"].obj)).st_mode & 0o7777 == 0o4755
    assert LayerTree.from_json(tree.to_json()) == tree


def test_same_content_twice_is_one_object(writer: ObjectWriter) -> None:
    tar = archive(file("a", b"same"), file("b", b"same"), file("c", b"same", mode=0o755))
    a, b, c = run(writer, tar).entries
    assert a.obj == b.obj != c.obj
    assert writer.objects_written == 2


def test_importing_a_layer_twice_writes_nothing_new(writer: ObjectWriter) -> None:
    first = run(writer, EVERY_KIND, "gzip")
    written = writer.objects_written
    assert run(writer, EVERY_KIND, "zstd") == first
    assert writer.objects_written == written


def test_xattrs_come_from_schily_pax_records(store: Store, writer: ObjectWriter) -> None:
    cap = b"\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    tar = archive(
        pax({"SCHILY.xattr.user.comment": b"hi", "SCHILY.xattr.security.capability": cap}),
        file("bin/ping", b"\x7fELF"),
        pax({"SCHILY.xattr.user.dir": b"x=y\nz"}),
        header("srv/", b"5", mode=0o755),
        file("plain", b"\x7fELF"),
    )
    ping, srv, plain = run(writer, tar).entries
    assert ping.xattrs == (("security.capability", cap), ("user.comment", b"hi"))
    assert ping.obj.endswith("." + xattr_hash(ping.xattrs))
    assert ping.obj != plain.obj and plain.xattrs == ()
    assert srv.xattrs == (("user.dir", b"x=y\nz"),)
    assert os.getxattr(store.object_path(ping.obj), "user.comment") == b"hi"


def test_hardlink_takes_the_targets_metadata(writer: ObjectWriter) -> None:
    tar = archive(
        file("usr/bin/gzip", b"gz", mode=0o755, uid=3, gid=4, mtime=50),
        header("usr/bin/gunzip", b"1", link="usr/bin/gzip", mode=0o600, uid=9, mtime=99),
        header("usr/bin/zcat", b"1", link="./usr/bin/gunzip"),
    )
    target, link, chained = run(writer, tar).entries
    assert link == target._replace(path="usr/bin/gunzip")
    assert chained == target._replace(path="usr/bin/zcat")


def test_duplicate_paths_are_all_recorded_in_order(writer: ObjectWriter) -> None:
    tar = archive(file("etc/motd", b"one"), file("etc/motd", b"two"), header("etc/motd", b"5"))
    entries = run(writer, tar).entries
    assert [(e.path, e.kind) for e in entries] == [
        ("etc/motd", EntryKind.FILE),
        ("etc/motd", EntryKind.FILE),
        ("etc/motd", EntryKind.DIR),
    ]
    assert entries[0].obj != entries[1].obj


def test_symlink_replaced_by_a_directory_may_be_entered(writer: ObjectWriter) -> None:
    tar = archive(header("lib", b"2", link="usr/lib"), header("lib", b"5"), file("lib/x", b"x"))
    assert [e.path for e in run(writer, tar).entries] == ["lib", "lib", "lib/x"]


def test_a_name_that_only_starts_like_a_symlink_is_fine(writer: ObjectWriter) -> None:
    tar = archive(header("lib", b"2", link="usr/lib"), file("lib64/ld.so", b"x"), file("lib", b"y"))
    assert [e.path for e in run(writer, tar).entries] == ["lib", "lib64/ld.so", "lib"]


class Dribble(io.RawIOBase):
    """A blob that arrives a few bytes at a time, like a slow socket."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1, /) -> bytes:
        return self._data.read(7)


@pytest.mark.parametrize("compress", COMPRESSIONS)
def test_short_reads_from_the_blob(writer: ObjectWriter, compress: str) -> None:
    blob = COMPRESSIONS[compress](EVERY_KIND)
    d = Descriptor("application/vnd.oci.image.layer.v1.tar", sha(blob), len(blob))
    tree = imported(writer, cast(BinaryIO, Dribble(blob)), d, sha(EVERY_KIND), WHAT)
    assert tree == run(writer, EVERY_KIND)


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_archives_written_by_tarfile(store: Store, writer: ObjectWriter, fmt: int) -> None:
    deep = "/".join(["d" * 40] * 4) + "/file.txt"  # 169 chars: prefix field, GNU L, or PAX path
    # ustar has no room for a long link target; the others do.
    target = "short" if fmt == tarfile.USTAR_FORMAT else deep
    members: list[tuple[str, bytes | None, str]] = [
        (deep, b"deep", ""),
        ("short", b"deep", ""),
        ("ln", None, "x" * 40),
        ("h", None, target),
    ]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for name, data, link in members:
            info = tarfile.TarInfo(name)
            info.mtime, info.uid, info.mode = 1_700_000_000, 1000, 0o640
            if data is not None:
                info.size = len(data)
            else:
                info.type = tarfile.SYMTYPE if name == "ln" else tarfile.LNKTYPE
                info.linkname = link
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    entries = run(writer, buf.getvalue(), "gzip").entries
    assert [(e.path, e.kind, e.uid, e.mtime) for e in entries] == [
        (deep, EntryKind.FILE, 1000, 1_700_000_000),
        ("short", EntryKind.FILE, 1000, 1_700_000_000),
        ("ln", EntryKind.SYMLINK, 1000, 1_700_000_000),
        ("h", EntryKind.FILE, 1000, 1_700_000_000),
    ]
    assert entries[2].target == "x" * 40
    assert content(store, entries[3]) == b"deep"
    assert entries[3].obj == entries[0].obj == entries[1].obj


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_long_names_big_ids_and_unicode(writer: ObjectWriter, fmt: int) -> None:
    name = "usr/share/" + "ü" * 80 + "/" + "n" * 120
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        info = tarfile.TarInfo(name)
        info.uid, info.gid, info.mtime = 3_000_000_000, 2**22, 2**40  # base-256 or PAX
        info.type, info.linkname = tarfile.SYMTYPE, "/" + "t" * 200
        tf.addfile(info)
    (entry,) = run(writer, buf.getvalue()).entries
    assert (entry.path, entry.uid, entry.gid) == (name, 3_000_000_000, 2**22)
    assert entry.mtime == 2**40 and entry.target == "/" + "t" * 200


def test_pax_mtime_with_fraction_and_size_override(store: Store, writer: ObjectWriter) -> None:
    tar = archive(
        pax({"mtime": b"1700000000.123456789", "size": b"5", "uid": b"77"}),
        header("f", b"0", size=0) + pad(b"12345"),
    )
    (entry,) = run(writer, tar).entries
    assert (entry.mtime, entry.size, entry.uid) == (1_700_000_000, 5, 77)
    assert content(store, entry) == b"12345"


def test_pax_global_headers_are_ignored(writer: ObjectWriter) -> None:
    tar = archive(pax({"uid": b"5", "path": b"nope"}, flag=b"g"), file("f", b"x"))
    (entry,) = run(writer, tar).entries
    assert (entry.path, entry.uid) == ("f", 0)


def test_large_file_streams_through(store: Store, writer: ObjectWriter) -> None:
    data = os.urandom(1 << 20) * 6 + b"end"  # above ObjectWriter's in-memory limit
    (entry,) = run(writer, archive(file("big", data)), "zstd").entries
    assert entry.size == len(data)
    assert entry.obj.startswith(hashlib.sha256(data).hexdigest())
    assert content(store, entry) == data


def test_record_padding_after_the_end_marker_is_part_of_the_tar(writer: ObjectWriter) -> None:
    tar = archive(file("a", b"a")) + bytes(10240 - 2048) + b"junk after the end"
    tree = run(writer, tar, "gzip")
    assert tree.size == len(tar)
    assert len(tree.entries) == 1


def test_progress_counts_raw_bytes_up_to_the_end(writer: ObjectWriter) -> None:
    # More than the read-ahead holds (8 chunks queued, one in hand): with less, a slow
    # consumer's first report could already be the last, as it was under load.
    ahead = 9 * CHUNK
    tar = archive(file("noise", os.urandom(ahead + 7 * PROGRESS_STEP)))
    seen: list[int] = []
    run(writer, tar, "gzip", progress=seen.append)
    assert len(seen) >= 3
    assert seen == sorted(seen)
    assert seen[-1] == len(gzip.compress(tar, compresslevel=1))


# ---- digests ---------------------------------------------------------------------------


def test_descriptor_is_checked_when_given(writer: ObjectWriter) -> None:
    assert run(writer, EVERY_KIND, "gzip", desc=True).diff_id == sha(EVERY_KIND)


def test_wrong_diff_id(writer: ObjectWriter) -> None:
    blob = gzip.compress(EVERY_KIND)
    wrong = sha(b"other")
    with pytest.raises(DigestMismatchError) as info:
        imported(writer, io.BytesIO(blob), None, wrong, WHAT)
    assert WHAT in info.value.message and wrong in info.value.message
    assert sha(EVERY_KIND) in info.value.message and info.value.hint


@pytest.mark.parametrize(
    "change,expect",
    [
        (lambda d: record.replace(d, digest=sha(b"x")), "has content with digest"),
        (lambda d: record.replace(d, size=d.size + 1), "bytes, but only"),
        (lambda d: record.replace(d, size=d.size - 1), "bytes, but it is longer"),
        (lambda d: record.replace(d, size=10), "be 10 bytes, but it is longer"),
    ],
    ids=["digest", "size-too-big", "size-too-small", "size-far-too-small"],
)
def test_wrong_descriptor(
    writer: ObjectWriter, change: Callable[[Descriptor], Descriptor], expect: str
) -> None:
    blob = gzip.compress(EVERY_KIND)
    desc = change(Descriptor("application/vnd.oci.image.layer.v1.tar+gzip", sha(blob), len(blob)))
    with pytest.raises(DigestMismatchError, match=expect) as info:
        imported(writer, io.BytesIO(blob), desc, sha(EVERY_KIND), WHAT)
    assert WHAT in info.value.message and desc.digest in info.value.message


def test_a_cut_download_is_reported_as_a_digest_mismatch(writer: ObjectWriter) -> None:
    blob = gzip.compress(EVERY_KIND)
    desc = Descriptor("application/vnd.oci.image.layer.v1.tar+gzip", sha(blob), len(blob))
    with pytest.raises(DigestMismatchError, match="bytes, but only") as info:
        imported(writer, io.BytesIO(blob[:-30]), desc, sha(EVERY_KIND), WHAT)
    assert isinstance(info.value.__cause__, LayerError)


# ---- the hostile corpus -----------------------------------------------------------------


def hostile_corpus() -> list[tuple[str, bytes, str]]:
    """(case, tar, the entry name the error must mention) for every archive we must refuse."""
    big = os.urandom(600)
    return [
        ("dotdot", archive(file("../escape", b"x")), "../escape"),
        ("dotdot-inner", archive(file("a/../../etc/passwd", b"x")), "a/../../etc/passwd"),
        ("dotdot-dir", archive(header("usr/..", b"5")), "usr/.."),
        ("absolute", archive(file("/etc/passwd", b"x")), "/etc/passwd"),
        ("absolute-dir", archive(header("/", b"5")), "'/'"),
        ("empty-component", archive(file("etc//passwd", b"x")), "etc//passwd"),
        ("dot-component", archive(file("etc/./passwd", b"x")), "etc/./passwd"),
        ("empty-name", archive(file("ok", b""), file("", b"x")), "after entry 'ok'"),
        ("nul-in-pax-path", archive(pax({"path": b"etc/pass\0wd"}), file("p", b"x")), "pass"),
        ("pax-path-dotdot", archive(pax({"path": b"../../x"}), file("innocent", b"x")), "../../x"),
        (
            "through-symlink",
            archive(header("lnk", b"2", link="/etc"), file("lnk/passwd", b"x")),
            "lnk/passwd",
        ),
        (
            "through-symlink-deep",
            archive(header("a/lnk", b"2", link="/"), header("a/lnk/etc/cron.d", b"5")),
            "a/lnk/etc/cron.d",
        ),
        (
            # "d" was entered (and found safe) before it became a symlink
            "through-directory-made-a-symlink",
            archive(
                header("s", b"2", link="x"),
                header("d", b"5"),
                file("d/a", b"x"),
                header("d", b"2", link="/etc"),
                file("d/passwd", b"x"),
            ),
            "d/passwd",
        ),
        (
            "whiteout-through-symlink",
            archive(header("lnk", b"2", link="/usr"), file("lnk/.wh.bin", b"")),
            "lnk/.wh.bin",
        ),
        (
            "hardlink-through-symlink",
            archive(file("f", b"x"), header("d", b"2", link="/"), header("d/f", b"1", link="f")),
            "d/f",
        ),
        (
            "hardlink-absolute",
            archive(header("shadow", b"1", link="/etc/shadow")),
            "'shadow'",
        ),
        ("hardlink-dotdot", archive(header("hl", b"1", link="../etc/shadow")), "hl"),
        ("hardlink-unseen", archive(header("hl", b"1", link="etc/shadow")), "hl"),
        (
            "hardlink-forward",
            archive(header("hl", b"1", link="later"), file("later", b"x")),
            "'hl'",
        ),
        (
            "hardlink-to-dir",
            archive(header("etc", b"5"), header("hl", b"1", link="etc")),
            "'hl'",
        ),
        (
            "hardlink-to-symlink",
            archive(header("s", b"2", link="/etc/shadow"), header("hl", b"1", link="s")),
            "'hl'",
        ),
        (
            "hardlink-to-replaced-file",
            archive(file("f", b"x"), header("f", b"2", link="/etc"), header("hl", b"1", link="f")),
            "'hl'",
        ),
        (
            "hardlink-to-file-made-a-directory",
            archive(file("f", b"x"), header("f", b"5"), header("hl", b"1", link="f")),
            "'hl'",
        ),
        ("dir-with-size", archive(header("d", b"5", size=512) + pad(b"x")), "'d'"),
        ("symlink-with-size", archive(header("s", b"2", 10, "t") + pad(b"x")), "'s'"),
        (
            "hardlink-with-size",
            archive(file("f", b"x"), header("h", b"1", 1, "f") + pad(b"x")),
            "h",
        ),
        (
            "pax-size-on-fifo",
            archive(pax({"size": b"512"}), header("fifo", b"6") + bytes(512)),
            "fifo",
        ),
        ("gnu-volume-header", archive(header("vol", b"V")), "vol"),
        ("gnu-sparse", archive(header("sparse", b"S", 10) + pad(b"x" * 10)), "sparse"),
        ("gnu-multivolume", archive(header("mv", b"M", 10) + pad(b"x" * 10)), "mv"),
        ("unknown-type", archive(header("weird", b"Z")), "weird"),
        ("pax-sparse", archive(pax({"GNU.sparse.major": b"1"}), file("sp", b"")), "sp"),
        ("root-is-a-file", archive(file("./", b"x")), "'./'"),
        ("root-is-a-symlink", archive(header(".", b"2", link="/")), "'.'"),
        ("whiteout-of-dot", archive(file("etc/.wh..", b"")), "etc/.wh.."),
        ("whiteout-of-nothing", archive(file("etc/.wh.", b"")), "etc/.wh."),
        ("empty-symlink", archive(header("s", b"2", link="")), "'s'"),
        ("bad-uid", archive(pax({"uid": b"4294967295"}), file("u", b"")), "'u'"),
        ("negative-pax-size", archive(pax({"size": b"-1"}), file("neg", b"")), "neg"),
        (
            "content-short",
            header("big", b"0", 1000) + b"only this",
            "big",
        ),
        ("content-cut-at-block", file("cut", big)[: 512 + 512], "cut"),
        ("no-end-marker", archive(file("last", b"x"), end=False), "last"),
        ("header-cut", archive(file("a", b"x"), end=False) + header("b")[:100], "'a'"),
        (
            "bad-checksum",
            archive(file("good", b"x"), header("bad")[:148] + b"0000000\0" + header("bad")[156:]),
            "good",
        ),
        (
            "checksum-digits-after-a-nul",  # as tar reads it: a field that ends before its digits
            archive(file("good", b"x"), _checksum_field(header("bad"), b"\0%06o ")),
            "good",
        ),
        ("pax-then-nothing", archive(file("prev", b""), pax({"path": b"x"})), "prev"),
        (
            "malformed-pax",
            archive(file("prev", b""), header("p", b"x", 7) + pad(b"99 a=b\n"), file("n", b"")),
            "prev",
        ),
    ]


def _checksum_field(block: bytes, form: bytes) -> bytes:
    """BLOCK with its (correct) checksum written in FORM, a %-format of 8 bytes."""
    value = sum(block[:148]) + 8 * 32 + sum(block[156:])
    return block[:148] + form % value + block[156:]


CORPUS = hostile_corpus()


@pytest.mark.parametrize("form", [b"%06o\0 ", b"%07o\0", b"  %05o\0", b"%06o  "])
def test_checksum_fields_tar_writers_use(writer: ObjectWriter, form: bytes) -> None:
    """Six digits, NUL, space (ustar); seven and a NUL; leading spaces (old tars)."""
    block = _checksum_field(header("f", size=1), form)
    assert len(block) == 512
    tree = run(writer, archive(block + pad(b"x")))
    assert [e.path for e in tree.entries] == ["f"]


@pytest.mark.parametrize("tar,name", [c[1:] for c in CORPUS], ids=[c[0] for c in CORPUS])
@pytest.mark.parametrize("compress", ["plain", "gzip"])
def test_hostile_archives_are_refused(
    store: Store, writer: ObjectWriter, tar: bytes, name: str, compress: str
) -> None:
    with pytest.raises(LayerError) as info:
        run(writer, tar, compress)
    assert WHAT in info.value.message
    assert name in info.value.message
    assert info.value.hint


def test_corpus_builder_makes_valid_headers(writer: ObjectWriter) -> None:
    ok = archive(header("d/", b"5"), file("d/f", b"x"), header("d/l", b"2", link="f"))
    assert tarfile.open(fileobj=io.BytesIO(ok)).getnames() == ["d", "d/f", "d/l"]
    assert len(run(writer, ok).entries) == 3


@pytest.mark.parametrize(
    "blob,expect",
    [
        (gzip.compress(EVERY_KIND)[:300], "gzip stream is truncated"),
        (gzip.compress(EVERY_KIND) + b"\0\0", "trailing garbage"),
        (gzip.compress(EVERY_KIND)[:-8] + b"\0\0\0\0" + bytes(4), "gzip stream is corrupt"),
        (zstd(EVERY_KIND)[:-5], "zstd stream is truncated"),
        (zstd(EVERY_KIND) + b"\x28\xb5\x2f\xfd\0\0\x07\0\0", "zstd stream has a reserved"),
        (b"\xfd7zXZ\0" + bytes(50), "xz"),
    ],
    ids=["gzip-truncated", "gzip-trailing", "gzip-bad-crc", "zstd-truncated", "zstd-junk", "xz"],
)
def test_broken_compression(writer: ObjectWriter, blob: bytes, expect: str) -> None:
    with pytest.raises(LayerError, match=expect) as info:
        imported(writer, io.BytesIO(blob), None, sha(EVERY_KIND), WHAT)
    assert WHAT in info.value.message and info.value.hint


def test_truncated_compressed_stream_names_the_entry(writer: ObjectWriter) -> None:
    tar = archive(file("first", b"1"), file("noise", os.urandom(200_000)))
    blob = gzip.compress(tar)[:100_000]
    with pytest.raises(LayerError, match="truncated") as info:
        imported(writer, io.BytesIO(blob), None, sha(tar), WHAT)
    assert "'noise'" in info.value.message


def test_oversized_extension_header_is_refused(writer: ObjectWriter) -> None:
    tar = archive(file("before", b""), header("L", b"L", 9 << 20) + bytes(9 << 20))
    with pytest.raises(LayerError, match="too large") as info:
        run(writer, tar)
    assert "before" in info.value.message


# ---- memory --------------------------------------------------------------------------------


def test_100_mb_of_zeros_imports_in_bounded_memory(tmp_path: Path, writer: ObjectWriter) -> None:
    size = 100 << 20
    tar_hash = hashlib.sha256()
    blob_path = tmp_path / "zeros.tar.gz"
    with gzip.open(blob_path, "wb", compresslevel=1) as gz:
        for part in (header("zeros", b"0", size), bytes(1 << 20), bytes(1024)):
            for _ in range(size >> 20 if len(part) == 1 << 20 else 1):
                gz.write(part)
                tar_hash.update(part)
    tracemalloc.start()
    try:
        with open(blob_path, "rb") as blob:
            tree = imported(writer, blob, None, "sha256:" + tar_hash.hexdigest(), WHAT)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert tree.entries[0].size == size
    assert peak < 40 << 20, f"peak {peak >> 20} MiB"
