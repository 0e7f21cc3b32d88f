"""Tests for syscontainers.trust.policy and syscontainers.trust.scopes: strict parsing of
containers-policy.json(5), scope precedence, and the scopes of docker and path images (the
cases of containers/image's naming_test.go and oci/archive transports, ported by meaning)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from syscontainers.errors import PolicyError
from syscontainers.reference import normalize, parse
from syscontainers.trust.model import (
    IdentityKind,
    IdentityRule,
    Policy,
    Requirement,
    RequirementKind,
)
from syscontainers.trust.policy import load_policy, parse_policy, requirements_for
from syscontainers.trust.scopes import docker_scopes, path_scopes

ORIGIN = "policy /etc/containers/policy.json"
REJECT = {"type": "reject"}
ACCEPT = {"type": "insecureAcceptAnything"}
KEY = "/etc/pki/containers/key.gpg"
DIGEST = "sha256:" + "0123456789abcdef" * 4
ACCEPT_REQ = Requirement(RequirementKind.ACCEPT_ANYTHING)
REJECT_REQ = Requirement(RequirementKind.REJECT)

# /etc/containers/policy.json as Debian's golang-github-containers-common ships it.
DEBIAN_DEFAULT = b"""{
    "default": [
        {
            "type": "insecureAcceptAnything"
        }
    ]
}
"""


def policy(default: Any = None, transports: Any = None) -> bytes:
    doc: dict[str, Any] = {"default": [REJECT] if default is None else default}
    if transports is not None:
        doc["transports"] = transports
    return json.dumps(doc).encode()


def signed_by(**fields: Any) -> dict[str, Any]:
    return {"type": "signedBy", "keyType": "GPGKeys", "keyPath": KEY, **fields}


def only(req: dict[str, Any]) -> Requirement:
    """The one requirement of a policy whose default is REQ."""
    (parsed,) = parse_policy(policy([req]), ORIGIN).default
    return parsed


def error(data: bytes, base_dir: Path | None = None) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        parse_policy(data, ORIGIN, base_dir)
    assert info.value.hint
    return info.value


# ---- valid policies ----------------------------------------------------------------------


def test_debian_default_policy() -> None:
    parsed = parse_policy(DEBIAN_DEFAULT, ORIGIN)
    assert parsed == Policy(default=(ACCEPT_REQ,), transports=(), origin=ORIGIN)


def test_the_installed_policy_parses() -> None:
    path = Path("/etc/containers/policy.json")
    if not path.exists():
        pytest.skip("no /etc/containers/policy.json on this machine")
    parsed = load_policy(path)
    assert parsed.origin == f"policy {path}"
    assert parsed.default


def test_accept_and_reject() -> None:
    assert only(ACCEPT) == ACCEPT_REQ
    assert only(REJECT) == REJECT_REQ


def test_signed_by_key_sources() -> None:
    assert only(signed_by()) == Requirement(RequirementKind.SIGNED_BY, "GPGKeys", (Path(KEY),))
    many = {"type": "signedBy", "keyType": "GPGKeys", "keyPaths": ["/k/a.gpg", "/k/b.gpg"]}
    assert only(many).key_paths == (Path("/k/a.gpg"), Path("/k/b.gpg"))
    data = {"type": "signedBy", "keyType": "GPGKeys", "keyData": base64.b64encode(b"KEY").decode()}
    req = only(data)
    assert (req.key_paths, req.key_data) == ((), (b"KEY",))


def test_key_data_may_be_wrapped_like_go_allows() -> None:
    wrapped = base64.encodebytes(b"x" * 100).decode()  # has "\n" every 76 characters
    req = only({"type": "signedBy", "keyType": "GPGKeys", "keyData": wrapped})
    assert req.key_data == (b"x" * 100,)


@pytest.mark.parametrize(
    ("identity", "rule"),
    [
        (None, IdentityRule(IdentityKind.MATCH_REPO_DIGEST_OR_EXACT)),
        ({"type": "matchExact"}, IdentityRule(IdentityKind.MATCH_EXACT)),
        ({"type": "matchRepoDigestOrExact"}, IdentityRule(IdentityKind.MATCH_REPO_DIGEST_OR_EXACT)),
        ({"type": "matchRepository"}, IdentityRule(IdentityKind.MATCH_REPOSITORY)),
        (
            {"type": "exactReference", "dockerReference": "example.com/app:1"},
            IdentityRule(IdentityKind.EXACT_REFERENCE, reference="example.com/app:1"),
        ),
        (
            {"type": "exactReference", "dockerReference": f"busybox@{DIGEST}"},
            IdentityRule(IdentityKind.EXACT_REFERENCE, reference=f"busybox@{DIGEST}"),
        ),
        (
            {"type": "exactRepository", "dockerRepository": "example.com/ns/app"},
            IdentityRule(IdentityKind.EXACT_REPOSITORY, repository="example.com/ns/app"),
        ),
        (
            {
                "type": "remapIdentity",
                "prefix": "mirror.local:5000/hub",
                "signedPrefix": "docker.io",
            },
            IdentityRule(
                IdentityKind.REMAP_IDENTITY,
                prefix="mirror.local:5000/hub",
                signed_prefix="docker.io",
            ),
        ),
    ],
)
def test_signed_identities(identity: dict[str, str] | None, rule: IdentityRule) -> None:
    req = signed_by() if identity is None else signed_by(signedIdentity=identity)
    assert only(req).identity == rule


def test_sigstore_signed_is_parsed_not_refused() -> None:
    key = {"type": "sigstoreSigned", "keyPath": "/k/cosign.pub"}
    assert only(key) == Requirement(
        RequirementKind.SIGSTORE_SIGNED, key_paths=(Path("/k/cosign.pub"),)
    )
    datas = {"type": "sigstoreSigned", "keyDatas": ["YQ==", "Yg=="], "rekorPublicKeyData": "cg=="}
    assert only(datas).key_data == (b"a", b"b")
    fulcio = {
        "type": "sigstoreSigned",
        "fulcio": {"caPath": "/k/ca.pem", "oidcIssuer": "https://id", "subjectEmail": "a@b"},
        "rekorPublicKeyPath": "/k/rekor.pub",
        "signedIdentity": {"type": "matchRepository"},
    }
    req = only(fulcio)
    assert req.kind is RequirementKind.SIGSTORE_SIGNED
    assert req.identity == IdentityRule(IdentityKind.MATCH_REPOSITORY)
    pki = {
        "type": "sigstoreSigned",
        "pki": {"caRootsData": "cm9vdA==", "subjectHostname": "build.example.com"},
    }
    assert only(pki).kind is RequirementKind.SIGSTORE_SIGNED


def test_signed_base_layer_refuses_like_containers_image() -> None:
    layer = {
        "type": "signedBaseLayer",
        "baseLayerIdentity": {"type": "exactRepository", "dockerRepository": "example.com/base"},
    }
    assert only(layer) == REJECT_REQ


def test_realistic_policy() -> None:
    data = policy(
        [REJECT],
        {
            "docker": {
                "registry.access.redhat.com": [
                    signed_by(keyPath="/etc/pki/rpm-gpg/RPM-GPG-KEY-redhat-release")
                ],
                "quay.io/myorg": [
                    signed_by(signedIdentity={"type": "matchRepository"}),
                ],
                "docker.io/library": [ACCEPT],
                "*.internal.example.com": [ACCEPT],
                "": [REJECT],
            },
            "docker-daemon": {"": [ACCEPT]},
            "oci": {"/var/lib/syscontainers/trusted": [ACCEPT]},
            "docker-archive": {"": [REJECT]},
        },
    )
    parsed = parse_policy(data, ORIGIN)
    assert parsed.default == (REJECT_REQ,)
    assert [name for name, _ in parsed.transports] == [
        "docker",
        "docker-daemon",
        "oci",
        "docker-archive",
    ]
    docker = parsed.scopes("docker")
    assert list(docker) == [
        "registry.access.redhat.com",
        "quay.io/myorg",
        "docker.io/library",
        "*.internal.example.com",
        "",
    ]
    (rh,) = docker["registry.access.redhat.com"]
    assert rh.key_paths == (Path("/etc/pki/rpm-gpg/RPM-GPG-KEY-redhat-release"),)

    def lookup(name: str) -> str:
        return requirements_for(parsed, "docker", *docker_scopes(normalize(parse(name))))[1]

    assert lookup("registry.access.redhat.com/ubi9/ubi:latest") == (
        'transports.docker."registry.access.redhat.com"'
    )
    assert lookup("quay.io/myorg/tool:2") == 'transports.docker."quay.io/myorg"'
    assert lookup("quay.io/other/tool:2") == 'transports.docker.""'
    assert lookup("docker.io/busybox") == 'transports.docker."docker.io/library"'
    assert lookup("reg.internal.example.com:5000/x/y:1") == (
        'transports.docker."*.internal.example.com"'
    )
    assert requirements_for(parsed, "oci-archive", "/srv/a.tar", ("/srv/a.tar", "/srv")) == (
        (REJECT_REQ,),
        "default",
    )


# ---- rejections ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"default": [', "line 1 column 14: invalid JSON"),
        (b'{"default": [{"type": "reject"}]} {}', "invalid JSON: Extra data"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[]", "top level: expected a JSON object, got a list"),
        (b"{}", 'top level: no "default" requirements'),
        (b'{"default": [], "transports": {}}', "default: empty list of requirements"),
        (b'{"default": null}', "default: expected a JSON list, got null"),
        (b'{"default": [{"type": "reject"}], "Default": []}', 'top level: unknown key "Default"'),
        (
            b'{"default": [{"type": "reject"}], "default": [{"type": "reject"}]}',
            'top level: duplicate key "default"',
        ),
        (
            b'{"default": [{"type": "reject", "type": "reject"}]}',
            'default[0]: duplicate key "type"',
        ),
        (b'{"default": ["reject"]}', "default[0]: expected a JSON object, got a string"),
        (b'{"default": [{}]}', 'default[0]: requirement has no "type"'),
        (b'{"default": [{"type": 1}]}', "default[0].type: expected a string, got a number"),
        (
            b'{"default": [{"type": "insecureAcceptAnything", "keyPath": "/k"}]}',
            'default[0]: unknown key "keyPath"',
        ),
        (policy(transports=[]), "transports: expected a JSON object, got a list"),
        (
            policy(transports={"docker": []}),
            "transports.docker: expected a JSON object, got a list",
        ),
        (
            policy(transports={"docker": {"example.com": []}}),
            'transports.docker."example.com": empty list of requirements',
        ),
        (
            b'{"default": [{"type": "reject"}], "transports": {"docker": {"a.com": [{"type":'
            b' "reject"}], "a.com": [{"type": "reject"}]}}}',
            'transports.docker: duplicate key "a.com"',
        ),
        (
            b'{"default": [{"type": "reject"}], "transports": {"oci": {}, "oci": {}}}',
            'transports: duplicate key "oci"',
        ),
    ],
)
def test_structure_errors(data: bytes, message: str) -> None:
    err = error(data)
    assert err.message.startswith(ORIGIN + ": ")
    assert message in err.message


def test_unknown_requirement_type_names_origin_and_location() -> None:
    data = policy(transports={"docker": {"example.com/app": [{"type": "signedByX"}]}})
    err = error(data)
    assert err.message == (
        f'{ORIGIN}: transports.docker."example.com/app"[0]: unknown requirement type "signedByX"'
    )
    assert "signedBy" in (err.hint or "")


@pytest.mark.parametrize(
    ("req", "where", "message"),
    [
        ({"type": "signedBy", "keyPath": KEY}, "default[0]", 'signedBy has no "keyType"'),
        (signed_by(keyType="X509Certificates"), "default[0].keyType", "not implemented"),
        (signed_by(keyType="signedByGPGKeys"), "default[0].keyType", "not implemented"),
        (signed_by(keyType="gpgkeys"), "default[0].keyType", 'unknown keyType "gpgkeys"'),
        (signed_by(keyData="YQ=="), "default[0]", "more than one of keyPath, keyPaths and keyData"),
        (signed_by(keyPaths=[KEY]), "default[0]", "more than one of keyPath, keyPaths and keyData"),
        (
            {"type": "signedBy", "keyType": "GPGKeys"},
            "default[0]",
            "none of keyPath, keyPaths and keyData",
        ),
        (signed_by(keyPath=""), "default[0].keyPath", "keyPath is empty"),
        (signed_by(keyPath=7), "default[0].keyPath", "expected a string, got a number"),
        (signed_by(keyPath="key.gpg"), "default[0].keyPath", 'key path "key.gpg" is not absolute'),
        (
            {"type": "signedBy", "keyType": "GPGKeys", "keyPaths": [KEY, "rel.gpg"]},
            "default[0].keyPaths[1]",
            "is not absolute",
        ),
        (
            {"type": "signedBy", "keyType": "GPGKeys", "keyPaths": KEY},
            "default[0].keyPaths",
            "expected a JSON list, got a string",
        ),
        (
            {"type": "signedBy", "keyType": "GPGKeys", "keyData": "not base64!"},
            "default[0].keyData",
            "invalid base64",
        ),
        (
            {"type": "signedBy", "keyType": "GPGKeys", "keyData": "YQ"},
            "default[0].keyData",
            "invalid base64",
        ),
        (signed_by(keypath=KEY), "default[0]", 'unknown key "keypath"'),
        (
            signed_by(signedIdentity={"type": "matchSomething"}),
            "default[0].signedIdentity",
            'unknown signedIdentity type "matchSomething"',
        ),
        (
            signed_by(signedIdentity=None),
            "default[0].signedIdentity",
            "expected a JSON object, got null",
        ),
        (
            signed_by(signedIdentity={"type": "matchExact", "dockerReference": "a.com/b:1"}),
            "default[0].signedIdentity",
            'unknown key "dockerReference"',
        ),
        (
            signed_by(signedIdentity={"type": "exactReference"}),
            "default[0].signedIdentity",
            'missing key "dockerReference"',
        ),
        (
            signed_by(signedIdentity={"type": "exactReference", "dockerReference": "a.com/b"}),
            "default[0].signedIdentity.dockerReference",
            "has neither a tag nor a digest",
        ),
        (
            signed_by(signedIdentity={"type": "exactReference", "dockerReference": "A.com/B:1"}),
            "default[0].signedIdentity.dockerReference",
            "invalid dockerReference",
        ),
        (
            signed_by(signedIdentity={"type": "exactRepository", "dockerRepository": "a.com/B"}),
            "default[0].signedIdentity.dockerRepository",
            "invalid dockerRepository",
        ),
        (
            signed_by(signedIdentity={"type": "exactRepository", "dockerRepository": "f" * 64}),
            "default[0].signedIdentity.dockerRepository",
            "is an image ID",
        ),
        (
            signed_by(signedIdentity={"type": "remapIdentity", "prefix": "a.com"}),
            "default[0].signedIdentity",
            'missing key "signedPrefix"',
        ),
        (
            signed_by(
                signedIdentity={
                    "type": "remapIdentity",
                    "prefix": "a.com/x:1",
                    "signedPrefix": "b.com",
                }
            ),
            "default[0].signedIdentity.prefix",
            'prefix "a.com/x:1" is not a host[:port], namespace or repository',
        ),
        (
            signed_by(
                signedIdentity={
                    "type": "remapIdentity",
                    "prefix": "a.com",
                    "signedPrefix": "b.com/",
                }
            ),
            "default[0].signedIdentity.signedPrefix",
            "is not a host[:port]",
        ),
        (
            {"type": "signedBaseLayer"},
            "default[0]",
            'missing key "baseLayerIdentity"',
        ),
    ],
)
def test_requirement_errors(req: dict[str, Any], where: str, message: str) -> None:
    err = error(policy([req]))
    assert err.message.startswith(f"{ORIGIN}: {where}: "), err.message
    assert message in err.message


def test_relative_key_path_hint_uses_the_policy_directory(tmp_path: Path) -> None:
    err = error(policy([signed_by(keyPath="keys/a.gpg")]), base_dir=tmp_path)
    assert str(tmp_path / "keys/a.gpg") in (err.hint or "")


SIGSTORE = "sigstoreSigned"


@pytest.mark.parametrize(
    ("req", "where", "message"),
    [
        (
            {"type": SIGSTORE},
            "default[0]",
            "0 of keyPath, keyPaths, keyData, keyDatas, fulcio, pki",
        ),
        ({"type": SIGSTORE, "keyPath": ""}, "default[0]", "0 of keyPath"),
        (
            {"type": SIGSTORE, "keyPath": "/k", "keyData": ""},
            "default[0]",
            "2 of keyPath, keyPaths, keyData, keyDatas, fulcio, pki given; exactly one",
        ),
        ({"type": SIGSTORE, "keyPaths": []}, "default[0].keyPaths", "keyPaths has no entries"),
        ({"type": SIGSTORE, "keyDatas": []}, "default[0].keyDatas", "keyDatas has no entries"),
        ({"type": SIGSTORE, "keyPath": "k.pub"}, "default[0].keyPath", "is not absolute"),
        ({"type": SIGSTORE, "keyData": "%%%"}, "default[0].keyData", "invalid base64"),
        ({"type": SIGSTORE, "keyPath": "/k", "extra": 1}, "default[0]", 'unknown key "extra"'),
        (
            {
                "type": SIGSTORE,
                "keyPath": "/k",
                "rekorPublicKeyPath": "/r",
                "rekorPublicKeyData": "",
            },
            "default[0]",
            "2 of rekorPublicKeyPath",
        ),
        (
            {
                "type": SIGSTORE,
                "fulcio": {"caPath": "/ca", "oidcIssuer": "https://i", "subjectEmail": "a@b"},
            },
            "default[0]",
            "fulcio needs one of rekorPublicKeyPath",
        ),
        (
            {
                "type": SIGSTORE,
                "fulcio": {"caPath": "/ca", "subjectEmail": "a@b"},
                "rekorPublicKeyPath": "/r",
            },
            "default[0].fulcio",
            "fulcio needs a non-empty oidcIssuer and subjectEmail",
        ),
        (
            {
                "type": SIGSTORE,
                "fulcio": {"caPath": "/ca", "caData": "", "oidcIssuer": "i", "subjectEmail": "e"},
                "rekorPublicKeyPath": "/r",
            },
            "default[0].fulcio",
            "2 of caPath, caData given",
        ),
        (
            {"type": SIGSTORE, "pki": {"caRootsPath": "/r"}},
            "default[0].pki",
            "pki needs a non-empty subjectEmail or subjectHostname",
        ),
        (
            {
                "type": SIGSTORE,
                "pki": {"caRootsPath": "/r", "subjectEmail": "e"},
                "rekorPublicKeyPath": "/r",
            },
            "default[0]",
            "pki cannot be used with rekorPublicKeyPath",
        ),
        (
            {
                "type": SIGSTORE,
                "pki": {
                    "caRootsPath": "/r",
                    "caIntermediatesPath": "/i",
                    "caIntermediatesData": "",
                    "subjectEmail": "e",
                },
            },
            "default[0].pki",
            "2 of caIntermediatesPath, caIntermediatesData given; at most one",
        ),
        (
            {"type": SIGSTORE, "keyPath": "/k", "signedIdentity": {"type": "exactRepository"}},
            "default[0].signedIdentity",
            'missing key "dockerRepository"',
        ),
    ],
)
def test_sigstore_errors(req: dict[str, Any], where: str, message: str) -> None:
    err = error(policy([req]))
    assert err.message.startswith(f"{ORIGIN}: {where}: "), err.message
    assert message in err.message


# ---- scopes in the policy ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("transport", "scope"),
    [
        ("docker", "example.com"),
        ("docker", "example.com:5000"),
        ("docker", "localhost"),
        ("docker", "[::1]:5000/app"),
        ("docker", "*.example.com"),
        ("docker", "*.com"),
        ("docker", "docker.io/library"),
        ("docker", "docker.io/library/busybox"),
        ("docker", "example.com/ns/app:1.0"),
        ("docker", f"example.com/ns/app@{DIGEST}"),
        ("oci", "/var/lib/images"),
        ("oci-archive", "/srv/images/app.tar"),
        ("dir", "/srv"),
        ("containers-storage", "[overlay@/var/lib/containers/storage]docker.io/library/x"),
        ("some-future-transport", "anything at all"),
    ],
)
def test_valid_scopes(transport: str, scope: str) -> None:
    parsed = parse_policy(policy(transports={transport: {scope: [ACCEPT]}}), ORIGIN)
    assert parsed.scopes(transport) == {scope: (ACCEPT_REQ,)}


@pytest.mark.parametrize(
    ("transport", "scope", "message"),
    [
        ("docker", "busybox", "is not a registry host"),
        ("docker", "busybox:latest", "is not a registry host"),
        ("docker", "library/busybox", "does not start with a registry host"),
        ("docker", "Example.com/App", "is not a valid image name"),
        ("docker", "example.com/app:", "is not a valid image name"),
        ("docker", f"example.com/app:1@{DIGEST}", "has both a tag and a digest"),
        ("docker", "*.example.com:5000", "is not *.DOMAIN"),
        ("docker", "example*.*.com", "is not a registry host"),
        ("docker", "*", "is not *.DOMAIN"),
        ("oci", "var/lib/images", "is not an absolute path"),
        ("oci", "/", "would shadow the transport default"),
        ("oci", "/var/lib/../images", "is not a canonical path"),
        ("oci-archive", "/srv/images/", "is not a canonical path"),
        ("oci-archive", "//srv", "is not a canonical path"),
        ("docker-archive", "/srv/a.tar", "has no scopes but the default"),
        ("tarball", "/x", "has no scopes but the default"),
    ],
)
def test_invalid_scopes(transport: str, scope: str, message: str) -> None:
    err = error(policy(transports={transport: {scope: [ACCEPT]}}))
    where = f"transports.{transport}.{json.dumps(scope)}"
    assert err.message.startswith(f"{ORIGIN}: {where}: "), err.message
    assert message in err.message


def test_canonical_path_hint() -> None:
    err = error(policy(transports={"oci": {"/a/./b//c/": [ACCEPT]}}))
    assert err.hint == 'write it as "/a/b/c"'


# ---- precedence ----------------------------------------------------------------------------

APP = "example.com/ns/app"
A, B, C, D, E = (
    Requirement(RequirementKind.SIGNED_BY, "GPGKeys", (Path(f"/{n}"),)) for n in "abcde"
)


def precedence_policy(*scopes: str) -> Policy:
    table = {f"{APP}:1": A, APP: B, "example.com": C, "*.com": D, "": E}
    docker = {scope: [signed_by(keyPath=table[scope].key_paths[0].as_posix())] for scope in scopes}
    return parse_policy(policy([REJECT], {"docker": docker}), ORIGIN)


@pytest.mark.parametrize(
    ("scopes", "expected", "label"),
    [
        ((f"{APP}:1", APP, "example.com", "*.com", ""), A, f'transports.docker."{APP}:1"'),
        ((APP, "example.com", "*.com", ""), B, f'transports.docker."{APP}"'),
        (("*.com", "example.com", ""), C, 'transports.docker."example.com"'),
        (("*.com", ""), D, 'transports.docker."*.com"'),
        (("",), E, 'transports.docker.""'),
        ((), REJECT_REQ, "default"),
    ],
)
def test_scope_precedence(scopes: tuple[str, ...], expected: Requirement, label: str) -> None:
    identity, namespaces = docker_scopes(normalize(parse(f"{APP}:1")))
    assert requirements_for(precedence_policy(*scopes), "docker", identity, namespaces) == (
        (expected,),
        label,
    )


def test_another_transport_does_not_match() -> None:
    parsed = precedence_policy(APP, "")
    identity, namespaces = docker_scopes(normalize(parse(f"{APP}:1")))
    assert requirements_for(parsed, "docker-daemon", identity, namespaces) == (
        (REJECT_REQ,),
        "default",
    )


def test_digest_identity_does_not_match_a_tag_scope() -> None:
    parsed = precedence_policy(f"{APP}:1", "")
    identity, namespaces = docker_scopes(normalize(parse(f"{APP}@{DIGEST}")))
    assert requirements_for(parsed, "docker", identity, namespaces)[1] == 'transports.docker.""'


def test_docker_archive_uses_its_default_scope() -> None:
    parsed = parse_policy(policy([ACCEPT], {"docker-archive": {"": [REJECT]}}), ORIGIN)
    identity, namespaces = path_scopes("docker-archive", Path("/srv/a.tar"), "app:1")
    assert requirements_for(parsed, "docker-archive", identity, namespaces) == (
        (REJECT_REQ,),
        'transports.docker-archive.""',
    )


def test_oci_precedence(tmp_path: Path) -> None:
    layout = tmp_path / "images" / "app"
    layout.mkdir(parents=True)
    parent = str(tmp_path.resolve() / "images")
    data = policy([REJECT], {"oci": {parent: [ACCEPT], "/nonexistent": [REJECT]}})
    parsed = parse_policy(data, ORIGIN)
    identity, namespaces = path_scopes("oci", layout)
    assert requirements_for(parsed, "oci", identity, namespaces) == (
        (ACCEPT_REQ,),
        f"transports.oci.{json.dumps(parent)}",
    )


# ---- docker_scopes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "identity", "namespaces"),
    [
        (
            "docker.io/library/busybox:latest",
            "docker.io/library/busybox:latest",
            ["docker.io/library/busybox", "docker.io/library", "docker.io", "*.io"],
        ),
        (
            "index.docker.io/busybox",
            "docker.io/library/busybox:latest",
            ["docker.io/library/busybox", "docker.io/library", "docker.io", "*.io"],
        ),
        (
            f"yet.another.example.com:8443/ns/repo@{DIGEST}",
            f"yet.another.example.com:8443/ns/repo@{DIGEST}",
            [
                "yet.another.example.com:8443/ns/repo",
                "yet.another.example.com:8443/ns",
                "yet.another.example.com:8443",
                "*.another.example.com",
                "*.example.com",
                "*.com",
            ],
        ),
        (
            "registry.example.org/a/b/c/app:2.1",
            "registry.example.org/a/b/c/app:2.1",
            [
                "registry.example.org/a/b/c/app",
                "registry.example.org/a/b/c",
                "registry.example.org/a/b",
                "registry.example.org/a",
                "registry.example.org",
                "*.example.org",
                "*.org",
            ],
        ),
        (
            "localhost/ns/repo:1",
            "localhost/ns/repo:1",
            ["localhost/ns/repo", "localhost/ns", "localhost"],
        ),
        (
            "localhost:5000/repo:1",
            "localhost:5000/repo:1",
            ["localhost:5000/repo", "localhost:5000"],
        ),
    ],
)
def test_docker_scopes(name: str, identity: str, namespaces: list[str]) -> None:
    assert docker_scopes(parse(name)) == (identity, tuple(namespaces))


def test_docker_scopes_refuse_tag_and_digest() -> None:
    with pytest.raises(PolicyError, match="both a tag and a digest"):
        docker_scopes(parse(f"example.com/app:1@{DIGEST}"))


# ---- path_scopes -----------------------------------------------------------------------------


def ancestors(path: Path) -> tuple[str, ...]:
    """PATH and its parents, without "/"."""
    return tuple(str(p) for p in (path, *path.parents) if str(p) != "/")


@pytest.mark.parametrize("transport", ["oci", "oci-archive"])
def test_path_scopes(tmp_path: Path, transport: str) -> None:
    real = tmp_path.resolve() / "store" / "app"
    real.mkdir(parents=True)
    (tmp_path / "link").symlink_to(real)
    identity, namespaces = path_scopes(transport, tmp_path / "link", "v1")
    assert identity == str(real)
    assert namespaces == ancestors(real)
    assert namespaces[-1].count("/") == 1 and namespaces[0] == identity
    # The :ref part is not part of the identity, in containers/image either.
    assert path_scopes(transport, real) == (identity, namespaces)


def test_path_scopes_of_a_relative_and_missing_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    missing = tmp_path.resolve() / "not-yet.tar"
    assert path_scopes("oci-archive", Path("not-yet.tar")) == (str(missing), ancestors(missing))


def test_path_scopes_docker_archive_has_no_identity(tmp_path: Path) -> None:
    assert path_scopes("docker-archive", tmp_path / "a.tar", "app:1") == ("", ())


def test_path_scopes_unknown_transport(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="dir"):
        path_scopes("dir", tmp_path)


# ---- load_policy ------------------------------------------------------------------------------


def test_load_policy(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_bytes(policy([ACCEPT], {"oci": {"/srv": [REJECT]}}))
    parsed = load_policy(path)
    assert parsed.origin == f"policy {path}"
    assert parsed.scopes("oci") == {"/srv": (REJECT_REQ,)}


def test_load_policy_missing(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert info.value.message == f"no trust policy at {path}"
    assert "containers-policy.json(5)" in (info.value.hint or "")
    assert "--insecure-policy" in (info.value.hint or "")


def test_load_policy_unreadable(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read the trust policy"):
        load_policy(tmp_path)


def test_load_policy_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_bytes(policy([signed_by(keyPath="k.gpg")]))
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert info.value.message.startswith(f"policy {path}: default[0].keyPath: ")
    assert str(tmp_path / "k.gpg") in (info.value.hint or "")
