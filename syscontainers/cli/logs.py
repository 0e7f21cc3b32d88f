"""CLI verb: ``logs NAME``, the journal of a container's unit."""

from __future__ import annotations

import argparse

from syscontainers.cli.context import Context


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``logs``."""
    p = sub.add_parser(
        "logs",
        help="show the journal of a container's service",
        description="Show the journal of NAME's unit (NAME.service) with "
        "journalctl: what the container printed and what systemd said about "
        "it. Exit with journalctl's status.",
    )
    p.add_argument("name", metavar="NAME", help="the installed container")
    p.add_argument(
        "-f", "--follow", action="store_true", help="keep printing new entries until interrupted"
    )
    p.add_argument(
        "-n", "--lines", type=int, metavar="N", help="show only the last N entries (default: all)"
    )
    p.add_argument(
        "--since",
        metavar="TIME",
        help="show entries from TIME on, as journalctl takes it: "
        "'2026-12-01 10:00', '-1h', 'today'",
    )
    p.set_defaults(handler=handle_logs)


def handle_logs(ctx: Context, args: argparse.Namespace) -> int:
    """Run ``logs``."""
    from syscontainers.operations.logs import LogsRequest, show_logs

    return show_logs(ctx.paths, LogsRequest(args.name, args.lines, args.since, args.follow))
