"""Tests for syscontainers.trust.simple_signing: the payload parser, the signed-identity rules
(the cases of containers/image's policy_reference_match_test.go, ported by meaning) and the
manifest digest check."""

from __future__ import annotations

import hashlib
import json

import pytest

from syscontainers.errors import PolicyError
from syscontainers.reference import Reference, normalize, parse
from syscontainers.trust.model import IdentityKind, IdentityRule
from syscontainers.trust.simple_signing import (
    SignedClaim,
    identity_matches,
    manifest_matches,
    parse_payload,
)

WHAT = "signature 1 of example.com/app:1"

# Written by `skopeo standalone-sign` (skopeo 1.9.3) for MANIFEST as example.com/app:1.
MANIFEST = b'{"schemaVersion":2}\n'
MANIFEST_DIGEST = "sha256:659f7e41827e76690689ec414bf5796252f555ba52b34ecadabf1056cfe325f9"
SKOPEO_PAYLOAD = (
    b'{"critical":{"identity":{"docker-reference":"example.com/app:1"},"image":'
    b'{"docker-manifest-digest":"sha256:659f7e41827e76690689ec414bf5796252f555ba52b34ecadabf1056'
    b'cfe325f9"},"type":"atomic container signature"},"optional":{"creator":"atomic 5.23.1",'
    b'"timestamp":1795813774}}'
)

D1 = "@sha256:" + "0123456789abcdef" * 4
D2 = "@sha256:" + "a" * 64
RHEL = "registry.access.redhat.com/rhel7/rhel:7.2.3"
RHEL_UNTAGGED = "registry.access.redhat.com/rhel7/rhel"
INVALID = ("UPPERCASE_IS_INVALID_IN_DOCKER_REFERENCES", "", "INVALID")


def payload(critical: str | None = None, optional: str = "{}") -> bytes:
    """A payload with the given raw JSON for its two halves."""
    if critical is None:
        critical = (
            '{"type": "atomic container signature", '
            f'"image": {{"docker-manifest-digest": "{MANIFEST_DIGEST}"}}, '
            '"identity": {"docker-reference": "example.com/app:1"}}'
        )
    return f'{{"critical": {critical}, "optional": {optional}}}'.encode()


def critical(
    kind: str = '"atomic container signature"',
    image: str = f'{{"docker-manifest-digest": "{MANIFEST_DIGEST}"}}',
    identity: str = '{"docker-reference": "example.com/app:1"}',
) -> str:
    return f'{{"type": {kind}, "image": {image}, "identity": {identity}}}'


# ---- parse_payload -----------------------------------------------------------------------


def test_parses_what_skopeo_signs() -> None:
    claim = parse_payload(SKOPEO_PAYLOAD, WHAT)
    assert claim == SignedClaim(MANIFEST_DIGEST, "example.com/app:1", "atomic 5.23.1", 1795813774)


def test_payload_shape_matches_what_go_marshals() -> None:
    # The hand-written helper produces the same claim as the real payload.
    assert parse_payload(payload(), WHAT) == SignedClaim(MANIFEST_DIGEST, "example.com/app:1")


ACCEPTED = [
    # optional may be empty, or carry keys containers/image ignores
    (payload(optional="{}"), "", None),
    (payload(optional='{"x-vendor": {"a": [1, 2]}, "creator": "me"}'), "me", None),
    # timestamps are read as a float64 that must be integral
    (payload(optional='{"timestamp": 1e3}'), "", 1000),
    (payload(optional='{"timestamp": 7.0}'), "", 7),
    (payload(optional='{"timestamp": -5}'), "", -5),
    # JSON null leaves Go's value at its zero
    (payload(optional='{"creator": null, "timestamp": null}'), "", 0),
]


@pytest.mark.parametrize(("data", "creator", "timestamp"), ACCEPTED)
def test_accepts_optional_variants(data: bytes, creator: str, timestamp: int | None) -> None:
    claim = parse_payload(data, WHAT)
    assert (claim.creator, claim.timestamp) == (creator, timestamp)
    assert claim.manifest_digest == MANIFEST_DIGEST


