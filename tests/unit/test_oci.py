"""Tests for syscontainers.oci: manifest, index and config parsing, platforms and digests."""

from __future__ import annotations

import hashlib
import json
import platform
from typing import Any

import pytest

from syscontainers.errors import ManifestError
from syscontainers.oci import (
    MT_DOCKER_CONFIG,
    MT_DOCKER_LIST,
    MT_DOCKER_MANIFEST,
    MT_OCI_CONFIG,
    MT_OCI_INDEX,
    MT_OCI_MANIFEST,
    Compression,
    Descriptor,
    Index,
    Platform,
    canonical_json,
    check_digest,
    digest_hex,
    layer_compression,
    parse_config,
    parse_descriptor,
    parse_index,
    parse_manifest,
    select_platform,
    sha256_digest,
    sniff_media_type,
)

D_CONFIG = "sha256:" + "c" * 64
D_L0 = "sha256:" + "0" * 64
D_L1 = "sha256:" + "1" * 64
D_DIFF0 = "sha256:" + "d" * 64
D_DIFF1 = "sha256:" + "e" * 64
MT_LAYER_GZ = "application/vnd.oci.image.layer.v1.tar+gzip"


DROP: Any = object()  # a field value meaning "leave the field out"


def desc(
    media_type: Any = MT_LAYER_GZ, digest: Any = D_L0, size: Any = 10, **extra: Any
) -> dict[str, Any]:
    doc = {"mediaType": media_type, "digest": digest, "size": size, **extra}
    return {k: v for k, v in doc.items() if v is not DROP}


def manifest_doc(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MT_OCI_MANIFEST,
        "config": desc(MT_OCI_CONFIG, D_CONFIG, 123),
        "layers": [desc(digest=D_L0, size=10), desc(digest=D_L1, size=20)],
    }
    doc.update(overrides)
    return {k: v for k, v in doc.items() if v is not DROP}


def config_doc(**config: Any) -> dict[str, Any]:
    return {
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-02T03:04:05Z",
        "rootfs": {"type": "layers", "diff_ids": [D_DIFF0, D_DIFF1]},
        "config": config,
    }


def js(doc: object) -> bytes:
    return json.dumps(doc).encode()


# ---- digests and canonical JSON ---------------------------------------------


def test_sha256_digest_and_hex() -> None:
    assert sha256_digest(b"abc") == "sha256:" + hashlib.sha256(b"abc").hexdigest()
    assert digest_hex(sha256_digest(b"abc")) == hashlib.sha256(b"abc").hexdigest()


@pytest.mark.parametrize(
    "value",
    [
        "sha256:" + "A" * 64,  # uppercase hex
        "sha256:" + "a" * 63,
        "sha256:" + "a" * 65,
        "sha512:" + "a" * 128,
        "md5:" + "a" * 32,
        "a" * 64,
        "sha256:" + "g" * 64,
        "sha256:" + "a" * 64 + "\n",  # a trailing newline would end up in file names
        " sha256:" + "a" * 64,
        "",
        None,
        42,
    ],
)
def test_check_digest_rejects(value: object) -> None:
    with pytest.raises(ManifestError, match=r"^layer 3: .* is not a sha256 digest") as e:
        check_digest(value, "layer 3")
    assert e.value.hint and "sha256" in e.value.hint


def test_check_digest_accepts() -> None:
    assert check_digest(D_L0, "x") == D_L0


def test_canonical_json_is_deterministic() -> None:
    a = {"b": 1, "a": {"z": [3, 2, 1], "y": None}, "c": "é"}
    b = {"c": "é", "a": {"y": None, "z": [3, 2, 1]}, "b": 1}
    assert canonical_json(a) == canonical_json(b)
    assert canonical_json(a) == b'{"a":{"y":null,"z":[3,2,1]},"b":1,"c":"\\u00e9"}'
    assert sha256_digest(canonical_json(a)) == sha256_digest(canonical_json(b))
    # lists keep their order: order is content
    assert canonical_json([1, 2]) != canonical_json([2, 1])


