"""``auto-update``: update the containers that opted in, when their image changed.

A container opts in with a policy, as podman auto-update's containers do:

- ``install --auto-update POLICY``, recorded in info.json and kept through
  updates and rollbacks; or else
- the label ``io.containers.autoupdate=POLICY`` on its installed image.

POLICY is ``registry`` (the image it was installed from is checked where it came
from: a registry, or an oci:/oci-archive:/docker-archive: source), ``local`` (its
name in the store is checked: a later ``pull`` updates it) or ``disabled``
(the option only: overrides a label). Any other label value is reported as an error.

For each container that opted in:

1. under the store's shared lock, its active deployment and policy are read
   (for ``local``, the digest its name in the store resolves to as well);
2. with no lock held, for ``registry``, the source resolves the manifest its
   reference names now (for a registry: a GET of the manifest, and of the
   platform's manifest for an index; no config, no layer);
3. the same digest as the installed image's: nothing is touched;
4. a new one, under the exclusive lock: ``update`` (reconcile, pull, new slot,
   health gate); a deployment that does not stay active is rolled back by itself
   and reported as ``rolled-back``, and the image is recorded in the info.json
   of the deployment it went back to (``auto_update_failed``): later runs report
   it as failed without trying it again (and restarting the service twice),
   until the reference names another image or an update moves on. A switch a
   crash interrupted is finished there too, as any update would.

A failure of one container (registry down, rolled back) does not stop the
others. ``dry_run`` does steps 1 and 2 only (``pending`` where an update is due)
and writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

from syscontainers.deploy.layout import (
    ContainerDir,
    DeploymentInfo,
    active_slot,
    container_names,
    slot_info,
    write_info,
)
from syscontainers.errors import ReferenceParseError, SysContainersError, UsageError
from syscontainers.oci import Platform, digest_hex
from syscontainers.operations.activation import DEFAULT_HEALTH_TIMEOUT
from syscontainers.operations.host import Host
from syscontainers.operations.images import load_image, resolve
from syscontainers.operations.update import (
    UpdateOutcome,
    UpdateRequest,
    UpdateResult,
    active_info,
    update_locked,
)
from syscontainers.record import record, replace
from syscontainers.reference import is_short_name
from syscontainers.reference import parse as parse_reference
from syscontainers.sources import open_source, parse_source, registry_source
from syscontainers.store.lock import LockMode

LABEL = "io.containers.autoupdate"


class Policy(Enum):
    """How a container is auto-updated."""

    REGISTRY = "registry"
    LOCAL = "local"
    DISABLED = "disabled"


class Status(Enum):
    """What auto-update did to one container (podman's UPDATED column)."""

    UNCHANGED = "false"
    PENDING = "pending"  # dry run: the image changed
    UPDATED = "true"
    ROLLED_BACK = "rolled-back"  # the update failed its health check
    FAILED = "failed"  # the check or the update failed


FAILURES = frozenset({Status.ROLLED_BACK, Status.FAILED})


@record
class AutoUpdateOptions:
    """What the user asked auto-update to do."""

    dry_run: bool = False
    health_timeout: float = DEFAULT_HEALTH_TIMEOUT


@record
class AutoUpdateRow:
    """The outcome for one container that opted in."""

    name: str
    image: str
    policy: Policy
    status: Status
    image_id: str  # the installed image's, before
    new_image_id: str = ""  # what the reference names now ("" if the check failed)
    reason: str = ""  # why it failed or was rolled back
    hint: str = ""
    journal: tuple[str, ...] = ()  # the failed unit's last journal lines, for ROLLED_BACK

    @property
    def unit(self) -> str:
        """The container's systemd unit."""
        return f"{self.name}.service"


def parse_policy(text: str) -> Policy:
    """The policy TEXT names; UsageError if none."""
    try:
        return Policy(text)
    except ValueError:
        raise UsageError(
            f"unknown auto-update policy {text!r}", hint="use registry, local or disabled"
        ) from None


def policy_of(host: Host, info: DeploymentInfo) -> Policy:
    """INFO's policy: the recorded option, else its image's label, else disabled."""
    if info.auto_update:
        return parse_policy(info.auto_update)
    label = load_image(host.store, info.image_id, info.image).config.label(LABEL)
    if not label:
        return Policy.DISABLED
    try:
        return parse_policy(label)
    except UsageError as e:
        raise UsageError(
            f'image "{info.image}" has the label {LABEL}={label!r}, which is not a policy',
            hint="the label takes registry or local",
        ) from e


def check_source(info: DeploymentInfo) -> str:
    """Where the registry policy looks for INFO's image: its source, or for an image
    installed from the store, docker:// and its fully qualified name."""
    if info.source:
        return info.source
    try:
        ref = parse_reference(info.ref)
    except ReferenceParseError:
        ref = None
    if ref is None or is_short_name(ref) or ref.digest:
        raise UsageError(
            f"{info.name} was installed from the store as {info.ref!r}, which names no "
            "registry to check",
            hint=f"update it once with --rebase docker://REGISTRY/NAME:TAG, or install it "
            f"with --auto-update local (checks the store name {info.ref!r})",
        )
    return registry_source(info.ref)


def current_digest(host: Host, info: DeploymentInfo, policy: Policy) -> str:
    """The manifest digest INFO's image reference names now, without pulling it."""
    if policy is Policy.LOCAL:
        return resolve(host.store, info.ref)
    source = open_source(parse_source(check_source(info)), host.registry)
    try:
        return source.resolve(Platform.host()).manifest_digest
    finally:
        source.close()


@record
class _Entry:
    """One opted-in container between the phases: its row so far and its deployment."""

    row: AutoUpdateRow
    info: DeploymentInfo | None = None  # None once the row is final
    unfinished: bool = False  # a switch a crash interrupted: reconcile it


def auto_update(
    host: Host, opts: AutoUpdateOptions, on_row: Callable[[AutoUpdateRow], None] | None = None
) -> list[AutoUpdateRow]:
    """Check and update every container that opted in (see the module docstring); ON_ROW
    is called with each row once it is final.

    The deployments and the store are read under the shared lock, the registries are asked
    with no lock held (a slow one does not hold up other commands), and the exclusive lock
    is taken only if something is to change."""
    with host.locked(LockMode.SHARED):
        entries = [
            e
            for e in (
                _survey(host, host.container(n)) for n in container_names(host.paths.deployments)
            )
            if e
        ]
    entries = [_check(host, e) for e in entries]
    if not opts.dry_run and any(e.info is not None for e in entries):
        with host.locked():
            entries = [_act(host, e, opts) for e in entries]
    rows = [e.row for e in entries]
    for row in rows:
        if on_row is not None:
            on_row(row)
    return rows


def _survey(host: Host, cd: ContainerDir) -> _Entry | None:
    """CD's entry if it opted in (a local policy is checked here), else None."""
    try:
        info = slot_info(cd, active_slot(cd))
        policy = Policy.DISABLED if info is None else policy_of(host, info)
    except SysContainersError as e:
        return _Entry(
            AutoUpdateRow(
                cd.name, "", Policy.DISABLED, Status.FAILED, "", "", e.message, e.hint or ""
            )
        )
    if info is None or policy is Policy.DISABLED:
        return None
    row = AutoUpdateRow(cd.name, info.image, policy, Status.UNCHANGED, info.image_id)
    entry = _Entry(row, info, not info.complete or info.activating)
    return _check(host, entry) if policy is Policy.LOCAL else entry


def _check(host: Host, entry: _Entry) -> _Entry:
    """ENTRY with the digest its reference names now: UNCHANGED or PENDING, or FAILED."""
    info, row = entry.info, entry.row
    if info is None or row.new_image_id:  # final, or checked already (local)
        return entry
    try:
        digest = current_digest(host, info, row.policy)
    except SysContainersError as e:
        return _Entry(_failed(row, e))
    if digest == info.image_id:
        return _Entry(_with(row, Status.UNCHANGED, digest), info, entry.unfinished)
    if digest == info.auto_update_failed:
        new = digest_hex(digest)[:12]
        return _Entry(
            _failed(
                _with(row, Status.FAILED, digest),
                UsageError(
                    f"the image {new} that {row.image} names failed its health check "
                    "when auto-update tried it, and was rolled back; it is not tried again",
                    hint=f"push a fixed image, or try it with 'syscontainers update {row.name}'",
                ),
            ),
            info,
            entry.unfinished,
        )
    return _Entry(_with(row, Status.PENDING, digest), info, entry.unfinished)


def _act(host: Host, entry: _Entry, opts: AutoUpdateOptions) -> _Entry:
    """Under the exclusive lock: update a PENDING entry, finish an unfinished one."""
    info, row = entry.info, entry.row
    if info is None or (row.status is not Status.PENDING and not entry.unfinished):
        return entry
    cd = host.container(row.name)
    try:
        if row.status is not Status.PENDING:
            active_info(host, cd, opts.health_timeout)
            return _Entry(row)
        now = slot_info(cd, active_slot(cd))
        if now is None or policy_of(host, now) is not row.policy:  # changed meanwhile
            return _Entry(_with(row, Status.UNCHANGED, row.new_image_id))
        req = UpdateRequest(
            cd.name,
            pull=row.policy is Policy.REGISTRY,
            health_timeout=opts.health_timeout,
            source=check_source(info) if row.policy is Policy.REGISTRY else None,
        )
        result = update_locked(host, req)
        if result.outcome is UpdateOutcome.ROLLED_BACK:
            _remember_failure(cd, row.new_image_id)
        return _Entry(_updated(row, result, row.new_image_id))
    except SysContainersError as e:
        return _Entry(_failed(_with(row, Status.FAILED, row.new_image_id), e))


def _remember_failure(cd: ContainerDir, digest: str) -> None:
    """Record in the active deployment that DIGEST failed, so the next run skips it."""
    active = slot_info(cd, active_slot(cd))
    if active is not None:
        write_info(cd.slot_dir(active.slot), replace(active, auto_update_failed=digest))


def _with(row: AutoUpdateRow, status: Status, digest: str) -> AutoUpdateRow:
    return AutoUpdateRow(row.name, row.image, row.policy, status, row.image_id, digest)


def _failed(row: AutoUpdateRow, e: SysContainersError) -> AutoUpdateRow:
    return AutoUpdateRow(
        row.name,
        row.image,
        row.policy,
        Status.FAILED,
        row.image_id,
        row.new_image_id,
        e.message,
        e.hint or "",
    )


def _updated(row: AutoUpdateRow, result: UpdateResult, digest: str) -> AutoUpdateRow:
    status = {
        UpdateOutcome.UPDATED: Status.UPDATED,
        UpdateOutcome.UP_TO_DATE: Status.UNCHANGED,
        UpdateOutcome.ROLLED_BACK: Status.ROLLED_BACK,
    }[result.outcome]
    new = result.image_id if status is Status.UPDATED else digest
    return AutoUpdateRow(
        row.name,
        row.image,
        row.policy,
        status,
        row.image_id,
        new,
        result.reason,
        "",
        result.journal,
    )
