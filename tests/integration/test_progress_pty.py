"""On a terminal, a pull draws one progress bar per layer, each on its own line.

The CLI runs in a child whose stderr is a pseudo-terminal (pty.openpty); it pulls a three-layer
image (2 MiB of random bytes each) from a real docker-registry through a loopback proxy that
paces blob bodies, so that the three layers are in flight together (the pull imports up to
three at once). What the child writes to the terminal is replayed on a small screen model
(\\r, \\n, cursor up, erase to the end of the line or screen). Before the change every layer
redrew the one line, so no screen ever showed two bars.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.imagebuild import layer_tar, write_oci_layout
from tests.integration.conftest_registry import (
    FaultProxy,
    Faults,
    PlainRegistry,
    push,
)
from tests.integration.hostile_registry import cli_env

BAR = re.compile(r"^layer ([0-9a-f]{12}): \[[#.]{24}\] +\d+% ")
DONE = re.compile(r"^layer ([0-9a-f]{12}): \d+ entries$")
CONTROL = re.compile(r"\x1b\[(\d*)([AJK])|\r|\n|[^\x1b\r\n]+")


class Screen:
    """Just enough of a terminal: lines of text, a cursor, and the sequences the CLI sends."""

    def __init__(self) -> None:
        self.lines: list[str] = [""]
        self.row = self.col = 0
        self.most_bars = 0

    def feed(self, text: str) -> None:
        """Apply TEXT, noting the most bars ever on the screen at once."""
        for m in CONTROL.finditer(text):
            token, count, op = m.group(0), m.group(1), m.group(2)
            if op == "A":
                self.row = max(0, self.row - int(count or 1))
            elif op == "J":
                self.lines[self.row] = self.lines[self.row][: self.col]
                del self.lines[self.row + 1 :]
            elif op == "K":
                self.lines[self.row] = self.lines[self.row][: self.col]
            elif token == "\r":
                self.col = 0
            elif token == "\n":
                self.row += 1
                self.col = 0
                if self.row == len(self.lines):
                    self.lines.append("")
            else:
                line = self.lines[self.row].ljust(self.col)
                self.lines[self.row] = line[: self.col] + token + line[self.col + len(token) :]
                self.col += len(token)
            self.most_bars = max(self.most_bars, len(self.bars()))

    def bars(self) -> list[str]:
        return [line for line in self.lines if BAR.match(line)]


@pytest.fixture(scope="module")
def slow_registry(
    plain_registry: PlainRegistry, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """host:port of a proxy to the registry, which holds test/three:1, with paced blobs."""
    layout = tmp_path_factory.mktemp("three") / "layout"
    layers = [layer_tar({f"data{i}": os.urandom(2 << 20)}) for i in range(3)]
    write_oci_layout(layout, layers, "1")
    push(layout, "1", plain_registry.registry, "test/three:1")
    with FaultProxy(plain_registry.host, Faults(pace=0.02)) as proxy:
        yield proxy.host


def pull_on_a_terminal(env: dict[str, str], image: str) -> tuple[int, str, str]:
    """Pull IMAGE with stderr on a pty of 100 columns: (exit code, terminal output, stdout)."""
    master, slave = pty.openpty()
    attrs = termios.tcgetattr(slave)
    attrs[1] &= ~termios.ONLCR  # keep "\n" as written, without the tty's "\r\n"
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "syscontainers",
            "pull",
            image,
            "--tls-verify=false",
            "--insecure-policy",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=slave,
        text=True,
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if not ready:
            continue
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: every holder of the terminal's other end has closed it
            break
        if not data:
            break
        chunks.append(data)
    else:
        proc.kill()
    out = proc.stdout.read() if proc.stdout else ""
    os.close(master)
    return proc.wait(), b"".join(chunks).decode(), out


def test_each_concurrent_layer_has_its_own_bar_line(slow_registry: str, tmp_path: Path) -> None:
    code, tty, out = pull_on_a_terminal(cli_env(tmp_path), f"docker://{slow_registry}/test/three:1")
    assert code == 0, tty
    screen = Screen()
    screen.feed(tty)
    assert screen.most_bars >= 2, tty[-2000:]
    # Every bar line is a different layer at any moment (no layer drawn twice) ...
    assert "\x1b[" in tty
    # ... and at the end no bar is left: each layer's bar became one "done" line above.
    assert screen.bars() == []
    done = [DONE.match(line) for line in screen.lines]
    assert sorted(m.group(1) for m in done if m) == sorted(set(m.group(1) for m in done if m))
    assert len([m for m in done if m]) == 3
    assert screen.lines[0].startswith("pulling ") and "3 of 3 layers" in screen.lines[0]
    assert "imported 3 of 3 layers" in out
