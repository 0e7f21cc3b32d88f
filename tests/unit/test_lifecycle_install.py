"""Tests for syscontainers.operations.install against a fake systemd and a store in tmp_path."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from syscontainers.deploy.layout import read_info
from syscontainers.errors import CheckoutError, ContainerExistsError, TemplateError, UsageError
from syscontainers.operations.containers import uninstall
from syscontainers.operations.install import InstallOutcome, InstallRequest, install
from syscontainers.progress import EventKind
from syscontainers.record import replace
from syscontainers.runtime import Runtime, stop_line
from syscontainers.systemd_states import ActiveState
from tests.unit.lifecycle_fixtures import (
    APP_CONF,
    APPCTL,
    Env,
    atomic_files,
    plain_files,
)

RUNC = "/usr/sbin/runc"


def uid_gid() -> tuple[int, int]:
    return os.getuid(), os.getgid()


def test_install_atomic_image_writes_every_file(env: Env, atomic_image: str) -> None:
    result = install(env.host, InstallRequest(atomic_image, name="web", sets=(("PORT", "9090"),)))
    assert result.outcome is InstallOutcome.INSTALLED and result.deployment == "web.0"
    slot = env.dep("web.0")
    assert os.readlink(env.dep("web")) == "web.0"
    assert sorted(p.name for p in slot.iterdir()) == [
        "config.json",
        "hostfs",
        "info.json",
        "rootfs",
        "tmpfiles-web.conf",
        "web.service",
    ]
    assert (slot / "rootfs" / "var/www/index.html").read_text() == "version 1\n"

    unit = (env.paths.unit_dir / "web.service").read_text()
    assert unit == (slot / "web.service").read_text()
    assert "Description=app web on port 9090\n" in unit
    assert f"ExecStart={RUNC} run 'web'\n" in unit
    assert f"ExecStop={stop_line(Runtime(RUNC), 'web')}\n" in unit
    assert f"ExecStartPre=-{RUNC} delete --force 'web'\n" in unit
    # the image's unit lacks ExecStopPost and the stop statuses: they come after it
    assert unit.endswith(
        f"ExecStopPost=-{RUNC} delete --force 'web'\n"
        "Delegate=yes\nSuccessExitStatus=143 137\nSyslogIdentifier=web\n"
    )
    assert f"WorkingDirectory={slot}\n" in unit
    assert "Environment=GREETING=hello\n" in unit

    uid, gid = uid_gid()
    conf = env.paths.tmpfiles_dir / "web.conf"
    assert conf.read_text() == f"d /var/lib/web 0700 {uid} {gid} - -\n"
    assert env.tmpfiles.calls == [("create", conf, conf.read_text())]

    config = json.loads((slot / "config.json").read_text())
    assert config["process"]["args"] == ["/bin/httpd", "-f", "-p", "9090"]
    assert config["hostname"] == "web"
    assert config["mounts"][0]["source"] == "/var/lib/web"
    assert config["linux"]["cgroupsPath"] == "/system.slice/web.service/container"

    assert env.on_host("/etc/web/app.conf").read_bytes() == APP_CONF + b"# v1\n"
    assert env.on_host("/etc/web/motd").read_text() == "web listens on 9090\n"
    ctl = env.on_host("/usr/local/bin/webctl")
    assert ctl.read_bytes() == APPCTL and ctl.stat().st_mode & 0o777 == 0o755
    info = read_info(slot)
    assert info is not None and info.complete and info.image == atomic_image
    assert {r.path for r in info.host_files} == {
        "/etc/web/app.conf",
        "/etc/web/motd",
        "/usr/local/bin/webctl",
    }
    assert info.kept.set_map() == {"PORT": "9090"} and len(info.kept.uuid) == 36
    assert env.store.pins() == {"container:web.0": info.image_id}

    assert env.units.enabled == {"web.service"}
    assert env.units.active.get("web.service") is None  # enabled, not started
    # states: is the name a unit systemd already has?
    assert [c[0] for c in env.units.calls] == ["states", "daemon_reload", "enable"]


def test_install_now_starts_and_a_second_install_is_refused(env: Env, atomic_image: str) -> None:
    result = install(env.host, InstallRequest(atomic_image, name="web", start=True))
    assert result.started and env.units.active["web.service"] is ActiveState.ACTIVE
    before = sorted(p.name for p in env.dep().iterdir())
    with pytest.raises(ContainerExistsError) as info:
        install(env.host, InstallRequest(atomic_image, name="web"))
    assert "syscontainers update web" in (info.value.hint or "")
    assert sorted(p.name for p in env.dep().iterdir()) == before


def test_default_name_comes_from_the_image(env: Env, atomic_image: str) -> None:
    assert install(env.host, InstallRequest(atomic_image)).name == "app-1"
    env.pull(env.layout("app-latest", atomic_files()), "example.org/tools/app:latest")
    assert install(env.host, InstallRequest("example.org/tools/app")).name == "app"


def test_plain_image_uses_default_templates(env: Env, plain_image: str) -> None:
    install(env.host, InstallRequest(plain_image, name="plain", runtime="/usr/bin/crun"))
    unit = (env.paths.unit_dir / "plain.service").read_text()
    assert "ExecStart=/usr/bin/crun run 'plain'\n" in unit
    assert "SuccessExitStatus=143 137\n" in unit and "Delegate=yes\n" in unit
    config = json.loads((env.dep("plain.0") / "config.json").read_text())
    assert config["linux"]["cgroupsPath"] == "/system.slice/plain.service/container"
    assert config["process"]["args"] == ["/bin/httpd", "-f", "-p", "8081"]
    assert config["root"] == {"path": "rootfs", "readonly": True}
    info = read_info(env.dep("plain.0"))
    assert info is not None and info.host_files == () and info.runtime == "/usr/bin/crun"
    assert not (env.paths.tmpfiles_dir / "plain.conf").exists()  # nothing to create
    assert env.tmpfiles.calls == []


def test_install_pulls_a_transport_source(env: Env) -> None:
    source = env.layout("src", plain_files(), tag="2.0", config={"config": {"Cmd": ["/bin/httpd"]}})
    result = install(env.host, InstallRequest(source, name="fromsrc"))
    info = read_info(env.dep("fromsrc.0"))
    assert info is not None and info.source == source and info.image_id == result.image_id
    assert result.image_id in env.store.refs().values()


def test_every_missing_variable_is_reported_before_anything_is_written(env: Env) -> None:
    files = atomic_files(
        **{
            "exports/service.template": b"[Service]\nExecStart=$EXEC_START $ONE\n",
            "exports/tmpfiles.template": b"d /var/lib/$TWO\n",
            "exports/hostfs/etc/app/motd": b"$THREE\n",
        }
    )
    env.pull(env.layout("needy", files), "example.org/needy:1")
    with pytest.raises(TemplateError) as info:
        install(env.host, InstallRequest("example.org/needy:1", name="needy"))
    for var in ("ONE", "TWO", "THREE"):
        assert var in info.value.message
    assert "--set" in (info.value.hint or "")
    assert not env.dep().exists() or list(env.dep().iterdir()) == []
    assert list(env.paths.host_root.iterdir()) == []
    assert list(env.paths.unit_dir.iterdir()) == []
    assert [c[0] for c in env.units.calls] == ["states"]  # a read: is the name free?
    assert env.store.pins() == {}


@pytest.mark.parametrize(
    "name",
    [
        "",
        "a/b",
        "..",
        "a..b",
        "with space",
        "tab\tname",
        "new\nline",
        "-dash",
        ".dot",
        "colon:name",
        "x" * 201,
        "web.0",
        "web.service",
        "bell\x07",
        "slash\\back",
        "é",
    ],
)
def test_invalid_names_are_refused(env: Env, atomic_image: str, name: str) -> None:
    with pytest.raises(UsageError):
        install(env.host, InstallRequest(atomic_image, name=name))
    assert not env.dep().exists() or list(env.dep().iterdir()) == []


@pytest.mark.parametrize("name", ["web", "Web_2", "a.b-c", "x" * 200, "etcd-3.5x"])
def test_valid_names_install(env: Env, atomic_image: str, name: str) -> None:
    assert install(env.host, InstallRequest(atomic_image, name=name)).name == name


def test_a_unit_that_is_not_ours_is_not_overwritten(env: Env, atomic_image: str) -> None:
    (env.paths.unit_dir / "web.service").write_text("[Service]\nExecStart=/bin/true\n")
    with pytest.raises(ContainerExistsError):
        install(env.host, InstallRequest(atomic_image, name="web"))
    assert (env.paths.unit_dir / "web.service").read_text().endswith("/bin/true\n")


def test_an_admins_host_file_is_kept_and_the_images_goes_beside_it(
    env: Env, atomic_image: str
) -> None:
    """#9.6: install neither overwrites the admin's file nor refuses the image."""
    env.on_host("/usr/local/bin").mkdir(parents=True)
    env.on_host("/usr/local/bin/webctl").write_text("admin's own\n")
    install(env.host, InstallRequest(atomic_image, name="web"))
    assert env.on_host("/usr/local/bin/webctl").read_text() == "admin's own\n"
    beside = env.on_host("/usr/local/bin/webctl.syscontainers-new")
    assert beside.read_bytes() == APPCTL and beside.stat().st_mode & 0o777 == 0o755
    warnings = env.reporter.messages(EventKind.WARNING)
    assert any("/usr/local/bin/webctl" in w and beside.name in w for w in warnings), warnings
    uninstall(env.host, "web")
    assert env.on_host("/usr/local/bin/webctl").read_text() == "admin's own\n"
    assert not beside.exists() and not env.on_host("/etc/web").exists()


