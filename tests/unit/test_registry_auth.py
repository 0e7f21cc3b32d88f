"""Tests for syscontainers.registry.auth: auth-file lookup order, keys, login and logout writes."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from syscontainers.errors import AuthError, UsageError
from syscontainers.registry.auth import (
    Credentials,
    auth_files,
    lookup,
    normalize_key,
    remove,
    store,
    write_target,
)


def entry(user: str, password: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


def write_auths(path: Path, auths: dict[str, object], **extra: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"auths": auths, **extra}))
    return path


def test_lookup_order_from_the_environment(tmp_path: Path) -> None:
    env = {"REGISTRY_AUTH_FILE": "/a.json", "XDG_RUNTIME_DIR": "/run/user/7", "HOME": "/home/u"}
    assert auth_files(env) == [
        Path("/a.json"),
        Path("/run/user/7/containers/auth.json"),
        Path("/home/u/.docker/config.json"),
    ]
    assert auth_files({"HOME": "/root"}, uid=0) == [
        Path("/run/containers/0/auth.json"),
        Path("/root/.docker/config.json"),
    ]
    assert auth_files(env, authfile=tmp_path / "x.json") == [tmp_path / "x.json"]
    assert write_target(env) == Path("/a.json")
    assert write_target({"XDG_RUNTIME_DIR": "/r"}) == Path("/r/containers/auth.json")


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
    assert lookup([f], "quay.io", "team/app") == Credentials("app", "3")
    assert lookup([f], "quay.io", "team/other") == Credentials("team", "2")
    assert lookup([f], "quay.io", "else/x") == Credentials("host", "1")
    assert lookup([f], "docker.io", "library/x") is None


def test_first_file_with_an_entry_wins(tmp_path: Path) -> None:
    first = write_auths(tmp_path / "1.json", {"other.io": entry("o", "o")})
    second = write_auths(tmp_path / "2.json", {"quay.io": entry("second", "p:w")})
    third = write_auths(tmp_path / "3.json", {"quay.io/team": entry("third", "x")})
    missing = tmp_path / "missing.json"
    assert lookup([missing, first, second, third], "quay.io", "team/app") == Credentials(
        "second",
        "p:w",  # a colon in the password survives
    )


def test_docker_config_legacy_hub_key(tmp_path: Path) -> None:
    f = write_auths(
        tmp_path / "config.json",
        {"https://index.docker.io/v1/": entry("hub", "pw")},
        credsStore="desktop",
    )
    assert lookup([f], "docker.io", "library/busybox") == Credentials("hub", "pw")


def test_entries_without_auth_are_skipped(tmp_path: Path) -> None:
    f = write_auths(tmp_path / "a.json", {"quay.io/team": {}, "quay.io": entry("u", "p")})
    assert lookup([f], "quay.io", "team/app") == Credentials("u", "p")


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
        lookup([f], "quay.io", "app")


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
    assert lookup([f], "quay.io", "x") == Credentials("alice", "s3:cret")
    assert [p.name for p in f.parent.iterdir()] == ["auth.json"]  # no temp file left


def test_store_creates_the_file_and_directories(tmp_path: Path) -> None:
    f = tmp_path / "run" / "containers" / "auth.json"
    store(f, "127.0.0.1:5000", Credentials("u", "p"))
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert lookup([f], "127.0.0.1:5000", "a/b") == Credentials("u", "p")
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
