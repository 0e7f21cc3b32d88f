"""CLI verbs for system containers: install, uninstall, list, update, rollback and run."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from syscontainers.cli.context import Answer, Context, Document, Report, answer
from syscontainers.cli.output import add_health_flag, add_json_option, add_list_options
from syscontainers.cli.registry import (
    add_policy_options,
    add_registry_options,
    lazy_registry_opener,
    policy_checks,
)
from syscontainers.oci import digest_hex
from syscontainers.settings_table import RUNTIME, add_flag

if TYPE_CHECKING:
    from syscontainers.operations.containers import ContainerRow
    from syscontainers.operations.host import Host
    from syscontainers.operations.update import UpdateResult

# Operations are imported inside the handlers: building the parser stays cheap.

SET_HELP = (
    "set a template variable, e.g. --set PORT=8081 (repeatable); the value is escaped "
    "for where it lands (JSON strings in config.json) or refused where it cannot be "
    "written (a newline in a unit)"
)
SET_RAW_HELP = (
    "set a template variable to a value inserted exactly as given, with no "
    "escaping or checks, e.g. a JSON fragment (repeatable)"
)


def _add_values(p: argparse.ArgumentParser, kept: str) -> None:
    """--set and --set-raw (repeatable), their help ending in KEPT."""
    for flag, dest, text in (("--set", "sets", SET_HELP), ("--set-raw", "set_raw", SET_RAW_HELP)):
        p.add_argument(
            flag, dest=dest, action="append", default=[], metavar="KEY=VALUE", help=text + kept
        )


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add install, uninstall, list, update, rollback and run."""
    p = sub.add_parser(
        "install",
        help="install an image as a systemd system container",
        description="Pull IMAGE if needed, deploy it as NAME.0, install its "
        "host files, unit and tmpfiles lines, and enable the unit.",
    )
    p.add_argument(
        "image", metavar="IMAGE", help="a stored image name or id, or a source such as oci:DIR:TAG"
    )
    p.add_argument("--name", help="the container name (default: from the image name and tag)")
    _add_values(p, "")
    add_flag(
        p,
        RUNTIME,
        "the OCI runtime, e.g. /usr/bin/crun (default: the runtime setting, "
        f"{RUNTIME.default} found on PATH)",
    )
    p.add_argument(
        "--rootfs",
        metavar="DIR",
        type=Path,
        help="use DIR as the container's root filesystem instead of a checkout",
    )
    p.add_argument(
        "--now",
        action="store_true",
        help="start the service after installing it and watch it for the health "
        "window; exit 1 with its last journal lines if it does not stay active",
    )
    add_health_flag(p, "the service started by --now")
    p.add_argument(
        "--auto-update",
        choices=("registry", "local", "disabled"),
        default="",
        help="let 'syscontainers auto-update' update it when the image in the "
        "registry (registry) or its name in the store (local) changes; kept "
        "through updates (default: the image's io.containers.autoupdate label)",
    )
    p.add_argument(
        "--override-system-unit",
        action="store_true",
        help="let --name shadow a unit or tmpfiles.d file of the same name that the "
        "system has (e.g. one the distribution ships); refused without it",
    )
    add_registry_options(p)
    add_policy_options(p)
    add_json_option(p)
    p.set_defaults(handler=handle_install)

    p = sub.add_parser(
        "uninstall",
        help="stop and remove a system container",
        description="Stop and disable the unit, remove it, the tmpfiles "
        "entries, the unmodified host files and the deployments.",
    )
    p.add_argument("name", metavar="NAME", help="the container to remove")
    add_json_option(p)
    p.set_defaults(handler=handle_uninstall)

    p = sub.add_parser(
        "list",
        help="list installed system containers and their states",
        description="List the installed containers with their image, "
        "deployment, runtime and the state of their unit.",
    )
    p.add_argument("--all", "-a", action="store_true", help="also show half-installed containers")
    add_list_options(p, "the container names", "list")
    p.set_defaults(handler=handle_list)

    p = sub.add_parser(
        "update",
        help="update a container to a newer image or new values",
        description="Pull the image again, deploy it into the other slot with "
        "the kept --set values and UUID, restart the service if it was "
        "running, and roll back by itself if it does not stay active.",
    )
    p.add_argument("name", metavar="NAME", nargs="?", help="the container to update")
    p.add_argument("--all", action="store_true", help="update every installed container")
    p.add_argument("--rebase", metavar="IMAGE", help="move the container to another image")
    _add_values(p, "; kept for later updates")
    p.add_argument(
        "--no-pull", action="store_true", help="use the image in the store, do not pull a newer one"
    )
    p.add_argument(
        "--auto-update",
        choices=("registry", "local", "disabled", "label"),
        help="change the policy 'syscontainers auto-update' follows (label: the "
        "image's io.containers.autoupdate label again); kept for later updates",
    )
    add_registry_options(p)
    add_policy_options(p)
    add_health_flag(p, "the updated service")
    add_json_option(p)
    p.set_defaults(handler=handle_update)

    p = sub.add_parser(
        "rollback",
        help="go back to a container's previous deployment",
        description="Switch NAME back to its other deployment slot and restart "
        "the service if it was running.",
    )
    p.add_argument("name", metavar="NAME", help="the container to roll back")
    add_json_option(p)
    p.set_defaults(handler=handle_rollback)

    p = sub.add_parser(
        "run",
        help="run a command in a container",
        description="Exec CMD in the running container, or run it once in a "
        "fresh container from the deployment when the service is stopped.",
    )
    p.add_argument("name", metavar="NAME", help="the container")
    p.add_argument(
        "cmd",
        metavar="CMD",
        nargs=argparse.REMAINDER,
        help="the command and its arguments (default: /bin/sh when exec'ing)",
    )
    p.set_defaults(handler=handle_run)


