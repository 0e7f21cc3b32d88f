"""Cosign-format signatures for tests: payloads and signature images as cosign writes them, and
signatures made with keys from the ``cryptography`` package (signing stays out of the library).

``payload`` writes what Go's encoding/json makes of cosign's payload maps (keys sorted, no
spaces, HTML characters escaped), ``sign`` signs as cosign does with each key type
(ECDSA: DER over SHA-256 on any curve; RSA: PKCS#1 v1.5 with SHA-256; Ed25519: pure), and
``signature_image`` builds the manifest and config that cosign pushes under ``signature_tag``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from syscontainers.trust.sigstore import PAYLOAD_TYPE, SIGNATURE_ANNOTATION, SIGNATURE_MIME_TYPE

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
# Go's encoding/json escapes these inside strings; json.dumps does not.
_GO_ESCAPES = {c: f"\\u{ord(c):04x}" for c in "<>&\u2028\u2029"}


def go_json(value: object) -> bytes:
    """VALUE as Go's json.Marshal writes a map: sorted keys, no spaces, UTF-8, HTML escaped."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "".join(_GO_ESCAPES.get(c, c) for c in text).encode()


def payload(
    manifest_digest: str, reference: str, optional: Mapping[str, object] | None = None
) -> bytes:
    """The payload cosign signs for MANIFEST_DIGEST as REFERENCE; ``"optional": null`` unless
    OPTIONAL is given (containers/image writes {"creator": ..., "timestamp": ...})."""
    return go_json(
        {
            "critical": {
                "identity": {"docker-reference": reference},
                "image": {"docker-manifest-digest": manifest_digest},
                "type": PAYLOAD_TYPE,
            },
            "optional": None if optional is None else dict(optional),
        }
    )


def raw_signature(data: bytes, key: PrivateKey) -> bytes:
    """KEY's signature of DATA, as cosign makes it for that key type."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return key.sign(data)


def sign(data: bytes, key: PrivateKey) -> str:
    """KEY's signature of DATA in base64: the value of the signature annotation."""
    return base64.b64encode(raw_signature(data, key)).decode()


def public_pem(key: PrivateKey) -> bytes:
    """KEY's public key as cosign.pub holds it (a PEM "PUBLIC KEY" block)."""
    return key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def signature_tag(manifest_digest: str) -> str:
    """The tag cosign stores an image's signatures under: sha256-HEX.sig."""
    return manifest_digest.replace(":", "-") + ".sig"


def signature_image(
    layers: Sequence[tuple[bytes, Mapping[str, str]]],
) -> tuple[bytes, bytes]:
    """The manifest and config of a cosign signature image whose layers are (payload,
    annotations) pairs; the blobs are the payloads themselves."""
    digests = ["sha256:" + hashlib.sha256(blob).hexdigest() for blob, _ in layers]
    config = go_json(
        {
            "architecture": "",
            "config": {},
            "created": "0001-01-01T00:00:00Z",
            "history": [{"created": "0001-01-01T00:00:00Z"}],
            "os": "",
            "rootfs": {"diff_ids": digests, "type": "layers"},
        }
    )
    descriptors = [
        {
            "mediaType": SIGNATURE_MIME_TYPE,
            "size": len(blob),
            "digest": digest,
            "annotations": dict(annotations),
        }
        for (blob, annotations), digest in zip(layers, digests, strict=True)
    ]
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": OCI_CONFIG,
            "size": len(config),
            "digest": "sha256:" + hashlib.sha256(config).hexdigest(),
        },
        "layers": descriptors,
    }
    return json.dumps(manifest, separators=(",", ":")).encode(), config


def signed_layer(data: bytes, key: PrivateKey) -> tuple[bytes, dict[str, str]]:
    """A signature layer for signature_image: DATA signed with KEY."""
    return data, {SIGNATURE_ANNOTATION: sign(data, key)}
