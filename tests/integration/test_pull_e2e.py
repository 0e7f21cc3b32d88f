"""End to end through the CLI: images made by umoci and skopeo, pulled, checked out, compared
with ``umoci unpack``; hostile layers refused whole; verify, repair, prune and delete."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from syscontainers.cli import main
from tests.imagebuild import (
    add_layer,
    layer_tar,
    make_busybox_layout,
    requires,
    to_docker_archive,
    to_oci_archive,
    to_zstd_layout,
    umoci_unpack,
    write_oci_layout,
)
from tests.treecompare import can_make_devices, snapshot

pytestmark = requires("umoci", "skopeo")


def sc(root: Path, *argv: str) -> int:
    """Run the CLI against the store ROOT."""
    return main(["--root", str(root), "-q", *argv])


@pytest.fixture(scope="module")
def layered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A busybox image (umoci) plus a layer deleting a file and one making a dir opaque."""
    tmp = tmp_path_factory.mktemp("layered")
    layout = make_busybox_layout(
        tmp / "layout",
        extra_files={
            "etc/motd": b"bye\n",
            "data/old/a": b"a\n",
            "data/keep": b"k\n",
            "srv/x": b"x\n",
        },
    )
    add_layer(layout, "latest", layer_tar(delete=["etc/motd", "srv"]))
    add_layer(layout, "latest", layer_tar({"data/new": b"new\n"}, opaque=["data"]))
    return layout


Convert = Callable[[Path, Path], str]

FORMATS: dict[str, Convert] = {
    "oci-umoci": lambda layout, tmp: f"oci:{layout}:latest",
    "oci-zstd-skopeo": lambda layout, tmp: f"oci:{to_zstd_layout(layout, tmp / 'zstd')}:latest",
    "oci-archive": lambda layout, tmp: f"oci-archive:{to_oci_archive(layout, tmp / 'a.tar')}",
    "docker-archive": lambda layout, tmp: (
        f"docker-archive:{to_docker_archive(layout, tmp / 'd.tar', name='example.org/bb:1')}"
    ),
}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_pull_and_checkout_match_umoci(fmt: str, layered: Path, tmp_path: Path) -> None:
    if not can_make_devices(tmp_path):
        pytest.skip("umoci unpack (not rootless) needs CAP_CHOWN and CAP_MKNOD")
    source = FORMATS[fmt](layered, tmp_path)
    root = tmp_path / "root"
    assert sc(root, "pull", source, "--name", "test/img:1") == 0
    assert sc(root, "checkout", "test/img:1", str(tmp_path / "co")) == 0
    reference = umoci_unpack(layered, "latest", tmp_path / "bundle")
    ours, theirs = snapshot(tmp_path / "co"), snapshot(reference)
    assert sorted(ours) == sorted(theirs)
    for path in ours:
        assert ours[path][:4] == theirs[path][:4], path
    assert not (tmp_path / "co/etc/motd").exists() and not (tmp_path / "co/srv").exists()
    assert sorted(os.listdir(tmp_path / "co/data")) == ["new"]
    assert sc(root, "images", "verify") == 0


def test_second_pull_imports_nothing(
    layered: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "root"
    assert sc(root, "pull", f"oci:{layered}:latest", "--name", "a:1") == 0
    capsys.readouterr()
    assert sc(root, "pull", f"oci:{layered}:latest", "--name", "a:1") == 0
    assert "imported 0 of 3 layers, 0 new objects" in capsys.readouterr().out


def hostile_layout(tmp: Path, evil: bytes) -> Path:
    good = layer_tar({"etc/ok": b"ok\n"})
    return write_oci_layout(tmp / "evil", [good, evil])


def test_hostile_layer_rejected_and_nothing_referenced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("../../escape")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"bad"))
    layout = hostile_layout(tmp_path, buf.getvalue())
    root = tmp_path / "root"
    assert sc(root, "pull", f"oci:{layout}:latest", "--name", "evil:1") == 1
    err = capsys.readouterr().err
    assert 'image "evil:1"' in err and "layer 2/2" in err and "../../escape" in err
    store = root / "store"
    assert os.listdir(store / "refs") == []
    assert os.listdir(store / "blobs" / "sha256") == []
    # the good first layer may stay as a tree, but no tag reaches it: prune takes all
    assert sc(root, "images", "prune") == 0
    left = [f for d in (store / "objects").iterdir() for f in d.iterdir()]
    assert left == [] and not [p for p in (store / "layers").glob("*.json")]


def test_verify_finds_corruption_and_pull_repairs(
    layered: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "root"
    assert sc(root, "pull", f"oci:{layered}:latest", "--name", "bb:1") == 0
    objects = sorted(p for d in (root / "store/objects").iterdir() for p in d.iterdir())
    files = [p for p in objects if not p.is_symlink()]  # not the symlink objects
    victim = max(files, key=lambda p: p.stat().st_size)  # busybox itself
    data = bytearray(victim.read_bytes())
    data[100] ^= 0xFF
    victim.write_bytes(bytes(data))
    capsys.readouterr()
    assert sc(root, "images", "verify", "--json") == 1
    report = json.loads(capsys.readouterr().out)
    assert not report["ok"]
    [problem] = report["problems"]
    assert problem["kind"] == "corrupt-object" and problem["item"] == victim.name
    assert problem["images"] == ["bb:1"]
    assert not victim.exists()
    assert sc(root, "images", "verify") == 1  # now missing
    assert sc(root, "pull", f"oci:{layered}:latest", "--name", "bb:1") == 0
    assert victim.exists()
    assert sc(root, "images", "verify") == 0


def test_prune_frees_exactly_the_unreferenced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shared = {"usr/share/shared": b"S" * 5000}
    a = write_oci_layout(tmp_path / "a", [layer_tar({**shared, "a-only": b"A" * 7000})])
    b = write_oci_layout(tmp_path / "b", [layer_tar({**shared, "b-only": b"B" * 11000})])
    root = tmp_path / "root"
    assert sc(root, "pull", f"oci:{a}:latest", "--name", "a:1") == 0
    assert sc(root, "pull", f"oci:{b}:latest", "--name", "b:1") == 0
    store = root / "store"
    before = {p.name for d in (store / "objects").iterdir() for p in d.iterdir()}
    assert sc(root, "images", "delete", "b:1") == 0
    capsys.readouterr()
    assert sc(root, "images", "prune", "--json") == 0
    result = json.loads(capsys.readouterr().out)
    after = {p.name for d in (store / "objects").iterdir() for p in d.iterdir()}
    gone = before - after
    assert len(gone) == 1 and next(iter(gone)).endswith(".0644.0.0")
    assert result["objects"] == 1 and result["layers"] == 1 and result["blobs"] == 2
    layer_bytes = result["bytes_freed"] - 11000
    assert 0 < layer_bytes < 4096  # the tree, by-blob entry, manifest and config
    assert sc(root, "checkout", "a:1", str(tmp_path / "co")) == 0
    assert (tmp_path / "co/a-only").read_bytes() == b"A" * 7000
    assert sc(root, "images", "verify") == 0