def test_host_file_escape_through_dotdot_is_rejected(env: Env) -> None:
    manifest = {"renameFiles": {"/etc/app/app.conf": "/etc/$NAME/../../outside"}}
    files = atomic_files(**{"exports/manifest.json": json.dumps(manifest).encode()})
    env.pull(env.layout("dotdot", files), "example.org/dotdot:1")
    with pytest.raises(TemplateError) as info:
        install(
            env.host,
            InstallRequest(
                "example.org/dotdot:1", name="web", sets=(("PORT", "1"), ("GREETING", "x"))
            ),
        )
    assert ".." in info.value.hint  # type: ignore[operator]
    assert not (env.tmp / "outside").exists() and list(env.dep().iterdir()) == []


def test_host_file_escape_through_a_symlink_is_rejected(env: Env, atomic_image: str) -> None:
    elsewhere = env.tmp / "elsewhere"
    elsewhere.mkdir()
    env.on_host("/etc").mkdir()
    env.on_host("/etc/web").symlink_to(elsewhere)
    with pytest.raises(CheckoutError) as info:
        install(env.host, InstallRequest(atomic_image, name="web"))
    assert "symlink" in info.value.message
    assert list(elsewhere.iterdir()) == []
    assert not env.on_host("/usr/local/bin/webctl").exists()
    assert list(env.dep().iterdir()) == [] and list(env.paths.unit_dir.iterdir()) == []


