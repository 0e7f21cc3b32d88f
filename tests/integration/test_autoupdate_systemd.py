"""auto-update through its real units on a systemd booted in systemd-nspawn, with a registry.

Four containers of examples/build-example-image are installed from a registry
that runs inside the booted host (with its access log in the journal):
``good`` and ``bad`` opted in with ``install --auto-update registry``, ``same``
through the image label ``io.containers.autoupdate=registry``, ``optout`` not at
all. Then a new image is pushed under good's tag, a broken one (its process
exits 3) under bad's, another under optout's, and nothing under same's.
units/syscontainers-auto-update.service and .timer are installed as the packages
install them, with a drop-in that runs the repository's code (the CLI under
test) instead of /usr/bin/syscontainers, and the service is started with
systemctl:

- good is updated: a new image id in a new slot, active, serving the new page;
- bad is updated, fails its health check and is rolled back: the old slot,
  active, serving the old page; the service fails (exit 1) and its journal says so;
- same is not touched: the registry served its manifest but no blob, its
  deployment, unit file (mtime, inode) and main PID are as they were;
- optout is not even checked: no request for its repository at all;
- a second run reports bad's broken image as failed without trying it again (no
  blob fetched, no restart); once bad's tag names its old image, a run pulls
  nothing and exits 0.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from syscontainers import process
from tests.imagebuild import BUSYBOX, add_layer, layer_tar, requires, skopeo_copy
from tests.integration.booted_world import (
    REGISTRY,
    REGISTRY_UNIT,
    ROOT,
    World,
    example_config,
)
from tests.integration.nspawn import REPO, NspawnHost, booted_or_skip

pytestmark = [
    pytest.mark.systemd,
    pytest.mark.slow,
    pytest.mark.registry,
    requires("runc", "umoci", "skopeo", "docker-registry", "systemd-analyze"),
]

SERVICE = "syscontainers-auto-update.service"
TIMER = "syscontainers-auto-update.timer"
UNIT_DIR = "/etc/systemd/system"
DROP_IN = """\
[Service]
Environment=PYTHONPATH=/srv/repo PYTHONDONTWRITEBYTECODE=1 SYSCONTAINERS_TLS_VERIFY=false
Environment=SYSCONTAINERS_POLICY=/srv/repo/tests/data/accept-anything-policy.json
ExecStart=
ExecStart=/usr/bin/python3 -m syscontainers auto-update --health-timeout 3
"""
OLD_PAGE = "hello from a syscontainers system container\n"
NEW_PAGE = "version 2\n"
PORTS = {"good": 8081, "bad": 8082, "same": 8083, "optout": 8084}
STAT = (
    "import os, sys, json; print(json.dumps({p: [os.lstat(p).st_ino, os.lstat(p).st_mtime_ns]"
    " for p in sys.argv[1:]}))"
)


def build_images(work: Path) -> Path:
    """v1 (the example), v2 (a new page), broken (exits 3), labelled (v1 with the label)."""
    process.run([str(REPO / "examples/build-example-image"), str(work)], timeout=120)
    layout = work / "layout"
    for tag in ("v1", "v2", "broken", "labelled"):
        skopeo_copy(f"oci:{layout}:latest", f"oci:{layout}:{tag}")
    add_layer(layout, "v2", layer_tar({"var/www/index.html": NEW_PAGE.encode()}))
    add_layer(
        layout,
        "broken",
        layer_tar(
            {
                "exports/config.json.template": example_config(["/bin/sh", "-c", "exit 3"]),
            }
        ),
    )
    process.run(
        [
            "umoci",
            "config",
            "--image",
            f"{layout}:labelled",
            "--config.label",
            "io.containers.autoupdate=registry",
        ]
    )
    return layout


class AutoUpdateWorld(World):
    """World, and what this module looks at: the registry's log, stats, the units."""

    def requests(self, repository: str) -> list[str]:
        """The registry's access-log lines for REPOSITORY so far."""
        log = self.host.run(["journalctl", "-q", "-o", "cat", "-u", REGISTRY_UNIT]).stdout
        return [line for line in log.splitlines() if f" /v2/{repository}/" in line]

    def stat(self, *paths: str) -> dict[str, list[int]]:
        """The inode and mtime of each of PATHS."""
        return dict(json.loads(self.host.python(STAT, *paths).stdout))

    def main_pid(self, unit: str) -> str:
        return self.host.run(["systemctl", "show", "-P", "MainPID", unit]).stdout.strip()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AutoUpdateWorld]:
    """Booted, the registry inside, the four containers installed and the units in place."""
    if not BUSYBOX.exists():
        pytest.skip("busybox-static is not installed")
    test_dir = tmp_path_factory.mktemp("autoupdate")
    layout = build_images(test_dir / "images")
    host = NspawnHost(test_dir)
    with booted_or_skip(host):
        w = AutoUpdateWorld(host, host.inside(layout))
        w.start_registry(test_dir / "registry", access_log=True)
        for name, tag in (("good", "v1"), ("bad", "v1"), ("same", "labelled"), ("optout", "v1")):
            w.push(tag, f"{name}:1")
        for name, port in PORTS.items():
            policy = ["--auto-update", "registry"] if name in ("good", "bad") else []
            w.sc(
                "install",
                "--now",
                "--health-timeout",
                "2",
                "--name",
                name,
                "--set",
                f"PORT={port}",
                *policy,
                f"docker://{REGISTRY}/{name}:1",
            )
        for unit in (SERVICE, TIMER):
            host.run(["cp", f"/srv/repo/units/{unit}", f"{UNIT_DIR}/{unit}"])
        host.run(["mkdir", "-p", f"{UNIT_DIR}/{SERVICE}.d"])
        host.run(["sh", "-c", f"cat > {UNIT_DIR}/{SERVICE}.d/repo.conf"], input_text=DROP_IN)
        host.run(["systemctl", "daemon-reload"])
        yield w


