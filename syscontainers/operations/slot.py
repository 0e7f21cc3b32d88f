"""Building one deployment slot: find or pull the image, render it, stage it, rename it into place.

The shared half of install and update. ``Host`` (in ``operations.host``,
re-exported here) carries the seams every lifecycle operation acts through
(store, paths, systemd, systemd-tmpfiles, the reporter, the registry and the
way commands are run). ``prepare`` is the check that writes nothing: it reads
/exports straight from the store, computes the values and reports every
missing variable at once. ``build_slot`` then checks out, renders and stages
into a temp directory, pins the image, and renames the directory to NAME.N,
with ``complete`` false.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from syscontainers import progress
from syscontainers.checkout import checkout
from syscontainers.deploy.hostfiles import HostFileSource, host_directories, stage
from syscontainers.deploy.layout import (
    ContainerDir,
    DeploymentInfo,
    HostDirRecord,
    name_problem,
    slot_files,
    write_info,
)
from syscontainers.errors import (
    CheckoutError,
    ImageNotFoundError,
    RegistryUnreachableError,
    UsageError,
)
from syscontainers.fsutil import atomic_write, fsync_dir, remove_tree
from syscontainers.operations.host import Host as Host
from syscontainers.operations.images import StoredImage, load_image, resolve
from syscontainers.operations.inspect import export_entries, exports_files
from syscontainers.record import record, replace
from syscontainers.reference import parse as parse_reference
from syscontainers.render import (
    Exports,
    HostFacts,
    HostFile,
    KeptValues,
    Rendered,
    RuntimeCommands,
    UserDB,
    Values,
    check_complete,
    compute_values,
    host_facts,
    load_user_db,
    parse_exports,
    render_deployment,
    wants_detached,
)
from syscontainers.render.exports import HOSTFS
from syscontainers.render.grants import HostLimits
from syscontainers.render.hostfs import host_destination, substituted_renames
from syscontainers.render.templates import VariableKind, template_variables
from syscontainers.render.values import capability_names
from syscontainers.runtime import (
    Runtime,
    RuntimeMode,
    command_line,
    runtime_commands,
    service_cgroup,
)
from syscontainers.sources import has_transport, open_source, parse_source, registry_source
from syscontainers.store import Store
from syscontainers.tree import Entry, EntryKind


@record
class ImageChoice:
    """The image a deployment uses and how to find it again."""

    image: StoredImage
    given: str  # as the user typed it: IMAGE_NAME
    ref: str  # what resolves it in the store
    source: str  # a transport string to pull updates from, or ""


@record
class Prepared:
    """Everything decided about a deployment before anything is written."""

    cd: ContainerDir
    slot: int
    choice: ImageChoice
    runtime: Runtime
    runtime_text: str
    mode: RuntimeMode
    exports: Exports
    entries: dict[str, Entry]
    values: Values
    kept: KeptValues
    facts: HostFacts | None = None  # None: grant config.json what it asks (tests)
    hostfs_dirs: tuple[tuple[str, int], ...] = ()  # /exports/hostfs directories and modes
    auto_update: str = ""  # install --auto-update's policy, kept through updates

    @property
    def slot_dir(self) -> Path:
        """The final directory of this deployment."""
        return self.cd.slot_dir(self.slot)


def acquire(host: Host, text: str, vet: Callable[[str], None] | None = None) -> ImageChoice:
    """The image TEXT names: pulled if it is a transport string, else from the store, else
    pulled from a registry (when there is a registry transport). A pull calls VET with the
    store name before it fetches anything."""
    if has_transport(text):
        return pull_source(host, text, text, vet)
    try:
        return from_store(host.store, text, text, "")
    except ImageNotFoundError:
        if host.registry is None:
            raise
    try:
        return pull_source(host, registry_source(text), text, vet)
    except RegistryUnreachableError as e:
        raise RegistryUnreachableError(e.registry, e.reason, image=text) from e


def from_store(store: Store, ref: str, given: str, source: str) -> ImageChoice:
    """The stored image REF resolves to (no pull)."""
    digest = resolve(store, ref)
    return ImageChoice(load_image(store, digest, given), given, ref, source)


def pull_source(
    host: Host, source_text: str, given: str, vet: Callable[[str], None] | None = None
) -> ImageChoice:
    """Pull SOURCE_TEXT (only what is missing is imported) under the caller's lock."""
    from syscontainers.operations.pull import PullOptions, pull_locked  # not for --no-pull

    spec = parse_source(source_text)
    source = open_source(spec, host.registry)
    policy = host.policy(spec) if host.policy is not None else None
    options = PullOptions(policy=policy, vet_name=vet)
    try:
        result = pull_locked(host.store, source, options, reporter=host.reporter)
    finally:
        source.close()
    image = load_image(host.store, result.manifest_digest, given)
    return ImageChoice(image, given, result.name, source_text)


