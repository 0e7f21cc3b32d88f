"""OCI image layouts as image sources: ``oci:DIR[:TAG]`` and ``oci-archive:FILE[:TAG]``.

A layout, in a directory or at the top of a tar archive (plain, gzip, bzip2 or xz)::

    oci-layout          {"imageLayoutVersion": "1.0.0"}
    index.json          an OCI index; entries are tagged by org.opencontainers.image.ref.name
    blobs/sha256/HEX    manifests, indexes, configs and layers, named by their sha256

Both transports read it through a LayoutReader: DirReader for a directory and TarReader
(sources/tar_reader.py, loaded only for archives) for an archive. An archive is read in place,
never extracted: tarfile lists its members once, and each blob is a fresh handle seeked to the
member's data, so blobs may be read from several threads.

Choosing the image: with a TAG, the index.json entries whose ref.name annotation equals it;
without one, the only entry. Several candidates that all carry a platform are narrowed with
oci.select_platform, and so is a nested index. The manifest (and any index on the way) is
checked against its digest here, because the choice depends on its content; blobs are handed
out raw and the pull pipeline checks them.

The suggested store name is ``localhost/<basename>:<tag>`` (the basename lowercased, runs of
other characters turned into "-", a suffix such as .tar, .tar.gz, .tgz or .oci dropped, the tag
``latest`` when none is known). When the ref.name annotation is itself a reference (it contains
"/" or ":", e.g. "example.org/app:1.0"), that reference is suggested instead.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
from pathlib import Path
from typing import BinaryIO, Protocol

from syscontainers import reference
from syscontainers.errors import (
    DigestMismatchError,
    ImageNotFoundError,
    ManifestError,
    ReferenceParseError,
    SourceError,
)
from syscontainers.oci import (
    INDEX_TYPES,
    MANIFEST_TYPES,
    Descriptor,
    Index,
    Platform,
    check_digest,
    digest_hex,
    parse_index,
    parse_manifest,
    select_platform,
    sha256_digest,
    sniff_media_type,
)
from syscontainers.sources import ResolvedImage, SourceSpec

REF_NAME = "org.opencontainers.image.ref.name"
MAX_DOCUMENT = 4 * 1024 * 1024  # registries refuse manifests above 4 MiB; so do we
_MAX_NESTING = 4
_ARCHIVE_SUFFIX = re.compile(r"(?<=.)\.(tar(\.[a-z0-9]+)?|tgz|tbz2?|txz|oci)$")
REBUILD_HINT = "the layout is incomplete or corrupt; re-create it, e.g. with skopeo copy"


class LayoutReader(Protocol):
    """Files of a layout directory or archive, by slash-separated relative path."""

    location: str

    def exists(self, path: str) -> bool:
        """True if PATH names a readable file."""

    def open(self, path: str, what: str) -> BinaryIO:
        """A stream of the file at PATH; a missing file is a SourceError naming WHAT."""

    def size(self, path: str, what: str) -> int:
        """The size in bytes of the file at PATH."""

    def close(self) -> None:
        """Release the underlying file, if any."""


def read_document(reader: LayoutReader, path: str, what: str, limit: int = MAX_DOCUMENT) -> bytes:
    """The whole (small) file at PATH, refusing anything larger than LIMIT bytes."""
    with reader.open(path, what) as stream:
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise SourceError(
            f"{what} in {reader.location} is larger than {limit} bytes",
            hint="this is not a manifest or config; the source may be corrupt or hostile",
        )
    return data


def clean_path(path: str, location: str) -> str:
    """PATH normalised to a relative slash path; absolute paths and '..' are refused."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if path.startswith("/") or ".." in parts or not parts:
        raise SourceError(
            f"{location} refers to the unsafe path {path!r}",
            hint="only relative paths inside the source are allowed; it may be hostile",
        )
    return "/".join(parts)


def missing_error(what: str, path: str, location: str) -> SourceError:
    where = "" if posixpath.basename(path) in what else f" (no {path})"
    return SourceError(f"{what} is missing from {location}{where}", hint=REBUILD_HINT)


