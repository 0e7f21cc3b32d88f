"""The command line: global options, the verb table, error and exit-code handling.

Each area lives in its own module (``cli/images.py``, ``cli/pull.py`` …) with a
``register(subparsers)`` function that adds its verbs; a verb's parser carries
``handler=FUNC`` where ``FUNC(ctx, args) -> Answer``. Handlers turn the argparse
namespace into plain values before calling the library, and return what it did as an
``Answer`` that ``cli.context.render`` prints as text or, with --json, as JSON.

Start-up time is part of every command (a checkout is a few tens of milliseconds of
work): this module imports only what parsing needs, and loads the rest (settings,
the store, the reporters) when a verb runs; ``--version`` loads no verb at all.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from collections.abc import Sequence
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from syscontainers import __version__
from syscontainers.errors import (
    FilesystemError,
    SysContainersError,
    SystemdCallError,
    UsageError,
)
from syscontainers.settings_table import ROOT, add_flag, given_flags

if TYPE_CHECKING:
    from syscontainers.paths import Paths

# The module (cli/AREA.py, with register(subparsers)) that adds each verb. A command
# imports only its own area; --help and unknown verbs load them all.
VERB_AREAS = {
    "pull": "pull",
    "images": "images",
    "checkout": "checkout",
    "mount": "checkout",
    "umount": "checkout",
    "login": "registry",
    "logout": "registry",
    "inspect": "registry",
    "install": "containers",
    "uninstall": "containers",
    "list": "containers",
    "update": "containers",
    "rollback": "containers",
    "auto-update": "autoupdate",
    "run": "containers",
    "logs": "logs",
    "hostfiles": "hostfiles",
    "apply": "apply",
}
AREAS = tuple(dict.fromkeys(VERB_AREAS.values()))
# The verbs that can work on an offline root (--sysroot): the others run or mount things.
SYSROOT_VERBS = (
    "pull",
    "images",
    "install",
    "uninstall",
    "update",
    "rollback",
    "list",
    "hostfiles",
    "apply",
)

# The namespace attributes that hold a verb and its sub-verb (images list, hostfiles owner).
VERB_NAMES = ("verb", "images_verb", "hostfiles_verb")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _help_width() -> int:
    """The width argparse gets from shutil.get_terminal_size (COLUMNS, else the terminal,
    else 80), less its margin of 2."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return (columns or 80) - 2


class _Formatter(argparse.HelpFormatter):
    """argparse's formatter, given its width: left to itself it imports shutil (with bz2 and
    lzma, 1.5 ms of every start) for the terminal's size, at every add_argument."""

    def __init__(self, prog: str, **kwargs: Any) -> None:
        kwargs.setdefault("width", _help_width())
        super().__init__(prog, **kwargs)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Subparsers do not inherit allow_abbrev or formatter_class: set them for every parser.
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message, hint=f"see '{self.prog} --help'")


