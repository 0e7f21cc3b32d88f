"""Integration: a checkout of a multi-layer image with whiteouts matches ``umoci unpack``."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from syscontainers.checkout import FORK_MIN, checkout
from syscontainers.oci import digest_hex, parse_config, parse_manifest
from syscontainers.process import run
from syscontainers.progress import NullReporter
from syscontainers.store import Store
from syscontainers.store.lock import LockMode
from syscontainers.tree import LayerTree
from tests.treecompare import can_make_devices, snapshot

layers_mod = pytest.importorskip("syscontainers.layers")
pytestmark = pytest.mark.skipif(shutil.which("umoci") is None, reason="umoci is not installed")

Spec = tuple[str, str, dict[str, object]]  # (name, type, attributes)


def D(name: str, mode: int = 0o755, **kw: object) -> Spec:
    return (name, "dir", {"mode": mode, **kw})


def F(name: str, data: bytes, mode: int = 0o644, **kw: object) -> Spec:
    return (name, "file", {"mode": mode, "data": data, **kw})


def S(name: str, target: str) -> Spec:
    return (name, "sym", {"target": target})


def H(name: str, target: str) -> Spec:
    return (name, "hard", {"target": target})


LAYERS: list[list[Spec]] = [
    [
        D("etc"),
        F("etc/a", b"a1\n"),
        F("etc/keep", b"keep\n", 0o600, uid=12, gid=34),
        D("etc/sub", 0o755),
        F("etc/sub/x", b"x\n"),
        S("etc/link", "a"),
        D("usr"),
        D("usr/bin"),
        F("usr/bin/tool", b"#!/bin/sh\n", 0o4755),
        H("usr/bin/t2", "usr/bin/tool"),
        D("opq"),
        F("opq/old", b"old\n"),
        D("opq/d"),
        F("opq/d/old2", b"o2\n"),
        D("gone"),
        F("gone/f", b"f\n"),
        F("file2dir", b"was a file\n"),
        D("dir2file"),
        F("dir2file/c", b"c\n"),
        ("run", "dir", {"mode": 0o755}),
        ("run/fifo", "fifo", {"mode": 0o620}),
        D("dev"),
        ("dev/null", "chr", {"mode": 0o666}),
    ],
    [
        F("etc/.wh.a", b""),
        F(".wh.gone", b""),
        F("opq/.wh..wh..opq", b""),
        F("opq/new", b"n\n"),
        D("file2dir", 0o711),
        F("file2dir/c", b"c\n"),
        F(".wh.dir2file", b""),
        F("dir2file", b"now a file\n"),
        D("etc/sub", 0o700),
        F("etc/sub/y", b"y\n", 0o640),
    ],
    [F("etc/a", b"a3\n", 0o640), S("usr/bin/sh", "/bin/busybox")],
]


def make_tar(specs: list[Spec], path: Path) -> None:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        for i, (name, kind, attrs) in enumerate(specs):
            info = tarfile.TarInfo(name)
            info.mtime = 1_600_000_000 + i * 100
            info.mode = int(attrs.get("mode", 0o644))  # type: ignore[call-overload]
            info.uid = int(attrs.get("uid", 0))  # type: ignore[call-overload]
            info.gid = int(attrs.get("gid", 0))  # type: ignore[call-overload]
            data = b""
            if kind == "dir":
                info.type = tarfile.DIRTYPE
            elif kind == "file":
                data = attrs["data"]  # type: ignore[assignment]
                info.size = len(data)
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, str(attrs["target"])
            elif kind == "hard":
                info.type, info.linkname = tarfile.LNKTYPE, str(attrs["target"])
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
            elif kind == "chr":
                info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
            tf.addfile(info, io.BytesIO(data) if data else None)


def bulk(count: int) -> list[list[Spec]]:
    """COUNT more files (with some directories and symlinks) in the first layer, and the
    second layer's whiteouts and an opaque directory among them: with more entries than
    checkout.FORK_MIN, a forked child makes half of the tree."""
    first: list[Spec] = [D("many")]
    for i in range(count):
        if i % 50 == 0:
            first += [D(f"many/d{i}", 0o750), S(f"many/d{i}/ln", "../f0")]
        first.append(F(f"many/d{i - i % 50}/f{i}", b"%d\n" % (i % 7), 0o600 + 0o44 * (i % 2)))
    second = [F(f"many/d{i - i % 50}/.wh.f{i}", b"") for i in range(0, count, 9)]
    if count:
        second += [F("many/d100/.wh..wh..opq", b""), F("many/d100/new", b"new\n")]
    return [first, second, []]


def build_image(tmp: Path, count: int) -> Path:
    layout = tmp / "layout"
    run(["umoci", "init", "--layout", str(layout)])
    run(["umoci", "new", "--image", f"{layout}:t"])
    for i, specs in enumerate(a + b for a, b in zip(LAYERS, bulk(count), strict=True)):
        make_tar(specs, tmp / f"l{i}.tar")
        run(["umoci", "raw", "add-layer", "--image", f"{layout}:t", str(tmp / f"l{i}.tar")])
    return layout


def import_image(store: Store, layout: Path) -> list[tuple[str, LayerTree]]:
    blobs = layout / "blobs" / "sha256"
    index = json.loads((layout / "index.json").read_text())
    manifest = parse_manifest((blobs / digest_hex(index["manifests"][0]["digest"])).read_bytes())
    config = parse_config((blobs / digest_hex(manifest.config.digest)).read_bytes())
    out = []
    with store.locked(LockMode.EXCLUSIVE):
        for i, (desc, diff_id) in enumerate(zip(manifest.layers, config.diff_ids, strict=True)):
            sink = store.layer_writer()
            with open(blobs / digest_hex(desc.digest), "rb") as blob:
                layers_mod.import_layer(
                    store.object_writer(), blob, desc, diff_id, f"l{i}", tree=sink
                )
            store.publish_layer(sink, desc.digest)
            out.append((f"layer {i + 1}", store.get_layer(diff_id)))
    return out


@pytest.mark.parametrize("count", [0, 1500], ids=["small", "forked"])
def test_checkout_matches_umoci_unpack(tmp_path: Path, count: int) -> None:
    if not can_make_devices(tmp_path):
        pytest.skip("needs CAP_MKNOD and CAP_CHOWN, as umoci unpack does")
    layout = build_image(tmp_path, count)
    run(["umoci", "unpack", "--image", f"{layout}:t", str(tmp_path / "bundle")])
    store = Store(tmp_path / "store")
    layers = import_image(store, layout)
    dest = tmp_path / "rootfs"
    result = checkout(store, layers, dest, NullReporter())
    ours, theirs = snapshot(dest), snapshot(tmp_path / "bundle" / "rootfs")
    assert sorted(ours) == sorted(theirs)
    for path in sorted(ours):
        assert ours[path] == theirs[path], path
    # and the facts the whiteouts should produce, independently of umoci
    assert (dest / "etc/a").read_bytes() == b"a3\n"
    assert not (dest / "gone").exists() and sorted(os.listdir(dest / "opq")) == ["new"]
    assert (dest / "dir2file").is_file() and (dest / "file2dir/c").is_file()
    assert os.stat(dest / "usr/bin/tool").st_ino == os.stat(dest / "usr/bin/t2").st_ino
    assert not result.copied and result.skipped_devices == 0
    assert os.lstat(dest / "dev/null").st_rdev == os.makedev(1, 3)
    if count:
        assert result.files > FORK_MIN and os.listdir(dest / "many/d100") == ["new"]
        assert not (dest / "many/d0/f9").exists() and (dest / "many/d0/f10").exists()
