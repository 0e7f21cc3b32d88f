"""Reporters for the terminal: progress bars on a tty, JSON lines with --json, or nothing."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from _thread import allocate_lock  # threading.Lock itself, without importing threading
from typing import TextIO

from syscontainers.progress import Event, EventKind, Reporter


def print_error(message: str, hint: str | None) -> None:
    """Print an error and its hint to stderr."""
    print(f"error: {message}", file=sys.stderr)
    if hint:
        print(f"hint: {hint}", file=sys.stderr)


def human_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        text = f"{n:.0f}" if unit == "B" else f"{n:.1f}"
        # Compare what is printed, so that 1048575 is "1.0 MiB", not "1024.0 KiB".
        if abs(float(text)) < 1024 or unit == "TiB":
            return f"{text} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


class JsonLinesReporter:
    """One JSON object per event on stdout, for scripts."""

    def __init__(self, stream: TextIO | None = None) -> None:
        # sys.stdout is looked up now, not at import, so redirection (and tests) see the output.
        self.stream = stream if stream is not None else sys.stdout

    def emit(self, event: Event) -> None:
        """Write EVENT as a JSON line."""
        doc: dict[str, object] = {"event": event.kind.value, "message": event.message}
        if event.task:
            doc.update(task=event.task, done=event.done, total=event.total)
        doc.update(event.data)
        print(json.dumps(doc, default=str), file=self.stream, flush=True)


class TerminalReporter:
    """Steps and warnings on stderr; on a tty, one progress bar per running task, each on a line
    of its own, redrawn in place below the lines printed so far (concurrent layers of a pull
    each keep their bar, as skopeo and podman draw them)."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self.tty = self.stream.isatty()
        self._start: dict[str, float] = {}
        self._bars: dict[str, str] = {}  # task -> its bar, in the order the tasks began
        self._drawn = 0  # bar lines on the screen below the cursor's line of text
        self._last_draw = 0.0
        self._lock = allocate_lock()  # layers report from the pull's worker threads

    def emit(self, event: Event) -> None:
        """Render EVENT."""
        with self._lock:
            self._emit(event)

    def _emit(self, event: Event) -> None:
        if event.kind is EventKind.WARNING:
            self._line(f"warning: {event.message}")
        elif self.quiet:
            return
        elif event.kind in (EventKind.STEP, EventKind.RESULT):
            self._line(event.message)
        elif event.kind is EventKind.PROGRESS and self.tty:
            self._progress(event)
        elif event.kind is EventKind.TASK_DONE:
            self._start.pop(event.task, None)
            if self.tty:
                self._bars.pop(event.task, None)
                self._line(f"{event.task}: {event.message or 'done'}")

    def _line(self, text: str) -> None:
        """Print TEXT above the bars, which are drawn again below it."""
        if not self.tty:
            print(text, file=self.stream, flush=True)
            return
        self._erase()
        self.stream.write(text + "\n")
        self._paint()

    def _erase(self) -> None:
        if self._drawn:
            self.stream.write(f"\x1b[{self._drawn}A")
        self.stream.write("\r\x1b[J")
        self._drawn = 0

    def _paint(self) -> None:
        width = _columns(self.stream) - 1  # a bar that wraps would break the line count
        for bar in self._bars.values():
            self.stream.write(bar[:width] + "\n")
        self._drawn = len(self._bars)
        self.stream.flush()

    def _progress(self, event: Event) -> None:
        now = time.monotonic()
        start = self._start.setdefault(event.task, now)
        new = event.task not in self._bars
        self._bars[event.task] = _bar(event, now - start)
        if not new and now - self._last_draw < 0.1 and event.done != event.total:
            return
        self._last_draw = now
        self._erase()
        self._paint()


def _bar(event: Event, elapsed: float) -> str:
    """TASK's line: a bar, percentage, bytes, rate and ETA (only bytes without a total)."""
    rate = event.done / elapsed if elapsed > 0 else 0.0
    if not event.total:
        return f"{event.task}: {human_bytes(event.done)}"
    width = 24
    filled = int(width * event.done / event.total)
    eta = (event.total - event.done) / rate if rate else 0
    return (
        f"{event.task}: [{'#' * filled}{'.' * (width - filled)}] "
        f"{100 * event.done / event.total:3.0f}% "
        f"{human_bytes(event.done)}/{human_bytes(event.total)} {human_bytes(rate)}/s ETA {eta:.0f}s"
    )


def _columns(stream: TextIO) -> int:
    try:
        return max(20, os.get_terminal_size(stream.fileno()).columns)
    except (OSError, ValueError):
        return 80


def add_json_option(parser: argparse.ArgumentParser) -> None:
    """``--json`` for an action verb: progress events and the result as JSON lines on stdout."""
    parser.add_argument(
        "--json", action="store_true", help="print progress and the result as JSON lines"
    )
    parser.set_defaults(json_events=True)


def add_list_options(parser: argparse.ArgumentParser, what: str, noun: str) -> None:
    """``--json`` and ``-q`` (WHAT only, one a line) for a listing verb of NOUNs.

    Its ``-q`` is not the global ``syscontainers -q`` (no progress): it goes after the verb.
    """
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help=f"print the {noun} as JSON")
    out.add_argument(
        "-q",
        "--quiet",
        dest="ids_only",
        action="store_true",
        help=f"print only {what}, one a line (no header)",
    )


def add_health_flag(parser: argparse.ArgumentParser, what: str) -> None:
    """``--health-timeout``: how long WHAT (a service the verb starts) must stay active."""
    from syscontainers.settings_table import HEALTH_TIMEOUT, add_flag

    add_flag(
        parser,
        HEALTH_TIMEOUT,
        f"how long {what} must stay active (default {HEALTH_TIMEOUT.default:g})",
    )


def make_reporter(json_mode: bool, quiet: bool, json_events: bool = False) -> Reporter:
    """The reporter for the chosen output mode.

    Verbs whose output is a stream of events (pull) print them as JSON lines with --json;
    verbs whose output is one JSON document keep stdout for it and report only warnings.
    """
    if json_mode and json_events:
        return JsonLinesReporter()
    return TerminalReporter(quiet=quiet or json_mode)
