"""Tests for syscontainers.checkout: the layer union, whiteouts, and hardlink materialisation."""

from __future__ import annotations

import io
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from syscontainers.checkout import CheckoutResult, checkout
from syscontainers.errors import CheckoutError
from syscontainers.fsutil import remove_tree
from syscontainers.merge import merge
from syscontainers.progress import EventKind, RecordingReporter
from syscontainers.store import Store
from syscontainers.store.lock import LockMode
from syscontainers.store.objects import ObjectMeta
from syscontainers.tree import Entry, EntryKind, LayerTree
from tests.unit.store_fixtures import can_chown, new_store

K = EntryKind


def D(path: str, mode: int = 0o755, *, uid: int = 0, gid: int = 0, mtime: int = 0) -> Entry:
    return Entry(path, K.DIR, mode, uid=uid, gid=gid, mtime=mtime)


def F(path: str, obj: str = "obj", mode: int = 0o644, *, mtime: int = 0) -> Entry:
    return Entry(path, K.FILE, mode, obj=obj, mtime=mtime)


def L(path: str, target: str) -> Entry:
    return Entry(path, K.SYMLINK, 0o777, target=target)


def W(path: str) -> Entry:
    return Entry(path, K.WHITEOUT)


def O(path: str) -> Entry:  # noqa: E743
    return Entry(path, K.OPAQUE)


def tree(*entries: Entry) -> LayerTree:
    return LayerTree("sha256:" + "0" * 64, 0, entries)


def layers(*trees: tuple[Entry, ...]) -> list[tuple[str, LayerTree]]:
    return [(f"L{i}", tree(*t)) for i, t in enumerate(trees)]


def shape(entries: list[Entry]) -> dict[str, str]:
    """PATH -> kind letter plus the file object or link target, for compact expectations."""
    out = {}
    for e in entries:
        out[e.path] = (
            e.kind.value + (":" + e.obj if e.obj else "") + (">" + e.target if e.target else "")
        )
    return out


MERGE_CASES = [
    pytest.param(
        [(D("etc"), F("etc/a", "1"), F("bin/sh", "2"))],
        {"": "d", "etc": "d", "etc/a": "f:1", "bin": "d", "bin/sh": "f:2"},
        id="simple-with-implied-parent",
    ),
    pytest.param(
        [(D("etc"), F("etc/a", "1"), F("etc/b", "2")), (W("etc/a"),)],
        {"": "d", "etc": "d", "etc/b": "f:2"},
        id="whiteout-file",
    ),
    pytest.param(
        [(D("etc"), D("etc/x"), F("etc/x/a", "1"), D("etc/x/y"), F("etc/x/y/b")), (W("etc/x"),)],
        {"": "d", "etc": "d"},
        id="whiteout-dir-subtree",
    ),
    pytest.param(
        [(F("a", "1"),), (W("missing/deep/path"), W("nothing"))],
        {"": "d", "a": "f:1"},
        id="whiteout-of-missing-is-noop",
    ),
    pytest.param(
        [(D("x"), F("x/old", "1"), D("x/sub"), F("x/sub/f")), (D("x"), O("x"), F("x/new", "2"))],
        {"": "d", "x": "d", "x/new": "f:2"},
        id="opaque-hides-lower-keeps-same-layer",
    ),
    pytest.param(
        [(F("x/old", "1"),), (F("x/new", "2"), O("x"))],
        {"": "d", "x": "d", "x/new": "f:2"},
        id="opaque-applies-before-same-layer-entries-whatever-order",
    ),
    pytest.param(
        [(F("a", "1"), F("b", "2")), (O(""), F("c", "3"))],
        {"": "d", "c": "f:3"},
        id="opaque-root",
    ),
    pytest.param(
        [(F("p", "1"),), (D("p"), F("p/child", "2"))],
        {"": "d", "p": "d", "p/child": "f:2"},
        id="file-replaced-by-dir",
    ),
    pytest.param(
        [(D("p"), F("p/child", "1"), D("p/sub"), F("p/sub/x")), (F("p", "2"),)],
        {"": "d", "p": "f:2"},
        id="dir-replaced-by-file-drops-subtree",
    ),
    pytest.param(
        [(D("p"), F("p/child", "1")), (L("p", "/elsewhere"),)],
        {"": "d", "p": "l>/elsewhere"},
        id="dir-replaced-by-symlink-drops-subtree",
    ),
    pytest.param(
        [(D("p", 0o700), F("p/child", "1")), (D("p", 0o711),)],
        {"": "d", "p": "d", "p/child": "f:1"},
        id="dir-replaced-by-dir-keeps-children",
    ),
    pytest.param(
        [(F("a", "1"), F("a", "2"))],
        {"": "d", "a": "f:2"},
        id="later-entry-in-same-layer-wins",
    ),
    pytest.param(
        [(F("a", "1"),), (W("a"), F("a", "2"))],
        {"": "d", "a": "f:2"},
        id="whiteout-then-readd",
    ),
    pytest.param(
        [(L("link", "dir"), D("dir")), (W("link"), D("link"), F("link/f", "1"))],
        {"": "d", "dir": "d", "link": "d", "link/f": "f:1"},
        id="symlink-whited-out-then-dir",
    ),
]


