"""The pull pipeline's policy check: the requirements for an image's scope, then its signatures.

``PolicyChecker`` implements ``operations.pull.PolicyCheck`` for one source spec. It runs
after the manifest is resolved and before anything is written, as containers/image does
before a copy: it finds the requirements of the image's most specific scope (see
``policy.requirements_for``) and enforces every one of them. A ``signedBy`` requirement is
met by any one signature that gpg verifies with one of its keys, whose payload names the
pulled manifest's digest and a reference that its ``signedIdentity`` accepts. Only
registry images have signatures: simple-signing ones in registries.d lookaside storage, and
sigstore (cosign) ones in the registry's ``sha256-HEX.sig`` attachment, read where registries.d
sets ``use-sigstore-attachments``. A ``sigstoreSigned`` requirement with public keys is met like
``signedBy``; one that needs Fulcio, PKI or Rekor checks refuses every image.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from syscontainers.errors import PolicyError
from syscontainers.reference import Reference, normalize, parse
from syscontainers.sources import (
    ImageSource,
    ResolvedImage,
    SourceSpec,
    Transport,
    registry_source,
)
from syscontainers.trust.model import Policy, RequirementKind
from syscontainers.trust.policy import load_policy, requirements_for
from syscontainers.trust.requirements import (
    AcceptAnything,
    Case,
    Reject,
    RequirementType,
    SignatureLookup,
    SignedBy,
    SigstoreLookup,
    SigstoreSigned,
    Subject,
    Verifier,
)
from syscontainers.trust.scopes import docker_scopes, path_scopes


@runtime_checkable
class Referenced(Protocol):
    """A source that knows the fully qualified reference it resolved (the registry source)."""

    reference: Reference


@runtime_checkable
class Attached(Protocol):
    """A source that can read sigstore attachments (the registry source)."""

    def sigstore_attachments(self, manifest_digest: str) -> Sequence[Any]:
        """The attachment layers: objects with media_type, payload and annotations."""


@runtime_checkable
class LookasideReader(Protocol):
    """A source that reads lookaside signatures over HTTP(S) (the registry source, with its
    client's retries and certs.d TLS)."""

    def read_lookaside(self, url: str, limit: int) -> bytes | None:
        """The body at URL, up to LIMIT bytes; None if the server has none (HTTP 404)."""


def subject_of(spec: SourceSpec, source: ImageSource) -> Subject:
    """The policy subject for SOURCE, opened from SPEC."""
    if spec.transport is Transport.DOCKER:
        if isinstance(source, Referenced):
            ref = source.reference.with_default_tag()
        else:
            ref = normalize(parse(spec.location)).with_default_tag()
        identity, namespaces = docker_scopes(ref)
        label = registry_source(str(ref))
        return Subject(Transport.DOCKER.value, identity, namespaces, ref, label)
    identity, namespaces = path_scopes(spec.transport.value, Path(spec.location), spec.reference)
    return Subject(spec.transport.value, identity, namespaces, None, str(spec))


class PolicyChecker:
    """Enforces a trust policy on the image one source spec names."""

    def __init__(
        self,
        spec: SourceSpec,
        load: Callable[[], Policy],
        signatures: SignatureLookup,
        verify: Verifier | None = None,  # default: gpg.verify_signed_message
        read_key: Callable[[Path], bytes] = Path.read_bytes,
        sigstore: SigstoreLookup | None = None,  # None: no sigstore signatures anywhere
    ) -> None:
        self.spec = spec
        self._load = load
        self._types: dict[RequirementKind, RequirementType] = {
            RequirementKind.ACCEPT_ANYTHING: AcceptAnything(),
            RequirementKind.REJECT: Reject(),
            RequirementKind.SIGNED_BY: SignedBy(signatures, verify, read_key),
            RequirementKind.SIGSTORE_SIGNED: SigstoreSigned(sigstore, read_key),
        }

    def check(self, source: ImageSource, image: ResolvedImage) -> None:
        """Raise PolicyError unless every requirement for the image is met."""
        subject = subject_of(self.spec, source)
        policy = self._load()
        requirements, scope = requirements_for(
            policy, subject.transport, subject.identity, subject.namespaces
        )
        case = Case(source, subject, image, f"{policy.origin or 'the trust policy'} ({scope})")
        for requirement in requirements:
            self._types[requirement.kind].enforce(requirement, case)


class Unchecked:
    """``--insecure-policy``: every image is accepted, whatever the policy says."""

    def check(self, source: ImageSource, image: ResolvedImage) -> None:
        """Accept IMAGE."""


def lookaside_signatures(registries_d: Path) -> SignatureLookup:
    """Signature lookup through the lookaside storage that REGISTRIES_D configures (read when a
    signature is first needed; HTTP goes through the source's registry client, with its retries
    and certs.d TLS)."""

    def lookup(
        source: ImageSource, ref: Reference, manifest_digest: str
    ) -> tuple[list[bytes], str]:
        from syscontainers.trust.lookaside import (
            BUILTIN_LOOKASIDE,
            fetch_url,
            load_registries_d,
            lookaside_for,
            read_signatures,
        )

        config = load_registries_d(registries_d)
        # Without a registries.d entry, containers/image looks where it writes by default.
        base = lookaside_for(config, ref, fallback=BUILTIN_LOOKASIDE)

        def http_get(url: str, limit: int) -> bytes | None:
            if not isinstance(source, LookasideReader):
                raise PolicyError(
                    f"{source.description} cannot read the lookaside signature {url}",
                    hint="pull the image from its registry",
                )
            return source.read_lookaside(url, limit)

        found = read_signatures(
            config,
            ref,
            manifest_digest,
            lambda url: fetch_url(url, http_get),
            fallback=BUILTIN_LOOKASIDE,
        )
        return found, f"looked under {base}, from {registries_d}"

    return lookup


def attached_signatures(registries_d: Path) -> SigstoreLookup:
    """Sigstore signature lookup: the cosign signature layers of the registry's attachment
    manifest, where REGISTRIES_D sets use-sigstore-attachments for the image (as containers/image,
    nothing is looked for otherwise)."""

    def lookup(
        source: ImageSource, ref: Reference, manifest_digest: str
    ) -> tuple[list[tuple[bytes, dict[str, str]]], str]:
        from syscontainers.trust.lookaside import load_registries_d, uses_sigstore_attachments
        from syscontainers.trust.sigstore import SIGNATURE_MIME_TYPE

        if not uses_sigstore_attachments(load_registries_d(registries_d), ref):
            return [], f"{registries_d} does not set use-sigstore-attachments for {ref.name}"
        if not isinstance(source, Attached):
            return [], "this source cannot hold sigstore attachments"
        layers = source.sigstore_attachments(manifest_digest)
        found = [
            (layer.payload, dict(layer.annotations))
            for layer in layers
            if layer.media_type == SIGNATURE_MIME_TYPE  # attestations and others: not ours
        ]
        return found, f"looked in the registry's {manifest_digest.replace(':', '-')}.sig tag"

    return lookup


def policy_checks(
    policy_path: Path, registries_d: Path, insecure: bool = False
) -> Callable[[SourceSpec], PolicyChecker | Unchecked]:
    """The policy check for each source spec: the policy at POLICY_PATH (read when an image is
    checked), signatures through REGISTRIES_D; with INSECURE, none."""
    if insecure:
        return lambda spec: Unchecked()
    signatures = lookaside_signatures(registries_d)
    sigstore = attached_signatures(registries_d)
    return lambda spec: PolicyChecker(
        spec, lambda: load_policy(policy_path), signatures, sigstore=sigstore
    )
