"""Containers config parity, with skopeo as the oracle: the same HOME, XDG dirs, DOCKER_CONFIG,
REGISTRY_AUTH_FILE and credential helpers make skopeo and syscontainers succeed or fail alike
against a real registry with htpasswd auth on loopback (and use the same helper calls)."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.credhelper_script import calls, stored, write_helper
from tests.integration.conftest_registry import (
    Registry,
    TokenServer,
    alice_registry,
    build_images,
    push,
    registry_server,
    requires_registry,
)
from tests.integration.parity_box import Box, make_box

pytestmark = requires_registry
GOOD, BAD = ("alice", "s3cret"), ("alice", "wrong")


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry with Basic auth (alice / s3cret) holding private/app:1."""
    with alice_registry(tmp_path_factory.mktemp("parity-registry"), "private/app:1") as registry:
        yield registry


@pytest.fixture
def box(tmp_path: Path, auth_registry: Registry) -> Box:
    return make_box(tmp_path, auth_registry.host)


def both_inspect(box: Box) -> tuple[bool, subprocess.CompletedProcess[str]]:
    """(skopeo succeeded, our result) for inspecting private/app:1."""
    image = f"docker://{box.host}/private/app:1"
    oracle = box.skopeo("inspect", "--tls-verify=false", image)
    ours = box.ours("inspect", "--tls-verify=false", "--json", image)
    return oracle.returncode == 0, ours


def auths(host: str, creds: tuple[str, str], **extra: object) -> dict[str, object]:
    token = base64.b64encode(":".join(creds).encode()).decode()
    return {"auths": {host: {"auth": token}}, **extra}


def agree(box: Box, expect: bool) -> subprocess.CompletedProcess[str]:
    """Both tools succeed (EXPECT) or both fail; returns our result."""
    oracle_ok, ours = both_inspect(box)
    assert oracle_ok is expect, "skopeo, the oracle, did not do what the test expects"
    assert (ours.returncode == 0) is expect, ours.stderr
    return ours


# ---- the auth file lookup order ------------------------------------------------------------


def test_anonymous_access_is_refused_by_both(box: Box) -> None:
    assert "requires authentication" in agree(box, False).stderr


@pytest.mark.parametrize(
    "rel",
    ["run/containers/auth.json", "home/.config/containers/auth.json", "home/.docker/config.json"],
)
def test_each_default_auth_file_is_read(box: Box, rel: str) -> None:
    box.write(rel, auths(box.host, GOOD))
    agree(box, True)


def test_the_runtime_file_wins_over_the_config_home_file(box: Box) -> None:
    box.write("run/containers/auth.json", auths(box.host, BAD))
    box.write("home/.config/containers/auth.json", auths(box.host, GOOD))
    assert "denied access" in agree(box, False).stderr
    box.write("run/containers/auth.json", auths("other.example", BAD))
    agree(box, True)  # a file without an entry for the host lets the next one answer


def test_xdg_config_home_moves_the_user_auth_file(box: Box) -> None:
    box.write("cfg/containers/auth.json", auths(box.host, GOOD))
    agree(box, False)
    box.env["XDG_CONFIG_HOME"] = str(box.root / "cfg")
    agree(box, True)


def test_docker_config_replaces_the_home_docker_dir(box: Box) -> None:
    box.write("home/.docker/config.json", auths(box.host, GOOD))
    box.env["DOCKER_CONFIG"] = str(box.root / "dockerconf")
    agree(box, False)
    box.write("dockerconf/config.json", auths(box.host, GOOD))
    agree(box, True)


def test_legacy_dockercfg_is_read_last(box: Box) -> None:
    token = base64.b64encode(b"alice:s3cret").decode()
    box.write("home/.dockercfg", {f"https://{box.host}": {"auth": token, "email": "a@b"}})
    agree(box, True)
    box.write("home/.docker/config.json", auths(box.host, BAD))
    agree(box, False)


def skopeo_version() -> tuple[int, ...]:
    out = subprocess.run(["skopeo", "--version"], capture_output=True, text=True).stdout
    return tuple(int(x) for x in out.split()[2].split(".")[:2])


