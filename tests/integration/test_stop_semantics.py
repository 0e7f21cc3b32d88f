"""How a system container stops, on a real systemd booted in systemd-nspawn.

Deployments are rendered by syscontainers.render with the command lines and the
cgroup path of syscontainers.runtime, exactly as install renders them, for runc
and for crun (``--cgroup-manager=disabled``), with the shipped default unit, with
an atomic-style unit that only has ``ExecStart=$EXEC_START`` and
``ExecStop=$EXEC_STOP``, and with a detached one (``$EXEC_STOPPOST`` and
``$PIDFILE``). Each pairing runs two busybox containers: busybox httpd
as PID 1, which never sees SIGTERM (the kernel drops it: no handler), and a shell
that exits 0 on SIGTERM. The checks, in file order:

(a) the container's init is in its unit's cgroup subtree;
(b) a stop ends inactive (not failed) with nothing left to the runtime, fast for
    the SIGTERM-respecting container, after the grace period for the other;
(c) a stop right after a start (waited for or not) does not fail;
(d) a stale runtime state, left by a crash or by a container of the same name,
    does not block the next start.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from syscontainers.oci import ImageConfig
from syscontainers.render import HostFacts, compute_values, parse_exports, render_deployment
from syscontainers.runtime import (
    STOP_GRACE_SECONDS,
    Runtime,
    RuntimeMode,
    command_line,
    runtime_commands,
    service_cgroup,
)
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
UNITS = {  # the image's unit template by kind; "default" ships none
    "atomic": b"[Unit]\nDescription=$NAME\n\n[Service]\nExecStart=$EXEC_START\n"
    b"ExecStop=$EXEC_STOP\nWorkingDirectory=$DESTDIR\n\n"
    b"[Install]\nWantedBy=multi-user.target\n",
    "detached": b"[Service]\nType=forking\nPIDFile=$PIDFILE\nExecStart=$EXEC_START\n"
    b"ExecStopPost=$EXEC_STOPPOST\nWorkingDirectory=$DESTDIR\n",
}
T = TypeVar("T")


@dataclass(frozen=True)
class Box:
    """One rendered container: runtime, unit kind and whether PID 1 handles SIGTERM."""

    name: str
    runtime: Runtime
    kind: str  # "default", or a key of UNITS
    respects_term: bool
    port: int

    @property
    def unit(self) -> str:
        return f"{self.name}.service"

    def args(self) -> tuple[str, ...]:
        httpd = f"httpd -f -p 127.0.0.1:{self.port} -h /www"
        if self.respects_term:
            return ("/bin/sh", "-c", f"trap 'exit 0' TERM; {httpd} & wait")
        return ("/bin/httpd", *httpd.split()[1:])


BOXES = tuple(
    Box(f"st-{rt_name}-{kind}-{'term' if term else 'deaf'}", runtime, kind, term, 18100 + i)
    for i, (rt_name, runtime, kind, term) in enumerate(
        (r, rt, k, t)
        for r, rt in (("runc", RUNC), ("crun", CRUN))
        for k in ("default", *UNITS)
        for t in (True, False)
    )
)


def render_box(test_dir: Path, host: NspawnHost, box: Box) -> None:
    """Write BOX's deployment (busybox rootfs, config.json) and its unit, as install would."""
    deployment = test_dir / "deployments" / f"{box.name}.0"
    rootfs = deployment / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    (rootfs / "www").mkdir()
    (rootfs / "www" / "index.html").write_text(f"{box.name}\n")
    shutil.copy2(BUSYBOX, rootfs / "bin" / "busybox")
    for applet in ("sh", "httpd"):
        (rootfs / "bin" / applet).symlink_to("busybox")
    own = box.kind in UNITS
    exports = parse_exports({"service.template": UNITS[box.kind]} if own else {}, present=own)
    mode = RuntimeMode.DETACHED if box.kind == "detached" else RuntimeMode.FOREGROUND
    facts = HostFacts(
        uid=0, gid=0, cap_last_cap=40, uuid="u", runtime=command_line(box.runtime.argv())
    )
    values = compute_values(
        name=box.name,
        image_name="busybox",
        image_id="ab" * 32,
        destdir=host.inside(deployment),
        sets={},
        defaults={},
        facts=facts,
        commands=lambda v: runtime_commands(box.runtime, box.name, mode, v["PIDFILE"]),
    )
    rendered = render_deployment(
        exports,
        ImageConfig(diff_ids=(), cmd=box.args()),
        values,
        exists=lambda path: False,  # no host files to bind: the booted host's /etc differs
        cgroups_path=service_cgroup(box.runtime, box.name),
    )
    (deployment / "config.json").write_bytes(rendered.config_json)
    unit_dir = test_dir / "persist" / "etc-systemd-system"
    (unit_dir / box.unit).write_text(rendered.unit)


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NspawnHost]:
    """A booted host with every box's unit in place and loaded."""
    skip_without_runtimes()
    test_dir = tmp_path_factory.mktemp("stop")
    machine = NspawnHost(test_dir, binds=persistent_binds(test_dir))
    for box in BOXES:
        render_box(test_dir, machine, box)
    with booted_or_skip(machine):
        yield machine


