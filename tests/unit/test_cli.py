"""Tests for the CLI frame (syscontainers.cli and cli.output): exit codes, errors, reporters."""

from __future__ import annotations

import argparse
import io
import json
import sys
import types
from pathlib import Path

import pytest

from syscontainers import cli
from syscontainers.cli.context import Answer, Context, Document, answer
from syscontainers.cli.output import (
    JsonLinesReporter,
    TerminalReporter,
    human_bytes,
    make_reporter,
)
from syscontainers.errors import (
    FilesystemError,
    ImageInUseError,
    SysContainersError,
    SystemdCallError,
    SystemdError,
    UsageError,
)
from syscontainers.progress import Event, EventKind

pytestmark = pytest.mark.usefixtures("isolated_settings")


class CustomError(SysContainersError):
    exit_code = 7


def _raise(exc: BaseException) -> None:
    raise exc


BEHAVIOURS = {
    "in-use": lambda: _raise(ImageInUseError('image "a:1" is in use', hint="unmount it first")),
    "usage": lambda: _raise(UsageError("bad --set value", hint="write KEY=VALUE")),
    "custom": lambda: _raise(CustomError("custom failure")),
    "interrupt": lambda: _raise(KeyboardInterrupt()),
    "crash": lambda: _raise(ValueError("boom")),
    "pipe": lambda: _raise(BrokenPipeError()),
}


def fake_area() -> types.ModuleType:
    """A verb module like cli/images.py, whose verbs fail in every way the frame handles."""
    mod = types.ModuleType("syscontainers.cli.fakeverbs")

    def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
        p = sub.add_parser("fake", help="a test verb")
        p.add_argument("behaviour", choices=[*BEHAVIOURS, "ok"], help="what to do")
        p.add_argument("--json", action="store_true", help="JSON output")
        p.set_defaults(handler=handle)

    def handle(ctx: Context, args: argparse.Namespace) -> Answer:
        if args.behaviour == "ok":
            return answer(Document(["ok"], {"root": str(ctx.paths.root), "json": ctx.json}))
        BEHAVIOURS[args.behaviour]()
        return answer()

    mod.register = register  # type: ignore[attr-defined]
    return mod


@pytest.fixture
def fake_verbs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "syscontainers.cli.fakeverbs", fake_area())
    monkeypatch.setattr(cli, "AREAS", (*cli.AREAS, "fakeverbs"))


# ---- argparse outcomes --------------------------------------------------------------------


