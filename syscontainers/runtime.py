"""OCI runtime (runc, crun) command lines: unit Exec lines and argv, built purely.

Two kinds of output live here, and they follow different quoting rules:

- ``RuntimeCommands`` (defined with the other template values in
  syscontainers.render.values) holds ``EXEC_START``, ``EXEC_STOP``,
  ``EXEC_STARTPRE`` and ``EXEC_STOPPOST``. Templates insert them raw after
  ``ExecStart=`` and friends, so each is one systemd command line, quoted by
  systemd's own rules (systemd.syntax(7) "Quoting", plus ``%%`` for specifiers
  and ``$$`` for environment expansion), never by /bin/sh's.
- ``exec_argv``, ``run_argv`` and ``delete_argv`` return argv tuples for
  ``process.run``; they need no quoting at all.

The command lines keep the shape that images written for atomic expect:
``RUNTIME run 'NAME'`` in the foreground and ``RUNTIME run -d --pid-file
PIDFILE 'NAME'`` when detached (the renderer's ``wants_detached`` decides
which). Around them, what makes the container belong to its unit:

- ``service_cgroup``: config.json gets ``linux.cgroupsPath`` =
  ``/system.slice/NAME.service/container``. Without it runc makes
  ``/system.slice/NAME`` *beside* the unit, so systemd neither accounts nor
  kills the container (seen: a stop timed out, and the container kept
  running). Inside the unit's cgroup, whatever systemd kills, it kills all.
  crun with ``--cgroup-manager=disabled`` ignores the path and leaves the
  container in the unit's own cgroup, which is just as good. Not set with a
  systemd cgroup driver, which wants ``slice:prefix:name`` and makes a scope.
- ``EXEC_STOP`` (both modes) is a bounded stop: it waits until the container
  runs (a stop right after a start must not signal runc's half-made init,
  which then exits 2), sends SIGTERM through the runtime, and after
  ``STOP_GRACE_SECONDS`` sends SIGKILL, until the main process is gone. The
  kernel drops SIGTERM to a PID-namespace init without a handler (busybox
  httpd, most daemons run as PID 1), and letting systemd's TimeoutStopSec run
  out instead would end the unit ``failed`` (result ``timeout``). The stop
  therefore ends with exit 143 or 137 from ``runc run``; units must count
  both as success (the default unit does; render.unit adds it to images'
  units). It is a /bin/sh loop on ``$MAINPID`` because systemd has no
  "signal, wait, then kill, and call that success" of its own.
- ``EXEC_STARTPRE`` deletes a stale runtime state (left by a crash or a
  kill -9) before each start, and ``EXEC_STOPPOST`` is the same command, so
  nothing lingers in ``runc list`` after a stop or a crash. Both ignore
  failure and force the delete: atomic's detached ``RUNTIME delete 'NAME'``
  failed the unit when a stop cancelled a start ("container does not exist",
  or "not stopped: running").
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable, Sequence
from enum import Enum

from syscontainers.errors import UsageError
from syscontainers.record import record
from syscontainers.render.values import RuntimeCommands

__all__ = [
    "Runtime",
    "RuntimeCommands",
    "RuntimeMode",
    "command_line",
    "delete_argv",
    "exec_argv",
    "locate",
    "locate_in_root",
    "quote_word",
    "run_argv",
    "runtime_commands",
    "service_cgroup",
    "stop_line",
    "stop_script",
]

# Characters systemd passes through unchanged in an unquoted Exec word.
_BARE = re.compile(r"[A-Za-z0-9_@+=:,./-]+")
# Leading characters of an Exec line's first word that systemd reads as flags.
_EXEC_PREFIXES = "-@:+!|"
# How long a stop waits after SIGTERM before SIGKILL; docker and podman use 10 s
# too. The default unit's TimeoutStopSec (20 s) must stay above it.
STOP_GRACE_SECONDS = 10
_STOP_TICK = 0.1
# ExecStop's body: $1 is the container, the rest is the runtime's argv. It polls
# every tick while the unit's main process lives: TERM once the runtime says
# "running", KILL (repeated, harmless) once the grace ticks are used up.
_STOP_SCRIPT = (
    "n=$1; shift; i=0; sent=; "
    'while kill -0 "$MAINPID" 2>/dev/null; do '
    'if [ -z "$sent" ]; then case $("$@" state "$n" 2>/dev/null) in '
    """*'"status": "running"'*) "$@" kill "$n" TERM 2>/dev/null && sent=1;; esac; fi; """
    '[ "$i" -lt {ticks} ] || "$@" kill "$n" KILL 2>/dev/null; '
    "i=$((i+1)); sleep {tick}; done"
)


class RuntimeMode(Enum):
    """How the runtime process relates to the service's main process."""

    FOREGROUND = "foreground"  # `run` stays in the foreground and is the main process
    DETACHED = "detached"  # `run -d` forks; systemd follows the container through PIDFile


