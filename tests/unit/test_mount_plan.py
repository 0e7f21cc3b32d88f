"""Tests for the pure parts of syscontainers.mount: plans, records, mountinfo parsing."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from syscontainers.errors import CheckoutError
from syscontainers.mount import (
    MountRecord,
    mount_image,
    mount_points,
    plan_mount,
    plan_unmount,
    record_path,
    unmount_image,
)
from syscontainers.progress import RecordingReporter
from syscontainers.store import Store

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
MOUNTS = Path("/var/lib/syscontainers/mounts")


@pytest.mark.parametrize("cached", [False, True])
@pytest.mark.parametrize("rootfs_mounted", [False, True])
def test_plan_mount(cached: bool, rootfs_mounted: bool) -> None:
    plan = plan_mount(MOUNTS, A, "/mnt/scan", rootfs_exists=cached, rootfs_mounted=rootfs_mounted)
    rootfs = f"{MOUNTS}/{'a' * 64}/rootfs"
    assert plan.record == MountRecord("/mnt/scan", A)
    assert plan.pin == "mount:/mnt/scan"
    assert str(plan.rootfs) == rootfs
    assert plan.build_rootfs is not cached
    restrict = "remount,bind,ro,nosuid,nodev,noexec"
    # the checkout becomes a restricted mount first, where no user can reach it; the target is
    # bound from it and so never shows a writable, setuid or device-opening view
    first = (
        ()
        if rootfs_mounted
        else (
            ("mount", "--bind", rootfs, rootfs),
            ("mount", "-o", restrict, rootfs),
        )
    )
    assert plan.commands == (
        *first,
        ("mount", "--bind", rootfs, "/mnt/scan"),
        ("mount", "-o", restrict, "/mnt/scan"),
    )
    assert plan.record_path.parent == MOUNTS and plan.record_path.suffix == ".json"


def test_record_path_is_per_target_and_stable() -> None:
    paths = {record_path(MOUNTS, t) for t in ("/mnt/a", "/mnt/b", "/mnt/a/", "/mnt/ä", "/x y")}
    assert len(paths) == 5
    # sha256("/mnt/a"), so that a record never depends on which process wrote it
    assert record_path(MOUNTS, "/mnt/a").name == hashlib.sha256(b"/mnt/a").hexdigest() + ".json"


UNMOUNT_CASES = [
    pytest.param(True, [], True, id="last-mount-of-image-removes-checkout"),
    pytest.param(True, [MountRecord("/mnt/other", A)], False, id="shared-checkout-kept"),
    pytest.param(True, [MountRecord("/mnt/other", B)], True, id="other-image-does-not-keep-it"),
    pytest.param(False, [], True, id="already-unmounted-skips-umount"),
    pytest.param(True, [MountRecord("/mnt/scan", A)], True, id="own-record-does-not-count"),
]


@pytest.mark.parametrize(("mounted", "others", "removes"), UNMOUNT_CASES)
@pytest.mark.parametrize("rootfs_mounted", [False, True])
def test_plan_unmount(
    mounted: bool, others: list[MountRecord], removes: bool, rootfs_mounted: bool
) -> None:
    record = MountRecord("/mnt/scan", A)
    plan = plan_unmount(MOUNTS, record, mounted, others, rootfs_mounted)
    rootfs = f"{MOUNTS}/{'a' * 64}/rootfs"
    assert plan.commands == (
        *((("umount", "/mnt/scan"),) if mounted else ()),
        *((("umount", rootfs),) if removes and rootfs_mounted else ()),
    )
    assert plan.remove == (MOUNTS / ("a" * 64) if removes else None)
    assert plan.pin == "mount:/mnt/scan"
    assert plan.record_path == record_path(MOUNTS, "/mnt/scan")


def test_record_round_trip() -> None:
    record = MountRecord("/mnt/with space/ä", A)
    assert MountRecord.from_json(record.to_json(), "r") == record


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"{}",
        b'{"target": "/mnt", "manifest": "sha256:short"}',
        b'{"target": "relative", "manifest": "' + A.encode() + b'"}',
        b'{"target": 5, "manifest": "' + A.encode() + b'"}',
        b"[]",
    ],
)
def test_damaged_record_is_refused(data: bytes) -> None:
    with pytest.raises(CheckoutError, match="damaged") as info:
        MountRecord.from_json(data, "rec.json")
    assert info.value.hint


MOUNTINFO = (
    "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
    "40 22 0:5 / /dev rw,nosuid shared:2 - devtmpfs udev rw\n"
    "77 22 254:0 /var/lib/x/rootfs /mnt/with\\040space ro,relatime shared:1 - ext4 /dev/vda rw\n"
    "78 22 254:0 /r /mnt/tab\\011and\\134slash ro shared:1 - ext4 /dev/vda rw\n"
)


def test_mount_points_decodes_escapes() -> None:
    assert mount_points(MOUNTINFO) == {
        "/",
        "/dev",
        "/mnt/with space",
        "/mnt/tab\tand\\slash",
    }
    assert mount_points("") == set()


# ---- refusals that happen before anything is mounted (no root needed) -------


def test_mount_refuses_missing_and_non_empty_targets(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    mounts = tmp_path / "mounts"
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").touch()
    for target, needle in ((tmp_path / "absent", "not an existing directory"), (full, "not empty")):
        with pytest.raises(CheckoutError, match=needle) as info:
            mount_image(store, mounts, "img", A, [], target, RecordingReporter())
        assert info.value.hint
    assert not mounts.exists()
    assert store.pins() == {}


def test_unmount_refuses_what_we_did_not_mount(tmp_path: Path) -> None:
    target = tmp_path / "t"
    target.mkdir()
    with pytest.raises(CheckoutError, match="not an image mount made by syscontainers"):
        unmount_image(Store(tmp_path / "store"), tmp_path / "mounts", target)