def _check_name(args: argparse.Namespace) -> None:
    """A bad container name is a usage error, found before anything talks to systemd."""
    if getattr(args, "name", None):
        from syscontainers.deploy.layout import validate_name

        validate_name(args.name)


@contextmanager
def _host(ctx: Context, args: argparse.Namespace, pulls: bool = False) -> Iterator[Host]:
    """The real seams: store, systemd over D-Bus, systemd-tmpfiles; a registry if it PULLS.

    With --sysroot, systemd and systemd-tmpfiles are the offline root's files instead."""
    from syscontainers import crashpoints
    from syscontainers.operations.host import Host

    _check_name(args)
    opener = None
    checks = None
    if pulls:  # only install and update pull (registry and trust load when they do)
        opener = lazy_registry_opener(ctx, args)
        checks = policy_checks(ctx, args)
    if ctx.paths.offline:
        from syscontainers.offline import OfflineTmpfiles, OfflineUnits

        yield Host(
            ctx.store(),
            ctx.paths,
            OfflineUnits(ctx.paths),
            OfflineTmpfiles(),
            ctx.reporter,
            opener,
            policy=checks,
            crashpoint=crashpoints.from_env(os.environ),
        )
        return
    from syscontainers.deploy.publish import SystemdTmpfiles
    from syscontainers.systemd import SystemdManager

    with SystemdManager() as units:
        yield Host(
            ctx.store(),
            ctx.paths,
            units,
            SystemdTmpfiles(),
            ctx.reporter,
            opener,
            policy=checks,
            crashpoint=crashpoints.from_env(os.environ),
        )


def open_host(
    ctx: Context, args: argparse.Namespace, pulls: bool = False
) -> AbstractContextManager[Host]:
    """The seams for a verb of another area (apply), as this area's verbs get them."""
    return _host(ctx, args, pulls)


def locate_runtime(ctx: Context, text: str) -> str:
    """The runtime setting TEXT with its executable found (in the offline root, with one)."""
    from syscontainers.runtime import locate_for

    sysroot = ctx.paths.sysroot
    return locate_for(text, None if sysroot is None else str(sysroot))


