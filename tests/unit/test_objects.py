"""Tests for syscontainers.store.objects: object names, the writer's dedup and its error paths."""

from __future__ import annotations

import hashlib
import io
import os
import stat
from pathlib import Path
from typing import BinaryIO, cast

import pytest

from syscontainers.errors import LayerError, StoreCorruptError
from syscontainers.store import Store
from syscontainers.store.lock import LockMode
from syscontainers.store.objects import (
    IN_MEMORY_LIMIT,
    ObjectMeta,
    ObjectWriter,
    ParsedName,
    entry_object,
    hash_file,
    is_link_object,
    link_name,
    object_name,
    parse_name,
    read_xattrs,
    xattr_hash,
)
from syscontainers.tree import Entry, EntryKind
from tests.unit.store_fixtures import can_chown, can_set_user_xattr, new_store

HEX = hashlib.sha256(b"content").hexdigest()
XA = (("user.a", b"1"), ("security.capability", b"\x01\x00"))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def all_objects(store: Store) -> list[str]:
    top = store.objects_dir
    return sorted(n for d in os.listdir(top) for n in os.listdir(top / d))


class _Trickle(io.RawIOBase):
    """A stream that returns at most N bytes per read, as a pipe or socket may."""

    def __init__(self, data: bytes, n: int = 7) -> None:
        self.buf = io.BytesIO(data)
        self.n = n

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self.buf.read(min(self.n, size) if size >= 0 else self.n)


def trickle(data: bytes, n: int = 7) -> BinaryIO:
    return cast(BinaryIO, _Trickle(data, n))


# ---- names ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "meta, suffix",
    [
        (ObjectMeta(0o644, 0, 0), ".0644.0.0"),
        (ObjectMeta(0o755, 1000, 100), ".0755.1000.100"),
        (ObjectMeta(0o4755, 0, 0), ".4755.0.0"),  # setuid
        (ObjectMeta(0o2755, 0, 50), ".2755.0.50"),  # setgid
        (ObjectMeta(0o1777, 0, 0), ".1777.0.0"),  # sticky
        (ObjectMeta(0o6711, 0, 0), ".6711.0.0"),
        (ObjectMeta(0o100644, 0, 0), ".0644.0.0"),  # file-type bits are not part of the name
        (ObjectMeta(0, 65534, 65534), ".0000.65534.65534"),
        (ObjectMeta(0o644, 0, 0, XA), ".0644.0.0." + xattr_hash(XA)),
    ],
)
def test_object_name(meta: ObjectMeta, suffix: str) -> None:
    name = object_name(HEX, meta)
    assert name == HEX + suffix
    parsed = parse_name(name)
    assert parsed == ParsedName(
        HEX, meta.mode & 0o7777, meta.uid, meta.gid, xattr_hash(meta.xattrs) if meta.xattrs else ""
    )


def test_xattr_hash() -> None:
    h = xattr_hash(XA)
    assert len(h) == 16 and int(h, 16) >= 0
    assert xattr_hash(tuple(reversed(XA))) == h  # order does not matter
    assert xattr_hash((("user.a", b"2"),)) != xattr_hash((("user.a", b"1"),))
    assert xattr_hash((("user.b", b"1"),)) != xattr_hash((("user.a", b"1"),))
    # key/value boundaries are unambiguous
    assert xattr_hash((("user.a", b"bc"),)) != xattr_hash((("user.ab", b"c"),))
    assert xattr_hash((("a", b""), ("b", b""))) != xattr_hash((("a", b"\0b"),))


def test_distinct_metadata_distinct_names() -> None:
    metas = [
        ObjectMeta(0o644, 0, 0),
        ObjectMeta(0o755, 0, 0),
        ObjectMeta(0o644, 1, 0),
        ObjectMeta(0o644, 0, 1),
        ObjectMeta(0o644, 0, 0, (("user.a", b"1"),)),
        ObjectMeta(0o644, 0, 0, (("user.a", b"2"),)),
    ]
    assert len({object_name(HEX, m) for m in metas}) == len(metas)


def test_the_object_an_entry_uses() -> None:
    """Files use their object, plain symlinks their symlink object, nothing else uses one."""
    file_obj = object_name(HEX, ObjectMeta(0o644, 0, 0))
    assert entry_object(Entry("f", EntryKind.FILE, obj=file_obj, size=7)) == (file_obj, 7)
    link = Entry("l", EntryKind.SYMLINK, uid=1, gid=2, mtime=3, target="f")
    assert entry_object(link) == (link_name("f", 1, 2, 3), 0)
    assert entry_object(link._replace(xattrs=(("user.a", b"1"),))) is None  # made in place
    for kind in (EntryKind.DIR, EntryKind.CHAR, EntryKind.FIFO, EntryKind.WHITEOUT):
        assert entry_object(Entry("x", kind)) is None
    assert is_link_object(link_name("f", 1, 2, 3)) and not is_link_object(file_obj)
    assert parse_name(link_name("f", 1, 2, 3)).link_mtime == 3