@pytest.mark.parametrize(
    ("digest", "reference"),
    [
        ("sha512:" + "ab" * 64, "example.com/app:1"),
        ("sha384:" + "cd" * 48, "example.com/app:1"),
        (MANIFEST_DIGEST, "busybox:latest"),  # short names are docker.io names here
        (MANIFEST_DIGEST, "example.com/app"),  # parsable; identity rules refuse it later
    ],
)
def test_accepts_valid_digests_and_references(digest: str, reference: str) -> None:
    data = payload(
        critical(
            image=f'{{"docker-manifest-digest": "{digest}"}}',
            identity=f'{{"docker-reference": "{reference}"}}',
        )
    )
    assert parse_payload(data, WHAT) == SignedClaim(digest, reference)


GOOD_IMAGE = f'{{"docker-manifest-digest": "{MANIFEST_DIGEST}"}}'
GOOD_CRITICAL = critical()
REJECTED = {
    "not json": b"not json",
    "empty": b"",
    "array": b"[]",
    "bom": b"\xef\xbb\xbf" + payload(),
    "trailing data": payload() + b" {}",
    "two documents": payload() + payload(),
    "missing optional": f'{{"critical": {GOOD_CRITICAL}}}'.encode(),
    "missing critical": b'{"optional": {}}',
    "extra top key": f'{{"critical": {GOOD_CRITICAL}, "optional": {{}}, "x": 1}}'.encode(),
    "duplicate top key": f'{{"critical": {GOOD_CRITICAL}, "optional": {{}}, '
    f'"optional": {{}}}}'.encode(),
    "critical not object": payload('"x"'),
    "critical null": payload("null"),
    "critical missing type": payload(
        f'{{"image": {GOOD_IMAGE}, "identity": {{"docker-reference": "a.b/c:1"}}}}'
    ),
    "critical extra key": payload(critical()[:-1] + ', "extra": 1}'),
    "critical duplicate key": payload(critical()[:-1] + ', "type": "atomic container signature"}'),
    "wrong type": payload(critical(kind='"atomic container signature "')),
    "type case": payload(critical(kind='"Atomic container signature"')),
    "type not string": payload(critical(kind="1")),
    "type null": payload(critical(kind="null")),
    "image not object": payload(critical(image=f'"{MANIFEST_DIGEST}"')),
    "image null": payload(critical(image="null")),
    "image empty": payload(critical(image="{}")),
    "image extra key": payload(critical(image=GOOD_IMAGE[:-1] + ', "x": "y"}')),
    "digest not string": payload(critical(image='{"docker-manifest-digest": 1}')),
    "digest null": payload(critical(image='{"docker-manifest-digest": null}')),
    "digest short": payload(critical(image='{"docker-manifest-digest": "sha256:abc"}')),
    "digest upper hex": payload(
        critical(image=f'{{"docker-manifest-digest": "{MANIFEST_DIGEST.upper()}"}}')
    ),
    "digest unknown algorithm": payload(
        critical(image=f'{{"docker-manifest-digest": "md5:{"0" * 32}"}}')
    ),
    "digest without algorithm": payload(
        critical(image=f'{{"docker-manifest-digest": "{"0" * 64}"}}')
    ),
    "identity empty": payload(critical(identity="{}")),
    "identity extra key": payload(
        critical(identity='{"docker-reference": "a.b/c:1", "docker-repository": "a.b/c"}')
    ),
    "identity duplicate key": payload(
        critical(identity='{"docker-reference": "a.b/c:1", "docker-reference": "a.b/c:2"}')
    ),
    "reference not string": payload(critical(identity='{"docker-reference": ["a.b/c"]}')),
    "reference invalid": payload(critical(identity='{"docker-reference": "Example/App"}')),
    "reference empty": payload(critical(identity='{"docker-reference": ""}')),
    "optional null": payload(optional="null"),
    "optional not object": payload(optional="[]"),
    "optional duplicate key": payload(optional='{"creator": "a", "creator": "b"}'),
    "creator not string": payload(optional='{"creator": 1}'),
    "timestamp not number": payload(optional='{"timestamp": "1"}'),
    "timestamp fraction": payload(optional='{"timestamp": 1.5}'),
    "timestamp bool": payload(optional='{"timestamp": true}'),
    "timestamp too big": payload(optional='{"timestamp": 1e300}'),
    "timestamp overflow": payload(optional='{"timestamp": 1e400}'),
    "timestamp int64 overflow": payload(optional='{"timestamp": 9223372036854775808}'),
    "timestamp NaN": payload(optional='{"timestamp": NaN}'),
    "timestamp Infinity": payload(optional='{"timestamp": Infinity}'),
}