def in_parallel(fn: Callable[[Box], T], boxes: tuple[Box, ...] = BOXES) -> dict[Box, T]:
    """FN for each box at once (stops that wait out a grace period overlap)."""
    with ThreadPoolExecutor(len(boxes)) as pool:
        return dict(zip(boxes, pool.map(fn, boxes), strict=True))


def show(host: NspawnHost, box: Box, *props: str) -> dict[str, str]:
    """systemctl show -p PROPS for BOX's unit."""
    out = host.run(["systemctl", "show", *(f"-p{p}" for p in props), box.unit]).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def state(host: NspawnHost, box: Box) -> dict[str, Any] | None:
    """`RUNTIME state NAME`, or None when the runtime does not know the container."""
    done = host.run(box.runtime.argv("state", box.name), check=False)
    return json.loads(done.stdout) if done.returncode == 0 else None


def wait_running(host: NspawnHost, box: Box, timeout: float = 15.0) -> dict[str, Any]:
    """The runtime's state of BOX once it is running."""
    deadline = time.monotonic() + timeout
    while (found := state(host, box)) is None or found.get("status") != "running":
        assert time.monotonic() < deadline, f"{box.name} is not running: {found}"
        time.sleep(0.1)
    return found


def listed(host: NspawnHost, runtime: Runtime) -> set[str]:
    """Every container id RUNTIME knows, whatever its status."""
    out = host.run(runtime.argv("list", "--format", "json")).stdout
    return {c["id"] for c in json.loads(out or "[]") or []}


def assert_stopped_cleanly(host: NspawnHost, box: Box) -> None:
    """BOX's unit is inactive with result success, and its runtime has forgotten it."""
    seen = show(host, box, "ActiveState", "Result")
    assert (seen["ActiveState"], seen["Result"]) == ("inactive", "success"), (box.name, seen)
    assert box.name not in listed(host, box.runtime), box.name


def crashed_and_settled(host: NspawnHost, box: Box) -> bool:
    """After a crash: the atomic unit (no Restart=) failed with its state deleted; the
    default unit restarted."""
    seen = show(host, box, "ActiveState", "NRestarts")
    if box.kind == "atomic":
        return seen["ActiveState"] == "failed" and box.name not in listed(host, box.runtime)
    return seen["ActiveState"] == "active" and int(seen["NRestarts"]) >= 1


def timed_stop(host: NspawnHost, box: Box) -> float:
    started = time.monotonic()
    host.run(["systemctl", "stop", box.unit], timeout=60)
    return time.monotonic() - started


def test_units_get_the_stop_guarantees(host: NspawnHost) -> None:
    for box in BOXES:
        seen = show(host, box, "Delegate", "SuccessExitStatus", "ExecStopPost", "LoadState")
        assert seen["LoadState"] == "loaded" and seen["Delegate"] == "yes", box.name
        detached = box.kind == "detached"  # there the init itself is the main process
        wanted = {"143", "KILL" if detached else "137"}  # systemctl shows SIGKILL as KILL
        assert wanted <= set(seen["SuccessExitStatus"].split()), (box.name, seen)
        assert "delete" in seen["ExecStopPost"], box.name  # the atomic unit gets it added


def test_a_containers_processes_are_in_its_units_cgroup(host: NspawnHost) -> None:
    host.run(["systemctl", "start", *(b.unit for b in BOXES)])
    for box in BOXES:
        pid = wait_running(host, box)["pid"]
        unit_cgroup = show(host, box, "ControlGroup")["ControlGroup"]
        line = next(
            x
            for x in host.run(["cat", f"/proc/{pid}/cgroup"]).stdout.splitlines()
            if x.startswith("0::")
        )
        # runc makes the container's own cgroup inside the unit's; crun without a
        # cgroup manager leaves it in the unit's cgroup itself.
        expected = unit_cgroup + ("/container" if box.runtime is RUNC else "")
        assert line == f"0::{expected}", (box.name, line, unit_cgroup)
        assert unit_cgroup == f"/system.slice/{box.unit}"


