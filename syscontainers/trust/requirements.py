"""Policy requirement types: how each ``type`` of containers-policy.json(5) checks an image.

Each type implements ``RequirementType`` (as containers/image's PolicyRequirement):
``insecureAcceptAnything`` accepts, ``reject`` refuses, and the two signature types share one
flow (``_Signed``): find the image's signatures, verify each with the requirement's keys, and
accept the first whose claim names the pulled manifest and a reference the requirement's
``signedIdentity`` accepts. ``SignedBy`` reads simple-signing signatures (lookaside storage,
gpg); ``SigstoreSigned`` reads cosign signature layers (registry attachments, public keys) and
refuses what needs Fulcio, PKI or Rekor. ``check.PolicyChecker`` picks the type of each
requirement from a table.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from syscontainers.errors import PolicyError, SysContainersError
from syscontainers.record import record
from syscontainers.reference import Reference
from syscontainers.sources import ImageSource, ResolvedImage
from syscontainers.trust.model import Requirement

if TYPE_CHECKING:
    from syscontainers.trust.gpg import Verified

# (source, normalized reference, manifest digest) -> (signatures, where they were looked for)
SignatureLookup = Callable[[ImageSource, Reference, str], tuple[list[bytes], str]]
SigstoreLayer = tuple[bytes, dict[str, str]]  # a cosign signature layer: payload, annotations
# (source, normalized reference, manifest digest) -> (signature layers, where they were looked)
SigstoreLookup = Callable[[ImageSource, Reference, str], tuple[list[SigstoreLayer], str]]
S = TypeVar("S")  # a signature scheme's signature
Verifier = Callable[[bytes, Sequence[bytes], str], "Verified"]
MAX_REASONS = 3  # the reasons an error lists when several signatures failed


@record
class Subject:
    """What the policy is asked about: a transport's view of one image."""

    transport: str
    identity: str
    namespaces: tuple[str, ...]
    reference: Reference | None  # docker only: the image reference, for identities and lookaside
    label: str  # for messages


@record
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
            f"{what} is for manifest {claim.manifest_digest}, not {image.manifest_digest}",
            hint="the signature was made for another image; do not use this one, and tell "
            "whoever serves its signatures",
        )
    if not identity_matches(req.identity, ref, claim.docker_reference):
        raise PolicyError(
            f"{what} names {claim.docker_reference}, which the policy's signedIdentity "
            f"({req.identity.kind.value}) does not accept for {ref}",
            hint=f"pull it by the name it was signed as ({claim.docker_reference}), or widen "
            "signedIdentity in the policy (e.g. matchRepository)",
        )


@record
class Case:
    """One image being checked against one scope's requirements."""

    source: ImageSource
    subject: Subject
    image: ResolvedImage
    where: str  # the policy and scope, for messages


class RequirementType(Protocol):
    """One ``type`` of policy requirement: it knows how to check an image against a requirement
    of its type (containers/image's PolicyRequirement)."""

    def enforce(self, req: Requirement, case: Case) -> None:
        """Raise PolicyError unless CASE's image meets REQ."""


class AcceptAnything:
    """``insecureAcceptAnything``: every image."""

    def enforce(self, req: Requirement, case: Case) -> None:
        """Accept the image."""


class Reject:
    """``reject``: no image."""

    def enforce(self, req: Requirement, case: Case) -> None:
        """Refuse the image."""
        raise PolicyError(
            f"{case.subject.label} is rejected by {case.where}",
            hint="the policy refuses every image of this scope; change it if this is wrong",
        )


