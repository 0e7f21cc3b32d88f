"""Simple signing: the "atomic container signature" payload, its identity rules and its digest.

Pure functions, no I/O. ``gpg.py`` verifies the OpenPGP envelope and hands over the signed
bytes; this module reads them exactly as containers/image's ``signature/simple.go`` does and
decides, as ``signature/policy_reference_match.go`` does, whether the reference the signature
claims is acceptable for the image being pulled.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from syscontainers.errors import PolicyError, ReferenceParseError
from syscontainers.reference import DOCKER_HUB, Reference, normalize, parse
from syscontainers.trust.model import IdentityKind, IdentityRule

SIGNATURE_TYPE = "atomic container signature"

# go-digest's algorithms and the length of their hex encodings.
_DIGEST_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
_HEX64 = re.compile(r"[a-f0-9]{64}")
_NAME_MAX = 255  # the distribution grammar's limit on a repository name
_INT64_LIMIT = 2**63
_PAYLOAD_HINT = "the signature was not made by skopeo/podman simple signing, or is corrupt"


@dataclass(frozen=True, slots=True)
class SignedClaim:
    """What a verified simple-signing payload says about the image."""

    manifest_digest: str  # critical.image."docker-manifest-digest"
    docker_reference: str  # critical.identity."docker-reference"
    creator: str = ""  # optional.creator
    timestamp: int | None = None  # optional.timestamp


class _Pairs(list[tuple[str, object]]):
    """A JSON object as its key/value pairs in order, so that duplicate keys can be refused."""


# ---- the payload -------------------------------------------------------------------------


def parse_payload(payload: bytes, what: str) -> SignedClaim:
    """Parse a simple-signing PAYLOAD strictly; raise PolicyError naming WHAT if it is malformed."""

    def fail(reason: str) -> PolicyError:
        return PolicyError(f"{what} has an invalid payload: {reason}", hint=_PAYLOAD_HINT)

    def refuse_constant(name: str) -> object:
        raise fail(f"{name} is not valid JSON")

    # Go's decoder replaces invalid UTF-8 inside strings and refuses it elsewhere; so does this.
    try:
        document = json.loads(
            payload.decode("utf-8", errors="replace"),
            object_pairs_hook=_Pairs,
            parse_constant=refuse_constant,
        )
    except (ValueError, RecursionError) as e:
        raise fail(f"it is not JSON ({e})") from e
    top = _exact_fields(document, ("critical", "optional"), "the payload", fail)
    creator, timestamp = _optional(top["optional"], fail)
    digest, reference = critical_claim(top["critical"], SIGNATURE_TYPE, fail)
    if _parse_normalized_named(reference) is None:
        raise fail(f"docker-reference {reference!r} is not a valid image reference")
    return SignedClaim(digest, reference, creator, timestamp)


def _object(value: object, where: str, fail: Callable[[str], PolicyError]) -> dict[str, object]:
    """VALUE as a JSON object without duplicate keys."""
    if not isinstance(value, _Pairs):
        raise fail(f"{where} is not a JSON object")
    fields: dict[str, object] = {}
    for key, item in value:
        if key in fields:
            raise fail(f"{where} has the key {key!r} twice")
        fields[key] = item
    return fields


def critical_claim(
    value: object, expected_type: str, fail: Callable[[str], PolicyError]
) -> tuple[str, str]:
    """The (manifest digest, docker reference) of a payload's ``critical`` object, which must
    hold exactly type (EXPECTED_TYPE), image.docker-manifest-digest and
    identity.docker-reference: the part simple signing and sigstore payloads share."""
    critical = _exact_fields(value, ("type", "image", "identity"), "critical", fail)
    kind = _string(critical["type"], "critical.type", fail)
    if kind != expected_type:
        raise fail(f"critical.type is {kind!r}, not {expected_type!r}")
    image = _exact_fields(critical["image"], ("docker-manifest-digest",), "critical.image", fail)
    digest = _string(image["docker-manifest-digest"], "docker-manifest-digest", fail)
    if not _valid_digest(digest):
        raise fail(f"docker-manifest-digest {digest!r} is not a valid digest")
    identity = _exact_fields(critical["identity"], ("docker-reference",), "critical.identity", fail)
    return digest, _string(identity["docker-reference"], "docker-reference", fail)


def _exact_fields(
    value: object, names: tuple[str, ...], where: str, fail: Callable[[str], PolicyError]
) -> dict[str, object]:
    """VALUE as a JSON object with exactly the keys NAMES."""
    fields = _object(value, where, fail)
    for key in fields:
        if key not in names:
            raise fail(f"{where} has an unknown key {key!r}")
    for key in names:
        if key not in fields:
            raise fail(f"{where} lacks the key {key!r}")
    return fields


def _string(value: object, where: str, fail: Callable[[str], PolicyError]) -> str:
    """VALUE as a string; JSON null reads as "", as Go's decoder leaves the string unset."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise fail(f"{where} is not a string")
    return value


def _optional(value: object, fail: Callable[[str], PolicyError]) -> tuple[str, int | None]:
    """The creator and timestamp of the "optional" object; other keys there are ignored."""
    fields = _object(value, "optional", fail)
    creator = _string(fields.get("creator"), "optional.creator", fail)
    if "timestamp" not in fields:
        return creator, None
    raw = fields["timestamp"]
    if raw is None:  # Go leaves its float64 at zero
        return creator, 0
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise fail("optional.timestamp is not a number")
    try:
        number = float(raw)  # Go reads it as a float64: big integers round, as there
    except OverflowError as e:
        raise fail("optional.timestamp is out of range") from e
    if not math.isfinite(number) or number != math.floor(number):
        raise fail("optional.timestamp is not an integer")
    if not -_INT64_LIMIT <= number < _INT64_LIMIT:
        raise fail("optional.timestamp is not an integer")
    return creator, int(number)


def _valid_digest(text: str) -> bool:
    """Whether TEXT is ALGORITHM:HEX for an algorithm go-digest knows."""
    algorithm, sep, encoded = text.partition(":")
    size = _DIGEST_HEX_LENGTHS.get(algorithm)
    return bool(sep) and size is not None and len(encoded) == size and _is_lower_hex(encoded)


def _is_lower_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


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
    actual = "sha256:" + hashlib.sha256(manifest_bytes).hexdigest()
    return claim.manifest_digest == actual and manifest_digest == actual
