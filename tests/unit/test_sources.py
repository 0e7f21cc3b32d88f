"""Tests for the local image sources (oci:, oci-archive:, docker-archive:) on hand-made images."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import tarfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from syscontainers.errors import (
    DigestMismatchError,
    ImageNotFoundError,
    ManifestError,
    SourceError,
    UsageError,
)
from syscontainers.oci import (
    MT_OCI_INDEX,
    MT_OCI_MANIFEST,
    Compression,
    Descriptor,
    Platform,
    canonical_json,
    sha256_digest,
)
from syscontainers.sources import (
    ImageSource,
    ResolvedImage,
    open_source,
    parse_source,
    read_small_blob,
)
from syscontainers.sources.docker_archive import DockerArchiveSource, familiar, sniff_compression
from syscontainers.sources.oci_layout import OciLayoutSource, clean_path, repository_from_path
from tests.imagebuild import (
    LAYER_MEDIA_TYPES,
    REF_NAME,
    SavedImage,
    layer_tar,
    tar_layout,
    write_blob,
    write_docker_archive,
    write_oci_layout,
)

HOST = Platform.host()
LAYER1 = layer_tar(
    {"etc/hostname": b"box\n", "bin/tool": b"#!/bin/sh\n"}, modes={"bin/tool": 0o755}
)
LAYER2 = layer_tar({"etc/motd": b"hi\n"}, delete=["etc/hostname"], opaque=["var"])


def index_entries(layout: Path) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads((layout / "index.json").read_text())["manifests"]
    return entries


def set_index(layout: Path, entries: list[dict[str, Any]]) -> None:
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": entries}))


def blob(layout: Path, digest: str) -> Path:
    return layout / "blobs" / "sha256" / digest.split(":", 1)[1]


def source(text: str) -> ImageSource:
    return open_source(parse_source(text))


def resolve(text: str, platform: Platform = HOST) -> ResolvedImage:
    src = source(text)
    try:
        return src.resolve(platform)
    finally:
        src.close()


def read_blobs(src: ImageSource, image: ResolvedImage) -> dict[str, bytes]:
    """Every blob of IMAGE, checking that each hashes to its digest and has its size."""
    out = {}
    for desc in (image.manifest.config, *image.manifest.layers):
        with src.open_blob(desc) as stream:
            data = stream.read()
        assert sha256_digest(data) == desc.digest
        assert len(data) == desc.size
        out[desc.digest] = data
    return out


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    return write_oci_layout(tmp_path / "My_Image", [LAYER1, LAYER2], "v1")


# --- oci: --------------------------------------------------------------------------------------


@pytest.mark.parametrize("compression", list(Compression))
def test_oci_dir_resolves_and_serves_every_blob(tmp_path: Path, compression: Compression) -> None:
    layout = write_oci_layout(tmp_path / "img", [LAYER1, LAYER2], "v1", compression=compression)
    [entry] = index_entries(layout)
    with OciLayoutSource.open_dir(parse_source(f"oci:{layout}:v1")) as src:
        image = src.resolve(HOST)
        blobs = read_blobs(src, image)
    assert image.manifest_digest == entry["digest"]
    assert image.manifest_bytes == blob(layout, entry["digest"]).read_bytes()
    assert [d.media_type for d in image.manifest.layers] == [LAYER_MEDIA_TYPES[compression]] * 2
    assert image.default_name == "localhost/img:v1"
    assert len(blobs) == 3


def test_oci_dir_without_tag_takes_the_only_image(layout: Path) -> None:
    image = resolve(f"oci:{layout}")
    assert image.manifest_digest == index_entries(layout)[0]["digest"]
    assert image.default_name == "localhost/my-image:v1"


def test_oci_untagged_only_image_is_named_latest(tmp_path: Path) -> None:
    layout = write_oci_layout(tmp_path / "x", [LAYER1], None)
    assert resolve(f"oci:{layout}").default_name == "localhost/x:latest"


def test_oci_full_reference_annotation_is_the_default_name(tmp_path: Path) -> None:
    layout = write_oci_layout(tmp_path / "x", [LAYER1], "example.org/team/app:1.0")
    image = resolve(f"oci:{layout}")
    assert image.default_name == "example.org/team/app:1.0"


def test_oci_chooses_by_tag_among_several(layout: Path) -> None:
    write_oci_layout(layout, [LAYER1], "v2")
    v1, v2 = index_entries(layout)
    assert resolve(f"oci:{layout}:v2").manifest_digest == v2["digest"]
    assert resolve(f"oci:{layout}:v1").manifest_digest == v1["digest"]


def test_oci_several_images_and_no_tag_lists_the_tags(layout: Path) -> None:
    write_oci_layout(layout, [LAYER1], "v2")
    with pytest.raises(ImageNotFoundError) as err:
        resolve(f"oci:{layout}")
    assert err.value.hint is not None and "v1, v2" in err.value.hint


def test_oci_unknown_tag_lists_the_tags(layout: Path) -> None:
    with pytest.raises(ImageNotFoundError, match="'nope'") as err:
        resolve(f"oci:{layout}:nope")
    assert err.value.hint == "tags there: v1"


def test_oci_empty_index_holds_no_images(tmp_path: Path) -> None:
    layout = write_oci_layout(tmp_path / "x", [LAYER1])
    set_index(layout, [])
    with pytest.raises(ImageNotFoundError, match="holds no images"):
        resolve(f"oci:{layout}")


def _multi_platform(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A layout whose tag 'multi' is a nested index of an amd64 and an arm64/v8 image."""
    layout = tmp_path / "multi"
    digests: dict[str, str] = {}
    entries = []
    for arch, variant in (("amd64", ""), ("arm64", "v8")):
        write_oci_layout(layout, [LAYER1], arch, config={"architecture": arch})
        entry = index_entries(layout)[-1]
        entry.pop("annotations")
        entry["platform"] = {"os": "linux", "architecture": arch}
        if variant:
            entry["platform"]["variant"] = variant
        digests[arch] = entry["digest"]
        entries.append(entry)
    nested = {"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": entries}
    index_desc = write_blob(layout, json.dumps(nested).encode(), MT_OCI_INDEX)
    index_desc["annotations"] = {REF_NAME: "multi"}
    set_index(layout, [index_desc])
    return layout, digests