@pytest.mark.parametrize("argv", [["--help"], ["images", "--help"], ["--version"]])
def test_help_and_version_exit_0(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "syscontainers" in out


def test_help_lists_the_verbs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for verb in ("pull", "images", "--root", "--debug", "--quiet"):
        assert verb in out


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        ([], "the following arguments are required: VERB"),
        (["--bogus", "images", "list"], "unrecognized arguments: --bogus"),
        (["images"], "required: VERB"),
        (["images", "lis"], "invalid choice: 'lis'"),  # no abbreviations
        (["images", "list", "--js"], "unrecognized arguments: --js"),
    ],
)
def test_usage_errors_exit_2(
    argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ")
    assert fragment in captured.err
    assert "hint: see 'syscontainers" in captured.err
    assert "Traceback" not in captured.err


# ---- errors from handlers -------------------------------------------------------------------


@pytest.mark.parametrize(
    "behaviour, code, err",
    [
        ("in-use", 1, 'error: image "a:1" is in use\nhint: unmount it first\n'),
        ("usage", 2, "error: bad --set value\nhint: write KEY=VALUE\n"),
        ("custom", 7, "error: custom failure\n"),
        ("interrupt", 130, "error: interrupted\n"),
        (
            "crash",
            1,
            "error: unexpected ValueError: boom\nhint: rerun with --debug and report a bug\n",
        ),
        ("pipe", 1, ""),
    ],
)
def test_handler_errors(
    fake_verbs: None, behaviour: str, code: int, err: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["fake", behaviour]) == code
    captured = capsys.readouterr()
    assert captured.err == err
    assert captured.out == ""


@pytest.mark.parametrize("behaviour", ["in-use", "crash"])
def test_debug_shows_the_traceback(
    fake_verbs: None, behaviour: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["--debug", "fake", behaviour]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback")
    assert "\nerror: " in err


def test_handler_gets_settings_from_flags(
    fake_verbs: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["--root", str(tmp_path / "r"), "fake", "ok", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"root": str(tmp_path / "r"), "json": True}


def test_bad_config_is_a_usage_error(
    fake_verbs: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("colour: blue\n")
    monkeypatch.setenv("SYSCONTAINERS_CONFIG", str(bad))
    assert cli.main(["fake", "ok"]) == 2
    err = capsys.readouterr().err
    assert f"error: {bad}: unknown setting 'colour'" in err
    assert "hint: known settings:" in err


# ---- real verbs on an empty store ---------------------------------------------------------------


def test_images_list_json_on_an_empty_root(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["--root", str(tmp_path), "images", "list", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == []
    assert captured.err == ""
    assert list(tmp_path.iterdir()) == [tmp_path / "empty-config.yaml"]  # a reader creates nothing


def test_root_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SYSCONTAINERS_ROOT", str(tmp_path))
    assert cli.main(["images", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


@pytest.mark.parametrize(
    "name, code, hint",
    [
        ("nosuch:1", 1, "hint: see 'syscontainers images list', or pull it first"),
        ("Bad Name", 2, "hint: names are lowercase"),
    ],
)
def test_real_handler_errors(
    tmp_path: Path, name: str, code: int, hint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["--root", str(tmp_path), "images", "inspect", name]) == code
    err = capsys.readouterr().err
    assert err.startswith("error: ") and repr(name) in err
    assert hint in err


# ---- output helpers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n, text",
    [
        (0, "0 B"),
        (1, "1 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (10 * 1024 + 512, "10.5 KiB"),
        (1024**2 - 1, "1.0 MiB"),  # not "1024.0 KiB"
        (1024**2, "1.0 MiB"),
        (int(1.25 * 1024**3), "1.2 GiB"),
        (1024**4, "1.0 TiB"),
        (1024**5, "1024.0 TiB"),  # the largest unit just grows
        (-2048, "-2.0 KiB"),
        (1023.7, "1.0 KiB"),  # not "1024 B"
        (512.4, "512 B"),
    ],
)
def test_human_bytes(n: float, text: str) -> None:
    assert human_bytes(n) == text


def test_json_lines_reporter_writes_valid_json() -> None:
    stream = io.StringIO()
    rep = JsonLinesReporter(stream)
    rep.emit(Event(EventKind.STEP, 'pulling "a:1"\nnow', data={"path": Path("/x"), "n": 3}))
    rep.emit(Event(EventKind.PROGRESS, task="layer 1/2", done=5, total=10))
    rep.emit(Event(EventKind.RESULT, "freed 1.0 KiB", data={"bytes": 1024}))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3  # one line per event, whatever the message holds
    docs = [json.loads(line) for line in lines]
    assert docs[0] == {"event": "step", "message": 'pulling "a:1"\nnow', "path": "/x", "n": 3}
    assert docs[1] == {
        "event": "progress",
        "message": "",
        "task": "layer 1/2",
        "done": 5,
        "total": 10,
    }
    assert docs[2] == {"event": "result", "message": "freed 1.0 KiB", "bytes": 1024}


@pytest.mark.parametrize(
    "event, quiet, expected",
    [
        (Event(EventKind.STEP, "pulling"), False, "pulling\n"),
        (Event(EventKind.STEP, "pulling"), True, ""),
        (Event(EventKind.RESULT, "freed 1 B"), False, "freed 1 B\n"),
        (Event(EventKind.WARNING, "disk low"), False, "warning: disk low\n"),
        (Event(EventKind.WARNING, "disk low"), True, "warning: disk low\n"),
        (Event(EventKind.PROGRESS, task="t", done=1, total=2), False, ""),  # no bars off a tty
        (Event(EventKind.TASK_DONE, task="t"), False, ""),
    ],
)
def test_terminal_reporter_off_a_tty(event: Event, quiet: bool, expected: str) -> None:
    stream = io.StringIO()
    TerminalReporter(stream, quiet=quiet).emit(event)
    assert stream.getvalue() == expected


@pytest.mark.parametrize(
    "json_mode, quiet, events, kind, quiet_terminal",
    [
        (False, False, False, TerminalReporter, False),
        (False, True, False, TerminalReporter, True),
        (True, False, False, TerminalReporter, True),  # stdout is kept for the JSON document
        (True, False, True, JsonLinesReporter, None),  # event verbs stream JSON lines
        (False, False, True, TerminalReporter, False),
    ],
)
def test_make_reporter(
    json_mode: bool, quiet: bool, events: bool, kind: type, quiet_terminal: bool | None
) -> None:
    rep = make_reporter(json_mode, quiet, events)
    assert type(rep) is kind
    if isinstance(rep, TerminalReporter):
        assert rep.quiet is quiet_terminal


def _verbs(parser: argparse.ArgumentParser) -> set[str]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(sub.choices)


def test_each_area_registers_exactly_the_verbs_mapped_to_it() -> None:
    """VERB_AREAS must match what the area modules register, or a verb would not load."""
    from syscontainers import cli

    seen: set[str] = set()
    for area in cli.AREAS:
        verb = next(v for v, a in cli.VERB_AREAS.items() if a == area)
        verbs = _verbs(cli.build_parser([verb]))
        assert verbs == {v for v, a in cli.VERB_AREAS.items() if a == area}, area
        seen |= verbs
    assert seen == set(cli.VERB_AREAS) == _verbs(cli.build_parser())


@pytest.mark.parametrize(
    "argv, verb",
    [
        (["--root", "/r", "images", "list"], "images"),
        (["--root=/r", "-q", "install", "x"], "install"),
        (["--debug", "list"], "list"),
        (["--root", "list"], None),  # "list" is --root's value here
        (["--help"], None),
    ],
)
def test_the_verb_is_found_after_global_options(argv: list[str], verb: str | None) -> None:
    from syscontainers.cli import _verb

    assert _verb(argv) == verb


@pytest.mark.parametrize(
    "argv",
    [
        ["install", "--name", "a/b", "img"],
        ["uninstall", ".."],
        ["rollback", "bad name"],
        ["run", "a/b", "ls"],
    ],
)
def test_bad_container_names_are_usage_errors_before_any_bus(
    tmp_path: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """No systemd here: a bad name must be refused (exit 2) before a D-Bus connection."""
    from syscontainers.cli import main

    assert main(["--root", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert "invalid container name" in err
    assert "D-Bus" not in err


DENIED_RELOAD = "systemd refused Reload: Interactive authentication required."


@pytest.mark.parametrize(
    ("error", "euid", "said"),
    [
        (
            SystemdCallError(DENIED_RELOAD, "x", cli.DENIED[1]),
            65534,
            f"syscontainers needs root for install: {DENIED_RELOAD}",
        ),
        (
            SystemdCallError(
                "systemd refused StartUnit for a.service: Access denied", None, cli.DENIED[0]
            ),
            1000,
            "syscontainers needs root for install: "
            "systemd refused StartUnit for a.service: Access denied",
        ),
        (SystemdCallError(DENIED_RELOAD, "x", cli.DENIED[1]), 0, None),  # root: systemd's own
        (
            SystemdCallError(
                "systemd refused StartUnit", None, "org.freedesktop.systemd1.NoSuchUnit"
            ),
            65534,
            None,
        ),
        (SystemdError("cannot reach systemd over D-Bus at x: refused"), 65534, None),
    ],
)
def test_a_right_systemd_refuses_a_user_is_said_as_needs_root(
    error: SysContainersError, euid: int, said: str | None
) -> None:
    mapped = cli.needs_root(error, None, "install", euid)
    if said is None:
        assert mapped is None
        return
    assert isinstance(mapped, SystemdCallError) and isinstance(error, SystemdCallError)
    assert (mapped.message, mapped.hint, mapped.error_name) == (
        said,
        cli.ROOT_HINT,
        error.error_name,
    )
    assert mapped.exit_code == error.exit_code


def test_a_permission_the_filesystem_refuses_a_user_is_said_as_needs_root() -> None:
    cause = PermissionError(13, "Permission denied", "/var/lib/x")
    mapped = cli.needs_root(FilesystemError("cannot write"), cause, "images tag", 65534)
    assert mapped is not None and mapped.hint == cli.ROOT_HINT
    assert (
        mapped.message == "syscontainers needs root for images tag: permission denied on /var/lib/x"
    )
    assert cli.needs_root(FilesystemError("cannot write"), cause, "images tag", 0) is None
