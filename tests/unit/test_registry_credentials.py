"""Tests for syscontainers.registry.credentials: auth-file lookup order, keys, login, logout."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from syscontainers.errors import AuthError, UsageError
from syscontainers.registry.credentials import (
    AuthFile,
    Credentials,
    auth_files,
    lookup,
    lookup_helpers,
    normalize_key,
    remove,
    store,
    write_target,
)
from tests.credhelper_script import calls, stored, write_helper


def entry(user: str, password: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


def write_auths(path: Path, auths: dict[str, object], **extra: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"auths": auths, **extra}))
    return path


def test_lookup_order_from_the_environment(tmp_path: Path) -> None:
    env = {"XDG_RUNTIME_DIR": "/run/user/7", "HOME": "/home/u"}
    assert auth_files(env) == [
        AuthFile(Path("/run/user/7/containers/auth.json")),
        AuthFile(Path("/home/u/.config/containers/auth.json")),
        AuthFile(Path("/home/u/.docker/config.json")),
        AuthFile(Path("/home/u/.dockercfg"), legacy=True),
    ]
    moved = {**env, "XDG_CONFIG_HOME": "/cfg", "DOCKER_CONFIG": "/dc"}
    assert [f.path for f in auth_files(moved)] == [
        Path("/run/user/7/containers/auth.json"),
        Path("/cfg/containers/auth.json"),
        Path("/dc/config.json"),
        Path("/home/u/.dockercfg"),
    ]
    assert [f.path for f in auth_files({"HOME": "/root"}, uid=0)][0] == Path(
        "/run/containers/0/auth.json"
    )
    assert auth_files(env, authfile=tmp_path / "x.json") == [AuthFile(tmp_path / "x.json")]
    # $REGISTRY_AUTH_FILE is exclusive, as skopeo's --authfile default is
    assert auth_files({**env, "REGISTRY_AUTH_FILE": "/a.json"}) == [AuthFile(Path("/a.json"))]
    assert write_target({**env, "REGISTRY_AUTH_FILE": "/a.json"}) == Path("/a.json")
    assert write_target({"XDG_RUNTIME_DIR": str(tmp_path)}) == tmp_path / "containers/auth.json"


def test_login_needs_an_existing_xdg_runtime_dir(tmp_path: Path) -> None:
    env = {"XDG_RUNTIME_DIR": str(tmp_path / "gone")}
    with pytest.raises(AuthError, match="does not exist") as err:
        write_target(env)
    assert err.value.hint and "unset $XDG_RUNTIME_DIR" in err.value.hint
    assert write_target(env, tmp_path / "a.json") == tmp_path / "a.json"
    assert write_target({**env, "REGISTRY_AUTH_FILE": "/b.json"}) == Path("/b.json")


@pytest.mark.parametrize(
    ("key", "normal"),
    [
        ("quay.io", "quay.io"),
        ("quay.io/team/app", "quay.io/team/app"),
        ("https://index.docker.io/v1/", "docker.io"),
        ("http://registry.local:5000/v2/", "registry.local:5000"),
        ("registry-1.docker.io/user", "docker.io/user"),
        ("quay.io/", "quay.io"),
    ],
)
def test_normalize_key(key: str, normal: str) -> None:
    assert normalize_key(key) == normal


def test_most_specific_key_wins_within_a_file(tmp_path: Path) -> None:
    f = write_auths(
        tmp_path / "auth.json",
        {
            "quay.io": entry("host", "1"),
            "quay.io/team": entry("team", "2"),
            "quay.io/team/app": entry("app", "3"),
        },
    )
    assert lookup([AuthFile(f)], "quay.io", "team/app") == Credentials("app", "3")
    assert lookup([AuthFile(f)], "quay.io", "team/other") == Credentials("team", "2")
    assert lookup([AuthFile(f)], "quay.io", "else/x") == Credentials("host", "1")
    assert lookup([AuthFile(f)], "docker.io", "library/x") is None


def test_first_file_with_an_entry_wins(tmp_path: Path) -> None:
    first = write_auths(tmp_path / "1.json", {"other.io": entry("o", "o")})
    second = write_auths(tmp_path / "2.json", {"quay.io": entry("second", "p:w")})
    third = write_auths(tmp_path / "3.json", {"quay.io/team": entry("third", "x")})
    missing = tmp_path / "missing.json"
    files = [AuthFile(p) for p in (missing, first, second, third)]
    # a colon in the password survives
    assert lookup(files, "quay.io", "team/app") == Credentials("second", "p:w")


def test_docker_config_legacy_hub_key(tmp_path: Path) -> None:
    f = write_auths(
        tmp_path / "config.json",
        {"https://index.docker.io/v1/": entry("hub", "pw")},
        credsStore="desktop",
    )
    assert lookup([AuthFile(f)], "docker.io", "library/busybox") == Credentials("hub", "pw")


def test_entries_without_auth_are_skipped(tmp_path: Path) -> None:
    f = write_auths(tmp_path / "a.json", {"quay.io/team": {}, "quay.io": entry("u", "p")})
    assert lookup([AuthFile(f)], "quay.io", "team/app") == Credentials("u", "p")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"auths": []}', "no auths object"),
        ('{"auths": {"quay.io": {"auth": "!!!"}}}', "not base64"),
        ('{"auths": {"quay.io": {"auth": "bm9jb2xvbg=="}}}', "not user:password"),
    ],
)
def test_bad_auth_files(tmp_path: Path, content: str, message: str) -> None:
    f = tmp_path / "auth.json"
    f.write_text(content)
    with pytest.raises(AuthError, match=message):
        lookup([AuthFile(f)], "quay.io", "app")


def test_store_writes_0600_and_keeps_other_entries(tmp_path: Path) -> None:
    f = write_auths(
        tmp_path / "run" / "auth.json",
        {"other.io": entry("o", "p"), "https://quay.io/v1/": entry("old", "x")},
        credHelpers={"gcr.io": "gcr"},
    )
    f.chmod(0o644)
    store(f, "quay.io", Credentials("alice", "s3:cret"))
    doc = json.loads(f.read_text())
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert set(doc["auths"]) == {"other.io", "quay.io"}  # the legacy key was replaced
    assert doc["credHelpers"] == {"gcr.io": "gcr"}
    assert lookup([AuthFile(f)], "quay.io", "x") == Credentials("alice", "s3:cret")
    assert [p.name for p in f.parent.iterdir()] == ["auth.json"]  # no temp file left


def test_store_creates_the_file_and_directories(tmp_path: Path) -> None:
    f = tmp_path / "run" / "containers" / "auth.json"
    store(f, "127.0.0.1:5000", Credentials("u", "p"))
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert lookup([AuthFile(f)], "127.0.0.1:5000", "a/b") == Credentials("u", "p")
    with pytest.raises(UsageError):
        store(f, "x.io", Credentials("a:b", "p"))


def test_remove_one_and_all(tmp_path: Path) -> None:
    f = write_auths(
        tmp_path / "auth.json",
        {
            "quay.io": entry("a", "b"),
            "https://index.docker.io/v1/": entry("c", "d"),
            "x.io": entry("e", "f"),
        },
    )
    assert remove(f, "docker.io") == ["https://index.docker.io/v1/"]
    assert set(json.loads(f.read_text())["auths"]) == {"quay.io", "x.io"}
    with pytest.raises(AuthError, match="not logged in to docker.io"):
        remove(f, "docker.io")
    assert sorted(remove(f, None)) == ["quay.io", "x.io"]
    assert json.loads(f.read_text())["auths"] == {}
    assert stat.S_IMODE(f.stat().st_mode) == 0o600


def test_credentials_repr_hides_the_password() -> None:
    assert "hunter2" not in repr(Credentials("bob", "hunter2"))


# ---- credential helpers (a real docker-credential-NAME script on a tmp PATH) ----


@pytest.fixture
def helper_env(tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH has docker-credential-test (and -store) first."""
    import os

    bin_dir = tmp_path / "bin"
    write_helper(bin_dir, "test", {"quay.io": ("helped", "hs")})
    write_helper(bin_dir, "store", {"quay.io": ("stored", "ss"), "x.io": ("<token>", "rt")})
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}


