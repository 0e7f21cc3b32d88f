"""``apply``: converge the host to a host manifest, by the existing verbs.

``survey`` reads the host under the store's shared lock: every installed
container's active deployment, whether its unit is enabled (its ``[Install]``
symlinks are all there, read from the files, so it works offline too), whether
it runs (live systemd only), the digest each manifest image has in the store,
and the names apply manages (``ROOT/apply.json``). ``provision.plan`` decides
purely; ``execute`` is a thin loop over install, update, uninstall, enable,
disable, start and stop, each taking the lock itself. ``apply.json`` is
rewritten only when the managed names change, so a second apply of the same
manifest writes nothing at all.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from syscontainers import progress, unitlinks
from syscontainers.deploy.layout import ContainerDir, active_slot, container_names, slot_info
from syscontainers.errors import StoreCorruptError, SysContainersError
from syscontainers.fsutil import atomic_write, read_bytes_if_exists
from syscontainers.operations.host import Host
from syscontainers.provision.manifest import ContainerSpec, HostManifest, UpdatePolicy
from syscontainers.provision.plan import Action, Current, HostState, Plan, Verb
from syscontainers.record import record
from syscontainers.store.lock import LockMode
from syscontainers.systemd_states import check_job

STATE_FILE = "apply.json"


@record
class Outcome:
    """What one executed action did."""

    action: Action
    detail: str

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {**self.action.to_json(), "detail": self.detail}


def state_path(host: Host) -> Path:
    """Where apply records the containers it manages."""
    return host.paths.root / STATE_FILE


def read_managed(host: Host) -> frozenset[str]:
    """The names apply manages (none before the first apply)."""
    data = read_bytes_if_exists(state_path(host))
    if data is None:
        return frozenset()
    try:
        doc = json.loads(data)
        names = doc["managed"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError("managed is not a list of names")
    except (ValueError, KeyError, TypeError) as e:
        raise StoreCorruptError(
            f"{state_path(host)} cannot be read: {e}",
            hint="remove it: apply then manages the manifest's containers "
            "again, but prunes none it installed before",
        ) from None
    return frozenset(names)


def write_managed(host: Host, names: frozenset[str]) -> None:
    """Record NAMES as managed, unless that is already what the file says."""
    if read_managed(host) == names and state_path(host).exists():
        return
    doc = {"managed": sorted(names)}
    atomic_write(state_path(host), (json.dumps(doc, indent=1) + "\n").encode())


def survey(host: Host, manifest: HostManifest) -> HostState:
    """The host as the plan needs it (see the module docstring)."""
    from syscontainers.operations.images import (
        load_image,
        resolve,
    )  # not slot: a plan renders nothing

    base = host.paths.deployments
    with host.locked(LockMode.SHARED):
        infos = {}
        for name in container_names(base):
            cd = ContainerDir(base, name)
            try:
                info = slot_info(cd, active_slot(cd))
            except StoreCorruptError as e:
                progress.warn(host.reporter, f"{e.message}; apply leaves {name} alone")
                continue
            if info is not None:
                infos[name] = (cd, info)
        live = not host.paths.offline
        units = [cd.unit_name for cd, info in infos.values() if info.service]
        states = host.units.states(units) if units and live else {}
        current = {}
        for name, (cd, info) in infos.items():
            state = states.get(cd.unit_name)
            current[name] = Current(
                name,
                info.image,
                info.image_id,
                info.kept.sets,
                info.runtime,
                info.service,
                _enabled(host, cd) if info.service else None,
                state.is_active if state is not None else None,
            )
        stored: dict[str, str | None] = {}
        for spec in manifest.containers:
            try:
                digest = resolve(host.store, spec.image)
                stored[spec.image] = load_image(host.store, digest, spec.image).manifest_digest
            except SysContainersError:  # not stored, or not a store name (oci:DIR:TAG …)
                stored[spec.image] = None
        return HostState(current, read_managed(host), stored, live)


def _enabled(host: Host, cd: ContainerDir) -> bool | None:
    """Whether CD's unit is enabled; None if it has no [Install] links to make."""
    if unitlinks.find_unit(host.paths, cd.unit_name) is None:
        return None
    links, _also = unitlinks.planned_links(host.paths, cd.unit_name)
    return unitlinks.is_enabled(host.paths, cd.unit_name) if links else None