@pytest.mark.parametrize("want", ["linux/amd64", "linux/arm64", "linux/arm64/v8"])
def test_oci_nested_index_chooses_the_platform(tmp_path: Path, want: str) -> None:
    layout, digests = _multi_platform(tmp_path)
    image = resolve(f"oci:{layout}:multi", Platform.parse(want))
    assert image.manifest_digest == digests[Platform.parse(want).architecture]
    assert image.default_name == "localhost/multi:multi"


def test_oci_nested_index_without_the_platform(tmp_path: Path) -> None:
    layout, _ = _multi_platform(tmp_path)
    with pytest.raises(ManifestError, match="s390x") as err:
        resolve(f"oci:{layout}", Platform.parse("linux/s390x"))
    assert err.value.hint is not None and "linux/amd64, linux/arm64/v8" in err.value.hint


def test_oci_untagged_top_level_entries_are_chosen_by_platform(tmp_path: Path) -> None:
    layout, digests = _multi_platform(tmp_path)
    nested = json.loads(blob(layout, index_entries(layout)[0]["digest"]).read_bytes())
    set_index(layout, nested["manifests"])
    image = resolve(f"oci:{layout}", Platform.parse("linux/arm64"))
    assert image.manifest_digest == digests["arm64"]


def test_oci_manifest_without_media_type_is_sniffed(layout: Path) -> None:
    [entry] = index_entries(layout)
    del entry["mediaType"]
    set_index(layout, [entry])
    assert resolve(f"oci:{layout}:v1").manifest.media_type == MT_OCI_MANIFEST


