"""Sigstore (cosign) signatures: verifying one with the policy's public keys, and its payload.

A cosign signature is a layer of a signature manifest: the layer blob is a JSON payload
(``parse_sigstore_payload``) and the layer's ``dev.cosignproject.cosign/signature`` annotation
is a base64 signature over exactly those bytes (``verify_sigstore``). This module accepts and
refuses what containers/image does for a ``sigstoreSigned`` requirement with
keyPath/keyPaths/keyData/keyDatas and no Rekor key (``signature/policy_eval_sigstore.go``,
``signature/internal/sigstore_payload.go`` and sigstore's ``LoadVerifier(key, SHA256)``):

- keys: the first PEM block of each, as Go's ``encoding/pem`` finds it: "PUBLIC KEY" (PKIX)
  or "RSA PUBLIC KEY" (PKCS#1), in the exact DER that Go's x509 reads. ECDSA on P-224, P-256,
  P-384 or P-521 (always with SHA-256, whatever the curve: containers/image hard-codes it),
  RSA PKCS#1 v1.5 with SHA-256 (not PSS), and Ed25519. A key that cannot be read or used
  refuses every signature, even one that another key verifies, so that a broken fallback
  key is noticed before it is needed.
- ECDSA signatures: ASN.1 DER, or IEEE P1363 (r||s) when they do not start like DER.
- Fulcio certificates and Rekor bundles in the annotations are ignored: with plain keys and
  no Rekor key containers/image does not look at them either.

Pure functions, no I/O. ``cryptography`` is imported only when a signature is verified.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from syscontainers.errors import PolicyError
from syscontainers.record import record
from syscontainers.trust.payload import critical_claim, exact_fields, load, optional_fields

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

    _Key = RSAPublicKey | EllipticCurvePublicKey | Ed25519PublicKey

# The media type of a signature layer, and its annotations (cosign's names).
SIGNATURE_MIME_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle"
CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
CHAIN_ANNOTATION = "dev.sigstore.cosign/chain"
PAYLOAD_TYPE = "cosign container image signature"

# Go's x509 reads these curves; anything else is "unsupported elliptic curve".
_CURVES = ("secp224r1", "secp256r1", "secp384r1", "secp521r1")
_RSA_MIN_BITS = 1024  # Go >= 1.24 refuses smaller RSA keys when verifying
_P1363_MAX = 132  # two P-521 scalars
_PEM_BEGIN = b"-----BEGIN "
_PEM_END = b"\n-----END "
_DASHES = b"-----"
_KEY_HINT = (
    'keyPath/keyData must hold a PEM public key ("PUBLIC KEY" or "RSA PUBLIC KEY"), '
    "ECDSA P-224/P-256/P-384/P-521, RSA or Ed25519, such as cosign.pub"
)
_PAYLOAD_HINT = "the signature was not made by cosign or by podman/skopeo sigstore signing"


@record
class SigstoreSignature:
    """One cosign signature: a signature layer's blob and annotations."""

    payload: bytes  # the layer blob: the JSON payload that was signed
    signature_b64: str  # annotation "dev.cosignproject.cosign/signature"
    annotations: tuple[tuple[str, str], ...] = ()  # all annotations of that layer


@record
class SigstoreClaim:
    """What a verified sigstore payload says about the image."""

    manifest_digest: str  # critical.image."docker-manifest-digest"
    docker_reference: str  # critical.identity."docker-reference"


class _Unusable(Exception):
    """A policy key that cannot be read or used (translated to PolicyError by the caller)."""


def signature_from_layer(
    payload: bytes, annotations: Mapping[str, str], what: str
) -> SigstoreSignature:
    """The signature in a layer with PAYLOAD and ANNOTATIONS; PolicyError naming WHAT if the
    layer has no signature annotation."""
    if SIGNATURE_ANNOTATION not in annotations:
        raise PolicyError(
            f"{what} is refused: its layer has no {SIGNATURE_ANNOTATION} annotation",
            hint="the signature manifest was not written by cosign, or is corrupt",
        )
    pairs = tuple(sorted(annotations.items()))
    return SigstoreSignature(payload, annotations[SIGNATURE_ANNOTATION], pairs)


# ---- verification ------------------------------------------------------------------------