class DirReader:
    """A LayoutReader over a directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = str(root)

    def _path(self, path: str) -> Path:
        return self.root / clean_path(path, self.location)

    def exists(self, path: str) -> bool:
        """True if PATH names a regular file (after symlinks)."""
        return self._path(path).is_file()

    def open(self, path: str, what: str) -> BinaryIO:
        """Open the file at PATH for reading."""
        try:
            return open(self._path(path), "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise missing_error(what, path, self.location) from None
        except OSError as e:
            raise SourceError(
                f"cannot read {what} from {self.location}: {e.strerror}",
                hint=f"check the permissions of {self.location}",
            ) from e

    def size(self, path: str, what: str) -> int:
        """The size of the file at PATH."""
        try:
            return os.stat(self._path(path)).st_size
        except OSError:
            raise missing_error(what, path, self.location) from None

    def close(self) -> None:
        """Nothing to release."""


def blob_path(digest: str) -> str:
    """The path of a blob inside a layout."""
    return "blobs/sha256/" + digest_hex(check_digest(digest, "blob digest"))


def store_name(text: str) -> str:
    """The store's ``name:tag`` for a reference, or "" if TEXT is not a valid one."""
    try:
        return reference.parse(text).store_key
    except ReferenceParseError:
        return ""


def repository_from_path(path: Path) -> str:
    """A valid repository path component derived from a file or directory name."""
    name = _ARCHIVE_SUFFIX.sub("", path.name.lower())
    return re.sub(r"[^a-z0-9]+", "-", name).strip("-") or "image"


def _check_layout(reader: LayoutReader, description: str) -> None:
    if not reader.exists("oci-layout"):
        raise SourceError(
            f"{description} is not an OCI image layout: it has no oci-layout file",
            hint="make one with `skopeo copy ... oci:DIR:TAG` or `umoci init --layout DIR`",
        )
    data = read_document(reader, "oci-layout", "the oci-layout file")
    try:
        version = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ManifestError(f"the oci-layout file of {description} is not valid JSON: {e}") from e
    found = version.get("imageLayoutVersion") if isinstance(version, dict) else None
    if not isinstance(found, str) or not found.startswith("1."):
        raise SourceError(
            f"{description} has image layout version {found!r}, not 1.x",
            hint="only version 1 of the OCI image layout is supported",
        )


def _tags_hint(index: Index) -> str:
    tags = sorted({d.annotation(REF_NAME) or "" for d in index.manifests} - {""})
    if not tags:
        return "the layout has no tagged images"
    return "tags there: " + ", ".join(tags)


