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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable

from syscontainers.errors import PolicyError, SysContainersError
from syscontainers.reference import Reference, normalize, parse
from syscontainers.sources import ImageSource, ResolvedImage, SourceSpec, Transport
from syscontainers.trust.model import Policy, Requirement, RequirementKind
from syscontainers.trust.policy import load_policy, requirements_for
from syscontainers.trust.scopes import docker_scopes, path_scopes

if TYPE_CHECKING:
    from syscontainers.trust.gpg import Verified

# (normalized reference, manifest digest) -> (signatures, where they were looked for)
SignatureLookup = Callable[[Reference, str], tuple[list[bytes], str]]
# (source, normalized reference, manifest digest) -> ([(payload, annotations) of each cosign
# signature layer], where they were looked for)
SigstoreLookup = Callable[
    [ImageSource, Reference, str], tuple[list[tuple[bytes, dict[str, str]]], str]
]
Verifier = Callable[[bytes, Sequence[bytes], str], "Verified"]
MAX_REASONS = 3  # the reasons an error lists when several signatures failed


@runtime_checkable
class Referenced(Protocol):
    """A source that knows the fully qualified reference it resolved (the registry source)."""

    reference: Reference


@runtime_checkable
class Attached(Protocol):
    """A source that can read sigstore attachments (the registry source)."""

    def sigstore_attachments(self, manifest_digest: str) -> Sequence[Any]:
        """The attachment layers: objects with media_type, payload and annotations."""


@dataclass(frozen=True, slots=True)
class Subject:
    """What the policy is asked about: a transport's view of one image."""

    transport: str
    identity: str
    namespaces: tuple[str, ...]
    reference: Reference | None  # docker only: the image reference, for identities and lookaside
    label: str  # for messages


@dataclass(frozen=True, slots=True)
class Claim:
    """What a verified signature says: its manifest digest (and whether that is the pulled
    manifest's) and the reference it was signed for."""

    digest_ok: bool
    manifest_digest: str
    docker_reference: str


def _check_claim(
    claim: Claim, req: Requirement, ref: Reference, image: ResolvedImage, what: str
) -> None:
    from syscontainers.trust.simple_signing import identity_matches

    if not claim.digest_ok:
        raise PolicyError(
            f"{what} is for manifest {claim.manifest_digest}, not {image.manifest_digest}"
        )
    if not identity_matches(req.identity, ref, claim.docker_reference):
        raise PolicyError(
            f"{what} names {claim.docker_reference}, which the policy's signedIdentity "
            f"({req.identity.kind.value}) does not accept for {ref}"
        )


