#!/usr/bin/env python3
"""Benchmark start-up: every verb against `python -c pass`, and a small image against its peers.

Prints (targets from issue 12):
  1. start-up of every verb: its --help (the parser alone) and, where one runs without
     systemd, a cheap real invocation (on an empty or a tiny store, or an offline root with
     --sysroot), as the best of --repeat runs, wall and CPU time, and the ratio to
     `python -c pass`                                                       (<= 30 ms)
  2. pull from an OCI layout + checkout of a small image (the python3.11 stdlib as one
     layer)                                      vs  umoci unpack           (<= 0.5x)
     (and the pull alone, median of the same runs)
  3. checkout of that image                      vs  cp -al of the tree     (<= 1.5x)
The minbase figures (pull+checkout, checkout) are store_bench.py's; this reuses its timing,
so both compare alike. The best run is used for start-up (the machine's noise only adds
time); the median for 2 and 3, as store_bench.py does. Needs root, umoci, cp.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from oci_build import write_layout  # noqa: E402
from store_bench import (  # noqa: E402
    CACHE,
    REPO,
    SC,
    bench_checkout,
    bench_pull_checkout,
    cached_layout,
    compile_package,
    fresh_ext4,
)

STDLIB = Path("/usr/lib/python3.11")
# The console script (what a user runs), beside the interpreter; else python -m.
SCRIPT = Path(sys.executable).with_name("syscontainers")
TARGET_MS = 30.0


def timed(argv: list[str], repeat: int) -> tuple[float, float, int]:
    """(best wall ms, best CPU ms of the child, exit code) of REPEAT runs of ARGV, where
    "{n}" in an argument becomes the run's number (a new destination each run)."""
    wall, cpu, code = float("inf"), float("inf"), 0
    for n in range(repeat):
        start = time.perf_counter()
        proc = subprocess.Popen(
            [a.replace("{n}", str(n)) for a in argv],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = min(wall, (time.perf_counter() - start) * 1e3)
        cpu = min(cpu, (usage.ru_utime + usage.ru_stime) * 1e3)
        code = os.waitstatus_to_exitcode(status)
    return wall, cpu, code


def stdlib_tar() -> Path:
    """The cached tarball of /usr/lib/python3.11 (made on first use)."""
    tar = CACHE / "python311-stdlib.tar"
    if not tar.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = tar.with_suffix(".tmp")
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as out:
            out.add(STDLIB, arcname="usr/lib/python3.11")
        tmp.rename(tar)
    return tar


def verb_cases(sc: list[str], work: Path, layout: Path) -> list[tuple[str, list[str]]]:
    """(label, argv) of the start-up cases, with the stores they need made under WORK."""
    empty, tiny, sysroot = work / "empty", work / "tiny", work / "sysroot"
    for d in (empty, sysroot, work / "co"):
        d.mkdir()
    subprocess.run(
        [*sc, "--root", str(tiny), "-q", "pull", f"oci:{layout}:latest", "--name", "t:1"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    manifest = work / "host.yaml"
    manifest.write_text("containers: {}\n")
    verbs = [
        "pull",
        "images",
        "checkout",
        "mount",
        "umount",
        "login",
        "logout",
        "inspect",
        "install",
        "uninstall",
        "list",
        "update",
        "rollback",
        "run",
        "auto-update",
        "logs",
        "hostfiles",
        "apply",
    ]
    e, t, s = ["--root", str(empty)], ["--root", str(tiny)], ["--sysroot", str(sysroot)]
    real = [
        ("--version", ["--version"]),
        (
            "pull (tiny image)",
            [
                "--root",
                str(work / "pulled-{n}"),
                "-q",
                "pull",
                f"oci:{layout}:latest",
                "--name",
                "t:1",
            ],
        ),
        ("images list (empty)", [*e, "images", "list"]),
        ("images list (tiny)", [*t, "images", "list"]),
        ("images inspect", [*t, "images", "inspect", "t:1"]),
        ("checkout (tiny image)", [*t, "-q", "checkout", "t:1", str(work / "co" / "{n}")]),
        ("umount (not mounted)", [*e, "umount", str(work / "nowhere")]),
        ("logout (none saved)", ["logout", "--authfile", str(work / "auth.json"), "127.0.0.1:1"]),
        ("list --sysroot (empty)", [*s, "list"]),
        ("uninstall --sysroot (none)", [*s, "uninstall", "nosuch"]),
        ("update --sysroot (none)", [*s, "update", "nosuch"]),
        ("rollback --sysroot (none)", [*s, "rollback", "nosuch"]),
        ("hostfiles list --sysroot", [*s, "hostfiles", "list"]),
        ("apply --dry-run --sysroot", [*s, "apply", "--dry-run", str(manifest)]),
    ]
    return [(f"{v} --help", [v, "--help"]) for v in verbs] + real


def bench_startup(work: Path, layout: Path, repeat: int) -> None:
    """Print the start-up table."""
    sc = [str(SCRIPT)] if SCRIPT.exists() else SC
    base_wall, base_cpu, _ = timed([sys.executable, "-c", "pass"], repeat)
    print(
        f"python -c pass: {base_wall:.1f} ms wall, {base_cpu:.1f} ms CPU; "
        "a real invocation's exit 1 is the error it is meant to meet "
        f"(running {' '.join(sc)})",
        flush=True,
    )
    # What a verb that talks to systemd adds: the D-Bus layer, and all of dbus_next it avoids.
    for module in ("syscontainers.systemd", "dbus_next"):
        _, cpu, _ = timed([sys.executable, "-c", f"import {module}"], repeat)
        print(f"  import {module:23} {cpu:6.1f} ms CPU (not a verb: what it costs)", flush=True)
    worst = 0.0
    for label, argv in verb_cases(sc, work, layout):
        wall, cpu, code = timed([*sc, *argv], repeat)
        worst = max(worst, wall)
        print(
            f"  {label:30} {wall:6.1f} ms wall ({wall / base_wall:4.1f}x)  "
            f"{cpu:6.1f} ms CPU  exit {code}",
            flush=True,
        )
    print(f"slowest start-up {worst:.1f} ms (target <= {TARGET_MS:.0f} ms)", flush=True)


def main() -> int:
    """Run the benchmarks and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=10, help="runs per start-up timing (best)")
    ap.add_argument("--image-repeat", type=int, default=5, help="runs per image timing (median)")
    ap.add_argument("--dir", default="/var/tmp", help="where the work goes (default /var/tmp)")
    ap.add_argument(
        "--fresh-ext4",
        metavar="SIZE",
        help="do 2 and 3 on a new ext4 filesystem of SIZE (e.g. 2G) on a loop device",
    )
    ap.add_argument("--startup-only", action="store_true", help="only the start-up table")
    args = ap.parse_args()
    compile_package()
    os.environ["PYTHONPATH"] = str(REPO)
    layout = cached_layout("layout-python311", stdlib_tar())
    work = Path(tempfile.mkdtemp(prefix="sc-startup-", dir=args.dir))
    try:
        tiny = work / "tiny-layout"
        tiny_tar = work / "tiny.tar"
        with tarfile.open(tiny_tar, "w") as out:
            info = tarfile.TarInfo("etc/hostname")
            info.size = 0
            out.addfile(info)
        write_layout(tiny, tiny_tar)
        bench_startup(work, tiny, args.repeat)
        if args.startup_only:
            return 0
        if args.fresh_ext4:
            with fresh_ext4(args.fresh_ext4) as mnt:
                print(f"image figures on a fresh ext4 filesystem ({args.fresh_ext4})", flush=True)
                image_figures(layout, Path(tempfile.mkdtemp(dir=mnt)), args.image_repeat)
        else:
            image_figures(layout, work, args.image_repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def image_figures(layout: Path, work: Path, repeat: int) -> None:
    """Print pull+checkout vs umoci unpack and checkout vs cp -al for the stdlib image."""
    files = sum(1 for _ in STDLIB.rglob("*"))
    pulls: list[float] = []
    ours, peer = bench_pull_checkout(layout, work, repeat, pulls)
    print(
        f"python3.11 stdlib ({files} files) pull+checkout {ours:.3f}s vs umoci unpack "
        f"{peer:.3f}s: ratio {ours / peer:.2f}x (target <= 0.5x); "
        f"the pull alone {statistics.median(pulls):.3f}s",
        flush=True,
    )
    ours, peer = bench_checkout(layout, work, repeat)
    print(
        f"python3.11 stdlib checkout {ours:.3f}s vs cp -al {peer:.3f}s: ratio "
        f"{ours / peer:.2f}x (target <= 1.5x)",
        flush=True,
    )
    print("(debian minbase: bench/store_bench.py --skip-rss)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
