"""Crashes, names and failed starts end to end, on a real systemd booted in systemd-nspawn.

The images are tests/integration/test_lifecycle_systemd.py's (hello:v1 serves on port
8080; hello:broken exits 3 at once, so systemd restarts it until it gives up), in an OCI
layout in the bound test directory; the CLI inside pulls them over oci:. The tests run
in file order as one scenario:

- install --now of v1 serves;
- ``update --rebase broken`` is stopped by its own crash-point hook
  ($SYSCONTAINERS_TEST_STOP_AT, syscontainers/crashpoints.py: the process SIGSTOPs
  itself there) and this test SIGKILLs the real process: once after the health window
  of the broken deployment, once during the automatic rollback, right after the flip
  back. Each time, the same command run again must end on web.0, active and serving,
  and exit 1 saying the update failed; never "already up to date";
- ``install --name dbus`` is refused, and the host's D-Bus keeps running untouched;
- ``install --now`` of a service whose port is taken exits 1 with the unit's journal
  lines, and leaves it installed, enabled and failed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.imagebuild import BUSYBOX, requires
from tests.integration.booted_world import CLI, World
from tests.integration.nspawn import (
    INSIDE_ENV,
    NspawnHost,
    booted_or_skip,
    children,
    persistent_binds,
)
from tests.integration.test_lifecycle_systemd import GREETING, build_images

pytestmark = [pytest.mark.systemd, pytest.mark.slow, requires("runc", "umoci", "skopeo")]

STOP_AT = "SYSCONTAINERS_TEST_STOP_AT"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A booted host with the persistent binds and hello:v1/broken in a bound layout."""
    if not BUSYBOX.exists():
        pytest.skip("busybox-static is not installed")
    test_dir = tmp_path_factory.mktemp("crash")
    layout = build_images(test_dir / "images")
    host = NspawnHost(test_dir, binds=persistent_binds(test_dir))
    with booted_or_skip(host):
        yield World(host, host.inside(layout))


def _state(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


def kill_at(world: World, point: str, *args: str, timeout: float = 120) -> None:
    """Run the CLI inside until it stops itself at POINT, then SIGKILL that process."""
    argv = [
        "nsenter",
        "-t",
        str(world.host.pid),
        "-a",
        "env",
        f"{STOP_AT}={point}",
        "/usr/bin/python3",
        "-c",
        CLI,
        *args,
    ]
    proc = subprocess.Popen(
        argv, env=INSIDE_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + timeout
    try:
        while True:
            stopped = [p for p in children(proc.pid) if _state(p) == "T"]
            if stopped:
                os.kill(stopped[0], signal.SIGKILL)
                # nsenter stops itself when its child stops: let it see the child die
                os.kill(proc.pid, signal.SIGCONT)
                break
            if proc.poll() is not None:
                out, err = proc.communicate()
                raise AssertionError(
                    f"{args} ended ({proc.returncode}) before {point}:\n{out}\n{err}"
                )
            assert time.monotonic() < deadline, f"{args} never reached {point}"
            time.sleep(0.05)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0


def update_broken(world: World) -> list[str]:
    return ["update", "web", "--rebase", f"oci:{world.layout}:broken", "--health-timeout", "3"]


def test_install_now_serves(world: World) -> None:
    world.sc("install", "--now", "--health-timeout", "2", "--name", "web", f"oci:{world.layout}:v1")
    assert world.link("web") == "web.0" and world.get(8080) == GREETING


def assert_back_on_web0_and_serving(world: World, out_err: str) -> None:
    assert world.link("web") == "web.0"
    assert world.wait_active("web.service") == "active"
    assert world.get(8080) == GREETING
    assert "up to date" not in out_err


def test_kill_after_the_health_window_of_a_broken_update_then_again(world: World) -> None:
    kill_at(world, "health-watched", *update_broken(world))
    assert world.link("web") == "web.1"  # killed with the broken deployment active
    assert world.active("web.service") != "active" or world.get(8080, 1).startswith("<no")
    again = world.sc(*update_broken(world), check=False)
    assert again.returncode == 1, again
    assert "web.1" in again.stderr and "failed" in again.stderr, again.stderr
    assert_back_on_web0_and_serving(world, again.stdout + again.stderr)
    third = world.sc(*update_broken(world), check=False)  # tried again, never up to date
    assert third.returncode == 1 and "rolled back to web.0" in third.stderr, third
    assert_back_on_web0_and_serving(world, third.stdout + third.stderr)


def test_kill_during_the_automatic_rollback_then_again(world: World) -> None:
    kill_at(world, "flipped#2", *update_broken(world))  # the flip back to web.0
    assert world.link("web") == "web.0"
    again = world.sc(*update_broken(world), check=False)
    assert again.returncode == 1, again
    assert "interrupted update" in again.stderr, again.stderr
    assert_back_on_web0_and_serving(world, again.stdout + again.stderr)


def test_the_name_dbus_is_refused_and_dbus_is_untouched(world: World) -> None:
    pid = world.host.run(["systemctl", "show", "-P", "MainPID", "dbus.service"]).stdout
    out = world.sc("install", "--name", "dbus", f"oci:{world.layout}:v1", check=False)
    assert out.returncode == 1, out
    assert "the container name dbus is taken by the system" in out.stderr, out.stderr
    assert "lib/systemd/system/dbus.service" in out.stderr
    assert "--override-system-unit" in out.stderr
    gone = world.sc("uninstall", "dbus", check=False)
    assert gone.returncode == 1 and "no container named dbus" in gone.stderr
    assert world.active("dbus.service") == "active"
    assert world.host.run(["systemctl", "show", "-P", "MainPID", "dbus.service"]).stdout == pid
    assert (
        world.host.run(["test", "-e", "/etc/systemd/system/dbus.service"], check=False).returncode
        == 1
    )


def test_install_now_of_a_service_whose_port_is_taken_exits_1_with_its_journal(
    world: World,
) -> None:
    world.host.run(["systemd-run", "--unit=squatter", "busybox", "httpd", "-f", "-p", "8081"])
    out = world.sc(
        "install",
        "--now",
        "--health-timeout",
        "3",
        "--name",
        "web2",
        "--set",
        "PORT=8081",
        f"oci:{world.layout}:v1",
        check=False,
    )
    assert out.returncode == 1, out
    err = out.stderr
    assert "error: installed web2 (web2.0" in err and "web2.service" in err, err
    assert "stays installed and enabled, and failed" in err
    journal = err.split("the last lines of its journal:\n", 1)[1].split("\nhint: ")[0]
    assert journal.strip(), err
    assert "hint: see 'journalctl -u web2.service'" in err
    assert world.host.run(["systemctl", "is-enabled", "web2.service"]).stdout.strip() == "enabled"
    assert world.active("web2.service") != "active"
