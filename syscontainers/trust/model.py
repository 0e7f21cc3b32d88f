"""The trust policy's values: requirements and signed-identity rules of containers-policy.json(5).

``policy.py`` parses a policy file into these; ``check.py`` evaluates them for an image;
``simple_signing.py`` applies an ``IdentityRule`` to a signature's claimed reference.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

from syscontainers.record import record


class RequirementKind(Enum):
    """The ``type`` of a policy requirement."""

    ACCEPT_ANYTHING = "insecureAcceptAnything"
    REJECT = "reject"
    SIGNED_BY = "signedBy"  # GPG simple signing
    SIGSTORE_SIGNED = "sigstoreSigned"  # parsed, but not verified yet: it refuses


class IdentityKind(Enum):
    """The ``signedIdentity.type`` of a signedBy / sigstoreSigned requirement."""

    MATCH_EXACT = "matchExact"
    MATCH_REPO_DIGEST_OR_EXACT = "matchRepoDigestOrExact"
    MATCH_REPOSITORY = "matchRepository"
    EXACT_REFERENCE = "exactReference"
    EXACT_REPOSITORY = "exactRepository"
    REMAP_IDENTITY = "remapIdentity"


@record
class IdentityRule:
    """Which signed reference is acceptable for the image being pulled."""

    kind: IdentityKind = IdentityKind.MATCH_REPO_DIGEST_OR_EXACT
    reference: str = ""  # EXACT_REFERENCE: dockerReference
    repository: str = ""  # EXACT_REPOSITORY: dockerRepository
    prefix: str = ""  # REMAP_IDENTITY
    signed_prefix: str = ""  # REMAP_IDENTITY


@record
class Requirement:
    """One requirement; every requirement that applies to an image must be satisfied."""

    kind: RequirementKind
    key_type: str = ""  # SIGNED_BY: "GPGKeys" (the only type containers/image implements)
    key_paths: tuple[Path, ...] = ()  # keyPath / keyPaths, absolute
    key_data: tuple[bytes, ...] = ()  # keyData, decoded from base64
    identity: IdentityRule = IdentityRule()
    # SIGSTORE_SIGNED: what it asks for that syscontainers cannot check (Fulcio, PKI, Rekor);
    # such a requirement refuses every image rather than accept without the check
    unsupported: str = ""


@record
class Policy:
    """A whole policy: the default requirements and the per-transport scopes."""

    default: tuple[Requirement, ...]
    # transport name ("docker", "oci", "oci-archive", "docker-archive", …) -> scope -> requirements;
    # the scope "" is the transport's own default.
    transports: tuple[tuple[str, tuple[tuple[str, tuple[Requirement, ...]], ...]], ...] = ()
    origin: str = ""  # where it was read from, for messages

    def scopes(self, transport: str) -> dict[str, tuple[Requirement, ...]]:
        """The scopes of TRANSPORT (empty if the policy names none)."""
        for name, scopes in self.transports:
            if name == transport:
                return dict(scopes)
        return {}
