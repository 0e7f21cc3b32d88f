"""Making a slot the active deployment, and reconciling what a crash left half done.

``activate`` moves the host from the previous deployment to a built slot: host
files and directories (``operations.hostsync``, through the host-file
database), the published unit and tmpfiles, then the symlink flip,
which is the commit point. A failure before the flip puts the previous
deployment's files back. ``tell_systemd`` then reloads, applies tmpfiles and
enables the unit (``operations.settle`` adds the start, the health gate and the
way back). ``reconcile`` runs first in every command that changes a container:
it removes temp slots and crashed half-built slots (restoring the host files
they replaced), finishes a switch that a crash interrupted as settle would have
(an update whose new deployment fails the health gate goes back to the other
slot), and re-publishes the active slot's unit and tmpfiles if they differ.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from syscontainers import progress
from syscontainers.deploy.layout import (
    ContainerDir,
    DeploymentInfo,
    active_slot,
    flip,
    slot_info,
    write_info,
)
from syscontainers.deploy.publish import Published, matches, publish, published_by
from syscontainers.fsutil import remove_tree
from syscontainers.operations.host import Host
from syscontainers.operations.hostsync import sync
from syscontainers.record import record, replace
from syscontainers.settings_table import HEALTH_TIMEOUT
from syscontainers.systemd_states import check_job

if TYPE_CHECKING:
    from syscontainers.operations.settle import Settled

DEFAULT_HEALTH_TIMEOUT = HEALTH_TIMEOUT.default  # seconds a (re)started service must stay up


@record
class ReconcileReport:
    """What reconcile found and did."""

    removed: tuple[str, ...] = ()  # temp and half-built slot directories removed
    finished: bool = False  # an interrupted activation was completed
    republished: bool = False  # the unit or tmpfiles copies were put back
    settled: Settled | None = None  # how the finished activation ended
    first: bool = False  # that was the first activation of its slot (not a rollback to it)
    # a deployment given up: it failed its health check when the activation was finished,
    # or a rollback away from it had been interrupted
    abandoned: DeploymentInfo | None = None

    @property
    def acted(self) -> bool:
        """True if reconcile changed anything."""
        return bool(self.removed) or self.finished or self.republished


def activate(
    host: Host, cd: ContainerDir, new: DeploymentInfo, previous: DeploymentInfo | None
) -> DeploymentInfo:
    """Move the host from PREVIOUS to NEW and flip the symlink; undo the files on failure."""
    try:
        sync(host, cd, new)
        host.crashpoint("host-files-synced")
        publish(cd, cd.slot_dir(new.slot), host.paths)
        host.crashpoint("unit-published")
        flip(cd, new.slot)
    except BaseException:
        _restore(host, cd, new, previous)
        raise
    host.crashpoint("flipped")
    return new


def _restore(
    host: Host, cd: ContainerDir, failed: DeploymentInfo, previous: DeploymentInfo | None
) -> None:
    """Put PREVIOUS's host files and published copies back after a failed activation."""
    sync(host, cd, previous, strict=False)
    if previous is None:
        unit_was_ours, conf_was_ours = published_by(cd, cd.slot_dir(failed.slot), host.paths)
        where = Published.of(cd, host.paths)
        for path, ours in ((where.unit, unit_was_ours), (where.tmpfiles, conf_was_ours)):
            if ours:
                os.unlink(path)
        return
    publish(cd, cd.slot_dir(previous.slot), host.paths)


def tell_systemd(host: Host, cd: ContainerDir, info: DeploymentInfo) -> None:
    """Reload units, apply the tmpfiles lines and enable the unit of the active slot INFO."""
    host.units.daemon_reload()
    conf = Published.of(cd, host.paths).tmpfiles
    if conf.exists():
        host.tmpfiles.create(conf)
    if info.service:
        host.units.enable([cd.unit_name])


def mark_complete(cd: ContainerDir, info: DeploymentInfo) -> DeploymentInfo:
    """Record that INFO's activation finished."""
    done = replace(info, complete=True, activating=False, restart=False)
    write_info(cd.slot_dir(info.slot), done)
    return done


