"""The man pages and the bash completion that packaging/gendocs.py generates cover the whole CLI.

The pages are generated here, as at package build time, by the system python3 with Debian's
argparse-manpage and shtab, from the parser the CLI builds. The oracle is that same parser,
walked in this process: every verb, sub-verb, option and help text must come out of `man`
(rendered by man-db and groff, with their warnings on) and every verb and option out of bash
completing a command line with the generated script. A verb or option that someone adds later
is checked the same way, with no list here to update.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from syscontainers import record, settings
from syscontainers.cli import build_parser, global_parser

REPO = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = "/usr/bin/python3"


def _has_system_generators() -> str | None:
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return f"no {SYSTEM_PYTHON}"
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import build_manpages.manpage, shtab"], capture_output=True
    )
    if probe.returncode:
        return "python3-argparse-manpage or python3-shtab missing (packaging/install-deps)"
    for tool in ("man", "bash"):
        if shutil.which(tool) is None:
            return f"no {tool}"
    return None


_MISSING = _has_system_generators()
pytestmark = pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """PARSER's verbs by name (empty for a leaf)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


Command = tuple[tuple[str, ...], argparse.ArgumentParser]


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[Command]:
    """Every verb path under PARSER with its parser: (), ("images",), ("images", "list") …"""
    yield path, parser
    for name, sub in subparsers(parser).items():
        yield from commands(sub, (*path, name))


