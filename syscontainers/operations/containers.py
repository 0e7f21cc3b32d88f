"""``list``, ``uninstall`` and ``run``: installed containers, their removal, and commands in them.

``list`` reads every container's info.json and asks systemd for all the unit
states in one round trip (``UnitManager.states``). By default it shows the
installed containers (those with a NAME symlink); ``--all`` adds
half-installed ones (slot directories left without a symlink by a crash).

``uninstall`` works on whatever is there: stop and disable the unit
(tolerating one systemd does not know), remove it and reload, run
``systemd-tmpfiles --remove`` and delete the tmpfiles file, remove the host
files that are unchanged (naming the changed ones it keeps), then the
deployments, the symlink and the pins.

``run`` execs a command in the running container, or, when the service is
stopped, runs it once in a throwaway bundle made from the active deployment.
A stopped service's bind sources under /run may be gone (systemd removes a
unit's ``RuntimeDirectory=`` when it stops, and /run is empty after a reboot):
before such a run the container's tmpfiles lines are applied again, and a
bind source under /run or /var/run that is still missing is made as a directory.

``uninstall`` and ``run`` import activation and update when they run: ``list``,
the verb people run most, loads only the deployment layout and the host seams.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from syscontainers import progress
from syscontainers.deploy.layout import (
    ContainerDir,
    DeploymentInfo,
    active_slot,
    container_names,
    half_installed_names,
    info_or_none,
    run_dir,
    slot_files,
    slot_info,
)
from syscontainers.deploy.publish import Published, published_by, system_files
from syscontainers.errors import (
    CommandError,
    ContainerNotFoundError,
    StoreCorruptError,
    SystemdError,
    UsageError,
)
from syscontainers.fsutil import atomic_write, remove_tree, tmp_name
from syscontainers.operations.host import Host
from syscontainers.record import as_dict, record
from syscontainers.runtime import Runtime, exec_argv, run_argv
from syscontainers.store.lock import LockMode
from syscontainers.systemd_states import JobResult, UnitState

HALF_INSTALLED = "half-installed"
DAMAGED = "damaged"  # the active deployment's info.json cannot be read
NO_SERVICE = "no-service"


@record
class ContainerRow:
    """One line of ``list``."""

    name: str
    image: str
    image_id: str
    deployment: str  # NAME.N, the active slot ("" when half-installed)
    runtime: str
    state: str  # systemd's active state, or no-service, not-found, half-installed
    previous: str = ""  # the other slot, which rollback would switch to
    complete: bool = True
    problem: str = ""  # why the deployment cannot be read (state "damaged")

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return as_dict(self)


def _state_text(state: UnitState | None, info: DeploymentInfo) -> str:
    if not info.service:
        return NO_SERVICE
    if state is None or not state.exists:
        return "not-found"
    return state.active_state.value


def _row(cd: ContainerDir, info: DeploymentInfo, state: UnitState | None) -> ContainerRow:
    other = 1 - info.slot
    previous = f"{cd.name}.{other}" if os.path.isdir(cd.slot_dir(other)) else ""
    return ContainerRow(
        cd.name,
        info.image,
        info.image_id,
        f"{cd.name}.{info.slot}",
        info.runtime,
        _state_text(state, info),
        previous,
        info.complete,
    )


def list_containers(host: Host, show_all: bool = False) -> list[ContainerRow]:
    """Installed containers (and, with SHOW_ALL, half-installed ones), with live states."""
    base = host.paths.deployments
    with host.locked(LockMode.SHARED):
        infos: list[tuple[ContainerDir, DeploymentInfo]] = []
        damaged: list[ContainerRow] = []
        for name in container_names(base):
            cd = ContainerDir(base, name)
            try:
                info = slot_info(cd, active_slot(cd))
            except StoreCorruptError as e:
                progress.warn(host.reporter, f"{e.message}; hint: {e.hint}", name=name)
                damaged.append(ContainerRow(name, "", "", "", "", DAMAGED, problem=e.message))
                continue
            if info is not None:
                infos.append((cd, info))
        units = [cd.unit_name for cd, info in infos if info.service]
        states = host.units.states(units) if units else {}
        rows = [_row(cd, info, states.get(cd.unit_name)) for cd, info in infos] + damaged
        if show_all:
            rows += [_half_row(ContainerDir(base, n)) for n in half_installed_names(base)]
    return sorted(rows, key=lambda r: r.name)


def _half_row(cd: ContainerDir) -> ContainerRow:
    infos = [i for i in (info_or_none(cd, s) for s in cd.present_slots()) if i is not None]
    info = infos[0] if infos else None
    return ContainerRow(
        cd.name,
        info.image if info else "",
        info.image_id if info else "",
        "",
        info.runtime if info else "",
        HALF_INSTALLED,
        complete=False,
    )


@record
class UninstallResult:
    """What an uninstall removed and kept."""

    name: str
    deployments: tuple[str, ...]
    removed_files: tuple[str, ...]
    kept_files: tuple[str, ...]  # host files changed on the host, left in place


def uninstall(host: Host, name: str) -> UninstallResult:
    """Remove container NAME and everything it installed (see the module docstring)."""
    from syscontainers.operations.activation import remove_everything

    with host.locked():
        cd = host.container(name)
        if not cd.exists():
            raise ContainerNotFoundError(
                f"no container named {name} is installed",
                hint="see 'syscontainers list --all'",
            )
        deployments = tuple(f"{name}.{s}" for s in cd.present_slots())
        for slot in cd.present_slots():
            if info_or_none(cd, slot) is None:
                progress.warn(
                    host.reporter,
                    f"{name}.{slot} has no readable info.json: the "
                    "host files it may have installed cannot be told apart, so they "
                    "are left in place",
                )
        where = Published.of(cd, host.paths)
        unit_ours, conf_ours = _published_ours(host, cd)
        others = [p for p in system_files(cd, host.paths) if p not in (where.unit, where.tmpfiles)]
        if unit_ours or not [p for p in others if p.name == cd.unit_name]:
            _stop_and_disable(host, cd)
        else:
            progress.warn(
                host.reporter,
                f"left {cd.unit_name} alone: it is the system's "
                f"({', '.join(map(str, others))}), not {name}'s",
            )
        for copy, ours in ((where.unit, unit_ours), (where.tmpfiles, conf_ours)):
            if not ours and os.path.lexists(copy):
                progress.warn(host.reporter, f"kept {copy}: it is not the one {name} installed")
        if unit_ours:
            where.unit.unlink()
        host.units.daemon_reload()
        if conf_ours:
            try:
                host.tmpfiles.remove(where.tmpfiles)
            except CommandError as e:
                progress.warn(host.reporter, f"{name}: {e.message}")
            where.tmpfiles.unlink()
        removed, kept = remove_everything(host, cd)
        if unit_ours and others:
            progress.warn(
                host.reporter,
                f"{cd.unit_name} is the system's again "
                f"({', '.join(map(str, others))}) and is stopped: start it if it "
                "should run",
            )
        for path in kept:
            progress.warn(host.reporter, f"kept {path}: it was changed after {name} installed it")
        return UninstallResult(name, deployments, tuple(removed), tuple(kept))


def _published_ours(host: Host, cd: ContainerDir) -> tuple[bool, bool]:
    """Whether the published unit and tmpfiles file are those of one of CD's slots."""
    unit = conf = False
    for slot in cd.present_slots():
        u, c = published_by(cd, cd.slot_dir(slot), host.paths)
        unit, conf = unit or u, conf or c
    return unit, conf


