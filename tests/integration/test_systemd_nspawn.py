"""syscontainers.systemd and .runtime against a real systemd booted in systemd-nspawn.

Hand-made units run busybox bundles with runc and crun, using the Exec lines
from syscontainers.runtime, and are driven from inside the booted host through
syscontainers.systemd. The tests run in file order as one scenario: install,
states, health, parsing, crash recovery, stop, then a reboot with the same
persistent directories.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from syscontainers.errors import SystemdError
from syscontainers.runtime import Runtime, runtime_commands, service_cgroup, stop_script
from syscontainers.systemd import SystemdManager
from tests.imagebuild import layer_tar, write_oci_layout
from tests.integration.nspawn import (
    NspawnHost,
    booted_or_skip,
    persistent_binds,
    skip_without_runtimes,
)

pytestmark = [pytest.mark.systemd, pytest.mark.slow]

BUSYBOX = Path("/bin/busybox")
RUNC = Runtime("/usr/sbin/runc")
CRUN = Runtime("/usr/bin/crun", ("--cgroup-manager=disabled",))  # test-host.md: no cgroups
PORT = 18080
# A busybox shell as PID 1 ignores SIGTERM unless it traps it; exiting 143 is what a
# service killed by SIGTERM reports, which SuccessExitStatus=143 must turn into success.
LOOP = ["/bin/sh", "-c", 'trap "exit 143" TERM; while :; do sleep 1 & wait; done']
HTTPD = ["/bin/sh", "-c", f'trap "exit 143" TERM; httpd -f -p 127.0.0.1:{PORT} -h /www & wait']

NOBODY = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")
CLI = "import sys; from syscontainers.cli import main; sys.exit(main(sys.argv[1:]))"
DRIVER = """
import json, sys
from syscontainers.systemd import ActiveState, SystemdManager
op, *args = sys.argv[1:]
def show(s):
    return {"load": s.load_state.value, "active": s.active_state.value, "sub": s.sub_state,
            "result": s.result}
with SystemdManager() as m:
    if op == "install":
        m.daemon_reload()
        enabled = [c.path for c in m.enable(args)]
        out = {"enabled": enabled, "jobs": [m.start(u).value for u in args]}
    elif op in ("start", "stop", "restart"):
        out = {"jobs": [getattr(m, op)(u).value for u in args]}
    elif op == "states":
        out = {name: show(state) for name, state in m.states(args).items()}
    elif op == "wait":
        want = {ActiveState(w) for w in args[2].split(",")}
        out = show(m.wait_state(args[0], want, float(args[1])))
    elif op == "observe":
        seen = m.observe(args[0], float(args[1]))
        out = {"healthy": seen.healthy, "reason": seen.verdict.reason, "final": show(seen.final),
               "elapsed": seen.elapsed}