@pytest.mark.parametrize("data", REJECTED.values(), ids=REJECTED.keys())
def test_rejects_malformed_payloads(data: bytes) -> None:
    with pytest.raises(PolicyError) as err:
        parse_payload(data, WHAT)
    assert WHAT in err.value.message
    assert err.value.hint


def test_rejection_says_why() -> None:
    with pytest.raises(PolicyError, match=r"unknown key 'x'"):
        parse_payload(payload(critical(image=GOOD_IMAGE[:-1] + ', "x": "y"}')), WHAT)
    with pytest.raises(PolicyError, match="not 'atomic container signature'"):
        parse_payload(payload(critical(kind='"cosign"')), WHAT)


def test_invalid_utf8_in_a_string_is_replaced_as_go_does() -> None:
    data = payload(optional='{"creator": "a\xff"}'.replace("\xff", "@@")).replace(b"@@", b"\xff")
    assert parse_payload(data, WHAT).creator == "a\ufffd"


def test_huge_integer_timestamp_rounds_like_a_float64() -> None:
    claim = parse_payload(payload(optional='{"timestamp": 9007199254740993}'), WHAT)
    assert claim.timestamp == 9007199254740992


# ---- identity_matches --------------------------------------------------------------------


def named(text: str) -> Reference:
    """TEXT as docker's ParseNormalizedNamed reads it: docker.io defaults, no default tag."""
    ref = parse(text)
    full = normalize(Reference(ref.domain or "docker.io", ref.path))
    return Reference(full.domain, full.path, ref.tag, ref.digest)


def valid(text: str) -> bool:
    return text not in INVALID


# Symmetric: exact reference match (policy_reference_match_test.go prmExactMatchTestTable).
EXACT = [
    ("busybox:latest", "busybox:latest", True),
    (RHEL, RHEL, True),
    ("busybox" + D1, "busybox" + D1, True),
    ("library/busybox:latest", "busybox:latest", True),
    ("docker.io/library/busybox:latest", "busybox:latest", True),
    ("library/busybox" + D1, "busybox" + D1, True),
    ("busybox:latest", "busybox:notlatest", False),
    ("busybox:latest", "notbusybox:latest", False),
    ("busybox:latest", "hostname/library/busybox:notlatest", False),
    ("hostname/library/busybox:latest", "busybox:notlatest", False),
    ("busybox:latest", RHEL, False),
    ("busybox" + D1, "notbusybox" + D1, False),
    ("busybox:latest", "busybox" + D1, False),
    ("busybox" + D1, "busybox" + D2, False),
    ("busybox", "busybox:latest", False),
    ("busybox", "busybox" + D1, False),
    ("busybox", "busybox", False),
    ("busybox:latest" + D1, "busybox:latest" + D1, True),
    ("busybox:latest" + D1, "busybox:latest" + D2, False),
    ("busybox:latest" + D1, "busybox:notlatest" + D1, False),
    ("busybox:latest" + D1, "busybox" + D1, False),
    ("busybox:latest" + D1, "busybox:latest", False),
    ("UPPERCASE_IS_INVALID_IN_DOCKER_REFERENCES", "busybox:latest", False),
    ("", "UPPERCASE_IS_INVALID_IN_DOCKER_REFERENCES", False),
    ("INVALID", "INVALID", False),
]

