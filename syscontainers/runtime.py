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
which). We add an ``ExecStartPre`` that deletes a stale runtime state (left by
a crash or a kill -9), with its failure ignored.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from syscontainers.errors import UsageError
from syscontainers.render.values import RuntimeCommands

__all__ = [
    "Runtime",
    "RuntimeCommands",
    "RuntimeMode",
    "command_line",
    "delete_argv",
    "exec_argv",
    "quote_word",
    "run_argv",
    "runtime_commands",
]

# Characters systemd passes through unchanged in an unquoted Exec word.
_BARE = re.compile(r"[A-Za-z0-9_@+=:,./-]+")
# Leading characters of an Exec line's first word that systemd reads as flags.
_EXEC_PREFIXES = "-@:+!|"


class RuntimeMode(Enum):
    """How the runtime process relates to the service's main process."""

    FOREGROUND = "foreground"  # `run` stays in the foreground and is the main process
    DETACHED = "detached"  # `run -d` forks; systemd follows the container through PIDFile


@dataclass(frozen=True, slots=True)
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
            raise UsageError(f"runtime {text!r} cannot be parsed: {e}") from e
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
            raise UsageError(f"runtime {self.path!r} contains control characters")

    def argv(self, *words: str) -> tuple[str, ...]:
        """``path``, the global options, then WORDS."""
        return (self.path, *self.global_args, *words)


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
    if mode is RuntimeMode.DETACHED:
        if not pidfile:
            raise ValueError("a detached runtime needs a pid file")
        start = _line(runtime, ("run", "-d", "--pid-file", pidfile), name)
        return RuntimeCommands(start, "", startpre, _line(runtime, ("delete",), name))
    start = _line(runtime, ("run",), name)
    return RuntimeCommands(start, _line(runtime, ("kill",), name), startpre, "")


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
