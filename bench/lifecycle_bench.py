#!/usr/bin/env python3
"""Benchmark the container lifecycle on a real systemd booted in systemd-nspawn, in one run.

Prints (issue 4):
  1. ``install --now`` of an image already in the store, until the service is active,
     against the floor: ``cp -al`` of the same rootfs (a checkout) + a hand-written
     config.json and unit (``runc run`` of that bundle) + ``systemctl daemon-reload`` +
     ``systemctl start``, until active. Median of --repeat runs, uninstalling between
     runs. Done for the example image (examples/build-example-image) and, if it is
     cached, the debian minbase layout (given a Cmd that stays up).
  2. ``list`` and ``list --json`` with --count installed containers, end to end
     (process start to exit), against the target of 0.5 s, and the D-Bus method calls
     that ``list`` makes to systemd (seen with dbus-monitor; it must be one
     ListUnitsByNames).

Everything is timed inside the booted host (``date +%s%N`` around the commands), so
nsenter is not counted. Python inside is /usr/bin/python3 with the repository on
PYTHONPATH; its bytecode is cached under the work directory and warmed before timing,
as an installed package's would be. The booted host is shut down and the work
directory removed at the end, also on failure. Needs root, systemd-nspawn, runc, umoci.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from tests.imagebuild import add_layer, layer_tar  # noqa: E402
from tests.integration.nspawn import (  # noqa: E402
    TEST_MOUNT,
    BootError,
    NspawnHost,
    persistent_binds,
    probe,
)

CACHE = Path(os.environ.get("BENCH_CACHE", "/var/cache/syscontainers-bench"))
MINBASE = CACHE / "layout-minbase"
ROOT = "/var/lib/syscontainers"
DEPLOYMENTS = f"{ROOT}/containers"
PEERS = f"{ROOT}/bench-peers"  # on the same file system as the store, for cp -al
UNIT_DIR = "/etc/systemd/system"
RUNC = "/usr/sbin/runc"
# An installed package has its bytecode compiled; the repository inside is read-only.
SC = (
    f"env -u PYTHONDONTWRITEBYTECODE PYTHONPYCACHEPREFIX={TEST_MOUNT}/pycache "
    "/usr/bin/python3 -m syscontainers"
)
TRAPPED_HTTPD = "trap 'exit 143' TERM; httpd -f -p $PORT -h /var/www & wait"
STAYS_UP = ["/bin/sh", "-c", "trap 'exit 143' TERM; sleep infinity & wait"]
LIST_TARGET = 0.5
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"


@dataclass(frozen=True)
class Image:
    """An image pulled into the store inside the booted host."""

    label: str  # for the report
    name: str  # its name in the store
    layout: Path  # the OCI layout it came from, on this machine


# --- images, on this machine ---------------------------------------------------------------------


def example_image(work: Path) -> Image:
    """examples/build-example-image, its httpd under a shell that exits on SIGTERM.

    busybox httpd as PID 1 has no SIGTERM handler, so every stop would wait out
    TimeoutStopSec; the one more layer (as in test_lifecycle_systemd) avoids that.
    """
    subprocess.run(
        [str(REPO / "examples/build-example-image"), str(work / "hello")],
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=300,
    )
    template = REPO / "examples/hello-httpd/exports/config.json.template"
    config = json.loads(template.read_text())
    config["process"]["args"] = ["/bin/sh", "-c", TRAPPED_HTTPD]
    layout = work / "hello" / "layout"
    add_layer(
        layout, "latest", layer_tar({"exports/config.json.template": json.dumps(config).encode()})
    )
    return Image("example (busybox httpd)", "bench/hello:latest", layout)


def _blob(layout: Path, data: bytes) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def minbase_image(work: Path) -> Image | None:
    """The cached debian minbase layout with a Cmd that stays up (None if it is not cached)."""
    if not (MINBASE / "index.json").exists():
        return None
    src_blobs = MINBASE / "blobs" / "sha256"
    index = json.loads((MINBASE / "index.json").read_text())
    manifest = json.loads((src_blobs / index["manifests"][0]["digest"][7:]).read_bytes())
    config = json.loads((src_blobs / manifest["config"]["digest"][7:]).read_bytes())
    config.setdefault("config", {})["Cmd"] = STAYS_UP
    layout = work / "minbase"
    (layout / "blobs" / "sha256").mkdir(parents=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    for layer in manifest["layers"]:
        blob = layer["digest"][7:]
        _link_or_copy(src_blobs / blob, layout / "blobs" / "sha256" / blob)
    manifest["config"] = {"mediaType": MT_CONFIG, **_blob(layout, json.dumps(config).encode())}
    desc = {
        "mediaType": MT_MANIFEST,
        **_blob(layout, json.dumps(manifest).encode()),
        "annotations": {"org.opencontainers.image.ref.name": "latest"},
    }
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [desc]}))
    return Image("debian minbase (8.7k files)", "bench/minbase:latest", layout)


# --- inside the booted host ----------------------------------------------------------------------


def _wait_active(unit: str) -> str:
    return (
        f"n=0; until systemctl is-active -q {unit}; do n=$((n+1)); "
        f"[ $n -lt 3000 ] || {{ echo '{unit} never became active' >&2; exit 9; }}; "
        "sleep 0.01; done"
    )


def timed(
    host: NspawnHost, script: str, until_active: str | None = None, timeout: float = 300
) -> float:
    """Seconds SCRIPT takes inside (and then UNTIL_ACTIVE to become active)."""
    wait = _wait_active(until_active) if until_active else "true"
    done = host.sh(
        f"set -e; t0=$(date +%s%N); {script}\n{wait}; t1=$(date +%s%N); echo $((t1 - t0))",
        timeout=timeout,
    )
    return int(done.stdout.split()[-1]) / 1e9


def sc(host: NspawnHost, *args: str, timeout: float = 300) -> str:
    """Run the syscontainers CLI inside; return its output."""
    return host.sh(f"{SC} {shlex.join(args)}", timeout=timeout).stdout


def median(samples: list[float]) -> float:
    """The median of SAMPLES."""
    return statistics.median(samples)


def peer_unit(name: str, bundle: str) -> str:
    """The hand-written unit: runc runs the bundle in the foreground."""
    return (
        f"[Unit]\nDescription=cp -al peer {name}\n\n[Service]\n"
        f"ExecStart={RUNC} run --bundle {bundle} {name}\nKillMode=mixed\n"
        "SuccessExitStatus=143 SIGTERM\nTimeoutStopSec=10\n"
    )


def peer_script(source: str, name: str, config: str) -> str:
    """cp -al the checkout, write config.json and the unit, daemon-reload, start."""
    bundle = f"{PEERS}/{name}"
    return "\n".join(
        [
            f"mkdir -p {bundle}",
            f"cp -al {source}/rootfs {bundle}/rootfs",
            f"cat > {bundle}/config.json <<'EOF'\n{config}\nEOF",
            f"cat > {UNIT_DIR}/{name}.service <<'EOF'\n{peer_unit(name, bundle)}EOF",
            "systemctl daemon-reload",
            f"systemctl start {name}.service",
        ]
    )


def peer_cleanup(host: NspawnHost, name: str) -> None:
    """Stop the peer unit and remove its bundle and unit.

    KILL first: a SIGTERM that comes before the container's shell has set its trap
    is ignored (it is PID 1), and the stop would wait out TimeoutStopSec.
    """
    host.sh(
        f"{RUNC} kill {name} KILL 2>/dev/null || true; systemctl stop {name}.service; "
        f"rm -f {UNIT_DIR}/{name}.service; "
        f"systemctl daemon-reload; {RUNC} delete --force {name} 2>/dev/null || true; "
        f"rm -rf {PEERS}/{name}"
    )


def peer_config(host: NspawnHost, ref: str) -> str:
    """The reference deployment's config.json with its rootfs relative to the bundle."""
    config = json.loads(host.run(["cat", f"{DEPLOYMENTS}/{ref}/config.json"]).stdout)
    config["root"]["path"] = "rootfs"
    return json.dumps(config, indent=2)