def test_oci_tampered_manifest_is_a_digest_mismatch(layout: Path) -> None:
    path = blob(layout, index_entries(layout)[0]["digest"])
    path.write_bytes(path.read_bytes().replace(b'"schemaVersion": 2', b'"schemaVersion":  2'))
    with pytest.raises(DigestMismatchError, match="has the digest sha256:"):
        resolve(f"oci:{layout}")


def test_read_small_blob_checks_size_limit_and_digest(layout: Path) -> None:
    src = source(f"oci:{layout}")
    try:
        config = src.resolve(HOST).manifest.config
        data = blob(layout, config.digest).read_bytes()
        assert read_small_blob(src, config, config.size, "the config") == data
        with pytest.raises(ManifestError, match=f"the config is {config.size} bytes, over the"):
            read_small_blob(src, config, config.size - 1, "the config")
        blob(layout, config.digest).write_bytes(data + b" ")
        with pytest.raises(
            DigestMismatchError,
            match=(
                f"the config has content with digest {sha256_digest(data + b' ')} "
                rf"\({len(data) + 1} bytes\), not {config.digest}"
            ),
        ) as e:
            read_small_blob(src, config, 1 << 20, "the config")
        assert e.value.hint
    finally:
        src.close()


def test_oci_wrong_manifest_size_is_refused(layout: Path) -> None:
    [entry] = index_entries(layout)
    entry["size"] += 1
    set_index(layout, [entry])
    with pytest.raises(ManifestError, match="descriptor says"):
        resolve(f"oci:{layout}")


def test_oci_missing_manifest_blob_is_named(layout: Path) -> None:
    digest = index_entries(layout)[0]["digest"]
    blob(layout, digest).unlink()
    with pytest.raises(SourceError, match=f"{digest} is missing"):
        resolve(f"oci:{layout}")


def test_oci_missing_layer_blob_is_named_when_opened(layout: Path) -> None:
    with OciLayoutSource.open_dir(parse_source(f"oci:{layout}")) as src:
        layer = src.resolve(HOST).manifest.layers[1]
        blob(layout, layer.digest).unlink()
        with pytest.raises(SourceError, match=f"blob {layer.digest} is missing") as err:
            src.open_blob(layer)
    assert err.value.hint is not None


def test_oci_unsupported_media_type(layout: Path) -> None:
    [entry] = index_entries(layout)
    entry["mediaType"] = "application/vnd.oci.image.config.v1+json"
    set_index(layout, [entry])
    with pytest.raises(ManifestError, match="neither an image manifest nor an index"):
        resolve(f"oci:{layout}")


def test_oci_bad_index_json(layout: Path) -> None:
    (layout / "index.json").write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        resolve(f"oci:{layout}")


@pytest.mark.parametrize(
    ("content", "error", "pattern"),
    [
        (None, SourceError, "no oci-layout file"),
        ('{"imageLayoutVersion": "2.0.0"}', SourceError, "version '2.0.0'"),
        ("{}", SourceError, "version None"),
        ("[", ManifestError, "not valid JSON"),
    ],
)
def test_oci_layout_file_is_checked(
    layout: Path, content: str | None, error: type[Exception], pattern: str
) -> None:
    if content is None:
        (layout / "oci-layout").unlink()
    else:
        (layout / "oci-layout").write_text(content)
    with pytest.raises(error, match=pattern):
        source(f"oci:{layout}")


def test_oci_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist") as err:
        source(f"oci:{tmp_path / 'nowhere'}")
    assert err.value.hint is not None and "skopeo" in err.value.hint


def test_oci_on_a_file_suggests_oci_archive(layout: Path, tmp_path: Path) -> None:
    archive = tar_layout(layout, tmp_path / "a.tar")
    with pytest.raises(SourceError, match="not a directory") as err:
        source(f"oci:{archive}")
    assert err.value.hint == f"for a tar of a layout use oci-archive:{archive}"


# --- oci-archive: -------------------------------------------------------------------------------


COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "tar": lambda b: b,
    "tar.gz": lambda b: gzip.compress(b, mtime=0),
    "tar.bz2": bz2.compress,
    "tar.xz": lzma.compress,
}


@pytest.mark.parametrize("suffix", list(COMPRESSORS))
def test_oci_archive_matches_the_directory(layout: Path, tmp_path: Path, suffix: str) -> None:
    plain = tar_layout(layout, tmp_path / "plain").read_bytes()
    archive = tmp_path / f"img.{suffix}"
    archive.write_bytes(COMPRESSORS[suffix](plain))
    expected = resolve(f"oci:{layout}:v1")
    with OciLayoutSource.open_archive(parse_source(f"oci-archive:{archive}:v1")) as src:
        image = src.resolve(HOST)
        blobs = read_blobs(src, image)
    assert (image.manifest_bytes, image.manifest_digest) == (
        expected.manifest_bytes,
        expected.manifest_digest,
    )
    assert image.default_name == "localhost/img:v1"
    assert blobs[image.manifest.layers[0].digest] == gzip.compress(LAYER1, mtime=0)


def test_oci_archive_with_dot_slash_names_and_linked_blobs(layout: Path, tmp_path: Path) -> None:
    archive = tmp_path / "dots.tar"
    layer_digest = json.loads(blob(layout, index_entries(layout)[0]["digest"]).read_bytes())[
        "layers"
    ][0]["digest"]
    hexd = layer_digest.split(":", 1)[1]
    with tarfile.open(archive, "w") as tar:
        for path in sorted(layout.rglob("*")):
            if path.is_file() and path.name != hexd:
                tar.add(path, arcname="./" + path.relative_to(layout).as_posix())
        data = blob(layout, layer_digest).read_bytes()
        info = tarfile.TarInfo("./store/real-layer")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo(f"./blobs/sha256/{hexd}")
        link.type, link.linkname = tarfile.SYMTYPE, "../../store/real-layer"
        tar.addfile(link)
    with OciLayoutSource.open_archive(parse_source(f"oci-archive:{archive}")) as src:
        image = src.resolve(HOST)
        assert read_blobs(src, image)[layer_digest] == data


def test_oci_archive_streams_can_interleave(layout: Path, tmp_path: Path) -> None:
    archive = tar_layout(layout, tmp_path / "a.tar")
    with OciLayoutSource.open_archive(parse_source(f"oci-archive:{archive}")) as src:
        first, second = src.resolve(HOST).manifest.layers
        with src.open_blob(first) as a, src.open_blob(second) as b:
            chunks = [a.read(100), b.read(100), a.read(), b.read()]
    assert sha256_digest(chunks[0] + chunks[2]) == first.digest
    assert sha256_digest(chunks[1] + chunks[3]) == second.digest


@pytest.mark.parametrize("gz", [False, True])
def test_oci_archive_streams_are_independent_across_threads(tmp_path: Path, gz: bool) -> None:
    layers = [layer_tar({f"f{i}": bytes([i]) * 300_000}) for i in range(4)]
    layout = write_oci_layout(tmp_path / "big", layers, compression=Compression.NONE)
    archive = tar_layout(layout, tmp_path / "big.tar", gzip=gz)
    with OciLayoutSource.open_archive(parse_source(f"oci-archive:{archive}")) as src:
        descs = list(src.resolve(HOST).manifest.layers) * 3

        def digest(desc: Descriptor) -> str:
            h = hashlib.sha256()
            with src.open_blob(desc) as stream:
                while chunk := stream.read(4096):
                    h.update(chunk)
            return "sha256:" + h.hexdigest()

        with ThreadPoolExecutor(max_workers=4) as pool:
            got = list(pool.map(digest, descs))
    assert got == [d.digest for d in descs]


