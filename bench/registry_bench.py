#!/usr/bin/env python3
"""Benchmark a cold pull from a local registry against skopeo+umoci and podman, in one run.

Pushes the debian minbase image (see store_bench.py) to a docker-registry on
127.0.0.1, then prints (targets from issue 3):
  1. our cold pull               vs  skopeo copy docker:// oci: + umoci unpack   (<= 0.5x)
  2. our cold pull               vs  podman pull                                 (< 1x)
  3. our peak RSS during the pull
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from store_bench import (  # noqa: E402
    REPO,
    SC,
    cached_layout,
    compile_package,
    fresh,
    median_pair,
    minbase_tar,
    run,
)


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_registry(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A docker-registry on 127.0.0.1 storing under WORK; returns (process, host:port)."""
    port = free_port()
    config = work / "registry.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {work / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    proc = subprocess.Popen(
        ["docker-registry", "serve", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("docker-registry did not start")


def podman_argv(work: Path) -> list[str]:
    """podman with a new, empty private store under WORK (every pull is cold)."""
    return [
        "podman",
        "--root",
        str(fresh(work, "podman-root")),
        "--runroot",
        str(fresh(work, "podman-run")),
        "--storage-driver",
        "overlay",
    ]


def main() -> int:
    """Run the comparisons and print the ratios."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs per timing (median is used)")
    args = ap.parse_args()
    compile_package()
    layout = cached_layout("layout-minbase", minbase_tar())
    work = Path(tempfile.mkdtemp(prefix="sc-regbench-", dir="/var/tmp"))
    os.environ["PYTHONPATH"] = str(REPO)
    registry, host = start_registry(work)
    image = f"{host}/bench/minbase:1"
    rss: list[int] = []
    try:
        run(
            [
                "skopeo",
                "--insecure-policy",
                "copy",
                "--quiet",
                "--dest-tls-verify=false",
                f"oci:{layout}:latest",
                f"docker://{image}",
            ]
        )

        def ours() -> float:
            secs, peak = run(
                [
                    *SC,
                    "--root",
                    str(fresh(work, "root")),
                    "-q",
                    "pull",
                    f"docker://{image}",
                    "--tls-verify=false",
                ]
            )
            rss.append(peak)
            return secs

        def skopeo_umoci() -> float:
            oci = fresh(work, "oci")
            t1, _ = run(
                [
                    "skopeo",
                    "--insecure-policy",
                    "copy",
                    "--quiet",
                    "--src-tls-verify=false",
                    f"docker://{image}",
                    f"oci:{oci}:1",
                ]
            )
            t2, _ = run(["umoci", "unpack", "--image", f"{oci}:1", str(fresh(work, "bundle"))])
            return t1 + t2

        t_ours, t_peer = median_pair(ours, skopeo_umoci, args.repeat)
        print(
            f"cold pull {t_ours:.2f}s vs skopeo copy + umoci unpack {t_peer:.2f}s: "
            f"ratio {t_ours / t_peer:.2f}x (target <= 0.5x)"
        )
        if shutil.which("podman") is None:
            print("podman is not installed: podman comparison skipped")
        else:

            def podman_pull() -> float:
                return run([*podman_argv(work), "pull", "-q", "--tls-verify=false", image])[0]

            t_ours2, t_podman = median_pair(ours, podman_pull, args.repeat)
            print(
                f"cold pull {t_ours2:.2f}s vs podman pull {t_podman:.2f}s: "
                f"ratio {t_ours2 / t_podman:.2f}x (target < 1x)"
            )
        print(f"our peak RSS during the pull: {max(rss) / 1e6:.0f} MB")
    finally:
        registry.kill()
        registry.wait()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
