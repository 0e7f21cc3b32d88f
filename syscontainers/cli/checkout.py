"""CLI verbs: ``checkout``, ``mount`` and ``umount``."""

from __future__ import annotations

import argparse
from pathlib import Path

from syscontainers.cli.context import Answer, Context, Report, answer
from syscontainers.cli.output import add_json_option


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
    add_json_option(p)
    p.set_defaults(handler=handle_checkout)

    p = sub.add_parser(
        "mount",
        help="mount an image read-only, for scanning without running it",
        description="Bind-mount a checkout of IMAGE read-only (nosuid, nodev, "
        "noexec) at DIR, to scan its files without running it; the image "
        "stays pinned until umount.",
    )
    p.add_argument("image", metavar="IMAGE", help="name[:tag] or image id")
    p.add_argument("target", metavar="DIR", type=Path, help="an existing empty directory")
    add_json_option(p)
    p.set_defaults(handler=handle_mount)

    p = sub.add_parser(
        "umount",
        help="unmount a directory that 'mount' mounted",
        description="Unmount DIR, which 'syscontainers mount' mounted, and unpin its image.",
    )
    p.add_argument("target", metavar="DIR", type=Path, help="the mounted directory")
    add_json_option(p)
    p.set_defaults(handler=handle_umount)


def handle_checkout(ctx: Context, args: argparse.Namespace) -> Answer:
    """Run ``checkout``."""
    from syscontainers.operations import checkout as ops

    result = ops.checkout_image(ctx.store(), args.image, args.dest, ctx.reporter)
    how = "copied" if result.copied else "hardlinked"
    return answer(
        Report(
            f"checked out {args.image} to {args.dest}: {result.files} files {how}, "
            f"{result.dirs} directories, {result.links} symlinks",
            {
                "image": args.image,
                "dest": str(args.dest),
                "files": result.files,
                "dirs": result.dirs,
                "symlinks": result.links,
                "copied": result.copied,
                "skipped_devices": result.skipped_devices,
            },
        )
    )


def handle_mount(ctx: Context, args: argparse.Namespace) -> Answer:
    """Run ``mount``."""
    from syscontainers.operations import checkout as ops

    digest = ops.mount(ctx.store(), ctx.paths.mounts, args.image, args.target, ctx.reporter)
    return answer(
        Report(
            f"mounted {args.image} ({digest}) read-only at {args.target}",
            {"image": args.image, "id": digest, "target": str(args.target)},
        )
    )


def handle_umount(ctx: Context, args: argparse.Namespace) -> Answer:
    """Run ``umount``."""
    from syscontainers.operations import checkout as ops

    digest = ops.umount(ctx.store(), ctx.paths.mounts, args.target)
    return answer(
        Report(f"unmounted {args.target} ({digest})", {"target": str(args.target), "id": digest})
    )