@record
class Runtime:
    """An OCI runtime: its executable and the global options put before each verb."""

    path: str
    global_args: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Runtime:
        """Read a runtime setting such as ``/usr/bin/crun --cgroup-manager=disabled``."""
        try:
            words = shlex.split(text)
        except ValueError as e:
            raise UsageError(
                f"runtime {text!r} cannot be parsed: {e}",
                hint="quote it as a shell would, e.g. "
                "--runtime '/usr/bin/crun --cgroup-manager=disabled'",
            ) from e
        if not words:
            raise UsageError("the runtime setting is empty", hint="e.g. --runtime /usr/sbin/runc")
        runtime = cls(words[0], tuple(words[1:]))
        runtime.validate()
        return runtime

    @property
    def flavor(self) -> str:
        """The runtime's base name (``runc``, ``crun``), for messages and defaults."""
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    def validate(self) -> None:
        """Raise UsageError if systemd could not run this executable as written."""
        if not self.path or self.path[0] in _EXEC_PREFIXES:
            raise UsageError(
                f"runtime path {self.path!r} is not usable in a unit",
                hint="give the runtime's absolute path, e.g. /usr/sbin/runc",
            )
        if any(ord(c) < 32 or c == "\x7f" for c in " ".join((self.path, *self.global_args))):
            raise UsageError(
                f"runtime {self.path!r} contains control characters",
                hint="give the runtime's path and options as plain text",
            )

    def argv(self, *words: str) -> tuple[str, ...]:
        """``path``, the global options, then WORDS."""
        return (self.path, *self.global_args, *words)


def _executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _which(name: str) -> str | None:
    import shutil  # with bz2 and lzma: 1.5 ms that verbs which locate no runtime skip

    return shutil.which(name)


def locate(
    text: str,
    which: Callable[[str], str | None] = _which,
    executable: Callable[[str], bool] = _executable,
) -> str:
    """The runtime setting TEXT with its executable checked, a bare name looked up on PATH.

    A bare ``runc`` becomes ``/usr/sbin/runc`` on Debian and ``/usr/bin/runc`` on Fedora;
    units need the absolute path. UsageError if there is no such executable.
    """
    runtime = Runtime.parse(text)
    hint = "install runc or crun, or give the runtime's absolute path with --runtime PATH"
    path = runtime.path
    if "/" not in path:
        found = which(path)
        if found is None:
            raise UsageError(f"runtime {path!r} was not found on PATH", hint=hint)
        path = os.path.abspath(found)
    elif not os.path.isabs(path):
        raise UsageError(f"runtime path {path!r} is not absolute", hint=hint)
    if not executable(path):
        raise UsageError(f"runtime {path} is not an executable file", hint=hint)
    return shlex.join((path, *runtime.global_args)) if path != runtime.path else text


# The PATH a booted root's systemd gives services: where a bare runtime name is looked for.
ROOT_SEARCH_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


def locate_in_root(text: str, root: str) -> str:
    """``locate`` inside the root filesystem at ROOT, with the path as that root sees it."""

    def on_host(path: str) -> str:
        return os.path.join(root, path.lstrip("/"))

    def which(name: str) -> str | None:
        found = (f"{d}/{name}" for d in ROOT_SEARCH_PATH if _executable(on_host(f"{d}/{name}")))
        return next(found, None)

    return locate(text, which, lambda path: _executable(on_host(path)))


def locate_for(text: str, sysroot: str | None) -> str:
    """``locate`` on this host, or with SYSROOT ``locate_in_root`` in the offline root there."""
    return locate(text) if sysroot is None else locate_in_root(text, sysroot)