def _verb(argv: Sequence[str]) -> str | None:
    """The verb in ARGV: the first word that is neither an option nor --root's value."""
    words = iter(argv)
    for word in words:
        if word in ("--root", "--sysroot"):
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def global_parser() -> argparse.ArgumentParser:
    """The parser of the global options alone, without the verbs (for the man pages)."""
    parser = _Parser(
        prog="syscontainers",
        description="Install OCI images as systemd system containers, with no daemon.",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_flag(parser, ROOT, f"{ROOT.help} (default {ROOT.default}, or ${ROOT.env})")
    parser.add_argument(
        "--sysroot",
        metavar="DIR",
        help="work on the offline root filesystem mounted at DIR (an image being built): "
        "its store, units and host files, enabling by symlinks, starting nothing; for "
        + ", ".join(SYSROOT_VERBS),
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print no progress, only results and errors (a listing verb's own -q, after "
        "the verb, prints ids or names only)",
    )
    return parser


def _asks_help(argv: Sequence[str]) -> bool:
    """Whether ARGV may ask for help (-h, --help, or -h among joined short options)."""
    return any(w == "--help" or (w[:1] == "-" and w[1:2] != "-" and "h" in w) for w in argv)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser: with ARGV, only the area of its verb (none when ARGV has no verb
    and asks no help: --version, or a usage error that names no verb); else every area (the
    whole parser, which packaging/gendocs.py turns into the man pages and completion)."""
    verb = _verb(argv) if argv is not None else None
    if verb in VERB_AREAS:
        areas: tuple[str, ...] = (VERB_AREAS[verb],)
    elif argv is not None and verb is None and not _asks_help(argv):
        areas = ()
    else:
        areas = AREAS
    parser = global_parser()
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    sub.required = True
    for area in areas:
        import_module(f"syscontainers.cli.{area}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ARGV and return the exit code (callable from tests)."""
    args: argparse.Namespace | None = None
    root: Path | None = None  # where a write most likely failed, when an OSError names none
    words = list(argv) if argv is not None else sys.argv[1:]
    debug = "--debug" in words
    try:
        args = build_parser(words).parse_args(words)
        # Imported only now that a verb runs: --version and usage errors need none of them.
        from syscontainers.cli.context import Context, render
        from syscontainers.cli.output import make_reporter
        from syscontainers.settings import load

        settings = load(os.environ, given_flags(args))
        root = settings.root
        json_out = bool(getattr(args, "json", False))
        ctx = Context(
            settings=settings,
            paths=_paths(args, settings.root),
            reporter=make_reporter(json_out, args.quiet, getattr(args, "json_events", False)),
            json=json_out,
        )
        return render(ctx, args.handler(ctx, args))
    except KeyboardInterrupt:
        from syscontainers.cli.output import print_error

        print_error("interrupted", None)
        return EXIT_INTERRUPTED
    except SysContainersError as e:
        if debug:
            _print_traceback()
        e = _needs_root(e, e.__cause__, args, words) or e
        _print_error(e)
        return e.exit_code
    except BrokenPipeError:
        return EXIT_FAILED
    except OSError as e:  # a full disk, a read-only one, ...: where no operation said so itself
        from syscontainers.fsutil import host_error

        path = Path(os.fsdecode(e.filename)) if e.filename else root or Path.cwd()
        error = host_error(e, path, f"syscontainers {_verb(words)}", "run the command again")
        if error is None:
            return _unexpected(e, debug)
        if debug:
            _print_traceback()
        said = _needs_root(error, e, args, words) or error
        _print_error(said)
        return said.exit_code
    except Exception as e:  # noqa: BLE001 - the last line of defence
        return _unexpected(e, debug)


def _paths(args: argparse.Namespace, root: Path) -> Paths:
    """The host's paths, or with --sysroot those of the offline root there."""
    from syscontainers.paths import Paths

    if args.sysroot is None:
        return Paths(root=root)
    sysroot = Path(os.path.abspath(args.sysroot))
    if args.verb not in SYSROOT_VERBS:
        raise UsageError(
            f"{args.verb} cannot work on an offline root (--sysroot)",
            hint=f"--sysroot works with {', '.join(SYSROOT_VERBS)}",
        )
    if not sysroot.is_dir():
        raise UsageError(
            f"--sysroot {args.sysroot}: no such directory",
            hint="give the directory the root filesystem is mounted at",
        )
    if not root.is_absolute():
        raise UsageError(
            f"the store root {root} is not an absolute path",
            hint="with --sysroot, --root is the store's path as that root sees it",
        )
    return Paths.in_sysroot(sysroot, root)


# D-Bus error names with which systemd (or polkit, for it) refuses a caller its rights.
DENIED = (
    "org.freedesktop.DBus.Error.AccessDenied",
    "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired",
)
ROOT_HINT = (
    "run it as root (e.g. with sudo); as another user, only the read-only verbs work, "
    "and only on a store that user may read (--root DIR)"
)


def _needs_root(
    error: SysContainersError,
    cause: BaseException | None,
    args: argparse.Namespace | None,
    words: list[str],
) -> SysContainersError | None:
    """ERROR said as "needs root" when it is a refusal to a user other than root."""
    verb = (
        " ".join(filter(None, (getattr(args, name, None) for name in VERB_NAMES)))
        or _verb(words)
        or "this"
    )
    return needs_root(error, cause, verb, os.geteuid())


def needs_root(
    error: SysContainersError, cause: BaseException | None, verb: str, euid: int
) -> SysContainersError | None:
    """ERROR as "syscontainers needs root for VERB: ..." when it is a refusal to EUID, not
    root: a permission the filesystem refused (CAUSE), or a right systemd refused over
    D-Bus, whose own text is kept after the colon."""
    if euid == 0:
        return None
    if isinstance(error, SystemdCallError) and error.error_name in DENIED:
        return SystemdCallError(
            f"syscontainers needs root for {verb}: {error.message}", ROOT_HINT, error.error_name
        )
    if not isinstance(error, FilesystemError):
        return None
    if not isinstance(cause, OSError) or cause.errno not in (errno.EACCES, errno.EPERM):
        return None
    what = (
        f"permission denied on {os.fsdecode(cause.filename)}" if cause.filename else error.message
    )
    return FilesystemError(f"syscontainers needs root for {verb}: {what}", hint=ROOT_HINT)


def _print_error(e: SysContainersError) -> None:
    from syscontainers.cli.output import print_error

    print_error(e.message, e.hint)


def _unexpected(e: Exception, debug: bool) -> int:
    from syscontainers.cli.output import print_error

    if debug:
        _print_traceback()
    print_error(f"unexpected {type(e).__name__}: {e}", "rerun with --debug and report a bug")
    return EXIT_FAILED


def _print_traceback() -> None:
    import traceback  # only with --debug: not worth its import at every start

    traceback.print_exc()


def run() -> NoReturn:
    """Console-script entry point."""
    try:
        code = main()
    except SystemExit as e:  # argparse's --help and --version
        if e.code is not None and not isinstance(e.code, int):
            raise
        code = e.code or 0
    leave(code)


def leave(code: int) -> NoReturn:
    """Exit with CODE without the interpreter's teardown, which frees every object and module
    one by one: 3-9 ms, more than many verbs' own work (mypy leaves the same way). The
    standard streams are flushed and the atexit handlers run, as at a normal exit; with
    another thread still running (none should be), or a stream that cannot be flushed (a
    closed pipe), the exit is the normal one, which waits for the thread or reports."""
    import atexit

    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        sys.exit(code)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        sys.exit(code)
    atexit._run_exitfuncs()
    os._exit(code)
