"""A layer of many entries (issue 8, item 12): pull, images list, verify and prune run as the
CLI does, in child processes, and each child's peak RSS must stay far below what holding
every entry in memory takes (a 200k-entry layer took 200 MB to pull and 160 MB to list)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from syscontainers.store import Store
from syscontainers.tree import EntryKind
from tests.imagebuild import write_oci_layout

pytestmark = pytest.mark.slow

ENTRIES = 200_000
PER_DIR = 1000
LINK_EVERY = 10_000  # a hardlink and a symlink now and then, so the path index is used
BOUND = 64 << 20  # peak RSS of each child


def _header(name: str, flag: bytes, mode: int, link: str = "") -> bytes:
    block = bytearray(512)
    block[0 : len(name)] = name.encode()
    block[100:108] = b"%07o\0" % mode
    block[108:148] = b"0000000\x000000000\x0000000000000\x0000000000000\0"
    block[148:156] = b" " * 8
    block[156:157] = flag
    block[157 : 157 + len(link)] = link.encode()
    block[257:265] = b"ustar\x0000"
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def many_entries_tar() -> bytes:
    """ENTRIES empty files in directories of PER_DIR, with hardlinks and symlinks between."""
    parts = []
    for i in range(ENTRIES):
        d = f"d{i // PER_DIR:04d}"
        if i % PER_DIR == 0:
            parts.append(_header(d + "/", b"5", 0o755))
        parts.append(_header(f"{d}/f{i:07d}", b"0", 0o644))
        if i % LINK_EVERY == LINK_EVERY - 1:
            parts.append(_header(f"{d}/hard{i}", b"1", 0o644, "d0000/f0000000"))
            parts.append(_header(f"{d}/sym{i}", b"2", 0o777, "../d0000"))
    parts.append(bytes(1024))
    return b"".join(parts)


# A child's ru_maxrss starts from the high-water mark of the process it was forked from (the
# kernel records the old address space's at exec), and pytest holds the 100 MB layer: so the
# CLI is forked from a small launcher, which reports its child's peak on the fd it is given.
LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.executable, [sys.executable, *sys.argv[2:]])
_, status, usage = os.wait4(pid, 0)
os.write(int(sys.argv[1]), str(usage.ru_maxrss * 1024).encode())
sys.exit(os.waitstatus_to_exitcode(status))
"""


def measured(root: Path, *args: str) -> tuple[str, int]:
    """Run the CLI on ROOT (it must succeed); its stdout and its peak RSS in bytes."""
    peak_r, peak_w = os.pipe()
    argv = [
        sys.executable,
        "-c",
        LAUNCHER,
        str(peak_w),
        "-m",
        "syscontainers",
        "--root",
        str(root),
        "-q",
        *args,
    ]
    with os.fdopen(peak_r, "rb") as peak:
        proc = subprocess.run(argv, capture_output=True, pass_fds=(peak_w,))
        os.close(peak_w)
        assert proc.returncode == 0, f"{' '.join(args)}: {proc.stderr.decode()}"
        return proc.stdout.decode(), int(peak.read())


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_oci_layout(tmp_path_factory.mktemp("many") / "layout", [many_entries_tar()])


def test_many_entries_pull_list_verify_prune_in_bounded_memory(
    layout: Path, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    peaks = {}
    _, peaks["pull"] = measured(root, "pull", f"oci:{layout}:latest", "--name", "many:1")
    out, peaks["list"] = measured(root, "images", "list", "--json")
    _, peaks["verify"] = measured(root, "images", "verify")
    _, peaks["prune"] = measured(root, "images", "prune")
    assert all(peak < BOUND for peak in peaks.values()), {k: v >> 20 for k, v in peaks.items()}
    (row,) = json.loads(out)
    assert row["name"].endswith("many") and row["tag"] == "1"
    # the layer is whole after prune: every entry, hardlinks resolved to their target's object
    store = Store(root / "store")
    (diff_id,) = store.list_layers()
    kinds: dict[EntryKind, int] = {}
    target = ""
    for entry in store.layer_entries(diff_id):
        kinds[entry.kind] = kinds.get(entry.kind, 0) + 1
        if entry.path == "d0000/f0000000":
            target = entry.obj
        elif entry.path.endswith(f"hard{LINK_EVERY - 1}"):
            assert entry.kind is EntryKind.FILE and entry.obj == target
    links = ENTRIES // LINK_EVERY
    assert kinds == {
        EntryKind.DIR: ENTRIES // PER_DIR,
        EntryKind.FILE: ENTRIES + links,
        EntryKind.SYMLINK: links,
    }
    assert store.missing_objects(diff_id) == []
