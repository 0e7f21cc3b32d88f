#!/usr/bin/env python3
"""Benchmark ``apply`` of a 20-container manifest against 20 ``install`` commands, in one run.

Prints:
  1. ``apply`` of a manifest of --count containers (enabled, not started) whose image is
     already in the store, against the same done by --count ``install`` commands (no
     --now), each a CLI process as an administrator or a provisioning script would run
     them; the ratio (target: apply no slower, ratio <= 1).
  2. a second ``apply`` of the same manifest, which changes nothing (target: under 1 s).

By default on a real systemd booted in systemd-nspawn (the host's own / on a tmpfs, as
the lifecycle benchmark does), timed inside with ``date +%s%N``; with --sysroot on an
offline root on this machine instead (no systemd: links only). Between runs, the
containers are removed (not timed). Medians of --repeat runs. Needs root, umoci and, for
the booted mode, systemd-nspawn and runc.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from tests.imagebuild import make_busybox_layout  # noqa: E402
from tests.integration.nspawn import (  # noqa: E402
    REPO_MOUNT,
    TEST_MOUNT,
    BootError,
    NspawnHost,
    persistent_binds,
    probe,
)

IMAGE = "bench/app:1"
NOOP_TARGET = 1.0
STAYS_UP = ("/bin/sh", "-c", "trap 'exit 143' TERM; sleep infinity & wait")


def manifest(count: int, prefix: str = "a") -> str:
    """COUNT containers of IMAGE, enabled and not started."""
    lines = ["containers:"]
    for i in range(count):
        lines += [f"  {prefix}{i:02d}:", f"    image: {IMAGE}", "    started: false"]
    return "\n".join(lines) + "\n"


class Booted:
    """Runs the CLI inside a booted systemd; times shell scripts there."""

    def __init__(self, host: NspawnHost, work: Path) -> None:
        self.host, self.work = host, work
        self.cli = (
            f"env -u PYTHONDONTWRITEBYTECODE PYTHONPYCACHEPREFIX={TEST_MOUNT}/pycache "
            "/usr/bin/python3 -m syscontainers"
        )

    def path(self, local: Path) -> str:
        """LOCAL (under the work directory or the repository) as the CLI sees it."""
        if local.is_relative_to(REPO):
            return f"{REPO_MOUNT}/{local.relative_to(REPO)}"
        return self.host.inside(local)

    def timed(self, script: str) -> float:
        """Seconds SCRIPT takes, measured inside."""
        done = self.host.sh(
            f"set -e; t0=$(date +%s%N); {script}\nt1=$(date +%s%N); echo $((t1 - t0))", timeout=900
        )
        return int(done.stdout.split()[-1]) / 1e9

    def sc_line(self, *args: str) -> str:
        """The shell line running the CLI with ARGS."""
        return f"{self.cli} {shlex.join(args)}"


class Offline:
    """Runs the CLI on this machine with --sysroot ROOT; times shell scripts here."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.root = work / "sysroot"
        (self.root / "usr/sbin").mkdir(parents=True)
        shutil.copy2(shutil.which("runc") or "/usr/sbin/runc", self.root / "usr/sbin/runc")
        self.cli = f"{shlex.quote(sys.executable)} -m syscontainers --sysroot {self.root}"

    def path(self, local: Path) -> str:
        """LOCAL as the CLI sees it."""
        return str(local)

    def timed(self, script: str) -> float:
        """Seconds SCRIPT takes here."""
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "DBUS_SYSTEM_BUS_ADDRESS": "unix:path=/nonexistent/bus",
        }
        started = time.perf_counter()
        subprocess.run(
            ["sh", "-ec", script], check=True, env=env, stdout=subprocess.DEVNULL, timeout=900
        )
        return time.perf_counter() - started

    def sc_line(self, *args: str) -> str:
        """The shell line running the CLI with ARGS."""
        return f"{self.cli} {shlex.join(args)}"


Runner = Booted | Offline


def one_round(run: Runner, count: int, policy: str) -> tuple[float, float, float]:
    """Seconds of COUNT installs, of apply of the same, and of a no-op apply."""
    full = run.work / "full.yaml"
    full.write_text(manifest(count))
    empty = run.work / "empty.yaml"
    empty.write_text("containers: {}\n")
    installs = run.timed(
        "\n".join(run.sc_line("-q", "install", "--name", f"i{i:02d}", IMAGE) for i in range(count))
    )
    run.timed("\n".join(run.sc_line("-q", "uninstall", f"i{i:02d}") for i in range(count)))
    applied = run.timed(run.sc_line("-q", "apply", "--policy", policy, run.path(full)))
    noop = run.timed(run.sc_line("-q", "apply", "--policy", policy, run.path(full)))
    run.timed(run.sc_line("-q", "apply", "--prune", run.path(empty)))
    return installs, applied, noop


def bench(run: Runner, layout: Path, args: argparse.Namespace, say: Callable[[str], None]) -> None:
    """Pull the image, warm up, then --repeat rounds; print the medians and ratios."""
    policy = run.path(REPO / "tests/data/accept-anything-policy.json")
    run.timed(
        run.sc_line(
            "-q", "pull", "--policy", policy, "--name", IMAGE, f"oci:{run.path(layout)}:latest"
        )
    )
    run.timed(run.sc_line("--version"))  # compile the bytecode, as a package has it
    rounds = [one_round(run, args.count, policy) for _ in range(args.repeat)]
    installs, applied, noop = (statistics.median(r[i] for r in rounds) for i in range(3))
    verdict = "ok" if applied <= installs else "SLOWER"
    say(
        f"apply of {args.count} containers {applied:.2f}s vs {args.count} install commands "
        f"{installs:.2f}s: ratio {applied / installs:.2f}x ({verdict}, target <= 1)"
    )
    verdict = "ok" if noop < NOOP_TARGET else "TOO SLOW"
    say(
        f"no-op apply of {args.count} containers {noop:.2f}s (target < {NOOP_TARGET:g}s): "
        f"{verdict}; min {min(r[2] for r in rounds):.2f}s of {len(rounds)}"
    )


def main(argv: list[str] | None = None) -> int:
    """Parse options, set up (boot), run, and always clean up."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--count", type=int, default=20, help="containers in the manifest")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds (median)")
    parser.add_argument(
        "--sysroot", action="store_true", help="on an offline root here instead of a booted systemd"
    )
    parser.add_argument("--workdir", type=Path, help="where to make the work directory")
    args = parser.parse_args(argv)
    reason = None if args.sysroot else probe()
    reason = reason or (None if shutil.which("umoci") else "umoci is not installed")
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="sc-apply-bench-", dir=args.workdir))
    host = None if args.sysroot else NspawnHost(work, binds=persistent_binds(work))
    try:
        layout = make_busybox_layout(work / "layout", "latest", {}, cmd=STAYS_UP)
        if host is None:
            print("offline root (--sysroot), no systemd", flush=True)
            bench(Offline(work), layout, args, lambda line: print(line, flush=True))
        else:
            print(f"booted systemd in nspawn: {host.boot():.1f}s", flush=True)
            bench(Booted(host, work), layout, args, lambda line: print(line, flush=True))
    except BootError as e:
        print(f"cannot boot systemd in systemd-nspawn here: {e}", file=sys.stderr)
        return 1
    finally:
        if host is not None:
            host.shutdown(hard=False)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