def default_name(ref_text: str, given: str) -> str:
    """atomic's rule: the last component of the image path REF_TEXT, plus -TAG unless it is
    latest; a UsageError naming GIVEN and --name if that is not a valid container name."""
    try:
        ref = parse_reference(ref_text)
    except UsageError:
        ref = None
    if ref is None or not ref.path:
        raise UsageError(
            f"cannot derive a container name from {given!r}",
            hint="give one with --name NAME",
        )
    base = ref.path.rsplit("/", 1)[-1]
    name = base if ref.tag in ("", "latest") else f"{base}-{ref.tag}"
    problem = name_problem(name)
    if problem:
        raise UsageError(
            f"the container name {name!r} derived from {given!r} is not valid: {problem}",
            hint="give a valid one with --name NAME",
        )
    return name


def prepare(
    host: Host,
    cd: ContainerDir,
    slot: int,
    choice: ImageChoice,
    runtime_text: str,
    kept: KeptValues,
    destdir: Path | None = None,
    auto_update: str = "",
) -> Prepared:
    """Compute the values and check every template has what it needs (writes nothing).

    DESTDIR is the bundle directory the templates see (default: the slot's directory);
    AUTO_UPDATE is recorded in info.json as it is.
    """
    runtime = Runtime.parse(runtime_text)
    everything = export_entries(choice.image, (EntryKind.FILE, EntryKind.SYMLINK, EntryKind.DIR))
    entries = {k: e for k, e in everything.items() if e.kind is not EntryKind.DIR}
    dirs = tuple(
        (k, e.mode)
        for k, e in sorted(everything.items())
        if e.kind is EntryKind.DIR and k.startswith(HOSTFS)
    )
    files = exports_files(host.store, choice.image, entries)
    exports = parse_exports(files, present=bool(files))
    mode = RuntimeMode.DETACHED if wants_detached(exports) else RuntimeMode.FOREGROUND
    facts = host_facts(command_line(runtime.argv()), uuid=kept.uuid)
    if host.paths.offline:  # this process's bounding set says nothing of the booted root's
        facts = replace(facts, cap_bounding=None)

    def commands(v: Mapping[str, str]) -> RuntimeCommands:
        pidfile = v["PIDFILE"] if mode is RuntimeMode.DETACHED else None
        return runtime_commands(runtime, cd.name, mode, pidfile)

    values = compute_values(
        name=cd.name,
        image_name=choice.given,
        image_id=choice.image.manifest_digest,
        destdir=str(host.paths.booted(destdir or cd.slot_dir(slot))),
        sets=kept.set_map(),
        raw=kept.raw,
        defaults=dict(exports.manifest.default_values),
        facts=facts,
        commands=commands,
    )
    check_complete(exports, values, what=f'image "{choice.given}"')
    _warn_unused(host, choice, exports, kept)
    kept = KeptValues(kept.sets, values["UUID"], kept.raw)
    return Prepared(
        cd,
        slot,
        choice,
        runtime,
        runtime_text,
        mode,
        exports,
        entries,
        values,
        kept,
        facts,
        dirs,
        auto_update,
    )


def _warn_unused(host: Host, choice: ImageChoice, exports: Exports, kept: KeptValues) -> None:
    """Warn about --set names that no template of the image uses (a typo, or a stale value)."""
    variables = template_variables(exports)
    unused = sorted(set(kept.set_map()) - set(variables))
    if not unused:
        return
    settable = [v.name for v in variables.values() if v.kind is not VariableKind.FORCED]
    progress.warn(
        host.reporter,
        f'--set {", ".join(unused)}: image "{choice.given}" uses no such variable; '
        f"it uses {', '.join(settable) or 'none'}",
    )


def build_slot(host: Host, plan: Prepared, rootfs: Path | None = None) -> DeploymentInfo:
    """Check out, render and stage PLAN in a temp dir, pin the image, rename it to NAME.N."""
    base = plan.cd.base
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = plan.cd.new_temp(plan.slot)
    pin = plan.cd.pin(plan.slot)
    os.mkdir(tmp, 0o755)
    try:
        info = _fill(host, plan, tmp, rootfs)
        host.store.pin(pin, plan.choice.image.manifest_digest)
        host.crashpoint("slot-staged")
        os.rename(tmp, plan.slot_dir)
        fsync_dir(base)
    except BaseException:
        remove_tree(tmp)
        if not os.path.lexists(plan.slot_dir):
            host.store.unpin(pin)
        raise
    host.crashpoint("slot-built")
    return info