print(json.dumps(out))
"""


@dataclass(frozen=True)
class Container:
    """A hand-made system container: a busybox bundle and its unit."""

    name: str
    runtime: Runtime
    args: tuple[str, ...]
    host_network: bool = False
    success_143: bool = True

    @property
    def unit(self) -> str:
        return f"{self.name}.service"


RUNC_BOX = Container("sc-runc", RUNC, tuple(LOOP))
CRUN_WEB = Container("sc-crun", CRUN, tuple(HTTPD), host_network=True)
CONTROL = Container("sc-control", RUNC, tuple(LOOP), success_143=False)
ALL = (RUNC_BOX, CRUN_WEB, CONTROL)


def make_bundle(bundle: Path, c: Container) -> None:
    """A busybox rootfs and a config.json from `runc spec`, edited for a unit."""
    rootfs = bundle / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    (rootfs / "www").mkdir()
    (rootfs / "www" / "index.html").write_text(f"hello from {c.name}\n")
    shutil.copy2(BUSYBOX, rootfs / "bin" / "busybox")
    for applet in ("sh", "sleep", "httpd"):
        (rootfs / "bin" / applet).symlink_to("busybox")
    subprocess.run(["runc", "spec"], cwd=bundle, check=True)
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["terminal"] = False
    config["process"]["args"] = list(c.args)
    if c.host_network:
        spaces = config["linux"]["namespaces"]
        config["linux"]["namespaces"] = [n for n in spaces if n["type"] != "network"]
    config["linux"]["cgroupsPath"] = service_cgroup(c.runtime, c.name)  # inside the unit
    (bundle / "config.json").write_text(json.dumps(config, indent=1))


def unit_text(c: Container, bundle: str) -> str:
    """The unit an installer would write, with our Exec lines."""
    cmds = runtime_commands(c.runtime, c.name)
    success = "SuccessExitStatus=143\n" if c.success_143 else ""
    return (
        f"[Unit]\nDescription=syscontainers test {c.name}\n\n"
        f"[Service]\nWorkingDirectory={bundle}\nExecStartPre={cmds.exec_startpre}\n"
        f"ExecStart={cmds.exec_start}\nExecStop={cmds.exec_stop}\n{success}"
        "Delegate=yes\nTimeoutStopSec=20\n\n[Install]\nWantedBy=multi-user.target\n"
    )


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NspawnHost]:
    """A booted host whose unit directory survives reboots, with the bundles in place."""
    skip_without_runtimes()
    test_dir = tmp_path_factory.mktemp("systemd")
    binds = persistent_binds(test_dir)
    unit_dir = test_dir / "persist" / "etc-systemd-system"
    machine = NspawnHost(test_dir, binds=binds)
    for c in ALL:
        make_bundle(test_dir / "bundles" / c.name, c)
        bundle = machine.inside(test_dir / "bundles" / c.name)
        (unit_dir / c.unit).write_text(unit_text(c, bundle))
    with booted_or_skip(machine):
        print(f"\nboot: {machine.boot_seconds[-1]:.2f} s")
        yield machine


def drive(host: NspawnHost, *args: str) -> Any:
    """Run the driver inside the booted host and return its JSON answer."""
    return json.loads(host.python(DRIVER, *args).stdout)


def runtime_state(host: NspawnHost, c: Container) -> dict[str, Any] | None:
    """`RUNTIME state NAME` inside, or None when the runtime does not know it."""
    done = host.run(c.runtime.argv("state", c.name), check=False)
    return json.loads(done.stdout) if done.returncode == 0 else None


def wait_running(host: NspawnHost, c: Container, timeout: float = 15.0) -> dict[str, Any]:
    """Wait until the runtime reports the container running, and return its state."""
    deadline = time.monotonic() + timeout
    while True:
        state = runtime_state(host, c)
        if state is not None and state.get("status") == "running":
            return state
        assert time.monotonic() < deadline, f"{c.name} not running: {state}"
        time.sleep(0.1)


def test_unreachable_bus_is_a_systemd_error_with_a_hint() -> None:
    with pytest.raises(SystemdError) as info:
        SystemdManager("unix:path=/nonexistent/bus").states(["a.service"])
    assert info.value.hint is not None and "booted systemd" in info.value.hint


def test_install_enables_and_starts_with_runc_and_crun(host: NspawnHost) -> None:
    units = [c.unit for c in ALL]
    out = drive(host, "install", *units)
    assert out["jobs"] == ["done"] * len(ALL)
    wants = {Path(p).name for p in out["enabled"]}
    assert wants == set(units)
    for c in ALL:
        assert host.run(["systemctl", "is-active", c.unit], check=False).stdout.strip() == "active"
        wait_running(host, c)
    listed = json.loads(host.run(["runc", "list", "--format", "json"]).stdout)
    assert {"sc-runc", "sc-control"} <= {entry["id"] for entry in listed}


def test_crun_service_answers_on_its_port(host: NspawnHost) -> None:
    url = f"http://127.0.0.1:{PORT}/index.html"
    deadline = time.monotonic() + 10
    while True:
        got = host.run(["busybox", "wget", "-qO-", url], check=False)
        if got.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert got.stdout == "hello from sc-crun\n"


def test_states_reads_many_units_in_one_round_trip(host: NspawnHost) -> None:
    log = host.test_dir / "monitor.log"
    host.run(
        [
            "systemd-run",
            "--unit=sc-monitor",
            f"-pStandardOutput=file:{host.inside(log)}",
            "dbus-monitor",
            "--system",
            "type='method_call',destination='org.freedesktop.systemd1'",
        ]
    )
    ping = [
        "busctl",
        "call",
        "org.freedesktop.systemd1",
        "/org/freedesktop/systemd1",
        "org.freedesktop.DBus.Peer",
        "Ping",
    ]
    deadline = time.monotonic() + 10
    while "member=Ping" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, "dbus-monitor did not start"
        host.run(ping)
        time.sleep(0.1)
    mark = len(log.read_text())
    names = [RUNC_BOX.unit, CRUN_WEB.unit, "dbus.service", "sc-absent.service"]
    out = drive(host, "states", *names)
    host.run(ping)
    time.sleep(0.3)
    host.run(["systemctl", "stop", "sc-monitor.service"])
    calls = [line for line in log.read_text()[mark:].splitlines() if "method call" in line]
    members = [line.split("member=")[1] for line in calls]
    assert members[:-1] == ["ListUnitsByNames"], members
    assert out[RUNC_BOX.unit]["active"] == "active"
    assert out[CRUN_WEB.unit]["sub"] == "running"
    assert out["dbus.service"]["load"] == "loaded"
    assert out["sc-absent.service"] == {
        "load": "not-found",
        "active": "inactive",
        "sub": "dead",
        "result": None,
    }


def test_observe_judges_healthy_and_failing_units(host: NspawnHost) -> None:
    unit_dir = host.test_dir / "persist" / "etc-systemd-system"
    (unit_dir / "sc-crash.service").write_text(
        "[Service]\nExecStart=/bin/sh -c 'sleep 0.5; exit 3'\n"
    )
    (unit_dir / "sc-notify.service").write_text(
        "[Service]\nType=notify\nNotifyAccess=all\n"
        "ExecStart=/bin/sh -c 'sleep 1; systemd-notify --ready; exec sleep 600'\n"
    )
    (unit_dir / "sc-never-ready.service").write_text(
        "[Service]\nType=notify\nTimeoutStartSec=1.5\nExecStart=/bin/sleep 600\n"
    )
    host.run(["systemctl", "daemon-reload"])
    healthy = drive(host, "observe", RUNC_BOX.unit, "1.5")
    assert healthy["healthy"] and healthy["elapsed"] >= 1.5, healthy
    assert drive(host, "start", "sc-crash.service")["jobs"] == ["done"]
    crashed = drive(host, "observe", "sc-crash.service", "20")
    assert not crashed["healthy"] and crashed["final"]["result"] == "exit-code", crashed
    assert crashed["elapsed"] < 10, "a failure must end the watch early"
    started = time.monotonic()
    assert drive(host, "start", "sc-notify.service")["jobs"] == ["done"]
    assert time.monotonic() - started >= 1.0, "a notify start job ends at READY=1"
    assert drive(host, "states", "sc-notify.service")["sc-notify.service"]["active"] == "active"
    assert drive(host, "start", "sc-never-ready.service")["jobs"] != ["done"]
    assert drive(host, "stop", "sc-notify.service", "sc-never-ready.service", "sc-nope.service")[
        "jobs"
    ] == ["done", "done", "done"]


def test_exec_lines_reach_systemd_as_built(host: NspawnHost) -> None:
    expected = {
        "ExecStartPre": (list(CRUN.argv("delete", "--force", "sc-crun")), True),
        "ExecStart": (list(CRUN.argv("run", "sc-crun")), False),
        # systemd stores '$$' as written and reads it as '$' only when it runs the line
        "ExecStop": (
            [
                "/bin/sh",
                "-c",
                stop_script().replace("$", "$$"),
                "syscontainers-stop",
                "sc-crun",
                *CRUN.argv(),
            ],
            False,
        ),
    }
    for prop, (argv, ignore_failure) in expected.items():
        got = host.run(
            [
                "busctl",
                "get-property",
                "--json=short",
                "org.freedesktop.systemd1",
                "/org/freedesktop/systemd1/unit/sc_2dcrun_2eservice",
                "org.freedesktop.systemd1.Service",
                prop,
            ]
        )
        ((path, parsed, ignore, *_),) = json.loads(got.stdout)["data"]
        assert (path, parsed, ignore) == (argv[0], argv, ignore_failure), prop


def test_a_user_systemd_refuses_is_told_the_verb_needs_root(host: NspawnHost) -> None:
    """uid 65534 installs into a store of its own, with the unit directory opened to it (as
    an ACL might): the unit is written, then systemd refuses that user's Reload over D-Bus."""
    top = host.test_dir / "nobody"
    layout = write_oci_layout(top / "img", [layer_tar({"etc/motd": b"hi\n"})], "v1")
    (top / "home").mkdir()
    host.test_dir.chmod(0o755)  # reachable by that user, as /var/lib is
    for path in (top, *top.rglob("*")):
        shutil.chown(path, 65534, 65534)
    unit_dir = host.test_dir / "persist" / "etc-systemd-system"
    mode = unit_dir.stat().st_mode
    unit_dir.chmod(0o777)
    try:
        done = host.run(
            [
                *NOBODY,
                "env",
                f"HOME={host.inside(top / 'home')}",
                "/usr/bin/python3",
                "-c",
                CLI,
                "--root",
                host.inside(top / "store"),
                "install",
                f"oci:{host.inside(layout)}:v1",
                "--name",
                "sc-nobody",
            ],
            check=False,
        )
    finally:
        unit_dir.chmod(mode)
        (unit_dir / "sc-nobody.service").unlink(missing_ok=True)
    assert done.returncode == 1, done
    lines = done.stderr.splitlines()
    assert lines[-2].startswith("error: syscontainers needs root for install: systemd refused "), (
        done.stderr
    )
    assert "Access denied" in lines[-2] or "Interactive authentication" in lines[-2], done.stderr
    assert lines[-1].startswith("hint: run it as root"), done.stderr