# Symmetric: repository match (prmRepositoryMatchTestTable).
REPOSITORY = [
    ("busybox:latest", "busybox:latest", True),
    (RHEL, RHEL, True),
    ("busybox" + D1, "busybox" + D1, True),
    ("library/busybox:latest", "busybox:latest", True),
    ("docker.io/library/busybox:latest", "busybox:latest", True),
    ("library/busybox" + D1, "busybox" + D1, True),
    ("busybox:latest", "busybox:notlatest", True),
    (RHEL + "tagsuffix", RHEL, True),
    ("library/busybox:latest", "busybox:notlatest", True),
    ("busybox:latest", "library/busybox:notlatest", True),
    ("docker.io/library/busybox:notlatest", "busybox:latest", True),
    ("busybox:notlatest", "docker.io/library/busybox:latest", True),
    ("busybox:latest", "busybox" + D1, True),
    ("busybox" + D1, "busybox" + D2, True),
    ("busybox", "busybox:notlatest", True),
    (RHEL, RHEL_UNTAGGED, True),
    ("busybox", "busybox" + D1, True),
    ("library/busybox", "busybox", True),
    ("docker.io/library/busybox", "busybox", True),
    ("busybox:latest", "notbusybox:latest", False),
    ("hostname/library/busybox:latest", "busybox:notlatest", False),
    ("busybox:latest", RHEL, False),
    ("busybox" + D1, "notbusybox" + D1, False),
    ("busybox:latest" + D1, "busybox:latest" + D1, True),
    ("busybox:latest" + D1, "busybox:latest" + D2, True),
    ("busybox:latest" + D1, "busybox:notlatest" + D1, True),
    ("busybox:latest" + D1, "busybox" + D1, True),
    ("busybox:latest" + D1, "busybox:latest", True),
    ("UPPERCASE_IS_INVALID_IN_DOCKER_REFERENCES", "busybox:latest", False),
    ("", "UPPERCASE_IS_INVALID_IN_DOCKER_REFERENCES", False),
    ("INVALID", "INVALID", False),
]

# Asymmetric: (image, signed) for matchRepoDigestOrExact (matchRepoDigestOrExactTestTable).
REPO_DIGEST_OR_EXACT = [
    ("busybox:latest", "busybox:notlatest", False),
    (RHEL + "tagsuffix", RHEL, False),
    ("library/busybox:latest", "busybox:notlatest", False),
    ("busybox:latest", "library/busybox:notlatest", False),
    ("docker.io/library/busybox:notlatest", "busybox:latest", False),
    ("busybox:notlatest", "docker.io/library/busybox:latest", False),
    ("busybox", "busybox:latest", False),
    ("busybox:latest", "busybox", False),
    ("busybox", "busybox" + D1, False),
    ("busybox" + D1, "busybox", False),
    (RHEL, RHEL_UNTAGGED, False),
    ("busybox", "busybox", False),
    ("busybox:latest", "busybox" + D1, False),
    ("busybox" + D1, "busybox:latest", True),
    ("busybox" + D1, "busybox" + D2, True),
    ("busybox:latest" + D1, "busybox:latest", False),
    ("busybox:latest" + D1, "busybox:notlatest", False),
    ("busybox:latest", "busybox:latest" + D1, False),
    ("busybox:latest" + D1, "busybox:latest" + D2, False),
    ("busybox:latest" + D1, "busybox:notlatest" + D2, False),
]


def both_ways(table: list[tuple[str, str, bool]]) -> list[tuple[str, str, bool]]:
    """Each symmetric case in both directions, without those whose image ref is invalid."""
    cases = [(a, b, r) for a, b, r in table] + [(b, a, r) for a, b, r in table]
    return [(image, signed, r) for image, signed, r in cases if valid(image)]


def repo_digest_or_exact_cases() -> list[tuple[str, str, bool]]:
    """What exact matching accepts, what repository matching refuses, and the asymmetric rest."""
    accepted = [c for c in both_ways(EXACT) if c[2]]
    refused = [c for c in both_ways(REPOSITORY) if not c[2]]
    return accepted + refused + REPO_DIGEST_OR_EXACT


def check(kind: IdentityKind, image: str, signed: str, expected: bool) -> None:
    rule = IdentityRule(kind=kind)
    assert identity_matches(rule, named(image), signed) is expected, f"{image} vs {signed}"