# ---- layer media types ---------------------------------------------------------


@pytest.mark.parametrize(
    "media_type, expected",
    [
        ("application/vnd.oci.image.layer.v1.tar", Compression.NONE),
        ("application/vnd.oci.image.layer.v1.tar+gzip", Compression.GZIP),
        ("application/vnd.oci.image.layer.v1.tar+zstd", Compression.ZSTD),
        ("application/vnd.oci.image.layer.nondistributable.v1.tar", Compression.NONE),
        ("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", Compression.GZIP),
        ("application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", Compression.ZSTD),
        ("application/vnd.docker.image.rootfs.diff.tar", Compression.NONE),
        ("application/vnd.docker.image.rootfs.diff.tar.gzip", Compression.GZIP),
        ("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", Compression.GZIP),
        ("application/vnd.docker.image.rootfs.diff.tar.zstd", Compression.ZSTD),
    ],
)
def test_layer_compression(media_type: str, expected: Compression) -> None:
    assert layer_compression(media_type) is expected


@pytest.mark.parametrize(
    "media_type",
    [
        "application/vnd.oci.image.layer.v1.tar+bzip2",
        "application/vnd.oci.image.layer.v1.tar+GZIP",
        MT_OCI_MANIFEST,
        MT_OCI_CONFIG,
        "",
    ],
)
def test_layer_compression_rejects(media_type: str) -> None:
    with pytest.raises(ManifestError, match="is not supported") as e:
        layer_compression(media_type)
    assert repr(media_type) in e.value.message
    assert e.value.hint and "tar+zstd" in e.value.hint


# ---- manifests ----------------------------------------------------------------


def test_parse_manifest_oci() -> None:
    doc = manifest_doc(annotations={"z": "1", "a": "2"})
    doc["layers"][1]["urls"] = ["https://example.org/l1"]
    m = parse_manifest(js(doc))
    assert m.media_type == MT_OCI_MANIFEST
    assert m.config == Descriptor(MT_OCI_CONFIG, D_CONFIG, 123)
    assert [(d.digest, d.size) for d in m.layers] == [(D_L0, 10), (D_L1, 20)]
    assert m.layers[1].urls == ("https://example.org/l1",)
    assert m.annotations == (("a", "2"), ("z", "1"))


def test_parse_manifest_docker_v2() -> None:
    doc = manifest_doc(mediaType=MT_DOCKER_MANIFEST, config=desc(MT_DOCKER_CONFIG, D_CONFIG, 5))
    m = parse_manifest(js(doc))
    assert m.media_type == MT_DOCKER_MANIFEST
    assert m.config.media_type == MT_DOCKER_CONFIG


def test_parse_manifest_without_media_type_is_oci() -> None:
    assert parse_manifest(js(manifest_doc(mediaType=DROP))).media_type == MT_OCI_MANIFEST


def test_parse_manifest_zero_layers() -> None:
    assert parse_manifest(js(manifest_doc(layers=[]))).layers == ()


SCHEMA1 = {
    "schemaVersion": 1,
    "name": "library/busybox",
    "tag": "latest",
    "architecture": "amd64",
    "fsLayers": [{"blobSum": D_L0}],
    "history": [{"v1Compatibility": "{}"}],
}