def test_oci_archive_missing_tag_and_missing_blob(layout: Path, tmp_path: Path) -> None:
    write_oci_layout(layout, [LAYER1], "v2")
    digest = index_entries(layout)[1]["digest"]
    blob(layout, digest).unlink()
    archive = tar_layout(layout, tmp_path / "a.tar")
    with pytest.raises(ImageNotFoundError) as err:
        resolve(f"oci-archive:{archive}:v3")
    assert err.value.hint == "tags there: v1, v2"
    with pytest.raises(SourceError, match=f"manifest {digest} is missing from {archive}"):
        resolve(f"oci-archive:{archive}:v2")


@pytest.mark.parametrize(
    ("content", "pattern"),
    [(b"this is not a tar" * 100, "not a tar archive"), (None, "truncated or corrupt")],
)
def test_oci_archive_that_is_not_a_good_tar(
    layout: Path, tmp_path: Path, content: bytes | None, pattern: str
) -> None:
    archive = tmp_path / "bad.tar"
    if content is None:
        full = tar_layout(layout, tmp_path / "full.tar.gz", gzip=True).read_bytes()
        content = full[: len(full) // 2]
    archive.write_bytes(content)
    with pytest.raises(SourceError, match=pattern):
        source(f"oci-archive:{archive}")


def test_oci_archive_paths_are_checked(tmp_path: Path, layout: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        source(f"oci-archive:{tmp_path / 'none.tar'}")
    with pytest.raises(SourceError, match="is a directory") as err:
        source(f"oci-archive:{layout}")
    assert err.value.hint == f"for a layout use oci:{layout}"
    plain = tmp_path / "plain.tar"
    with tarfile.open(plain, "w") as tar:
        tar.add(layout / "index.json", arcname="index.json")
    with pytest.raises(SourceError, match="no oci-layout file"):
        source(f"oci-archive:{plain}")


@pytest.mark.parametrize("path", ["../x", "/etc/passwd", "a/../../b", "", "."])
def test_clean_path_refuses_escapes(path: str) -> None:
    with pytest.raises(SourceError, match="unsafe path"):
        clean_path(path, "here")


def test_clean_path_normalises() -> None:
    assert clean_path("./blobs//sha256/./x", "here") == "blobs/sha256/x"


@pytest.mark.parametrize(
    ("name", "repo"),
    [
        ("img.tar.gz", "img"),
        ("img.tar.xz", "img"),
        ("My Image.tgz", "my-image"),
        ("x.oci", "x"),
        (".tar", "tar"),
        ("__", "image"),
    ],
)
def test_repository_from_path(name: str, repo: str) -> None:
    assert repository_from_path(Path(name)) == repo


# --- docker-archive: ----------------------------------------------------------------------------


def _archive(tmp_path: Path, *images: SavedImage) -> Path:
    return write_docker_archive(tmp_path / "saved.tar", *images)


def test_docker_archive_synthesises_an_oci_manifest(tmp_path: Path) -> None:
    archive = _archive(tmp_path, SavedImage([LAYER1, LAYER2], ("busybox:latest",)))
    with DockerArchiveSource.open(parse_source(f"docker-archive:{archive}")) as src:
        image = src.resolve(HOST)
        blobs = read_blobs(src, image)
    doc = json.loads(image.manifest_bytes)
    assert image.manifest_bytes == canonical_json(doc)
    assert image.manifest_digest == sha256_digest(image.manifest_bytes)
    assert doc["mediaType"] == MT_OCI_MANIFEST
    assert doc["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    config = json.loads(blobs[image.manifest.config.digest])
    assert [d.digest for d in image.manifest.layers] == config["rootfs"]["diff_ids"]
    plain = LAYER_MEDIA_TYPES[Compression.NONE]
    assert [d.media_type for d in image.manifest.layers] == [plain, plain]
    assert blobs[image.manifest.layers[1].digest] == LAYER2
    assert image.default_name == "busybox:latest"


@pytest.mark.parametrize("compression", [Compression.GZIP, Compression.ZSTD])
def test_docker_archive_compressed_layers_are_hashed(
    tmp_path: Path, compression: Compression
) -> None:
    archive = _archive(tmp_path, SavedImage([LAYER1], compression=compression))
    with DockerArchiveSource.open(parse_source(f"docker-archive:{archive}")) as src:
        image = src.resolve(HOST)
        blobs = read_blobs(src, image)
    [layer] = image.manifest.layers
    assert layer.media_type == LAYER_MEDIA_TYPES[compression]
    assert layer.digest != sha256_digest(LAYER1)
    assert layer.digest in blobs
    assert image.default_name == "localhost/test:latest"


@pytest.mark.parametrize(
    ("ref", "chosen"),
    [
        ("@0", "a"),
        ("@1", "b"),
        ("docker.io/library/busybox:1.36", "a"),
        ("busybox:1.36", "a"),
        ("example.org/app", "b"),
        ("example.org/app:latest", "b"),
    ],
)
def test_docker_archive_chooses_the_image(tmp_path: Path, ref: str, chosen: str) -> None:
    a = SavedImage([LAYER1], ("docker.io/library/busybox:1.36",), config={"author": "a"})
    b = SavedImage([LAYER2], ("example.org/app:latest",), config={"author": "b"})
    archive = _archive(tmp_path, a, b)
    with DockerArchiveSource.open(parse_source(f"docker-archive:{archive}:{ref}")) as src:
        image = src.resolve(HOST)
        blobs = read_blobs(src, image)
    assert json.loads(blobs[image.manifest.config.digest])["author"] == chosen
    expected = "docker.io/library/busybox:1.36" if chosen == "a" else "example.org/app:latest"
    assert image.default_name == expected


@pytest.mark.parametrize(
    ("ref", "error", "pattern", "hint"),
    [
        ("", ImageNotFoundError, "holds 2 images and none was chosen", "a:1, b:1, b:2"),
        ("@2", ImageNotFoundError, "no image @2", "it holds 2, from @0"),
        ("@x", UsageError, "not an image position", "write @N"),
        ("other:1", ImageNotFoundError, "no image tagged 'other:1'", "tags there: a:1, b:1, b:2"),
    ],
)
def test_docker_archive_bad_choices(
    tmp_path: Path, ref: str, error: type[Exception], pattern: str, hint: str
) -> None:
    archive = _archive(
        tmp_path, SavedImage([LAYER1], ("a:1",)), SavedImage([LAYER1], ("b:1", "b:2"))
    )
    suffix = f":{ref}" if ref else ""
    with pytest.raises(error, match=pattern) as err:
        source(f"docker-archive:{archive}{suffix}")
    assert hint in str(getattr(err.value, "hint", ""))


def test_docker_archive_untagged_image_has_no_default_name(tmp_path: Path) -> None:
    archive = _archive(tmp_path, SavedImage([LAYER1], ()))
    assert resolve(f"docker-archive:{archive}").default_name == ""


def _rewrite(archive: Path, change: dict[str, bytes | None]) -> None:
    """Replace (bytes) or drop (None) members of a tar archive."""
    with tarfile.open(archive) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]
    for name, content in change.items():
        if content is None:
            members.pop(name)
        else:
            members[name] = content
    with tarfile.open(archive, "w") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))


