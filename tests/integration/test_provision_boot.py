"""Provisioning end to end: a Debian root filled offline with --sysroot, then booted in nspawn.

The root (tests/integration/provision_root.py: mmdebstrap minbase with systemd, dbus,
runc and python3) is copied, and on this machine, before it ever boots:

- ``syscontainers --sysroot ROOT install`` installs ``one`` (nothing runs, no D-Bus);
- ``--sysroot ROOT pull`` stores the images of ``two`` and ``three``;
- ``units/syscontainers-apply.service`` is installed and enabled, with a host manifest
  /etc/syscontainers/host.yaml that lists ``two``. Inside, the unit runs this repository's
  CLI (a drop-in: the root has no package installed) instead of /usr/bin/syscontainers.

The root then boots with a private network. At first boot ``one`` is active (its
[Install] link, made offline) with its tmpfiles line applied by the root's own systemd,
and ``two`` is active too, installed and started by the apply unit before
multi-user.target, with no network. Then ``apply`` runs on that booted systemd: it
installs ``three``, updates it when the manifest changes its image, a second apply
changes nothing (no unit, deployment or host file touched: mtimes and inodes compared),
and --prune uninstalls what the manifest dropped. The tests run in file order.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.imagebuild import add_layer, layer_tar, make_busybox_layout, requires
from tests.integration.nspawn import REPO, Completed, NspawnHost, booted_or_skip
from tests.integration.provision_root import provision_root

pytestmark = [pytest.mark.systemd, pytest.mark.slow, requires("mmdebstrap", "umoci", "runc")]

PORTS = {"one": 8091, "two": 8092, "three-1": 8093, "three-2": 8093}
POLICY = REPO / "tests/data/accept-anything-policy.json"
DROP_IN = """\
[Service]
Environment=PYTHONPATH=/srv/repo PYTHONDONTWRITEBYTECODE=1
ExecStart=
ExecStart=/usr/bin/python3 -m syscontainers apply --prune /etc/syscontainers/host.yaml
"""
SNAPSHOT = (
    "import os, sys, json; out = {}\n"
    "for top in sys.argv[1:]:\n"
    "    for d, dirs, files in os.walk(top):\n"
    "        for n in [*dirs, *files, '']:\n"
    "            p = os.path.join(d, n); s = os.lstat(p)\n"
    "            out[p] = [s.st_mtime_ns, s.st_ino]\n"
    "print(json.dumps(out))"
)
TMPFILES = "d /run/one-state 0750 root root - -\n"  # applied by the root's systemd at boot
WATCHED = ("/var/lib/syscontainers/containers", "/etc/systemd/system", "/etc/tmpfiles.d")


def page(tag: str) -> bytes:
    return f"served by {tag}\n".encode()


def build_layout(work: Path) -> Path:
    layout = work / "layout"
    for tag, port in PORTS.items():
        cmd = ("/bin/sh", "-c", f"trap 'exit 143' TERM; busybox httpd -f -p {port} -h /www & wait")
        make_busybox_layout(layout, tag, {"www/index.html": page(tag)}, cmd=cmd)
    add_layer(layout, "one", layer_tar({"exports/tmpfiles.template": TMPFILES.encode()}))
    return layout


def offline(root: Path, *args: str) -> None:
    """The CLI on this machine, with --sysroot ROOT and an unreachable system bus."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "SYSCONTAINERS_POLICY": str(POLICY),
        "DBUS_SYSTEM_BUS_ADDRESS": "unix:path=/nonexistent/bus",
    }
    env.pop("SYSCONTAINERS_ROOT", None)
    done = subprocess.run(
        [sys.executable, "-m", "syscontainers", "--sysroot", str(root), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr


@dataclass
class Booted:
    """The booted provisioned root."""

    host: NspawnHost
    root: Path
    test_dir: Path

    def sc(self, *args: str, check: bool = True) -> Completed:
        return self.host.run(
            ["/usr/bin/python3", "-m", "syscontainers", *args], check=check, timeout=300
        )

    def active(self, unit: str) -> str:
        return self.host.run(["systemctl", "is-active", unit], check=False).stdout.strip()

    def get(self, port: int, timeout: float = 20.0) -> str:
        code = (
            f"import urllib.request; print(urllib.request.urlopen("
            f"'http://127.0.0.1:{port}/', timeout=2).read().decode(), end='')"
        )
        deadline = time.monotonic() + timeout
        while True:
            got = self.host.python(code, check=False)
            if got.returncode == 0 or time.monotonic() > deadline:
                return got.stdout
            time.sleep(0.3)

    def manifest(self, name: str, text: str) -> str:
        (self.test_dir / name).write_text(text)
        return self.host.inside(self.test_dir / name)

    def snapshot(self) -> dict[str, list[int]]:
        return dict(json.loads(self.host.python(SNAPSHOT, *WATCHED).stdout))


@pytest.fixture(scope="module")
def booted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Booted]:
    test_dir = tmp_path_factory.mktemp("provision")
    root = provision_root(test_dir / "root")
    if isinstance(root, str):
        pytest.skip(root)
    layout = build_layout(test_dir)
    offline(root, "install", "--name", "one", f"oci:{layout}:one")
    assert (root / "etc/tmpfiles.d/one.conf").read_text() == TMPFILES
    assert not (root / "run/one-state").exists()  # nothing is applied offline
    offline(root, "pull", f"oci:{layout}:two", "--name", "example.org/two:1")
    for version in ("1", "2"):
        offline(
            root, "pull", f"oci:{layout}:three-{version}", "--name", f"example.org/three:{version}"
        )
    units = root / "etc/systemd/system"
    (units / "syscontainers-apply.service").write_bytes(
        (REPO / "units/syscontainers-apply.service").read_bytes()
    )
    (units / "syscontainers-apply.service.d").mkdir()
    (units / "syscontainers-apply.service.d/repo.conf").write_text(DROP_IN)
    subprocess.run(
        ["systemctl", f"--root={root}", "enable", "syscontainers-apply.service"],
        check=True,
        capture_output=True,
    )
    (root / "etc/syscontainers").mkdir(parents=True)
    (root / "etc/syscontainers/host.yaml").write_text(
        "containers:\n  two:\n    image: example.org/two:1\n"
    )
    host = NspawnHost(test_dir, directory=root, volatile="no", boot_timeout=180)
    try:
        with booted_or_skip(host):
            yield Booted(host, root, test_dir)
    finally:
        shutil.rmtree(root, ignore_errors=True)  # a whole Debian root: not kept in /tmp


def test_the_offline_install_is_active_at_first_boot(booted: Booted) -> None:
    assert booted.host.run(
        ["systemctl", "is-system-running", "--wait"], check=False, timeout=180
    ).stdout.strip() in ("running", "degraded")
    assert booted.active("one.service") == "active"
    assert booted.get(PORTS["one"]) == page("one").decode()
    assert booted.host.sh("stat -c %a /run/one-state").stdout.strip() == "750"


def test_the_apply_unit_converged_at_boot_before_multi_user(booted: Booted) -> None:
    assert booted.active("syscontainers-apply.service") == "active"
    assert booted.active("two.service") == "active"
    assert booted.get(PORTS["two"]) == page("two").decode()
    shown = booted.host.run(
        [
            "systemctl",
            "show",
            "-p",
            "ActiveEnterTimestampMonotonic",
            "two.service",
            "multi-user.target",
        ]
    ).stdout.split()
    two, multi_user = (int(line.split("=")[1]) for line in shown)
    assert 0 < two < multi_user
    journal = booted.host.run(["journalctl", "-b", "-u", "syscontainers-apply.service"]).stdout
    assert "install two" in journal and "applied" in journal


def test_apply_on_the_booted_host_installs_updates_and_is_then_a_no_op(booted: Booted) -> None:
    both = "containers:\n  two:\n    image: example.org/two:1\n  three:\n    image: {}\n"
    first = booted.manifest("m1.yaml", both.format("example.org/three:1"))
    out = booted.sc("apply", first).stdout
    assert "install three" in out and "start three" in out
    assert booted.get(PORTS["three-1"]) == page("three-1").decode()
    second = booted.manifest("m2.yaml", both.format("example.org/three:2"))
    out = booted.sc("apply", "--json", second).stdout
    result = json.loads(out.splitlines()[-1])
    assert [(r["action"], r["name"], r["detail"]) for r in result["results"]] == [
        ("update", "three", "updated to three.1")
    ]
    assert booted.get(PORTS["three-2"]) == page("three-2").decode()
    before = booted.snapshot()
    assert any(p.endswith("/three.service") for p in before)
    again = booted.sc("apply", second).stdout
    assert "nothing to change" in again
    assert booted.snapshot() == before
    assert booted.active("three.service") == "active"


def test_apply_prune_uninstalls_what_the_manifest_dropped(booted: Booted) -> None:
    only_two = booted.manifest("m3.yaml", "containers:\n  two:\n    image: example.org/two:1\n")
    assert "orphan three" in booted.sc("apply", only_two).stdout
    assert booted.active("three.service") == "active"
    out = booted.sc("apply", "--prune", only_two).stdout
    assert "uninstall three" in out
    assert booted.active("three.service") in ("inactive", "unknown")
    assert not (booted.root / "etc/systemd/system/three.service").exists()
    assert booted.active("one.service") == "active"  # never managed by apply: untouched
    assert "nothing to change" in booted.sc("apply", "--prune", only_two).stdout
