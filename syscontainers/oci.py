"""OCI and Docker v2 models: digests, descriptors, manifests, indexes and image configs.

Everything here is pure: bytes in, frozen values out. Parsing validates the
fields we rely on and raises ManifestError naming the document.
"""

from __future__ import annotations

import json
import os
import re
from enum import Enum
from typing import Any

from syscontainers.errors import ManifestError
from syscontainers.hashing import sha256
from syscontainers.record import field, record

_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}\Z")

MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"

_DEFAULT_VARIANT = {"arm64": "v8", "arm": "v7"}

MANIFEST_TYPES = frozenset({MT_OCI_MANIFEST, MT_DOCKER_MANIFEST})
INDEX_TYPES = frozenset({MT_OCI_INDEX, MT_DOCKER_LIST})


class Compression(Enum):
    """How a layer blob is compressed."""

    NONE = "none"
    GZIP = "gzip"
    ZSTD = "zstd"


_LAYER_TYPES: dict[str, Compression] = {
    "application/vnd.oci.image.layer.v1.tar": Compression.NONE,
    "application/vnd.oci.image.layer.v1.tar+gzip": Compression.GZIP,
    "application/vnd.oci.image.layer.v1.tar+zstd": Compression.ZSTD,
    "application/vnd.oci.image.layer.nondistributable.v1.tar": Compression.NONE,
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": Compression.GZIP,
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": Compression.ZSTD,
    "application/vnd.docker.image.rootfs.diff.tar": Compression.NONE,
    "application/vnd.docker.image.rootfs.diff.tar.gzip": Compression.GZIP,
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": Compression.GZIP,
    "application/vnd.docker.image.rootfs.diff.tar.zstd": Compression.ZSTD,
}


def sha256_digest(data: bytes) -> str:
    """The ``sha256:HEX`` digest of some bytes."""
    return "sha256:" + sha256(data).hexdigest()


def check_digest(value: object, what: str) -> str:
    """Return VALUE if it is a well-formed sha256 digest, else raise naming WHAT."""
    if not isinstance(value, str) or not _DIGEST_RE.match(value):
        raise ManifestError(
            f"{what}: {value!r} is not a sha256 digest",
            hint="only sha256:<64 lowercase hex> digests are supported",
        )
    return value


def digest_hex(digest: str) -> str:
    """The hex part of a ``sha256:HEX`` digest."""
    return digest.split(":", 1)[1]


