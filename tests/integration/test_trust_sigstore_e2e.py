"""Sigstore (cosign) signatures end to end: signature attachments in cosign's format, made with
throwaway keys, pushed next to images in a real registry; pulled under sigstoreSigned policies.

skopeo is the oracle where it can be: for every case, ``skopeo copy`` under the same policy
and registries.d must accept or refuse the image as we do. Debian 12's skopeo is built with
sigstore disabled ("Debian-local change"), so there the cases check our verdicts alone; the
signatures are made with cosign's payload format and signature scheme (tests/sigstore_build.py).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from syscontainers.trust.sigstore import SIGNATURE_MIME_TYPE
from tests.imagebuild import layer_tar, write_oci_layout
from tests.integration.conftest_registry import (
    Registry,
    registry_server,
    requires_registry,
    skopeo_inspect,
)
from tests.integration.registry_push import push_sigstore_attachment
from tests.integration.trust_cli import ours, skopeo_accepts
from tests.sigstore_build import payload, public_pem, sign

pytestmark = requires_registry
SIGNATURE = "dev.cosignproject.cosign/signature"
SIGSTORE_DISABLED = "sigstore disabled"  # how Debian's skopeo refuses sigstoreSigned


@dataclass
class World:
    """A registry holding one image under several names, each with its own attachment."""

    tmp: Path
    registry: Registry
    trusted_pub: Path
    digest: str
    registries_d: Path

    def ref(self, repo: str) -> str:
        return f"docker://{self.registry.host}/{repo}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("sigstore")
    trusted = ec.generate_private_key(ec.SECP256R1())
    other = ec.generate_private_key(ec.SECP256R1())
    (tmp / "trusted.pub").write_bytes(public_pem(trusted))
    with registry_server(tmp / "registry") as registry:
        host = registry.host
        layout = write_oci_layout(tmp / "layout", [layer_tar({"etc/motd": b"cosigned\n"})], "v1")
        repos = [
            "sig/app",
            "sig/wrong-key",
            "sig/wrong-name",
            "sig/unsigned",
            "sig/flipped",
            "nosig/app",
        ]
        for repo in repos:
            subprocess.run(
                ["skopeo", "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false",
                 f"oci:{layout}:v1", f"docker://{host}/{repo}:1"],
                check=True, capture_output=True,
            )  # fmt: skip
        digest = skopeo_inspect(registry, "sig/app:1")["Digest"]

        def attach(
            repo: str, signed_as: str, key: ec.EllipticCurvePrivateKey, flip: bool = False
        ) -> None:
            data = payload(digest, f"{host}/{signed_as}:1")
            sig = sign(data, key)
            if flip:
                sig = sign(data + b" ", key)  # a valid signature, of other bytes
            push_sigstore_attachment(
                host, repo, digest, [(data, SIGNATURE_MIME_TYPE, {SIGNATURE: sig})]
            )

        attach("sig/app", "sig/app", trusted)
        attach("sig/wrong-key", "sig/wrong-key", other)
        attach("sig/wrong-name", "sig/app", trusted)
        attach("sig/flipped", "sig/flipped", trusted, flip=True)
        attach("nosig/app", "nosig/app", trusted)  # signed, but registries.d does not look
        registries_d = tmp / "registries.d"
        registries_d.mkdir()
        (registries_d / "sigstore.yaml").write_text(
            f"docker:\n  {host}/sig:\n    use-sigstore-attachments: true\n"
        )
        yield World(tmp, registry, tmp / "trusted.pub", digest, registries_d)


_serial = iter(range(10_000))


def write_policy(world: World, requirement: dict[str, Any]) -> Path:
    path = world.tmp / f"policy-{next(_serial)}.json"
    doc = {
        "default": [{"type": "reject"}],
        "transports": {"docker": {world.registry.host: [requirement]}},
    }
    path.write_text(json.dumps(doc))
    return path


def sigstore_signed(world: World, **extra: str) -> dict[str, Any]:
    return {"type": "sigstoreSigned", "keyPath": str(world.trusted_pub), **extra}


@pytest.mark.parametrize(
    ("repo", "accepted", "why"),
    [
        ("sig/app:1", True, ""),
        ("sig/wrong-key:1", False, "no signature"),
        ("sig/wrong-name:1", False, "does not accept"),
        ("sig/unsigned:1", False, "there is none"),
        ("sig/flipped:1", False, "no signature"),
        ("nosig/app:1", False, "does not set use-sigstore-attachments"),
    ],
)
def test_sigstore_signed_agrees_with_skopeo(
    world: World, repo: str, accepted: bool, why: str
) -> None:
    policy = write_policy(world, sigstore_signed(world))
    source = world.ref(repo)
    skopeo_ok, skopeo_err = skopeo_accepts(world, policy, source)
    if SIGSTORE_DISABLED not in skopeo_err:
        assert skopeo_ok is accepted, skopeo_err  # the oracle
    code, err, _ = ours(world, policy, source)
    assert (code == 0) is accepted, err
    assert why in err


def test_rekor_requirements_are_refused_like_skopeo(world: World) -> None:
    """A Rekor key asks for a transparency-log proof the signatures lack: both refuse."""
    rekor = str(world.trusted_pub)
    policy = write_policy(world, sigstore_signed(world, rekorPublicKeyPath=rekor))
    source = world.ref("sig/app:1")
    assert not skopeo_accepts(world, policy, source)[0]
    code, err, _ = ours(world, policy, source)
    assert code == 1 and "Rekor" in err
