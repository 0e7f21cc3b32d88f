"""Man pages and bash completion, generated from the CLI's argparse definitions.

The parser in syscontainers/cli is the one source of truth: argparse-manpage formats each
page's DESCRIPTION and OPTIONS and shtab writes the completion script, so a new verb or
option shows up at the next package build. The packages run this at build time with the
distribution's python3-argparse-manpage and python3-shtab::

    python3 packaging/gendocs.py OUTDIR

which writes, under OUTDIR:

    man8/syscontainers.8            global options, the verbs, the settings, exit status
    man8/syscontainers-VERB.8       one page per verb (``images`` holds its sub-verbs)
    bash-completion/syscontainers   for /usr/share/bash-completion/completions/

SOURCE_DATE_EPOCH, when set (dpkg-buildpackage and rpmbuild set it), dates the pages, so
two builds of one version give the same files.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from pathlib import Path

import shtab
from build_manpages.manpage import Manpage

from syscontainers import __version__, settings, settings_table
from syscontainers.cli import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    build_parser,
    global_parser,
)

SECTION = "8"
PROG = "syscontainers"
EXIT_STATUS = (
    (EXIT_OK, "success"),
    (EXIT_FAILED, "the operation failed"),
    (EXIT_USAGE, "bad usage or invalid input"),
    (EXIT_INTERRUPTED, "interrupted"),
)
SEE_ALSO = (
    ("systemd.unit", "5"),
    ("systemd-tmpfiles", "8"),
    ("runc", "8"),
    ("crun", "1"),
    ("containers-policy.json", "5"),
    ("containers-registries.conf", "5"),
    ("containers-auth.json", "5"),
)


def esc(text: str) -> str:
    """TEXT as roff: backslashes and hyphens escaped, no line read as a request."""
    text = text.replace("\\", "\\\\").replace("-", "\\-")
    return "\n".join("\\&" + line if line[:1] in (".", "'") else line for line in text.splitlines())


def verbs(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """Each verb of PARSER: its name, its one-line help and its parser, in --help order."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            return [(name, helps.get(name, ""), sub) for name, sub in action.choices.items()]
    return []


def _date() -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = (
        datetime.datetime.fromtimestamp(int(epoch), datetime.UTC)
        if epoch
        else datetime.datetime.now(datetime.UTC)
    )
    return when.strftime("%Y-%m-%d")


def _synopsis(parser: argparse.ArgumentParser) -> list[str]:
    words = parser.format_usage().split()[1:]  # drop "usage:"
    prog = parser.prog.split()
    return [".SH SYNOPSIS", ".B " + esc(" ".join(prog)), esc(" ".join(words[len(prog) :]))]


def _body(parser: argparse.ArgumentParser) -> list[str]:
    """What argparse-manpage writes after its two SYNOPSIS lines: DESCRIPTION, OPTIONS and
    the sub-verbs. Version 4 (Fedora's) lists the positional arguments of a parser without
    a description under no heading: they get one."""
    lines = str(Manpage(parser)).splitlines()
    start = lines.index(".SH SYNOPSIS") + 3
    body = [line for line in lines[start:] if line.strip()]
    if body and body[0].split(" ", 1)[0] != ".SH":
        body.insert(0, ".SH ARGUMENTS")
    return body


def _see_also(refs: list[tuple[str, str]]) -> list[str]:
    items = [f".BR {esc(name)} ({section})" for name, section in refs]
    return [".SH SEE ALSO", *(item + "," for item in items[:-1]), items[-1]]


def page(name: str, summary: str, parts: list[str], refs: list[tuple[str, str]]) -> str:
    """One man page: our header and NAME, then PARTS, then SEE ALSO REFS."""
    header = (
        f'.TH {esc(name.upper())} {SECTION} "{_date()}" "{PROG} {__version__}"'
        ' "System Administration"'
    )
    lines = [header, ".SH NAME", f"{esc(name)} \\- {esc(summary)}", *parts, *_see_also(refs)]
    return "\n".join(lines) + "\n"


def _configuration() -> list[str]:
    """The settings, their environment variables and defaults, from the settings table."""
    user = settings.user_config_path({"HOME": "~"})
    env = f"${settings_table.ENV_PREFIX}"
    intro = (
        f"Settings are layered, lowest first: the defaults below, {settings.SYSTEM_CONFIG}, "
        f"{user} ($XDG_CONFIG_HOME), the environment variables {env}SETTING, then the "
        f"command line. {env}CONFIG names one config file to read instead of the two."
    )
    lines = [".SH CONFIGURATION", esc(intro)]
    for setting in settings_table.TABLE:
        default = setting.default
        shown = (
            "none"
            if default is None
            else str(default).lower()
            if isinstance(default, bool)
            else str(default)
        )
        lines += [
            ".TP",
            f".B {esc(setting.name.replace('_', '-'))}",
            esc(f"${setting.env}; default: {shown}"),
        ]
    return lines