def _sets(args: argparse.Namespace) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """The --set and --set-raw values (the last of a name wins), and the raw names."""
    from syscontainers.render import parse_sets

    plain, raw = parse_sets(args.sets), parse_sets(args.set_raw)
    plain = {k: v for k, v in plain.items() if k not in raw}
    return tuple(sorted({**plain, **raw}.items())), tuple(sorted(raw))


def handle_install(ctx: Context, args: argparse.Namespace) -> Answer:
    """Run ``install``."""
    from syscontainers.operations.install import InstallOutcome, InstallRequest, install

    runtime = locate_runtime(ctx, ctx.settings.runtime)  # before any write or connection
    sets, raw = _sets(args)
    req = InstallRequest(
        args.image,
        args.name,
        sets,
        runtime,
        args.rootfs,
        args.now,
        args.override_system_unit,
        ctx.settings.health_timeout,
        raw,
        args.auto_update,
    )
    with _host(ctx, args, pulls=True) as host:
        result = install(host, req)
    data: dict[str, Any] = {
        "name": result.name,
        "outcome": result.outcome.value,
        "deployment": result.deployment,
        "image_id": result.image_id,
        "started": result.started,
        "host_files": list(result.host_files),
        "exit_code": result.exit_code,
        "failure": result.failure,
        "journal": list(result.journal),
    }
    if result.outcome is InstallOutcome.RAN_ONCE:
        return answer(
            Report(f"ran {args.image} once as {result.name}: exit status {result.exit_code}", data),
            code=result.exit_code,
        )
    verb = "finished installing" if result.outcome is InstallOutcome.FINISHED else "installed"
    started = ", started" if result.started else ""
    summary = (
        f"{verb} {result.name} ({result.deployment}, image "
        f"{digest_hex(result.image_id)[:12]}){started}"
    )
    if result.failure:
        return answer(
            _failed_start(result.name, summary, result.failure, result.journal, data), code=1
        )
    return answer(
        Report(summary, data, lines=[f"  host file {path}" for path in result.host_files])
    )


def with_journal(message: str, journal: Sequence[str]) -> str:
    """MESSAGE, then the unit's last journal lines, indented."""
    if not journal:
        return message
    return "\n".join((message, "the last lines of its journal:", *(f"  {j}" for j in journal)))


def _failed_start(
    name: str, summary: str, failure: str, journal: Sequence[str], data: dict[str, Any]
) -> Report:
    """NAME was installed but its service failed to start: the error, with its journal."""
    unit = f"{name}.service"
    message = f"{summary}, but {unit} {failure}; it stays installed and enabled, and failed"
    return Report(
        summary,
        data,
        error=(
            with_journal(message, journal),
            f"see 'journalctl -u {unit}'; fix the cause, then 'systemctl restart {unit}', "
            f"or remove it with 'syscontainers uninstall {name}'",
        ),
    )


def handle_uninstall(ctx: Context, args: argparse.Namespace) -> Answer:
    """Run ``uninstall``."""
    from syscontainers.operations.containers import uninstall

    with _host(ctx, args) as host:
        result = uninstall(host, args.name)
    return answer(
        Report(
            f"uninstalled {result.name}: removed {', '.join(result.deployments) or 'debris'}"
            f" and {len(result.removed_files)} host file(s)",
            {
                "name": result.name,
                "deployments": list(result.deployments),
                "removed_files": list(result.removed_files),
                "kept_files": list(result.kept_files),
            },
            lines=[f"  kept {path} (changed after it was installed)" for path in result.kept_files],
        )
    )


def handle_list(ctx: Context, args: argparse.Namespace) -> Answer:
    """Run ``list``."""
    from syscontainers.operations.containers import list_containers

    with _host(ctx, args) as host:
        rows = list_containers(host, args.all)
    lines = [r.name for r in rows] if args.ids_only else _table(rows)
    return answer(Document(lines, [r.to_json() for r in rows]))