def _manifest(archive: Path) -> list[dict[str, Any]]:
    with tarfile.open(archive) as tar:
        doc: list[dict[str, Any]] = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    return doc


def test_docker_archive_missing_layer_is_named(tmp_path: Path) -> None:
    archive = _archive(tmp_path, SavedImage([LAYER1, LAYER2]))
    missing = _manifest(archive)[0]["Layers"][1]
    _rewrite(archive, {missing: None})
    with pytest.raises(SourceError, match=f"layer 1 \\({missing}\\) is missing from {archive}"):
        resolve(f"docker-archive:{archive}")


def test_docker_archive_layer_count_must_match_diff_ids(tmp_path: Path) -> None:
    archive = _archive(tmp_path, SavedImage([LAYER1, LAYER2]))
    doc = _manifest(archive)
    doc[0]["Layers"] = doc[0]["Layers"][:1]
    _rewrite(archive, {"manifest.json": json.dumps(doc).encode()})
    with pytest.raises(ManifestError, match="lists 1 layers but the image config has 2"):
        resolve(f"docker-archive:{archive}")


def test_docker_archive_refuses_paths_outside(tmp_path: Path) -> None:
    archive = _archive(tmp_path, SavedImage([LAYER1]))
    doc = _manifest(archive)
    doc[0]["Layers"] = ["../../etc/passwd"]
    _rewrite(archive, {"manifest.json": json.dumps(doc).encode()})
    with pytest.raises(SourceError, match="unsafe path"):
        resolve(f"docker-archive:{archive}")


