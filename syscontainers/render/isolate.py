"""Running untrusted template code in a forked child with CPU-time and memory limits.

The bounded sandbox (``render.sandbox``) refuses every growing operation it knows of, but a
template is a program: nested loops and recursive macros can run for hours without growing
anything, and a growing path the sandbox does not foresee would take the host's memory. So
each jinja2 render runs in a child of this process (fork: the parent's imports and compiled
code come along, at about 5 ms a call) under ``RLIMIT_CPU`` and an ``RLIMIT_AS`` headroom,
with a wall-clock deadline on top. The child sends back JSON: its result, or the message and
hint of the TemplateError it raised. A child killed by a limit becomes a TemplateError saying
which limit it hit.
"""

from __future__ import annotations

import json
import os
import resource
import select
import signal
import time
from collections.abc import Callable
from typing import Any

from syscontainers.errors import TemplateError

CPU_SECONDS = 3  # a real template renders in milliseconds
MEMORY_HEADROOM = 512 << 20  # bytes of address space the child may add to the parent's
WALL_SECONDS = 30.0  # the child's deadline however busy the host is
MAX_REPLY = 64 << 20  # a result larger than this is not read (the sandbox caps output lower)

_HINT = "the template does far more work than any template needs; tell the image's author"


def _address_space() -> int:
    """This process's current address-space size, in bytes (from /proc/self/statm)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _child(work: Callable[[], Any], write_fd: int, memory: int) -> None:
    """Run WORK under the limits and write its JSON reply to WRITE_FD (never returns)."""
    try:
        resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS + 1))
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        try:
            reply: dict[str, Any] = {"result": work()}
        except TemplateError as e:
            reply = {"message": e.message, "hint": e.hint}
        except MemoryError:
            reply = {"limit": "memory"}
        data = json.dumps(reply).encode()
        view = memoryview(data)
        while view:
            view = view[os.write(write_fd, view) :]
    finally:
        os._exit(0)


def _read_reply(read_fd: int, pid: int) -> bytes:
    """Everything the child writes, until it closes the pipe or the deadline passes."""
    deadline = time.monotonic() + WALL_SECONDS
    chunks: list[bytes] = []
    total = 0
    while True:
        left = deadline - time.monotonic()
        if total > MAX_REPLY or left <= 0 or not select.select([read_fd], [], [], left)[0]:
            os.kill(pid, signal.SIGKILL)
            break
        chunk = os.read(read_fd, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def _limit_error(name: str, status: int, reply: dict[str, Any]) -> TemplateError:
    if reply.get("limit") == "memory" or os.WIFEXITED(status):
        limit = f"more than {MEMORY_HEADROOM >> 20} MiB of memory"
    elif os.WTERMSIG(status) in (signal.SIGXCPU, signal.SIGKILL):
        limit = f"more than {CPU_SECONDS} s of CPU time (or {WALL_SECONDS:.0f} s in all)"
    else:
        limit = f"signal {os.WTERMSIG(status)}"
    return TemplateError(f"{name}: rendering was stopped: it needed {limit}", hint=_HINT)


def run_isolated(name: str, work: Callable[[], Any]) -> Any:
    """WORK() run in a limited child; its JSON-able result, or a TemplateError naming NAME."""
    memory = _address_space() + MEMORY_HEADROOM
    read_fd, write_fd = os.pipe()
    try:
        pid = os.fork()
    except OSError:  # cannot fork here (a process limit): run bounded only by the sandbox
        os.close(read_fd)
        os.close(write_fd)
        return work()
    if pid == 0:
        os.close(read_fd)
        _child(work, write_fd, memory)
    os.close(write_fd)
    try:
        data = _read_reply(read_fd, pid)
    finally:
        os.close(read_fd)
        _, status = os.waitpid(pid, 0)
    try:
        reply = json.loads(data) if data else {}
    except ValueError:
        reply = {}
    if "result" in reply:
        return reply["result"]
    if "message" in reply:
        raise TemplateError(reply["message"], hint=reply["hint"])
    raise _limit_error(name, status, reply)