def restart(host: Host, cd: ContainerDir) -> None:
    """Restart the unit and fail unless its job finished."""
    check_job(cd.unit_name, "restart", host.units.restart(cd.unit_name))


def discard_slot(host: Host, cd: ContainerDir, slot: int, active: DeploymentInfo | None) -> None:
    """Remove a slot that is not active, putting back ACTIVE's versions of its host files."""
    sync(host, cd, active, strict=False)
    if active is None:
        unit_ours, conf_ours = published_by(cd, cd.slot_dir(slot), host.paths)
        where = Published.of(cd, host.paths)
        for path, ours in ((where.unit, unit_ours), (where.tmpfiles, conf_ours)):
            if ours:
                os.unlink(path)
    remove_tree(cd.slot_dir(slot))
    host.store.unpin(cd.pin(slot))


def reconcile(
    host: Host, cd: ContainerDir, window: float = DEFAULT_HEALTH_TIMEOUT
) -> ReconcileReport:
    """Finish or clean up what an interrupted command left for container CD.

    An interrupted switch is finished as ``operations.settle`` does it, with the health
    gate over WINDOW seconds and the way back to the other slot.
    """
    removed = [str(p) for p in cd.temps()]
    for path in cd.temps():
        remove_tree(path)
    current = active_slot(cd)
    active = slot_info(cd, current)  # damage stops here, before anything is removed
    abandoned = None
    for slot in cd.present_slots():
        info = slot_info(cd, slot)
        if slot == current:
            continue
        if info is None or not info.complete:
            if info is not None and active is not None and active.activating and active.complete:
                abandoned = info  # the automatic rollback away from it was under way
            discard_slot(host, cd, slot, active)
            removed.append(str(cd.slot_dir(slot)))
        elif info.activating:  # a switch to it was interrupted before its flip
            write_info(cd.slot_dir(slot), replace(info, activating=False, restart=False))
    for slot in (0, 1):
        if not os.path.lexists(cd.slot_dir(slot)):
            host.store.unpin(cd.pin(slot))
    if active is None:
        return ReconcileReport(tuple(removed))
    if not active.complete or active.activating:
        settled = _finish(host, cd, active, slot_info(cd, 1 - active.slot), window)
        if settled.rolled_back:
            abandoned = active
        return ReconcileReport(
            tuple(removed),
            finished=True,
            settled=settled,
            first=not active.complete,
            abandoned=abandoned,
        )
    if not matches(cd, cd.slot_dir(active.slot), host.paths):
        publish(cd, cd.slot_dir(active.slot), host.paths)
        host.units.daemon_reload()
        return ReconcileReport(tuple(removed), republished=True)
    return ReconcileReport(tuple(removed))


def _finish(
    host: Host,
    cd: ContainerDir,
    active: DeploymentInfo,
    other: DeploymentInfo | None,
    window: float,
) -> Settled:
    from syscontainers.operations.settle import settle

    sync(host, cd, active, strict=False)  # conflicts are left alone
    publish(cd, cd.slot_dir(active.slot), host.paths)
    # A first activation may go back to the deployment it replaced; a rollback goes nowhere.
    fallback = other if other is not None and other.complete and not active.complete else None
    progress.step(host.reporter, f"finishing the interrupted switch to {cd.name}.{active.slot}")
    settled = settle(host, cd, active, fallback, window)
    if settled.failure:
        back = f"; back on {cd.name}.{settled.info.slot}" if settled.rolled_back else ""
        progress.warn(host.reporter, f"{cd.name}.{active.slot} {settled.failure}{back}")
    return settled


def remove_everything(host: Host, cd: ContainerDir) -> tuple[list[str], list[str]]:
    """Uninstall's file work after the unit is gone: host files, slots, link, pins.

    Returns the host files removed and the ones kept because they were modified.
    """
    plan = sync(host, cd, None, strict=False)
    for path in cd.temps():
        remove_tree(path)
    if os.path.lexists(cd.link):
        os.unlink(cd.link)
    for slot in (0, 1):
        remove_tree(cd.slot_dir(slot))
        host.store.unpin(cd.pin(slot))
    return list(plan.removes), list(plan.kept)
