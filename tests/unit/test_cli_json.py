"""``--json`` on the action verbs: progress events, then one result line a script can read.

The local verbs run against a real store in tmp_path; the lifecycle verbs run with the
CLI's systemd seams swapped for the fakes the lifecycle tests use.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from syscontainers import cli
from syscontainers.cli import containers as cli_containers
from syscontainers.cli.context import Context
from syscontainers.operations.host import Host
from tests.imagebuild import layer_tar, write_oci_layout
from tests.unit.lifecycle_fixtures import Env, fake_journal


def json_lines(out: str) -> list[dict[str, Any]]:
    """Every line of OUT, each of which must be a JSON object."""
    docs = [json.loads(line) for line in out.splitlines()]
    assert docs and all(isinstance(d, dict) for d in docs)
    return docs


def result_of(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """The result event the last command printed (it must be its last line)."""
    docs = json_lines(capsys.readouterr().out)
    assert docs[-1]["event"] == "result"
    assert [d for d in docs if d["event"] == "result"] == docs[-1:]
    return docs[-1]


def test_local_verbs_print_a_json_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout = write_oci_layout(tmp_path / "img", [layer_tar({"etc/motd": b"hi\n"})], "v1")
    root = ["--root", str(tmp_path / "root")]

    assert cli.main([*root, "pull", f"oci:{layout}:v1", "--name", "app:1", "--json"]) == 0
    pulled = result_of(capsys)
    assert pulled["name"] == "app:1" and pulled["layers_imported"] == 1
    assert pulled["id"].startswith("sha256:") and pulled["objects_written"] == 1

    dest = tmp_path / "co"
    assert cli.main([*root, "checkout", "app:1", str(dest), "--json"]) == 0
    co = result_of(capsys)
    assert (co["image"], co["dest"], co["files"], co["copied"]) == ("app:1", str(dest), 1, False)
    assert co["dirs"] == 2 and co["symlinks"] == 0 and co["skipped_devices"] == 0
    assert (dest / "etc" / "motd").read_bytes() == b"hi\n"

    assert cli.main([*root, "images", "tag", "app:1", "app:2", "--json"]) == 0
    assert result_of(capsys) | {"message": ""} == {
        "event": "result",
        "message": "",
        "tag": "app:2",
        "source": "app:1",
    }

    assert cli.main([*root, "images", "delete", "app:1", "app:2", "--json"]) == 0
    assert sorted(result_of(capsys)["deleted"]) == ["app:1", "app:2"]


def test_without_json_the_result_is_a_line_of_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout = write_oci_layout(tmp_path / "img", [layer_tar({"etc/motd": b"hi\n"})], "v1")
    root = ["--root", str(tmp_path / "root"), "-q"]
    assert cli.main([*root, "pull", f"oci:{layout}:v1", "--name", "app:1"]) == 0
    assert cli.main([*root, "images", "tag", "app:1", "app:2"]) == 0
    assert cli.main([*root, "images", "delete", "app:1", "app:2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("app:1 sha256:") and "imported 1 of 1 layers" in lines[0]
    assert lines[1:] == ["tagged app:2", "deleted app:1", "deleted app:2"]


@pytest.fixture
def fake_systemd(env: Env, monkeypatch: pytest.MonkeyPatch) -> Env:
    """The lifecycle verbs act on ENV's store, paths and fake systemd, reporting to the CLI."""

    @contextmanager
    def host(ctx: Context, args: object, pulls: bool = False) -> Iterator[Host]:
        yield Host(
            env.store, env.paths, env.units, env.tmpfiles, ctx.reporter, journal=fake_journal
        )

    monkeypatch.setattr(cli_containers, "_host", host)
    monkeypatch.setenv("SYSCONTAINERS_RUNTIME", "/bin/true")  # any executable: runc need not be
    return env


def test_lifecycle_verbs_print_a_json_result(
    fake_systemd: Env, atomic_image: str, capsys: pytest.CaptureFixture[str]
) -> None:
    env = fake_systemd
    image_id = env.store.refs()[atomic_image]

    assert cli.main(["install", atomic_image, "--name", "web", "--now", "--json"]) == 0
    installed = result_of(capsys)
    assert installed["outcome"] == "installed" and installed["deployment"] == "web.0"
    assert installed["image_id"] == image_id and installed["started"] is True
    assert installed["host_files"] and all(p.startswith("/") for p in installed["host_files"])

    argv = ["update", "web", "--no-pull", "--set", "PORT=9191", "--health-timeout", "0", "--json"]
    assert cli.main(argv) == 0
    updated = result_of(capsys)
    assert (updated["outcome"], updated["deployment"]) == ("updated", "web.1")
    assert updated["image_id"] == updated["previous_image_id"] == image_id

    assert cli.main(["rollback", "web", "--json"]) == 0
    back = result_of(capsys)
    assert (back["deployment"], back["previous"], back["image_id"]) == ("web.0", "web.1", image_id)

    assert cli.main(["uninstall", "web", "--json"]) == 0
    gone = result_of(capsys)
    assert gone["name"] == "web" and sorted(gone["deployments"]) == ["web.0", "web.1"]
    assert sorted(gone["removed_files"]) == sorted(installed["host_files"])
    assert gone["kept_files"] == []


def test_update_all_reports_each_failure_as_a_json_result(
    fake_systemd: Env, atomic_image: str, capsys: pytest.CaptureFixture[str]
) -> None:
    env = fake_systemd
    assert cli.main(["install", atomic_image, "--name", "web"]) == 0
    image_id = env.store.refs()[atomic_image]
    (env.store.blobs_dir / image_id.removeprefix("sha256:")).unlink()  # its manifest is lost
    capsys.readouterr()
    assert cli.main(["update", "--all", "--no-pull", "--json"]) == 1
    captured = capsys.readouterr()
    failed = json_lines(captured.out)[-1]
    assert (failed["event"], failed["name"], failed["outcome"]) == ("result", "web", "error")
    assert failed["error"] and failed["error"] in captured.err


def test_update_of_a_missing_container_fails_on_stderr_only(
    fake_systemd: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["update", "ghost", "--no-pull", "--json"]) == 1
    captured = capsys.readouterr()
    assert "ghost" in captured.err and captured.out == ""


def test_lifecycle_verbs_print_their_details_as_text_without_json(
    fake_systemd: Env, atomic_image: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["install", atomic_image, "--name", "web"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("installed web (web.0, image ")
    assert lines[1:] and all(line.startswith("  host file /") for line in lines[1:])
    host_path = lines[1].removeprefix("  host file ")
    fake_systemd.on_host(host_path).write_text("edited by the admin\n")
    assert cli.main(["uninstall", "web"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("uninstalled web: removed web.0")
    assert lines[1:] == [f"  kept {host_path} (changed after it was installed)"]


def test_install_now_of_a_service_that_fails_exits_1_with_its_journal(
    fake_systemd: Env, atomic_image: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_systemd.units.failing.add("web.service")
    assert cli.main(["install", atomic_image, "--name", "web", "--now"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.splitlines()
    err = err[err.index(next(e for e in err if e.startswith("error: "))) :]
    assert err[0].startswith("error: installed web (web.0, image ")
    assert "web.service could not be started (job failed)" in err[0]
    assert "stays installed and enabled, and failed" in err[0]
    assert err[1:3] == [
        "the last lines of its journal:",
        "  web.service: Main process exited, code=exited, status=3/NOTIMPLEMENTED",
    ]
    assert err[3].startswith("hint: see 'journalctl -u web.service'")
    assert cli.main(["install", atomic_image, "--name", "web", "--now", "--json"]) == 1
