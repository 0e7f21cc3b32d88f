"""Trust end to end: images signed by skopeo with real gpg keys, pushed to a real registry with
their signatures in lookaside storage, pulled under containers-policy.json files.

skopeo is the oracle: for every case, ``skopeo copy`` under the same policy and registries.d
must accept or refuse the image as we do. A refused pull must leave nothing in the store.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.imagebuild import layer_tar, write_oci_layout
from tests.integration.conftest_registry import Registry, registry_server, requires_registry
from tests.integration.trust_cli import ours, skopeo_accepts, stored_nothing

pytestmark = [
    *requires_registry,
    pytest.mark.skipif(shutil.which("gpg") is None, reason="gpg is not installed"),
]


def gpg(home: Path, *argv: str) -> str:
    """Run gpg in the keyring HOME; its stdout."""
    done = subprocess.run(
        ["gpg", "--batch", "--no-tty", "--homedir", str(home), *argv],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout


def new_key(home: Path, uid: str, export_to: Path) -> str:
    """Make a signing key for UID in HOME, export its public key to EXPORT_TO; its fingerprint."""
    gpg(home, "--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "never")
    fprs = [
        line.split(":")[9]
        for line in gpg(home, "--with-colons", "--list-keys", uid).splitlines()
        if line.startswith("fpr:")
    ]
    export_to.write_bytes(
        subprocess.run(
            ["gpg", "--batch", "--homedir", str(home), "--export", fprs[0]],
            capture_output=True, check=True,
        ).stdout
    )  # fmt: skip
    return fprs[0]


@dataclass
class World:
    """A registry with signed and unsigned images, keys, and lookaside storage."""

    tmp: Path
    registry: Registry
    gnupg: Path
    trusted_key: Path
    other_key: Path
    registries_d: Path
    lookaside: Path
    layout: Path

    @property
    def host(self) -> str:
        """127.0.0.1:PORT of the registry."""
        return self.registry.host

    def ref(self, repo: str) -> str:
        """docker://HOST/REPO."""
        return f"docker://{self.host}/{repo}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("trust")
    gnupg = tmp / "gnupg"
    gnupg.mkdir(mode=0o700)
    trusted = new_key(gnupg, "Trusted Signer <trusted@example.org>", tmp / "trusted.gpg")
    other = new_key(gnupg, "Other Signer <other@example.org>", tmp / "other.gpg")
    lookaside = tmp / "lookaside"
    registries_d = tmp / "registries.d"
    registries_d.mkdir()
    layout = write_oci_layout(tmp / "layout", [layer_tar({"etc/motd": b"signed\n"})], "v1")
    env = {**os.environ, "GNUPGHOME": str(gnupg)}
    with registry_server(tmp / "registry") as registry:
        (registries_d / "test.yaml").write_text(
            f"docker:\n  {registry.host}:\n"
            f"    lookaside: file://{lookaside}\n    lookaside-staging: file://{lookaside}\n"
        )
        world = World(
            tmp,
            registry,
            gnupg,
            tmp / "trusted.gpg",
            tmp / "other.gpg",
            registries_d,
            lookaside,
            layout,
        )

        def push(repo: str, *options: str) -> None:
            subprocess.run(
                ["skopeo", "--insecure-policy", "--registries.d", str(registries_d), "copy",
                 "--quiet", "--dest-tls-verify=false", *options, f"oci:{layout}:v1",
                 world.ref(repo)],
                env=env, check=True, capture_output=True,
            )  # fmt: skip

        push("trust/signed:1", "--sign-by", trusted)
        push("trust/unsigned:1")
        push("trust/other-key:1", "--sign-by", other)
        push("trust/copied:1")  # the same manifest as signed:1, with signed:1's signature below
        push("elsewhere/app:1", "--sign-by", trusted)
        [signed_dir] = (lookaside / "trust").glob("signed@*")
        copied = signed_dir.name.replace("signed", "copied")
        shutil.copytree(signed_dir, lookaside / "trust" / copied)
        yield world


def write_policy(world: World, doc: dict[str, Any], name: str = "policy.json") -> Path:
    path = world.tmp / name
    path.write_text(json.dumps(doc))
    return path


def signed_by(key: Path, **identity: str) -> dict[str, Any]:
    req: dict[str, Any] = {"type": "signedBy", "keyType": "GPGKeys", "keyPath": str(key)}
    if identity:
        req["signedIdentity"] = identity
    return req


def trust_scope(world: World, *requirements: dict[str, Any]) -> dict[str, Any]:
    """Reject everything but HOST/trust, which needs REQUIREMENTS."""
    return {
        "default": [{"type": "reject"}],
        "transports": {"docker": {f"{world.host}/trust": list(requirements)}},
    }