def documented(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """PARSER's own arguments that a reader should find (not -h, not the verb slot)."""
    return [
        a
        for a in parser._actions
        if not isinstance(a, argparse._HelpAction | argparse._SubParsersAction)
        and a.help != argparse.SUPPRESS
    ]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("docs")
    env = {**os.environ, "PYTHONPATH": str(REPO), "SOURCE_DATE_EPOCH": "1700000000"}
    subprocess.run(
        [SYSTEM_PYTHON, str(REPO / "packaging" / "gendocs.py"), str(out)],
        env=env,
        check=True,
        capture_output=True,
    )
    return out


@pytest.fixture(scope="module")
def rendered(generated: Path) -> dict[str, str]:
    """Each page as `man` shows it (one long line per paragraph), by file name."""
    pages = {}
    env = {**os.environ, "MANWIDTH": "10000", "MAN_KEEP_FORMATTING": ""}
    for page in sorted((generated / "man8").iterdir()):
        run = subprocess.run(
            ["man", "--warnings", "-l", str(page)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        assert run.stderr == "", f"{page.name}: groff warns:\n{run.stderr}"
        pages[page.name] = re.sub(r"[ \t]+", " ", run.stdout)
    return pages


def words(text: str, word: str) -> bool:
    """WORD (an option or a name) occurs in TEXT as a whole word."""
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text) is not None


def one_line(text: str) -> str:
    return " ".join(text.split())


def test_one_page_per_verb_and_the_main_page_lists_them(rendered: dict[str, str]) -> None:
    verbs = subparsers(build_parser())
    assert len(verbs) >= 10
    expected = {"syscontainers.8"} | {f"syscontainers-{v}.8" for v in verbs}
    assert set(rendered) == expected
    main = rendered["syscontainers.8"]
    for verb in verbs:
        assert words(main, f"syscontainers-{verb}(8)"), verb
    for code in ("0", "1", "2", "130"):
        assert re.search(rf"^\s+{code}\s", main, re.M), f"exit status {code}"


def test_every_option_and_its_help_is_in_its_verbs_page(rendered: dict[str, str]) -> None:
    checked = 0
    for path, parser in commands(build_parser()):
        if not path:
            continue  # the global options: next test
        page = one_line(rendered[f"syscontainers-{path[0]}.8"])
        if len(path) > 1:
            assert words(page, " ".join(("syscontainers", *path))), path
        for action in documented(parser):
            names = action.option_strings or [str(action.metavar or action.dest)]
            for name in names:
                assert words(page, name), f"{name} of {' '.join(path)}"
            help_text = one_line(str(action.help) % {"default": action.default, "prog": ""})
            assert help_text in page, f"help of {names[0]} in {' '.join(path)}"
            checked += 1
    assert checked > 50


def test_global_options_are_in_the_main_page(rendered: dict[str, str]) -> None:
    main = one_line(rendered["syscontainers.8"])
    actions = documented(global_parser())
    assert {"--root", "--debug", "--quiet"} <= {s for a in actions for s in a.option_strings}
    for action in actions:
        for name in action.option_strings:
            assert words(main, name), name
        assert one_line(str(action.help)) in main, action.option_strings


def test_the_main_page_lists_every_setting_with_its_variable(rendered: dict[str, str]) -> None:
    main = one_line(rendered["syscontainers.8"])
    assert str(settings.SYSTEM_CONFIG) in main
    for field in record.fields(settings.Settings):
        key, env = field.name.replace("_", "-"), f"$SYSCONTAINERS_{field.name.upper()}"
        assert re.search(rf"(?<![\w-]){re.escape(key)} {re.escape(env)}; default: ", main), key


def _complete(
    script: Path, lines: list[list[str]], env: dict[str, str] | None = None
) -> list[set[str]]:
    """What bash offers, through the generated script, at the end of each command line."""
    body = [f"source {script}"]
    for line in lines:
        quoted = " ".join(f"'{w}'" for w in line)
        body += [
            f"COMP_WORDS=({quoted}); COMP_CWORD={len(line) - 1}",
            "_shtab_syscontainers",
            'printf "%s " "${COMPREPLY[@]}"; echo',
        ]
    run = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", "\n".join(body)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
    )
    assert run.stderr == ""
    return [set(out.split()) for out in run.stdout.splitlines()]


def test_bash_completes_every_verb_and_option(generated: Path) -> None:
    script = generated / "bash-completion" / "syscontainers"
    assert re.search(
        r"^complete .*-F _shtab_syscontainers syscontainers$", script.read_text(), re.M
    )
    cases = list(commands(build_parser()))
    lines = []
    for path, _ in cases:
        lines += [["syscontainers", *path, "-"], ["syscontainers", *path, ""]]
    offered = iter(_complete(script, lines))
    for path, parser in cases:
        options, names = next(offered), next(offered)
        expected = {s for a in parser._actions for s in a.option_strings}
        assert options == expected, " ".join(path)
        verbs = set(subparsers(parser))
        if verbs:
            assert names == verbs, " ".join(path)


def test_bash_completes_paths_and_installed_containers(generated: Path, tmp_path: Path) -> None:
    script = generated / "bash-completion" / "syscontainers"
    root = tmp_path / "root"
    (root / "containers" / "web.0").mkdir(parents=True)
    (root / "containers" / "db.1").mkdir()
    (root / "containers" / "web").symlink_to("web.0")
    (root / "containers" / "db").symlink_to("db.1")
    (tmp_path / "alpha").mkdir()
    (tmp_path / "afile").write_text("")
    a = f"{tmp_path}/a"
    offered = _complete(
        script,
        [
            ["syscontainers", "umount", a],
            ["syscontainers", "install", "--policy", f"{tmp_path}/af"],
            ["syscontainers", "checkout", "IMAGE", a],
            ["syscontainers", "--root", str(root), "uninstall", ""],
            ["syscontainers", "rollback", "w"],
            ["syscontainers", "install", "--name", ""],
        ],
        env={"SYSCONTAINERS_ROOT": str(root)},
    )
    assert offered[0] == {f"{tmp_path}/alpha"}  # directories only
    assert offered[1] == {f"{tmp_path}/afile"}
    assert offered[2] == {f"{tmp_path}/alpha"}
    assert offered[3] == {"web", "db"}  # the containers, not their slots
    assert offered[4] == {"web"}
    assert offered[5] == set()  # a new name: nothing to offer
