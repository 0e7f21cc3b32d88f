"""Simple signing: the "atomic container signature" payload, its identity rules and its digest.

Pure functions, no I/O. ``gpg.py`` verifies the OpenPGP envelope and hands over the signed
bytes; this module reads them exactly as containers/image's ``signature/simple.go`` does and
decides, as ``signature/policy_reference_match.go`` does, whether the reference the signature
claims is acceptable for the image being pulled.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from syscontainers.errors import PolicyError, ReferenceParseError
from syscontainers.hashing import sha256
from syscontainers.record import record
from syscontainers.reference import DOCKER_HUB, Reference, normalize, parse
from syscontainers.trust.model import IdentityKind, IdentityRule
from syscontainers.trust.payload import critical_claim, exact_fields, load, optional_fields

SIGNATURE_TYPE = "atomic container signature"

_HEX64 = re.compile(r"[a-f0-9]{64}")
_NAME_MAX = 255  # the distribution grammar's limit on a repository name
_PAYLOAD_HINT = "the signature was not made by skopeo/podman simple signing, or is corrupt"


@record
class SignedClaim:
    """What a verified simple-signing payload says about the image."""

    manifest_digest: str  # critical.image."docker-manifest-digest"
    docker_reference: str  # critical.identity."docker-reference"
    creator: str = ""  # optional.creator
    timestamp: int | None = None  # optional.timestamp


# ---- the payload -------------------------------------------------------------------------


def parse_payload(payload: bytes, what: str) -> SignedClaim:
    """Parse a simple-signing PAYLOAD strictly; raise PolicyError naming WHAT if it is malformed."""

    def fail(reason: str) -> PolicyError:
        return PolicyError(f"{what} has an invalid payload: {reason}", hint=_PAYLOAD_HINT)

    document = load(payload, fail)
    top = exact_fields(document, ("critical", "optional"), "the payload", fail)
    creator, timestamp = optional_fields(top["optional"], fail)
    digest, reference = critical_claim(top["critical"], SIGNATURE_TYPE, fail)
    if _parse_normalized_named(reference) is None:
        raise fail(f"docker-reference {reference!r} is not a valid image reference")
    return SignedClaim(digest, reference, creator, timestamp)


# ---- identity ----------------------------------------------------------------------------


def _parse_normalized_named(text: str) -> Reference | None:
    """TEXT as docker's ParseNormalizedNamed reads it (docker.io defaults, no default tag)."""
    if _HEX64.fullmatch(text):
        return None  # an image ID, not a name
    try:
        ref = parse(text)
        base = Reference(ref.domain or DOCKER_HUB, ref.path)
        # containers/image folds only index.docker.io into docker.io, not registry-1.docker.io.
        named = base if base.domain == "registry-1.docker.io" else normalize(base)
    except ReferenceParseError:
        return None
    if len(named.name) > _NAME_MAX:
        return None
    return Reference(named.domain, named.path, ref.tag, ref.digest)


def _parse_named(text: str) -> Reference | None:
    """TEXT as docker's ParseNamed reads it: only if it is already in canonical form."""
    ref = _parse_normalized_named(text)
    return ref if ref is not None and str(ref) == text else None


def _name_only(ref: Reference) -> bool:
    return not ref.tag and not ref.digest


def _exact(intended: Reference, signed: Reference) -> bool:
    """Same name, tag and digest; a reference without tag or digest never matches."""
    if _name_only(intended) or _name_only(signed):
        return False
    return str(signed) == str(intended)


def _repo_digest_or_exact(intended: Reference, signed: Reference) -> bool:
    """A digest-only INTENDED accepts any SIGNED of its repository; a tagged one needs _exact."""
    if _name_only(signed):
        return False
    if intended.tag:  # also when it carries a digest as well
        return str(signed) == str(intended)
    if intended.digest:
        # The signed digest is checked against the manifest separately (manifest_matches).
        return signed.name == intended.name
    return False


def _prefix_matches(name: str, prefix: str) -> bool:
    """Whether the repository NAME is PREFIX or lies under it (at a '/' boundary)."""
    if len(name) <= len(prefix):
        return name == prefix
    return name.startswith(prefix) and name[len(prefix)] == "/"


def _remap(rule: IdentityRule, intended: Reference) -> Reference | None:
    """INTENDED with rule.prefix rewritten to rule.signed_prefix; None if that is not canonical."""
    if not _prefix_matches(intended.name, rule.prefix):
        return intended
    return _parse_named(rule.signed_prefix + str(intended)[len(rule.prefix) :])


def _match_exact(rule: IdentityRule, intended: Reference, signed: Reference) -> bool:
    return _exact(intended, signed)


def _match_repo_digest_or_exact(rule: IdentityRule, intended: Reference, signed: Reference) -> bool:
    return _repo_digest_or_exact(intended, signed)


def _match_repository(rule: IdentityRule, intended: Reference, signed: Reference) -> bool:
    return signed.name == intended.name


def _exact_reference(rule: IdentityRule, intended: Reference, signed: Reference) -> bool:
    wanted = _parse_normalized_named(rule.reference)
    return wanted is not None and _exact(wanted, signed)


def _exact_repository(rule: IdentityRule, intended: Reference, signed: Reference) -> bool:
    wanted = _parse_normalized_named(rule.repository)
    return wanted is not None and signed.name == wanted.name


def _remap_identity(rule: IdentityRule, intended: Reference, signed: Reference) -> bool:
    remapped = _remap(rule, intended)
    return remapped is not None and _repo_digest_or_exact(remapped, signed)


_MATCHERS: dict[IdentityKind, Callable[[IdentityRule, Reference, Reference], bool]] = {
    IdentityKind.MATCH_EXACT: _match_exact,
    IdentityKind.MATCH_REPO_DIGEST_OR_EXACT: _match_repo_digest_or_exact,
    IdentityKind.MATCH_REPOSITORY: _match_repository,
    IdentityKind.EXACT_REFERENCE: _exact_reference,
    IdentityKind.EXACT_REPOSITORY: _exact_repository,
    IdentityKind.REMAP_IDENTITY: _remap_identity,
}


def identity_matches(rule: IdentityRule, image_ref: Reference, signed_ref: str) -> bool:
    """Whether a signature claiming SIGNED_REF is acceptable for IMAGE_REF under RULE."""
    signed = _parse_normalized_named(signed_ref)
    if signed is None:
        return False
    return _MATCHERS[rule.kind](rule, image_ref, signed)


# ---- manifest ----------------------------------------------------------------------------


def manifest_matches(claim: SignedClaim, manifest_bytes: bytes, manifest_digest: str) -> bool:
    """Whether CLAIM signs exactly MANIFEST_BYTES (whose digest the caller says is MANIFEST_DIGEST).

    Only schema2/OCI manifests: their digest is the sha256 of the bytes as they are.
    """
    actual = "sha256:" + sha256(manifest_bytes).hexdigest()
    return claim.manifest_digest == actual and manifest_digest == actual