MANIFEST_ERRORS = [
    (b"not json", "is not valid JSON"),
    (b"\xff\xfe\x00", "is not valid JSON"),
    (b"", "is not valid JSON"),
    (b"[]", "is not a JSON object"),
    (b'"manifest"', "is not a JSON object"),
    (js(SCHEMA1), "Docker schema 1"),
    (
        js({**SCHEMA1, "mediaType": "application/vnd.docker.distribution.manifest.v1+json"}),
        "Docker schema 1",
    ),
    (js(manifest_doc(mediaType=MT_OCI_INDEX)), "not an image manifest"),
    (js(manifest_doc(mediaType=MT_DOCKER_LIST)), "not an image manifest"),
    (js(manifest_doc(mediaType=["x"])), "media type"),
    (js(manifest_doc(mediaType=7)), "media type"),
    (js(manifest_doc(layers=DROP)), "has no layers list"),
    (js(manifest_doc(layers={})), "has no layers list"),
    (js(manifest_doc(config=DROP)), "config is not a JSON object"),
    (js(manifest_doc(config=[1])), "config is not a JSON object"),
    (js(manifest_doc(config=desc(digest="sha256:abc"))), "config digest: "),
    (js(manifest_doc(config=desc(digest="sha256:" + "C" * 64))), "config digest: "),
    (js(manifest_doc(config=desc(digest=DROP))), "config digest: None"),
    (js(manifest_doc(config=desc(size=-1))), "invalid size -1"),
    (js(manifest_doc(config=desc(size="10"))), "invalid size '10'"),
    (js(manifest_doc(config=desc(size=True))), "invalid size True"),
    (js(manifest_doc(config=desc(size=1.5))), "invalid size 1.5"),
    (js(manifest_doc(config=desc(size=DROP))), "invalid size None"),
    (js(manifest_doc(config=desc(media_type=3))), "non-string mediaType"),
    (js(manifest_doc(layers=[desc(), "x"])), "layer 1 is not a JSON object"),
    (js(manifest_doc(layers=[desc(digest="nope")])), "layer 0 digest"),
    (js(manifest_doc(annotations={"a": 1})), "annotations must map strings to strings"),
    (js(manifest_doc(annotations=["a"])), "annotations must map strings to strings"),
    (js(manifest_doc(layers=[desc(urls="https://x")])), "urls must be a list of strings"),
    (js(manifest_doc(layers=[desc(annotations={"k": None})])), "layer 0 annotations"),
]


@pytest.mark.parametrize("data, fragment", MANIFEST_ERRORS, ids=[f for _, f in MANIFEST_ERRORS])
def test_parse_manifest_errors(data: bytes, fragment: str) -> None:
    with pytest.raises(ManifestError) as e:
        parse_manifest(data, "manifest of example.org/app:1")
    assert e.value.message.startswith("manifest of example.org/app:1")
    assert fragment in e.value.message


def test_schema1_is_rejected_with_a_hint() -> None:
    for parse in (parse_manifest, sniff_media_type):
        with pytest.raises(ManifestError, match="schema 1") as e:
            parse(js(SCHEMA1), "manifest")
        assert e.value.hint and "schema 2" in e.value.hint


@pytest.mark.parametrize(
    "doc, expected",
    [
        (manifest_doc(), MT_OCI_MANIFEST),
        (manifest_doc(mediaType=MT_DOCKER_MANIFEST), MT_DOCKER_MANIFEST),
        (manifest_doc(mediaType=DROP), MT_OCI_MANIFEST),
        ({"schemaVersion": 2, "manifests": []}, MT_OCI_INDEX),
        ({"mediaType": MT_DOCKER_LIST, "manifests": []}, MT_DOCKER_LIST),
        ({"mediaType": "application/x-custom"}, "application/x-custom"),
    ],
)
def test_sniff_media_type(doc: dict[str, Any], expected: str) -> None:
    assert sniff_media_type(js(doc), "doc") == expected


@pytest.mark.parametrize(
    "data, fragment",
    [
        (js({"schemaVersion": 2}), "neither a manifest nor an index"),
        (js({"config": {}}), "neither a manifest nor an index"),
        (b"[1]", "is not a JSON object"),
        (b"{", "is not valid JSON"),
    ],
)
def test_sniff_media_type_errors(data: bytes, fragment: str) -> None:
    with pytest.raises(ManifestError, match=fragment):
        sniff_media_type(data, "doc")


# ---- descriptors --------------------------------------------------------------


