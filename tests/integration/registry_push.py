"""Push raw blobs and manifests to a plain-HTTP registry with the distribution API, for the
artifacts skopeo cannot make here (sigstore signature attachments)."""

from __future__ import annotations

import hashlib
import http.client
import json
from typing import Any

MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


def _request(
    host: str, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection(host, timeout=30)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp


def push_blob(host: str, repo: str, data: bytes) -> dict[str, Any]:
    """Upload DATA as a blob of REPO (monolithic upload); its descriptor (without media type)."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    start = _request(host, "POST", f"/v2/{repo}/blobs/uploads/")
    assert start.status == 202, start.status
    location = start.headers["Location"]
    if location.startswith("http"):
        location = "/" + location.split("/", 3)[3]
    sep = "&" if "?" in location else "?"
    done = _request(
        host,
        "PUT",
        f"{location}{sep}digest={digest}",
        data,
        {"Content-Type": "application/octet-stream"},
    )
    assert done.status == 201, done.status
    return {"digest": digest, "size": len(data)}


def push_manifest(host: str, repo: str, tag: str, manifest: dict[str, Any]) -> str:
    """PUT MANIFEST (an OCI image manifest) as REPO:TAG; its digest."""
    data = json.dumps(manifest).encode()
    resp = _request(
        host, "PUT", f"/v2/{repo}/manifests/{tag}", data, {"Content-Type": MT_OCI_MANIFEST}
    )
    assert resp.status == 201, resp.status
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_sigstore_attachment(
    host: str, repo: str, manifest_digest: str, layers: list[tuple[bytes, str, dict[str, str]]]
) -> None:
    """Attach LAYERS (payload, media type, annotations) to the image MANIFEST_DIGEST of REPO the
    way cosign does: an OCI manifest tagged sha256-HEX.sig."""
    config = push_blob(host, repo, b"{}")
    descriptors = []
    for payload, media_type, notes in layers:
        desc = push_blob(host, repo, payload)
        descriptors.append({"mediaType": media_type, **desc, "annotations": notes})
    manifest = {
        "schemaVersion": 2,
        "mediaType": MT_OCI_MANIFEST,
        "config": {"mediaType": MT_OCI_CONFIG, **config},
        "layers": descriptors,
    }
    push_manifest(host, repo, manifest_digest.replace(":", "-", 1) + ".sig", manifest)