def main_page(parser: argparse.ArgumentParser) -> str:
    """syscontainers(8): the global options, the verbs, the settings, the exit status."""
    commands = [".SH COMMANDS"]
    for name, help_text, _ in verbs(parser):
        commands += [".TP", f".BR {PROG}\\-{esc(name)} ({SECTION})", esc(help_text)]
    status = [".SH EXIT STATUS"]
    for code, meaning in EXIT_STATUS:
        status += [".TP", f".B {code}", esc(meaning)]
    summary = (parser.description or PROG).rstrip(".")
    parts = [*_synopsis(parser), *_body(global_parser()), *commands, *_configuration(), *status]
    return page(PROG, summary[:1].lower() + summary[1:], parts, list(SEE_ALSO))


def verb_page(name: str, help_text: str, parser: argparse.ArgumentParser) -> str:
    """syscontainers-VERB(8): the verb's synopsis, description and options."""
    parts = [*_synopsis(parser), *_body(parser)]
    return page(f"{PROG}-{name}", help_text, parts, [(PROG, SECTION)])


# shtab 1.5.5 (Debian 12's) reads only the first element of a choices array, so
# `syscontainers <TAB>` offered "pull" alone (tqdm/shtab#86; later releases read them all).
# Its compgen splits the choices on newlines: hand it all of them, one a line.
_SHTAB_155_CHOICES = (
    'local current_action_choices_var="${current_action}_choices"\n'
    '  current_action_choices="${!current_action_choices_var}"\n'
)
_ALL_CHOICES = (
    'local current_action_choices_var="${current_action}_choices[@]"\n'
    "  current_action_choices=$(printf '%s\\n' \"${!current_action_choices_var}\")\n"
)


# What bash offers for an argument, by the metavar argparse shows for it: paths, or the
# installed containers for a positional NAME (the symlinks ROOT/containers/NAME, under the
# --root on the command line, $SYSCONTAINERS_ROOT or the default root).
PATH_METAVARS = {
    "DIR": shtab.DIRECTORY,
    "DEST": shtab.DIRECTORY,
    "CERT_DIR": shtab.DIRECTORY,
    "ROOT": shtab.DIRECTORY,
    "FILE": shtab.FILE,
    "PATH": shtab.FILE,
    "AUTHFILE": shtab.FILE,
}
CONTAINERS = {"bash": "_syscontainers_containers"}
CONTAINERS_BASH = r"""
_syscontainers_containers() {
  local root="${SYSCONTAINERS_ROOT:-/var/lib/syscontainers}" i path
  for ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do
    [ "${COMP_WORDS[i]}" = --root ] && root="${COMP_WORDS[i + 1]}"
  done
  for path in "$root"/containers/"$1"*; do
    [ -L "$path" ] && echo "${path##*/}"
  done
}
"""


def parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """PARSER and the parsers of all its verbs and sub-verbs."""
    return [parser, *(p for _, _, sub in verbs(parser) for p in parsers(sub))]


def _mark_completers(parser: argparse.ArgumentParser) -> None:
    for each in parsers(parser):
        for action in each._actions:
            shown = action.metavar or (
                action.dest.upper() if action.option_strings else action.dest
            )
            if shown in PATH_METAVARS:
                action.complete = PATH_METAVARS[shown]  # type: ignore[attr-defined]
            elif shown == "NAME" and not action.option_strings:
                action.complete = CONTAINERS  # type: ignore[attr-defined]


def completion(parser: argparse.ArgumentParser) -> str:
    """The bash completion script."""
    _mark_completers(parser)
    script = str(shtab.complete(parser, shell="bash", preamble=CONTAINERS_BASH))
    return script.rstrip("\n").replace(_SHTAB_155_CHOICES, _ALL_CHOICES) + "\n"


def generate(out: Path) -> list[Path]:
    """Write every man page and the completion script under OUT; return their paths."""
    # argparse wraps help at the terminal's width and argparse-manpage keeps those breaks
    # as .br: with no limit, each help text is one line that man fills to its own width.
    os.environ["COLUMNS"] = "100000"
    parser = build_parser()
    files = {
        Path("man8", f"{PROG}.8"): main_page(parser),
        Path("bash-completion", PROG): completion(parser),
    }
    for name, help_text, sub in verbs(parser):
        files[Path("man8", f"{PROG}-{name}.8")] = verb_page(name, help_text, sub)
    written = []
    for rel, text in files.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} OUTDIR")
    for path in generate(Path(sys.argv[1])):
        print(path)