def test_descriptor_platform_annotations_and_json() -> None:
    d = parse_descriptor(
        desc(
            MT_OCI_MANIFEST,
            annotations={"org.opencontainers.image.ref.name": "v1"},
            platform={"os": "linux", "architecture": "arm", "variant": "v7"},
        ),
        "entry",
    )
    assert d.platform == Platform("linux", "arm", "v7")
    assert d.annotation("org.opencontainers.image.ref.name") == "v1"
    assert d.annotation("missing") is None
    assert d.to_json() == {
        "mediaType": MT_OCI_MANIFEST,
        "digest": D_L0,
        "size": 10,
        "annotations": {"org.opencontainers.image.ref.name": "v1"},
    }
    assert "annotations" not in parse_descriptor(desc(), "x").to_json()


def test_descriptor_without_media_type() -> None:
    assert parse_descriptor({"digest": D_L0, "size": 0}, "x").media_type == ""


# ---- indexes ------------------------------------------------------------------


def plat(os_: str, arch: str, variant: str = "") -> dict[str, str]:
    out = {"os": os_, "architecture": arch}
    if variant:
        out["variant"] = variant
    return out


def entry(n: int, p: dict[str, str] | None, media_type: str = MT_OCI_MANIFEST) -> dict[str, Any]:
    d = desc(media_type, "sha256:" + f"{n:x}" * 64, 100 + n)
    if p is not None:
        d["platform"] = p
    return d


MULTI = [
    entry(1, plat("linux", "amd64")),
    entry(2, plat("linux", "arm64", "v8")),
    entry(3, plat("linux", "arm", "v7")),
    entry(4, plat("linux", "arm", "v6")),
    entry(5, plat("unknown", "unknown")),  # a buildx attestation manifest
    entry(6, plat("linux", "s390x"), MT_OCI_INDEX),  # nested indexes are not images
    entry(7, plat("windows", "amd64"), "application/vnd.example.artifact"),
]


def test_parse_index() -> None:
    idx = parse_index(js({"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": MULTI}))
    assert idx.media_type == MT_OCI_INDEX
    assert len(idx.manifests) == 7
    assert idx.manifests[1].platform == Platform("linux", "arm64", "v8")
    assert idx.manifests[0].size == 101


def test_parse_index_docker_list_and_default_type() -> None:
    assert parse_index(js({"mediaType": MT_DOCKER_LIST, "manifests": []})).media_type == (
        MT_DOCKER_LIST
    )
    assert parse_index(js({"manifests": []})).media_type == MT_OCI_INDEX


@pytest.mark.parametrize(
    "data, fragment",
    [
        (b"{]", "is not valid JSON"),
        (b"null", "is not a JSON object"),
        (js({"schemaVersion": 2}), "has no manifests list"),
        (js({"manifests": {"a": 1}}), "has no manifests list"),
        (js({"manifests": [entry(1, None), 5]}), "entry 1 is not a JSON object"),
        (js({"manifests": [{**entry(1, None), "digest": "sha256:x"}]}), "entry 0 digest"),
        (js({"manifests": [{**entry(1, None), "size": -3}]}), "entry 0 has an invalid size"),
    ],
)
def test_parse_index_errors(data: bytes, fragment: str) -> None:
    with pytest.raises(ManifestError) as e:
        parse_index(data, "index.json of oci:/srv/layout")
    assert e.value.message.startswith("index.json of oci:/srv/layout")
    assert fragment in e.value.message


# ---- image configs ------------------------------------------------------------


