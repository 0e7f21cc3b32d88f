"""Tests for how the console script leaves: os._exit after flushing, not the interpreter's
teardown, with nothing lost (output through a pipe, the exit code, atexit handlers) and the
normal exit kept where leaving early would lose something (a thread still running)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.imagebuild import layer_tar, write_oci_layout

REPO = Path(__file__).resolve().parents[2]


def script(tmp_path: Path, code: str) -> subprocess.CompletedProcess[str]:
    """Run CODE (which ends by calling the CLI's leave or run) in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "XDG_CONFIG_HOME": str(tmp_path / "config")},
    )


def cli(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syscontainers", *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "XDG_CONFIG_HOME": str(tmp_path / "config")},
    )


def test_output_through_a_pipe_arrives_whole(tmp_path: Path) -> None:
    layout = write_oci_layout(tmp_path / "img", [layer_tar({"a": b"1\n"})], "v1")
    root = str(tmp_path / "root")
    for n in range(40):  # JSON output of several KiB, past the 8 KiB of stdout's buffer
        pulled = cli(
            tmp_path, "--root", root, "-q", "pull", f"oci:{layout}:v1", "--name", f"x{n}:1"
        )
        assert pulled.returncode == 0, pulled.stderr
    listed = cli(tmp_path, "--root", root, "images", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert len(listed.stdout) > 8192
    rows = json.loads(listed.stdout)
    assert len(rows) == 40
    assert {f"x{n}:1" for n in range(40)} == {f"{r['name']}:{r['tag']}" for r in rows}


def test_exit_codes_and_stderr_are_kept(tmp_path: Path) -> None:
    usage = cli(tmp_path, "--root", str(tmp_path / "root"), "nosuchverb")
    assert usage.returncode == 2
    assert "error:" in usage.stderr and "hint:" in usage.stderr
    failed = cli(tmp_path, "--root", str(tmp_path / "root"), "images", "inspect", "nosuch:1")
    assert failed.returncode == 1 and "error:" in failed.stderr
    version = cli(tmp_path, "--version")
    assert version.returncode == 0 and version.stdout.startswith("syscontainers ")


def test_atexit_handlers_still_run(tmp_path: Path) -> None:
    done = script(
        tmp_path,
        f"""
        import atexit, sys
        atexit.register(lambda: print("handler ran", flush=True))
        sys.argv = ["syscontainers", "--root", "{tmp_path / "root"}", "images", "list"]
        from syscontainers.cli import run
        run()
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith("handler ran\n")


def test_a_running_thread_gets_the_normal_exit(tmp_path: Path) -> None:
    """os._exit would end the thread before it writes; the normal exit waits for it."""
    marker = tmp_path / "written"
    done = script(
        tmp_path,
        f"""
        import threading, time
        from pathlib import Path
        def late():
            time.sleep(0.3)
            Path("{marker}").write_text("yes")
        threading.Thread(target=late).start()
        from syscontainers.cli import leave
        leave(3)
        """,
    )
    assert done.returncode == 3
    assert marker.read_text() == "yes"


def test_leave_skips_the_teardown(tmp_path: Path) -> None:
    """The twin of the above: with no thread left, objects' finalizers do not run (the
    teardown that costs 3-9 ms is skipped), yet the exit code and output are there."""
    done = script(
        tmp_path,
        """
        import sys
        class Noisy:
            def __del__(self):
                print("finalized", flush=True)
        keep = Noisy()
        print("out", end="")
        from syscontainers.cli import leave
        leave(4)
        """,
    )
    assert done.returncode == 4
    assert done.stdout == "out"
