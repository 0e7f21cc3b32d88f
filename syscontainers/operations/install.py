"""``install``: turn an image into an enabled systemd service in slot 0 (or run it once).

The steps, all under the store's exclusive lock:

1. reconcile the name, then refuse it if it is installed (or finish an install
   that a crash interrupted), or if a unit or tmpfiles file of that name exists
   anywhere systemd or systemd-tmpfiles looks, or systemd knows such a unit
   (``--override-system-unit`` allows shadowing one, for an explicit --name only);
2. find the image, pulling it if it is missing (a name derived from the image is
   checked before anything is fetched);
3. compute the values and report every missing variable (nothing written yet);
4. check out, render and stage NAME.0 (see operations.slot);
5. install the host files, publish the unit and tmpfiles, flip NAME -> NAME.0;
6. systemd-tmpfiles --create, daemon-reload, enable, and with --now start it and
   watch it over the health window, as update does (operations.settle); a start
   that fails leaves it installed, enabled and failed, and is reported with the
   unit's last journal lines.

An error before the flip removes everything this install wrote. An image
labelled ``atomic.run=once`` is run once in a throwaway bundle instead, and
leaves nothing behind.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path

from syscontainers import progress
from syscontainers.deploy.layout import ContainerDir, run_dir, slot_files
from syscontainers.deploy.publish import Published, system_files
from syscontainers.errors import CommandError, ContainerExistsError, UsageError
from syscontainers.fsutil import atomic_write, remove_tree, tmp_name
from syscontainers.operations.activation import DEFAULT_HEALTH_TIMEOUT, discard_slot, reconcile
from syscontainers.operations.autoupdate import parse_policy
from syscontainers.operations.settle import Settled, health, settle, switch
from syscontainers.operations.slot import (
    Host,
    ImageChoice,
    acquire,
    build_slot,
    default_name,
    prepare,
    render_bundle,
)
from syscontainers.record import record, replace
from syscontainers.render import KeptValues
from syscontainers.render.values import check_sets
from syscontainers.runtime import run_argv
from syscontainers.settings_table import RUNTIME

RUN_ONCE_LABEL = "atomic.run"


class InstallOutcome(Enum):
    """What an install did."""

    INSTALLED = "installed"
    FINISHED = "finished"  # an install that a crash interrupted was completed
    RAN_ONCE = "ran-once"  # an atomic.run=once image ran and left nothing behind


@record
class InstallRequest:
    """What the user asked install to do."""

    image: str
    name: str | None = None
    sets: tuple[tuple[str, str], ...] = ()
    runtime: str = RUNTIME.default  # a bare name is looked up on PATH
    rootfs: Path | None = None  # use this directory as the rootfs instead of a checkout
    start: bool = False  # --now
    override_system_unit: bool = False  # NAME may shadow a unit or tmpfiles file of the OS
    health_timeout: float = DEFAULT_HEALTH_TIMEOUT  # how long a --now start must stay active
    raw: tuple[str, ...] = ()  # the names of SETS given with --set-raw
    auto_update: str = ""  # --auto-update: registry, local or disabled ("": the image label)


@record
class InstallResult:
    """The outcome of an install."""

    name: str
    outcome: InstallOutcome
    deployment: str = ""
    image_id: str = ""
    started: bool = False
    host_files: tuple[str, ...] = ()
    exit_code: int = 0  # of the run, for RAN_ONCE
    failure: str = ""  # why the --now start failed its health check (installed all the same)
    journal: tuple[str, ...] = ()  # the unit's last journal lines, with a failure


def _check_request(host: Host, req: InstallRequest) -> None:
    check_sets(dict(req.sets))
    if req.auto_update:
        parse_policy(req.auto_update)
    if req.start and host.paths.offline:
        raise UsageError(
            f"--now cannot start anything in the offline root {host.paths.sysroot}",
            hint="leave out --now: the enabled service starts when that root boots",
        )
    if req.override_system_unit and req.name is None:
        raise UsageError(
            "--override-system-unit needs an explicit --name",
            hint="a name derived from the image never shadows a unit of the system",
        )
    rootfs = req.rootfs
    if rootfs is not None and (not rootfs.is_absolute() or not host.paths.on_host(rootfs).is_dir()):
        raise UsageError(
            f"--rootfs {req.rootfs}: not an absolute path to a directory",
            hint="give the absolute path of an existing root filesystem",
        )


def install(host: Host, req: InstallRequest) -> InstallResult:
    """Install REQ.image as a container (see the module docstring for the steps)."""
    _check_request(host, req)
    req = replace(req, runtime=host.locate_runtime(req.runtime))
    with host.locked():
        if req.name is not None:
            finished = _claim(host, host.container(req.name), req)
            if finished is not None:
                return finished
        choice = acquire(host, req.image, vet=lambda key: _derive_name(key, req))
        name = req.name or default_name(choice.ref, req.image)
        if choice.image.config.label(RUN_ONCE_LABEL) == "once":
            if host.paths.offline:
                raise UsageError(
                    f'image "{req.image}" is labelled {RUN_ONCE_LABEL}=once: it '
                    f"runs when installed, and nothing runs in the offline root "
                    f"{host.paths.sysroot}",
                    hint="install it on the booted host",
                )
            return run_once(host, name, choice, req)
        cd = host.container(name)
        if req.name is None:
            finished = _claim(host, cd, req)
            if finished is not None:
                return finished
        return _install_new(host, cd, choice, req)


def _derive_name(store_name: str, req: InstallRequest) -> None:
    """Before a pull fetches anything: the name derived from it must be valid."""
    if req.name is None:
        default_name(store_name, req.image)


def _claim(host: Host, cd: ContainerDir, req: InstallRequest) -> InstallResult | None:
    """Reconcile CD; refuse it if taken; finish and return an interrupted install of it."""
    report = reconcile(host, cd, req.health_timeout)
    if os.path.lexists(cd.link):
        # finished here: only an install's own first activation (slot 0, nothing before it)
        if report.settled is None or not report.first or cd.present_slots() != [0]:
            raise ContainerExistsError(
                f"container {cd.name} is already installed",
                hint=f"use 'syscontainers update {cd.name}' to change it, "
                f"or 'syscontainers uninstall {cd.name}' first",
            )
        settled = report.settled
        if req.start and not settled.restarted and settled.info.service:
            failure = health(host, cd, req.health_timeout)  # the first run had no --now
            settled = Settled(
                settled.info, failure, host.journal(cd.unit_name) if failure else (), restarted=True
            )
        return _result(cd, InstallOutcome.FINISHED, settled)
    _check_free(host, cd, req)
    return None


def _result(cd: ContainerDir, outcome: InstallOutcome, settled: Settled) -> InstallResult:
    info = settled.info
    return InstallResult(
        cd.name,
        outcome,
        f"{cd.name}.{info.slot}",
        info.image_id,
        settled.restarted and not settled.failure,
        tuple(r.path for r in info.host_files),
        failure=settled.failure,
        journal=settled.journal,
    )


def _check_free(host: Host, cd: ContainerDir, req: InstallRequest) -> None:
    """Refuse a name whose unit or tmpfiles file the system has (see the module docstring)."""
    where = Published.of(cd, host.paths)
    found = system_files(cd, host.paths)
    override = req.override_system_unit and req.name is not None
    hint = (
        "choose another name with --name"
        if req.name is None
        else "choose another name with --name, or add --override-system-unit to shadow "
        "the system's on purpose (uninstall then stops that unit)"
    )
    for path in found:
        if path in (where.unit, where.tmpfiles):
            raise ContainerExistsError(
                f"{path} exists and was not installed by syscontainers",
                hint="choose another container name with --name",
            )
    if override:
        return
    if found:
        raise ContainerExistsError(
            f"the container name {cd.name} is taken by the system: "
            f"{', '.join(map(str, found))} exist{'s' if len(found) == 1 else ''}",
            hint=hint,
        )
    state = host.units.states([cd.unit_name])[cd.unit_name]
    if state.exists:
        raise ContainerExistsError(
            f"the container name {cd.name} is taken by the system: systemd has a unit "
            f"{cd.unit_name} ({state.load_state.value}, {state.active_state.value})",
            hint=hint,
        )


def _install_new(
    host: Host, cd: ContainerDir, choice: ImageChoice, req: InstallRequest
) -> InstallResult:
    kept = KeptValues(tuple(sorted(dict(req.sets).items())), "", tuple(sorted(req.raw)))
    plan = prepare(host, cd, 0, choice, req.runtime, kept, auto_update=req.auto_update)
    progress.step(host.reporter, f"installing {cd.name} from {choice.given}")
    info = build_slot(host, plan, req.rootfs)
    try:
        info = switch(host, cd, info, None, restart_it=req.start)
    except BaseException:
        discard_slot(host, cd, 0, None)
        raise
    return _result(cd, InstallOutcome.INSTALLED, settle(host, cd, info, None, req.health_timeout))


def run_once(host: Host, name: str, choice: ImageChoice, req: InstallRequest) -> InstallResult:
    """Run an atomic.run=once image in a throwaway bundle; keep nothing.

    Its tmpfiles lines (the image's, or one per missing bind source) are applied
    before the run and removed after it, as atomic did: they make the bind sources.
    """
    base = run_dir(host.paths.deployments)
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    bundle = tmp_name(base, name)
    cd = ContainerDir(base, host.container(name).name)
    kept = KeptValues(tuple(sorted(dict(req.sets).items())), "", tuple(sorted(req.raw)))
    plan = prepare(host, cd, 0, choice, req.runtime, kept, destdir=bundle)
    os.mkdir(bundle, 0o700)
    try:
        rendered = render_bundle(host, plan, bundle, req.rootfs, service=False)
        with _applied_tmpfiles(host, slot_files(cd, bundle)["tmpfiles"], rendered.tmpfiles):
            progress.step(host.reporter, f"running {choice.given} once as {name}")
            code = host.execute(run_argv(plan.runtime, str(bundle), name))
    finally:
        remove_tree(bundle)
    return InstallResult(
        name, InstallOutcome.RAN_ONCE, image_id=choice.image.manifest_digest, exit_code=code
    )


@contextmanager
def _applied_tmpfiles(host: Host, conf: Path, text: str) -> Iterator[None]:
    """systemd-tmpfiles --create TEXT (written to CONF) around the block, --remove after."""
    if not text.strip():
        yield
        return
    atomic_write(conf, text.encode(), sync=False)
    host.tmpfiles.create(conf)
    try:
        yield
    finally:
        try:
            host.tmpfiles.remove(conf)
        except CommandError as e:
            progress.warn(host.reporter, e.message)
