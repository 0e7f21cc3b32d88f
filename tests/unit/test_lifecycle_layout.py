"""Tests for syscontainers.deploy.layout: names, slots, temps, the flip and info.json."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from syscontainers.deploy.layout import (
    ContainerDir,
    DeploymentInfo,
    HostFileRecord,
    active_slot,
    container_names,
    flip,
    half_installed_names,
    read_info,
    validate_name,
    write_info,
)
from syscontainers.errors import StoreCorruptError, UsageError
from syscontainers.render import KeptValues
from syscontainers.runtime import RuntimeMode


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "empty"),
        ("a/b", "'/'"),
        ("a..b", "'..'"),
        ("a b", "whitespace"),
        ("a\x1bb", "control"),
        ("-a", "starts with"),
        (".a", "starts with"),
        ("a@b", "systemd unit name"),
        ("a:b", "':'"),
        ("a.1", "slot"),
        ("a.service", ".service"),
        ("x" * 201, "longer"),
    ],
)
def test_invalid_names(name: str, problem: str) -> None:
    with pytest.raises(UsageError) as info:
        validate_name(name)
    assert problem in info.value.message and info.value.hint


@pytest.mark.parametrize("name", ["a", "etcd", "my_app-2", "a.b", "v1.2x", "x" * 200])
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


def test_temps_belong_to_one_container_only(tmp_path: Path) -> None:
    for entry in (
        ".tmp-web.0-0123456789ab",
        ".tmp-web-0123456789ab",
        ".tmp-web-x.1-0123456789ab",
        ".tmp-web-0123456789ab-fedcba987654",
        ".tmp-webby.0-0123456789ab",
    ):
        (tmp_path / entry).mkdir()
    web = ContainerDir(tmp_path, "web")
    assert [p.name for p in web.temps()] == [".tmp-web-0123456789ab", ".tmp-web.0-0123456789ab"]
    assert [p.name for p in ContainerDir(tmp_path, "web-x").temps()] == [
        ".tmp-web-x.1-0123456789ab"
    ]


def test_flip_replaces_the_link_atomically(tmp_path: Path) -> None:
    cd = ContainerDir(tmp_path, "web")
    (tmp_path / "web.0").mkdir()
    (tmp_path / "web.1").mkdir()
    assert active_slot(cd) is None
    flip(cd, 0)
    assert active_slot(cd) == 0
    flip(cd, 1)
    assert os.readlink(tmp_path / "web") == "web.1" and cd.temps() == []
    (tmp_path / "web").unlink()
    (tmp_path / "web").symlink_to("/etc")
    with pytest.raises(StoreCorruptError):
        active_slot(cd)


def test_names_and_half_installed(tmp_path: Path) -> None:
    for d in ("web.0", "web.1", "db.0", "ghost.1", "junk.7", ".run"):
        (tmp_path / d).mkdir()
    (tmp_path / "web").symlink_to("web.1")
    (tmp_path / "db").symlink_to("db.0")
    assert container_names(tmp_path) == ["db", "web"]
    assert half_installed_names(tmp_path) == ["ghost"]
    assert container_names(tmp_path / "missing") == []


def test_info_round_trip_and_damage(tmp_path: Path) -> None:
    info = DeploymentInfo(
        name="web",
        slot=1,
        image="example.org/web:1",
        ref="example.org/web:1",
        source="docker://example.org/web:1",
        image_id="sha256:" + "a" * 64,
        runtime="/usr/bin/crun --cgroup-manager=disabled",
        kept=KeptValues((("PORT", "1"),), "uuid-1"),
        mode=RuntimeMode.DETACHED,
        host_files=(HostFileRecord("/etc/x", "ab", "hostfs/etc/x", False, 0o600),),
        host_dirs=("/etc",),
        complete=True,
    )
    write_info(tmp_path, info)
    assert read_info(tmp_path) == info
    (tmp_path / "info.json").write_text('{"name": "web"}')
    with pytest.raises(StoreCorruptError):
        read_info(tmp_path)
    assert read_info(tmp_path / "nothing") is None