# --- 1. install --now against cp -al + a unit ----------------------------------------------------


def bench_install(host: NspawnHost, image: Image, key: str, repeat: int) -> tuple[float, float]:
    """Median seconds of install --now and of the cp -al peer, each until active."""
    ref, name, peer = f"ref{key}", f"bench{key}", f"peer{key}"
    sc(host, "-q", "install", "--name", ref, image.name)  # the checkout cp -al copies
    config = peer_config(host, ref)
    install_s: list[float] = []
    peer_s: list[float] = []
    for i in range(repeat + 1):  # the first round warms caches and is not counted
        # --health-timeout 0: stop at active, as the peer does (no health window to wait out)
        t = timed(
            host,
            f"{SC} -q install --now --health-timeout 0 --name {name} {image.name} >/dev/null",
            f"{name}.service",
        )
        time.sleep(0.5)  # the container's shell sets its SIGTERM trap: a quick uninstall
        sc(host, "-q", "uninstall", name)
        p = timed(host, peer_script(f"{DEPLOYMENTS}/{ref}", peer, config), f"{peer}.service")
        peer_cleanup(host, peer)
        if i:
            install_s.append(t)
            peer_s.append(p)
    sc(host, "-q", "uninstall", ref)
    return median(install_s), median(peer_s)