@pytest.mark.parametrize(("trees", "expected"), MERGE_CASES)
def test_merge(trees: list[tuple[Entry, ...]], expected: dict[str, str]) -> None:
    merged = merge(layers(*trees))
    assert shape(merged) == expected
    seen: set[str] = set()
    for e in merged:  # parents before children
        if e.path:
            assert e.path.rpartition("/")[0] in seen, e.path
        seen.add(e.path)


def test_merge_dir_replacement_takes_new_metadata_and_implied_dirs_are_root_0755() -> None:
    merged = {e.path: e for e in merge(layers((D("p", 0o700, uid=5),), (D("p", 0o711, uid=7),)))}
    assert (merged["p"].mode, merged["p"].uid) == (0o711, 7)
    implied = {e.path: e for e in merge(layers((F("a/b/c"),)))}["a/b"]
    assert (implied.kind, implied.mode, implied.uid, implied.gid, implied.mtime) == (
        K.DIR,
        0o755,
        0,
        0,
        0,
    )


REJECT_CASES = [
    pytest.param([(L("etc", "/host/etc"), F("etc/passwd"))], "etc/passwd", id="same-layer-symlink"),
    pytest.param([(L("etc", "/host/etc"),), (F("etc/passwd"),)], "etc/passwd", id="across-layers"),
    pytest.param([(L("a", "/"),), (F("a/b/c/d"),)], "a/b/c/d", id="deep-under-symlink"),
    pytest.param([(L("a", "/x"),), (W("a/b"),)], "a/b", id="whiteout-through-symlink"),
    pytest.param([(L("a", "/x"),), (O("a/b"),)], "a/b", id="opaque-through-symlink"),
    pytest.param([(F("a"), F("a/b"))], "a/b", id="parent-is-file"),
    pytest.param([(F("a"),), (D("a/b"),)], "a/b", id="parent-is-file-across-layers"),
    pytest.param([(F("../escape"),)], "../escape", id="dotdot"),
    pytest.param([(F("/abs"),)], "/abs", id="absolute"),
    pytest.param([(W(""),)], "root", id="whiteout-root"),
    pytest.param([(F(""),)], "root", id="root-not-dir"),
]


@pytest.mark.parametrize(("trees", "needle"), REJECT_CASES)
def test_merge_rejects(trees: list[tuple[Entry, ...]], needle: str) -> None:
    with pytest.raises(CheckoutError) as info:
        merge(layers(*trees))
    assert f"layer L{len(trees) - 1}" in info.value.message
    assert needle in info.value.message
    assert info.value.hint


# ---- checkout against a real store ------------------------------------------