@pytest.mark.parametrize(("image", "signed", "expected"), both_ways(EXACT))
def test_match_exact(image: str, signed: str, expected: bool) -> None:
    check(IdentityKind.MATCH_EXACT, image, signed, expected)


@pytest.mark.parametrize(("image", "signed", "expected"), repo_digest_or_exact_cases())
def test_match_repo_digest_or_exact(image: str, signed: str, expected: bool) -> None:
    check(IdentityKind.MATCH_REPO_DIGEST_OR_EXACT, image, signed, expected)


@pytest.mark.parametrize(("image", "signed", "expected"), both_ways(REPOSITORY))
def test_match_repository(image: str, signed: str, expected: bool) -> None:
    check(IdentityKind.MATCH_REPOSITORY, image, signed, expected)


ANY_IMAGE = Reference("unrelated.example", "never/matches", "1")


@pytest.mark.parametrize(("wanted", "signed", "expected"), EXACT + [(b, a, r) for a, b, r in EXACT])
def test_exact_reference(wanted: str, signed: str, expected: bool) -> None:
    rule = IdentityRule(kind=IdentityKind.EXACT_REFERENCE, reference=wanted)
    assert identity_matches(rule, ANY_IMAGE, signed) is expected


@pytest.mark.parametrize(
    ("wanted", "signed", "expected"), REPOSITORY + [(b, a, r) for a, b, r in REPOSITORY]
)
def test_exact_repository(wanted: str, signed: str, expected: bool) -> None:
    rule = IdentityRule(kind=IdentityKind.EXACT_REPOSITORY, repository=wanted)
    assert identity_matches(rule, ANY_IMAGE, signed) is expected


def remap(prefix: str, signed_prefix: str) -> IdentityRule:
    kind = IdentityKind.REMAP_IDENTITY
    return IdentityRule(kind=kind, prefix=prefix, signed_prefix=signed_prefix)


# (prefix, signed prefix, image, signed, result): TestPRMRemapIdentityMatchesDockerReference.
NOMATCH, REWRITTEN = "does-not-match.com", "does-not-match.rewritten"
MIRROR = "mirror.example"
REMAP = [
    (NOMATCH, REWRITTEN, "busybox:latest", "busybox:latest", True),
    (NOMATCH, REWRITTEN, "busybox:latest", "notbusybox:latest", False),
    ("mirror.example", "public.com", "mirror.example/busybox:1", "public.com/busybox:1", True),
    (MIRROR, "public.com", "mirror.example/busybox:1", "public.com/busybox:not1", False),
    (MIRROR, "docker.io/library", "mirror.example/busybox:latest", "busybox:latest", True),
    (MIRROR, "docker.io/library", "mirror.example/alpine:latest", "busybox:latest", False),
    ("docker.io/library", "original.com", "copied:latest", "original.com/copied:latest", True),
    ("docker.io/library", "original.com", "copied:latest", "original.com/ns/copied:latest", False),
    # prefix not a host name: it never matches, so nothing is rewritten
    ("busybox", "example.com/busybox", "busybox:latest", "example.com/busybox:latest", False),
    # signed prefix not a host name: the rewrite is not canonical
    ("docker.io/library/busybox", "busybox", "docker.io/library/busybox:latest", "busybox:latest",
     False),
    ("UPPERCASE", "example.com", "example.com/foo:latest", "example.com/foo:latest", True),
    ("example.com", "UPPERCASE", "example.com/foo:latest", "UPPERCASE/foo:latest", False),
]  # fmt: skip


@pytest.mark.parametrize(("prefix", "signed_prefix", "image", "signed", "expected"), REMAP)
def test_remap_identity(
    prefix: str, signed_prefix: str, image: str, signed: str, expected: bool
) -> None:
    assert identity_matches(remap(prefix, signed_prefix), named(image), signed) is expected


def bump(text: str) -> str:
    """TEXT with its first letter replaced by the next one (z wraps to a)."""
    first = text[0]
    return ("a" if first == "z" else chr(ord(first) + 1)) + text[1:]


