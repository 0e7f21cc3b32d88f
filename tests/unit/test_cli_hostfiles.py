"""The ``hostfiles owner|list|verify`` verbs, against a store where containers were installed.

The containers are installed through the library with host files under tmp_path; the CLI
reads the same store root. Its host root is the real /, where none of those files are, so
``verify`` from the CLI finds them missing (the library tests check the other statuses).
"""

from __future__ import annotations

import json

import pytest

from syscontainers import cli
from syscontainers.operations.install import InstallRequest, install
from tests.unit.lifecycle_fixtures import Env


def test_owner_names_the_containers_and_fails_for_an_unowned_path(
    env: Env, atomic_image: str, capsys: pytest.CaptureFixture[str]
) -> None:
    install(env.host, InstallRequest(atomic_image, name="web"))
    root = ["--root", str(env.paths.root)]
    assert cli.main([*root, "hostfiles", "owner", "/etc/web/app.conf", "/etc/web"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "/etc/web/app.conf: file owned by web (made by syscontainers)",
        "/etc/web: directory owned by web (made by syscontainers)",
    ]
    argv = [*root, "hostfiles", "owner", "--json", "/etc/web/motd", "/etc/passwd"]
    assert cli.main(argv) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["/etc/passwd"] is None
    assert doc["/etc/web/motd"]["owners"] == ["web"] and doc["/etc/web/motd"]["kind"] == "file"


def test_list_and_verify(env: Env, atomic_image: str, capsys: pytest.CaptureFixture[str]) -> None:
    install(env.host, InstallRequest(atomic_image, name="web"))
    root = ["--root", str(env.paths.root)]
    assert cli.main([*root, "hostfiles", "list", "--json", "web"]) == 0
    listed = {r["path"] for r in json.loads(capsys.readouterr().out)}
    assert {"/etc/web/app.conf", "/usr/local/bin/webctl", "/etc/web"} <= listed
    assert cli.main([*root, "hostfiles", "verify", "--json"]) == 1  # none of it is under /
    doc = json.loads(capsys.readouterr().out)
    assert doc["checked"] == len(doc["paths"]) == len(listed) and doc["problems"] >= 3
    assert cli.main([*root, "hostfiles", "verify", "ghost"]) == 1
    assert "no container named ghost" in capsys.readouterr().err


def test_owner_refuses_a_relative_path(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--root", str(env.paths.root), "hostfiles", "owner", "etc/x"]) == 2
    assert "not an absolute host path" in capsys.readouterr().err
