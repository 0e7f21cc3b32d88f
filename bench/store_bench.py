#!/usr/bin/env python3
"""Benchmark the store against its peers on a debian minbase image, in one run.

Prints four ratios (targets from issue 2):
  1. pull from an OCI layout + checkout   vs  umoci unpack          (<= 0.5x)
  2. checkout of a stored image           vs  cp -al of the tree    (<= 1.5x)
  3. disk added by a rebuilt identical layer, relative to the image (< 1 %)
  4. peak RSS importing a 1 GB layer                                (< 150 MB)

The minbase tarball is built once with mmdebstrap and cached in
$BENCH_CACHE (default /var/cache/syscontainers-bench). Needs root, umoci, cp.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from oci_build import big_tar, rebuild_tar, write_layout  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("BENCH_CACHE", "/var/cache/syscontainers-bench"))
SC = [sys.executable, "-m", "syscontainers"]


def run(argv: list[str], cwd: Path | None = None) -> tuple[float, int]:
    """Run ARGV; return (seconds, peak RSS in bytes of that process tree's largest member)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {err}")
    return elapsed, usage.ru_maxrss * 1024


def du(path: Path) -> int:
    """Bytes allocated under PATH, counting each inode once."""
    out = subprocess.run(["du", "-s", "-B1", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def compile_package() -> None:
    """Byte-compile the package once, as an installed package is: the timings are of our
    code, not of compiling it (PYTHONDONTWRITEBYTECODE would recompile it every run)."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "syscontainers")],
                   check=True)


def minbase_tar() -> Path:
    """The cached debian bookworm minbase tarball (built with mmdebstrap on first use)."""
    tar = CACHE / "minbase.tar"
    if not tar.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        print("building the debian minbase tarball with mmdebstrap (once)...", flush=True)
        tmp = CACHE / "minbase.tar.tmp"
        subprocess.run(
            ["mmdebstrap", "--variant=minbase", "--format=tar", "bookworm", str(tmp)], check=True
        )
        tmp.rename(tar)
    return tar


def cached_layout(name: str, tar: Path, compress: bool = True) -> Path:
    """An OCI layout of TAR, cached beside it."""
    layout = CACHE / name
    stamp = layout / ".complete"
    if not stamp.exists():
        write_layout(layout, tar, compress=compress)
        stamp.touch()
    return layout


_serial = iter(range(1_000_000))


def fresh(work: Path, name: str) -> Path:
    """A new, unused path under WORK.

    Nothing is deleted between runs: on this kind of disk (ext4 mounted with
    ``discard``) mass deletes slow down the file creation that follows them, which
    would penalise whichever tool runs next. Everything goes at the end.
    """
    return work / f"{name}-{next(_serial)}"


def median_time(fn: object, repeat: int) -> float:
    """The median of REPEAT timings of FN()."""
    subprocess.run(["sync"], check=True)
    times = []
    for _ in range(repeat):
        times.append(fn())  # type: ignore[operator]
        subprocess.run(["sync"], check=True)  # each run starts with no dirty pages of another
    return statistics.median(times)


def bench_pull_checkout(layout: Path, work: Path, repeat: int) -> tuple[float, float]:
    """(ours, umoci) seconds: cold pull + checkout, against umoci unpack."""

    def ours() -> float:
        root = fresh(work, "root-pull")
        t1, _ = run(
            [*SC, "--root", str(root), "-q", "pull", f"oci:{layout}:latest", "--name", "bench:1"]
        )
        t2, _ = run(
            [*SC, "--root", str(root), "-q", "checkout", "bench:1", str(fresh(work, "co-pull"))]
        )
        return t1 + t2

    def umoci() -> float:
        return run(
            ["umoci", "unpack", "--image", f"{layout}:latest", str(fresh(work, "umoci-bundle"))]
        )[0]

    return median_time(ours, repeat), median_time(umoci, repeat)


def bench_checkout(layout: Path, work: Path, repeat: int) -> tuple[float, float]:
    """(ours, cp -al) seconds for materialising a stored image."""
    root = fresh(work, "root-co")
    run([*SC, "--root", str(root), "-q", "pull", f"oci:{layout}:latest", "--name", "bench:1"])
    tree = fresh(work, "co-ref")
    run([*SC, "--root", str(root), "-q", "checkout", "bench:1", str(tree)])

    def ours() -> float:
        return run(
            [*SC, "--root", str(root), "-q", "checkout", "bench:1", str(fresh(work, "co-ours"))]
        )[0]

    def cp() -> float:
        return run(["cp", "-al", str(tree), str(fresh(work, "co-cp"))])[0]

    return median_time(ours, repeat), median_time(cp, repeat)


def bench_dedup(layout: Path, tar: Path, work: Path) -> tuple[int, int]:
    """(bytes added by the rebuilt image, bytes of the first image in the store)."""
    rebuilt_tar = CACHE / "minbase-rebuilt.tar"
    if not rebuilt_tar.exists():
        rebuild_tar(tar, rebuilt_tar)
    layout2 = cached_layout("layout-rebuilt", rebuilt_tar)
    root = fresh(work, "root-dedup")
    run([*SC, "--root", str(root), "-q", "pull", f"oci:{layout}:latest", "--name", "bench:1"])
    first = du(root)
    run([*SC, "--root", str(root), "-q", "pull", f"oci:{layout2}:latest", "--name", "bench:2"])
    return du(root) - first, first


def bench_rss(work: Path) -> tuple[int, int, float]:
    """(our peak RSS, umoci's peak RSS, our seconds) importing a 1 GB uncompressed layer."""
    big = CACHE / "big-1g.tar"
    if not big.exists():
        big_tar(big, 1 << 30)
    layout = cached_layout("layout-big", big, compress=False)
    root = fresh(work, "root-big")
    secs, ours = run(
        [*SC, "--root", str(root), "-q", "pull", f"oci:{layout}:latest", "--name", "big:1"]
    )
    _, umoci = run(
        ["umoci", "unpack", "--image", f"{layout}:latest", str(fresh(work, "umoci-big"))]
    )
    return ours, umoci, secs


def main() -> int:
    """Run every benchmark and print the ratios."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs per timing (median is used)")
    ap.add_argument("--skip-rss", action="store_true", help="skip the 1 GB layer")
    args = ap.parse_args()
    compile_package()
    tar = minbase_tar()
    layout = cached_layout("layout-minbase", tar)
    work = Path(tempfile.mkdtemp(prefix="sc-bench-", dir="/var/tmp"))
    os.environ["PYTHONPATH"] = str(REPO)
    try:
        ours, peer = bench_pull_checkout(layout, work, args.repeat)
        print(
            f"pull+checkout {ours:.2f}s vs umoci unpack {peer:.2f}s: "
            f"ratio {ours / peer:.2f}x (target <= 0.5x)"
        )
        ours, peer = bench_checkout(layout, work, args.repeat)
        print(
            f"checkout {ours:.3f}s vs cp -al {peer:.3f}s: ratio {ours / peer:.2f}x (target <= 1.5x)"
        )
        added, first = bench_dedup(layout, tar, work)
        print(
            f"rebuilt identical layer added {added / 1e6:.2f} MB to a {first / 1e6:.1f} MB "
            f"store: {100 * added / first:.2f} % (target < 1 %)"
        )
        if not args.skip_rss:
            rss, umoci_rss, secs = bench_rss(work)
            print(
                f"1 GB layer import: peak RSS {rss / 1e6:.0f} MB in {secs:.1f}s "
                f"(umoci unpack {umoci_rss / 1e6:.0f} MB; target < 150 MB)"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
