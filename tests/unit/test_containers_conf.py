"""Tests for syscontainers.containers_conf: which containers config files apply."""

from __future__ import annotations

from pathlib import Path

from syscontainers.containers_conf import (
    RegistriesFiles,
    certs_dirs,
    policy_file,
    registries_files,
)

ETC = Path("/etc/containers")


def test_registries_conf_user_file_replaces_the_system_one(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}
    user = tmp_path / ".config" / "containers"
    assert registries_files(env, None) == RegistriesFiles(
        ETC / "registries.conf", (ETC / "registries.conf.d", user / "registries.conf.d")
    )
    user.mkdir(parents=True)
    (user / "registries.conf").write_text("")
    assert registries_files(env, None) == RegistriesFiles(
        user / "registries.conf", (user / "registries.conf.d",)
    )
    chosen = tmp_path / "r.conf"
    assert registries_files(env, chosen) == RegistriesFiles(chosen, (tmp_path / "r.conf.d",))
    assert registries_files({}, None).drop_in_dirs == (ETC / "registries.conf.d",)


def test_policy_user_file_if_it_exists(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}
    assert policy_file(env, None) == ETC / "policy.json"
    user = tmp_path / ".config" / "containers" / "policy.json"
    user.parent.mkdir(parents=True)
    user.write_text("{}")
    assert policy_file(env, None) == user
    assert policy_file(env, tmp_path / "p.json") == tmp_path / "p.json"


def test_certs_dirs() -> None:
    assert certs_dirs({"HOME": "/h"}, None) == (
        Path("/h/.config/containers/certs.d"),
        ETC / "certs.d",
        Path("/etc/docker/certs.d"),
    )
    assert certs_dirs({}, None) == (ETC / "certs.d", Path("/etc/docker/certs.d"))
    assert certs_dirs({"HOME": "/h"}, Path("/mine")) == (Path("/mine"),)