def test_host_file_destination_symlink_is_not_followed(env: Env, atomic_image: str) -> None:
    target = env.tmp / "precious"
    target.write_text("do not touch\n")
    env.on_host("/etc/web").mkdir(parents=True)
    env.on_host("/etc/web/app.conf").symlink_to(target)
    install(env.host, InstallRequest(atomic_image, name="web"))
    assert target.read_text() == "do not touch\n"
    assert env.on_host("/etc/web/app.conf").is_symlink()
    beside = env.on_host("/etc/web/app.conf.syscontainers-new")
    assert not beside.is_symlink() and beside.read_bytes() == APP_CONF + b"# v1\n"


def test_run_once_image_leaves_nothing_behind(env: Env) -> None:
    source = env.layout(
        "once",
        plain_files(),
        config={"config": {"Cmd": ["/bin/httpd", "--once"], "Labels": {"atomic.run": "once"}}},
    )
    env.pull(source, "example.org/once:1")
    configs: list[dict[str, object]] = []

    def execute(argv: Sequence[str]) -> int:
        configs.append(json.loads((Path(argv[3]) / "config.json").read_text()))
        return env.host.execute(argv)

    host = replace(env.host, execute=execute)
    result = install(host, InstallRequest("example.org/once:1", name="once"))
    assert result.outcome is InstallOutcome.RAN_ONCE and result.exit_code == 0
    (config,) = configs  # run from the command line: no unit's cgroup to join
    assert "cgroupsPath" not in config["linux"]  # type: ignore[operator]
    (argv,) = env.executed
    assert argv[:3] == (RUNC, "run", "--bundle") and argv[-1] == "once"
    assert not Path(argv[3]).exists()
    assert [p.name for p in env.dep().iterdir()] == [".run"]
    assert list(env.dep(".run").iterdir()) == []
    # only the check that the name is no unit of the system's
    assert env.units.calls == [("states", "once.service")]
    assert list(env.paths.unit_dir.iterdir()) == [] and env.store.pins() == {}


def test_run_once_applies_its_tmpfiles_around_the_run(env: Env) -> None:
    files = {**plain_files(), "exports/tmpfiles.template": b"d /var/run/$NAME-nm - - - - -\n"}
    source = env.layout(
        "oncetmp",
        files,
        config={"config": {"Cmd": ["/bin/httpd"], "Labels": {"atomic.run": "once"}}},
    )
    env.pull(source, "example.org/oncetmp:1")
    order: list[str] = []

    def execute(argv: Sequence[str]) -> int:
        order.append("run")
        return 0

    host = replace(env.host, execute=execute)
    install(host, InstallRequest("example.org/oncetmp:1", name="once"))
    ((create, conf, text), (remove, conf2, _)) = env.tmpfiles.calls
    assert (create, remove, conf2) == ("create", "remove", conf) and order == ["run"]
    assert text == "d /var/run/once-nm - - - - -\n"
    assert not conf.exists()  # it lived in the throwaway bundle


