"""The docker:// image source: manifests and blobs from a registry, trying mirrors first.

``RegistrySource`` implements ``sources.ImageSource``. It tries the endpoints
registries.conf gives (usable mirrors in order, then the primary) until one
serves the manifest, and then reads every blob from that endpoint, falling
back to the later ones only for a blob it lacks. Manifests are checked against
the digest they were asked by; blobs are streamed unverified, because the
pull pipeline checks every digest while it imports.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import BinaryIO

from syscontainers.errors import (
    DigestMismatchError,
    ImageNotFoundError,
    ManifestError,
    SysContainersError,
)
from syscontainers.oci import (
    INDEX_TYPES,
    MANIFEST_TYPES,
    MT_DOCKER_CONFIG,
    MT_DOCKER_LIST,
    MT_DOCKER_MANIFEST,
    MT_OCI_CONFIG,
    MT_OCI_INDEX,
    MT_OCI_MANIFEST,
    Descriptor,
    Index,
    Manifest,
    Platform,
    layer_compression,
    parse_index,
    parse_manifest,
    select_platform,
    sha256_digest,
    sniff_media_type,
)
from syscontainers.record import record
from syscontainers.reference import Reference
from syscontainers.registry.http import CHUNK, RegistryClient
from syscontainers.registry.registries_conf import Endpoint
from syscontainers.registry.stream import TransferStats
from syscontainers.sources import ResolvedImage, read_small_blob, registry_source

MANIFEST_LIMIT = 4 << 20
CONFIG_LIMIT = 16 << 20
ATTACHMENT_LIMIT = 4 << 20  # containers/image iolimits.MaxSignatureBodySize
ACCEPT = (MT_OCI_INDEX, MT_DOCKER_LIST, MT_OCI_MANIFEST, MT_DOCKER_MANIFEST)
CONFIG_TYPES = frozenset({MT_OCI_CONFIG, MT_DOCKER_CONFIG})


@record
class TopManifest:
    """The document the reference names (a manifest or an index) and where it came from."""

    endpoint: Endpoint
    data: bytes
    media_type: str
    digest: str

    @property
    def is_index(self) -> bool:
        """True for an OCI index or a Docker manifest list."""
        return self.media_type in INDEX_TYPES


class RegistrySource:
    """An image in a registry, reachable through ENDPOINTS (mirrors first)."""

    def __init__(
        self, client: RegistryClient, reference: Reference, endpoints: Sequence[Endpoint]
    ) -> None:
        if not endpoints:
            raise ValueError("a registry source needs at least one endpoint")
        self.reference = reference
        self.description = registry_source(str(reference))
        self._client = client
        self._endpoints = tuple(endpoints)
        self._chosen: Endpoint | None = None

    @property
    def endpoint(self) -> Endpoint | None:
        """The endpoint that served the manifest, once one has."""
        return self._chosen

    def stats(self) -> TransferStats:
        """Bytes downloaded and re-downloaded, retries and resumes so far."""
        return self._client.stats()

    def close(self) -> None:
        """Close the connections."""
        self._client.close()

    # ---- manifests -------------------------------------------------------------

    def _fetch(self, endpoint: Endpoint, reference: str, what: str) -> tuple[bytes, str]:
        ref = endpoint.reference
        fetched = self._client.get_manifest(
            endpoint.host, ref.path, reference, ACCEPT, MANIFEST_LIMIT
        )
        digest = sha256_digest(fetched.data)
        if reference.startswith("sha256:") and digest != reference:
            raise DigestMismatchError(
                f"{what}: {endpoint.host} served a manifest with digest {digest}, not {reference}",
                hint="the registry or mirror is serving wrong content",
            )
        return fetched.data, digest

    def fetch_top(self) -> TopManifest:
        """Fetch the manifest or index the reference names, from the first endpoint that has it."""
        failures: list[tuple[Endpoint, SysContainersError]] = []
        for endpoint in self._endpoints:
            ref = endpoint.reference
            try:
                data, digest = self._fetch(endpoint, ref.digest or ref.tag, self.description)
                media_type = sniff_media_type(data, f"{self.description} manifest")
            except SysContainersError as e:
                failures.append((endpoint, e))
                continue
            self._chosen = endpoint
            if endpoint.wanted is not None and endpoint.wanted != self.reference:
                self.reference = endpoint.wanted  # a short name's later candidate served it
                self.description = registry_source(str(self.reference))
            return TopManifest(endpoint, data, media_type, digest)
        raise _combined(self.description, failures)

    def index_of(self, top: TopManifest) -> Index | None:
        """The index TOP holds, or None for a plain manifest."""
        return parse_index(top.data, f"{self.description} index") if top.is_index else None

    def resolve(self, platform: Platform) -> ResolvedImage:
        """Find the image manifest, choosing PLATFORM from an index."""
        return self.resolve_from(self.fetch_top(), platform)

    def resolve_from(self, top: TopManifest, platform: Platform) -> ResolvedImage:
        """The image manifest for PLATFORM, given the top-level document."""
        data, digest = top.data, top.digest
        if top.is_index:
            index = parse_index(top.data, f"{self.description} index")
            desc = select_platform(index, platform, f"{self.description} index")
            data, digest = self._fetch(top.endpoint, desc.digest, self.description)
        elif top.media_type not in MANIFEST_TYPES:
            raise ManifestError(
                f"{self.description} has media type {top.media_type!r}, "
                "which is neither an image manifest nor an index",
                hint="supported: OCI manifests and indexes, Docker v2 schema 2 and lists",
            )
        manifest = parse_manifest(data, f"{self.description} manifest")
        _check_media_types(manifest, self.description)
        return ResolvedImage(manifest, data, digest, str(self.reference))

    # ---- blobs ---------------------------------------------------------------

    def _blob_endpoints(self) -> tuple[Endpoint, ...]:
        if self._chosen is None:
            return self._endpoints
        later = self._endpoints[self._endpoints.index(self._chosen) :]
        return tuple(ep for ep in later if ep.wanted == self._chosen.wanted)

    @contextmanager
    def open_blob(self, desc: Descriptor) -> Iterator[BinaryIO]:
        """Stream the blob DESC; an endpoint without it hands over to the next one."""
        candidates = self._blob_endpoints()
        for i, endpoint in enumerate(candidates):
            raw = self._client.open_blob(
                endpoint.host, endpoint.reference.path, desc.digest, desc.size
            )
            try:
                raw.connect()
            except ImageNotFoundError:
                raw.close()
                if i + 1 < len(candidates):
                    continue
                raise
            with io.BufferedReader(raw, CHUNK) as stream:
                yield stream
            return

    def read_blob(self, desc: Descriptor, limit: int = CONFIG_LIMIT) -> bytes:
        """A small blob (a config), read whole and checked against its digest."""
        return read_small_blob(self, desc, limit, f"{self.description}: blob {desc.digest}")

    # ---- signatures ----------------------------------------------------------------

    def read_lookaside(self, url: str, limit: int) -> bytes | None:
        """A lookaside signature at the http(s) URL, up to LIMIT bytes; None if there is none."""
        return self._client.get_optional(url, f"signature {url}", limit)

    def sigstore_attachments(self, manifest_digest: str) -> list[Attachment]:
        """The layers of the ``sha256-HEX.sig`` manifest that sigstore (cosign) attaches to the
        image MANIFEST_DIGEST, each read whole and checked; [] if the registry has none.

        As containers/image, every layer is returned, whatever its media type (signatures,
        attestations …): the policy check picks what it can use."""
        endpoint = self._chosen or self._endpoints[0]
        tag = manifest_digest.replace(":", "-", 1) + ".sig"
        what = f"the sigstore attachments of {self.description} ({tag})"
        try:
            fetched = self._client.get_manifest(
                endpoint.host, endpoint.reference.path, tag, (MT_OCI_MANIFEST,), MANIFEST_LIMIT
            )
        except ImageNotFoundError:
            return []
        media_type = fetched.content_type or sniff_media_type(fetched.data, what)
        if media_type != MT_OCI_MANIFEST:
            raise ManifestError(
                f"{what} has media type {media_type!r}, not an OCI image manifest",
                hint="the tag is not a sigstore signature; ask the image's publisher",
            )
        manifest = parse_manifest(fetched.data, what)
        out = []
        for layer in manifest.layers:
            payload = self.read_blob(layer, ATTACHMENT_LIMIT)
            out.append(Attachment(layer.media_type, payload, layer.annotations))
        return out


@record
class Attachment:
    """One layer of a sigstore attachment manifest."""

    media_type: str
    payload: bytes
    annotations: tuple[tuple[str, str], ...]


def _check_media_types(manifest: Manifest, what: str) -> None:
    if manifest.config.media_type and manifest.config.media_type not in CONFIG_TYPES:
        raise ManifestError(
            f"{what} is not a container image: its config has media type "
            f"{manifest.config.media_type!r}",
            hint="only OCI and Docker image configs can be pulled",
        )
    for i, layer in enumerate(manifest.layers):
        try:
            layer_compression(layer.media_type)
        except ManifestError as e:
            raise ManifestError(f"{what} layer {i + 1}: {e.message}", hint=e.hint) from e


def _combined(what: str, failures: list[tuple[Endpoint, SysContainersError]]) -> SysContainersError:
    """One error for every endpoint that failed, typed like the primary's."""
    last = failures[-1][1]
    if len(failures) == 1:
        return last
    parts = "; ".join(
        f"{'mirror' if ep.mirror else 'primary'} {ep.host}: {e.message}" for ep, e in failures
    )
    return type(last)(f"{what}: no endpoint could serve it: {parts}", last.hint)
