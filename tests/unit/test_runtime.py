"""Tests for syscontainers.runtime: Exec lines, systemd quoting, argv."""

from __future__ import annotations

import pytest

from syscontainers.errors import UsageError
from syscontainers.runtime import (
    Runtime,
    RuntimeCommands,
    RuntimeMode,
    command_line,
    delete_argv,
    exec_argv,
    quote_word,
    run_argv,
    runtime_commands,
)

RUNC = Runtime("/usr/sbin/runc")
CRUN = Runtime("/usr/bin/crun", ("--cgroup-manager=disabled",))


@pytest.mark.parametrize(
    ("runtime", "name", "mode", "pidfile", "expected"),
    [
        (RUNC, "etcd", RuntimeMode.FOREGROUND, None, RuntimeCommands(
            "/usr/sbin/runc run 'etcd'",
            "/usr/sbin/runc kill 'etcd'",
            "-/usr/sbin/runc delete --force 'etcd'",
            "",
        )),
        (RUNC, "etcd", RuntimeMode.DETACHED, "/run/container-etcd.pid", RuntimeCommands(
            "/usr/sbin/runc run -d --pid-file /run/container-etcd.pid 'etcd'",
            "",
            "-/usr/sbin/runc delete --force 'etcd'",
            "/usr/sbin/runc delete 'etcd'",
        )),
        (CRUN, "web", RuntimeMode.FOREGROUND, None, RuntimeCommands(
            "/usr/bin/crun --cgroup-manager=disabled run 'web'",
            "/usr/bin/crun --cgroup-manager=disabled kill 'web'",
            "-/usr/bin/crun --cgroup-manager=disabled delete --force 'web'",
            "",
        )),
        (Runtime("/opt/my runtime/runc"), "a@b", RuntimeMode.DETACHED, "/run/x y.pid",
         RuntimeCommands(
            "'/opt/my runtime/runc' run -d --pid-file '/run/x y.pid' 'a@b'",
            "",
            "-'/opt/my runtime/runc' delete --force 'a@b'",
            "'/opt/my runtime/runc' delete 'a@b'",
        )),
    ],
)
def test_runtime_commands(
    runtime: Runtime, name: str, mode: RuntimeMode, pidfile: str | None,
    expected: RuntimeCommands,
) -> None:
    assert runtime_commands(runtime, name, mode, pidfile) == expected


def test_detached_needs_a_pidfile() -> None:
    with pytest.raises(ValueError, match="pid file"):
        runtime_commands(RUNC, "x", RuntimeMode.DETACHED)


@pytest.mark.parametrize(
    ("word", "force", "expected"),
    [
        ("/usr/sbin/runc", False, "/usr/sbin/runc"),
        ("--pid-file=/run/a.pid", False, "--pid-file=/run/a.pid"),
        ("etcd", True, "'etcd'"),
        ("a b", False, "'a b'"),
        ("", False, "''"),
        ("it's", False, "'it\\'s'"),
        ('say "hi"', False, "'say \"hi\"'"),
        ("back\\slash", False, "'back\\\\slash'"),
        ("100%", False, "'100%%'"),
        ("%n", False, "'%%n'"),
        ("$HOME", False, "'$$HOME'"),
        ("${X}", False, "'$${X}'"),
        (";", False, "\\;"),
        (";", True, "';'"),
        ("two\nlines", False, "'two\\nlines'"),
        ("tab\there", False, "'tab\\there'"),
        ("bell\x07", False, "'bell\\x07'"),
        ("caf\u00e9", False, "'caf\u00e9'"),
    ],
)
def test_quote_word(word: str, force: bool, expected: str) -> None:
    assert quote_word(word, force=force) == expected


_C_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "s": " "}


