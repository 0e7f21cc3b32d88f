"""Tests for syscontainers.runtime: Exec lines, systemd quoting, argv."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

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
    service_cgroup,
    stop_line,
    stop_script,
)

RUNC = Runtime("/usr/sbin/runc")
CRUN = Runtime("/usr/bin/crun", ("--cgroup-manager=disabled",))


@pytest.mark.parametrize(
    ("runtime", "name", "mode", "pidfile", "expected"),
    [
        (
            RUNC,
            "etcd",
            RuntimeMode.FOREGROUND,
            None,
            RuntimeCommands(
                "/usr/sbin/runc run 'etcd'",
                stop_line(RUNC, "etcd"),
                "-/usr/sbin/runc delete --force 'etcd'",
                "-/usr/sbin/runc delete --force 'etcd'",
            ),
        ),
        (
            RUNC,
            "etcd",
            RuntimeMode.DETACHED,
            "/run/container-etcd.pid",
            RuntimeCommands(
                "-/usr/sbin/runc run -d --pid-file /run/container-etcd.pid 'etcd'",
                stop_line(RUNC, "etcd"),
                "-/usr/sbin/runc delete --force 'etcd'",
                "-/usr/sbin/runc delete --force 'etcd'",
            ),
        ),
        (
            CRUN,
            "web",
            RuntimeMode.FOREGROUND,
            None,
            RuntimeCommands(
                "/usr/bin/crun --cgroup-manager=disabled run 'web'",
                stop_line(CRUN, "web"),
                "-/usr/bin/crun --cgroup-manager=disabled delete --force 'web'",
                "-/usr/bin/crun --cgroup-manager=disabled delete --force 'web'",
            ),
        ),
        (
            Runtime("/opt/my runtime/runc"),
            "a@b",
            RuntimeMode.DETACHED,
            "/run/x y.pid",
            RuntimeCommands(
                "-'/opt/my runtime/runc' run -d --pid-file '/run/x y.pid' 'a@b'",
                stop_line(Runtime("/opt/my runtime/runc"), "a@b"),
                "-'/opt/my runtime/runc' delete --force 'a@b'",
                "-'/opt/my runtime/runc' delete --force 'a@b'",
            ),
        ),
    ],
)
def test_runtime_commands(
    runtime: Runtime,
    name: str,
    mode: RuntimeMode,
    pidfile: str | None,
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
        (CRUN, ["a b"], False, ("/usr/bin/crun", "--cgroup-manager=disabled", "exec", "n", "a b")),
    ],
)
def test_exec_argv(runtime: Runtime, cmd: list[str], tty: bool, expected: tuple[str, ...]) -> None:
    assert exec_argv(runtime, "n", cmd, tty) == expected


def test_run_and_delete_argv() -> None:
    assert run_argv(CRUN, "/b/n.0", "n-run") == (
        "/usr/bin/crun",
        "--cgroup-manager=disabled",
        "run",
        "--bundle",
        "/b/n.0",
        "n-run",
    )
    assert delete_argv(RUNC, "n") == ("/usr/sbin/runc", "delete", "--force", "n")
    assert delete_argv(RUNC, "n", force=False) == ("/usr/sbin/runc", "delete", "n")


@pytest.mark.parametrize(
    ("runtime", "expected"),
    [
        (RUNC, "/system.slice/web.service/container"),
        (CRUN, "/system.slice/web.service/container"),  # disabled: crun ignores it
        (Runtime("/usr/sbin/runc", ("--systemd-cgroup",)), None),
        (Runtime("/usr/bin/crun", ("--cgroup-manager=systemd",)), None),
        (Runtime("/usr/bin/crun", ("--cgroup-manager", "systemd")), None),
        (
            Runtime("/usr/bin/crun", ("--cgroup-manager", "cgroupfs")),
            "/system.slice/web.service/container",
        ),
    ],
)
def test_service_cgroup(runtime: Runtime, expected: str | None) -> None:
    assert service_cgroup(runtime, "web") == expected


def test_stop_line_shape() -> None:
    words = _systemd_split(stop_line(CRUN, "my web", grace=2.5))
    assert words[:2] == ["/bin/sh", "-c"]
    assert words[3:] == [
        "syscontainers-stop",
        "my web",
        "/usr/bin/crun",
        "--cgroup-manager=disabled",
    ]
    script = words[2]
    assert script == stop_script(2.5)
    assert '"$MAINPID"' in script and "-lt 25 ]" in script and "sleep 0.1" in script
    assert "$" not in stop_line(RUNC, "x").replace("$$", "")  # systemd must expand nothing


# A fake runtime for the stop script: it logs each call with the status it reports, says
# what STATUS holds, and on `kill` ends the "main process" (pid in MAIN) when the signal is
# KILL, or TERM with a RESPECTS file present.
FAKE_RUNTIME = """#!/bin/sh
dir=$(dirname "$0")
[ "$1" = --global ] || exit 9
shift
echo "$1 $2 ${3:-} $(cat "$dir/status")" >> "$dir/log"
case $1 in
state) printf '{\\n  "id": "%s",\\n  "status": "%s"\\n}\\n' "$2" "$(cat "$dir/status")" ;;
kill) if [ "$3" = KILL ] || [ -e "$dir/respects" ]; then kill -9 "$(cat "$dir/main")"; fi ;;
esac
"""


@pytest.fixture()
def fake_runtime(tmp_path: Path) -> Runtime:
    script = tmp_path / "runtime"
    script.write_text(FAKE_RUNTIME)
    script.chmod(0o755)
    (tmp_path / "status").write_text("running")
    return Runtime(str(script), ("--global",))


def _run_stop(
    runtime: Runtime, tmp_path: Path, grace: float, *, main: bool = True, created_for: float = 0.0
) -> tuple[float, list[str]]:
    """Run the ExecStop line as systemd would, against a `sleep` standing in for MAINPID."""
    sleeper = subprocess.Popen(["sleep", "30"])
    threading.Thread(target=sleeper.wait, daemon=True).start()  # reap it as soon as it dies
    (tmp_path / "main").write_text(str(sleeper.pid))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    if main:
        env["MAINPID"] = str(sleeper.pid)
    if created_for:
        (tmp_path / "status").write_text("created")
        threading.Timer(created_for, (tmp_path / "status").write_text, ("running",)).start()
    started = time.monotonic()
    try:
        subprocess.run(
            _systemd_split(stop_line(runtime, "web", grace)), env=env, check=True, timeout=20
        )
    finally:
        sleeper.kill()
    log = (tmp_path / "log").read_text().splitlines() if (tmp_path / "log").exists() else []
    return time.monotonic() - started, log


def test_stop_ends_a_container_that_respects_sigterm(fake_runtime: Runtime, tmp_path: Path) -> None:
    (tmp_path / "respects").touch()
    elapsed, log = _run_stop(fake_runtime, tmp_path, grace=5)
    assert log == ["state web  running", "kill web TERM running"]
    assert elapsed < 3


def test_stop_escalates_to_sigkill_after_the_grace(fake_runtime: Runtime, tmp_path: Path) -> None:
    elapsed, log = _run_stop(fake_runtime, tmp_path, grace=0.5)
    assert log[:2] == ["state web  running", "kill web TERM running"]
    assert log[2:] == ["kill web KILL running"]
    assert 0.5 <= elapsed < 5


def test_stop_waits_for_the_container_to_run_before_sigterm(
    fake_runtime: Runtime, tmp_path: Path
) -> None:
    (tmp_path / "respects").touch()
    _, log = _run_stop(fake_runtime, tmp_path, grace=5, created_for=0.5)
    kills = [line for line in log if line.startswith("kill")]
    assert kills == ["kill web TERM running"]
    assert log.count("state web  created") >= 2, log


def test_stop_without_a_main_process_does_nothing(fake_runtime: Runtime, tmp_path: Path) -> None:
    elapsed, log = _run_stop(fake_runtime, tmp_path, grace=5, main=False)
    assert log == [] and elapsed < 3