@pytest.mark.parametrize(("image", "signed", "expected"), repo_digest_or_exact_cases())
def test_remap_identity_otherwise_is_repo_digest_or_exact(
    image: str, signed: str, expected: bool
) -> None:
    never = remap("never-causes-a-rewrite.example", "never-causes-a-rewrite.example")
    assert identity_matches(never, named(image), signed) is expected
    # Pull from a "mirror" whose name differs in its first letter, remapped back.
    original = named(image)
    mirrored = named(bump(str(original)))
    rule = remap(bump(original.domain), original.domain)
    assert identity_matches(rule, mirrored, signed) is expected


# (image, prefix, matches): TestPRMRemapIdentityRefMatchesPrefix. Checked through the rewrite
# to docker.io/library/signed-prefix: it matches exactly when the prefix applied.
PREFIXES = [
    ("docker.io/image", "docker.io", True),
    ("docker.io/image", "example.com", False),
    ("example.com:5000/image", "example.com:5000", True),
    ("example.com:50000/image", "example.com:5000", False),
    ("example.com:5000/image", "example.com", False),
    ("example.com/foo", "example.com", True),
    ("example.com/foo/bar", "example.com", True),
    ("example.com/foo/bar:baz", "example.com", True),
    ("example.com/foo/bar" + D1, "example.com", True),
    ("docker.io/ns/image", "docker.io/library", False),
    ("example.com/library", "docker.io/library", False),
    ("docker.io/libraryy/image", "docker.io/library", False),
    ("docker.io/library/busybox", "docker.io/library", True),
    ("example.com/ns/image", "example.com/ns", True),
    ("example.com/ns2/image", "example.com/ns", False),
    ("example.com/n2/image", "example.com/ns", False),
    ("example.com", "example.com/library/busybox", False),
    ("example.com:5000/ns/image", "example.com/ns", False),
    ("example.com/ns/image", "example.com:5000/ns", False),
    ("docker.io/library/busybox", "docker.io/library/busybox", True),
    ("example.com/library/busybox", "docker.io/library/busybox", False),
    ("docker.io/library/busybox2", "docker.io/library/busybox", False),
    ("example.com/ns/image", "example.com/ns/image", True),
    ("example.com/ns/imag2", "example.com/ns/image", False),
    ("example.com/ns/imagee", "example.com/ns/image", False),
    ("example.com:5000/ns/image", "example.com/ns/image", False),
    ("example.com/ns/image", "example.com:5000/ns/image", False),
    ("example.com/ns/image:tag", "example.com/ns/image", True),
    ("example.com/ns/image" + D1, "example.com/ns/image", True),
    ("example.com/ns/image:tag" + D1, "example.com/ns/image", True),
]


def tagged(text: str) -> Reference:
    """TEXT normalized, with a tag if it has neither tag nor digest (so that it can match)."""
    ref = named(text)
    return ref if ref.tag or ref.digest else Reference(ref.domain, ref.path, "t")


@pytest.mark.parametrize(("image", "prefix", "matches"), PREFIXES)
def test_remap_prefix_boundaries(image: str, prefix: str, matches: bool) -> None:
    ref = tagged(image)
    rewritten = "docker.io/library/signed-prefix" + str(ref)[len(prefix) :]
    rule = remap(prefix, "docker.io/library/signed-prefix")
    assert identity_matches(rule, ref, rewritten) is matches
    # Without the rewrite the image's own reference is what must be signed.
    assert identity_matches(rule, ref, str(ref)) is not matches


