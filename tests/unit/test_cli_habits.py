"""CLI habits: every verb describes itself, listing verbs take -q, every --json key is snake_case.

The parser is the whole one that packaging/gendocs.py turns into the man pages; the listing and
JSON checks run the real verbs against a real store in tmp_path.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from syscontainers import cli
from syscontainers.cli import build_parser
from tests.imagebuild import layer_tar, write_oci_layout

SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
# Keys whose values are maps of the image's or the host's own names (labels, paths, variables).
DATA_MAPS = {"labels", "config", "with_default"}


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*path, name))


def test_every_verb_has_a_description_and_every_option_help() -> None:
    seen = 0
    for path, parser in _commands(build_parser()):
        assert (parser.description or "").strip(), f"no description for {' '.join(path)}"
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction) or action.dest == "help":
                continue
            assert (action.help or "").strip(), (
                f"{action.option_strings or action.dest} "
                f"of {' '.join(path) or 'the global options'} has no help"
            )
        seen += 1
    assert seen > 20


def test_every_verbs_help_shows_its_description(capsys: pytest.CaptureFixture[str]) -> None:
    for path, parser in _commands(build_parser()):
        if not path:
            continue
        with pytest.raises(SystemExit) as exit_:
            cli.main([*path, "--help"])
        assert exit_.value.code == 0
        out = " ".join(capsys.readouterr().out.split())
        assert " ".join(str(parser.description).split()) in out, path


def snake_keys(value: Any, where: str = "") -> list[str]:
    """The keys in VALUE (recursively) that are not snake_case, with where they are."""
    bad = []
    if isinstance(value, dict):
        for key, item in value.items():
            if not SNAKE.match(key):
                bad.append(f"{where}.{key}")
            if key not in DATA_MAPS:
                bad += snake_keys(item, f"{where}.{key}")
    elif isinstance(value, list):
        for item in value:
            bad += snake_keys(item, f"{where}[]")
    return bad


@pytest.fixture
def store_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """A store with two images, three tags: app:1 = app:latest, and other:1."""
    root = ["--root", str(tmp_path / "root"), "-q"]
    one = write_oci_layout(tmp_path / "one", [layer_tar({"etc/motd": b"1\n"})], "v1")
    two = write_oci_layout(tmp_path / "two", [layer_tar({"etc/motd": b"2\n"})], "v1")
    assert cli.main([*root, "pull", f"oci:{one}:v1", "--name", "app:1"]) == 0
    assert cli.main([*root, "pull", f"oci:{two}:v1", "--name", "other:1"]) == 0
    assert cli.main([*root, "images", "tag", "app:1", "app:latest"]) == 0
    capsys.readouterr()
    return root


def test_images_list_q_prints_each_image_id_once(
    store_root: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main([*store_root, "images", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 3
    ids = {r["image_id"].removeprefix("sha256:")[:12] for r in rows}
    assert len(ids) == 2
    for argv in (["images", "list", "-q"], ["images", "list", "--quiet"]):
        assert cli.main([*store_root, *argv]) == 0
        out = capsys.readouterr().out.splitlines()
        assert sorted(out) == sorted(ids), argv
    # The global -q (no progress) does not make the listing terse: only the verb's own does.
    assert cli.main([*store_root, "images", "list"]) == 0
    assert capsys.readouterr().out.startswith("NAME ")


def test_list_q_and_json_together_are_a_usage_error(
    store_root: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (["images", "list"], ["list"], ["hostfiles", "list"]):
        assert cli.main([*store_root, *argv, "-q", "--json"]) == 2, argv
        assert "not allowed with argument" in capsys.readouterr().err


def test_every_json_document_and_event_has_snake_case_keys(
    store_root: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = []
    for argv in (
        ["images", "list", "--json", "--all"],
        ["images", "inspect", "app:1", "--json"],
        ["images", "verify", "--json"],
        ["images", "prune", "--dry-run", "--json"],
        ["hostfiles", "list", "--json"],
        ["hostfiles", "verify", "--json"],
    ):
        assert cli.main([*store_root, *argv]) == 0, argv
        docs.append(json.loads(capsys.readouterr().out))
    three = write_oci_layout(tmp_path / "three", [layer_tar({"a": b"3\n"})], "v1")
    for argv in (
        ["pull", f"oci:{three}:v1", "--name", "x:1", "--json"],
        ["checkout", "x:1", str(tmp_path / "co"), "--json"],
        ["images", "tag", "x:1", "x:2", "--json"],
        ["images", "delete", "x:2", "--json"],
    ):
        assert cli.main([*store_root, *argv]) == 0, argv
        docs += [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {d.get("event") for d in docs if isinstance(d, dict)} >= {"step", "result"}
    assert [k for d in docs for k in snake_keys(d)] == []
    assert snake_keys({"LayersData": [{"MIMEType": 1}]}) == [
        ".LayersData",
        ".LayersData[].MIMEType",
    ]
