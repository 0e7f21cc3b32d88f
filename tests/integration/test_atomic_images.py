"""Images written for ``atomic install --system`` install unchanged on a real booted systemd.

One host booted in systemd-nspawn, offline (a private network with no
configuration) and with systemd-networkd-wait-online.service enabled and pulled
in by another enabled unit, as on a host some other service of which wants the
network: wait-online then sits in "activating" for two minutes after each boot.
The images (tests/integration/atomic_mirrors.py) use the /exports features of
projectatomic/atomic-system-containers; each is installed from an OCI layout with
no --set. The tests run in file order:

default unit: install --now does not wait for wait-online, and the journal names
the container -> etcd: installs and runs, and ``run`` works once it is stopped
(RuntimeDirectory= gone) -> buildah: a run-once image gets its tmpfiles bind
source -> qemu-guest-agent: the rc-form capability list runs -> hello-world: the 0.x
linux.capabilities list reaches the container -> an image asking
for ALL_PROCESS_CAPABILITIES gets what the host can grant -> reboot: every
enabled service is active within seconds of basic.target, wait-online still
waiting.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.imagebuild import BUSYBOX, requires
from tests.integration.atomic_mirrors import (
    ALLCAPS,
    BUILDAH,
    DEBIAN_HOST,
    ETCD,
    PLAIN,
    QEMU_GA_HERE,
    STANDARD_CAPS,
    build,
    hello_world,
)
from tests.integration.nspawn import Bind, Completed, NspawnHost, booted_or_skip, persistent_binds

pytestmark = [pytest.mark.systemd, pytest.mark.slow, requires("runc", "umoci")]

CLI = "import sys; from syscontainers.cli import main; sys.exit(main(sys.argv[1:]))"
WAIT_ONLINE = "systemd-networkd-wait-online.service"
# Another service of the host that wants the network up: it pulls wait-online in at boot.
NEEDS_ONLINE = """\
[Unit]
Description=a host service that waits for the network
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true

[Install]
WantedBy=multi-user.target
"""
SERVICES = ("plain", "etcd", "allcaps")  # enabled ones whose bind sources survive a reboot


@dataclass
class World:
    """The booted host and the layout of test images inside it."""

    host: NspawnHost
    layout: str

    def sc(self, *args: str, check: bool = True, timeout: float = 180) -> Completed:
        """Run the syscontainers CLI inside."""
        return self.host.run(["/usr/bin/python3", "-c", CLI, *args], check=check, timeout=timeout)

    def install(self, tag: str, name: str, *options: str, check: bool = True) -> Completed:
        """install [OPTIONS] --name NAME from the layout's TAG, with no --set."""
        return self.sc("install", *options, "--name", name, f"oci:{self.layout}:{tag}", check=check)

    def state(self, unit: str) -> str:
        """systemctl is-active UNIT."""
        return self.host.run(["systemctl", "is-active", unit], check=False).stdout.strip()

    def prop(self, unit: str, name: str) -> str:
        """One property of UNIT (the manager's when UNIT is "")."""
        return self.host.run(
            ["systemctl", "show", "-P", name, *([unit] if unit else [])]
        ).stdout.strip()

    def wait_active(self, unit: str, timeout: float = 30.0) -> str:
        """Wait for UNIT to be active; return its last state."""
        deadline = time.monotonic() + timeout
        while (state := self.state(unit)) != "active" and time.monotonic() < deadline:
            time.sleep(0.2)
        return state

    def caps(self, pid: str, field: str) -> int:
        """A capability mask (CapEff, CapBnd, ...) of process PID inside."""
        status = self.host.run(["cat", f"/proc/{pid}/status"]).stdout
        (line,) = [x for x in status.splitlines() if x.startswith(field + ":")]
        return int(line.split()[1], 16)

    def container_pid(self, name: str) -> str:
        """The pid of container NAME's init."""
        return str(json.loads(self.host.run(["runc", "state", name]).stdout)["pid"])

    def journal(self, ident: str) -> str:
        """What the journal holds under SyslogIdentifier IDENT."""
        self.host.run(["journalctl", "--sync"], check=False)
        return self.host.run(["journalctl", "-q", "-o", "cat", "-t", ident]).stdout