def test_registry_auth_file_is_exclusive(box: Box) -> None:
    box.write("home/.docker/config.json", auths(box.host, GOOD))
    box.env["REGISTRY_AUTH_FILE"] = str(box.write("elsewhere.json", {"auths": {}}))
    oracle_ok, ours = both_inspect(box)
    assert ours.returncode == 1 and "requires authentication" in ours.stderr
    # skopeo before 1.11 (containers/image before 5.24) still read ~/.config and ~/.docker
    # after a user-given auth file; newer ones read that file alone, as we do on purpose
    assert oracle_ok is (skopeo_version() < (1, 11))
    box.write("elsewhere.json", auths(box.host, GOOD))
    agree(box, True)


# ---- credential helpers --------------------------------------------------------------------


def test_cred_helpers_run_the_same_helper_with_the_same_host(box: Box) -> None:
    log = write_helper(box.bin, "test", {box.host: GOOD})
    box.write("home/.docker/config.json", {"auths": {}, "credHelpers": {box.host: "test"}})
    agree(box, True)
    # skopeo asked once; we asked only when the registry challenged, with the same host
    assert set(calls(log)) == {f"get {box.host}"} and len(calls(log)) >= 2


def test_cred_helpers_entry_beats_an_inline_entry_in_the_same_file(box: Box) -> None:
    write_helper(box.bin, "test", {box.host: BAD})
    doc = auths(box.host, GOOD, credHelpers={box.host: "test"})
    box.write("home/.config/containers/auth.json", doc)
    agree(box, False)


def test_a_helper_without_credentials_for_the_host_lets_later_files_answer(box: Box) -> None:
    write_helper(box.bin, "test", {"other.example": GOOD})
    box.write("run/containers/auth.json", {"auths": {}, "credHelpers": {box.host: "test"}})
    box.write("home/.docker/config.json", auths(box.host, GOOD))
    agree(box, True)


@pytest.mark.parametrize("broken", ["absent", "failing"])
def test_a_missing_or_failing_helper_fails_both_with_a_hint(box: Box, broken: str) -> None:
    if broken == "failing":
        write_helper(box.bin, broken, {box.host: GOOD}, fail=True)
    path = box.write("home/.docker/config.json", {"auths": {}, "credHelpers": {box.host: broken}})
    ours = agree(box, False)
    assert f"docker-credential-{broken}" in ours.stderr
    if broken == "absent":
        assert "not installed" in ours.stderr
        assert "hint: install docker-credential-absent on PATH, or remove" in ours.stderr
        assert str(path) in ours.stderr
    else:
        assert "keyring is locked" in ours.stderr
    assert ours.returncode == 1


def test_creds_store_is_used_by_us_and_ignored_by_skopeo(box: Box) -> None:
    """A deliberate difference (README): docker's credsStore default helper is honoured."""
    log = write_helper(box.bin, "desk", {box.host: GOOD})
    box.write("home/.docker/config.json", {"auths": {box.host: {}}, "credsStore": "desk"})
    oracle_ok, ours = both_inspect(box)
    assert not oracle_ok  # containers/image does not read credsStore
    assert ours.returncode == 0, ours.stderr
    assert calls(log) == [f"get {box.host}"]


# ---- login and logout ----------------------------------------------------------------------


def login(box: Box, tool: str, *extra: str) -> subprocess.CompletedProcess[str]:
    flags = ("--tls-verify=false", "-u", "alice", "--password-stdin", *extra)
    return box.run(tool, "login", *flags, box.host, stdin="s3cret\n")


@pytest.mark.parametrize("env", ["default", "REGISTRY_AUTH_FILE", "--authfile"])
def test_login_writes_where_skopeo_login_writes(box: Box, env: str) -> None:
    extra: tuple[str, ...] = ()
    if env == "REGISTRY_AUTH_FILE":
        box.env["REGISTRY_AUTH_FILE"] = str(box.root / "named" / "auth.json")
    elif env == "--authfile":
        extra = ("--authfile", str(box.root / "flag" / "auth.json"))
    written = {}
    for tool in ("skopeo", "ours"):
        before = set(box.root.rglob("*.json"))
        result = login(box, tool, *extra)
        assert result.returncode == 0, result.stderr
        new = set(box.root.rglob("*.json")) - before
        written[tool] = new
        for path in new:
            doc = json.loads(path.read_text())
            assert base64.b64decode(doc["auths"][box.host]["auth"]) == b"alice:s3cret"
            assert (path.stat().st_mode & 0o777) == 0o600
            path.unlink()
    assert written["ours"] == written["skopeo"] and len(written["ours"]) == 1


