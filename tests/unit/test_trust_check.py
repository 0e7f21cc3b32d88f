"""Tests for syscontainers.trust.check: requirements enforced on a resolved image, and the pull
paths (the CLI's pull, install through Host.policy) refusing before anything is written.

Signatures come from a fake lookup and a fake verifier here; the real gpg, skopeo signatures
and lookaside storage are in tests/integration/test_trust_e2e.py.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from syscontainers import cli
from syscontainers.errors import PolicyError
from syscontainers.oci import Platform, sha256_digest
from syscontainers.operations.install import InstallRequest, install
from syscontainers.record import replace
from syscontainers.reference import Reference
from syscontainers.sources import ResolvedImage, open_source, parse_source
from syscontainers.trust.check import PolicyChecker, Unchecked, policy_checks, subject_of
from syscontainers.trust.gpg import Verified
from syscontainers.trust.policy import parse_policy
from syscontainers.trust.sigstore import SIGNATURE_ANNOTATION
from tests.sigstore_build import payload as sigstore_payload
from tests.sigstore_build import public_pem, sign
from tests.unit.lifecycle_fixtures import Env, atomic_files

KEY = b"trusted-key"
SIGNED_AS = "registry.example.org/app:1"


def policy(doc: dict[str, Any]) -> Any:
    return lambda: parse_policy(json.dumps(doc).encode(), "policy test.json")


def signed_by(**identity: str) -> dict[str, Any]:
    req: dict[str, Any] = {
        "type": "signedBy",
        "keyType": "GPGKeys",
        "keyData": "dHJ1c3RlZC1rZXk=",
    }  # base64 of KEY
    if identity:
        req["signedIdentity"] = identity
    return req


def payload(digest: str, ref: str = SIGNED_AS) -> bytes:
    return json.dumps(
        {
            "critical": {
                "type": "atomic container signature",
                "image": {"docker-manifest-digest": digest},
                "identity": {"docker-reference": ref},
            },
            "optional": {},
        }
    ).encode()


class FakeRegistrySource:
    """Enough of a registry source for the checker: its resolved reference."""

    def __init__(self, ref: str) -> None:
        self.reference = Reference("registry.example.org", ref, "1")
        self.description = f"docker://registry.example.org/{ref}:1"


MANIFEST = b'{"schemaVersion": 2}'
IMAGE = ResolvedImage(None, MANIFEST, sha256_digest(MANIFEST), "")  # type: ignore[arg-type]


def checker(doc: dict[str, Any], signatures: list[bytes], repo: str = "app") -> PolicyChecker:
    """A checker for docker://registry.example.org/REPO:1 whose signatures are SIGNATURES and
    whose 'gpg' accepts a signature b'good:PAYLOAD' made with KEY."""

    def verify(sig: bytes, keys: Sequence[bytes], what: str) -> Verified:
        if KEY not in keys or not sig.startswith(b"good:"):
            raise PolicyError(f"{what} is refused: bad signature")
        return Verified(sig[5:], "FPR")

    spec = parse_source(f"docker://registry.example.org/{repo}:1")
    return PolicyChecker(
        spec, policy(doc), lambda source, ref, digest: (signatures, "looked nowhere"), verify
    )


def check(c: PolicyChecker, repo: str = "app") -> None:
    c.check(FakeRegistrySource(repo), IMAGE)  # type: ignore[arg-type]


def test_accept_anything_and_reject() -> None:
    check(checker({"default": [{"type": "insecureAcceptAnything"}]}, []))
    with pytest.raises(PolicyError, match=r"is rejected by policy test.json \(default\)"):
        check(checker({"default": [{"type": "reject"}]}, []))


def test_every_requirement_of_the_scope_must_hold() -> None:
    doc = {"default": [{"type": "insecureAcceptAnything"}, {"type": "reject"}]}
    with pytest.raises(PolicyError, match="rejected"):
        check(checker(doc, []))


def test_signed_by_accepts_one_good_signature_among_bad_ones() -> None:
    good = b"good:" + payload(IMAGE.manifest_digest)
    check(checker({"default": [signed_by()]}, [b"junk", good]))


@pytest.mark.parametrize(
    ("signatures", "message"),
    [
        ([], r"requires a signature .* but there is none \(looked nowhere\)"),
        ([b"junk"], r"no signature .* satisfies .*: signature 1 .* is refused: bad signature"),
        ([b"good:" + payload("sha256:" + "0" * 64)], r"is for manifest sha256:0000"),
        (
            [b"good:" + payload(IMAGE.manifest_digest, "registry.example.org/other:1")],
            r"names registry.example.org/other:1, which .*matchRepoDigestOrExact",
        ),
        ([b"junk"] * 5, r"\(and 2 more\)"),
    ],
)
def test_signed_by_refusals_say_why(signatures: list[bytes], message: str) -> None:
    with pytest.raises(PolicyError, match=message) as caught:
        check(checker({"default": [signed_by()]}, signatures))
    assert caught.value.hint


def test_signed_identity_rules_apply() -> None:
    other = [b"good:" + payload(IMAGE.manifest_digest, "registry.example.org/other:1")]
    doc = {
        "default": [
            signed_by(type="exactRepository", dockerRepository="registry.example.org/other")
        ]
    }
    check(checker(doc, other))


def sigstore_checker(doc: dict[str, Any], layers: list[tuple[bytes, dict[str, str]]]) -> Any:
    spec = parse_source("docker://registry.example.org/app:1")
    return PolicyChecker(
        spec,
        policy(doc),
        lambda source, ref, digest: ([], ""),
        sigstore=lambda source, ref, digest: (layers, "looked in the registry"),
    )


def test_sigstore_signed_with_public_keys() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = base64.b64encode(public_pem(key)).decode()
    doc = {"default": [{"type": "sigstoreSigned", "keyData": pem}]}
    good = sigstore_payload(IMAGE.manifest_digest, SIGNED_AS)
    check(sigstore_checker(doc, [(good, {SIGNATURE_ANNOTATION: sign(good, key)})]))
    other = sigstore_payload(IMAGE.manifest_digest, "registry.example.org/other:1")
    with pytest.raises(PolicyError, match="does not accept"):
        check(sigstore_checker(doc, [(other, {SIGNATURE_ANNOTATION: sign(other, key)})]))
    with pytest.raises(PolicyError, match="no .*annotation"):
        check(sigstore_checker(doc, [(good, {})]))
    with pytest.raises(PolicyError, match=r"there is none \(looked in the registry\)"):
        check(sigstore_checker(doc, []))


@pytest.mark.parametrize(
    ("extra", "what"),
    [
        ({"rekorPublicKeyData": "a2V5"}, "Rekor"),
        (
            {
                "fulcio": {"caData": "Y2E=", "oidcIssuer": "https://o", "subjectEmail": "a@b"},
                "rekorPublicKeyData": "a2V5",
            },
            "Fulcio",
        ),
    ],
)
def test_sigstore_checks_we_cannot_make_refuse(extra: dict[str, Any], what: str) -> None:
    req = {"type": "sigstoreSigned", **extra}
    if "fulcio" not in extra:
        req["keyData"] = "a2V5"
    with pytest.raises(PolicyError, match=f"{what}.*cannot check"):
        check(sigstore_checker({"default": [req]}, []))


def test_the_most_specific_scope_decides() -> None:
    doc = {
        "default": [{"type": "reject"}],
        "transports": {
            "docker": {"registry.example.org/app": [{"type": "insecureAcceptAnything"}]}
        },
    }
    check(checker(doc, []))
    with pytest.raises(PolicyError, match=r"\(default\)"):
        check(checker(doc, [], repo="other"), repo="other")


def test_local_images_carry_no_signatures(tmp_path: Path, env: Env) -> None:
    source = open_source(parse_source(env.layout("app", atomic_files("1"))))
    try:
        image = source.resolve(Platform.host())
        spec = parse_source(env.layout("app", atomic_files("1")))
        c = PolicyChecker(spec, policy({"default": [signed_by()]}), lambda s, r, d: ([], ""))
        with pytest.raises(PolicyError, match="oci: images carry no signatures"):
            c.check(source, image)
        assert subject_of(spec, source).transport == "oci"
    finally:
        source.close()


def test_policy_checks_reads_the_policy_only_when_an_image_is_checked(tmp_path: Path) -> None:
    missing = tmp_path / "no-policy.json"
    make = policy_checks(missing, tmp_path / "registries.d")
    c = make(parse_source("oci:/nonexistent"))  # nothing read yet
    assert isinstance(c, PolicyChecker)
    assert isinstance(policy_checks(missing, tmp_path, insecure=True)(c.spec), Unchecked)


def test_install_refuses_before_writing_anything(env: Env) -> None:
    source = env.layout("app", atomic_files("1"))
    reject = policy_checks(env.tmp / "reject.json", env.tmp / "registries.d")
    (env.tmp / "reject.json").write_text('{"default": [{"type": "reject"}]}')
    host = replace(env.host, policy=reject)
    with pytest.raises(PolicyError, match="rejected"):
        install(host, InstallRequest(source, name="web"))
    assert env.store.refs() == {} and not list(env.dep().glob("*"))


def test_cli_pull_takes_the_policy_flag(
    tmp_path: Path, env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    source = env.layout("app", atomic_files("1"))
    reject = tmp_path / "reject.json"
    reject.write_text('{"default": [{"type": "reject"}]}')
    root = ["--root", str(tmp_path / "root")]
    assert cli.main([*root, "pull", source, "--name", "a:1", "--policy", str(reject)]) == 1
    assert "rejected by policy" in capsys.readouterr().err
    assert (
        cli.main(
            [*root, "pull", source, "--name", "a:1", "--policy", str(reject), "--insecure-policy"]
        )
        == 0
    )
