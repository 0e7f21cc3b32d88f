"""CLI verb ``auto-update``: update the containers that opted in, as podman auto-update does."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from syscontainers.cli.context import Answer, Context, Failure, Report, answer
from syscontainers.cli.output import add_health_flag, add_json_option
from syscontainers.cli.registry import add_policy_options, add_registry_options
from syscontainers.oci import digest_hex

if TYPE_CHECKING:
    from syscontainers.operations.autoupdate import AutoUpdateRow

TABLE = "{:<28} {:<20} {:<44} {:<9} {}"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add auto-update."""
    p = sub.add_parser(
        "auto-update",
        help="update the containers that opted in, if their image changed",
        description="For each container installed with --auto-update registry|local, or "
        "whose image has the label io.containers.autoupdate=registry|local, check the "
        "digest its image reference names now without pulling (registry: the source it was "
        "installed from; local: its name in the store) and update only those that changed, "
        "with the health gate: one that does not stay active is rolled back by itself. "
        "Exit 1 if any check or update failed or was rolled back. "
        "units/syscontainers-auto-update.timer runs it daily.",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="only check: show 'pending' where an update is due, change nothing",
    )
    add_health_flag(p, "an updated service")
    add_registry_options(p)
    add_policy_options(p)
    add_json_option(p)
    p.set_defaults(handler=handle_auto_update)


def row_json(row: AutoUpdateRow) -> dict[str, Any]:
    """One row as JSON."""
    return {
        "unit": row.unit,
        "container": row.name,
        "image": row.image,
        "policy": row.policy.value,
        "updated": row.status.value,
        "image_id": row.image_id,
        "new_image_id": row.new_image_id,
        "reason": row.reason,
        "hint": row.hint,
        "journal": list(row.journal),
    }


def _line(row: AutoUpdateRow) -> str:
    return TABLE.format(row.unit, row.name, row.image, row.policy.value, row.status.value)


def _failure(row: AutoUpdateRow) -> Failure:
    from syscontainers.cli.containers import with_journal
    from syscontainers.operations.autoupdate import Status

    if row.status is Status.ROLLED_BACK:
        new = digest_hex(row.new_image_id)[:12]
        return Failure(
            with_journal(
                f"{row.name}: the update to image {new} failed its health "
                f"check ({row.reason}); rolled back",
                row.journal,
            ),
            f"see: journalctl -u {row.unit}",
        )
    return Failure(f"{row.name}: {row.reason}", row.hint or None)


def handle_auto_update(ctx: Context, args: argparse.Namespace) -> Answer:
    """Run ``auto-update``; exit 1 if a check or an update failed or was rolled back."""
    from syscontainers.cli.containers import open_host
    from syscontainers.operations.autoupdate import (
        FAILURES,
        AutoUpdateOptions,
        Status,
        auto_update,
    )

    opts = AutoUpdateOptions(args.dry_run, ctx.settings.health_timeout)
    with open_host(ctx, args, pulls=True) as host:
        # A failure is said as soon as it happens, not after the other containers.
        rows = auto_update(
            host, opts, on_row=lambda r: ctx.show(_failure(r)) if r.status in FAILURES else None
        )
    counts = {s: sum(r.status is s for r in rows) for s in Status}
    summary = (
        f"auto-update: {len(rows)} container(s) opted in, "
        f"{counts[Status.UPDATED]} updated, {counts[Status.ROLLED_BACK]} rolled back, "
        f"{counts[Status.FAILED]} failed"
    )
    if args.dry_run:
        summary += f", {counts[Status.PENDING]} pending (dry run)"
    lines = (
        [TABLE.format("UNIT", "CONTAINER", "IMAGE", "POLICY", "UPDATED"), *map(_line, rows)]
        if rows
        else []
    )
    report = Report(
        summary,
        {"dry_run": bool(args.dry_run), "containers": [row_json(r) for r in rows]},
        lines=lines,
    )
    return answer(report, code=1 if any(r.status in FAILURES for r in rows) else 0)