@pytest.mark.parametrize(
    "name",
    [
        "",
        "abc",
        HEX,
        f"{HEX}.0644.0",
        f"{HEX}.0644.0.0.x.y",
        f"{HEX[:-1]}.0644.0.0",
        f"{'g' * 64}.0644.0.0",
        f"{HEX}.0999.0.0",  # not octal
        f"{HEX}.0644.root.0",
        f"{HEX}.0644.0.",
        f".tmp-obj-{HEX[:12]}",
    ],
)
def test_parse_name_rejects(name: str) -> None:
    with pytest.raises(StoreCorruptError, match="is not an object name in the store"):
        parse_name(name)


# ---- the writer: small objects ----------------------------------------------------------


@pytest.mark.parametrize(
    "data, mode",
    [
        (b"hello\n", 0o644),
        (b"", 0o600),
        (b"#!/bin/sh\n", 0o755),
        (b"\0" * 4096, 0o4755),
        (b"g", 0o2750),
        (b"t", 0o1755),
    ],
)
def test_put_small(store: Store, data: bytes, mode: int) -> None:
    w = store.object_writer()
    meta = ObjectMeta(mode, 0, 0)
    name = w.put(io.BytesIO(data), len(data), meta, "etc/x")
    assert name == object_name(sha(data), meta)
    path = store.object_path(name)
    assert path.read_bytes() == data
    assert stat.S_IMODE(os.lstat(path).st_mode) == mode  # setuid/setgid/sticky survive
    assert (w.bytes_written, w.objects_written) == (len(data), 1)
    assert os.listdir(store.tmp_dir) == []


def test_put_dedups_same_content_and_meta(store: Store) -> None:
    w = store.object_writer()
    meta = ObjectMeta(0o644, 0, 0)
    first = w.put(io.BytesIO(b"same"), 4, meta, "a")
    inode = os.lstat(store.object_path(first)).st_ino
    second = w.put(io.BytesIO(b"same"), 4, meta, "b")
    assert first == second
    assert os.lstat(store.object_path(first)).st_ino == inode  # not rewritten
    assert (w.bytes_written, w.objects_written) == (4, 1)
    # a second writer (a later pull) also finds it
    w2 = store.object_writer()
    assert w2.put(io.BytesIO(b"same"), 4, meta, "c") == first
    assert (w2.bytes_written, w2.objects_written) == (0, 0)
    assert all_objects(store) == [first]


def test_same_content_other_meta_is_another_object(store: Store) -> None:
    w = store.object_writer()
    a = w.put(io.BytesIO(b"x"), 1, ObjectMeta(0o644, 0, 0), "a")
    b = w.put(io.BytesIO(b"x"), 1, ObjectMeta(0o755, 0, 0), "b")
    c = w.put(io.BytesIO(b"x"), 1, ObjectMeta(0o644, 0, 0, (("user.k", b"v"),)), "c")
    assert len({a, b, c}) == 3
    assert all_objects(store) == sorted([a, b, c])
    assert (w.bytes_written, w.objects_written) == (3, 3)


def test_put_reads_only_size_bytes(store: Store) -> None:
    stream = io.BytesIO(b"abcdefgh")
    name = store.object_writer().put(stream, 3, ObjectMeta(0o644, 0, 0), "f")
    assert store.object_path(name).read_bytes() == b"abc"
    assert stream.read() == b"defgh"  # the next tar member is untouched


def test_put_small_short_stream(store: Store) -> None:
    w = store.object_writer()
    with pytest.raises(LayerError, match=r"^usr/bin/x: content ends 6 bytes before"):
        w.put(io.BytesIO(b"1234"), 10, ObjectMeta(0o755, 0, 0), "usr/bin/x")
    assert all_objects(store) == []
    assert os.listdir(store.tmp_dir) == []
    assert (w.bytes_written, w.objects_written) == (0, 0)


def test_put_small_from_a_trickling_stream(store: Store) -> None:
    data = bytes(range(256)) * 40
    name = store.object_writer().put(trickle(data), len(data), ObjectMeta(0o644, 0, 0), "f")
    assert store.object_path(name).read_bytes() == data


# ---- the writer: large objects ------------------------------------------------------------