def enable_wait_online(etc_systemd: Path) -> None:
    """Enable wait-online, and a service that pulls it in, in a persistent /etc/systemd/system."""
    online = etc_systemd / "network-online.target.wants"
    online.mkdir(parents=True, exist_ok=True)
    (online / WAIT_ONLINE).symlink_to(f"/lib/systemd/system/{WAIT_ONLINE}")
    (etc_systemd / "needs-online.service").write_text(NEEDS_ONLINE)
    wants = etc_systemd / "multi-user.target.wants"
    wants.mkdir(exist_ok=True)
    (wants / "needs-online.service").symlink_to("/etc/systemd/system/needs-online.service")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The offline host with wait-online enabled, and the images built."""
    if not BUSYBOX.exists():
        pytest.skip("busybox-static is not installed")
    test_dir = tmp_path_factory.mktemp("atomic")
    layout = test_dir / "images"
    for mirror in (PLAIN, ETCD, BUILDAH, QEMU_GA_HERE, ALLCAPS, hello_world()):
        build(layout, mirror)
    binds = persistent_binds(test_dir)
    enable_wait_online(test_dir / "persist" / "etc-systemd-system")
    # /usr is the host's, read-only, and /etc a tmpfs: the host files go to persistent binds
    more = []
    for name, target in (("usr-local-bin", "/usr/local/bin"), ("etc-etcd", "/etc/etcd")):
        (test_dir / "persist" / name).mkdir()
        more.append(Bind(test_dir / "persist" / name, target))
    host = NspawnHost(test_dir, binds=(*binds, *more))
    with booted_or_skip(host):
        host.sh(DEBIAN_HOST)
        yield World(host, host.inside(layout))


def test_install_now_does_not_wait_for_wait_online(world: World) -> None:
    assert world.state(WAIT_ONLINE) == "activating"  # offline: it waits two minutes
    started = time.monotonic()
    world.install("plain", "plain", "--now", "--health-timeout", "2")
    took = time.monotonic() - started
    print(f"install --now with wait-online activating: {took:.2f} s")
    assert took < 15, f"install --now took {took:.1f} s"  # 2 s of it the health window
    assert world.state("plain.service") == "active"
    assert world.state(WAIT_ONLINE) == "activating"
    unit = world.host.run(["cat", "/etc/systemd/system/plain.service"]).stdout
    assert "After=network.target\n" in unit and "\nWants=network-online" not in unit


def test_the_journal_names_the_container(world: World) -> None:
    deadline = time.monotonic() + 10
    while "plain serving" not in world.journal("plain") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "plain serving" in world.journal("plain")
    assert "plain serving" not in world.journal("runc")


def test_network_online_on_request_is_kept_by_update(world: World) -> None:
    # stopped first: a restart that waits for network-online would wait for wait-online
    world.host.run(["systemctl", "stop", "plain.service"])
    world.sc("update", "plain", "--set", "NETWORK_ONLINE=yes", "--no-pull", "--health-timeout", "2")
    unit = world.host.run(["cat", "/etc/systemd/system/plain.service"]).stdout
    assert unit.endswith("[Unit]\nWants=network-online.target\nAfter=network-online.target\n")
    world.sc(
        "update",
        "plain",
        "--no-pull",
        "--set",
        "GREETING=kept",  # another update
        "--health-timeout",
        "2",
    )
    unit = world.host.run(["cat", "/etc/systemd/system/plain.service"]).stdout
    assert unit.endswith("[Unit]\nWants=network-online.target\nAfter=network-online.target\n")
    world.sc("update", "plain", "--set", "NETWORK_ONLINE=no", "--no-pull", "--health-timeout", "2")
    unit = world.host.run(["cat", "/etc/systemd/system/plain.service"]).stdout
    assert not [x for x in unit.splitlines() if "network-online" in x and x[0] != "#"]
    world.host.run(["systemctl", "start", "plain.service"])
    assert world.wait_active("plain.service") == "active"


def test_etcd_installs_unchanged_and_runs(world: World) -> None:
    out = world.install("etcd", "etcd", "--now", "--health-timeout", "2")
    assert "installed etcd" in out.stdout
    assert world.state("etcd.service") == "active"
    assert world.host.run(["cat", "/etc/etcd/etcd.conf"]).stdout.startswith("#ETCD_NAME")
    assert world.host.run(["sh", "/usr/local/bin/etcdctl"]).stdout == "etcdctl stand-in\n"
    deadline = time.monotonic() + 10
    while "etcd serving" not in world.journal("etcd") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "etcd serving" in world.journal("etcd")


def test_run_in_a_stopped_etcd_finds_its_run_directory(world: World) -> None:
    world.host.run(["systemctl", "stop", "etcd.service"])
    assert world.state("etcd.service") == "inactive"
    gone = world.host.run(["test", "-e", "/run/etcd"], check=False)
    assert gone.returncode != 0  # RuntimeDirectory= is removed at stop
    out = world.sc(
        "run", "etcd", "/bin/sh", "-c", "test -d /var/run/etcd && echo run-ok", check=False
    )
    assert out.returncode == 0 and "run-ok" in out.stdout, out
    world.host.run(["systemctl", "start", "etcd.service"])
    assert world.wait_active("etcd.service") == "active"


def test_run_once_image_gets_its_tmpfiles(world: World) -> None:
    world.host.run(["rm", "-rf", "/run/NetworkManager"])
    out = world.install("buildah-fedora", "buildah", check=False)
    assert out.returncode == 0, out
    assert "buildah-like: ran once" in out.stdout
    assert "CAP_SYS_RESOURCE" in out.stderr or not withheld(world)
    assert world.sc("list", "--all", "--json").stdout.count('"buildah"') == 0


def withheld(world: World) -> list[str]:
    """The capabilities `images inspect` says this host cannot grant."""
    doc = json.loads(world.sc("images", "inspect", "--json", "images:plain").stdout)
    return list(doc["capabilities"]["withheld"])


def test_rc_form_capability_list_runs(world: World) -> None:
    world.install("qemu-guest-agent-here", "qga", "--now", "--health-timeout", "2")
    assert world.wait_active("qga.service") == "active"
    config = json.loads(
        world.host.run(["cat", "/var/lib/syscontainers/containers/qga/config.json"]).stdout
    )
    caps = config["process"]["capabilities"]
    assert set(caps) == {"bounding", "effective", "inheritable", "permitted", "ambient"}
    assert "CAP_SYS_ADMIN" in caps["effective"] and "CAP_AUDIT_WRITE" not in caps["effective"]
    pid = world.container_pid("qga")
    assert world.caps(pid, "CapEff") >> 21 & 1  # CAP_SYS_ADMIN
    assert not world.caps(pid, "CapEff") >> 29 & 1  # CAP_AUDIT_WRITE: not in the list


def test_a_0x_linux_capabilities_list_reaches_the_container(world: World) -> None:
    world.install("hello-world", "hello", "--now", "--health-timeout", "2")
    assert world.wait_active("hello.service") == "active"
    config = json.loads(
        world.host.run(["cat", "/var/lib/syscontainers/containers/hello/config.json"]).stdout
    )
    assert "capabilities" not in config["linux"]
    caps = config["process"]["capabilities"]
    assert caps == {
        **{name: STANDARD_CAPS for name in ("bounding", "effective", "inheritable", "permitted")},
        "ambient": [],
    }
    pid = world.container_pid("hello")
    for field in ("CapEff", "CapBnd"):  # CAP_KILL, CAP_NET_BIND_SERVICE, CAP_AUDIT_WRITE
        assert world.caps(pid, field) == 1 << 5 | 1 << 10 | 1 << 29, field
    world.sc("uninstall", "hello")


def test_all_process_capabilities_is_what_the_host_can_grant(world: World) -> None:
    world.install("allcaps", "allcaps", "--now", "--health-timeout", "2")
    assert world.wait_active("allcaps.service") == "active"
    host_bounding = world.caps("1", "CapBnd")
    pid = world.container_pid("allcaps")
    assert world.caps(pid, "CapEff") == world.caps(pid, "CapBnd") == host_bounding
    inspect = world.sc("images", "inspect", "images:allcaps").stdout
    if not host_bounding >> 24 & 1:  # the test machines' root lacks CAP_SYS_RESOURCE
        assert "not CAP_SYS_RESOURCE" in inspect
        assert "CAP_SYS_RESOURCE" in withheld(world)


def test_after_a_reboot_every_service_is_up_within_seconds(world: World) -> None:
    world.host.reboot()
    world.host.sh(DEBIAN_HOST)
    for name in SERVICES:
        unit = f"{name}.service"
        assert world.wait_active(unit, timeout=60) == "active", world.host.run(
            ["journalctl", "-b", "-q", "-n", "30", "-u", unit], check=False
        ).stdout
    basic = int(world.prop("basic.target", "ActiveEnterTimestampMonotonic"))
    userspace = int(world.prop("", "UserspaceTimestampMonotonic"))
    assert world.state(WAIT_ONLINE) == "activating"  # still waiting for a network
    assert world.state("multi-user.target") != "active"  # held by needs-online.service
    for name in SERVICES:
        active = int(world.prop(f"{name}.service", "ActiveEnterTimestampMonotonic"))
        print(
            f"{name}: active {(active - userspace) / 1e6:.2f} s after systemd started, "
            f"{(active - basic) / 1e6:.2f} s after basic.target"
        )
        assert 0 < active - basic < 5_000_000, name
