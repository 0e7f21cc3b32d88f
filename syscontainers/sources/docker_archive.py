"""The ``docker-archive:FILE[:NAME:TAG | :@N]`` source: images from docker save or podman save.

The archive (a tar, plain or gzip, bzip2 or xz compressed) is read in place. Its manifest.json
lists the images in it::

    [{"Config": "HEX.json", "RepoTags": ["name:tag", ...],
      "Layers": ["HEX/layer.tar" | "HEX.tar" | "blobs/sha256/HEX", ...]}]

Newer docker also writes an OCI layout beside manifest.json; we read manifest.json, which every
writer produces. The image is chosen by one of its RepoTags (compared in familiar form, so
``busybox`` matches ``docker.io/library/busybox:latest``), by ``@N`` (0-based position), or is the
only one.

Such archives carry no distribution manifest, so one is synthesised as canonical JSON: an OCI
manifest whose config is the config file (digest = its sha256) and whose layers are the layer
files. A layer is sniffed by its first bytes: a gzip or zstd stream is hashed once for its digest;
a plain tar is named by the config's diff_id at its position without reading it, since the pull
pipeline verifies every blob anyway. The manifest digest is the sha256 of the synthesised bytes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, BinaryIO

from syscontainers import reference
from syscontainers.errors import (
    ImageNotFoundError,
    ManifestError,
    ReferenceParseError,
    SourceError,
    UsageError,
)
from syscontainers.hashing import sha256
from syscontainers.oci import (
    MT_OCI_CONFIG,
    MT_OCI_MANIFEST,
    Compression,
    Descriptor,
    Platform,
    canonical_json,
    parse_config,
    parse_manifest,
    sha256_digest,
)
from syscontainers.record import record
from syscontainers.sources import ResolvedImage, SourceSpec
from syscontainers.sources.oci_layout import read_document, store_name
from syscontainers.sources.tar_reader import TarReader

MAX_CONFIG = 16 * 1024 * 1024
_CHUNK = 1024 * 1024
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_LAYER_MEDIA_TYPES = {
    Compression.NONE: "application/vnd.oci.image.layer.v1.tar",
    Compression.GZIP: "application/vnd.oci.image.layer.v1.tar+gzip",
    Compression.ZSTD: "application/vnd.oci.image.layer.v1.tar+zstd",
}


@record
class ArchiveImage:
    """One entry of an archive's manifest.json."""

    config: str
    repo_tags: tuple[str, ...]
    layers: tuple[str, ...]


def sniff_compression(head: bytes) -> Compression:
    """How a layer file is compressed, judged by its first four bytes."""
    if head.startswith(_GZIP_MAGIC):
        return Compression.GZIP
    if head.startswith(_ZSTD_MAGIC):
        return Compression.ZSTD
    return Compression.NONE


def _strings(value: object, what: str, allow_null: bool = False) -> tuple[str, ...]:
    if value is None and allow_null:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ManifestError(f"{what} is not a list of strings")
    return tuple(value)


def parse_archive_manifest(data: bytes, what: str) -> tuple[ArchiveImage, ...]:
    """Parse a docker-save manifest.json."""
    try:
        doc: Any = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ManifestError(f"{what} is not valid JSON: {e}") from e
    if not isinstance(doc, list):
        raise ManifestError(f"{what} is not a JSON list", hint="is this a docker save archive?")
    images = []
    for i, entry in enumerate(doc):
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
            raise ManifestError(f"{what} entry {i} has no Config file name")
        images.append(
            ArchiveImage(
                config=entry["Config"],
                repo_tags=_strings(entry.get("RepoTags"), f"{what} entry {i} RepoTags", True),
                layers=_strings(entry.get("Layers"), f"{what} entry {i} Layers"),
            )
        )
    return tuple(images)


def familiar(name: str) -> str:
    """NAME as docker shows it: no docker.io/ or library/, tag ``latest`` if none."""
    try:
        ref = reference.parse(name)
    except ReferenceParseError:
        return name
    path = ref.path
    if ref.domain in ("", "docker.io", "index.docker.io"):
        path = path.removeprefix("library/")
    else:
        path = f"{ref.domain}/{path}"
    return f"{path}:{ref.tag_or_default}"


def _all_tags(images: tuple[ArchiveImage, ...]) -> str:
    tags = [t for image in images for t in image.repo_tags]
    return ", ".join(tags) if tags else "none (the images are untagged; use @N)"


def choose_image(images: tuple[ArchiveImage, ...], ref: str, what: str) -> tuple[ArchiveImage, str]:
    """The image REF names ("" for the only one, "@N" or NAME[:TAG]) and its RepoTag, if any."""
    if not images:
        raise ImageNotFoundError(f"{what} holds no images", hint="manifest.json is an empty list")
    if ref.startswith("@"):
        try:
            n = int(ref[1:])
        except ValueError:
            raise UsageError(
                f"{what}: {ref!r} is not an image position", hint="write @N, e.g. @0"
            ) from None
        if not 0 <= n < len(images):
            raise ImageNotFoundError(
                f"{what} has no image @{n}", hint=f"it holds {len(images)}, from @0"
            )
        return images[n], next(iter(images[n].repo_tags), "")
    if ref:
        for image in images:
            for tag in image.repo_tags:
                if tag == ref or familiar(tag) == familiar(ref):
                    return image, tag
        raise ImageNotFoundError(
            f"{what} has no image tagged {ref!r}", hint=f"tags there: {_all_tags(images)}"
        )
    if len(images) > 1:
        raise ImageNotFoundError(
            f"{what} holds {len(images)} images and none was chosen",
            hint=f"add :NAME:TAG or :@N; tags there: {_all_tags(images)}",
        )
    return images[0], next(iter(images[0].repo_tags), "")


