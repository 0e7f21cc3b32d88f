"""Tests for syscontainers.trust.sigstore: verifying cosign signatures with each key type
containers/image accepts, refusing broken signatures and keys, and parsing the payload
strictly (the cases of containers/image's sigstore_payload_test.go, ported by meaning)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa, x25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from syscontainers.errors import PolicyError
from syscontainers.trust.sigstore import (
    BUNDLE_ANNOTATION,
    CERTIFICATE_ANNOTATION,
    SIGNATURE_ANNOTATION,
    SigstoreClaim,
    SigstoreSignature,
    parse_sigstore_payload,
    signature_from_layer,
    verify_sigstore,
)
from tests.sigstore_build import PrivateKey, payload, public_pem, raw_signature, sign

REPO = Path(__file__).resolve().parents[2]
WHAT = "signature 1 of docker://example.com/app:1"
DIGEST = "sha256:" + "ab" * 32
PAYLOAD = payload(DIGEST, "example.com/app")
KINDS = ("p224", "p256", "p384", "p521", "rsa2048", "ed25519")


@pytest.fixture(scope="module")
def keys() -> dict[str, PrivateKey]:
    """One private key of each supported type."""
    curves = {
        "p224": ec.SECP224R1(),
        "p256": ec.SECP256R1(),
        "p384": ec.SECP384R1(),
        "p521": ec.SECP521R1(),
    }
    made: dict[str, PrivateKey] = {n: ec.generate_private_key(c) for n, c in curves.items()}
    made["rsa2048"] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    made["ed25519"] = ed25519.Ed25519PrivateKey.generate()
    return made


def signed(key: PrivateKey, data: bytes = PAYLOAD) -> SigstoreSignature:
    return SigstoreSignature(data, sign(data, key))


def pem(kind: str, der: bytes) -> bytes:
    body = base64.encodebytes(der).decode().replace("\n", "")
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN {kind}-----\n{lines}\n-----END {kind}-----\n".encode()


def refused(sig: SigstoreSignature, pems: list[bytes]) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        verify_sigstore(sig, pems, WHAT)
    assert info.value.message.startswith(f"{WHAT} is refused: ")
    assert info.value.hint
    return info.value


# ---- good signatures ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_good_signature_returns_the_payload(keys: dict[str, PrivateKey], kind: str) -> None:
    assert verify_sigstore(signed(keys[kind]), [public_pem(keys[kind])], WHAT) == PAYLOAD


def test_any_one_of_several_keys_will_do(keys: dict[str, PrivateKey]) -> None:
    pems = [public_pem(keys[k]) for k in KINDS]
    assert verify_sigstore(signed(keys["p384"]), pems, WHAT) == PAYLOAD


def test_an_rsa_public_key_block_pkcs1_is_read(keys: dict[str, PrivateKey]) -> None:
    der = keys["rsa2048"].public_key().public_bytes(Encoding.DER, PublicFormat.PKCS1)
    assert verify_sigstore(signed(keys["rsa2048"]), [pem("RSA PUBLIC KEY", der)], WHAT) == PAYLOAD


@pytest.mark.parametrize("kind", ["p256", "p521"])
def test_ecdsa_p1363_signatures_are_accepted(keys: dict[str, PrivateKey], kind: str) -> None:
    key = keys[kind]
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    r, s = decode_dss_signature(raw_signature(PAYLOAD, key))
    size = (key.curve.key_size + 7) // 8
    raw = r.to_bytes(size, "big") + s.to_bytes(size, "big")
    sig = SigstoreSignature(PAYLOAD, base64.b64encode(raw).decode())
    assert verify_sigstore(sig, [public_pem(key)], WHAT) == PAYLOAD
    # A P1363 signature over other bytes still fails.
    other = SigstoreSignature(PAYLOAD + b" ", sig.signature_b64)
    assert "invalid signature" in refused(other, [public_pem(key)]).message


def test_line_breaks_in_the_base64_are_skipped(keys: dict[str, PrivateKey]) -> None:
    b64 = sign(PAYLOAD, keys["p256"])
    sig = SigstoreSignature(PAYLOAD, b64[:10] + "\r\n" + b64[10:] + "\n")
    assert verify_sigstore(sig, [public_pem(keys["p256"])], WHAT) == PAYLOAD


def test_certificate_and_bundle_annotations_are_ignored(keys: dict[str, PrivateKey]) -> None:
    # With plain keys and no Rekor key, containers/image does not look at them either.
    annotations = {
        SIGNATURE_ANNOTATION: sign(PAYLOAD, keys["p256"]),
        CERTIFICATE_ANNOTATION: "not a certificate",
        BUNDLE_ANNOTATION: "{not a bundle",
    }
    sig = signature_from_layer(PAYLOAD, annotations, WHAT)
    assert sig.signature_b64 == annotations[SIGNATURE_ANNOTATION]
    assert dict(sig.annotations) == annotations
    assert verify_sigstore(sig, [public_pem(keys["p256"])], WHAT) == PAYLOAD


def test_a_layer_without_the_signature_annotation_is_refused() -> None:
    with pytest.raises(PolicyError, match=f"{WHAT} is refused: .*no {SIGNATURE_ANNOTATION}"):
        signature_from_layer(PAYLOAD, {BUNDLE_ANNOTATION: "{}"}, WHAT)


# ---- bad signatures ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_another_key_does_not_verify(keys: dict[str, PrivateKey], kind: str) -> None:
    other = "p256" if kind != "p256" else "p384"
    error = refused(signed(keys[other]), [public_pem(keys[kind])])
    assert "does not verify with the public key of the policy" in error.message


def test_every_failing_key_is_named(keys: dict[str, PrivateKey]) -> None:
    error = refused(signed(keys["p256"]), [public_pem(keys["p384"]), public_pem(keys["ed25519"])])
    assert "any of the 2 public keys" in error.message
    assert "ECDSA secp384r1 key: invalid signature; Ed25519 key: invalid signature" in error.message


@pytest.mark.parametrize("kind", KINDS)
def test_a_flipped_signature_byte_is_refused(keys: dict[str, PrivateKey], kind: str) -> None:
    raw = bytearray(raw_signature(PAYLOAD, keys[kind]))
    raw[len(raw) // 2] ^= 0x01
    sig = SigstoreSignature(PAYLOAD, base64.b64encode(bytes(raw)).decode())
    assert "does not verify" in refused(sig, [public_pem(keys[kind])]).message


@pytest.mark.parametrize("kind", KINDS)
def test_a_flipped_payload_byte_is_refused(keys: dict[str, PrivateKey], kind: str) -> None:
    sig = signed(keys[kind])
    changed = bytearray(PAYLOAD)
    changed[-3] ^= 0x01
    bad = SigstoreSignature(bytes(changed), sig.signature_b64)
    assert "invalid signature" in refused(bad, [public_pem(keys[kind])]).message


def test_der_with_a_trailing_byte_is_refused(keys: dict[str, PrivateKey]) -> None:
    # It reads as DER, so it is checked as DER (strictly), not as r||s.
    raw = raw_signature(PAYLOAD, keys["p256"]) + b"\x00"
    sig = SigstoreSignature(PAYLOAD, base64.b64encode(raw).decode())
    assert "invalid signature" in refused(sig, [public_pem(keys["p256"])]).message


def _int(value: int, pad: bool) -> bytes:
    """VALUE as a DER INTEGER body; with PAD, one redundant leading zero byte."""
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")
    return b"\x00" + body if pad else body


def _pair(r: int, s: int, long_length: bool = False, pad: bool = False) -> bytes:
    """SEQUENCE { r, s }, possibly with a long-form length or a padded r, which Go's
    encoding/asn1 does not read as DER (so sigstore tries the bytes as r||s)."""
    rb, sb = _int(r, pad), _int(s, False)
    body = bytes([2, len(rb)]) + rb + bytes([2, len(sb)]) + sb
    return (b"\x30\x81" if long_length else b"\x30") + bytes([len(body)]) + body


@pytest.mark.parametrize("variant", ["long length", "padded integer"])
def test_non_minimal_der_is_read_as_p1363(keys: dict[str, PrivateKey], variant: str) -> None:
    key = keys["p256"]
    options = {"long_length": variant == "long length", "pad": variant == "padded integer"}
    for _ in range(64):  # until the length is odd, which r||s can never be
        r, s = decode_dss_signature(raw_signature(PAYLOAD, key))
        raw = _pair(r, s, **options)
        if len(raw) % 2:
            break
    good = SigstoreSignature(PAYLOAD, base64.b64encode(_pair(r, s)).decode())
    assert verify_sigstore(good, [public_pem(key)], WHAT) == PAYLOAD
    sig = SigstoreSignature(PAYLOAD, base64.b64encode(raw).decode())
    assert "not a DER or IEEE P1363" in refused(sig, [public_pem(key)]).message


@pytest.mark.parametrize("raw", [b"", b"\x01" * 133, b"\x01" * 63], ids=["empty", "long", "odd"])
def test_an_ecdsa_signature_that_is_neither_der_nor_p1363_is_refused(
    keys: dict[str, PrivateKey], raw: bytes
) -> None:
    sig = SigstoreSignature(PAYLOAD, base64.b64encode(raw).decode())
    assert "not a DER or IEEE P1363" in refused(sig, [public_pem(keys["p256"])]).message


@pytest.mark.parametrize("kind", ["rsa2048", "ed25519"])
def test_a_truncated_signature_is_refused(keys: dict[str, PrivateKey], kind: str) -> None:
    raw = raw_signature(PAYLOAD, keys[kind])[:-1]
    sig = SigstoreSignature(PAYLOAD, base64.b64encode(raw).decode())
    assert "invalid signature" in refused(sig, [public_pem(keys[kind])]).message


def test_rsa_pss_is_not_accepted(keys: dict[str, PrivateKey]) -> None:
    key = keys["rsa2048"]
    assert isinstance(key, rsa.RSAPrivateKey)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    raw = key.sign(PAYLOAD, pss, hashes.SHA256())
    sig = SigstoreSignature(PAYLOAD, base64.b64encode(raw).decode())
    assert "invalid signature" in refused(sig, [public_pem(key)]).message


@pytest.mark.parametrize("kind", ["p384", "p521"])
def test_ecdsa_uses_sha256_whatever_the_curve(keys: dict[str, PrivateKey], kind: str) -> None:
    key = keys[kind]
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    raw = key.sign(PAYLOAD, ec.ECDSA(hashes.SHA384()))
    sig = SigstoreSignature(PAYLOAD, base64.b64encode(raw).decode())
    assert "invalid signature" in refused(sig, [public_pem(key)]).message


@pytest.mark.parametrize(
    "text", ["QQ", "QQ===", "QQ==QQ==", "=QQ=", "QU JD", "Q", "not base64!", "QUJDä"]
)
def test_invalid_base64_is_refused(keys: dict[str, PrivateKey], text: str) -> None:
    error = refused(SigstoreSignature(PAYLOAD, text), [public_pem(keys["p256"])])
    assert f"its {SIGNATURE_ANNOTATION} annotation is not valid base64" in error.message


# ---- keys --------------------------------------------------------------------------------


def test_no_keys_is_refused(keys: dict[str, PrivateKey]) -> None:
    error = refused(signed(keys["p256"]), [])
    assert "the policy gives no public key" in error.message
    assert error.hint is not None and "Fulcio" in error.hint


def _compressed_p256(key: PrivateKey) -> bytes:
    """KEY's SubjectPublicKeyInfo with a compressed point, which Go's x509 does not read."""
    public = key.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    algorithm = public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)[2:23]
    point = public.public_bytes(Encoding.X962, PublicFormat.CompressedPoint)
    body = algorithm + bytes([0x03, len(point) + 1, 0x00]) + point
    return pem("PUBLIC KEY", bytes([0x30, len(body)]) + body)


def _unusable(keys: dict[str, PrivateKey]) -> dict[str, tuple[bytes, str]]:
    """PEM texts that are no usable key, and what the refusal says about each."""
    rsa_public = keys["rsa2048"].public_key()
    spki = rsa_public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    pkcs1 = rsa_public.public_bytes(Encoding.DER, PublicFormat.PKCS1)
    private = keys["p256"].private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    k1 = ec.generate_private_key(ec.SECP256K1())
    return {
        "text": (b"this is invalid", "it is not PEM"),
        "empty": (b"", "it is not PEM"),
        "bad base64": (b"-----BEGIN PUBLIC KEY-----\nQQ\n-----END PUBLIC KEY-----\n", "not PEM"),
        "not at line start": (b"x" + public_pem(keys["p256"]), "it is not PEM"),
        "private key": (private, "'PRIVATE KEY', not a public key"),
        "garbage DER": (pem("PUBLIC KEY", b"\x30\x03\x02\x01\x01"), "block is not a key"),
        "secp256k1": (public_pem(k1), "curve secp256k1 is not supported"),
        "x25519": (_spki_pem(x25519.X25519PrivateKey.generate()), "X25519 keys are not"),
        "ed448": (_spki_pem(ed448.Ed448PrivateKey.generate()), "Ed448 keys are not"),
        "compressed point": (_compressed_p256(keys["p256"]), "not in the encoding Go's x509"),
        "pkcs1 as PUBLIC KEY": (pem("PUBLIC KEY", pkcs1), "not in the encoding Go's x509"),
        "spki as RSA PUBLIC KEY": (pem("RSA PUBLIC KEY", spki), "not in the encoding Go's x509"),
        "ec as RSA PUBLIC KEY": (
            pem("RSA PUBLIC KEY", _der(public_pem(keys["p256"]))),
            "does not hold an RSA key",
        ),
    }


def _spki_pem(key: x25519.X25519PrivateKey | ed448.Ed448PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def _der(pem_text: bytes) -> bytes:
    return base64.b64decode(b"".join(pem_text.splitlines()[1:-1]))


@pytest.mark.parametrize(
    "case",
    [
        "text",
        "empty",
        "bad base64",
        "not at line start",
        "private key",
        "garbage DER",
        "secp256k1",
        "x25519",
        "ed448",
        "compressed point",
        "pkcs1 as PUBLIC KEY",
        "spki as RSA PUBLIC KEY",
        "ec as RSA PUBLIC KEY",
    ],
)
def test_an_unusable_key_refuses_even_when_another_verifies(
    keys: dict[str, PrivateKey], case: str
) -> None:
    text, reason = _unusable(keys)[case]
    # containers/image loads every key before it verifies: a broken fallback key is an error.
    error = refused(signed(keys["p256"]), [public_pem(keys["p256"]), text])
    assert "public key 2 of the policy is unusable: " in error.message
    assert reason in error.message


def test_an_rsa_key_under_1024_bits_fails_only_itself(keys: dict[str, PrivateKey]) -> None:
    # Go >= 1.24 refuses such keys when verifying, so the other keys are still tried.
    small = rsa.RSAPublicNumbers(65537, (1 << 511) + 111).public_key()
    small_pem = small.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    sig = signed(keys["p256"])
    assert verify_sigstore(sig, [small_pem, public_pem(keys["p256"])], WHAT) == PAYLOAD
    assert "512-bit RSA key: keys under 1024 bits are insecure" in refused(sig, [small_pem]).message


def test_pem_blocks_are_found_as_go_finds_them(keys: dict[str, PrivateKey]) -> None:
    good = public_pem(keys["ed25519"])
    begin, rest = good.split(b"\n", 1)
    variants = [
        b"cosign public key:\n" + good + b"trailing text\n",
        begin + b"\nComment: made by a test\n\n" + rest,  # headers are skipped
        good.replace(b"\n", b"\r\n"),
        b"-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n" + good,
        b"-----BEGIN PUBLIC KEY-----\nQQ==\n-----END OTHER-----\n" + good,
        good.replace(b"\n", b" \t\n", 1),  # blanks after the BEGIN line
    ]
    for text in variants:
        assert verify_sigstore(signed(keys["ed25519"]), [text], WHAT) == PAYLOAD, text


def test_cryptography_loads_only_when_a_signature_is_verified() -> None:
    script = textwrap.dedent("""
        import sys
        import syscontainers.cli, syscontainers.trust.check, syscontainers.trust.sigstore as s
        print("cryptography" in sys.modules)
        try:
            s.verify_sigstore(s.SigstoreSignature(b"{}", "QQ=="), [b"x"], "sig")
        except s.PolicyError:
            pass
        print("cryptography" in sys.modules)
    """)
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "True"]


# ---- the payload -------------------------------------------------------------------------


def test_the_helper_writes_cosigns_exact_bytes() -> None:
    # The layout /usr/bin/cosign writes: Go's sorted map keys, no spaces, "optional": null.
    assert PAYLOAD == (
        b'{"critical":{"identity":{"docker-reference":"example.com/app"},"image":'
        b'{"docker-manifest-digest":"' + DIGEST.encode() + b'"},'
        b'"type":"cosign container image signature"},"optional":null}'
    )


@pytest.mark.parametrize(
    "optional",
    [
        None,
        {},
        {"creator": "containers/image 5.36.0", "timestamp": 1700000000},
        {"unexpected": [1, {"x": None}]},
        {"timestamp": 1.7e9},
        {"creator": None},
    ],
)
def test_payloads_cosign_and_containers_image_write_are_accepted(optional: object) -> None:
    assert isinstance(optional, dict | None)
    data = payload(DIGEST, "example.com/app:1", optional)
    assert parse_sigstore_payload(data, WHAT) == SigstoreClaim(DIGEST, "example.com/app:1")


def test_the_reference_is_not_checked_here() -> None:
    # containers/image leaves that to signedIdentity, which matches no invalid reference.
    claim = parse_sigstore_payload(payload(DIGEST, "reference#@!"), WHAT)
    assert claim.docker_reference == "reference#@!"


def _document() -> dict[str, object]:
    good = payload(DIGEST, "example.com/app", {"creator": "c", "timestamp": 1})
    document: dict[str, object] = json.loads(good)
    return document


def _edit(path: str, value: object) -> bytes:
    """The good payload with the key at dotted PATH set to VALUE (removed if VALUE is ...)."""
    document = _document()
    *parents, last = path.split(".")
    node = document
    for name in parents:
        node = node[name]  # type: ignore[assignment]
    assert isinstance(node, dict)
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return json.dumps(document).encode()


BROKEN = {
    "no critical": _edit("critical", ...),
    "no optional": _edit("optional", ...),
    "extra top key": _edit("unexpected", 1),
    "critical not an object": _edit("critical", 1),
    "optional not an object": _edit("optional", 1),
    "optional a list": _edit("optional", []),
    "no type": _edit("critical.type", ...),
    "no image": _edit("critical.image", ...),
    "no identity": _edit("critical.identity", ...),
    "extra critical key": _edit("critical.unexpected", 1),
    "type not a string": _edit("critical.type", 1),
    "type null": _edit("critical.type", None),
    "wrong type": _edit("critical.type", "atomic container signature"),
    "image not an object": _edit("critical.image", 1),
    "no digest": _edit("critical.image.docker-manifest-digest", ...),
    "extra image key": _edit("critical.image.unexpected", 1),
    "digest not a string": _edit("critical.image.docker-manifest-digest", 1),
    "digest invalid": _edit("critical.image.docker-manifest-digest", "sha256:../.."),
    "digest unknown algorithm": _edit("critical.image.docker-manifest-digest", "md5:" + "a" * 32),
    "digest uppercase": _edit("critical.image.docker-manifest-digest", DIGEST.upper()),
    "identity not an object": _edit("critical.identity", 1),
    "no reference": _edit("critical.identity.docker-reference", ...),
    "extra identity key": _edit("critical.identity.unexpected", 1),
    "reference not a string": _edit("critical.identity.docker-reference", 1),
    "creator not a string": _edit("optional.creator", 1),
    "timestamp a string": _edit("optional.timestamp", "unexpected"),
    "timestamp fractional": _edit("optional.timestamp", 0.5),
    "timestamp too large": _edit("optional.timestamp", 2**63),
    "not JSON": b"&",
    "not an object": b"1",
    "trailing data": payload(DIGEST, "example.com/app") + b"{}",
    "NaN": payload(DIGEST, "example.com/app", {}).replace(b'"optional":{}', b'"optional":NaN'),
    "duplicate key": payload(DIGEST, "example.com/app").replace(
        b'"optional":null', b'"optional":null,"optional":null'
    ),
    "duplicate optional key": payload(DIGEST, "a", {}).replace(
        b'"optional":{}', b'"optional":{"creator":"a","creator":"b"}'
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_malformed_payloads_are_refused(case: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_sigstore_payload(BROKEN[case], WHAT)
    assert info.value.message.startswith(f"{WHAT} has an invalid sigstore payload: ")
    assert info.value.hint