def render_bundle(
    host: Host,
    plan: Prepared,
    bundle: Path,
    rootfs: Path | None,
    *,
    service: bool = True,
    host_files: bool = False,
) -> Rendered:
    """Give BUNDLE its rootfs (a checkout, or a link to ROOTFS) and its rendered config.json.

    A SERVICE's container gets a cgroup inside its unit's (runtime.service_cgroup); one run
    once from the command line has no unit to belong to. With HOST_FILES, the deployment
    installs its host files and directories, so a bind source among them is not missing
    (no default tmpfiles line makes it, with another mode).
    """
    installed = _installed_paths(plan) if host_files else frozenset()

    def exists(path: str) -> bool:
        return path in installed or os.path.exists(host.paths.on_host(path))

    files = slot_files(plan.cd, bundle)
    users = UserDB()
    if rootfs is not None:
        os.symlink(rootfs, files["rootfs"])
        users = load_user_db(host.paths.on_host(rootfs))
    elif not plan.exports.manifest.no_container_service:
        checkout(host.store, plan.choice.image.layers, files["rootfs"], host.reporter)
        users = load_user_db(files["rootfs"])
    rendered = render_deployment(
        plan.exports,
        plan.choice.image.config,
        plan.values,
        exists=exists,
        users=users,
        what=f'image "{plan.choice.given}"',
        cgroups_path=service_cgroup(plan.runtime, plan.cd.name) if service else None,
        limits=host_limits(plan.facts),
    )
    if rendered.withheld:
        progress.warn(
            host.reporter,
            f"{plan.cd.name}: left out of config.json, as this host "
            "cannot grant them (capabilities not in its bounding set, SELinux labels "
            "without SELinux): " + ", ".join(rendered.withheld),
        )
    if rendered.config_json:
        atomic_write(files["config"], rendered.config_json, sync=False)
    return rendered


def host_limits(facts: HostFacts | None) -> HostLimits | None:
    """What the host FACTS describe can grant a container (None: whatever it asks)."""
    if facts is None:
        return None
    caps = (
        None
        if facts.cap_bounding is None
        else frozenset(capability_names(facts.cap_last_cap, facts.cap_bounding))
    )
    return HostLimits(caps, facts.selinux)


def _fill(host: Host, plan: Prepared, tmp: Path, rootfs: Path | None) -> DeploymentInfo:
    files = slot_files(plan.cd, tmp)
    rendered = render_bundle(host, plan, tmp, rootfs, host_files=True)
    if rendered.unit:
        atomic_write(files["unit"], rendered.unit.encode(), sync=False)
    atomic_write(files["tmpfiles"], rendered.tmpfiles.encode(), sync=False)
    files["hostfs"].mkdir(mode=0o755)
    records = tuple(
        stage(files["hostfs"], _host_source(host.store, plan, h)) for h in rendered.host_files
    )
    info = DeploymentInfo(
        name=plan.cd.name,
        slot=plan.slot,
        image=plan.choice.given,
        ref=plan.choice.ref,
        source=plan.choice.source,
        image_id=plan.choice.image.manifest_digest,
        runtime=plan.runtime_text,
        kept=plan.kept,
        mode=plan.mode,
        service=not plan.exports.manifest.no_container_service,
        host_files=records,
        host_directories=_host_dirs(plan, [r.path for r in records]),
        auto_update=plan.auto_update,
    )
    write_info(tmp, info)
    return info


def _host_source(store: Store, plan: Prepared, item: HostFile) -> HostFileSource:
    entry = plan.entries.get(item.source)
    if entry is None:
        raise CheckoutError(
            f'image "{plan.choice.given}": /exports/{item.source} is missing',
            hint="run 'syscontainers images verify', then pull the image again",
        )
    mode = entry.mode & 0o7777 or 0o644
    if item.rendered:
        return HostFileSource(item.dest, item.source, mode, content=item.content or b"")
    if entry.kind is EntryKind.SYMLINK:
        return HostFileSource(item.dest, item.source, target=entry.target)
    return HostFileSource(item.dest, item.source, mode, copy_from=store.object_path(entry.obj))


def _installed_paths(plan: Prepared) -> frozenset[str]:
    """Every host path the deployment's host files and directories will occupy."""
    renames = substituted_renames(plan.exports, plan.values)
    files = [host_destination(rel, renames) for rel in plan.exports.hostfs]
    return frozenset(files) | {d.path for d in _host_dirs(plan, files)}


def _host_dirs(plan: Prepared, file_dests: Sequence[str]) -> tuple[HostDirRecord, ...]:
    """The /exports/hostfs directories (renamed, even empty ones) and every parent of a host
    file: what the deployment needs on the host."""
    renames = substituted_renames(plan.exports, plan.values)
    modes = {
        host_destination(rel, renames): mode & 0o7777 or 0o755 for rel, mode in plan.hostfs_dirs
    }
    return host_directories(file_dests, modes)