def _stop_and_disable(host: Host, cd: ContainerDir) -> None:
    unit = cd.unit_name
    try:
        job = host.units.stop(unit)
        if job is not JobResult.DONE:
            progress.warn(host.reporter, f"stopping {unit} ended with {job.value!r}")
        host.units.disable([unit])
        host.units.reset_failed(unit)
    except SystemdError as e:  # a unit systemd never loaded has nothing to stop or disable
        progress.warn(host.reporter, f"{unit}: {e.message}")


def service_info(cd: ContainerDir, purpose: str) -> DeploymentInfo:
    """The active deployment of installed container CD, which must have a service (for
    PURPOSE, as the error says: "to run commands in")."""
    info = slot_info(cd, active_slot(cd))
    if info is None:
        raise ContainerNotFoundError(
            f"no container named {cd.name} is installed", hint="see 'syscontainers list'"
        )
    if not info.service:
        raise UsageError(
            f"container {cd.name} has no service {purpose}",
            hint="its image only installs host files",
        )
    return info


def run_in(host: Host, name: str, cmd: Sequence[str], tty: bool = False) -> int:
    """Run CMD in container NAME: exec if its service runs, else once in a fresh bundle."""
    from syscontainers.operations.update import is_running

    bundle: Path | None = None
    with host.locked(LockMode.SHARED):
        cd = host.container(name)
        info = service_info(cd, "to run commands in")
        runtime = Runtime.parse(info.runtime)
        if is_running(host, cd):
            argv = exec_argv(runtime, name, cmd, tty)
        else:
            bundle = one_off_bundle(cd, info, cmd, tty)
            recreate_run_sources(host, cd, bundle)
            argv = run_argv(runtime, str(bundle), f"{name}-run-{os.urandom(4).hex()}")
    try:
        return host.execute(argv)
    finally:
        if bundle is not None:
            remove_tree(bundle)


def one_off_bundle(cd: ContainerDir, info: DeploymentInfo, cmd: Sequence[str], tty: bool) -> Path:
    """A throwaway bundle whose config.json is the deployment's, running CMD on its rootfs."""
    files = slot_files(cd, cd.slot_dir(info.slot))
    config = json.loads(files["config"].read_bytes())
    config["root"]["path"] = os.path.realpath(files["rootfs"])
    linux = config.get("linux")
    if isinstance(linux, dict):  # the service's cgroup is not this one-off container's
        linux.pop("cgroupsPath", None)
    process = config.setdefault("process", {})
    if cmd:
        process["args"] = list(cmd)
    process["terminal"] = tty
    base = run_dir(cd.base)
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    bundle = tmp_name(base, cd.name)
    os.mkdir(bundle, 0o700)
    atomic_write(bundle / "config.json", json.dumps(config, indent=2).encode(), sync=False)
    return bundle


RUN_DIRS = ("/run", "/var/run")


def _under_run(path: str) -> bool:
    return any(path == d or path.startswith(d + "/") for d in RUN_DIRS)


def recreate_run_sources(host: Host, cd: ContainerDir, bundle: Path) -> tuple[str, ...]:
    """Make the missing bind sources under /run of BUNDLE's config; return those made."""
    from syscontainers.render.config_json import bind_sources

    def on_host(path: str) -> Path:
        return host.paths.host_root / path.lstrip("/")

    config = json.loads(slot_files(cd, bundle)["config"].read_bytes())
    missing = [p for p in bind_sources(config) if _under_run(p) and not on_host(p).exists()]
    if not missing:
        return ()
    tmpfiles = Published.of(cd, host.paths).tmpfiles
    if tmpfiles.exists():
        try:
            host.tmpfiles.create(tmpfiles)
        except CommandError as e:
            progress.warn(host.reporter, f"{cd.name}: {e.message}")
    for path in missing:
        on_host(path).mkdir(0o755, parents=True, exist_ok=True)
    return tuple(missing)