def canonical_json(value: object) -> bytes:
    """Deterministic JSON bytes, used wherever identity is derived from content."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def layer_compression(media_type: str) -> Compression:
    """The compression named by a layer media type, or ManifestError."""
    try:
        return _LAYER_TYPES[media_type]
    except KeyError:
        raise ManifestError(
            f"layer media type {media_type!r} is not supported",
            hint="supported layers are OCI or Docker tar, tar+gzip and tar+zstd",
        ) from None


@record
class Platform:
    """An os/architecture[/variant] triple."""

    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        base = f"{self.os}/{self.architecture}"
        return f"{base}/{self.variant}" if self.variant else base

    @classmethod
    def parse(cls, text: str) -> Platform:
        """Parse ``os/arch[/variant]``."""
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ManifestError(
                f"platform {text!r} is not of the form os/arch[/variant]",
                hint="for example linux/amd64 or linux/arm64/v8",
            )
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else "")

    @classmethod
    def host(cls, machine: str | None = None) -> Platform:
        """The platform of this machine (or of uname's MACHINE), in OCI (GOARCH) spelling."""
        machine = (machine or os.uname().machine).lower()
        arch = {
            "x86_64": "amd64",
            "amd64": "amd64",
            "aarch64": "arm64",
            "arm64": "arm64",
            "armv7l": "arm",
            "i686": "386",
            "i386": "386",
            "ppc64le": "ppc64le",
            "s390x": "s390x",
            "riscv64": "riscv64",
        }.get(machine, machine)
        return cls("linux", arch, "v7" if machine == "armv7l" else "")

    def matches(self, other: Platform) -> bool:
        """True if OTHER satisfies this platform. An empty wanted variant matches any; an index
        entry without a variant has its architecture's default (arm64: v8, arm: v7)."""
        if (self.os, self.architecture) != (other.os, other.architecture):
            return False
        have = other.variant or _DEFAULT_VARIANT.get(other.architecture, "")
        return not self.variant or self.variant == have


@record
class Descriptor:
    """A content descriptor: media type, digest and size."""

    media_type: str
    digest: str
    size: int
    annotations: tuple[tuple[str, str], ...] = ()
    platform: Platform | None = None
    urls: tuple[str, ...] = ()

    def annotation(self, key: str) -> str | None:
        """The value of one annotation, if present."""
        return dict(self.annotations).get(key)

    def to_json(self) -> dict[str, Any]:
        """The descriptor as an OCI JSON object."""
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


@record
class Manifest:
    """An image manifest (OCI or Docker v2 schema 2)."""

    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: tuple[tuple[str, str], ...] = ()


@record
class Index:
    """An OCI index or Docker manifest list."""

    media_type: str
    manifests: tuple[Descriptor, ...]


@record
class ImageConfig:
    """The parts of an image config that syscontainers uses."""

    diff_ids: tuple[str, ...]
    created: str = ""
    architecture: str = ""
    os: str = ""
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    working_dir: str = ""
    user: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    exposed_ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    stop_signal: str = ""
    raw: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def label(self, key: str) -> str | None:
        """The value of one label, if present."""
        return dict(self.labels).get(key)


def _load(data: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ManifestError(f"{what} is not valid JSON: {e}") from e
    if not isinstance(doc, dict):
        raise ManifestError(f"{what} is not a JSON object")
    return doc


def _str_map(value: object, what: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ManifestError(f"{what} must map strings to strings")
    return tuple(sorted(value.items()))


def _str_list(value: object, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ManifestError(f"{what} must be a list of strings")
    return tuple(value)


def _key_list(value: object, what: str) -> tuple[str, ...]:
    """The sorted keys of a JSON object used as a set (ExposedPorts, Volumes)."""
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise ManifestError(f"{what} must be an object")
    return tuple(sorted(value))


def parse_descriptor(obj: object, what: str) -> Descriptor:
    """Parse and validate one descriptor object."""
    if not isinstance(obj, dict):
        raise ManifestError(f"{what} is not a JSON object")
    media_type = obj.get("mediaType", "")
    size = obj.get("size")
    if not isinstance(media_type, str):
        raise ManifestError(f"{what} has a non-string mediaType")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestError(f"{what} has an invalid size {size!r}")
    plat = obj.get("platform")
    parsed_platform = None
    if isinstance(plat, dict):
        parsed_platform = Platform(
            str(plat.get("os", "")), str(plat.get("architecture", "")), str(plat.get("variant", ""))
        )
    return Descriptor(
        media_type=media_type,
        digest=check_digest(obj.get("digest"), f"{what} digest"),
        size=size,
        annotations=_str_map(obj.get("annotations"), f"{what} annotations"),
        platform=parsed_platform,
        urls=_str_list(obj.get("urls"), f"{what} urls"),
    )


def sniff_media_type(data: bytes, what: str) -> str:
    """The media type a manifest-like document declares, or infers from its shape."""
    doc = _load(data, what)
    media_type = doc.get("mediaType")
    if isinstance(media_type, str) and media_type:
        return media_type
    if "manifests" in doc:
        return MT_OCI_INDEX
    if "config" in doc and "layers" in doc:
        return MT_OCI_MANIFEST
    _reject_schema1(doc, what)
    raise ManifestError(f"{what} is neither a manifest nor an index")


def _reject_schema1(doc: dict[str, Any], what: str) -> None:
    if doc.get("schemaVersion") == 1:
        raise ManifestError(
            f"{what} is a Docker schema 1 manifest, which is not supported",
            hint="re-push the image with a current tool to get schema 2 or OCI",
        )


def parse_manifest(data: bytes, what: str = "manifest") -> Manifest:
    """Parse an image manifest."""
    doc = _load(data, what)
    _reject_schema1(doc, what)
    media_type = doc.get("mediaType") or MT_OCI_MANIFEST
    if not isinstance(media_type, str) or media_type not in MANIFEST_TYPES:
        raise ManifestError(
            f"{what} has media type {media_type!r}, not an image manifest",
            hint="supported: OCI image manifest and Docker v2 schema 2",
        )
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise ManifestError(f"{what} has no layers list")
    return Manifest(
        media_type=str(media_type),
        config=parse_descriptor(doc.get("config"), f"{what} config"),
        layers=tuple(parse_descriptor(x, f"{what} layer {i}") for i, x in enumerate(layers)),
        annotations=_str_map(doc.get("annotations"), f"{what} annotations"),
    )


def parse_index(data: bytes, what: str = "index") -> Index:
    """Parse an OCI index or Docker manifest list."""
    doc = _load(data, what)
    manifests = doc.get("manifests")
    if not isinstance(manifests, list):
        raise ManifestError(f"{what} has no manifests list")
    return Index(
        media_type=str(doc.get("mediaType") or MT_OCI_INDEX),
        manifests=tuple(parse_descriptor(x, f"{what} entry {i}") for i, x in enumerate(manifests)),
    )


def parse_config(data: bytes, what: str = "image config") -> ImageConfig:
    """Parse an image config, keeping the raw document for display."""
    doc = _load(data, what)
    rootfs = doc.get("rootfs")
    if not isinstance(rootfs, dict) or not isinstance(rootfs.get("diff_ids"), list):
        raise ManifestError(f"{what} has no rootfs.diff_ids")
    diff_ids = tuple(
        check_digest(d, f"{what} diff_id {i}") for i, d in enumerate(rootfs["diff_ids"])
    )
    cfg = doc.get("config") or {}
    if not isinstance(cfg, dict):
        raise ManifestError(f"{what} has a config that is not an object")
    return ImageConfig(
        diff_ids=diff_ids,
        created=str(doc.get("created") or ""),
        architecture=str(doc.get("architecture") or ""),
        os=str(doc.get("os") or ""),
        entrypoint=_str_list(cfg.get("Entrypoint"), f"{what} Entrypoint"),
        cmd=_str_list(cfg.get("Cmd"), f"{what} Cmd"),
        env=_str_list(cfg.get("Env"), f"{what} Env"),
        working_dir=str(cfg.get("WorkingDir") or ""),
        user=str(cfg.get("User") or ""),
        labels=_str_map(cfg.get("Labels"), f"{what} Labels"),
        exposed_ports=_key_list(cfg.get("ExposedPorts"), f"{what} ExposedPorts"),
        volumes=_key_list(cfg.get("Volumes"), f"{what} Volumes"),
        stop_signal=str(cfg.get("StopSignal") or ""),
        raw=doc,
    )


def select_platform(index: Index, want: Platform, what: str = "index") -> Descriptor:
    """Pick the manifest for WANT from an index, or raise listing what is there."""
    candidates = [d for d in index.manifests if d.media_type in MANIFEST_TYPES or not d.media_type]
    for desc in candidates:
        if desc.platform is not None and want.matches(desc.platform):
            return desc
    if len(candidates) == 1 and candidates[0].platform is None:
        return candidates[0]
    available = ", ".join(sorted({str(d.platform) for d in candidates if d.platform})) or "none"
    raise ManifestError(
        f"{what} has no image for platform {want}",
        hint=f"available platforms: {available}; choose one with --platform",
    )
