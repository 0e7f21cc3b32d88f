"""Tests for syscontainers.operations.containers: list, uninstall and run."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from syscontainers.cli import build_parser
from syscontainers.cli.containers import (
    handle_install,
    handle_list,
    handle_rollback,
    handle_run,
    handle_uninstall,
    handle_update,
)
from syscontainers.deploy.layout import read_info, write_info
from syscontainers.errors import ContainerNotFoundError
from syscontainers.operations.containers import list_containers, run_in, uninstall
from syscontainers.operations.install import InstallRequest, install
from syscontainers.operations.update import UpdateRequest, update
from syscontainers.record import replace
from syscontainers.systemd_states import ActiveState
from tests.unit.lifecycle_fixtures import CONFIG, Env, atomic_files


def test_list_reads_every_state_in_one_call(env: Env, atomic_image: str, plain_image: str) -> None:
    for i in range(5):
        install(env.host, InstallRequest(atomic_image, name=f"app{i}", start=i % 2 == 0))
    install(env.host, InstallRequest(plain_image, name="plain", runtime="/usr/bin/crun"))
    env.units.failing.add("plain.service")
    env.units.start("plain.service")
    env.units.calls.clear()
    rows = list_containers(env.host)
    assert [c[0] for c in env.units.calls] == ["states"]
    assert len(env.units.calls[0]) == 1 + 6
    states = {r.name: r.state for r in rows}
    assert states == {
        "app0": "active",
        "app1": "inactive",
        "app2": "active",
        "app3": "inactive",
        "app4": "active",
        "plain": "failed",
    }
    plain = next(r for r in rows if r.name == "plain")
    assert (plain.image, plain.deployment, plain.runtime) == (
        plain_image,
        "plain.0",
        "/usr/bin/crun",
    )
    assert plain.image_id.startswith("sha256:") and plain.previous == ""


def test_list_shows_previous_and_half_installed_with_all(env: Env, atomic_image: str) -> None:
    install(env.host, InstallRequest(atomic_image, name="web"))
    update(env.host, UpdateRequest("web", sets=(("PORT", "1"),)))
    (env.dep() / "ghost.0").mkdir()
    rows = list_containers(env.host)
    assert [(r.name, r.deployment, r.previous) for r in rows] == [("web", "web.1", "web.0")]
    rows = list_containers(env.host, show_all=True)
    assert [(r.name, r.state) for r in rows] == [("ghost", "half-installed"), ("web", "inactive")]


def test_list_with_nothing_installed_asks_systemd_nothing(env: Env) -> None:
    assert list_containers(env.host) == []
    assert env.units.calls == []


def test_uninstall_removes_everything_but_modified_host_files(env: Env, atomic_image: str) -> None:
    install(env.host, InstallRequest(atomic_image, name="web", start=True))
    update(env.host, UpdateRequest("web", sets=(("PORT", "9"),)))
    env.on_host("/etc/web/app.conf").write_text("edited by the admin\n")
    conf = env.paths.tmpfiles_dir / "web.conf"
    conf_text = conf.read_text()
    env.units.calls.clear()
    result = uninstall(env.host, "web")
    assert result.kept_files == ("/etc/web/app.conf",)
    assert set(result.removed_files) == {"/etc/web/motd", "/usr/local/bin/webctl"}
    assert result.deployments == ("web.0", "web.1")
    assert env.on_host("/etc/web/app.conf").read_text() == "edited by the admin\n"
    assert not env.on_host("/usr/local/bin/webctl").exists()
    assert not env.on_host("/usr/local/bin").exists()  # made by the install, now empty
    assert list(env.dep().iterdir()) == []
    assert list(env.paths.unit_dir.iterdir()) == [] and not conf.exists()
    assert env.store.pins() == {}
    assert env.units.enabled == set() and "web.service" not in env.units.loaded
    assert [c[0] for c in env.units.calls] == ["stop", "disable", "reset_failed", "daemon_reload"]
    assert env.tmpfiles.calls[-1] == ("remove", conf, conf_text)


def test_uninstall_of_a_half_installed_container(env: Env, atomic_image: str) -> None:
    install(env.host, InstallRequest(atomic_image, name="web"))
    os.unlink(env.dep("web.0") / "info.json")
    os.unlink(env.paths.unit_dir / "web.service")
    (env.dep() / ".tmp-web.1-0123456789ab").mkdir()
    result = uninstall(env.host, "web")
    assert result.deployments == ("web.0",)
    assert list(env.dep().iterdir()) == []
    assert env.store.pins() == {}
    with pytest.raises(ContainerNotFoundError):
        uninstall(env.host, "web")


def test_uninstall_only_a_crashed_slot(env: Env, atomic_image: str) -> None:
    install(env.host, InstallRequest(atomic_image, name="web"))
    os.unlink(env.dep("web"))
    info = read_info(env.dep("web.0"))
    assert info is not None
    uninstall(env.host, "web")
    assert list(env.dep().iterdir()) == []
    assert not env.on_host("/etc/web/app.conf").exists()


def test_run_execs_into_a_running_container(env: Env, atomic_image: str) -> None:
    install(env.host, InstallRequest(atomic_image, name="web", start=True))
    assert run_in(env.host, "web", ["ls", "/"]) == 0
    assert env.executed == [("/usr/sbin/runc", "exec", "web", "ls", "/")]


def test_run_in_a_stopped_container_uses_a_throwaway_bundle(env: Env, atomic_image: str) -> None:
    install(env.host, InstallRequest(atomic_image, name="web"))
    seen: dict[str, object] = {}

    def execute(argv: Sequence[str]) -> int:
        bundle = Path(argv[3])
        seen["config"] = json.loads((bundle / "config.json").read_text())
        seen["argv"] = argv
        return 7

    host = replace(env.host, execute=execute)
    assert run_in(host, "web", ["cat", "/etc/passwd"]) == 7
    argv = seen["argv"]
    assert isinstance(argv, tuple) and argv[:3] == ("/usr/sbin/runc", "run", "--bundle")
    assert argv[4].startswith("web-run-") and not Path(argv[3]).exists()
    config = seen["config"]
    assert isinstance(config, dict)
    assert config["process"]["args"] == ["cat", "/etc/passwd"]
    assert config["root"]["path"] == str(env.dep("web.0") / "rootfs")
    assert "cgroupsPath" not in config["linux"]  # the service's cgroup is not for it
    deployed = json.loads((env.dep("web.0") / "config.json").read_text())
    assert deployed["linux"]["cgroupsPath"] == "/system.slice/web.service/container"
    assert env.units.active.get("web.service") is not ActiveState.ACTIVE


def test_run_in_a_stopped_container_remakes_its_run_bind_sources(env: Env) -> None:
    # etcd's shape: a bind from $RUN_DIRECTORY/$NAME, which systemd removes at stop
    # (RuntimeDirectory=), so a run while stopped found no bind source.
    config = dict(
        CONFIG,
        mounts=[
            {
                "destination": "/var/run/app",
                "type": "bind",
                "source": "${RUN_DIRECTORY}/${NAME}/sock",
                "options": ["rbind", "rw"],
            }
        ],
    )
    files = atomic_files(
        **{
            "exports/config.json.template": json.dumps(config).encode(),
            "exports/tmpfiles.template": b"d /run/$NAME - - - - -\n",
        }
    )
    env.pull(env.layout("runsrc", files), "example.org/runsrc:1")
    install(env.host, InstallRequest("example.org/runsrc:1", name="web"))
    source = env.on_host("/run/web/sock")
    conf = env.paths.tmpfiles_dir / "web.conf"
    calls = len(env.tmpfiles.calls)
    assert not source.exists()
    assert run_in(env.host, "web", ["true"]) == 0
    assert source.is_dir()
    assert env.tmpfiles.calls[calls:] == [("create", conf, conf.read_text())]
    assert run_in(env.host, "web", ["true"]) == 0  # nothing missing: nothing applied again
    assert len(env.tmpfiles.calls) == calls + 1


def test_info_json_round_trips(env: Env, atomic_image: str) -> None:
    install(env.host, InstallRequest(atomic_image, name="web"))
    info = read_info(env.dep("web.0"))
    assert info is not None
    write_info(env.dep("web.0"), info)
    assert read_info(env.dep("web.0")) == info


HANDLERS = {
    "install": handle_install,
    "uninstall": handle_uninstall,
    "list": handle_list,
    "update": handle_update,
    "rollback": handle_rollback,
    "run": handle_run,
}


@pytest.mark.parametrize(
    "argv",
    [
        [
            "install",
            "--name",
            "web",
            "--set",
            "A=1",
            "--set",
            "B=2",
            "--runtime",
            "/x/crun",
            "--rootfs",
            "/srv/root",
            "--now",
            "img",
        ],
        ["uninstall", "web"],
        ["list", "--all", "--json"],
        [
            "update",
            "web",
            "--rebase",
            "img:2",
            "--set",
            "A=1",
            "--no-pull",
            "--health-timeout",
            "5",
        ],
        ["update", "--all"],
        ["rollback", "web"],
        ["run", "web", "ls", "-l", "/"],
    ],
)
def test_cli_verbs_parse(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert args.handler is HANDLERS[argv[0]]
    if argv[0] == "run":
        assert args.cmd == ["ls", "-l", "/"]
    if argv[0] == "install":
        assert args.sets == ["A=1", "B=2"] and args.now and str(args.rootfs) == "/srv/root"


def test_cli_options_all_have_help() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for verb in ("install", "uninstall", "list", "update", "rollback", "run"):
        verb_parser = sub.choices[verb]
        for action in verb_parser._actions:
            assert action.help, (verb, action.dest)