def test_rootfs_option_links_the_given_directory(env: Env, atomic_image: str) -> None:
    rootfs = env.tmp / "myroot"
    (rootfs / "etc").mkdir(parents=True)
    install(env.host, InstallRequest(atomic_image, name="web", rootfs=rootfs))
    assert os.readlink(env.dep("web.0") / "rootfs") == str(rootfs)
    with pytest.raises(UsageError):
        install(env.host, InstallRequest(atomic_image, name="rel", rootfs=Path("relative")))


def test_no_container_service_installs_host_files_only(env: Env) -> None:
    manifest = {"noContainerService": True, "renameFiles": {"/etc/app": "/etc/$NAME"}}
    files = {
        "exports/manifest.json": json.dumps(manifest).encode(),
        "exports/hostfs/etc/app/tool.conf": b"tool\n",
    }
    env.pull(env.layout("hostonly", files), "example.org/hostonly:1")
    install(env.host, InstallRequest("example.org/hostonly:1", name="tools", start=True))
    assert env.on_host("/etc/tools/tool.conf").read_text() == "tool\n"
    assert not (env.dep("tools.0") / "rootfs").exists()
    assert list(env.paths.unit_dir.iterdir()) == []
    assert env.units.enabled == set()


def test_jinja_templates_and_detached_mode(env: Env) -> None:
    service = (
        b"[Service]\nType=forking\nPIDFile={{ PIDFILE }}\nExecStart={{ EXEC_START }}\n"
        b"ExecStopPost={{ EXEC_STOPPOST }}\nWorkingDirectory={{ DESTDIR }}\n"
    )
    config = (
        b'{"ociVersion": "1.0.2", "root": {"path": "rootfs", "readonly": true},'
        b' "process": {"args": ["/bin/echo", {{ MESSAGE | tojson }}]}}'
    )
    files = {
        "exports/service.j2": service,
        "exports/config.json.j2": config,
        "exports/manifest.json": b'{"defaultValues": {"MESSAGE": "a \\"quoted\\" word"}}',
    }
    env.pull(env.layout("jinja", files), "example.org/jinja:1")
    install(env.host, InstallRequest("example.org/jinja:1", name="jin"))
    unit = (env.paths.unit_dir / "jin.service").read_text()
    assert f"ExecStart=-{RUNC} run -d --pid-file /run/container-jin.pid 'jin'\n" in unit
    assert f"ExecStopPost=-{RUNC} delete --force 'jin'\n" in unit
    assert "PIDFile=/run/container-jin.pid\n" in unit
    assert unit.endswith(
        f"ExecStop={stop_line(Runtime(RUNC), 'jin')}\n"
        "Delegate=yes\nSuccessExitStatus=143 SIGKILL\n"
        "SyslogIdentifier=jin\n"
    )
    config_doc = json.loads((env.dep("jin.0") / "config.json").read_text())
    assert config_doc["process"]["args"] == ["/bin/echo", 'a "quoted" word']
    info = read_info(env.dep("jin.0"))
    assert info is not None and info.mode.value == "detached"


def test_install_now_of_a_service_that_fails_says_so_and_stays_installed(
    env: Env, atomic_image: str
) -> None:
    env.units.failing.add("web.service")
    result = install(env.host, InstallRequest(atomic_image, name="web", start=True))
    assert result.outcome is InstallOutcome.INSTALLED and not result.started
    assert result.failure == "could not be started (job failed)"
    assert result.journal == (
        "web.service: Main process exited, code=exited, status=3/NOTIMPLEMENTED",
    )
    info = read_info(env.dep("web.0"))
    assert info is not None and info.complete and not info.activating
    assert env.units.enabled == {"web.service"}
    assert env.units.active["web.service"] is ActiveState.FAILED


def test_install_now_watches_the_health_window(env: Env, atomic_image: str) -> None:
    """It starts, then fails while watched (a crash loop): that is a failure too."""
    env.units.unhealthy.add("web.service")
    result = install(
        env.host, InstallRequest(atomic_image, name="web", start=True, health_timeout=0.5)
    )
    assert not result.started and result.failure.startswith("failed (")
    assert ("observe", "web.service") in env.units.calls