def test_the_units_verify_and_the_timer_is_scheduled(world: AutoUpdateWorld) -> None:
    verified = world.host.run(
        ["systemd-analyze", "verify", "--man=no", f"{UNIT_DIR}/{SERVICE}", f"{UNIT_DIR}/{TIMER}"],
        check=False,
    )
    assert verified.returncode == 0 and not verified.stderr.strip(), verified
    world.host.run(["systemctl", "enable", "--now", TIMER])
    assert world.active(TIMER) == "active"
    shown = world.host.run(["systemctl", "show", "-P", "NextElapseUSecRealtime", TIMER])
    assert shown.stdout.strip() not in ("", "0", "n/a")
    world.host.run(["systemctl", "stop", TIMER])  # the tests below start the service
    ran = world.host.run(["systemctl", "show", "-P", "ExecMainStartTimestampMonotonic", SERVICE])
    assert ran.stdout.strip() == "0"  # the timer waits for its time: no run at enable


def test_all_four_serve_their_first_image(world: AutoUpdateWorld) -> None:
    for name, port in PORTS.items():
        assert world.active(f"{name}.service") == "active", name
        assert world.get(port) == OLD_PAGE, name


def test_dry_run_shows_pending_and_changes_nothing(world: AutoUpdateWorld) -> None:
    world.push("v2", "good:1")
    world.push("broken", "bad:1")
    world.push("v2", "optout:1")
    out = world.sc("auto-update", "--dry-run", "--json")
    (result,) = [
        json.loads(x) for x in out.stdout.splitlines() if json.loads(x)["event"] == "result"
    ]
    updated = {c["container"]: (c["policy"], c["updated"]) for c in result["containers"]}
    assert updated == {
        "good": ("registry", "pending"),
        "bad": ("registry", "pending"),
        "same": ("registry", "false"),
    }
    assert [world.link(n) for n in PORTS] == [f"{n}.0" for n in PORTS]


