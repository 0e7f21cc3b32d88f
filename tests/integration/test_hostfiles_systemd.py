"""Host files and directories end to end, on a real systemd booted in systemd-nspawn.

The images are busybox images in an OCI layout in the bound test directory; the CLI
inside pulls them over oci: (no registry needed). The tests run in file order as one
scenario:

- ``dirs``: its /exports/hostfs has an empty directory, /etc/flanneld, that its
  config.json binds into the container (flannel's case): install --now must make it,
  or runc cannot bind it and the unit fails; the service checks it sees a directory;
- two containers of that image share a host file and the directory: uninstalling one
  keeps both for the other, which still runs; ``hostfiles owner`` and ``verify`` tell;
  uninstalling the last removes them;
- ``usr``: an image whose host file goes to /usr/local/bin, which the booted host has
  read-only (--volatile=yes): install fails naming it, with nothing written.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.imagebuild import BUSYBOX, add_layer, layer_tar, make_busybox_layout, requires
from tests.integration.nspawn import Completed, NspawnHost, booted_or_skip, persistent_binds

pytestmark = [pytest.mark.systemd, pytest.mark.slow, requires("runc", "umoci")]

CLI = "import sys; from syscontainers.cli import main; sys.exit(main(sys.argv[1:]))"
SHARED = "/etc/demo-shared/common.conf"
COMMON = b"one file, two containers\n"
CONFIG = {
    "ociVersion": "1.0.2",
    "process": {
        "terminal": False,
        "user": {"uid": 0, "gid": 0},
        "cwd": "/",
        "env": ["PATH=/bin"],
        # flanneld would fail on a missing directory too; the test proves it is one
        "args": [
            "/bin/sh",
            "-c",
            "test -d /etc/flanneld || exit 7; trap 'exit 0' TERM; sleep 1000 & wait",
        ],
    },
    "root": {"path": "rootfs", "readonly": True},
    "hostname": "$NAME",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {
            "destination": "/etc/flanneld",
            "type": "bind",
            "source": "/etc/flanneld",
            "options": ["rbind", "rw"],
        },
    ],
    "linux": {"namespaces": [{"type": "pid"}, {"type": "uts"}, {"type": "mount"}]},
}


def build_images(layout: Path) -> None:
    """dirs: the empty hostfs directory bound by config.json, and a shared host file;
    usr: a host file for /usr/local/bin."""
    make_busybox_layout(layout, "dirs")
    add_layer(
        layout,
        "dirs",
        layer_tar(
            {
                "exports/config.json.template": json.dumps(CONFIG, indent=1).encode(),
                # an image tmpfiles template: no default line makes a missing bind source
                "exports/tmpfiles.template": b"d /run/$NAME 0755 0 0 - -\n",
                "exports/hostfs" + SHARED: COMMON,
            },
            dirs=["exports/hostfs/etc/flanneld", "etc/flanneld"],
        ),
    )
    make_busybox_layout(layout, "usr")
    add_layer(
        layout,
        "usr",
        layer_tar(
            {
                "exports/hostfs/usr/local/bin/demo-tool": b"#!/bin/sh\necho demo\n",
            },
            modes={"exports/hostfs/usr/local/bin/demo-tool": 0o755},
        ),
    )


@dataclass
class World:
    """The booted host and where the test images are inside it."""

    host: NspawnHost
    layout: str

    def sc(self, *args: str, check: bool = True) -> Completed:
        """Run the syscontainers CLI inside."""
        return self.host.run(["/usr/bin/python3", "-c", CLI, *args], check=check, timeout=180)

    def active(self, unit: str, timeout: float = 15.0) -> str:
        """The unit's state once it has settled into active (or TIMEOUT passed)."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.host.run(["systemctl", "is-active", unit], check=False).stdout.strip()
            if state == "active" or time.monotonic() > deadline:
                return state
            time.sleep(0.2)

    def exists(self, path: str) -> bool:
        """True if PATH exists inside."""
        return self.host.run(["test", "-e", path], check=False).returncode == 0


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A booted host with the persistent binds and the test images built."""
    if not BUSYBOX.exists():
        pytest.skip("busybox-static is not installed")
    test_dir = tmp_path_factory.mktemp("hostfiles")
    build_images(test_dir / "layout")
    host = NspawnHost(test_dir, binds=persistent_binds(test_dir))
    with booted_or_skip(host):
        yield World(host, host.inside(test_dir / "layout"))


def test_an_empty_hostfs_directory_is_made_and_bound(world: World) -> None:
    assert not world.exists("/etc/flanneld")
    out = world.sc(
        "install", "--now", "--health-timeout", "2", "--name", "fa", f"oci:{world.layout}:dirs"
    )
    assert "installed fa" in out.stdout
    assert world.active("fa.service") == "active", world.host.run(
        ["journalctl", "-u", "fa.service", "--no-pager"], check=False
    ).stdout
    assert world.host.run(["stat", "-c", "%F", "/etc/flanneld"]).stdout.strip() == "directory"


def test_two_containers_share_a_host_file(world: World) -> None:
    world.sc(
        "install", "--now", "--health-timeout", "2", "--name", "fb", f"oci:{world.layout}:dirs"
    )
    assert world.active("fb.service") == "active"
    got = json.loads(world.sc("hostfiles", "owner", "--json", SHARED, "/etc/flanneld").stdout)
    assert got[SHARED]["owners"] == ["fa", "fb"] and got[SHARED]["created"] is True
    assert got["/etc/flanneld"]["owners"] == ["fa", "fb"]


def test_uninstalling_one_keeps_what_the_other_uses(world: World) -> None:
    out = world.sc("uninstall", "fa")
    assert "uninstalled fa" in out.stdout
    assert world.host.run(["cat", SHARED]).stdout.encode() == COMMON
    assert world.exists("/etc/flanneld")
    world.host.run(["systemctl", "restart", "fb.service"])  # still starts: the bind is there
    assert world.active("fb.service") == "active"
    verify = world.sc("hostfiles", "verify", "fb")
    assert "no problem" in verify.stdout
    owner = world.sc("hostfiles", "owner", SHARED).stdout
    assert "owned by fb (made by syscontainers)" in owner


def test_uninstalling_the_last_owner_removes_them(world: World) -> None:
    world.sc("uninstall", "fb")
    for path in (SHARED, "/etc/demo-shared", "/etc/flanneld"):
        assert not world.exists(path), path
    assert world.sc("hostfiles", "list", "--json").stdout.strip() == "[]"


def test_a_read_only_usr_is_named_and_nothing_is_written(world: World) -> None:
    out = world.sc("install", "--name", "tool", f"oci:{world.layout}:usr", check=False)
    assert out.returncode == 1, out
    assert "/usr/local/bin is on a read-only file system" in out.stderr, out.stderr
    assert "report a bug" not in out.stderr
    assert not world.exists("/usr/local/bin/demo-tool")
    assert not world.exists("/etc/systemd/system/tool.service")
    left = world.host.run(["ls", "-A", "/var/lib/syscontainers/containers"]).stdout.split()
    assert [n for n in left if n.startswith(("tool", ".tmp-tool"))] == []
