"""Image sources: the ImageSource interface and the parser for transport strings.

A source resolves to one image manifest and hands out raw blob streams. It
verifies nothing itself: the pull pipeline checks every digest, so that every
transport (oci:, oci-archive:, docker-archive:, docker://) is held to the same
rules.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from enum import Enum
from typing import BinaryIO, Protocol

from syscontainers.errors import UsageError
from syscontainers.oci import Descriptor, Manifest, Platform
from syscontainers.record import record


class Transport(Enum):
    """Where an image comes from."""

    OCI = "oci"
    OCI_ARCHIVE = "oci-archive"
    DOCKER_ARCHIVE = "docker-archive"
    DOCKER = "docker"

    @property
    def prefix(self) -> str:
        """How a source string starts with this transport: ``oci:``, …, ``docker://``."""
        return f"{self.value}://" if self is Transport.DOCKER else f"{self.value}:"


TRANSPORT_PREFIXES = tuple(t.prefix for t in Transport)


def has_transport(text: str) -> bool:
    """True if TEXT names a source with its transport (``oci:``, ``docker://``, …)."""
    return text.startswith(TRANSPORT_PREFIXES)


def registry_source(name: str) -> str:
    """The source string of the registry image NAME: ``docker://NAME``."""
    return Transport.DOCKER.prefix + name


@record
class SourceSpec:
    """A parsed transport string: the transport, its location and an optional reference."""

    transport: Transport
    location: str  # a path for local transports, the image reference for docker://
    reference: str = ""  # a tag (oci:), a name:tag or @index (docker-archive:)

    def __str__(self) -> str:
        tail = f":{self.reference}" if self.reference else ""
        return f"{self.transport.prefix}{self.location}{tail}"


@record
class ResolvedImage:
    """The manifest a source resolved to."""

    manifest: Manifest
    manifest_bytes: bytes
    manifest_digest: str
    default_name: str  # the name:tag the source suggests for the store ("" if none)


class ImageSource(Protocol):
    """What the pull pipeline needs from a transport."""

    description: str

    def resolve(self, platform: Platform) -> ResolvedImage:
        """Find the image manifest (choosing PLATFORM from an index)."""

    def open_blob(self, desc: Descriptor) -> AbstractContextManager[BinaryIO]:
        """A stream of the blob's raw (possibly compressed) bytes."""

    def close(self) -> None:
        """Release files or connections."""


def read_small_blob(source: ImageSource, desc: Descriptor, limit: int, what: str) -> bytes:
    """The blob DESC of SOURCE (a config, a signature), read whole and checked against its
    descriptor's digest and size; WHAT names it in errors. Larger than LIMIT: ManifestError."""
    from syscontainers.errors import DigestMismatchError, ManifestError
    from syscontainers.oci import sha256_digest

    if desc.size > limit:
        raise ManifestError(
            f"{what} is {desc.size} bytes, over the limit of {limit}",
            hint="that is not a blob of this kind; check the image and its source",
        )
    with source.open_blob(desc) as stream:
        data = stream.read(limit + 1)
    actual = sha256_digest(data)
    if actual != desc.digest or len(data) != desc.size:
        raise DigestMismatchError(
            f"{what} has content with digest {actual} ({len(data)} bytes), not {desc.digest} "
            f"({desc.size} bytes)",
            hint="the image source is damaged or was changed while reading",
        )
    return data


def parse_source(text: str) -> SourceSpec:
    """Parse ``oci:DIR[:TAG]``, ``oci-archive:FILE[:TAG]``, ``docker-archive:FILE[:REF]``
    or ``[docker://]NAME``."""
    docker = Transport.DOCKER.prefix
    name = text.removeprefix(docker)
    if not name:
        raise UsageError(
            f"source {text!r} names no image", hint=f"write it as [{docker}]NAME[:TAG]"
        )
    if text.startswith(docker):
        return SourceSpec(Transport.DOCKER, name)
    for transport in (Transport.OCI_ARCHIVE, Transport.DOCKER_ARCHIVE, Transport.OCI):
        prefix = transport.prefix
        if text.startswith(prefix):
            location, _, reference = text[len(prefix) :].partition(":")
            if not location:
                raise UsageError(
                    f"source {text!r} names no path",
                    hint=f"write it as {prefix}PATH[:TAG]",
                )
            return SourceSpec(transport, location, reference)
    if "://" in text:
        raise UsageError(
            f"source {text!r} uses the unknown transport {text.split('://', 1)[0]!r}",
            hint=f"use {', '.join(TRANSPORT_PREFIXES[:-1])} or {TRANSPORT_PREFIXES[-1]}",
        )
    return SourceSpec(Transport.DOCKER, text)


SourceOpener = Callable[[SourceSpec], ImageSource]


def open_source(spec: SourceSpec, registry_opener: SourceOpener | None = None) -> ImageSource:
    """Open the source a spec names; docker:// goes through REGISTRY_OPENER."""
    if spec.transport is Transport.OCI:
        from syscontainers.sources.oci_layout import OciLayoutSource

        return OciLayoutSource.open_dir(spec)
    if spec.transport is Transport.OCI_ARCHIVE:
        from syscontainers.sources.oci_layout import OciLayoutSource

        return OciLayoutSource.open_archive(spec)
    if spec.transport is Transport.DOCKER_ARCHIVE:
        from syscontainers.sources.docker_archive import DockerArchiveSource

        return DockerArchiveSource.open(spec)
    if registry_opener is None:
        raise UsageError(
            f"cannot pull {spec}: the registry transport is not available",
            hint="pull from oci:, oci-archive: or docker-archive: instead",
        )
    return registry_opener(spec)