# (prefix, signed prefix, image, what the image is remapped to or "" if the rewrite is invalid):
# TestPRMRemapIdentityRemapReferencePrefix, checked by what the remapped image accepts.
REWRITES = [
    ("mirror.example", "vendor.example", "mirror.example/ns/image:tag",
     "vendor.example/ns/image:tag"),
    ("mirror.example", "vendor.example", "different.com/ns/image:tag",
     "different.com/ns/image:tag"),
    ("mirror.example/ns", "vendor.example/vendor-ns", "mirror.example/different-ns/image:tag",
     "mirror.example/different-ns/image:tag"),
    ("docker.io", "not-docker-signed.example/ns", "busybox",
     "not-docker-signed.example/ns/library/busybox"),
    ("example.com/mirror", "example.com/vendor", "example.com/mirror/image:tag",
     "example.com/vendor/image:tag"),
    ("example.com/ns/mirror", "example.com/ns/vendor", "example.com/ns/mirror:tag",
     "example.com/ns/vendor:tag"),
    ("mirror.example", "vendor.example", "prefixmirror.example/ns/image:tag",
     "prefixmirror.example/ns/image:tag"),
    ("docker.io", "not-docker-signed.example", "busybox",
     "not-docker-signed.example/library/busybox"),
    ("docker.io/library", "not-docker-signed.example/ns", "busybox",
     "not-docker-signed.example/ns/busybox"),
    ("docker.io/library/busybox", "not-docker-signed.example/ns/notbusybox", "busybox",
     "not-docker-signed.example/ns/notbusybox"),
    ("mirror.example", "vendor.example", "mirror.example/image", "vendor.example/image"),
    ("mirror.example", "vendor.example", "mirror.example/image" + D1, "vendor.example/image" + D1),
    ("mirror.example", "vendor.example", "mirror.example/image:tag" + D1,
     "vendor.example/image:tag" + D1),
    ("mirror.example/ns/image", "vendor.example:5000", "mirror.example/ns/image:tag", ""),
    ("mirror.example/ns/image", "vendor.example:5000", "mirror.example/ns/image" + D1, ""),
    ("mirror.example/ns/image", "notlocalhost", "mirror.example/ns/image:tag", ""),
]  # fmt: skip


@pytest.mark.parametrize(("prefix", "signed_prefix", "image", "expected"), REWRITES)
def test_remap_rewrites(prefix: str, signed_prefix: str, image: str, expected: str) -> None:
    rule = remap(prefix, signed_prefix)
    ref = named(image)
    if not expected:
        # An invalid rewrite accepts nothing, not even the image's own name.
        assert not identity_matches(rule, ref, str(ref))
        return
    if not (ref.tag or ref.digest):  # only a tagged or digested image can match at all
        ref, expected = Reference(ref.domain, ref.path, "t"), expected + ":t"
    assert identity_matches(rule, ref, expected)
    assert identity_matches(rule, ref, bump(expected)) is False


@pytest.mark.parametrize("signed", [*INVALID, "a" * 64, "example.com/" + "a" * 300 + ":1"])
def test_unparsable_signed_references_never_match(signed: str) -> None:
    image = Reference("example.com", "app", "1")
    for kind in IdentityKind:
        rule = IdentityRule(kind=kind, reference=signed, repository=signed, prefix="x.example",
                            signed_prefix="y.example")  # fmt: skip
        assert identity_matches(rule, image, signed) is False, kind


def test_registry_1_is_not_folded_into_docker_io() -> None:
    image = named("docker.io/library/busybox:1")
    rule = IdentityRule(kind=IdentityKind.MATCH_EXACT)
    assert identity_matches(rule, image, "index.docker.io/library/busybox:1")
    assert not identity_matches(rule, image, "registry-1.docker.io/library/busybox:1")


# ---- manifest_matches --------------------------------------------------------------------


def test_manifest_matches_the_signed_digest() -> None:
    claim = parse_payload(SKOPEO_PAYLOAD, WHAT)
    assert manifest_matches(claim, MANIFEST, MANIFEST_DIGEST)


@pytest.mark.parametrize(
    ("manifest", "digest"),
    [
        (MANIFEST + b" ", MANIFEST_DIGEST),  # one byte more: a different manifest
        (json.dumps(json.loads(MANIFEST)).encode(), MANIFEST_DIGEST),  # re-serialized
        (MANIFEST, "sha256:" + "0" * 64),  # the caller's digest is not of these bytes
    ],
)
def test_manifest_mismatch(manifest: bytes, digest: str) -> None:
    assert not manifest_matches(SignedClaim(MANIFEST_DIGEST, "example.com/app:1"), manifest, digest)


def test_manifest_claim_with_other_algorithm_never_matches() -> None:
    sha512 = "sha512:" + hashlib.sha512(MANIFEST).hexdigest()
    assert not manifest_matches(SignedClaim(sha512, "example.com/app:1"), MANIFEST, MANIFEST_DIGEST)