def test_parse_config_full() -> None:
    doc = config_doc(
        Entrypoint=["/usr/bin/etcd"],
        Cmd=["--help"],
        Env=["PATH=/usr/bin", "A=b"],
        WorkingDir="/var/lib/etcd",
        User="1000:1000",
        Labels={"z": "last", "a": "first"},
        ExposedPorts={"2380/tcp": {}, "2379/tcp": {}},
        Volumes={"/var/lib/etcd": {}},
        StopSignal="SIGTERM",
    )
    c = parse_config(js(doc))
    assert c.diff_ids == (D_DIFF0, D_DIFF1)
    assert (c.os, c.architecture, c.created) == ("linux", "amd64", "2024-01-02T03:04:05Z")
    assert c.entrypoint == ("/usr/bin/etcd",)
    assert c.cmd == ("--help",)
    assert c.env == ("PATH=/usr/bin", "A=b")
    assert (c.working_dir, c.user, c.stop_signal) == ("/var/lib/etcd", "1000:1000", "SIGTERM")
    assert c.labels == (("a", "first"), ("z", "last"))
    assert c.label("z") == "last" and c.label("nope") is None
    assert c.exposed_ports == ("2379/tcp", "2380/tcp")
    assert c.volumes == ("/var/lib/etcd",)
    assert c.raw == doc


def test_parse_config_minimal_and_null_config() -> None:
    doc = {"rootfs": {"type": "layers", "diff_ids": []}, "config": None}
    c = parse_config(js(doc))
    assert c.diff_ids == ()
    assert (c.entrypoint, c.cmd, c.env, c.labels, c.exposed_ports) == ((), (), (), (), ())
    assert (c.os, c.architecture, c.created, c.user) == ("", "", "", "")


def test_parse_config_raw_is_not_part_of_identity() -> None:
    a = parse_config(js({**config_doc(), "history": [{"created_by": "x"}]}))
    b = parse_config(js(config_doc()))
    assert a == b and hash(a) == hash(b)


@pytest.mark.parametrize(
    "doc, fragment",
    [
        ({"config": {}}, "has no rootfs.diff_ids"),
        ({"rootfs": []}, "has no rootfs.diff_ids"),
        ({"rootfs": {"diff_ids": "sha256:x"}}, "has no rootfs.diff_ids"),
        ({"rootfs": {"diff_ids": [D_DIFF0, "sha256:zz"]}}, "diff_id 1: "),
        ({**config_doc(), "config": ["x"]}, "has a config that is not an object"),
        (config_doc(Entrypoint="/bin/sh"), "Entrypoint must be a list of strings"),
        (config_doc(Cmd=["a", 1]), "Cmd must be a list of strings"),
        (config_doc(Env={"A": "b"}), "Env must be a list of strings"),
        (config_doc(Labels={"a": 1}), "Labels must map strings to strings"),
        (config_doc(ExposedPorts=8080), "ExposedPorts"),
        (config_doc(ExposedPorts="80/tcp"), "ExposedPorts"),
        (config_doc(Volumes=["/data", 3]), "Volumes"),
    ],
)
def test_parse_config_errors(doc: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ManifestError) as e:
        parse_config(js(doc), "config of example.org/app:1")
    assert e.value.message.startswith("config of example.org/app:1")
    assert fragment in e.value.message


# ---- platforms ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("linux/amd64", Platform("linux", "amd64")),
        ("linux/arm64/v8", Platform("linux", "arm64", "v8")),
        ("linux/arm/v7", Platform("linux", "arm", "v7")),
        ("windows/amd64", Platform("windows", "amd64")),
    ],
)
def test_platform_parse(text: str, expected: Platform) -> None:
    assert Platform.parse(text) == expected
    assert str(Platform.parse(text)) == text


@pytest.mark.parametrize(
    "text", ["", "linux", "linux/", "/amd64", "linux//v7", "linux/arm/", "linux/arm/v7/x", "//"]
)
def test_platform_parse_rejects(text: str) -> None:
    with pytest.raises(ManifestError, match="is not of the form os/arch") as e:
        Platform.parse(text)
    assert e.value.hint and "linux/amd64" in e.value.hint