# --- 2. list with many containers ----------------------------------------------------------------

INSTALL_MANY = """\
import sys, time
from syscontainers.cli import main
image, count = sys.argv[1], int(sys.argv[2])
started = time.perf_counter()
for i in range(count):
    if main(["-q", "install", "--name", f"l{i:03d}", image]) != 0:
        sys.exit(f"install of l{i:03d} failed")
print(time.perf_counter() - started)
"""


def install_many(host: NspawnHost, image: Image, count: int) -> float:
    """Install COUNT containers (not started) in one process; return the seconds it took."""
    out = host.run(
        [
            "env",
            "-u",
            "PYTHONDONTWRITEBYTECODE",
            f"PYTHONPYCACHEPREFIX={TEST_MOUNT}/pycache",
            "/usr/bin/python3",
            "-c",
            INSTALL_MANY,
            image.name,
            str(count),
        ],
        timeout=60 + 10 * count,
    )
    return float(out.stdout.split()[-1])


def bench_list(host: NspawnHost, count: int, repeat: int) -> dict[str, list[float]]:
    """Seconds of each run of list and list --json, end to end, with COUNT containers."""
    rows = json.loads(sc(host, "list", "--json"))
    states = Counter(row["state"] for row in rows)
    if len(rows) != count or set(states) != {"inactive"}:  # systemd must know every unit
        raise SystemExit(
            f"list --json shows {len(rows)} containers, {dict(states)}; "
            f"expected {count}, all inactive"
        )
    return {
        label: [timed(host, f"{SC} {args} >/dev/null") for _ in range(repeat)]
        for label, args in (("list", "list"), ("list --json", "list --json"))
    }


def baselines(host: NspawnHost, repeat: int) -> dict[str, float]:
    """What any Python CLI pays: interpreter start, and the parser of ours (--version)."""
    env = f"env -u PYTHONDONTWRITEBYTECODE PYTHONPYCACHEPREFIX={TEST_MOUNT}/pycache"
    commands = {
        "python3 -c pass": f"{env} /usr/bin/python3 -c pass",
        "syscontainers --version": f"{SC} --version",
        "systemctl list-units (peer)": "systemctl list-units --all 'l*.service'",
    }
    return {
        label: median([timed(host, f"{cmd} >/dev/null") for _ in range(repeat)])
        for label, cmd in commands.items()
    }


