"""flushing: the store's filesystem is flushed while a layer imports, often at first (a small
image imports in a fifth of a second), then at a slower pace."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import pytest

from syscontainers.fsutil import flush_delays, flushing


@pytest.mark.parametrize(
    ("first", "interval", "early", "expect"),
    [
        (0.025, 0.25, 0.1, [0.025] * 4 + [0.05, 0.1, 0.2, 0.25, 0.25]),
        (0.025, 0.25, 0.2, [0.025] * 8 + [0.05]),  # the defaults: 8 flushes in 0.2 s
        (0.05, 0.25, 0.0, [0.05, 0.1, 0.2, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25]),
        (0.1, 0.1, 1.0, [0.1] * 9),
        (0.5, 0.25, 0.0, [0.25] * 9),  # a first delay past the interval is the interval
    ],
)
def test_delays_keep_the_first_while_early_then_double_up_to_the_interval(
    first: float, interval: float, early: float, expect: list[float]
) -> None:
    got = list(itertools.islice(flush_delays(first, interval, early), len(expect)))
    assert got == pytest.approx(expect)


def test_the_first_flush_comes_before_the_interval(tmp_path: Path) -> None:
    synced: list[Path] = []
    flushed = threading.Event()

    def sync(path: Path) -> None:
        synced.append(path)
        flushed.set()

    # An interval nobody would wait for: only the early first flush can come in time.
    with flushing(tmp_path, interval=3600, first=0.01, sync=sync):
        assert flushed.wait(60)
    assert synced[0] == tmp_path


def test_no_flush_after_the_body_ends(tmp_path: Path) -> None:
    synced: list[Path] = []
    with flushing(tmp_path, interval=3600, first=3600, sync=synced.append):
        pass
    assert synced == []  # the thread is gone (joined) and never flushed
    assert not any(t.name == "flusher" for t in threading.enumerate())