def test_b_stop_is_bounded_and_ends_inactive(host: NspawnHost) -> None:
    for box in BOXES:
        wait_running(host, box)
    elapsed = in_parallel(lambda box: timed_stop(host, box))
    print("\nstop times: " + ", ".join(f"{b.name} {t:.2f} s" for b, t in elapsed.items()))
    for box, seconds in elapsed.items():
        assert_stopped_cleanly(host, box)
        if box.respects_term:
            assert seconds < STOP_GRACE_SECONDS / 2, (box.name, seconds)  # by SIGTERM
        else:  # SIGKILL after the grace, well before TimeoutStopSec would fail the unit
            assert STOP_GRACE_SECONDS - 1 < seconds < 2 * STOP_GRACE_SECONDS, (box.name, seconds)


def test_c_stop_right_after_start_does_not_fail(host: NspawnHost) -> None:
    def start_then_stop(box: Box) -> list[str]:
        results = []
        for no_block in ((), ("--no-block",)):
            host.run(["systemctl", "start", *no_block, box.unit])
            host.run(["systemctl", "stop", box.unit], timeout=60)
            seen = show(host, box, "ActiveState", "Result")
            results.append(f"{seen['ActiveState']}/{seen['Result']}")
        return results

    outcomes = in_parallel(start_then_stop)
    assert {b.name: o for b, o in outcomes.items()} == {
        b.name: ["inactive/success"] * 2 for b in BOXES
    }
    for box in BOXES:
        assert box.name not in listed(host, box.runtime), box.name


def test_d_a_stale_runtime_state_does_not_block_the_next_start(host: NspawnHost) -> None:
    # A detached unit's main process is the container's init: killing it is no runtime crash.
    boxes = tuple(b for b in BOXES if b.respects_term and b.kind != "detached")
    for box in boxes:  # a container of the same name, left running outside the unit
        bundle = show(host, box, "WorkingDirectory")["WorkingDirectory"]
        run = command_line(box.runtime.argv("run", "-d", "--bundle", bundle, box.name))
        host.sh(f"{run} </dev/null >/dev/null 2>&1")
    squatters = {box: wait_running(host, box)["pid"] for box in boxes}
    host.run(["systemctl", "start", *(b.unit for b in boxes)])
    for box, old in squatters.items():
        assert show(host, box, "ActiveState")["ActiveState"] == "active", box.name
        assert wait_running(host, box)["pid"] != old, box.name
    # A crash of the runtime: its container dies with the unit, and ExecStopPost deletes
    # the state. The default unit (Restart=on-failure) comes back by itself.
    before = {box: wait_running(host, box)["pid"] for box in boxes}
    for box in boxes:
        host.run(["systemctl", "kill", "--kill-whom=main", "--signal=SIGKILL", box.unit])
    for box in boxes:
        deadline = time.monotonic() + 15
        while not crashed_and_settled(host, box):
            assert time.monotonic() < deadline, (box.name, show(host, box, "ActiveState"))
            time.sleep(0.1)
        assert host.run(["kill", "-0", str(before[box])], check=False).returncode != 0
    host.run(["systemctl", "start", *(b.unit for b in boxes if b.kind == "atomic")])
    for box in boxes:
        assert wait_running(host, box)["pid"] != before[box], box.name
        assert show(host, box, "ActiveState")["ActiveState"] == "active", box.name
    host.run(["systemctl", "stop", *(b.unit for b in boxes)])
    for box in boxes:
        assert_stopped_cleanly(host, box)


@dataclass(frozen=True)
class BrokenBox(Box):
    """A detached container whose command does not exist: its start must still fail."""

    def args(self) -> tuple[str, ...]:
        return ("/bin/no-such-program",)


BROKEN = BrokenBox("st-runc-detached-broken", RUNC, "detached", True, 18199)


def test_e_a_detached_start_that_really_fails_still_fails(host: NspawnHost) -> None:
    """ExecStart tolerates a start cancelled by a stop ('-'), but not a container that
    cannot start: no PID file appears and systemd fails the unit."""
    render_box(host.test_dir, host, BROKEN)
    host.run(["systemctl", "daemon-reload"])
    done = host.run(["systemctl", "start", BROKEN.unit], check=False, timeout=60)
    assert done.returncode != 0
    seen = show(host, BROKEN, "ActiveState", "Result")
    assert seen["ActiveState"] == "failed" and seen["Result"] != "success", seen
