"""``update`` with a health gate and automatic rollback, and ``rollback``.

update NAME, under the store's exclusive lock:

1. reconcile (an update a crash interrupted is finished with the same health
   gate, see operations.settle), then pull the image again unless --no-pull (a
   store-only image is only looked up again: a newer tag may have been pulled
   meanwhile);
2. if neither the image nor the kept values (the user's --set values and the
   UUID) changed, say so and touch nothing; if that interrupted update was to
   this same image and values and failed its health check, say so (exit 1)
   instead of trying it again;
3. build the other slot with the kept values, the same UUID and the
   --auto-update policy (install's, or a new one given here; with nothing else
   changed, a new policy is only recorded in the active slot's info.json),
   everything else recomputed; the previous deployment in that slot is dropped;
4. move the host files, publish the unit, flip the symlink, reload, and
   restart the service if it was running;
5. watch it for the health window: if it does not become and stay active
   (READY for Type=notify), switch back to the previous slot by itself, and
   report the unit's last journal lines.

rollback NAME switches to the other slot the same way, with that slot's own
unit, config, values and host files.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from syscontainers import progress
from syscontainers.deploy.layout import (
    ContainerDir,
    DeploymentInfo,
    active_slot,
    container_names,
    slot_files,
    slot_info,
    write_info,
)
from syscontainers.errors import (
    ContainerNotFoundError,
    ImageNotFoundError,
    SysContainersError,
    UsageError,
)
from syscontainers.operations.activation import DEFAULT_HEALTH_TIMEOUT, discard_slot, reconcile
from syscontainers.operations.host import Host
from syscontainers.operations.settle import settle, switch
from syscontainers.record import record, replace
from syscontainers.render import KeptValues
from syscontainers.systemd_states import ActiveState

if TYPE_CHECKING:  # slot (checkout, pull, rendering) loads only where a slot is made
    from syscontainers.operations.slot import ImageChoice

RUNNING = frozenset({ActiveState.ACTIVE, ActiveState.ACTIVATING, ActiveState.RELOADING})


class UpdateOutcome(Enum):
    """How an update ended."""

    UP_TO_DATE = "up-to-date"
    UPDATED = "updated"
    ROLLED_BACK = "rolled-back"  # the new deployment failed its health check


@record
class UpdateRequest:
    """What the user asked update to do."""

    name: str
    rebase: str | None = None
    sets: tuple[tuple[str, str], ...] = ()
    pull: bool = True
    health_timeout: float = DEFAULT_HEALTH_TIMEOUT
    raw: tuple[str, ...] = ()  # the names of SETS given with --set-raw
    source: str | None = None  # pull from here instead of the recorded source (auto-update)
    auto_update: str | None = None  # --auto-update: a new policy (None: keep the recorded one)


@record
class UpdateResult:
    """The outcome of an update."""

    name: str
    outcome: UpdateOutcome
    deployment: str  # the active deployment afterwards
    image_id: str  # of the active deployment afterwards
    previous_image_id: str
    restarted: bool = False
    reason: str = ""  # why the health check failed, for ROLLED_BACK
    journal: tuple[str, ...] = ()  # the failed unit's last journal lines, for ROLLED_BACK

    @classmethod
    def rolled_back(
        cls, name: str, here: str, image_id: str, reason: str, journal: tuple[str, ...]
    ) -> UpdateResult:
        """A new deployment failed its health check: back on HERE, still running IMAGE_ID."""
        return cls(name, UpdateOutcome.ROLLED_BACK, here, image_id, image_id, True, reason, journal)


@record
class RollbackResult:
    """The outcome of a rollback."""

    name: str
    deployment: str
    previous: str
    image_id: str
    restarted: bool


def active_info(
    host: Host, cd: ContainerDir, window: float = DEFAULT_HEALTH_TIMEOUT
) -> DeploymentInfo:
    """The active deployment of CD after reconciling it; ContainerNotFoundError if none."""
    reconcile(host, cd, window)
    return _installed(cd)


def _installed(cd: ContainerDir) -> DeploymentInfo:
    info = slot_info(cd, active_slot(cd))
    if info is None:
        raise ContainerNotFoundError(
            f"no container named {cd.name} is installed",
            hint="see 'syscontainers list --all'",
        )
    return info


def is_running(host: Host, cd: ContainerDir) -> bool:
    """True if the container's unit is active or on its way there."""
    state = host.units.states([cd.unit_name])[cd.unit_name]
    return state.active_state in RUNNING


def _choose(host: Host, current: DeploymentInfo, req: UpdateRequest) -> ImageChoice:
    from syscontainers.operations.slot import acquire, from_store, pull_source
    from syscontainers.sources import Transport

    if req.rebase is not None:
        docker = Transport.DOCKER.prefix
        if not req.pull and req.rebase.startswith(docker):
            name = req.rebase.removeprefix(docker)
            return from_store(host.store, name, req.rebase, req.rebase)
        return acquire(host, req.rebase)
    source = req.source or current.source
    if req.pull and source:
        return pull_source(host, source, current.image)
    try:
        return from_store(host.store, current.ref, current.image, current.source)
    except ImageNotFoundError:
        return from_store(host.store, current.image_id, current.image, current.source)


def update(host: Host, req: UpdateRequest) -> UpdateResult:
    """Update one container (see the module docstring)."""
    with host.locked():
        return update_locked(host, req)