def quote_word(word: str, *, force: bool = False) -> str:
    """Quote one word of an Exec line by systemd's rules.

    ``%`` and ``$`` are doubled everywhere, since systemd expands specifiers and
    variables inside quotes too. A word made only of harmless characters stays
    bare unless FORCE; anything else is single-quoted with C escapes.
    """
    doubled = word.replace("%", "%%").replace("$", "$$")
    if not force and _BARE.fullmatch(word):
        return doubled
    if not force and word == ";":
        return "\\;"  # a lone ; separates commands; escaped it is a literal argument
    return "'" + "".join(_escape_char(c) for c in doubled) + "'"


def _escape_char(char: str) -> str:
    if char in "\\'":
        return "\\" + char
    named = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}
    if char in named:
        return named[char]
    if ord(char) < 32 or char == "\x7f":
        return f"\\x{ord(char):02x}"
    return char


def command_line(argv: Sequence[str], *, quoted: frozenset[int] = frozenset()) -> str:
    """Join ARGV into one systemd command line; indexes in QUOTED are always quoted."""
    return " ".join(quote_word(w, force=i in quoted) for i, w in enumerate(argv))


def _line(runtime: Runtime, words: Sequence[str], name: str, prefix: str = "") -> str:
    argv = runtime.argv(*words, name)
    return prefix + command_line(argv, quoted=frozenset({len(argv) - 1}))


def stop_script(grace: float = STOP_GRACE_SECONDS) -> str:
    """The /bin/sh text of ExecStop, SIGKILL coming GRACE seconds after SIGTERM."""
    return _STOP_SCRIPT.format(ticks=max(1, round(grace / _STOP_TICK)), tick=_STOP_TICK)


def stop_line(runtime: Runtime, name: str, grace: float = STOP_GRACE_SECONDS) -> str:
    """ExecStop for NAME: SIGTERM once it runs, SIGKILL after GRACE s (see module docstring)."""
    runtime.validate()
    argv = ("/bin/sh", "-c", stop_script(grace), "syscontainers-stop", name, *runtime.argv())
    return command_line(argv, quoted=frozenset({2, 4}))


def runtime_commands(
    runtime: Runtime,
    name: str,
    mode: RuntimeMode = RuntimeMode.FOREGROUND,
    pidfile: str | None = None,
) -> RuntimeCommands:
    """The unit's Exec lines for container NAME run by RUNTIME in MODE.

    DETACHED needs PIDFILE, the same path the unit gives to ``PIDFile=``.
    """
    runtime.validate()
    startpre = _line(runtime, ("delete", "--force"), name, prefix="-")
    stop = stop_line(runtime, name)
    if mode is RuntimeMode.DETACHED:
        if not pidfile:
            raise ValueError("a detached runtime needs a pid file")
        # '-': a stop that cancels the start kills `run -d` mid-setup (exit 1), which must
        # not fail the unit. A real failure still does: no PID file appears, and systemd
        # fails the start with result 'protocol'.
        start = _line(runtime, ("run", "-d", "--pid-file", pidfile), name, prefix="-")
    else:
        start = _line(runtime, ("run",), name)
    return RuntimeCommands(start, stop, startpre, startpre)


def _systemd_driver(runtime: Runtime) -> bool:
    args = runtime.global_args
    return bool(
        {"--systemd-cgroup", "--cgroup-manager=systemd"} & set(args)
        or ("--cgroup-manager", "systemd") in zip(args, args[1:], strict=False)
    )


def service_cgroup(runtime: Runtime, name: str) -> str | None:
    """The linux.cgroupsPath that puts container NAME inside NAME.service's cgroup.

    An absolute path is read in the runtime's cgroup namespace, where systemd
    runs system units under /system.slice. None for a systemd cgroup driver.
    """
    return None if _systemd_driver(runtime) else f"/system.slice/{name}.service/container"


def exec_argv(runtime: Runtime, name: str, cmd: Sequence[str], tty: bool) -> tuple[str, ...]:
    """argv to run CMD (default /bin/sh) inside the running container NAME."""
    tty_flag = ("--tty",) if tty else ()
    return runtime.argv("exec", *tty_flag, name, *(cmd or ("/bin/sh",)))


def run_argv(runtime: Runtime, bundle: str, name: str) -> tuple[str, ...]:
    """argv to run a fresh container NAME from BUNDLE in the foreground, once."""
    return runtime.argv("run", "--bundle", bundle, name)


def delete_argv(runtime: Runtime, name: str, *, force: bool = True) -> tuple[str, ...]:
    """argv to delete container NAME's runtime state (killing it first if FORCE)."""
    return runtime.argv("delete", *(("--force",) if force else ()), name)