def verify_sigstore(sig: SigstoreSignature, public_keys: Sequence[bytes], what: str) -> bytes:
    """SIG's payload if its signature verifies with one of PUBLIC_KEYS (PEM); else PolicyError."""
    if not public_keys:
        raise PolicyError(
            f"{what} is refused: the policy gives no public key to verify it with",
            hint="syscontainers verifies sigstore signatures with keyPath, keyPaths, keyData or "
            "keyDatas only; Fulcio and PKI certificates are not supported",
        )
    keys = []
    for index, pem in enumerate(public_keys, 1):
        try:
            keys.append(_load_key(pem))
        except _Unusable as e:
            raise PolicyError(
                f"{what} is refused: public key {index} of the policy is unusable: {e}",
                hint=_KEY_HINT,
            ) from None
    signature = _std_base64(sig.signature_b64.encode("utf-8", errors="replace"))
    if signature is None:
        raise PolicyError(
            f"{what} is refused: its {SIGNATURE_ANNOTATION} annotation is not valid base64",
            hint="the signature layer is corrupt; sign the image again",
        )
    failures = [_verify_with(key, signature, sig.payload) for key in keys]
    if None in failures:
        return sig.payload
    which = "the public key" if len(keys) == 1 else f"any of the {len(keys)} public keys"
    raise PolicyError(
        f"{what} is refused: its signature does not verify with {which} of the policy "
        f"({'; '.join(str(f) for f in failures)})",
        hint="the image was signed with another key, or the signature or its payload was "
        "altered; check keyPath/keyData in the policy",
    )