def update_all(
    host: Host, req: UpdateRequest
) -> list[tuple[str, UpdateResult | SysContainersError]]:
    """Update every installed container in turn; one's failure does not stop the others."""
    if req.rebase is not None or req.sets:
        raise UsageError(
            "update --all cannot be combined with --rebase or --set",
            hint="update the containers one at a time for that",
        )
    out: list[tuple[str, UpdateResult | SysContainersError]] = []
    with host.locked():
        for name in container_names(host.paths.deployments):
            try:
                out.append((name, update_locked(host, _for(req, name))))
            except SysContainersError as e:
                out.append((name, e))
    return out


def _for(req: UpdateRequest, name: str) -> UpdateRequest:
    return UpdateRequest(name, None, (), req.pull, req.health_timeout, auto_update=req.auto_update)


def update_locked(host: Host, req: UpdateRequest) -> UpdateResult:
    from syscontainers.operations.slot import build_slot, prepare  # not for rollback

    cd = host.container(req.name)
    report = reconcile(host, cd, req.health_timeout)
    current = _installed(cd)
    kept = current.kept.merged(dict(req.sets), req.raw)
    policy = current.auto_update if req.auto_update is None else _policy(req.auto_update)
    choice = _choose(host, current, req)
    here = f"{cd.name}.{current.slot}"
    gave_up = report.abandoned
    if gave_up is not None and _same(gave_up, choice, kept):
        reason = report.settled.failure if report.settled else ""
        reason = reason or "was being rolled back when the interrupted update stopped"
        progress.warn(
            host.reporter,
            f"{cd.name}: the interrupted update to {choice.given} {reason}; {here} is active",
        )
        journal = report.settled.journal if report.settled else ()
        return UpdateResult.rolled_back(cd.name, here, current.image_id, reason, journal)
    if _same(current, choice, kept):
        if report.settled is not None and report.settled.restarted:  # it was this update
            other = slot_info(cd, 1 - current.slot)
            return UpdateResult(
                cd.name,
                UpdateOutcome.UPDATED,
                here,
                current.image_id,
                other.image_id if other else current.image_id,
                True,
            )
        progress.step(host.reporter, f"{cd.name} is already up to date")
        if policy != current.auto_update:  # nothing to redeploy: the record alone changes
            write_info(cd.slot_dir(current.slot), replace(current, auto_update=policy))
            progress.step(
                host.reporter,
                f"{cd.name}: auto-update policy recorded as {policy or 'the image label'}",
            )
        return UpdateResult(
            cd.name, UpdateOutcome.UP_TO_DATE, here, current.image_id, current.image_id
        )
    slot = 1 - current.slot
    if slot in cd.present_slots():
        discard_slot(host, cd, slot, current)
    plan = prepare(host, cd, slot, choice, current.runtime, kept, auto_update=policy)
    progress.step(
        host.reporter, f"updating {cd.name}: deploying {choice.given} as {cd.name}.{slot}"
    )
    info = build_slot(host, plan, _kept_rootfs(cd, current))
    running = current.service and is_running(host, cd)
    try:
        info = switch(host, cd, info, current, restart_it=running)
    except BaseException:
        discard_slot(host, cd, slot, current)
        raise
    settled = settle(host, cd, info, current if running else None, req.health_timeout)
    if settled.rolled_back:
        progress.warn(
            host.reporter, f"{cd.name}: the new deployment {settled.failure}; rolled back to {here}"
        )
        return UpdateResult.rolled_back(
            cd.name, here, current.image_id, settled.failure, settled.journal
        )
    return UpdateResult(
        cd.name,
        UpdateOutcome.UPDATED,
        f"{cd.name}.{slot}",
        info.image_id,
        current.image_id,
        settled.restarted,
    )


def _policy(text: str) -> str:
    """TEXT checked as an auto-update policy ("" to follow the image label again)."""
    if text:
        from syscontainers.operations.autoupdate import parse_policy  # it imports this module

        parse_policy(text)
    return text


def _same(info: DeploymentInfo, choice: ImageChoice, kept: KeptValues) -> bool:
    """True if INFO deploys CHOICE with the values KEPT."""
    return (
        info.image_id == choice.image.manifest_digest
        and info.image == choice.given
        and info.kept.sets == kept.sets
        and info.kept.raw == kept.raw
    )


def _kept_rootfs(cd: ContainerDir, current: DeploymentInfo) -> Path | None:
    """The --rootfs directory the current deployment links to, if it uses one."""
    rootfs = slot_files(cd, cd.slot_dir(current.slot))["rootfs"]
    return rootfs.readlink() if rootfs.is_symlink() else None


def rollback(host: Host, name: str) -> RollbackResult:
    """Switch container NAME back to its previous deployment."""
    with host.locked():
        cd = host.container(name)
        current = active_info(host, cd)
        previous = slot_info(cd, 1 - current.slot)
        if previous is None:
            raise ContainerNotFoundError(
                f"container {name} has no previous deployment to roll back to",
                hint="a previous deployment exists only after an update",
            )
        running = current.service and is_running(host, cd)
        info = switch(host, cd, previous, current, restart_it=running)
        settled = settle(host, cd, info, None, DEFAULT_HEALTH_TIMEOUT)
        if not info.service and current.service:
            host.units.stop(cd.unit_name)
        return RollbackResult(
            name, f"{name}.{info.slot}", f"{name}.{current.slot}", info.image_id, settled.restarted
        )
