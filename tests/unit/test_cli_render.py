"""Tests for syscontainers.cli.context.render: the one place a verb's answer is printed, as text
or as JSON, and the handlers that leave printing to it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from syscontainers.cli.context import Answer, Context, Document, Failure, Report, answer, render
from syscontainers.cli.output import make_reporter
from syscontainers.paths import Paths
from syscontainers.settings import Settings

CLI = Path(__file__).resolve().parents[2] / "syscontainers" / "cli"


def context(json_mode: bool) -> Context:
    return Context(
        Settings(),
        Paths(root=Path("/nonexistent")),
        make_reporter(json_mode, False, json_events=True),
        json=json_mode,
    )


REPORT = Report("did it", {"n": 1}, lines=["  detail"])
FAILED = Report("tried it", {"n": 2}, lines=["  never shown"], error=("it broke", "fix it"))
DOC = Document(["a line"], {"k": [1, 2]})


@pytest.mark.parametrize(
    "parts, text_out, json_out, err",
    [
        ((REPORT,), "did it\n  detail\n", [{"event": "result", "message": "did it", "n": 1}], ""),
        (
            (FAILED,),
            "",
            [{"event": "result", "message": "tried it", "n": 2}],
            "error: it broke\nhint: fix it\n",
        ),
        (
            (Report("3 gone", {"gone": 3}, lines=["gone a"], show_summary=False),),
            "gone a\n",
            [{"event": "result", "message": "3 gone", "gone": 3}],
            "",
        ),
        (
            (Failure("row b failed"), REPORT),
            "did it\n  detail\n",
            [{"event": "result", "message": "did it", "n": 1}],
            "error: row b failed\n",
        ),
        ((DOC,), "a line\n", {"k": [1, 2]}, ""),
        ((Document(["no json form"]),), "no json form\n", "no json form", ""),
        (
            (Document(["the plan"], text_only=True), REPORT),
            "the plan\ndid it\n  detail\n",
            [{"event": "result", "message": "did it", "n": 1}],
            "",
        ),
    ],
    ids=["report", "failed", "lines-only", "failure", "document", "no-json", "text-only"],
)
@pytest.mark.parametrize("json_mode", [False, True], ids=["text", "json"])
def test_render_prints_each_part_in_the_chosen_mode(
    capsys: pytest.CaptureFixture[str],
    json_mode: bool,
    parts: tuple[Report, ...],
    text_out: str,
    json_out: object,
    err: str,
) -> None:
    assert render(context(json_mode), answer(*parts, code=3)) == 3
    out, error = capsys.readouterr()
    assert error == err
    if not json_mode:
        assert out == text_out
    elif isinstance(json_out, list):
        assert [json.loads(line) for line in out.splitlines()] == json_out
    elif isinstance(json_out, str):
        assert out == json_out + "\n"
    else:
        assert json.loads(out) == json_out


def test_raw_bytes_are_printed_as_they_are(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert render(context(True), Answer((Document(raw=b"\x00{raw}\n"),))) == 0
    assert capsysbinary.readouterr().out == b"\x00{raw}\n"


def test_an_exit_status_passes_through(capsys: pytest.CaptureFixture[str]) -> None:
    assert render(context(False), 7) == 7
    assert capsys.readouterr() == ("", "")


FRAME = ("__init__.py", "context.py", "output.py")  # main, render and the reporters


@pytest.mark.parametrize("module", sorted(p.name for p in CLI.glob("*.py") if p.name not in FRAME))
def test_no_handler_prints_or_branches_on_json_or_takes_a_lock(module: str) -> None:
    text = (CLI / module).read_text()
    for pattern in (
        r"ctx\.json",
        r"args\.json",
        r"\bprint\(",
        r"ctx\.out\(",
        r"out_json",
        r"ctx\.result\(",
        r"print_error\(",
        r"\.locked\(",
        r"LockMode",
    ):
        assert not re.search(pattern, text), f"{module}: {pattern}"