@pytest.mark.parametrize(
    ("manifest", "error", "pattern"),
    [
        (None, SourceError, "not a docker save archive"),
        (b"{", ManifestError, "not valid JSON"),
        (b"{}", ManifestError, "not a JSON list"),
        (b"[]", ImageNotFoundError, "holds no images"),
        (b'[{"Layers": []}]', ManifestError, "no Config"),
        (b'[{"Config": "c.json", "Layers": [1]}]', ManifestError, "Layers is not a list"),
    ],
)
def test_docker_archive_bad_manifest_json(
    tmp_path: Path, manifest: bytes | None, error: type[Exception], pattern: str
) -> None:
    archive = _archive(tmp_path, SavedImage([LAYER1]))
    _rewrite(archive, {"manifest.json": manifest})
    with pytest.raises(error, match=pattern):
        source(f"docker-archive:{archive}")


def test_docker_archive_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist") as err:
        source(f"docker-archive:{tmp_path / 'x.tar'}:a:b")
    assert err.value.hint is not None and "docker save" in err.value.hint


def test_docker_archive_open_blob_of_another_image(tmp_path: Path) -> None:
    archive = _archive(tmp_path, SavedImage([LAYER1]))
    other = resolve(f"oci:{write_oci_layout(tmp_path / 'o', [LAYER2])}")
    with DockerArchiveSource.open(parse_source(f"docker-archive:{archive}")) as src:
        with pytest.raises(ImageNotFoundError, match="has no blob"):
            src.open_blob(other.manifest.layers[0])


def test_docker_archive_may_itself_be_gzipped(tmp_path: Path) -> None:
    archive = _archive(tmp_path, SavedImage([LAYER1]))
    zipped = tmp_path / "saved.tar.gz"
    zipped.write_bytes(gzip.compress(archive.read_bytes()))
    assert resolve(f"docker-archive:{zipped}") == resolve(f"docker-archive:{archive}")


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"\x1f\x8b\x08\x00", Compression.GZIP),
        (b"\x28\xb5\x2f\xfd", Compression.ZSTD),
        (b"etc/", Compression.NONE),
        (b"", Compression.NONE),
    ],
)
def test_sniff_compression(head: bytes, kind: Compression) -> None:
    assert sniff_compression(head) is kind


@pytest.mark.parametrize(
    ("name", "short"),
    [
        ("docker.io/library/busybox:latest", "busybox:latest"),
        ("busybox", "busybox:latest"),
        ("docker.io/foo/bar:v1", "foo/bar:v1"),
        ("localhost/x:1", "localhost/x:1"),
        ("NOT VALID", "NOT VALID"),
    ],
)
def test_familiar(name: str, short: str) -> None:
    assert familiar(name) == short


def test_open_source_dispatches_each_transport(layout: Path, tmp_path: Path) -> None:
    archive = tar_layout(layout, tmp_path / "a.tar")
    saved = _archive(tmp_path, SavedImage([LAYER1]))
    found = []
    for text in (f"oci:{layout}", f"oci-archive:{archive}", f"docker-archive:{saved}"):
        src = source(text)
        found.append((type(src).__name__, src.description))
        src.close()
    assert found == [
        ("OciLayoutSource", f"oci:{layout}"),
        ("OciLayoutSource", f"oci-archive:{archive}"),
        ("DockerArchiveSource", f"docker-archive:{saved}"),
    ]
