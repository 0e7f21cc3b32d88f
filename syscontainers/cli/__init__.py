"""The command line: global options, the verb table, error and exit-code handling.

Each area lives in its own module (``cli/images.py``, ``cli/pull.py`` …) with a
``register(subparsers)`` function that adds its verbs; a verb's parser carries
``handler=FUNC`` where ``FUNC(ctx, args) -> int``. Handlers turn the argparse
namespace into plain values before calling the library.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from importlib import import_module
from typing import Any

from syscontainers import __version__
from syscontainers.cli.context import Context
from syscontainers.cli.output import make_reporter, print_error
from syscontainers.errors import SysContainersError, UsageError
from syscontainers.paths import Paths
from syscontainers.settings import load

# Modules that add verbs; each has register(subparsers).
AREAS = ("pull", "images", "checkout", "registry", "containers")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Subparsers do not inherit allow_abbrev: set it for every parser here.
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message, hint=f"see '{self.prog} --help'")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every area's verbs."""
    parser = _Parser(
        prog="syscontainers",
        description="Install OCI images as systemd system containers, with no daemon.",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--root",
        help="the store root (default /var/lib/syscontainers, or $SYSCONTAINERS_ROOT)",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="print no progress, only results and errors"
    )
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    sub.required = True
    for area in AREAS:
        import_module(f"syscontainers.cli.{area}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ARGV and return the exit code (callable from tests)."""
    args: argparse.Namespace | None = None
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        args = build_parser().parse_args(argv)
        settings = load(os.environ, {"root": args.root})
        json_out = bool(getattr(args, "json", False))
        ctx = Context(
            settings=settings,
            paths=Paths(root=settings.root),
            reporter=make_reporter(json_out, args.quiet, getattr(args, "json_events", False)),
            json=json_out,
        )
        return int(args.handler(ctx, args))
    except KeyboardInterrupt:
        print_error("interrupted", None)
        return EXIT_INTERRUPTED
    except SysContainersError as e:
        if debug:
            traceback.print_exc()
        print_error(e.message, e.hint)
        return e.exit_code
    except BrokenPipeError:
        return EXIT_FAILED
    except Exception as e:  # noqa: BLE001 - the last line of defence
        if debug:
            traceback.print_exc()
        print_error(f"unexpected {type(e).__name__}: {e}", "rerun with --debug and report a bug")
        return EXIT_FAILED


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
