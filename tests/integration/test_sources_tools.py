"""The local image sources on images made by umoci and skopeo (oci:, zstd, oci-archive:, docker
save format), with skopeo as the oracle for the manifests and umoci for the helper's layers."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from syscontainers import process
from syscontainers.errors import ImageNotFoundError
from syscontainers.oci import Platform, parse_config, sha256_digest
from syscontainers.sources import ImageSource, ResolvedImage, open_source, parse_source
from tests.imagebuild import (
    BUSYBOX,
    add_layer,
    layer_tar,
    make_busybox_layout,
    requires,
    to_docker_archive,
    to_oci_archive,
    to_zstd_layout,
    umoci_unpack,
)

pytestmark = [
    requires("umoci", "skopeo"),
    pytest.mark.skipif(not BUSYBOX.exists(), reason="needs busybox-static"),
]

HOST = Platform.host()
TAG = "wh"
EXTRA = {"etc/motd": b"hello\n", "data/keep": b"old\n"}


@dataclass(frozen=True)
class Images:
    """One busybox image (busybox layer, a deleting layer, an opaque layer) in every format."""

    layout: Path
    zstd: Path
    archive: Path
    docker: Path


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Images:
    root = tmp_path_factory.mktemp("images")
    layout = make_busybox_layout(root / "busybox", TAG, EXTRA, cmd=("/bin/sh", "-c", "true"))
    add_layer(layout, TAG, layer_tar(delete=["etc/motd"]))
    add_layer(layout, TAG, layer_tar({"data/new": b"new\n"}, opaque=["data"]))
    return Images(
        layout=layout,
        zstd=to_zstd_layout(layout, root / "zstd", TAG),
        archive=to_oci_archive(layout, root / "busybox.tar", TAG),
        docker=to_docker_archive(layout, root / "saved.tar", TAG, "localhost/busybox:latest"),
    )


def spec_text(images: Images, kind: str) -> str:
    return {
        "oci": f"oci:{images.layout}:{TAG}",
        "zstd": f"oci:{images.zstd}:{TAG}",
        "oci-archive": f"oci-archive:{images.archive}:{TAG}",
        "docker-archive": f"docker-archive:{images.docker}",
    }[kind]


def resolve_all(text: str) -> tuple[ResolvedImage, dict[str, bytes]]:
    """Resolve TEXT and read every blob, checking each against its digest and size."""
    src: ImageSource = open_source(parse_source(text))
    try:
        image = src.resolve(HOST)
        blobs = {}
        for desc in (image.manifest.config, *image.manifest.layers):
            with src.open_blob(desc) as stream:
                data = stream.read()
            assert sha256_digest(data) == desc.digest, f"{text}: blob {desc.digest}"
            assert len(data) == desc.size
            blobs[desc.digest] = data
        return image, blobs
    finally:
        src.close()


def skopeo_raw_manifest(text: str) -> bytes:
    out = process.run(["skopeo", "--insecure-policy", "inspect", "--raw", text]).stdout
    return out.encode()


@pytest.mark.parametrize("kind", ["oci", "zstd", "oci-archive", "docker-archive"])
def test_every_blob_matches_its_digest(images: Images, kind: str) -> None:
    image, blobs = resolve_all(spec_text(images, kind))
    config = parse_config(blobs[image.manifest.config.digest])
    assert len(image.manifest.layers) == len(config.diff_ids) == 3
    assert config.cmd == ("/bin/sh", "-c", "true")
    assert image.manifest_digest == sha256_digest(image.manifest_bytes)


@pytest.mark.parametrize("kind", ["oci", "zstd", "oci-archive"])
def test_oci_manifests_are_the_ones_skopeo_sees(images: Images, kind: str) -> None:
    text = spec_text(images, kind)
    image, _ = resolve_all(text)
    assert image.manifest_bytes == skopeo_raw_manifest(text)
    assert image.default_name == f"localhost/{'zstd' if kind == 'zstd' else 'busybox'}:{TAG}"


def test_zstd_layout_has_zstd_layers_of_the_same_content(images: Images) -> None:
    gz, gz_blobs = resolve_all(spec_text(images, "oci"))
    zs, zs_blobs = resolve_all(spec_text(images, "zstd"))
    assert {d.media_type for d in zs.manifest.layers} == {
        "application/vnd.oci.image.layer.v1.tar+zstd"
    }
    assert {d.media_type for d in gz.manifest.layers} == {
        "application/vnd.oci.image.layer.v1.tar+gzip"
    }
    gz_diff_ids = parse_config(gz_blobs[gz.manifest.config.digest]).diff_ids
    assert parse_config(zs_blobs[zs.manifest.config.digest]).diff_ids == gz_diff_ids


def test_docker_archive_layers_are_named_by_diff_id(images: Images) -> None:
    oci, oci_blobs = resolve_all(spec_text(images, "oci"))
    saved, _ = resolve_all(spec_text(images, "docker-archive"))
    diff_ids = parse_config(oci_blobs[oci.manifest.config.digest]).diff_ids
    assert tuple(d.digest for d in saved.manifest.layers) == diff_ids
    assert {d.media_type for d in saved.manifest.layers} == {
        "application/vnd.oci.image.layer.v1.tar"
    }
    assert saved.manifest.config.digest == oci.manifest.config.digest
    assert saved.default_name == "localhost/busybox:latest"


def test_docker_archive_chosen_by_name(images: Images) -> None:
    by_name, _ = resolve_all(f"docker-archive:{images.docker}:localhost/busybox:latest")
    by_index, _ = resolve_all(f"docker-archive:{images.docker}:@0")
    assert by_name.manifest_digest == by_index.manifest_digest


def test_helper_layers_delete_and_make_opaque(images: Images, tmp_path: Path) -> None:
    rootfs = umoci_unpack(images.layout, TAG, tmp_path / "bundle")
    assert not (rootfs / "etc/motd").exists()
    assert (rootfs / "etc/passwd").read_text().startswith("root:")
    assert sorted(os.listdir(rootfs / "data")) == ["new"]
    assert os.access(rootfs / "bin/busybox", os.X_OK)
    assert os.readlink(rootfs / "bin/sh") == "busybox"


def test_layout_with_two_tags_needs_one_named(tmp_path: Path) -> None:
    layout = make_busybox_layout(tmp_path / "two", "a")
    make_busybox_layout(layout, "b", {"etc/motd": b"b\n"})
    tags = json.loads((layout / "index.json").read_text())["manifests"]
    assert len(tags) == 2
    with pytest.raises(ImageNotFoundError) as err:
        resolve_all(f"oci:{layout}")
    assert err.value.hint is not None and "a, b" in err.value.hint
    a, _ = resolve_all(f"oci:{layout}:a")
    b, _ = resolve_all(f"oci:{layout}:b")
    assert a.manifest.layers != b.manifest.layers
