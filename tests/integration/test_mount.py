"""Integration: read-only image mounts with real mount(8)/umount(8) bind mounts."""

from __future__ import annotations

import errno
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from syscontainers.errors import CheckoutError, CommandError
from syscontainers.mount import MOUNTINFO, mount_image, mount_points, record_path, unmount_image
from syscontainers.process import run
from syscontainers.progress import EventKind, RecordingReporter
from syscontainers.store import Store
from syscontainers.store.lock import LockMode
from syscontainers.store.objects import ObjectMeta
from syscontainers.tree import Entry, EntryKind, LayerTree

pytestmark = pytest.mark.root

DIGEST = "sha256:" + "c" * 64


def bind_mounts_work(tmp: Path) -> bool:
    src, dst = tmp / "probe-src", tmp / "probe-dst"
    src.mkdir()
    dst.mkdir()
    try:
        run(["mount", "--bind", str(src), str(dst)])
    except CommandError:
        return False
    run(["umount", str(dst)])
    return True


def mounted(path: Path) -> bool:
    return str(path.resolve()) in mount_points(MOUNTINFO.read_text())


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[Store, Path, list[tuple[str, LayerTree]]]]:
    if not bind_mounts_work(tmp_path):
        pytest.skip("bind mounts are not permitted here")
    store = Store(tmp_path / "store")
    with store.locked(LockMode.EXCLUSIVE):
        data = b"#!/bin/sh\necho hi\n"
        obj = store.object_writer().put(io.BytesIO(data), len(data), ObjectMeta(0o755, 0, 0), "x")
    tree = LayerTree(
        "sha256:" + "d" * 64,
        0,
        (Entry("usr", EntryKind.DIR, 0o755), Entry("usr/bin/hi", EntryKind.FILE, 0o755, obj=obj)),
    )
    yield store, tmp_path / "mounts", [("layer 1", tree)]
    for line in sorted(mount_points(MOUNTINFO.read_text()), reverse=True):
        if line.startswith(str(tmp_path)):  # never leave a mount behind a failed test
            run(["umount", line], check=False)


def test_mount_is_read_only_pinned_shared_and_undone(
    env: tuple[Store, Path, list[tuple[str, LayerTree]]], tmp_path: Path
) -> None:
    store, mounts, layers = env
    t1, t2 = tmp_path / "t1", tmp_path / "t2"
    t1.mkdir()
    t2.mkdir()
    rep = RecordingReporter()
    mount_image(store, mounts, "example/img", DIGEST, layers, t1, rep)
    assert mounted(t1)
    assert (t1 / "usr/bin/hi").read_bytes() == b"#!/bin/sh\necho hi\n"
    with pytest.raises(OSError) as info:
        (t1 / "new").write_bytes(b"x")
    assert info.value.errno == errno.EROFS
    assert store.pins() == {f"mount:{t1.resolve()}": DIGEST}
    assert record_path(mounts, str(t1.resolve())).exists()
    checkouts = len([m for m in rep.messages(EventKind.STEP) if m.startswith("checking out")])
    assert checkouts == 1

    mount_image(store, mounts, "example/img", DIGEST, layers, t2, rep)
    assert len([m for m in rep.messages(EventKind.STEP) if m.startswith("checking out")]) == 1
    assert os.stat(t1 / "usr/bin/hi").st_ino == os.stat(t2 / "usr/bin/hi").st_ino
    with pytest.raises(CheckoutError, match="already has an image mounted"):
        mount_image(store, mounts, "example/img", DIGEST, layers, t1, rep)

    assert unmount_image(store, mounts, t1) == DIGEST
    assert not mounted(t1) and os.listdir(t1) == []
    assert store.pins() == {f"mount:{t2.resolve()}": DIGEST}
    assert (mounts / ("c" * 64) / "rootfs").is_dir()  # t2 still uses it

    assert unmount_image(store, mounts, t2) == DIGEST
    assert not mounted(t2)
    assert store.pins() == {}
    assert sorted(os.listdir(mounts)) == []
    with pytest.raises(CheckoutError, match="not an image mount"):
        unmount_image(store, mounts, t2)


def test_failed_mount_is_rolled_back(
    env: tuple[Store, Path, list[tuple[str, LayerTree]]], tmp_path: Path
) -> None:
    store, mounts, layers = env
    target = tmp_path / "t"
    target.mkdir()
    bad_layer = LayerTree("sha256:" + "e" * 64, 0, (Entry("x", EntryKind.FILE, obj="f" * 64),))
    with pytest.raises(CheckoutError, match="missing from the store"):
        mount_image(
            store, mounts, "img", DIGEST, [*layers, ("bad", bad_layer)], target, RecordingReporter()
        )
    assert not mounted(target)
    assert store.pins() == {}
    assert os.listdir(mounts) == []


def test_a_deep_mount_path_mounts_and_unmounts(
    env: tuple[Store, Path, list[tuple[str, LayerTree]]], tmp_path: Path
) -> None:
    """A path whose pin, URL-quoted, is longer than a file name (each '/' quotes to 3 bytes)
    used to fail after the checkout and leave its record behind."""
    store, mounts, layers = env
    target = tmp_path / "/".join("d" * 2 for _ in range(40))
    target.mkdir(parents=True)
    assert len(str(target.resolve())) >= 153
    mount_image(store, mounts, "img", DIGEST, layers, target, RecordingReporter())
    assert mounted(target) and (target / "usr/bin/hi").exists()
    assert store.pins() == {f"mount:{target.resolve()}": DIGEST}
    assert unmount_image(store, mounts, target) == DIGEST
    assert not mounted(target) and store.pins() == {} and os.listdir(mounts) == []