@pytest.mark.parametrize(
    ("repo", "accepted"),
    [
        ("trust/signed:1", True),
        ("trust/unsigned:1", False),  # no signature at all
        ("trust/other-key:1", False),  # signed, by a key the policy does not name
        ("trust/copied:1", False),  # a valid signature, but for trust/signed:1
        ("elsewhere/app:1", False),  # signed by the trusted key, but its scope says reject
    ],
)
def test_signed_by_agrees_with_skopeo(world: World, repo: str, accepted: bool) -> None:
    policy = write_policy(world, trust_scope(world, signed_by(world.trusted_key)))
    source = world.ref(repo)
    skopeo_ok, skopeo_err = skopeo_accepts(world, policy, source)
    assert skopeo_ok is accepted, skopeo_err  # the oracle
    code, err, root = ours(world, policy, source)
    if accepted:
        assert code == 0, err
        assert not stored_nothing(root)  # the check below can see what a pull stores
    else:
        assert code == 1 and "error:" in err and "hint:" in err, err
        assert stored_nothing(root)


def test_refusal_says_why(world: World) -> None:
    policy = write_policy(world, trust_scope(world, signed_by(world.trusted_key)))
    _, err, _ = ours(world, policy, world.ref("trust/unsigned:1"))
    assert "requires a signature" in err and "none" in err
    _, err, _ = ours(world, policy, world.ref("trust/other-key:1"))
    assert "no signature" in err and "satisfies" in err
    _, err, _ = ours(world, policy, world.ref("elsewhere/app:1"))
    assert "rejected" in err


@pytest.mark.parametrize(
    ("identity", "accepted"),
    [
        ({"type": "matchRepository"}, False),
        ({"type": "exactReference", "dockerReference": "{host}/trust/signed:1"}, True),
        ({"type": "exactRepository", "dockerRepository": "{host}/trust/signed"}, True),
        (
            {
                "type": "remapIdentity",
                "prefix": "{host}/trust/copied",
                "signedPrefix": "{host}/trust/signed",
            },
            True,
        ),
    ],
)
def test_signed_identity_rules_agree_with_skopeo(
    world: World, identity: dict[str, str], accepted: bool
) -> None:
    rule = {k: v.format(host=world.host) for k, v in identity.items()}
    policy = write_policy(world, trust_scope(world, signed_by(world.trusted_key, **rule)))
    source = world.ref("trust/copied:1")
    assert skopeo_accepts(world, policy, source)[0] is accepted
    code, err, _ = ours(world, policy, source)
    assert (code == 0) is accepted, err


def test_a_tampered_signature_is_refused(world: World) -> None:
    policy = write_policy(world, trust_scope(world, signed_by(world.trusted_key)))
    [sig] = (world.lookaside / "trust").glob("signed@*/signature-1")
    good = sig.read_bytes()
    try:
        sig.write_bytes(good[:-8] + bytes(b ^ 0xFF for b in good[-8:]))
        assert not skopeo_accepts(world, policy, world.ref("trust/signed:1"))[0]
        code, err, root = ours(world, policy, world.ref("trust/signed:1"))
        assert code == 1 and stored_nothing(root), err
    finally:
        sig.write_bytes(good)


def test_local_transports_follow_their_own_scopes(world: World) -> None:
    strict = write_policy(world, trust_scope(world, signed_by(world.trusted_key)), "strict.json")
    source = f"oci:{world.layout}:v1"
    code, err, root = ours(world, strict, source)
    assert code == 1 and "rejected" in err and stored_nothing(root)
    doc = trust_scope(world, signed_by(world.trusted_key))
    doc["transports"]["oci"] = {"": [{"type": "insecureAcceptAnything"}]}
    assert ours(world, write_policy(world, doc, "oci-ok.json"), source)[0] == 0
    doc["transports"]["oci"] = {"": [signed_by(world.trusted_key)]}
    code, err, _ = ours(world, write_policy(world, doc, "oci-signed.json"), source)
    assert code == 1 and "carry no signatures" in err


def test_insecure_policy_and_a_missing_policy(world: World) -> None:
    reject_all = write_policy(world, {"default": [{"type": "reject"}]}, "reject.json")
    source = world.ref("trust/unsigned:1")
    assert ours(world, reject_all, source)[0] == 1
    assert ours(world, reject_all, source, "--insecure-policy")[0] == 0
    code, err, root = ours(world, world.tmp / "no-such-policy.json", source)
    assert code == 1 and "no trust policy" in err and "--insecure-policy" in err
    assert stored_nothing(root)


def test_sigstore_requirements_find_no_attachments_here(world: World) -> None:
    """registries.d here does not enable sigstore attachments: nothing to verify, refused."""
    doc = trust_scope(world, {"type": "sigstoreSigned", "keyPath": str(world.trusted_key)})
    code, err, root = ours(
        world, write_policy(world, doc, "sigstore.json"), world.ref("trust/signed:1")
    )
    assert code == 1 and "sigstore" in err and stored_nothing(root)