class _Signed(ABC, Generic[S]):
    """A requirement met by one signature of the image that verifies with one of its keys and
    whose claim names the pulled manifest and a reference the requirement's signedIdentity
    accepts. Subclasses say where signatures (of type S) are found and how one is verified."""

    kind = "signature"
    missing_hint = ""

    def __init__(self, read_key: Callable[[Path], bytes]) -> None:
        self._read_key = read_key

    @abstractmethod
    def find(self, case: Case, ref: Reference) -> tuple[Sequence[S], str]:
        """The image's signatures, and where they were looked for."""

    @abstractmethod
    def claim(self, signature: S, keys: Sequence[bytes], image: ResolvedImage, what: str) -> Claim:
        """Verify SIGNATURE with KEYS; what it claims."""

    def refuse_unsupported(self, req: Requirement, case: Case) -> None:
        """Raise PolicyError if REQ asks for checks that cannot be made."""

    def enforce(self, req: Requirement, case: Case) -> None:
        """Accept the image if one of its signatures meets REQ."""
        self.refuse_unsupported(req, case)
        subject, image = case.subject, case.image
        ref = subject.reference
        if ref is None:
            raise PolicyError(
                f"{case.where} requires a {self.kind} for {subject.label}, but "
                f"{subject.transport}: images carry no signatures",
                hint="pull the signed image from its registry, or accept this scope with "
                "insecureAcceptAnything in the policy",
            )
        # gpg, sigstore, payloads and lookaside load only from here: most pulls need none.
        keys = self._keys(req, case.where)
        found, looked = self.find(case, ref)
        if not found:
            raise PolicyError(
                f"{case.where} requires a {self.kind} for {subject.label} "
                f"({image.manifest_digest}), but there is none ({looked})",
                hint=self.missing_hint,
            )
        reasons = []
        for i, signature in enumerate(found, 1):
            what = f"{self.kind} {i} of {subject.label}"
            try:
                _check_claim(self.claim(signature, keys, image, what), req, ref, image, what)
                return
            except SysContainersError as e:
                reasons.append(e.message)
        shown = "; ".join(reasons[:MAX_REASONS])
        more = f" (and {len(reasons) - MAX_REASONS} more)" if len(reasons) > MAX_REASONS else ""
        raise PolicyError(
            f"no signature of {subject.label} satisfies {case.where}: {shown}{more}",
            hint="check that the image was signed by a key the policy names, for this name "
            "and this manifest",
        )

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


class SignedBy(_Signed[bytes]):
    """``signedBy``: simple-signing signatures from lookaside storage, verified by gpg."""

    missing_hint = (
        "sign the image (skopeo copy --sign-by) and publish the signature where "
        "registries.d points, or check the lookaside URL in registries.d"
    )

    def __init__(
        self,
        signatures: SignatureLookup,
        verify: Verifier | None,
        read_key: Callable[[Path], bytes],
    ) -> None:
        super().__init__(read_key)
        self._signatures = signatures
        self._verify = verify

    def find(self, case: Case, ref: Reference) -> tuple[Sequence[bytes], str]:
        """The lookaside signatures of the image."""
        return self._signatures(case.source, ref, case.image.manifest_digest)

    def claim(
        self, signature: bytes, keys: Sequence[bytes], image: ResolvedImage, what: str
    ) -> Claim:
        """Verify a simple-signing SIGNATURE with gpg; what it claims."""
        from syscontainers.trust.simple_signing import manifest_matches, parse_payload

        if self._verify is None:
            from syscontainers.trust.gpg import verify_signed_message

            self._verify = verify_signed_message
        verified = self._verify(signature, keys, what)
        claim = parse_payload(verified.payload, what)
        digest_ok = manifest_matches(claim, image.manifest_bytes, image.manifest_digest)
        return Claim(digest_ok, claim.manifest_digest, claim.docker_reference)


class SigstoreSigned(_Signed[SigstoreLayer]):
    """``sigstoreSigned`` with public keys: cosign signature layers attached in the registry."""

    kind = "sigstore signature"
    missing_hint = (
        "sign the image (cosign, or skopeo --sign-by-sigstore-private-key), and set "
        "use-sigstore-attachments: true for its registry in registries.d"
    )

    def __init__(self, sigstore: SigstoreLookup | None, read_key: Callable[[Path], bytes]) -> None:
        super().__init__(read_key)
        self._sigstore = sigstore

    def refuse_unsupported(self, req: Requirement, case: Case) -> None:
        """Refuse a requirement that needs Fulcio, PKI or Rekor checks."""
        if req.unsupported:
            raise PolicyError(
                f"{case.where} requires sigstore signatures checked with {req.unsupported} for "
                f"{case.subject.label}, which syscontainers cannot check",
                hint="verify with public keys (keyPath / keyData) only, or pull with "
                "--insecure-policy if you trust the source",
            )

    def find(self, case: Case, ref: Reference) -> tuple[Sequence[SigstoreLayer], str]:
        """The cosign signature layers attached to the image."""
        if self._sigstore is None:
            return [], "no sigstore signatures are looked for"
        return self._sigstore(case.source, ref, case.image.manifest_digest)

    def claim(
        self, signature: SigstoreLayer, keys: Sequence[bytes], image: ResolvedImage, what: str
    ) -> Claim:
        """Verify a sigstore signature layer (payload, annotations); what it claims."""
        from syscontainers.trust.sigstore import (
            parse_sigstore_payload,
            signature_from_layer,
            verify_sigstore,
        )

        payload, notes = signature
        layer = signature_from_layer(payload, notes, what)
        claim = parse_sigstore_payload(verify_sigstore(layer, keys, what), what)
        digest_ok = claim.manifest_digest == image.manifest_digest
        return Claim(digest_ok, claim.manifest_digest, claim.docker_reference)
