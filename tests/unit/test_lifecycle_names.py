"""Container names against the system's units and tmpfiles files, derived names, unknown --set
names and the runtime check: each refused or reported before anything is written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from syscontainers.errors import ContainerExistsError, UsageError
from syscontainers.operations.containers import uninstall
from syscontainers.operations.install import InstallRequest, install
from syscontainers.operations.update import UpdateRequest, update
from syscontainers.progress import EventKind
from syscontainers.runtime import locate
from syscontainers.settings import Settings
from syscontainers.systemd_states import ActiveState
from tests.unit.lifecycle_fixtures import Env, atomic_files

DBUS_UNIT = "[Unit]\nDescription=D-Bus System Message Bus\n[Service]\nExecStart=/usr/bin/dbus\n"


def system_unit(env: Env, name: str) -> Path:
    """A unit the distribution ships (in the test's /lib/systemd/system)."""
    path = env.paths.system_unit_dirs[0] / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(DBUS_UNIT)
    return path


def nothing_written(env: Env) -> None:
    assert not env.dep().exists() or list(env.dep().iterdir()) == []
    assert list(env.paths.unit_dir.iterdir()) == []
    assert list(env.paths.tmpfiles_dir.iterdir()) == []
    assert list(env.paths.host_root.iterdir()) == []
    assert env.store.pins() == {}


def test_a_name_the_distribution_ships_a_unit_for_is_refused(env: Env, atomic_image: str) -> None:
    shipped = system_unit(env, "dbus.service")
    with pytest.raises(ContainerExistsError) as info:
        install(env.host, InstallRequest(atomic_image, name="dbus"))
    assert str(shipped) in info.value.message and "taken by the system" in info.value.message
    assert "--override-system-unit" in (info.value.hint or "")
    nothing_written(env)
    assert shipped.read_text() == DBUS_UNIT


def test_a_name_with_a_system_tmpfiles_file_is_refused(env: Env, atomic_image: str) -> None:
    conf = env.paths.system_tmpfiles_dirs[0] / "tmp.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text("D /tmp 1777 root root -\n")
    with pytest.raises(ContainerExistsError, match="tmp.conf"):
        install(env.host, InstallRequest(atomic_image, name="tmp"))
    nothing_written(env)


def test_a_unit_only_systemd_knows_is_refused(env: Env, atomic_image: str) -> None:
    """A generated, transient or aliased unit has no file in our search list: ask systemd."""
    env.units.add_unit("etcd.service", ActiveState.ACTIVE)
    with pytest.raises(ContainerExistsError, match="systemd has a unit etcd.service"):
        install(env.host, InstallRequest(atomic_image, name="etcd"))
    nothing_written(env)


def test_override_shadows_it_and_uninstall_says_the_system_unit_is_back(
    env: Env, atomic_image: str
) -> None:
    shipped = system_unit(env, "dbus.service")
    install(env.host, InstallRequest(atomic_image, name="dbus", override_system_unit=True))
    assert (env.paths.unit_dir / "dbus.service").exists()
    uninstall(env.host, "dbus")
    warnings = env.reporter.messages(EventKind.WARNING)
    assert any("the system's again" in w and str(shipped) in w for w in warnings), warnings
    assert shipped.read_text() == DBUS_UNIT and not (env.paths.unit_dir / "dbus.service").exists()


def test_override_needs_an_explicit_name(env: Env, atomic_image: str) -> None:
    with pytest.raises(UsageError, match="needs an explicit --name"):
        install(env.host, InstallRequest(atomic_image, override_system_unit=True))
    nothing_written(env)


def test_a_name_derived_from_the_image_never_shadows(env: Env) -> None:
    """The image picks "dbus" through its own name (an oci layout's ref.name does the same)."""
    env.pull(env.layout("dbus", atomic_files()), "example.org/dbus:latest")
    system_unit(env, "dbus.service")
    with pytest.raises(ContainerExistsError) as info:
        install(env.host, InstallRequest("example.org/dbus:latest"))
    assert "--name" in (info.value.hint or "")
    assert "--override-system-unit" not in (info.value.hint or "")
    nothing_written(env)


def test_uninstall_leaves_a_system_unit_it_did_not_publish_alone(
    env: Env, atomic_image: str
) -> None:
    """A container whose unit is not the published one (here: an admin's edit of it in the
    system directory after uninstall began elsewhere) must not stop the system's unit."""
    install(env.host, InstallRequest(atomic_image, name="web"))
    (env.paths.unit_dir / "web.service").unlink()
    system_unit(env, "web.service")
    env.units.add_unit("web.service", ActiveState.ACTIVE)
    env.units.calls.clear()
    uninstall(env.host, "web")
    assert not [c for c in env.units.calls if c[0] in ("stop", "disable")], env.units.calls
    assert env.units.active["web.service"] is ActiveState.ACTIVE
    assert any("left web.service alone" in w for w in env.reporter.messages(EventKind.WARNING))


def test_an_invalid_derived_name_is_refused_before_the_pull(env: Env) -> None:
    source = env.layout("layout", atomic_files(), tag="3.4")
    with pytest.raises(UsageError) as info:
        install(env.host, InstallRequest(source))
    assert "'layout-3.4'" in info.value.message and "--name" in (info.value.hint or "")
    assert env.store.refs() == {} and not list(env.paths.store.glob("objects/*/*"))
    nothing_written(env)


def test_an_unknown_set_name_is_warned_about_with_the_image_variables(
    env: Env, atomic_image: str
) -> None:
    install(env.host, InstallRequest(atomic_image, name="web", sets=(("PROT", "1"), ("PORT", "2"))))
    (warning,) = [w for w in env.reporter.messages(EventKind.WARNING) if "--set" in w]
    assert warning.startswith("--set PROT: ") and "uses no such variable" in warning
    assert "PORT" in warning and "GREETING" in warning and "EXEC_START" not in warning


def test_known_set_names_give_no_warning(env: Env, atomic_image: str) -> None:
    install(
        env.host,
        InstallRequest(atomic_image, name="web", sets=(("PORT", "2"), ("RUN_DIRECTORY", "/r"))),
    )
    assert not [w for w in env.reporter.messages(EventKind.WARNING) if "--set" in w]


def executable(tmp_path: Path, name: str, mode: int = 0o755) -> Path:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n")
    path.chmod(mode)
    return path


def test_the_default_runtime_is_looked_up_on_path(tmp_path: Path) -> None:
    assert Settings().runtime == "runc"
    found = executable(tmp_path, "runc")
    assert locate("runc", which=lambda n: str(found) if n == "runc" else None) == str(found)
    crun = executable(tmp_path, "crun")
    got = locate("crun --cgroup-manager=disabled", which=lambda n: str(crun))
    assert got == f"{crun} --cgroup-manager=disabled"


@pytest.mark.parametrize(
    ("make", "text", "message"),
    [
        (None, "runc", "'runc' was not found on PATH"),
        (None, "/nonexistent/runc", "/nonexistent/runc is not an executable file"),
        (0o644, "{dir}/runc", "is not an executable file"),
        (0o755, "bin/runc", "is not absolute"),
    ],
)
def test_a_runtime_that_cannot_run_is_a_usage_error(
    tmp_path: Path, make: int | None, text: str, message: str
) -> None:
    if make is not None:
        executable(tmp_path, "runc", make)
    with pytest.raises(UsageError, match=message) as info:
        locate(text.format(dir=tmp_path), which=lambda n: None)
    assert "--runtime" in (info.value.hint or "")


def test_cli_install_checks_the_runtime_before_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from syscontainers.cli import main

    root = tmp_path / "root"
    assert (
        main(
            [
                "--root",
                str(root),
                "install",
                "--runtime",
                "/nonexistent/runc",
                "--name",
                "web",
                "example.org/app:1",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "error: runtime /nonexistent/runc is not an executable file" in err
    assert "hint:" in err and "D-Bus" not in err and not os.path.exists(root)


def test_update_warns_about_an_unknown_set_name_too(env: Env, atomic_image: str) -> None:
    install(env.host, InstallRequest(atomic_image, name="web"))
    update(env.host, UpdateRequest("web", sets=(("GRETING", "hi"),)))
    (warning,) = [w for w in env.reporter.messages(EventKind.WARNING) if "--set" in w]
    assert warning.startswith("--set GRETING: ") and "GREETING" in warning
