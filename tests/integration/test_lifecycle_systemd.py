"""The container lifecycle end to end on a real systemd booted in systemd-nspawn.

A real distribution registry runs inside the booted host (its private network
cannot reach the host's loopback), images are pushed to it with skopeo, and the
``syscontainers`` CLI, run inside, pulls them over docker:// and drives systemd
over D-Bus. The tests run in file order as one scenario:

install --now (runc) -> the port answers -> list -> update --set -> rollback ->
an update to a broken image rolls back by itself -> a plain image with crun ->
stop gives inactive -> reboot with the same persistent directories brings both
services back -> uninstall leaves nothing.

``hello`` is examples/build-example-image (busybox httpd under a shell that
exits on SIGTERM, atomic-style /exports) with one more layer: manifest.json gains
renameFiles and a hostfs file. Both installed containers must live in their
unit's cgroup; tests/integration/test_stop_semantics.py covers how they stop.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from syscontainers import process
from tests.imagebuild import (
    BUSYBOX,
    add_layer,
    layer_tar,
    make_busybox_layout,
    requires,
    skopeo_copy,
)
from tests.integration.booted_world import REGISTRY, ROOT, World, example_config
from tests.integration.nspawn import (
    REPO,
    Bind,
    NspawnHost,
    booted_or_skip,
    persistent_binds,
)

pytestmark = [
    pytest.mark.systemd,
    pytest.mark.slow,
    pytest.mark.registry,
    requires("runc", "crun", "umoci", "skopeo", "docker-registry"),
]

CRUN = "/usr/bin/crun --cgroup-manager=disabled"  # test-host.md: crun without cgroups
GREETING = "hello from a syscontainers system container\n"
MANIFEST = {
    "version": "1.0",
    "defaultValues": {"PORT": "8080", "GREETING": "hello"},
    "renameFiles": {"/etc/hello": "$CONF_DIRECTORY/$NAME"},
    "installedFilesTemplate": ["/etc/hello/hello.conf"],
}


def build_images(work: Path) -> Path:
    """hello:v1, hello:broken and plain:v1 in one OCI layout; returns the layout."""
    process.run([str(REPO / "examples/build-example-image"), str(work)], timeout=120)
    layout = work / "layout"
    for tag in ("v1", "broken"):
        skopeo_copy(f"oci:{layout}:latest", f"oci:{layout}:{tag}")
    add_layer(
        layout,
        "v1",
        layer_tar(
            {
                "exports/manifest.json": json.dumps(MANIFEST).encode(),
                "exports/hostfs/etc/hello/hello.conf": b"greeting = $GREETING\n",
            }
        ),
    )
    add_layer(
        layout,
        "broken",
        layer_tar(
            {
                "exports/config.json.template": example_config(["/bin/sh", "-c", "exit 3"]),
            }
        ),
    )
    make_busybox_layout(
        layout,
        "plain",
        {"www/index.html": b"plain via crun\n"},
        cmd=("/bin/sh", "-c", "trap 'exit 143' TERM; busybox httpd -f -p 8090 -h /www & wait"),
    )
    return layout


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A booted host with the persistent binds, a registry inside, and the images pushed."""
    if not BUSYBOX.exists():
        pytest.skip("busybox-static is not installed")
    test_dir = tmp_path_factory.mktemp("lifecycle")
    started = time.monotonic()
    layout = build_images(test_dir / "images")
    print(f"\nimages built: {time.monotonic() - started:.1f} s")
    etc_web = test_dir / "persist" / "etc-web"
    etc_web.mkdir(parents=True)
    binds = (*persistent_binds(test_dir), Bind(etc_web, "/etc/web"))
    host = NspawnHost(test_dir, binds=binds)
    with booted_or_skip(host):
        print(f"boot: {host.boot_seconds[-1]:.2f} s")
        w = World(host, host.inside(layout))
        w.start_registry(test_dir / "registry")
        started = time.monotonic()
        w.push("v1", "hello:1")
        w.push("plain", "plain:1")
        print(f"pushed: {time.monotonic() - started:.1f} s")
        yield w


def timed(label: str, started: float) -> None:
    """Print how long a step took (shown with -s)."""
    print(f"{label}: {time.monotonic() - started:.2f} s")


def test_install_now_runs_the_service_under_runc(world: World) -> None:
    started = time.monotonic()
    out = world.sc(
        "install", "--now", "--health-timeout", "2", "--name", "web", f"docker://{REGISTRY}/hello:1"
    )
    timed("install --now (pull from the registry)", started)
    assert "installed web (web.0" in out.stdout and "started" in out.stdout
    assert world.active("web.service") == "active"
    deadline = time.monotonic() + 15
    while "web" not in world.runtime_ids("runc") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "web" in world.runtime_ids("runc")
    assert world.cgroups("web", "runc") == (
        "/system.slice/web.service/container",
        "/system.slice/web.service",
    )
    assert world.link("web") == "web.0"
    assert world.host.run(["cat", "/etc/web/hello.conf"]).stdout == "greeting = hello\n"
    assert world.host.run(["cat", "/etc/tmpfiles.d/web.conf"]).stdout.startswith(
        "d /var/lib/web 0755 0 0"
    )
    assert world.host.run(["test", "-d", "/var/lib/web"], check=False).returncode == 0
    assert world.info("web")["source"] == f"docker://{REGISTRY}/hello:1"