def _table(rows: Sequence[ContainerRow]) -> list[str]:
    fmt = "{:<24} {:<36} {:<14} {:<16} {:<18} {}"
    lines = [fmt.format("NAME", "IMAGE", "IMAGE ID", "DEPLOYMENT", "RUNTIME", "STATE")]
    for r in rows:
        image_id = digest_hex(r.image_id)[:12] if r.image_id else ""
        runtime = r.runtime.split()[0].rsplit("/", 1)[-1] if r.runtime else ""
        state = r.state if r.complete else f"{r.state} (incomplete)"
        lines.append(fmt.format(r.name, r.image, image_id, r.deployment, runtime, state))
    return lines


def _describe(result: UpdateResult) -> str:
    from syscontainers.operations.update import UpdateOutcome

    if result.outcome is UpdateOutcome.UP_TO_DATE:
        return f"{result.name} is already up to date ({result.deployment})"
    if result.outcome is UpdateOutcome.ROLLED_BACK:
        return (
            f"{result.name}: the update failed its health check ({result.reason}); "
            f"rolled back to {result.deployment}"
        )
    restarted = ", restarted" if result.restarted else ""
    return (
        f"updated {result.name} to {result.deployment} (image "
        f"{digest_hex(result.image_id)[:12]}){restarted}"
    )


def handle_update(ctx: Context, args: argparse.Namespace) -> Answer:
    """Run ``update``; exit 1 if an update failed or rolled back."""
    from syscontainers.errors import SysContainersError, UsageError
    from syscontainers.operations.update import UpdateOutcome, UpdateRequest, update, update_all

    if bool(args.all) == bool(args.name):
        raise UsageError(
            "give a container NAME or --all, not both or neither",
            hint="see 'syscontainers update --help'",
        )
    sets, raw = _sets(args)
    policy = "" if args.auto_update == "label" else args.auto_update
    req = UpdateRequest(
        args.name or "",
        args.rebase,
        sets,
        not args.no_pull,
        ctx.settings.health_timeout,
        raw,
        auto_update=policy,
    )
    with _host(ctx, args, pulls=True) as host:
        results = update_all(host, req) if args.all else [(req.name, update(host, req))]
    failed = False
    parts = []
    for name, outcome in results:
        if isinstance(outcome, SysContainersError):
            parts.append(
                Report(
                    f"{name}: {outcome.message}",
                    {
                        "name": name,
                        "outcome": "error",
                        "error": outcome.message,
                        "hint": outcome.hint or "",
                    },
                    error=(f"{name}: {outcome.message}", outcome.hint),
                )
            )
            failed = True
            continue
        data: dict[str, Any] = {
            "name": outcome.name,
            "outcome": outcome.outcome.value,
            "deployment": outcome.deployment,
            "image_id": outcome.image_id,
            "previous_image_id": outcome.previous_image_id,
            "restarted": outcome.restarted,
            "reason": outcome.reason,
            "journal": list(outcome.journal),
        }
        if outcome.outcome is UpdateOutcome.ROLLED_BACK:
            parts.append(
                Report(
                    _describe(outcome),
                    data,
                    error=(
                        with_journal(_describe(outcome), outcome.journal),
                        f"see: journalctl -u {name}.service",
                    ),
                )
            )
            failed = True
        else:
            parts.append(Report(_describe(outcome), data))
    return answer(*parts, code=1 if failed else 0)


def handle_rollback(ctx: Context, args: argparse.Namespace) -> Answer:
    """Run ``rollback``."""
    from syscontainers.operations.update import rollback

    with _host(ctx, args) as host:
        result = rollback(host, args.name)
    restarted = ", restarted" if result.restarted else ""
    return answer(
        Report(
            f"rolled back {result.name} from {result.previous} to {result.deployment}{restarted}",
            {
                "name": result.name,
                "deployment": result.deployment,
                "previous": result.previous,
                "image_id": result.image_id,
                "restarted": result.restarted,
            },
        )
    )


def handle_run(ctx: Context, args: argparse.Namespace) -> int:
    """Run ``run``: the command's exit status is ours."""
    from syscontainers.operations.containers import run_in

    tty = sys.stdin.isatty() and sys.stdout.isatty()
    with _host(ctx, args) as host:
        return run_in(host, args.name, list(args.cmd), tty)
