"""Tests for a large checkout, which a forked child makes half of: the same tree as when
one process makes it all, metadata included, and failures in the child's half handled."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

import syscontainers.checkout as checkout_module
from syscontainers.checkout import FORK_MIN, CheckoutResult
from syscontainers.errors import CheckoutError
from syscontainers.store import Store
from syscontainers.store.lock import LockMode
from syscontainers.tree import Entry, EntryKind
from tests.unit.store_fixtures import can_chown, new_store
from tests.unit.test_checkout import D, F, L, do_checkout, put

FORKS: list[int] = []
os.register_at_fork(after_in_parent=lambda: FORKS.append(1))


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """The store, privileged when this process may give files away (to check owners)."""
    return new_store(tmp_path, privileged=can_chown(tmp_path))


def big_tree(store: Store, odd: bool = True, bad: str = "") -> tuple[Entry, ...]:
    """1,300-odd entries in 40 directories of varied modes and owners, each with files, a
    symlink and a subdirectory. With ODD, what the child leaves to its parent: no symlink
    object for the symlinks, a FIFO and a symlink with xattrs. And BAD, a missing object."""
    objs = [put(store, b"%d\n" % i) for i in range(4)]
    if not odd:  # else the symlinks are made in place, by the parent
        with store.locked(LockMode.EXCLUSIVE):
            store.object_writer().put_symlink("sub/f0", 0, 0, 0)
    entries = [D("", 0o751, mtime=5)]
    for d in range(40):
        mode = 0o555 if d % 3 == 0 else 0o750
        entries.append(D(f"d{d}", mode, uid=d, gid=2 * d, mtime=1000 + d))
        entries.append(D(f"d{d}/sub", 0o700, mtime=2000 + d))
        entries += [F(f"d{d}/sub/f{f}", objs[f % 4], mtime=9) for f in range(30)]
        entries.append(L(f"d{d}/ln", "sub/f0"))
    if odd:
        entries.append(Entry("d39/fifo", EntryKind.FIFO, 0o640, mtime=77))
        xattrs = (("user.a", b"1"),)
        entries.append(Entry("d39/xl", EntryKind.SYMLINK, 0o777, target="x", xattrs=xattrs))
    if bad:
        entries.append(F("d39/bad", bad))
    assert len(entries) > FORK_MIN + 100
    return tuple(entries)


def snapshot(root: Path) -> dict[str, tuple[int, int, int, int, int]]:
    """PATH -> (type and mode, owner, group, mtime, and the inode if it is a hardlink)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in ["", *dirnames, *filenames]:
            path = os.path.join(dirpath, name) if name else dirpath
            st = os.lstat(path)
            linked = st.st_ino if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode) else 0
            rel = os.path.relpath(path, root)
            out[rel] = (st.st_mode, st.st_uid, st.st_gid, int(st.st_mtime), linked)
    return out


# Without odd entries the child also gives its directories their metadata; with them it
# leaves that to its parent, which makes them after it.
@pytest.mark.parametrize("odd", [False, True])
def test_forked_checkout_is_the_same_tree_as_one_process_makes(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, odd: bool
) -> None:
    entries = big_tree(store, odd)
    forks = len(FORKS)
    result = do_checkout(store, tmp_path / "forked", entries)
    assert len(FORKS) == forks + 1  # a second process made half of it
    monkeypatch.setattr(checkout_module, "FORK_MIN", len(entries) + 1)
    alone = do_checkout(store, tmp_path / "alone", entries)
    assert len(FORKS) == forks + 1
    assert result == alone == CheckoutResult(1200, 81, 40 + odd, False, 0)
    forked, single = snapshot(tmp_path / "forked"), snapshot(tmp_path / "alone")
    assert forked == single
    assert len(forked) == len(entries)
    st = os.lstat(tmp_path / "forked/d39")  # in the child's half
    assert (stat.S_IMODE(st.st_mode), st.st_mtime) == (0o555, 1039)
    if store.privileged:
        assert (st.st_uid, st.st_gid) == (39, 78)
    if odd:
        assert stat.S_ISFIFO(os.lstat(tmp_path / "forked/d39/fifo").st_mode)
        assert os.readlink(tmp_path / "forked/d39/xl") == "x"


def test_entries_whose_parents_the_other_half_makes_are_made(store: Store, tmp_path: Path) -> None:
    # Layer 2 fills the directories of layer 1: the child starts on its files while this
    # process is still making those directories, so many fail at first and are made again.
    obj = put(store, b"x")
    first = tuple(D(f"d{i}", 0o555, mtime=i) for i in range(FORK_MIN))
    second = tuple(F(f"d{i}/f", obj) for i in range(FORK_MIN))
    result = do_checkout(store, tmp_path / "out", first, second)
    assert (result.files, result.dirs) == (FORK_MIN, FORK_MIN + 1)
    for i in range(FORK_MIN):
        st = os.lstat(tmp_path / f"out/d{i}")
        assert (stat.S_IMODE(st.st_mode), st.st_mtime) == (0o555, i)
        assert (tmp_path / f"out/d{i}/f").read_bytes() == b"x"


def test_missing_object_in_the_childs_half_names_it_and_leaves_nothing(
    store: Store, tmp_path: Path
) -> None:
    bad = "e" * 64 + ".0644.0.0"
    dest = tmp_path / "out" / "rootfs"
    dest.parent.mkdir()
    forks = len(FORKS)
    with pytest.raises(CheckoutError) as info:
        do_checkout(store, dest, big_tree(store, bad=bad))
    assert len(FORKS) == forks + 1
    assert bad in info.value.message and "/d39/bad" in info.value.message
    assert os.listdir(dest.parent) == []


def test_a_tree_above_the_bound_is_made_by_one_process(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = big_tree(store, odd=False)
    monkeypatch.setattr(checkout_module, "FORK_MAX", len(entries) // 2)  # a child copy: too big
    forks = len(FORKS)
    result = do_checkout(store, tmp_path / "out", entries)
    assert len(FORKS) == forks
    assert (result.files, result.dirs) == (1200, 81)
    assert stat.S_IMODE(os.lstat(tmp_path / "out/d39").st_mode) == 0o555