def test_cred_helpers_entry_runs_the_helper_for_its_host(
    tmp_path: Path, helper_env: dict[str, str]
) -> None:
    f = write_auths(
        tmp_path / "config.json",
        {"quay.io": entry("inline", "i"), "other.io": entry("o", "o")},
        credHelpers={"quay.io": "test"},
    )
    files = [AuthFile(f)]
    assert lookup(files, "quay.io", "team/app", helper_env) == Credentials("helped", "hs")
    assert calls(tmp_path / "bin" / "test.log") == ["get quay.io"]
    assert lookup(files, "other.io", "a", helper_env) == Credentials("o", "o")
    assert calls(tmp_path / "bin" / "test.log") == ["get quay.io"]  # only for its host


def test_a_helper_without_credentials_lets_the_next_file_answer(
    tmp_path: Path, helper_env: dict[str, str]
) -> None:
    first = write_auths(tmp_path / "1.json", {}, credHelpers={"z.io": "test"})
    second = write_auths(tmp_path / "2.json", {"z.io": entry("later", "l")})
    assert lookup([AuthFile(first), AuthFile(second)], "z.io", "", helper_env) == Credentials(
        "later", "l"
    )


def test_creds_store_is_asked_after_the_inline_entries(
    tmp_path: Path, helper_env: dict[str, str]
) -> None:
    f = write_auths(tmp_path / "c.json", {"y.io": entry("inline", "i")}, credsStore="store")
    files = [AuthFile(f)]
    assert lookup(files, "y.io", "a", helper_env) == Credentials("inline", "i")
    assert lookup(files, "quay.io", "a", helper_env) == Credentials("stored", "ss")
    token = lookup(files, "x.io", "a", helper_env)
    assert token is not None and token.identity_token and token.password == "rt"
    assert lookup(files, "none.io", "a", helper_env) is None