def subject_of(spec: SourceSpec, source: ImageSource) -> Subject:
    """The policy subject for SOURCE, opened from SPEC."""
    if spec.transport is Transport.DOCKER:
        if isinstance(source, Referenced):
            ref = source.reference.with_default_tag()
        else:
            ref = normalize(parse(spec.location)).with_default_tag()
        identity, namespaces = docker_scopes(ref)
        return Subject("docker", identity, namespaces, ref, f"docker://{ref}")
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
        self._signatures = signatures
        self._sigstore = sigstore
        self._verify = verify
        self._read_key = read_key

    def check(self, source: ImageSource, image: ResolvedImage) -> None:
        """Raise PolicyError unless every requirement for the image is met."""
        subject = subject_of(self.spec, source)
        policy = self._load()
        requirements, scope = requirements_for(
            policy, subject.transport, subject.identity, subject.namespaces
        )
        where = f"{policy.origin or 'the trust policy'} ({scope})"
        for requirement in requirements:
            self._enforce(requirement, source, subject, image, where)

    def _enforce(
        self,
        req: Requirement,
        source: ImageSource,
        subject: Subject,
        image: ResolvedImage,
        where: str,
    ) -> None:
        if req.kind is RequirementKind.ACCEPT_ANYTHING:
            return
        if req.kind is RequirementKind.REJECT:
            raise PolicyError(
                f"{subject.label} is rejected by {where}",
                hint="the policy refuses every image of this scope; change it if this is wrong",
            )
        sigstore = req.kind is RequirementKind.SIGSTORE_SIGNED
        if sigstore and req.unsupported:
            raise PolicyError(
                f"{where} requires sigstore signatures checked with {req.unsupported} for "
                f"{subject.label}, which syscontainers cannot check",
                hint="verify with public keys (keyPath / keyData) only, or pull with "
                "--insecure-policy if you trust the source",
            )
        kind = "sigstore signature" if sigstore else "signature"
        ref = subject.reference
        if ref is None:
            raise PolicyError(
                f"{where} requires a {kind} for {subject.label}, but {subject.transport}: "
                "images carry no signatures",
                hint="pull the signed image from its registry, or accept this scope with "
                "insecureAcceptAnything in the policy",
            )
        # gpg, sigstore, payloads and lookaside load only from here: most pulls need none.
        keys = self._keys(req, where)
        found: Sequence[object]
        if sigstore:
            found, looked = self._sigstore_layers(source, ref, image.manifest_digest)
            hint = ("sign the image (cosign, or skopeo --sign-by-sigstore-private-key), and set "
                    "use-sigstore-attachments: true for its registry in registries.d")
        else:
            found, looked = self._signatures(ref, image.manifest_digest)
            hint = ("sign the image (skopeo copy --sign-by) and publish the signature where "
                    "registries.d points, or check the lookaside URL in registries.d")
        if not found:
            raise PolicyError(
                f"{where} requires a {kind} for {subject.label} "
                f"({image.manifest_digest}), but there is none ({looked})",
                hint=hint,
            )
        reasons = []
        for i, signature in enumerate(found, 1):
            what = f"{kind} {i} of {subject.label}"
            try:
                claim = (self._sigstore_claim if sigstore else self._gpg_claim)(
                    signature, keys, image, what
                )
                _check_claim(claim, req, ref, image, what)
                return
            except SysContainersError as e:
                reasons.append(e.message)
        shown = "; ".join(reasons[:MAX_REASONS])
        more = f" (and {len(reasons) - MAX_REASONS} more)" if len(reasons) > MAX_REASONS else ""
        raise PolicyError(
            f"no signature of {subject.label} satisfies {where}: {shown}{more}",
            hint="check that the image was signed by a key the policy names, for this name "
            "and this manifest",
        )

    def _sigstore_layers(
        self, source: ImageSource, ref: Reference, digest: str
    ) -> tuple[list[tuple[bytes, dict[str, str]]], str]:
        if self._sigstore is None:
            return [], "no sigstore signatures are looked for"
        return self._sigstore(source, ref, digest)

    def _gpg_claim(
        self, signature: object, keys: Sequence[bytes], image: ResolvedImage, what: str
    ) -> Claim:
        """Verify a simple-signing SIGNATURE with gpg; what it claims."""
        from syscontainers.trust.simple_signing import manifest_matches, parse_payload

        if self._verify is None:
            from syscontainers.trust.gpg import verify_signed_message

            self._verify = verify_signed_message
        verified = self._verify(cast(bytes, signature), keys, what)
        claim = parse_payload(verified.payload, what)
        digest_ok = manifest_matches(claim, image.manifest_bytes, image.manifest_digest)
        return Claim(digest_ok, claim.manifest_digest, claim.docker_reference)

    @staticmethod
    def _sigstore_claim(
        signature: object, keys: Sequence[bytes], image: ResolvedImage, what: str
    ) -> Claim:
        """Verify a sigstore signature layer (payload, annotations); what it claims."""
        from syscontainers.trust.sigstore import (
            parse_sigstore_payload,
            signature_from_layer,
            verify_sigstore,
        )

        payload, notes = cast(tuple[bytes, dict[str, str]], signature)
        layer = signature_from_layer(payload, notes, what)
        claim = parse_sigstore_payload(verify_sigstore(layer, keys, what), what)
        digest_ok = claim.manifest_digest == image.manifest_digest
        return Claim(digest_ok, claim.manifest_digest, claim.docker_reference)

    def _keys(self, req: Requirement, where: str) -> list[bytes]:
        keys = list(req.key_data)
        for path in req.key_paths:
            try:
                keys.append(self._read_key(path))
            except OSError as e:
                raise PolicyError(
                    f"{where} names the key file {path}, which cannot be read: {e.strerror}",
                    hint="fix keyPath in the policy or install the key",
                ) from e
        return keys


class Unchecked:
    """``--insecure-policy``: every image is accepted, whatever the policy says."""

    def check(self, source: ImageSource, image: ResolvedImage) -> None:
        """Accept IMAGE."""


def lookaside_signatures(registries_d: Path) -> SignatureLookup:
    """Signature lookup through the lookaside storage that REGISTRIES_D configures (read when a
    signature is first needed; HTTP goes through the registry package's client)."""

    def lookup(ref: Reference, manifest_digest: str) -> tuple[list[bytes], str]:
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
        from syscontainers.registry.http import get_optional

        found = read_signatures(
            config,
            ref,
            manifest_digest,
            lambda url: fetch_url(url, get_optional),
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