def _systemd_split(line: str) -> list[str]:
    """A reference reading of systemd.syntax(7) quoting, then %% and $$ undoubled."""
    words: list[str] = []
    i, n = 0, len(line)
    while i < n:
        while i < n and line[i] == " ":
            i += 1
        if i >= n:
            break
        word: list[str] = []
        quote = ""
        while i < n and (quote or line[i] != " "):
            c = line[i]
            if c == "\\":
                nxt = line[i + 1]
                if nxt == "x":
                    word.append(chr(int(line[i + 2 : i + 4], 16)))
                    i += 4
                    continue
                word.append(_C_ESCAPES.get(nxt, nxt))
                i += 2
                continue
            if quote and c == quote:
                quote = ""
            elif not quote and c in "'\"":
                quote = c
            else:
                word.append(c)
            i += 1
        assert not quote, f"unbalanced quote in {line!r}"
        words.append("".join(word).replace("%%", "%").replace("$$", "$"))
    return words


@pytest.mark.parametrize(
    "argv",
    [
        ["/usr/sbin/runc", "run", "etcd"],
        ["/opt/a b/runc", "--root", "/run/x y", "run", "n"],
        ["/bin/echo", "it's", 'a "q"', "back\\slash", "%h", "$HOME", ";", ""],
        ["/bin/echo", "two\nlines", "tab\t", "\x01", "caf\u00e9", "a'b\\c"],
    ],
)
def test_command_line_round_trips_through_systemd_rules(argv: list[str]) -> None:
    line = command_line(argv, quoted=frozenset({len(argv) - 1}))
    assert _systemd_split(line) == argv


def test_command_line_forces_quotes_only_where_asked() -> None:
    assert command_line(["/bin/x", "a", "b"], quoted=frozenset({2})) == "/bin/x a 'b'"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/usr/bin/crun --cgroup-manager=disabled", CRUN),
        ("/usr/sbin/runc", RUNC),
        ("'/opt/my runtime/runc' --debug", Runtime("/opt/my runtime/runc", ("--debug",))),
    ],
)
def test_runtime_parse(text: str, expected: Runtime) -> None:
    assert Runtime.parse(text) == expected


@pytest.mark.parametrize(
    "text", ["", "   ", "-/usr/sbin/runc", "@runc", "'/usr/sbin/runc", "'/usr/sbin/ru\tnc'"]
)
def test_runtime_parse_rejects(text: str) -> None:
    with pytest.raises(UsageError):
        Runtime.parse(text)


def test_runtime_with_control_characters_is_refused_for_units() -> None:
    with pytest.raises(UsageError, match="control characters"):
        runtime_commands(Runtime("/usr/sbin/runc", ("--root=/a\nb",)), "x")


def test_flavor_is_the_base_name() -> None:
    assert CRUN.flavor == "crun"
    assert RUNC.flavor == "runc"


@pytest.mark.parametrize(
    ("runtime", "cmd", "tty", "expected"),
    [
        (RUNC, ["ls", "-l"], False, ("/usr/sbin/runc", "exec", "n", "ls", "-l")),
        (RUNC, ["sh"], True, ("/usr/sbin/runc", "exec", "--tty", "n", "sh")),
        (RUNC, [], True, ("/usr/sbin/runc", "exec", "--tty", "n", "/bin/sh")),
        (CRUN, ["a b"], False,
         ("/usr/bin/crun", "--cgroup-manager=disabled", "exec", "n", "a b")),
    ],
)
def test_exec_argv(
    runtime: Runtime, cmd: list[str], tty: bool, expected: tuple[str, ...]
) -> None:
    assert exec_argv(runtime, "n", cmd, tty) == expected


def test_run_and_delete_argv() -> None:
    assert run_argv(CRUN, "/b/n.0", "n-run") == (
        "/usr/bin/crun", "--cgroup-manager=disabled", "run", "--bundle", "/b/n.0", "n-run")
    assert delete_argv(RUNC, "n") == ("/usr/sbin/runc", "delete", "--force", "n")
    assert delete_argv(RUNC, "n", force=False) == ("/usr/sbin/runc", "delete", "n")
