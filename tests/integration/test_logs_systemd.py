"""``logs NAME`` and ``list -q`` on a real systemd booted in systemd-nspawn.

A busybox image whose service prints two lines and then a tick a second is installed with
``install --now`` from an OCI layout in the bound test directory (no registry needed); the CLI
inside then shows its unit's journal as journalctl does: all of it, the last N entries, those
since a time, following new ones, and refuses a container that is not installed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from tests.imagebuild import BUSYBOX, make_busybox_layout, requires
from tests.integration.nspawn import Completed, NspawnHost, booted_or_skip, persistent_binds

pytestmark = [pytest.mark.systemd, pytest.mark.slow, requires("runc", "umoci")]

CLI = "import sys; from syscontainers.cli import main; sys.exit(main(sys.argv[1:]))"
SCRIPT = (
    "echo chatty first; echo chatty second; i=0; trap 'exit 0' TERM; "
    "while :; do sleep 1 & wait; i=$((i+1)); echo chatty tick $i; done"
)


class World:
    """The booted host with the chatty container installed and running."""

    def __init__(self, host: NspawnHost) -> None:
        self.host = host

    def sc(self, *args: str, check: bool = True, timeout: float = 180) -> Completed:
        return self.host.run(["/usr/bin/python3", "-c", CLI, *args], check=check, timeout=timeout)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    if not BUSYBOX.exists():
        pytest.skip("busybox-static is not installed")
    test_dir = tmp_path_factory.mktemp("logs")
    layout = make_busybox_layout(test_dir / "layout", "chatty", cmd=("/bin/sh", "-c", SCRIPT))
    host = NspawnHost(test_dir, binds=persistent_binds(test_dir))
    with booted_or_skip(host):
        w = World(host)
        out = w.sc(
            "install",
            "--now",
            "--health-timeout",
            "2",
            "--name",
            "chatty",
            f"oci:{host.inside(layout)}:chatty",
        )
        assert "installed chatty" in out.stdout
        yield w


def entries(out: str) -> list[str]:
    """The lines the container itself printed."""
    return [
        line for line in out.splitlines() if re.search(r": chatty (first|second|tick \d+)$", line)
    ]


def test_logs_shows_the_units_journal(world: World) -> None:
    out = world.sc("logs", "chatty")
    lines = entries(out.stdout)
    assert lines[:2] and lines[0].endswith("chatty first") and lines[1].endswith("chatty second")
    assert any("chatty tick" in line for line in lines)
    # journalctl's own lines about the unit are there too
    assert "Started chatty.service" in out.stdout or "Starting chatty.service" in out.stdout


def test_logs_n_and_since(world: World) -> None:
    last = world.sc("logs", "chatty", "-n", "1").stdout.splitlines()
    assert len(last) == 1 and "chatty tick" in last[0], last
    since = world.host.run(["date", "+%Y-%m-%d %H:%M:%S"]).stdout.strip()
    time.sleep(2.5)
    recent = entries(world.sc("logs", "chatty", "--since", since).stdout)
    assert recent and all("chatty tick" in line for line in recent), recent


def test_logs_follow_prints_new_entries(world: World) -> None:
    done = world.host.run(
        ["timeout", "3.5", "/usr/bin/python3", "-c", CLI, "logs", "chatty", "-f", "-n", "0"],
        check=False,
    )
    assert done.returncode == 124  # still following when timeout stopped it
    ticks = [int(line.rsplit(" ", 1)[1]) for line in entries(done.stdout)]
    assert len(ticks) >= 2 and ticks == sorted(ticks), done.stdout


def test_logs_of_a_container_not_installed_is_refused(world: World) -> None:
    done = world.sc("logs", "ghost", check=False)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.splitlines() == [
        "error: no container named ghost is installed",
        "hint: see 'syscontainers list'",
    ]


def test_list_q_prints_the_names_only(world: World) -> None:
    assert world.sc("list", "-q").stdout == "chatty\n"
    assert world.sc("list").stdout.startswith("NAME ")
