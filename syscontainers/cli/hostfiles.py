"""CLI verbs: ``hostfiles owner|list|verify``, the host-file database read (rpm -qf, -ql, -V)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from syscontainers.cli.context import Answer, Context, Document, answer
from syscontainers.cli.output import add_list_options

if TYPE_CHECKING:
    from syscontainers.operations.hostquery import HostPath

# Operations are imported inside the handlers: building the parser stays cheap.


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``hostfiles`` and its sub-verbs."""
    top = sub.add_parser(
        "hostfiles",
        help="which containers own host files and directories",
        description="Query the host-file database: the files and directories "
        "containers installed from /exports/hostfs, and who owns them.",
    )
    verbs = top.add_subparsers(dest="hostfiles_verb", metavar="VERB", parser_class=type(top))
    verbs.required = True

    p = verbs.add_parser(
        "owner",
        help="name the containers that own host paths (like rpm -qf)",
        description="Name the containers that own each PATH; exit 1 if one has no owner.",
    )
    p.add_argument("paths", metavar="PATH", nargs="+", help="absolute host paths")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    p.set_defaults(handler=handle_owner)

    p = verbs.add_parser(
        "list",
        help="list the host paths containers own (like rpm -ql)",
        description="List the host files and directories that the NAMEd "
        "containers (default: all) own.",
    )
    p.add_argument("names", metavar="NAME", nargs="*", help="containers (default: all)")
    add_list_options(p, "the paths", "list")
    p.set_defaults(handler=handle_list)

    p = verbs.add_parser(
        "verify",
        help="check host files against the database (like rpm -V)",
        description="Report every owned host path that is missing, modified "
        "or replaced; exit 1 if there is one.",
    )
    p.add_argument("names", metavar="NAME", nargs="*", help="containers (default: all)")
    p.add_argument("--json", action="store_true", help="print every path and its status")
    p.set_defaults(handler=handle_verify)


def _describe(row: HostPath) -> str:
    origin = "made by syscontainers" if row.created else "was on the host before"
    text = f"{row.path}: {row.kind.value} owned by {', '.join(row.owners)} ({origin})"
    if row.beside:
        text += f"; the host keeps its own, theirs is {row.beside}"
    return text


def handle_owner(ctx: Context, args: argparse.Namespace) -> Answer:
    """Run ``hostfiles owner``: exit 1 if a path has no owner."""
    from syscontainers.operations.hostquery import owners

    found = owners(ctx.store(), ctx.paths, args.paths)
    lines = [
        _describe(row) if row else f"{path} is not owned by any container"
        for path, row in found.items()
    ]
    doc = {p: (row.to_json() if row else None) for p, row in found.items()}
    return answer(Document(lines, doc), code=0 if all(found.values()) else 1)


def handle_list(ctx: Context, args: argparse.Namespace) -> Answer:
    """Run ``hostfiles list``."""
    from syscontainers.operations.hostquery import listing

    rows = listing(ctx.store(), ctx.paths, args.names)
    lines = [row.path if args.ids_only else _describe(row) for row in rows]
    return answer(Document(lines, [r.to_json() for r in rows]))


def handle_verify(ctx: Context, args: argparse.Namespace) -> Answer:
    """Run ``hostfiles verify``: exit 1 if anything is not as installed."""
    from syscontainers.operations.hostquery import Status, verify

    rows = verify(ctx.store(), ctx.paths, args.names)
    bad = [r for r in rows if r.status is not Status.OK]
    lines = [
        f"{r.status.value if r.status else '?':<9} {r.beside or r.path} ({', '.join(r.owners)})"
        for r in bad
    ]
    lines.append(f"checked {len(rows)} host path(s): {len(bad) or 'no'} problem(s)")
    doc = {"checked": len(rows), "problems": len(bad), "paths": [r.to_json() for r in rows]}
    return answer(Document(lines, doc), code=1 if bad else 0)