def test_the_service_updates_good_rolls_back_bad_and_leaves_same(world: AutoUpdateWorld) -> None:
    same_files = (
        f"{UNIT_DIR}/same.service",
        f"{ROOT}/same.0/info.json",
        f"{ROOT}/same.0/config.json",
        f"{ROOT}/same",
    )
    before = world.stat(*same_files)
    same_pid, same_requests = world.main_pid("same.service"), len(world.requests("same"))
    optout_requests = len(world.requests("optout"))
    good_before = world.info("good")["image_id"]
    started = time.monotonic()
    run = world.host.run(["systemctl", "start", SERVICE], check=False, timeout=300)
    print(f"\nauto-update through systemctl start: {time.monotonic() - started:.1f} s")
    assert run.returncode != 0  # bad was rolled back: the oneshot fails
    shown = world.host.run(
        ["systemctl", "show", "-p", "Result", "-p", "ExecMainStatus", SERVICE]
    ).stdout.split()
    assert shown == ["Result=exit-code", "ExecMainStatus=1"]
    journal = world.host.run(["journalctl", "-q", "-o", "cat", "-u", SERVICE]).stdout
    assert "bad: the update to image" in journal and "rolled back" in journal, journal
    rows = {
        line.split()[1]: line.split()[3:]
        for line in journal.splitlines()
        if line.endswith((" true", " false", " rolled-back"))
    }
    assert rows == {
        "good": ["registry", "true"],
        "bad": ["registry", "rolled-back"],
        "same": ["registry", "false"],
    }, journal

    assert world.link("good") == "good.1"
    assert world.info("good")["image_id"] != good_before
    assert world.info("good")["auto_update"] == "registry"
    assert world.wait_active("good.service") == "active"
    assert world.get(PORTS["good"]) == NEW_PAGE

    assert world.link("bad") == "bad.0"
    assert world.wait_active("bad.service") == "active"
    assert world.get(PORTS["bad"]) == OLD_PAGE

    assert world.link("same") == "same.0"
    assert world.stat(*same_files) == before
    assert world.main_pid("same.service") == same_pid
    same_now = world.requests("same")[same_requests:]
    assert same_now and all("/manifests/" in line for line in same_now), same_now
    assert world.host.run(["test", "-e", f"{ROOT}/same.1"], check=False).returncode != 0

    assert len(world.requests("optout")) == optout_requests
    assert world.link("optout") == "optout.0" and world.get(PORTS["optout"]) == OLD_PAGE


def blob_requests(world: AutoUpdateWorld) -> dict[str, int]:
    return {n: len([x for x in world.requests(n) if "/blobs/" in x]) for n in PORTS}


def test_the_rolled_back_image_is_not_tried_again(world: AutoUpdateWorld) -> None:
    blobs, bad_pid = blob_requests(world), world.main_pid("bad.service")
    out = world.sc("auto-update", check=False)
    assert out.returncode == 1, out
    assert "bad: the image" in out.stderr and "not tried again" in out.stderr, out.stderr
    table = {
        line.split()[1]: line.split()[-1]
        for line in out.stdout.splitlines()[1:]
        if line.endswith((" true", " false", " failed"))
    }
    assert table == {"good": "false", "bad": "failed", "same": "false"}, out.stdout
    assert blob_requests(world) == blobs
    assert world.main_pid("bad.service") == bad_pid and world.link("bad") == "bad.0"


def test_a_second_run_pulls_nothing_once_the_tag_is_fixed(world: AutoUpdateWorld) -> None:
    world.push("v1", "bad:1")  # bad's tag serves its installed image again
    blobs = blob_requests(world)
    out = world.sc("auto-update", check=False)
    assert out.returncode == 0, out
    table = {
        line.split()[1]: line.split()[-1]
        for line in out.stdout.splitlines()[1:]
        if line.endswith((" true", " false", " rolled-back"))
    }
    assert table == {"good": "false", "bad": "false", "same": "false"}, out.stdout
    assert blob_requests(world) == blobs
    assert world.link("good") == "good.1" and world.link("bad") == "bad.0"
    assert world.get(PORTS["good"]) == NEW_PAGE and world.get(PORTS["bad"]) == OLD_PAGE


def test_the_store_is_consistent_afterwards(world: AutoUpdateWorld) -> None:
    done = world.sc("images", "verify", check=False)
    assert done.returncode == 0, done