def test_stale_runtime_state_does_not_block_the_next_start(host: NspawnHost) -> None:
    before = wait_running(host, RUNC_BOX)
    # Kill only `runc run`; the container outlives it, as after a crash of the runtime.
    host.run(["systemctl", "kill", "--kill-whom=main", "--signal=SIGKILL", RUNC_BOX.unit])
    final = drive(host, "wait", RUNC_BOX.unit, "10", "failed,inactive")
    assert final["active"] == "failed", final
    assert runtime_state(host, RUNC_BOX) is not None, "the stale state should still be there"
    assert drive(host, "start", RUNC_BOX.unit)["jobs"] == ["done"]
    seen = drive(host, "observe", RUNC_BOX.unit, "1")
    assert seen["healthy"], seen
    assert wait_running(host, RUNC_BOX)["pid"] != before["pid"]


def test_stop_leaves_inactive_not_failed(host: NspawnHost) -> None:
    for c in ALL:
        wait_running(host, c)  # a stop racing `runc run`'s create step is another matter
    out = drive(host, "stop", *(c.unit for c in ALL))
    assert out["jobs"] == ["done"] * len(ALL)
    states = drive(host, "states", *(c.unit for c in ALL))
    assert states[RUNC_BOX.unit]["active"] == "inactive"
    assert states[CRUN_WEB.unit]["active"] == "inactive"
    # The control unit lacks SuccessExitStatus=143, so the same stop counts as a failure.
    assert states[CONTROL.unit]["active"] == "failed"
    assert runtime_state(host, RUNC_BOX) is None and runtime_state(host, CRUN_WEB) is None
    assert drive(host, "wait", "sc-nope.service", "0.5", "active")["load"] == "not-found"


def test_reboot_brings_enabled_units_back(host: NspawnHost) -> None:
    host.run(["touch", "/run/sc-before-reboot"])
    down = host.shutdown()
    up = host.boot()
    print(f"\nshutdown: {down:.2f} s, boot again: {up:.2f} s")
    assert host.run(["test", "-e", "/run/sc-before-reboot"], check=False).returncode == 1
    units = [c.unit for c in ALL]
    for unit in units:
        final = drive(host, "wait", unit, "30", "active")
        assert final["active"] == "active", (unit, final)
    for c in ALL:
        wait_running(host, c)
    assert drive(host, "states", *units)[RUNC_BOX.unit]["sub"] == "running"