def can_mknod(tmp: Path) -> bool:
    probe = tmp / "mknod-probe"
    try:
        os.mknod(probe, 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    except OSError:
        return False
    probe.unlink()
    return True


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """The store, privileged when this process may give files away (to check owners)."""
    return new_store(tmp_path, privileged=can_chown(tmp_path))


def put(store: Store, data: bytes, mode: int = 0o644, uid: int = 0, gid: int = 0) -> str:
    with store.locked(LockMode.EXCLUSIVE):
        writer = store.object_writer()
        return writer.put(io.BytesIO(data), len(data), ObjectMeta(mode, uid, gid), "test")


def do_checkout(store: Store, dest: Path, *trees: tuple[Entry, ...]) -> CheckoutResult:
    return checkout(store, layers(*trees), dest, RecordingReporter())


def test_checkout_tree_content_and_counts(store: Store, tmp_path: Path) -> None:
    a, b = put(store, b"alpha\n"), put(store, b"beta\n", 0o755)
    dest = tmp_path / "rootfs"
    result = do_checkout(
        store,
        dest,
        (D("etc"), F("etc/a", a), F("etc/gone", b), L("etc/link", "a"), F("usr/bin/b", b, 0o755)),
        (W("etc/gone"),),
    )
    assert result == CheckoutResult(files=2, dirs=4, links=1, copied=False, skipped_devices=0)
    assert (dest / "etc/a").read_bytes() == b"alpha\n"
    assert not (dest / "etc/gone").exists()
    assert os.readlink(dest / "etc/link") == "a"
    assert (dest / "etc/link").read_bytes() == b"alpha\n"
    assert os.stat(dest / "usr/bin/b").st_mode & 0o777 == 0o755
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rootfs", "store"]  # no temp left


def test_checkout_hardlinks_share_the_object_inode(store: Store, tmp_path: Path) -> None:
    obj = put(store, b"same\n")
    do_checkout(store, tmp_path / "r1", (F("x", obj), F("d/y", obj)))
    do_checkout(store, tmp_path / "r2", (F("z", obj),))
    inode = os.stat(store.object_path(obj)).st_ino
    for p in ("r1/x", "r1/d/y", "r2/z"):
        assert os.stat(tmp_path / p).st_ino == inode
    assert os.stat(store.object_path(obj)).st_nlink == 4


def test_checkout_opaque_and_replacements_on_disk(store: Store, tmp_path: Path) -> None:
    o = put(store, b"o")
    dest = tmp_path / "rootfs"
    do_checkout(
        store,
        dest,
        (D("x"), F("x/old", o), F("p", o), D("q"), F("q/inner", o)),
        (O("x"), F("x/new", o), D("p"), F("p/c", o), F("q", o)),
    )
    assert sorted(os.listdir(dest / "x")) == ["new"]
    assert (dest / "p").is_dir() and (dest / "p/c").is_file()
    assert (dest / "q").is_file()


def test_checkout_applies_modes_owners_and_mtimes(store: Store, tmp_path: Path) -> None:
    f = put(store, b"f", 0o4755, 0, 0)
    dest = tmp_path / "rootfs"
    do_checkout(
        store,
        dest,
        (
            D("", 0o751, mtime=1000),
            D("ro", 0o555, uid=33, gid=44, mtime=2000),
            D("ro/sticky", 0o1777, mtime=3000),
            F("ro/sticky/f", f, 0o4755),
            Entry("ro/ln", K.SYMLINK, 0o777, 55, 66, 4000, target="nowhere"),
        ),
    )
    st = os.lstat(dest)
    assert (stat.S_IMODE(st.st_mode), st.st_mtime) == (0o751, 1000)
    st = os.lstat(dest / "ro")
    assert (stat.S_IMODE(st.st_mode), st.st_mtime) == (0o555, 2000)
    st = os.lstat(dest / "ro/sticky")
    assert (stat.S_IMODE(st.st_mode), st.st_mtime) == (0o1777, 3000)
    assert stat.S_IMODE(os.lstat(dest / "ro/sticky/f").st_mode) == 0o4755
    st = os.lstat(dest / "ro/ln")
    assert st.st_mtime == 4000
    if store.privileged:
        assert (os.lstat(dest / "ro").st_uid, os.lstat(dest / "ro").st_gid) == (33, 44)
        assert (st.st_uid, st.st_gid) == (55, 66)


def test_checkout_refuses_existing_dest(store: Store, tmp_path: Path) -> None:
    dest = tmp_path / "rootfs"
    dest.mkdir()
    with pytest.raises(CheckoutError, match="already exists") as info:
        do_checkout(store, dest, (F("a", put(store, b"a")),))
    assert info.value.hint
    assert os.listdir(dest) == []


def test_checkout_refuses_missing_parent(store: Store, tmp_path: Path) -> None:
    with pytest.raises(CheckoutError, match="not a directory"):
        do_checkout(store, tmp_path / "no" / "rootfs", (D("x"),))


def test_missing_object_names_it_and_leaves_no_temp(store: Store, tmp_path: Path) -> None:
    good = put(store, b"good")
    bad = "f" * 64 + ".0644.0.0"
    dest = tmp_path / "out" / "rootfs"
    dest.parent.mkdir()
    with pytest.raises(CheckoutError) as info:
        do_checkout(store, dest, (D("ro", 0o500), F("ro/ok", good), F("ro/bad", bad)))
    assert bad in info.value.message and "/ro/bad" in info.value.message
    assert info.value.hint == "run syscontainers images verify, then pull the image again"
    assert os.listdir(dest.parent) == []


def test_devices_skipped_without_privilege(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    reporter = RecordingReporter()
    dest = tmp_path / "rootfs"
    result = checkout(
        store,
        layers(
            (
                Entry("dev/null", K.CHAR, 0o666, rdev=(1, 3)),
                Entry("dev/sda", K.BLOCK, 0o660, rdev=(8, 0)),
                Entry("run/fifo", K.FIFO, 0o620, mtime=77),
            )
        ),
        dest,
        reporter,
    )
    assert result.skipped_devices == 2
    assert not os.path.lexists(dest / "dev/null")
    st = os.lstat(dest / "run/fifo")
    assert stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o620 and st.st_mtime == 77
    warnings = reporter.messages(EventKind.WARNING)
    assert len(warnings) == 1 and "2 device nodes" in warnings[0]


def test_devices_made_with_privilege(tmp_path: Path) -> None:
    if not can_mknod(tmp_path) or not can_chown(tmp_path):
        pytest.skip("creating device nodes needs CAP_MKNOD and CAP_CHOWN")
    store = new_store(tmp_path, privileged=True)
    dest = tmp_path / "rootfs"
    result = do_checkout(
        store,
        dest,
        (
            Entry("dev/null", K.CHAR, 0o666, 0, 5, 10, rdev=(1, 3)),
            Entry("dev/loop9", K.BLOCK, 0o660, 0, 6, 20, rdev=(7, 9)),
        ),
    )
    assert result.skipped_devices == 0
    st = os.lstat(dest / "dev/null")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)
    assert (stat.S_IMODE(st.st_mode), st.st_gid, st.st_mtime) == (0o666, 5, 10)
    st = os.lstat(dest / "dev/loop9")
    assert stat.S_ISBLK(st.st_mode) and st.st_rdev == os.makedev(7, 9)
    assert (stat.S_IMODE(st.st_mode), st.st_gid) == (0o660, 6)


def test_checkout_rejects_symlink_parent_on_disk(store: Store, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    with pytest.raises(CheckoutError, match="symbolic link"):
        do_checkout(store, tmp_path / "rootfs", (L("etc", str(outside)),), (F("etc/x", "o"),))
    assert os.listdir(outside) == []
    assert not (tmp_path / "rootfs").exists()


@pytest.fixture
def other_fs(tmp_path: Path) -> Iterator[Path]:
    """A writable directory on another filesystem than tmp_path (skip if there is none)."""
    here = os.stat(tmp_path).st_dev
    for candidate in ("/dev/shm", "/run/user", "/run", "/var/tmp", "/tmp"):
        if os.path.isdir(candidate) and os.stat(candidate).st_dev != here:
            try:
                path = Path(tempfile.mkdtemp(dir=candidate, prefix="checkout-test-"))
            except OSError:
                continue
            yield path
            remove_tree(path)
            return
    pytest.skip("no writable directory on another filesystem than the test's tmp_path")


def test_copies_when_dest_is_on_another_filesystem(
    store: Store, tmp_path: Path, other_fs: Path
) -> None:
    obj = put(store, b"payload\n" * 1000, 0o640)
    other = put(store, b"x", 0o600)
    reporter = RecordingReporter()
    dest = other_fs / "rootfs"
    result = checkout(
        store,
        layers((F("a", obj, 0o640, mtime=111), F("sub/b", obj, 0o640), F("c", other, 0o600))),
        dest,
        reporter,
    )
    assert result.copied and result.files == 3
    assert (dest / "a").read_bytes() == b"payload\n" * 1000
    st = os.stat(dest / "a")
    assert (stat.S_IMODE(st.st_mode), st.st_mtime) == (0o640, 111)
    assert st.st_ino == os.stat(dest / "sub/b").st_ino  # same object -> one copy, linked
    assert os.stat(dest / "c").st_ino != st.st_ino
    assert os.stat(store.object_path(obj)).st_nlink == 1
    warnings = reporter.messages(EventKind.WARNING)
    assert len(warnings) == 1 and "another filesystem" in warnings[0] and str(dest) in warnings[0]
