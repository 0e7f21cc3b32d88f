#!/usr/bin/env python3
"""Peak memory and time of pull, images list/verify/prune and checkout on a layer of many entries.

Two inputs, each one gzipped layer in an OCI layout:
  many     1,000,000 empty files, 1,000 to a directory (a 9 MB blob; --files changes the count)
  minbase  the debian bookworm minbase tarball (8.7k ordinary files), for regressions

For each, prints our wall time and peak RSS (ru_maxrss of the child) for every step, next to
umoci unpack and skopeo copy (oci: to oci:) of the same layout, and the ratio to umoci's peak.
Needs umoci and skopeo; the inputs are cached in $BENCH_CACHE (see store_bench.py).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from oci_build import many_files_tar  # noqa: E402
from store_bench import (  # noqa: E402
    CACHE,
    REPO,
    SC,
    cached_layout,
    compile_package,
    fresh,
    minbase_tar,
    run,
)


def many_layout(files: int) -> Path:
    """The cached layout of FILES empty files."""
    tar = CACHE / f"many-{files}.tar"
    if not tar.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        print(f"building a tarball of {files} empty files (once)...", flush=True)
        many_files_tar(tar, files)
    return cached_layout(f"layout-many-{files}", tar)


def ours(layout: Path, work: Path, checkout: bool) -> Runs:
    """Seconds and peak RSS of each step, on a fresh store."""
    root = ["--root", str(fresh(work, "root")), "-q"]
    out = {"pull": run([*SC, *root, "pull", f"oci:{layout}:latest", "--name", "many:1"])}
    out["images list"] = run([*SC, *root, "images", "list"])
    out["images verify"] = run([*SC, *root, "images", "verify"])
    out["images prune"] = run([*SC, *root, "images", "prune"])
    if checkout:
        out["checkout"] = run([*SC, *root, "checkout", "many:1", str(fresh(work, "co"))])
    return out


def peers(layout: Path, work: Path) -> Runs:
    """Seconds and peak RSS of umoci unpack and skopeo copy of LAYOUT."""
    return {
        "umoci unpack": run(
            ["umoci", "unpack", "--image", f"{layout}:latest", str(fresh(work, "umoci"))]
        ),
        "skopeo copy": run(
            ["skopeo", "copy", "-q", f"oci:{layout}:latest", f"oci:{fresh(work, 'skopeo')}:x"]
        ),
    }


Runs = dict[str, tuple[float, int]]  # step -> (seconds, peak RSS bytes)


def report(name: str, mine: Runs, other: Runs) -> None:
    """Print one input's table."""
    umoci = other["umoci unpack"][1]
    print(f"\n{name}:")
    print(f"  {'step':<16} {'seconds':>8} {'peak RSS':>10} {'vs umoci':>9}")
    for step, (secs, rss) in [*mine.items(), *other.items()]:
        print(f"  {step:<16} {secs:8.2f} {rss / 1e6:7.0f} MB {rss / umoci:8.2f}x", flush=True)


def main() -> int:
    """Run both inputs and print the tables."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=1_000_000, help="empty files in the big layer")
    ap.add_argument("--dir", default="/var/tmp", help="where the work goes (default /var/tmp)")
    ap.add_argument("--no-checkout", action="store_true", help="skip the checkout step")
    ap.add_argument("--skip-minbase", action="store_true", help="only the many-files layer")
    args = ap.parse_args()
    compile_package()
    os.environ["PYTHONPATH"] = str(REPO)
    inputs = [(f"{args.files} empty files", many_layout(args.files))]
    if not args.skip_minbase:
        inputs.append(("debian minbase", cached_layout("layout-minbase", minbase_tar())))
    work = Path(tempfile.mkdtemp(prefix="sc-many-", dir=args.dir))
    try:
        for name, layout in inputs:
            report(name, ours(layout, work, not args.no_checkout), peers(layout, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