class OciLayoutSource:
    """An image in an OCI layout, read through a LayoutReader."""

    def __init__(self, reader: LayoutReader, tag: str, description: str, repository: str) -> None:
        self.reader = reader
        self.tag = tag
        self.description = description
        self.repository = repository

    @classmethod
    def open_dir(cls, spec: SourceSpec) -> OciLayoutSource:
        """Open ``oci:DIR[:TAG]``."""
        root = Path(spec.location)
        if not root.exists():
            raise SourceError(
                f"OCI layout {root} does not exist",
                hint="check the path; make a layout with `skopeo copy ... oci:DIR:TAG`",
            )
        if not root.is_dir():
            raise SourceError(
                f"{root} is not a directory", hint=f"for a tar of a layout use oci-archive:{root}"
            )
        return cls._checked(DirReader(root), spec, repository_from_path(root.resolve()))

    @classmethod
    def open_archive(cls, spec: SourceSpec) -> OciLayoutSource:
        """Open ``oci-archive:FILE[:TAG]``."""
        path = Path(spec.location)
        if not path.exists():
            raise SourceError(
                f"OCI archive {path} does not exist",
                hint="check the path; make one with `skopeo copy ... oci-archive:FILE:TAG`",
            )
        if path.is_dir():
            raise SourceError(
                f"{path} is a directory, not an archive", hint=f"for a layout use oci:{path}"
            )
        from syscontainers.sources.tar_reader import TarReader  # tarfile, gzip, bz2, lzma

        return cls._checked(TarReader(path), spec, repository_from_path(path))

    @classmethod
    def _checked(cls, reader: LayoutReader, spec: SourceSpec, repo: str) -> OciLayoutSource:
        try:
            _check_layout(reader, str(spec))
        except BaseException:
            reader.close()
            raise
        return cls(reader, spec.reference, str(spec), repo)

    def __enter__(self) -> OciLayoutSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def resolve(self, platform: Platform) -> ResolvedImage:
        """Choose the image for the tag and PLATFORM and read its manifest."""
        data = read_document(self.reader, "index.json", "index.json")
        index = parse_index(data, f"index.json of {self.description}")
        chosen = self._choose(index, platform)
        desc, manifest_bytes = self._descend(chosen, platform, 0)
        manifest = parse_manifest(manifest_bytes, f"manifest {desc.digest} in {self.description}")
        return ResolvedImage(manifest, manifest_bytes, desc.digest, self._default_name(chosen))

    def open_blob(self, desc: Descriptor) -> BinaryIO:
        """A stream of the raw blob DESC names."""
        return self.reader.open(blob_path(desc.digest), f"blob {desc.digest}")

    def close(self) -> None:
        """Close the archive, if any."""
        self.reader.close()

    def _choose(self, index: Index, platform: Platform) -> Descriptor:
        if not index.manifests:
            raise ImageNotFoundError(
                f"{self.description} holds no images", hint="index.json lists no manifests"
            )
        if self.tag:
            chosen = [d for d in index.manifests if d.annotation(REF_NAME) == self.tag]
            if not chosen:
                raise ImageNotFoundError(
                    f"{self.description}: no image is tagged {self.tag!r}", hint=_tags_hint(index)
                )
        else:
            chosen = list(index.manifests)
        if len(chosen) == 1:
            return chosen[0]
        if all(d.platform is not None for d in chosen):
            return select_platform(Index(index.media_type, tuple(chosen)), platform, "index.json")
        what = f"several images are tagged {self.tag!r}" if self.tag else "no tag was given"
        raise ImageNotFoundError(
            f"{self.description} holds {len(chosen)} images and {what}",
            hint=_tags_hint(index) + "; name one as oci:PATH:TAG",
        )

    def _descend(
        self, desc: Descriptor, platform: Platform, depth: int
    ) -> tuple[Descriptor, bytes]:
        """Follow nested indexes down to the image manifest for PLATFORM."""
        data = read_document(self.reader, blob_path(desc.digest), f"manifest {desc.digest}")
        what = f"manifest {desc.digest} in {self.description}"
        _verify(desc, data, what)
        media_type = desc.media_type or sniff_media_type(data, what)
        if media_type in MANIFEST_TYPES:
            return desc, data
        if media_type not in INDEX_TYPES:
            raise ManifestError(
                f"{what} has media type {media_type!r}, neither an image manifest nor an index",
                hint="supported: OCI image manifest or index, Docker v2 schema 2 manifest or list",
            )
        if depth >= _MAX_NESTING:
            raise ManifestError(f"{what}: indexes are nested more than {_MAX_NESTING} deep")
        sub = select_platform(parse_index(data, what), platform, what)
        return self._descend(sub, platform, depth + 1)

    def _default_name(self, chosen: Descriptor) -> str:
        ref_name = chosen.annotation(REF_NAME) or self.tag
        if "/" in ref_name or ":" in ref_name:
            return store_name(ref_name)
        return store_name(f"localhost/{self.repository}:{ref_name or reference.DEFAULT_TAG}")


def _verify(desc: Descriptor, data: bytes, what: str) -> None:
    actual = sha256_digest(data)
    if actual != desc.digest:
        raise DigestMismatchError(f"{what} has the digest {actual}", hint=REBUILD_HINT)
    if len(data) != desc.size:
        raise ManifestError(
            f"{what}: its descriptor says {desc.size} bytes, the blob has {len(data)}",
            hint=REBUILD_HINT,
        )
