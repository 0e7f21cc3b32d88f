#!/usr/bin/env python3
"""Benchmark the store against its peers on a debian minbase image, in one run.

Prints four ratios (targets from issue 2):
  1. pull from an OCI layout + checkout   vs  umoci unpack          (<= 0.5x)
  2. checkout of a stored image           vs  cp -al of the tree    (<= 1.5x)
  3. disk added by a rebuilt identical layer, relative to the image (< 1 %)
  4. peak RSS importing a 1 GB layer                                (< 150 MB)

The work happens under --dir (default /var/tmp), or with --fresh-ext4 SIZE on a new,
journaled ext4 filesystem on a loop device made for the run: a churned disk (many
recent deletes) slows file creation for every tool, and that noise can swamp the
ratios. Ours and the peer's runs alternate, so drift falls on both alike.

The minbase tarball is built once with mmdebstrap and cached in
$BENCH_CACHE (default /var/cache/syscontainers-bench). Needs root, umoci, cp.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
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
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(REPO / "syscontainers")], check=True
    )


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


def median_pair(
    ours: Callable[[], float], peer: Callable[[], float], repeat: int
) -> tuple[float, float]:
    """Median seconds of REPEAT runs of each, alternating, so that drift in the disk's
    speed during the run falls on both alike."""
    subprocess.run(["sync"], check=True)
    a: list[float] = []
    b: list[float] = []
    for _ in range(repeat):
        for fn, times in ((ours, a), (peer, b)):
            times.append(fn())
            subprocess.run(["sync"], check=True)  # each run starts with no dirty pages of another
    return statistics.median(a), statistics.median(b)


@contextlib.contextmanager
def fresh_ext4(size: str) -> Iterator[Path]:
    """A new ext4 filesystem (mkfs defaults, so journaled, as a Debian install makes it) on a
    loop device with direct I/O, mounted for the run and removed after."""
    img = Path(tempfile.mkdtemp(prefix="sc-bench-fs-", dir="/var/tmp"))
    image, mnt = img / "fs.img", img / "mnt"
    subprocess.run(["truncate", "-s", size, str(image)], check=True)
    dev = subprocess.run(
        ["losetup", "--find", "--show", "--direct-io=on", str(image)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    try:
        subprocess.run(["mkfs.ext4", "-q", dev], check=True)
        mnt.mkdir()
        subprocess.run(["mount", dev, str(mnt)], check=True)
        try:
            yield mnt
        finally:
            subprocess.run(["umount", str(mnt)], check=True)
    finally:
        subprocess.run(["losetup", "--detach", dev], check=True)
        shutil.rmtree(img)


def bench_pull_checkout(
    layout: Path, work: Path, repeat: int, pulls: list[float] | None = None
) -> tuple[float, float]:
    """(ours, umoci) seconds: cold pull + checkout, against umoci unpack; each run's pull
    alone is appended to PULLS when given."""

    def ours() -> float:
        root = fresh(work, "root-pull")
        t1, _ = run(
            [*SC, "--root", str(root), "-q", "pull", f"oci:{layout}:latest", "--name", "bench:1"]
        )
        if pulls is not None:
            pulls.append(t1)
        t2, _ = run(
            [*SC, "--root", str(root), "-q", "checkout", "bench:1", str(fresh(work, "co-pull"))]
        )
        return t1 + t2

    def umoci() -> float:
        return run(
            ["umoci", "unpack", "--image", f"{layout}:latest", str(fresh(work, "umoci-bundle"))]
        )[0]

    return median_pair(ours, umoci, repeat)


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

    return median_pair(ours, cp, repeat)


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
    ap.add_argument("--dir", default="/var/tmp", help="where the work goes (default /var/tmp)")
    ap.add_argument(
        "--fresh-ext4",
        metavar="SIZE",
        help="work on a new ext4 filesystem of SIZE (e.g. 8G) on a loop device instead",
    )
    args = ap.parse_args()
    compile_package()
    tar = minbase_tar()
    layout = cached_layout("layout-minbase", tar)
    os.environ["PYTHONPATH"] = str(REPO)
    if args.fresh_ext4:
        with fresh_ext4(args.fresh_ext4) as mnt:
            print(f"working on a fresh ext4 filesystem ({args.fresh_ext4}) at {mnt}", flush=True)
            run_all(args, tar, layout, mnt)
    else:
        base = Path(args.dir)
        print(f"working under {base}", flush=True)
        run_all(args, tar, layout, base)
    return 0


def run_all(args: argparse.Namespace, tar: Path, layout: Path, base: Path) -> None:
    """Run every benchmark with its work under BASE and print the ratios."""
    work = Path(tempfile.mkdtemp(prefix="sc-bench-", dir=base))
    try:
        ours, peer = bench_pull_checkout(layout, work, args.repeat)
        print(
            f"pull+checkout {ours:.2f}s vs umoci unpack {peer:.2f}s: "
            f"ratio {ours / peer:.2f}x (target <= 0.5x)",
            flush=True,
        )
        ours, peer = bench_checkout(layout, work, args.repeat)
        print(
            f"checkout {ours:.3f}s vs cp -al {peer:.3f}s: ratio {ours / peer:.2f}x "
            "(target <= 1.5x)",
            flush=True,
        )
        added, first = bench_dedup(layout, tar, work)
        print(
            f"rebuilt identical layer added {added / 1e6:.2f} MB to a {first / 1e6:.1f} MB "
            f"store: {100 * added / first:.2f} % (target < 1 %)",
            flush=True,
        )
        if not args.skip_rss:
            rss, umoci_rss, secs = bench_rss(work)
            print(
                f"1 GB layer import: peak RSS {rss / 1e6:.0f} MB in {secs:.1f}s "
                f"(umoci unpack {umoci_rss / 1e6:.0f} MB; target < 150 MB)",
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