@pytest.mark.parametrize(
    "want, have, expected",
    [
        ("linux/amd64", "linux/amd64", True),
        ("linux/arm", "linux/arm/v7", True),  # no variant wanted: any will do
        ("linux/arm/v7", "linux/arm/v7", True),
        ("linux/arm/v7", "linux/arm/v6", False),
        ("linux/arm/v7", "linux/arm", True),  # arm defaults to v7
        ("linux/arm/v6", "linux/arm", False),
        ("linux/arm64/v8", "linux/arm64", True),
        ("linux/amd64", "linux/arm64", False),
        ("linux/amd64", "windows/amd64", False),
    ],
)
def test_platform_matches(want: str, have: str, expected: bool) -> None:
    assert Platform.parse(want).matches(Platform.parse(have)) is expected


@pytest.mark.parametrize(
    "machine, expected",
    [
        ("x86_64", Platform("linux", "amd64")),
        ("AMD64", Platform("linux", "amd64")),
        ("aarch64", Platform("linux", "arm64")),
        ("arm64", Platform("linux", "arm64")),
        ("armv7l", Platform("linux", "arm", "v7")),
        ("i686", Platform("linux", "386")),
        ("i386", Platform("linux", "386")),
        ("ppc64le", Platform("linux", "ppc64le")),
        ("s390x", Platform("linux", "s390x")),
        ("riscv64", Platform("linux", "riscv64")),
        ("mips64", Platform("linux", "mips64")),  # unknown machines pass through
    ],
)
def test_platform_host_table(machine: str, expected: Platform) -> None:
    assert Platform.host(machine) == expected


def test_platform_host_on_this_machine() -> None:
    host = Platform.host()
    assert host.os == "linux"
    if platform.machine() == "x86_64":
        assert host == Platform("linux", "amd64")
    assert "_" not in host.architecture  # GOARCH spelling, never x86_64


# ---- platform selection -------------------------------------------------------


def index_of(*manifests: dict[str, Any]) -> Index:
    return parse_index(js({"manifests": list(manifests)}))


@pytest.mark.parametrize(
    "want, expected_entry",
    [
        ("linux/amd64", 1),
        ("linux/arm64", 2),
        ("linux/arm64/v8", 2),
        ("linux/arm/v7", 3),
        ("linux/arm/v6", 4),
        ("linux/arm", 3),  # the first arm image in index order
    ],
)
def test_select_platform(want: str, expected_entry: int) -> None:
    chosen = select_platform(index_of(*MULTI), Platform.parse(want))
    assert chosen.digest == "sha256:" + f"{expected_entry:x}" * 64


def test_select_platform_lists_what_is_available() -> None:
    with pytest.raises(ManifestError) as e:
        select_platform(index_of(*MULTI), Platform.parse("linux/s390x"), "index of example/app")
    assert e.value.message == "index of example/app has no image for platform linux/s390x"
    # sorted, deduplicated, and only image manifests (not the nested index or the artifact)
    assert e.value.hint == (
        "available platforms: linux/amd64, linux/arm/v6, linux/arm/v7, linux/arm64/v8, "
        "unknown/unknown; choose one with --platform"
    )


def test_select_platform_single_entry_without_platform() -> None:
    only = entry(9, None)
    assert select_platform(index_of(only), Platform.parse("linux/riscv64")).size == 109
    untyped = {k: v for k, v in entry(9, None).items() if k != "mediaType"}
    assert select_platform(index_of(untyped), Platform.parse("linux/amd64")).size == 109


@pytest.mark.parametrize(
    "manifests",
    [
        [],
        [entry(1, None), entry(2, None)],  # two images and nothing to choose by
        [entry(1, None, MT_OCI_INDEX)],
    ],
)
def test_select_platform_nothing_to_choose(manifests: list[dict[str, Any]]) -> None:
    with pytest.raises(ManifestError, match="has no image for platform linux/amd64") as e:
        select_platform(index_of(*manifests), Platform.parse("linux/amd64"))
    assert e.value.hint and e.value.hint.startswith("available platforms: none;")