def test_a_missing_or_failing_helper_is_a_clear_error(
    tmp_path: Path, helper_env: dict[str, str]
) -> None:
    f = write_auths(tmp_path / "c.json", {}, credHelpers={"quay.io": "absent", "x.io": "bro"})
    write_helper(tmp_path / "bin", "bro", {}, fail=True)
    with pytest.raises(AuthError) as missing:
        lookup([AuthFile(f)], "quay.io", "a", helper_env)
    assert "docker-credential-absent" in missing.value.message
    assert missing.value.hint and "install docker-credential-absent" in missing.value.hint
    assert str(f) in missing.value.hint
    with pytest.raises(AuthError, match="keyring is locked") as failing:
        lookup([AuthFile(f)], "x.io", "a", helper_env)
    assert "docker-credential-bro get for x.io failed" in failing.value.message


def test_legacy_dockercfg_is_a_bare_map(tmp_path: Path) -> None:
    f = tmp_path / ".dockercfg"
    f.write_text(json.dumps({"https://quay.io/v1/": entry("old", "o"), "auths": {}}))
    assert lookup([AuthFile(f, legacy=True)], "quay.io", "team/app") == Credentials("old", "o")


def test_identity_token_entries(tmp_path: Path) -> None:
    f = write_auths(tmp_path / "a.json", {"quay.io": {"identitytoken": "refresh"}})
    creds = lookup([AuthFile(f)], "quay.io", "x")
    assert creds is not None and creds.identity_token and creds.password == "refresh"


def test_login_and_logout_go_to_the_files_helper(
    tmp_path: Path, helper_env: dict[str, str]
) -> None:
    f = write_auths(tmp_path / "auth.json", {"a.io": entry("a", "a")}, credHelpers={"h.io": "test"})
    assert store(f, "h.io", Credentials("new", "pw"), helper_env) == (
        "credential helper docker-credential-test"
    )
    assert stored(tmp_path / "bin", "test")["h.io"] == ["new", "pw"]
    assert set(json.loads(f.read_text())["auths"]) == {"a.io"}
    with pytest.raises(UsageError, match="whole registries"):
        store(f, "h.io/team", Credentials("new", "pw"), helper_env)
    assert remove(f, "h.io", helper_env) == ["h.io"]
    assert "h.io" not in stored(tmp_path / "bin", "test")
    with pytest.raises(AuthError, match="not logged in to h.io"):
        remove(f, "h.io", helper_env)


def test_credential_helpers_of_registries_conf(tmp_path: Path, helper_env: dict[str, str]) -> None:
    f = [AuthFile(write_auths(tmp_path / "a.json", {"quay.io": entry("file", "f")}))]
    assert lookup_helpers(["containers-auth.json", "test"], f, "quay.io", "", helper_env) == (
        Credentials("file", "f")
    )
    assert lookup_helpers(["test", "containers-auth.json"], f, "quay.io", "", helper_env) == (
        Credentials("helped", "hs")
    )
    assert lookup_helpers(["absent", "store"], f, "quay.io", "", helper_env) == Credentials(
        "stored", "ss"
    )
    with pytest.raises(AuthError, match="docker-credential-absent"):
        lookup_helpers(["absent", "test"], f, "none.io", "", helper_env)
    assert lookup_helpers(["test"], f, "none.io", "", helper_env) is None