def _verify_with(key: _Key, signature: bytes, payload: bytes) -> str | None:
    """None if SIGNATURE is KEY's signature of PAYLOAD, else why not."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    try:
        if isinstance(key, rsa.RSAPublicKey):
            if key.key_size < _RSA_MIN_BITS:
                return f"{_describe(key)}: keys under {_RSA_MIN_BITS} bits are insecure"
            key.verify(signature, payload, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(key, ec.EllipticCurvePublicKey):
            der = _ecdsa_der(signature)
            if der is None:
                return f"{_describe(key)}: not a DER or IEEE P1363 ECDSA signature"
            key.verify(der, payload, ec.ECDSA(hashes.SHA256()))
        else:
            key.verify(signature, payload)
    except InvalidSignature:
        return f"{_describe(key)}: invalid signature"
    return None


def _describe(key: _Key) -> str:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if isinstance(key, rsa.RSAPublicKey):
        return f"{key.key_size}-bit RSA key"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"ECDSA {key.curve.name} key"
    return "Ed25519 key"


def _ecdsa_der(signature: bytes) -> bytes | None:
    """SIGNATURE as DER for OpenSSL: as it is if it starts like a DER (r, s) pair, else from
    r||s (what sigstore's verifier does); None if it is neither."""
    if _starts_as_der_pair(signature):
        return signature  # verified strictly: trailing bytes fail, as in Go's VerifyASN1
    if not signature or len(signature) > _P1363_MAX or len(signature) % 2:
        return None
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    half = len(signature) // 2
    r, s = (int.from_bytes(part, "big") for part in (signature[:half], signature[half:]))
    return encode_dss_signature(r, s)


def _starts_as_der_pair(data: bytes) -> bool:
    """Whether DATA starts with SEQUENCE { INTEGER, INTEGER, ... }, read as Go's encoding/asn1
    does (minimal lengths and integers; more elements and trailing bytes allowed)."""
    outer = _der_element(data, 0)
    if outer is None or data[0] != 0x30:
        return False
    inner, offset = data[outer[0] : outer[1]], 0
    for _ in range(2):
        element = _der_element(inner, offset)
        if element is None or inner[offset] != 0x02:
            return False
        start, offset = element
        if not _minimal_integer(inner[start:offset]):
            return False
    return True


def _minimal_integer(value: bytes) -> bool:
    """Whether VALUE is a non-empty INTEGER body without a redundant leading 0x00 or 0xFF."""
    if len(value) < 2:
        return bool(value)
    redundant_zero = value[0] == 0 and value[1] < 0x80
    redundant_ones = value[0] == 0xFF and value[1] >= 0x80
    return not (redundant_zero or redundant_ones)


def _der_element(data: bytes, offset: int) -> tuple[int, int] | None:
    """The content span of the low-tag DER element at OFFSET; None if malformed or truncated."""
    if offset + 2 > len(data) or data[offset] & 0x1F == 0x1F:
        return None
    start, length = offset + 2, data[offset + 1]
    if length & 0x80:
        count = length & 0x7F
        raw = data[start : start + count]
        if count == 0 or len(raw) < count or raw[0] == 0:
            return None  # indefinite, truncated or padded length
        start, length = start + count, int.from_bytes(raw, "big")
        if length < 0x80:
            return None  # a long form where the short one fits
    return None if start + length > len(data) else (start, start + length)


def _std_base64(data: bytes) -> bytes | None:
    """DATA decoded as Go's base64.StdEncoding does (padding required, CR and LF skipped)."""
    try:
        return binascii.a2b_base64(data.translate(None, b"\r\n"), strict_mode=True)
    except (binascii.Error, ValueError):
        return None


# ---- keys --------------------------------------------------------------------------------


def _load_key(pem: bytes) -> _Key:
    """The public key of PEM, read as sigstore's UnmarshalPEMToPublicKey and LoadVerifier do."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        PublicFormat,
        load_der_public_key,
    )

    block = _pem_block(pem)
    if block is None:
        raise _Unusable("it is not PEM")
    kind, der = block
    label = kind.decode("ascii", errors="replace")
    if kind == b"PUBLIC KEY":
        form = PublicFormat.SubjectPublicKeyInfo
    elif kind == b"RSA PUBLIC KEY":
        form = PublicFormat.PKCS1
    else:
        raise _Unusable(f"its PEM type is {label!r}, not a public key")
    try:
        key = load_der_public_key(der)
    except (ValueError, TypeError) as e:
        raise _Unusable(f"its {label} block is not a key ({e})") from e
    if form is PublicFormat.PKCS1 and not isinstance(key, rsa.RSAPublicKey):
        raise _Unusable(f"its {label} block does not hold an RSA key")
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name not in _CURVES:
        raise _Unusable(f"the elliptic curve {key.curve.name} is not supported")
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        raise _Unusable(f"{type(key).__name__.removesuffix('PublicKey')} keys are not supported")
    # Go's x509 reads only strict DER, uncompressed points and RSA with NULL parameters:
    # anything that does not encode back to the same bytes is something it refuses.
    if key.public_bytes(Encoding.DER, form) != der:
        raise _Unusable(f"its {label} block is not in the encoding Go's x509 reads")
    return key


def _pem_line(data: bytes) -> tuple[bytes, bytes]:
    """The first line of DATA without its line end and trailing blanks, and the rest after it."""
    end = data.find(b"\n")
    if end < 0:
        return data.rstrip(b" \t"), b""
    return data[:end].removesuffix(b"\r").rstrip(b" \t"), data[end + 1 :]


def _pem_block(data: bytes) -> tuple[bytes, bytes] | None:
    """The type and bytes of the first well-formed PEM block of DATA, found as Go's pem.Decode
    finds it (headers skipped, malformed blocks passed over)."""
    rest = data
    while True:
        if rest.startswith(_PEM_BEGIN):
            rest = rest[len(_PEM_BEGIN) :]
        elif (at := rest.find(b"\n" + _PEM_BEGIN)) >= 0:
            rest = rest[at + 1 + len(_PEM_BEGIN) :]
        else:
            return None
        type_line, rest = _pem_line(rest)
        if not type_line.endswith(_DASHES):
            continue
        kind, headers = type_line[: -len(_DASHES)], False
        while True:
            if not rest:
                return None
            line, after = _pem_line(rest)
            if b":" not in line:
                break
            rest, headers = after, True
        if not headers and rest.startswith(_PEM_END[1:]):
            end, trailer = 0, len(_PEM_END) - 1
        else:
            end = rest.find(_PEM_END)
            trailer = end + len(_PEM_END)
        if end < 0 or not rest[trailer:].startswith(kind + _DASHES):
            continue
        if _pem_line(rest[trailer + len(kind) + len(_DASHES) :])[0]:
            continue  # more than blanks after the END line
        der = _std_base64(rest[:end].translate(None, b" \t"))
        if der is not None:
            return kind, der


# ---- the payload -------------------------------------------------------------------------


def parse_sigstore_payload(payload: bytes, what: str) -> SigstoreClaim:
    """Parse a sigstore PAYLOAD strictly; raise PolicyError naming WHAT if it is malformed."""

    def fail(reason: str) -> PolicyError:
        return PolicyError(f"{what} has an invalid sigstore payload: {reason}", hint=_PAYLOAD_HINT)

    top = exact_fields(load(payload, fail), ("critical", "optional"), "the payload", fail)
    if top["optional"] is not None:  # cosign writes "optional": null without annotations
        optional_fields(top["optional"], fail)  # creator and timestamp are checked, not used
    # The reference is not checked here, as in containers/image: a bad one matches no
    # signedIdentity.
    digest, reference = critical_claim(top["critical"], PAYLOAD_TYPE, fail)
    return SigstoreClaim(digest, reference)
