"""CLI verb: pull an image into the store."""

from __future__ import annotations

import argparse

from syscontainers import progress
from syscontainers.cli.context import Answer, Context, Report, answer
from syscontainers.cli.output import add_json_option, human_bytes
from syscontainers.cli.registry import (
    add_policy_options,
    add_registry_options,
    parse_platform,
    policy_checks,
    registry_options,
)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``pull``."""
    p = sub.add_parser(
        "pull",
        help="import an image into the store",
        description="Import an image from a registry ([docker://]REGISTRY/REPO[:TAG|@DIGEST]), "
        "oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE[:NAME:TAG]. Only layers "
        "missing from the store are read.",
    )
    p.add_argument("source", metavar="SOURCE", help="the image to pull, with its transport")
    p.add_argument("--name", help="tag the image as NAME[:TAG] (default: from the source)")
    p.add_argument("--platform", help="os/arch[/variant] to pick from a multi-platform index")
    add_json_option(p)
    add_registry_options(p)
    add_policy_options(p)
    p.set_defaults(handler=handle_pull)


def handle_pull(ctx: Context, args: argparse.Namespace) -> Answer:
    """Run ``pull``."""
    from syscontainers.operations.pull import PullOptions, pull_image
    from syscontainers.sources import Transport, open_source, parse_source

    platform = parse_platform(args.platform)
    spec = parse_source(args.source)
    opener = None
    if spec.transport is Transport.DOCKER:  # the registry client loads only for registries
        from syscontainers.registry import registry_opener

        opener = registry_opener(ctx.settings, registry_options(args))
    source = open_source(spec, opener)
    try:
        result = pull_image(
            ctx.store(),
            source,
            PullOptions(name=args.name, platform=platform, policy=policy_checks(ctx, args)(spec)),
            ctx.reporter,
            on_wait=lambda msg: progress.step(ctx.reporter, msg),
        )
    finally:
        source.close()
    summary = (
        f"{result.name} {result.manifest_digest}: imported {result.layers_imported} of "
        f"{result.layers_total} layers, {result.objects_written} new objects "
        f"({human_bytes(result.bytes_imported)})"
    )
    return answer(
        Report(
            summary,
            {
                "name": result.name,
                "id": result.manifest_digest,
                "layers_total": result.layers_total,
                "layers_imported": result.layers_imported,
                "bytes_written": result.bytes_imported,
                "objects_written": result.objects_written,
            },
        )
    )
