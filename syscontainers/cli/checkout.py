"""CLI verbs: ``checkout``, ``mount`` and ``umount``."""

from __future__ import annotations

import argparse
from pathlib import Path

from syscontainers.cli.context import Context


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the verbs that materialise images."""
    p = sub.add_parser(
        "checkout",
        help="materialise an image's root filesystem as a hardlink tree",
        description="Create DEST (which must not exist) holding the image's files, hardlinked "
        "from the store. On another filesystem it copies (reflinks where possible).",
    )
    p.add_argument("image", metavar="IMAGE", help="name[:tag] or image id")
    p.add_argument("dest", metavar="DEST", type=Path, help="the directory to create")
    p.set_defaults(handler=handle_checkout)

    p = sub.add_parser("mount", help="mount an image read-only, for scanning without running it")
    p.add_argument("image", metavar="IMAGE", help="name[:tag] or image id")
    p.add_argument("target", metavar="DIR", type=Path, help="an existing empty directory")
    p.set_defaults(handler=handle_mount)

    p = sub.add_parser("umount", help="unmount a directory that 'mount' mounted")
    p.add_argument("target", metavar="DIR", type=Path, help="the mounted directory")
    p.set_defaults(handler=handle_umount)


def handle_checkout(ctx: Context, args: argparse.Namespace) -> int:
    """Run ``checkout``."""
    from syscontainers.operations import materialize

    result = materialize.checkout_image(ctx.store(), args.image, args.dest, ctx.reporter)
    how = "copied" if result.copied else "hardlinked"
    ctx.out(f"checked out {args.image} to {args.dest}: {result.files} files {how}, "
            f"{result.dirs} directories, {result.links} symlinks")
    return 0


def handle_mount(ctx: Context, args: argparse.Namespace) -> int:
    """Run ``mount``."""
    from syscontainers.operations import materialize

    digest = materialize.mount(ctx.store(), ctx.paths.mounts, args.image, args.target, ctx.reporter)
    ctx.out(f"mounted {args.image} ({digest}) read-only at {args.target}")
    return 0


def handle_umount(ctx: Context, args: argparse.Namespace) -> int:
    """Run ``umount``."""
    from syscontainers.operations import materialize

    digest = materialize.umount(ctx.store(), ctx.paths.mounts, args.target)
    ctx.out(f"unmounted {args.target} ({digest})")
    return 0