def big(n: int = IN_MEMORY_LIMIT + 12345) -> bytes:
    return (b"0123456789abcdef" * (n // 16 + 1))[:n]


def test_put_large(store: Store) -> None:
    data = big()
    assert len(data) > 4 << 20
    w = store.object_writer()
    meta = ObjectMeta(0o4750, 0, 0)
    name = w.put(io.BytesIO(data), len(data), meta, "opt/blob")
    assert name == object_name(sha(data), meta)
    path = store.object_path(name)
    assert hash_file(path) == sha(data)
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o4750
    assert (w.bytes_written, w.objects_written) == (len(data), 1)
    # dedup: written once, and no temp file left behind
    assert w.put(io.BytesIO(data), len(data), meta, "opt/again") == name
    assert (w.bytes_written, w.objects_written) == (len(data), 1)
    assert os.listdir(store.tmp_dir) == []
    assert all_objects(store) == [name]


def test_put_large_from_a_trickling_stream(store: Store) -> None:
    data = big()
    name = store.object_writer().put(
        trickle(data, 1 << 16), len(data), ObjectMeta(0o644, 0, 0), "f"
    )
    assert hash_file(store.object_path(name)) == sha(data)


def test_put_large_short_stream(store: Store) -> None:
    data = big()
    w = store.object_writer()
    with pytest.raises(LayerError, match=r"^opt/blob: content ends 1000 bytes before"):
        w.put(io.BytesIO(data[:-1000]), len(data), ObjectMeta(0o644, 0, 0), "opt/blob")
    assert all_objects(store) == []
    assert os.listdir(store.tmp_dir) == []  # the partial temp file is removed
    assert (w.bytes_written, w.objects_written) == (0, 0)


def test_size_limit_boundary(store: Store) -> None:
    w = store.object_writer()
    for n in (IN_MEMORY_LIMIT, IN_MEMORY_LIMIT + 1):
        data = big(n)
        name = w.put(io.BytesIO(data), n, ObjectMeta(0o644, 0, 0), "f")
        assert name.startswith(sha(data))
    assert w.objects_written == 2


# ---- metadata: ownership and xattrs (probed, not assumed) ---------------------------------


def test_unprivileged_writer_keeps_our_owner(store: Store) -> None:
    name = store.object_writer().put(io.BytesIO(b"x"), 1, ObjectMeta(0o644, 4321, 4321), "f")
    st = os.lstat(store.object_path(name))
    assert (st.st_uid, st.st_gid) == (os.geteuid(), os.getegid())
    assert parse_name(name).uid == 4321  # the name still records the image's owner


def test_privileged_writer_sets_owner_and_keeps_setuid(tmp_path: Path) -> None:
    if not can_chown(tmp_path):
        pytest.skip("needs CAP_CHOWN")
    s = new_store(tmp_path, privileged=True)
    with s.locked(LockMode.EXCLUSIVE):
        name = s.object_writer().put(io.BytesIO(b"x"), 1, ObjectMeta(0o6755, 4321, 8765), "f")
    st = os.lstat(s.object_path(name))
    assert (st.st_uid, st.st_gid) == (4321, 8765)
    assert stat.S_IMODE(st.st_mode) == 0o6755  # chown cleared the bits; fchmod restored them


def test_user_xattrs_are_applied(store: Store) -> None:
    if not can_set_user_xattr(store.tmp_dir):
        pytest.skip("the filesystem has no user xattrs")
    xattrs = (("user.mime", b"text/plain"), ("user.zz", b"\x00\xff"))
    name = store.object_writer().put(io.BytesIO(b"x"), 1, ObjectMeta(0o644, 0, 0, xattrs), "f")
    assert read_xattrs(store.object_path(name)) == xattrs
    assert name.endswith("." + xattr_hash(xattrs))


def test_read_xattrs_of_a_plain_file(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"")
    assert read_xattrs(f) == ()
    assert read_xattrs(tmp_path / "missing") == ()


def test_hash_file(tmp_path: Path) -> None:
    f = tmp_path / "f"
    data = big(3 << 20)
    f.write_bytes(data)
    assert hash_file(f) == sha(data)


def test_writer_constructed_directly(tmp_path: Path) -> None:
    (tmp_path / "objects" / HEX[:2]).mkdir(parents=True)
    (tmp_path / "tmp").mkdir()
    w = ObjectWriter(tmp_path / "objects", tmp_path / "tmp", privileged=False)
    name = w.put(io.BytesIO(b"content"), 7, ObjectMeta(0o644, 0, 0), "f")
    assert name == object_name(HEX, ObjectMeta(0o644, 0, 0))
    assert (tmp_path / "objects" / HEX[:2] / name).read_bytes() == b"content"


@pytest.mark.parametrize("mode", [0o644, 0o666, 0o777, 0o000, 0o4755, 0o2711, 0o1777, 0o600])
def test_object_gets_its_exact_mode_whatever_the_umask(store: Store, mode: int) -> None:
    """Files created with their final mode skip fchmod only when the umask strips nothing."""
    old = os.umask(0o077)
    try:
        data = b"m%04o" % mode
        name = store.object_writer().put(io.BytesIO(data), len(data), ObjectMeta(mode, 0, 0), "f")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.lstat(store.object_path(name)).st_mode) == mode
