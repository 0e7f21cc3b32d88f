"""CLI verbs: ``images list|inspect|tag|delete|prune|verify``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from syscontainers import progress
from syscontainers.cli.context import Answer, Context, Document, Report, answer
from syscontainers.cli.output import add_json_option, add_list_options, human_bytes
from syscontainers.oci import digest_hex
from syscontainers.record import as_dict

if TYPE_CHECKING:
    from syscontainers.operations.images import ImageRow
    from syscontainers.store.fsck import VerifyReport

# Operations are imported inside the handlers: building the parser stays cheap, and a
# verb pays only for the modules it uses.


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``images`` and its sub-verbs."""
    images = sub.add_parser(
        "images",
        help="manage the images in the store",
        description="List, inspect, tag, delete, prune and verify the images in the store.",
    )
    verbs = images.add_subparsers(dest="images_verb", metavar="VERB", parser_class=type(images))
    verbs.required = True

    p = verbs.add_parser(
        "list",
        help="list stored images",
        description="List the tagged images in the store with their id, "
        "creation time, size and the size no other image shares; '>' marks "
        "an image an installed container uses.",
    )
    p.add_argument("--all", "-a", action="store_true", help="also show untagged images in use")
    add_list_options(p, "the image ids (each once)", "list")
    p.set_defaults(handler=handle_list)

    p = verbs.add_parser(
        "inspect",
        help="show an image's config, layers and template variables",
        description="Show a stored image's names, config, layers, "
        "/exports files, template variables and capabilities.",
    )
    p.add_argument("image", metavar="IMAGE", help="name[:tag], or an image id prefix")
    p.add_argument("--json", action="store_true", help="print the details as JSON")
    p.set_defaults(handler=handle_inspect)

    p = verbs.add_parser(
        "tag",
        help="give an image another name",
        description="Give the stored image SRC the name DST as well; no data is copied.",
    )
    p.add_argument("src", metavar="SRC", help="the image to tag")
    p.add_argument("dst", metavar="DST", help="the new name[:tag]")
    add_json_option(p)
    p.set_defaults(handler=handle_tag)

    p = verbs.add_parser(
        "delete",
        help="remove image tags (data goes at the next prune)",
        description="Remove the names of images; their data stays until "
        "'images prune'. Images installed containers use are refused "
        "without --force.",
    )
    p.add_argument("images", metavar="IMAGE", nargs="+", help="names or image ids")
    p.add_argument("--force", "-f", action="store_true", help="remove tags of images in use")
    add_json_option(p)
    p.set_defaults(handler=handle_delete)

    p = verbs.add_parser(
        "prune",
        help="remove unreferenced objects, layers and blobs",
        description="Remove the objects, layers and blobs that no tagged "
        "image and no deployment uses, and report the space freed.",
    )
    p.add_argument("--dry-run", action="store_true", help="report what would be freed")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=handle_prune)

    p = verbs.add_parser(
        "verify",
        help="re-hash stored objects, report damage and check the store's permissions",
        description="Re-hash the objects of IMAGEs (default: all), move damaged ones aside, "
        "and check that other users cannot reach the store; exit 1 on any problem.",
    )
    p.add_argument("images", metavar="IMAGE", nargs="*", help="images to check (default: all)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=handle_verify)


def handle_list(ctx: Context, args: argparse.Namespace) -> Answer:
    """Run ``images list``."""
    from syscontainers.operations import images as ops

    rows = ops.list_images(ctx.store(), args.all)
    return answer(Document(_list_lines(rows, args.ids_only), [as_dict(r) for r in rows]))


def _list_lines(rows: list[ImageRow], ids_only: bool) -> list[str]:
    if ids_only:
        return list(dict.fromkeys(digest_hex(r.image_id)[:12] for r in rows))
    fmt = "{:<40} {:<12} {:<14} {:<20} {:>10} {:>10}"
    lines = [fmt.format("NAME", "TAG", "IMAGE ID", "CREATED", "SIZE", "UNIQUE")]
    for r in rows:
        name = ("> " if r.in_use else "") + r.name
        lines.append(
            fmt.format(
                name,
                r.tag,
                digest_hex(r.image_id)[:12],
                r.created[:19].replace("T", " "),
                human_bytes(r.size),
                human_bytes(r.unique_size),
            )
        )
    return lines


def handle_inspect(ctx: Context, args: argparse.Namespace) -> Answer:
    """Run ``images inspect``."""
    from syscontainers.operations.inspect import inspect_image

    info = inspect_image(ctx.store(), args.image)
    return answer(Document(info.to_text(), info.to_json()))


def handle_tag(ctx: Context, args: argparse.Namespace) -> Answer:
    """Run ``images tag``."""
    from syscontainers.operations import images as ops

    key = ops.tag_image(ctx.store(), args.src, args.dst)
    return answer(Report(f"tagged {key}", {"tag": key, "source": args.src}))


def handle_delete(ctx: Context, args: argparse.Namespace) -> Answer:
    """Run ``images delete``."""
    from syscontainers.operations import images as ops

    removed = ops.delete_images(ctx.store(), args.images, args.force)
    return answer(
        Report(
            f"deleted {len(removed)} tag(s)",
            {"deleted": list(removed)},
            lines=[f"deleted {key}" for key in removed],
            show_summary=False,
        )
    )


def handle_prune(ctx: Context, args: argparse.Namespace) -> Answer:
    """Run ``images prune``."""
    from syscontainers.operations import images as ops

    result = ops.prune_store(ctx.store(), args.dry_run)
    verb = "would free" if result.dry_run else "freed"
    line = (
        f"{verb} {human_bytes(result.bytes_freed)}: {result.objects} objects, "
        f"{result.layers} layers, {result.blobs} blobs"
    )
    return answer(Document([line], as_dict(result)))


def handle_verify(ctx: Context, args: argparse.Namespace) -> Answer:
    """Run ``images verify``; exit 1 if anything is damaged or reachable by other users."""
    from syscontainers.operations import images as ops

    def on_progress(done: int, total: int) -> None:
        progress.progress(ctx.reporter, "verify", done, total)

    report = ops.verify_images(ctx.store(), args.images, on_progress)
    progress.task_done(ctx.reporter, "verify", f"{report.objects_checked} objects")
    doc = as_dict(report)
    doc["ok"] = report.ok
    for problem in doc["problems"]:
        problem["kind"] = problem["kind"].value
    return answer(Document(_verify_lines(report), doc), code=0 if report.ok else 1)


def _verify_lines(report: VerifyReport) -> list[str]:
    from syscontainers.store.fsck import ProblemKind

    perms = [p for p in report.problems if p.kind is ProblemKind.BAD_PERMISSIONS]
    lines = []
    for p in report.problems:
        users = ", ".join(p.images) or ("every image" if p in perms else "no image")
        lines.append(f"{p.kind.value}: {p.item}: {p.detail} (affects {users})")
    lines.append(
        f"checked {report.objects_checked} objects ({human_bytes(report.bytes_checked)}): "
        + ("ok" if report.ok else f"{len(report.problems)} problems")
    )
    if len(perms) < len(report.problems):
        lines.append("damaged objects were moved aside; pull the affected images again to repair")
    if perms:
        lines.append(
            "other local users could reach the store: what says (now fixed) is fixed; "
            "the rest needs an administrator"
        )
    return lines
