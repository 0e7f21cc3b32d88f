"""CLI verb ``apply``: converge the host to a host manifest, printing the plan first."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from syscontainers.cli.context import Answer, Context, Document, Report, answer
from syscontainers.cli.output import add_health_flag, add_json_option
from syscontainers.cli.registry import add_policy_options, add_registry_options
from syscontainers.record import replace

DEFAULT_MANIFEST = "/etc/syscontainers/host.yaml"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add apply."""
    p = sub.add_parser(
        "apply",
        help="converge the host to a host manifest (YAML)",
        description="Install, update, enable, start (and with --prune uninstall) the "
        "containers so that the host matches FILE. The plan is printed first; applying the "
        "same manifest again changes nothing. See 'Provisioning a host' in the README.",
    )
    p.add_argument(
        "file",
        metavar="FILE",
        nargs="?",
        type=Path,
        help=f"the host manifest (default {DEFAULT_MANIFEST}, with --sysroot the one in that root)",
    )
    p.add_argument(
        "--prune",
        action="store_true",
        help="uninstall containers an earlier apply installed that FILE dropped",
    )
    p.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
    add_health_flag(p, "an updated service")
    add_registry_options(p)
    add_policy_options(p)
    add_json_option(p)
    p.set_defaults(handler=handle_apply)


def handle_apply(ctx: Context, args: argparse.Namespace) -> Answer:
    """Run ``apply``."""
    from syscontainers.cli.containers import locate_runtime, open_host
    from syscontainers.errors import UsageError
    from syscontainers.operations.apply import execute, survey
    from syscontainers.provision.manifest import load
    from syscontainers.provision.plan import plan

    manifest = load(args.file or ctx.paths.on_host(DEFAULT_MANIFEST))
    specs = []
    for spec in manifest.containers:
        try:
            runtime = locate_runtime(ctx, spec.runtime or ctx.settings.runtime)
        except UsageError as e:
            raise UsageError(
                f"{manifest.path}, line {spec.line}: container {spec.name}: {e.message}",
                hint=e.hint,
            ) from None
        specs.append(replace(spec, runtime=runtime))
    manifest = replace(manifest, containers=tuple(specs))
    with open_host(ctx, args, pulls=True) as host:
        todo = plan(manifest, survey(host, manifest), prune=args.prune)
        lines = [f"  {a.describe()}" for a in todo.actions] or ["  (no containers)"]
        # The plan is printed before it is carried out; with --json the result holds it.
        ctx.show(
            Document(
                [f"plan for {manifest.path} ({len(manifest.containers)} container(s)):", *lines],
                text_only=True,
            )
        )
        data: dict[str, Any] = {
            "manifest": manifest.path,
            "plan": [a.to_json() for a in todo.actions],
            "changes": len(todo.changes),
            "dry_run": bool(args.dry_run),
        }
        if not todo.changes:
            return answer(Report(f"nothing to change: the host matches {manifest.path}", data))
        if args.dry_run:
            return answer(
                Report(f"dry run: {len(todo.changes)} change(s) planned, none made", data)
            )
        outcomes = execute(host, todo, ctx.settings.health_timeout)
    return answer(
        Report(
            f"applied {len(outcomes)} change(s) from {manifest.path}",
            {**data, "results": [o.to_json() for o in outcomes]},
            lines=[f"  {o.action.verb.value} {o.action.name}: {o.detail}" for o in outcomes],
        )
    )