def dbus_calls(host: NspawnHost) -> Counter[str]:
    """The D-Bus method calls to systemd that one ``list`` makes, by member."""
    log = f"{TEST_MOUNT}/dbus-monitor.txt"
    match = "type='method_call',destination='org.freedesktop.systemd1'"
    host.sh(
        f'dbus-monitor --system "{match}" > {log} 2>&1 & m=$!; sleep 1; '
        f"{SC} list >/dev/null; sleep 0.5; kill $m; wait $m || true"
    )
    calls: Counter[str] = Counter()
    for line in (host.test_dir / "dbus-monitor.txt").read_text().splitlines():
        if line.startswith("method call") and "member=" in line:
            calls[line.rsplit("member=", 1)[1].strip()] += 1
    return calls


# --- the run -------------------------------------------------------------------------------------


def ratio_line(label: str, ours: float, peer_label: str, peer: float) -> str:
    """One result line with its ratio."""
    return f"{label} {ours:.2f}s vs {peer_label} {peer:.2f}s: ratio {ours / peer:.2f}x"


def run(
    host: NspawnHost, images: list[Image], args: argparse.Namespace, say: Callable[[str], None]
) -> None:
    """Pull the images, then the install and list benchmarks."""
    for image in images:
        started = time.monotonic()
        sc(host, "-q", "pull", "--name", image.name, f"oci:{host.inside(image.layout)}:latest")
        say(f"pulled {image.label}: {time.monotonic() - started:.1f}s (not timed below)")
    for key, image in zip(("hello", "minbase"), images, strict=False):
        ours, peer = bench_install(host, image, key, args.repeat)
        say(ratio_line(f"install --now [{image.label}]", ours, "cp -al + unit + start", peer))
    started = time.monotonic()
    took = install_many(host, images[0], args.count)
    say(
        f"installed {args.count} containers without --now in {time.monotonic() - started:.1f}s"
        f" ({took / args.count:.2f}s each, one process)"
    )
    lists = bench_list(host, args.count, max(args.repeat, 5))
    for label, samples in lists.items():
        seconds = median(samples)
        verdict = "ok" if seconds < LIST_TARGET else "TOO SLOW"
        say(
            f"{label} ({args.count} containers) {seconds:.2f}s (target < {LIST_TARGET}s): "
            f"{verdict}; min {min(samples):.2f}s of {len(samples)}"
        )
    for label, seconds in baselines(host, max(args.repeat, 5)).items():
        say(f"  for scale: {label} {seconds:.3f}s")
    if shutil.which("dbus-monitor"):
        calls = dbus_calls(host)
        total = sum(calls.values())
        detail = ", ".join(f"{n} {member}" for member, n in sorted(calls.items()))
        say(f"list D-Bus method calls to systemd: {total} ({detail or 'none seen'})")


def main(argv: list[str] | None = None) -> int:
    """Parse options, boot, run, and always shut down and clean up."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per figure (median)")
    parser.add_argument("--count", type=int, default=100, help="containers installed for list")
    parser.add_argument(
        "--no-minbase",
        action="store_true",
        help="skip the debian minbase image even if it is cached",
    )
    parser.add_argument("--workdir", type=Path, help="where to make the work directory")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    reason = probe() or (None if shutil.which("umoci") else "umoci is not installed")
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="sc-lifecycle-bench-", dir=args.workdir))
    host = NspawnHost(work, binds=persistent_binds(work))
    try:
        images = [example_image(work / "images")]
        minbase = None if args.no_minbase else minbase_image(work / "images")
        images += [minbase] if minbase else []
        boot = host.boot()
        print(f"booted systemd in nspawn: {boot:.1f}s", flush=True)
        run(host, images, args, lambda line: print(line, flush=True))
    except BootError as e:
        print(f"cannot boot systemd in systemd-nspawn here: {e}", file=sys.stderr)
        return 1
    finally:
        try:
            down = host.shutdown()
            print(f"shut down: {down:.1f}s", flush=True)
        except AssertionError as e:
            print(f"shutdown: {e}", file=sys.stderr)
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
