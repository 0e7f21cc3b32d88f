"""``auto-update``: update the containers that opted in, when their image changed.

A container opts in with a policy, as podman auto-update's containers do:

- ``install --auto-update POLICY``, recorded in info.json and kept through
  updates and rollbacks; or else
- the label ``io.containers.autoupdate=POLICY`` on its installed image.

POLICY is ``registry`` (the image it was installed from is checked where it came
from: a registry, or an oci:/oci-archive:/docker-archive: source), ``local`` (its
name in the store is checked: a later ``pull`` updates it) or ``disabled``
(the option only: overrides a label). Any other label value is reported as an error.

For each container that opted in, under the store's exclusive lock:

1. the digest its image reference names now is found without pulling: for
   ``registry`` the source resolves its manifest (for a registry: a GET of the
   manifest, and of the platform's manifest for an index, no blob); for
   ``local`` the store resolves the name;
2. the same digest as the installed image's: nothing is touched;
3. a new one: ``update`` (pull, new slot, health gate); a deployment that does
   not stay active is rolled back by itself and reported as ``rolled-back``.

A failure of one container (registry down, rolled back) does not stop the
others. ``dry_run`` does steps 1 and 2 only (``pending`` where an update is due)
and writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from syscontainers.deploy.layout import (
    ContainerDir,
    DeploymentInfo,
    active_slot,
    container_names,
    slot_info,
)
from syscontainers.errors import ReferenceParseError, SysContainersError, UsageError
from syscontainers.oci import Platform
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
from syscontainers.reference import is_short_name
from syscontainers.reference import parse as parse_reference
from syscontainers.sources import open_source, parse_source

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


@dataclass(frozen=True, slots=True)
class AutoUpdateOptions:
    """What the user asked auto-update to do."""

    dry_run: bool = False
    health_timeout: float = DEFAULT_HEALTH_TIMEOUT


@dataclass(frozen=True, slots=True)
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
        raise UsageError(f"unknown auto-update policy {text!r}",
                         hint="use registry, local or disabled") from None


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
        raise UsageError(f'image "{info.image}" has the label {LABEL}={label!r}, which is '
                         "not a policy", hint="the label takes registry or local") from e


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
            f"with --auto-update local (checks the store name {info.ref!r})")
    return "docker://" + info.ref


def current_digest(host: Host, info: DeploymentInfo, policy: Policy) -> str:
    """The manifest digest INFO's image reference names now, without pulling it."""
    if policy is Policy.LOCAL:
        return resolve(host.store, info.ref)
    source = open_source(parse_source(check_source(info)), host.registry)
    try:
        return source.resolve(Platform.host()).manifest_digest
    finally:
        source.close()


def auto_update(
    host: Host, opts: AutoUpdateOptions, on_row: Callable[[AutoUpdateRow], None] | None = None
) -> list[AutoUpdateRow]:
    """Check and update every container that opted in (see the module docstring); ON_ROW
    is called with each row as soon as it is known."""
    rows: list[AutoUpdateRow] = []
    with host.locked():
        for name in container_names(host.paths.deployments):
            row = _one(host, host.container(name), opts)
            if row is not None:
                rows.append(row)
                if on_row is not None:
                    on_row(row)
    return rows


def _one(host: Host, cd: ContainerDir, opts: AutoUpdateOptions) -> AutoUpdateRow | None:
    """The row for CD, or None if it did not opt in."""
    try:
        info = slot_info(cd, active_slot(cd))  # a container that did not opt in is not touched
        if info is None or policy_of(host, info) is Policy.DISABLED:
            return None
        if not opts.dry_run:  # finish what a crash interrupted first, as update does
            info = active_info(host, cd, opts.health_timeout)
        policy = policy_of(host, info)
    except SysContainersError as e:
        return AutoUpdateRow(cd.name, "", Policy.DISABLED, Status.FAILED, "", "",
                             e.message, e.hint or "")
    if policy is Policy.DISABLED:
        return None
    row = AutoUpdateRow(cd.name, info.image, policy, Status.UNCHANGED, info.image_id)
    try:
        digest = current_digest(host, info, policy)
    except SysContainersError as e:
        return _failed(row, e)
    if digest == info.image_id:
        return _with(row, Status.UNCHANGED, digest)
    if opts.dry_run:
        return _with(row, Status.PENDING, digest)
    req = UpdateRequest(cd.name, pull=policy is Policy.REGISTRY,
                        health_timeout=opts.health_timeout,
                        source=check_source(info) if policy is Policy.REGISTRY else None)
    try:
        result = update_locked(host, req)
    except SysContainersError as e:
        return _failed(_with(row, Status.FAILED, digest), e)
    return _updated(row, result, digest)


def _with(row: AutoUpdateRow, status: Status, digest: str) -> AutoUpdateRow:
    return AutoUpdateRow(row.name, row.image, row.policy, status, row.image_id, digest)


def _failed(row: AutoUpdateRow, e: SysContainersError) -> AutoUpdateRow:
    return AutoUpdateRow(row.name, row.image, row.policy, Status.FAILED, row.image_id,
                         row.new_image_id, e.message, e.hint or "")


def _updated(row: AutoUpdateRow, result: UpdateResult, digest: str) -> AutoUpdateRow:
    status = {UpdateOutcome.UPDATED: Status.UPDATED, UpdateOutcome.UP_TO_DATE: Status.UNCHANGED,
              UpdateOutcome.ROLLED_BACK: Status.ROLLED_BACK}[result.outcome]
    new = result.image_id if status is Status.UPDATED else digest
    return AutoUpdateRow(row.name, row.image, row.policy, status, row.image_id, new,
                         result.reason, "", result.journal)
