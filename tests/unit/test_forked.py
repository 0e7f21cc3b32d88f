"""Tests for syscontainers.forked: half of a run of system calls in a forked child."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from syscontainers.forked import can_fork, in_two


def test_child_runs_in_another_process_and_both_reports_come_back() -> None:
    parent = os.getpid()
    # Each half "fails" on its own pid: the child's comes first.
    result = in_two(lambda: [os.getpid(), 7], lambda: [os.getpid()])
    assert result[1:] == [7, parent]
    assert result[0] not in (parent, 0)


def test_child_writes_to_the_shared_filesystem(tmp_path: Path) -> None:
    def child() -> list[int]:
        (tmp_path / "child").write_text("made")
        return []

    assert in_two(child, lambda: []) == []
    assert (tmp_path / "child").read_text() == "made"


def test_a_long_report_is_read_whole() -> None:
    many = list(range(100_000))  # more than a pipe holds: the parent must read while waiting
    assert in_two(lambda: many, lambda: [-1]) == [*many, -1]


@pytest.mark.parametrize("ending", ["exit", "raise"])
def test_a_child_that_dies_is_an_error(ending: str) -> None:
    def child() -> list[int]:
        if ending == "exit":
            os._exit(3)
        raise RuntimeError("boom")

    with pytest.raises(ChildProcessError, match="ended with"):
        in_two(child, lambda: [])


def test_an_error_here_kills_and_reaps_the_child(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"

    def child() -> list[int]:
        pid_file.write_text(str(os.getpid()))
        time.sleep(60)
        return []

    def here() -> list[int]:
        while not pid_file.exists() or not pid_file.read_text():
            time.sleep(0.01)
        raise KeyboardInterrupt

    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        in_two(child, here)
    assert time.monotonic() - start < 30  # it did not wait for the child's sleep
    with pytest.raises(ProcessLookupError):  # killed and reaped: not even a zombie
        os.kill(int(pid_file.read_text()), 0)


def test_no_fork_while_another_thread_runs() -> None:
    before = can_fork()
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert not can_fork()
    finally:
        stop.set()
        thread.join()
    assert can_fork() == before