def execute(
    host: Host,
    todo: Plan,
    health_timeout: float,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Carry TODO out in order; stop at the first failure (the error propagates).

    The managed names are recorded either way: after a failure, a prune that did not
    happen keeps its name, so the next apply --prune still removes that container."""
    done: list[Outcome] = []
    try:
        for action in todo.changes:
            progress.step(host.reporter, action.describe())
            outcome = Outcome(action, _run(host, action, health_timeout))
            done.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)
    finally:
        finished = {o.action for o in done}
        pending = {a.name for a in todo.changes if a.verb is Verb.UNINSTALL and a not in finished}
        write_managed(host, todo.managed | pending)
    return done


def _run(host: Host, action: Action, health_timeout: float) -> str:
    from syscontainers.operations.containers import uninstall

    unit = f"{action.name}.service"
    if action.verb is Verb.UNINSTALL:
        uninstall(host, action.name)
        return "uninstalled"
    if action.verb in (Verb.INSTALL, Verb.REINSTALL):
        assert action.spec is not None
        if action.verb is Verb.REINSTALL:
            uninstall(host, action.name)
        return _install(host, action.spec, health_timeout)
    if action.verb is Verb.UPDATE:
        return _update(host, action, health_timeout)
    if not _has_service(host, action.name):
        return "no service"
    if action.verb is Verb.ENABLE:
        host.units.enable([unit])
        host.units.daemon_reload()
        return "enabled"
    if action.verb is Verb.DISABLE:
        host.units.disable([unit])
        host.units.daemon_reload()
        return "disabled"
    if action.verb is Verb.START:
        check_job(unit, "start", host.units.start(unit))
        return "started"
    assert action.verb is Verb.STOP
    check_job(unit, "stop", host.units.stop(unit))
    return "stopped"


def _has_service(host: Host, name: str) -> bool:
    cd = host.container(name)
    info = slot_info(cd, active_slot(cd))
    return info is not None and info.service


def _install(host: Host, spec: ContainerSpec, health_timeout: float) -> str:
    from syscontainers.operations.install import InstallRequest, install

    assert spec.runtime is not None, "apply fills in the runtime before planning"
    if spec.update is UpdatePolicy.ALWAYS:
        _pull(host, spec.image)
    result = install(
        host,
        InstallRequest(
            spec.image, spec.name, spec.values, spec.runtime, health_timeout=health_timeout
        ),
    )
    return f"installed {result.deployment}"


def _update(host: Host, action: Action, health_timeout: float) -> str:
    from syscontainers.operations.update import UpdateOutcome, UpdateRequest, update

    spec = action.spec
    assert spec is not None
    if action.pull:
        _pull(host, spec.image)
    req = UpdateRequest(
        spec.name,
        spec.image if action.rebase else None,
        spec.values,
        pull=False,
        health_timeout=health_timeout,
    )
    result = update(host, req)
    if result.outcome is UpdateOutcome.ROLLED_BACK:
        raise SysContainersError(
            f"{spec.name}: the update failed its health check "
            f"({result.reason}); rolled back to {result.deployment}",
            hint=f"see: journalctl -u {spec.name}.service",
        )
    if result.outcome is UpdateOutcome.UP_TO_DATE:
        return "up to date"
    return f"updated to {result.deployment}"


def _pull(host: Host, image: str) -> None:
    """Fetch IMAGE again (update: always), so the store holds its newest version."""
    from syscontainers.operations.slot import pull_source
    from syscontainers.sources import has_transport, registry_source

    source = image if has_transport(image) else registry_source(image)
    with host.locked():
        pull_source(host, source, image)
