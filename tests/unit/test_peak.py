"""tests/peak.py measures a child's own peak RSS, not that of the pytest process it came from."""

from __future__ import annotations

import sys

from tests.peak import run_measured


def test_a_childs_peak_is_its_own_not_its_large_parents() -> None:
    ballast = bytearray(300 << 20)
    ballast[::4096] = b"x" * len(range(0, len(ballast), 4096))  # touch every page
    run = run_measured([sys.executable, "-c", "pass"])
    del ballast
    assert run.code == 0, run.err
    assert 0 < run.max_rss < 100 << 20, run.max_rss


def test_the_address_space_limit_and_the_exit_code_reach_the_child() -> None:
    grow = "b = bytearray(512 << 20)"
    run = run_measured([sys.executable, "-c", grow], address_space=256 << 20)
    assert run.code == 1 and "MemoryError" in run.err, run.err