def test_the_service_answers_on_its_port(world: World) -> None:
    assert world.get(8080) == GREETING


def test_list_shows_the_live_state(world: World) -> None:
    rows = json.loads(world.sc("list", "--json").stdout)
    (row,) = [r for r in rows if r["name"] == "web"]
    assert (row["state"], row["deployment"], row["image"]) == (
        "active",
        "web.0",
        f"docker://{REGISTRY}/hello:1",
    )


def main_pid(world: World, unit: str) -> str:
    return world.host.run(["systemctl", "show", "-P", "MainPID", unit]).stdout.strip()


def test_update_with_set_makes_a_new_slot_with_the_same_uuid(world: World) -> None:
    uuid, pid = world.info("web")["values"]["uuid"], main_pid(world, "web.service")
    started = time.monotonic()
    out = world.sc("update", "web", "--set", "PORT=8081", "--health-timeout", "3")
    timed("update --set (health window 3 s)", started)
    assert "updated web to web.1" in out.stdout and "restarted" in out.stdout
    info = world.info("web")
    assert world.link("web") == "web.1" and info["values"] == {
        "set": {"PORT": "8081"},
        "uuid": uuid,
    }
    assert main_pid(world, "web.service") != pid
    assert world.get(8081) == GREETING
    assert world.get(8080, timeout=0.5).startswith("<no answer")


def test_rollback_switches_back(world: World) -> None:
    out = world.sc("rollback", "web")
    assert "rolled back web from web.1 to web.0, restarted" in out.stdout
    assert world.link("web") == "web.0"
    assert world.get(8080) == GREETING


def test_update_to_a_broken_image_rolls_back_by_itself(world: World) -> None:
    world.push("broken", "hello:1")
    started = time.monotonic()
    out = world.sc("update", "web", "--health-timeout", "5", check=False)
    timed("update to a broken image, rolled back", started)
    assert out.returncode == 1, out
    assert "rolled back to web.0" in out.stderr
    assert world.link("web") == "web.0"
    assert world.wait_active("web.service") == "active"
    assert world.get(8080) == GREETING
    world.push("v1", "hello:1")  # the tag serves the good image again


def test_plain_image_runs_with_crun(world: World) -> None:
    started = time.monotonic()
    world.sc(
        "install",
        "--now",
        "--health-timeout",
        "2",
        "--name",
        "plain",
        "--runtime",
        CRUN,
        f"docker://{REGISTRY}/plain:1",
    )
    timed("install --now with crun", started)
    assert world.active("plain.service") == "active"
    assert world.get(8090) == "plain via crun\n"
    assert "plain" in world.runtime_ids(CRUN)
    container, unit_cgroup = world.cgroups("plain", CRUN)  # crun without cgroups: the unit's
    assert container == unit_cgroup == "/system.slice/plain.service"
    unit = world.host.run(["cat", "/etc/systemd/system/plain.service"]).stdout
    assert "ExecStart=/usr/bin/crun --cgroup-manager=disabled run 'plain'" in unit


def test_stop_gives_inactive_not_failed(world: World) -> None:
    started = time.monotonic()
    world.host.run(["systemctl", "stop", "web.service", "plain.service"])
    timed("systemctl stop of both", started)
    assert time.monotonic() - started < 5, "both handle SIGTERM: no wait for the grace period"
    assert world.active("web.service") == "inactive"
    assert world.active("plain.service") == "inactive"
    assert "web" not in world.runtime_ids("runc") and "plain" not in world.runtime_ids(CRUN)


def test_reboot_brings_both_services_back(world: World) -> None:
    down = world.host.shutdown()
    up = world.host.boot()
    print(f"shutdown {down:.2f} s, boot {up:.2f} s")
    for unit in ("web.service", "plain.service"):
        assert world.wait_active(unit) == "active", unit
    assert world.get(8080) == GREETING
    assert world.get(8090) == "plain via crun\n"
    assert world.host.run(["test", "-d", "/var/lib/web"], check=False).returncode == 0


def test_uninstall_leaves_nothing(world: World) -> None:
    for name in ("web", "plain"):
        out = world.sc("uninstall", name)
        assert f"uninstalled {name}" in out.stdout
    left = world.host.sh(
        "ls -A /etc/systemd/system /etc/tmpfiles.d /etc/web " + ROOT + "; "
        "ls /etc/systemd/system/multi-user.target.wants 2>/dev/null; true"
    ).stdout.split()
    assert not [n for n in left if n.startswith(("web", "plain", "hello"))], left
    assert world.sc("list", "--all", "--json").stdout.strip() == "[]"
    assert "web" not in world.runtime_ids("runc") and "plain" not in world.runtime_ids(CRUN)
    pins = world.host.run(["ls", "-A", "/var/lib/syscontainers/store/pins"]).stdout
    assert pins.strip() == ""
    assert world.active("web.service") in ("inactive", "unknown")
    assert list((world.host.test_dir / "persist" / "etc-web").iterdir()) == []
