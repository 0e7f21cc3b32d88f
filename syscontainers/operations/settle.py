"""Ending a switch of the active deployment: systemd told, the health gate, the way back.

Every switch (install, update, rollback, and the one a crash interrupted, which
the next command finishes through ``activation.reconcile``) runs the same steps:

1. ``switch``: record in the target slot's info.json that a switch to it began
   (``activating``) and whether its service is to run afterwards (``restart``),
   then ``activation.activate`` (host files, unit, the flip);
2. ``settle``: reload systemd, apply the tmpfiles lines and enable the unit;
   then, if the service is to run, a deployment activated for the first time is
   (re)started and watched over the health window (it must reach active, READY
   for Type=notify, and stay there unrestarted); one that ran before (the target
   of a rollback) is only restarted;
3. a first activation that fails the health check switches back to FALLBACK when
   there is one (update), the same way, so a crash half way back is finished
   back; without one (install --now) the deployment stays installed, enabled and
   failed. Either way the failure comes back with the unit's last journal lines;
4. the deployment that ends active is marked complete.

Because the intent is in info.json before anything changes, a command killed at
any point is finished by the next one with the same health gate: an update to an
image that cannot start ends on the previous deployment, serving, and says so.
"""

from __future__ import annotations

from syscontainers.deploy.layout import ContainerDir, DeploymentInfo, write_info
from syscontainers.operations.activation import activate, mark_complete, restart, tell_systemd
from syscontainers.operations.host import Host
from syscontainers.record import record, replace
from syscontainers.systemd_states import JobResult


@record
class Settled:
    """How a switch ended."""

    info: DeploymentInfo  # the deployment active afterwards (complete)
    failure: str = ""  # why the new deployment's service is not healthy ("" if it is)
    journal: tuple[str, ...] = ()  # the unit's last journal lines, with a failure
    rolled_back: bool = False  # the failure switched back to the fallback
    restarted: bool = False  # the service was (re)started


def switch(
    host: Host,
    cd: ContainerDir,
    to: DeploymentInfo,
    current: DeploymentInfo | None,
    restart_it: bool,
) -> DeploymentInfo:
    """Record the switch to TO in its info.json, then activate it (see the module docstring)."""
    flagged = replace(to, activating=True, restart=restart_it and to.service)
    write_info(cd.slot_dir(to.slot), flagged)
    host.crashpoint("activation-recorded")
    return activate(host, cd, flagged, current)


def settle(
    host: Host,
    cd: ContainerDir,
    info: DeploymentInfo,
    fallback: DeploymentInfo | None,
    window: float,
) -> Settled:
    """Tell systemd, run the health gate, roll back to FALLBACK on failure, mark complete."""
    tell_systemd(host, cd, info)
    host.crashpoint("systemd-told")
    runs = info.restart and info.service
    failure = ""
    if runs and info.complete:  # it ran before: a rollback to it
        restart(host, cd)
        host.crashpoint("restarted")
    elif runs:
        failure = health(host, cd, window)
        host.crashpoint("health-watched")
    journal = host.journal(cd.unit_name) if failure else ()
    if failure and fallback is not None:
        back = switch(host, cd, fallback, info, restart_it=True)
        done = settle(host, cd, back, None, window)
        return Settled(done.info, failure, journal, rolled_back=True, restarted=True)
    return Settled(mark_complete(cd, info), failure, journal, restarted=runs)


def health(host: Host, cd: ContainerDir, window: float) -> str:
    """'' if the (re)started unit is healthy over WINDOW seconds, else why not."""
    job = host.units.restart(cd.unit_name)
    host.crashpoint("restarted")
    if job is not JobResult.DONE:
        return f"could not be started (job {job.value})"
    seen = host.units.observe(cd.unit_name, window)
    return "" if seen.healthy else seen.verdict.reason