class DockerArchiveSource:
    """An image in a docker save archive, with a synthesised OCI manifest."""

    def __init__(
        self, reader: TarReader, image: ArchiveImage, repo_tag: str, description: str
    ) -> None:
        self.reader = reader
        self.image = image
        self.repo_tag = repo_tag
        self.description = description
        self._resolved: ResolvedImage | None = None
        self._paths: dict[str, str] = {}  # blob digest -> path in the archive

    @classmethod
    def open(cls, spec: SourceSpec) -> DockerArchiveSource:
        """Open ``docker-archive:FILE[:NAME:TAG | :@N]`` and choose the image."""
        path = Path(spec.location)
        if not path.is_file():
            state = "is not a file" if path.exists() else "does not exist"
            raise SourceError(
                f"docker archive {path} {state}",
                hint="make one with `docker save -o FILE NAME:TAG` or `podman save`",
            )
        reader = TarReader(path)
        try:
            if not reader.exists("manifest.json"):
                raise SourceError(
                    f"{path} is not a docker save archive: it has no manifest.json",
                    hint="for a tar of an OCI layout use oci-archive:",
                )
            data = read_document(reader, "manifest.json", "manifest.json")
            images = parse_archive_manifest(data, f"manifest.json of {spec}")
            image, tag = choose_image(images, spec.reference, str(spec))
        except BaseException:
            reader.close()
            raise
        return cls(reader, image, tag, str(spec))

    def __enter__(self) -> DockerArchiveSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def resolve(self, platform: Platform) -> ResolvedImage:
        """The synthesised manifest (an archive image has one platform: PLATFORM is not used)."""
        if self._resolved is None:
            self._resolved = self._synthesise()
        return self._resolved

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        """A stream of the config or layer file DESC names."""
        self.resolve(Platform.host())
        path = self._paths.get(desc.digest)
        if path is None:
            raise ImageNotFoundError(
                f"{self.description} has no blob {desc.digest}",
                hint="only the config and layers of the chosen image are in the archive",
            )
        return self.reader.open(path, f"blob {desc.digest}")

    def close(self) -> None:
        """Close the archive."""
        self.reader.close()

    def _synthesise(self) -> ResolvedImage:
        what = f"image config {self.image.config} in {self.description}"
        config_bytes = read_document(self.reader, self.image.config, what, MAX_CONFIG)
        diff_ids = parse_config(config_bytes, what).diff_ids
        if len(diff_ids) != len(self.image.layers):
            raise ManifestError(
                f"{self.description}: manifest.json lists {len(self.image.layers)} layers "
                f"but the image config has {len(diff_ids)} diff_ids",
                hint="the archive is corrupt; save the image again",
            )
        config_digest = sha256_digest(config_bytes)
        paths = {config_digest: self.image.config}
        layers = []
        for i, (path, diff_id) in enumerate(zip(self.image.layers, diff_ids, strict=True)):
            layer = self._layer_descriptor(path, diff_id, i)
            paths[layer["digest"]] = path
            layers.append(layer)
        doc = {
            "schemaVersion": 2,
            "mediaType": MT_OCI_MANIFEST,
            "config": {
                "mediaType": MT_OCI_CONFIG,
                "digest": config_digest,
                "size": len(config_bytes),
            },
            "layers": layers,
        }
        data = canonical_json(doc)
        manifest = parse_manifest(data, f"synthesised manifest of {self.description}")
        self._paths = paths
        name = store_name(self.repo_tag) if self.repo_tag else ""
        return ResolvedImage(manifest, data, sha256_digest(data), name)

    def _layer_descriptor(self, path: str, diff_id: str, i: int) -> dict[str, Any]:
        what = f"layer {i} ({path})"
        with self.reader.open(path, what) as stream:
            head = stream.read(4)
            kind = sniff_compression(head)
            if kind is Compression.NONE:
                digest, size = diff_id, self.reader.size(path, what)
            else:
                digest, size = _hash_stream(stream, head)
        return {"mediaType": _LAYER_MEDIA_TYPES[kind], "digest": digest, "size": size}


def _hash_stream(stream: BinaryIO, head: bytes) -> tuple[str, int]:
    """The sha256 digest and size of HEAD followed by the rest of STREAM."""
    h = sha256(head)
    size = len(head)
    while chunk := stream.read(_CHUNK):
        h.update(chunk)
        size += len(chunk)
    return "sha256:" + h.hexdigest(), size