def test_login_and_logout_use_the_files_cred_helper_as_skopeo_does(box: Box) -> None:
    write_helper(box.bin, "test", {})
    path = box.write("run/containers/auth.json", {"auths": {}, "credHelpers": {box.host: "test"}})
    for tool in ("skopeo", "ours"):
        assert login(box, tool).returncode == 0
        assert stored(box.bin, "test") == {box.host: ["alice", "s3cret"]}
        assert json.loads(path.read_text())["auths"] == {}
        agree(box, True)
        assert box.run(tool, "logout", box.host).returncode == 0, tool
        assert stored(box.bin, "test") == {}


def test_logout_of_credentials_that_another_file_holds(box: Box) -> None:
    docker = box.write("home/.docker/config.json", auths(box.host, GOOD))
    oracle = box.skopeo("logout", box.host)
    ours = box.ours("logout", box.host)
    assert oracle.returncode != 0 and ours.returncode == 1
    assert "not logged in" in ours.stderr.lower()
    assert f"come from {docker}" in ours.stderr and "docker logout" in ours.stderr
    assert json.loads(docker.read_text())["auths"]  # neither tool touched docker's file


def test_an_identity_token_is_traded_for_an_access_token(tmp_path: Path) -> None:
    """A helper's '<token>' username: the secret is an OAuth2 refresh token, POSTed to the
    token server (grant_type=refresh_token), by skopeo and by us alike."""
    with TokenServer(tmp_path / "token", {"alice": "s3cret"}) as tokens:
        with registry_server(tmp_path / "registry", token=tokens) as registry:
            push(build_images(tmp_path / "layout").layout, "busybox", registry,
                 "private/app:1", "--dest-creds", "alice:s3cret")  # fmt: skip
            (tmp_path / "box").mkdir()
            box = make_box(tmp_path / "box", registry.host)
            tokens.refresh_tokens["refresh-alice"] = "alice"
            write_helper(box.bin, "test", {box.host: ("<token>", "refresh-alice")})
            box.write("home/.docker/config.json", {"auths": {}, "credHelpers": {box.host: "test"}})
            agree(box, True)
            write_helper(box.bin, "test", {box.host: ("<token>", "stale")})
            refused = tokens.refused
            ours = agree(box, False)
            assert "refused the identity token" in ours.stderr
            assert tokens.refused >= refused + 2  # each tool asked, and was refused


def test_logout_all_erases_every_helper_entry_as_skopeo_does(box: Box) -> None:
    token = base64.b64encode(b"u:p").decode()
    doc = {"auths": {"a.example": {"auth": token}}, "credHelpers": {"h.example": "test"}}
    for tool in ("skopeo", "ours"):
        write_helper(box.bin, "test", {"h.example": GOOD, "other.example": GOOD})
        path = box.write("run/containers/auth.json", doc)
        assert box.run(tool, "logout", "--all").returncode == 0, tool
        assert stored(box.bin, "test") == {"other.example": list(GOOD)}, tool
        assert json.loads(path.read_text())["auths"] == {}, tool
    # skopeo also drops the credHelpers configuration itself; we keep it (README)
    assert json.loads(path.read_text())["credHelpers"] == {"h.example": "test"}


def test_login_with_a_missing_xdg_runtime_dir_fails_in_both(box: Box) -> None:
    box.env["XDG_RUNTIME_DIR"] = str(box.root / "no-such-dir")
    oracle = login(box, "skopeo")
    ours = login(box, "ours")
    assert oracle.returncode != 0 and "XDG_RUNTIME_DIR" in oracle.stderr
    assert ours.returncode == 1 and "XDG_RUNTIME_DIR" in ours.stderr and "hint:" in ours.stderr
    assert not (box.root / "no-such-dir").exists()


@pytest.mark.parametrize(
    ("helpers", "expect"),
    [
        ('["test", "containers-auth.json"]', True),  # the helper's good password first
        ('["containers-auth.json", "test"]', False),  # the file's bad one first
        ('["absent", "test"]', True),  # a helper that is not installed lets the next answer
    ],
)
def test_registries_conf_credential_helpers_in_order(box: Box, helpers: str, expect: bool) -> None:
    write_helper(box.bin, "test", {box.host: GOOD})
    box.write("home/.config/containers/auth.json", auths(box.host, BAD))
    box.write("home/.config/containers/registries.conf", f"credential-helpers = {helpers}\n")
    agree(box, expect)
