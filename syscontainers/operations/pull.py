"""The pull pipeline: resolve, check policy, then import only what is missing, refs last.

Every transport goes through ``pull_image``: the source resolves a manifest,
the policy check runs before anything is written, then the config and each
missing layer are streamed into the store, and the tag is published last.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from syscontainers import progress
from syscontainers.errors import ManifestError, SysContainersError
from syscontainers.fsutil import filesystem_errors, flushing
from syscontainers.layers import import_layer
from syscontainers.oci import (
    Descriptor,
    ImageConfig,
    Platform,
    digest_hex,
    parse_config,
)
from syscontainers.progress import Reporter
from syscontainers.record import record
from syscontainers.reference import parse as parse_reference
from syscontainers.sources import ImageSource, ResolvedImage, read_small_blob
from syscontainers.store import Store
from syscontainers.store.lock import LockMode

CONFIG_LIMIT = 16 << 20
AGAIN = "pull again: the layers already stored are kept"
# Layers fetched and imported at once: enough to overlap network and disk, few enough
# for two cores.
DEFAULT_PARALLEL = 3


class PolicyCheck(Protocol):
    """Decides whether an image may be written to the store (``trust.check`` implements it
    from containers-policy.json)."""

    def check(self, source: ImageSource, image: ResolvedImage) -> None:
        """Raise PolicyError to refuse IMAGE."""


class AcceptAll:
    """No policy: every image is accepted (library callers that check nothing; the CLI always
    passes the trust policy)."""

    def check(self, source: ImageSource, image: ResolvedImage) -> None:
        """Accept IMAGE."""


@record
class PullResult:
    """What a pull did."""

    name: str
    manifest_digest: str
    layers_total: int
    layers_imported: int
    bytes_imported: int
    objects_written: int


@record
class LayerJob:
    """One layer the pull must import."""

    index: int
    desc: Descriptor
    diff_id: str
    label: str


def short(digest: str) -> str:
    """sha256:0123456789ab… -> 0123456789ab (for messages)."""
    return digest_hex(digest)[:12]


def read_config(source: ImageSource, image: ResolvedImage) -> tuple[bytes, ImageConfig]:
    """Fetch and verify the image config, and check it agrees with the manifest."""
    desc = image.manifest.config
    what = f"{source.description}: config {desc.digest}"
    data = read_small_blob(source, desc, CONFIG_LIMIT, what)
    config = parse_config(data, f"{source.description} config")
    if len(config.diff_ids) != len(image.manifest.layers):
        raise ManifestError(
            f"{source.description}: the manifest has {len(image.manifest.layers)} layers "
            f"but the config lists {len(config.diff_ids)} diff_ids"
        )
    return data, config


def layer_present(store: Store, diff_id: str) -> bool:
    """True if the layer tree and every object it needs are in the store."""
    if not store.has_layer(diff_id):
        return False
    try:
        return not store.missing_objects(diff_id)
    except SysContainersError:
        return False


def plan_layers(
    store: Store, image: ResolvedImage, config: ImageConfig, label: str
) -> list[LayerJob]:
    """The layers that must be imported: those not already complete in the store."""
    jobs = []
    layers = image.manifest.layers
    for i, (desc, diff_id) in enumerate(zip(layers, config.diff_ids, strict=True)):
        known = store.diff_id_for_blob(desc.digest)
        if known is not None and known != diff_id:
            raise ManifestError(
                f"{label}: layer {i + 1} blob {short(desc.digest)} is stored as diff_id "
                f"{short(known)}, but the config says {short(diff_id)}"
            )
        if not layer_present(store, diff_id):
            jobs.append(LayerJob(i, desc, diff_id, f"{label} layer {i + 1}/{len(layers)}"))
    return jobs


def _import_one(
    store: Store, source: ImageSource, job: LayerJob, reporter: Reporter
) -> tuple[int, int]:
    task = f"layer {short(job.desc.digest)}"

    def on_progress(done: int) -> None:
        progress.progress(reporter, task, done, job.desc.size)

    writer = store.object_writer()
    tree = store.layer_writer()
    try:
        with flushing(store.path), source.open_blob(job.desc) as blob:
            import_layer(writer, blob, job.desc, job.diff_id, job.label, on_progress, tree=tree)
    except BaseException:
        tree.abandon()
        raise
    store.publish_layer(tree, job.desc.digest)
    progress.task_done(reporter, task, f"{tree.count} entries")
    return writer.bytes_written, writer.objects_written


def import_layers(
    store: Store,
    source: ImageSource,
    jobs: Sequence[LayerJob],
    reporter: Reporter,
    parallel: int = 1,
) -> tuple[int, int]:
    """Import JOBS (bounded parallelism); returns (bytes, objects) written."""
    if parallel <= 1 or len(jobs) <= 1:
        results = [_import_one(store, source, j, reporter) for j in jobs]
    else:
        from concurrent.futures import ThreadPoolExecutor  # 10 ms to import: only when needed

        with ThreadPoolExecutor(max_workers=parallel) as pool:
            results = list(pool.map(lambda j: _import_one(store, source, j, reporter), jobs))
    return sum(r[0] for r in results), sum(r[1] for r in results)


def store_key(image: ResolvedImage, name: str | None, source_label: str) -> str:
    """The ``name:tag`` the pulled image is tagged as."""
    wanted = name or image.default_name
    if not wanted:
        raise ManifestError(
            f"{source_label} does not name the image",
            hint="give it a name with --name NAME[:TAG]",
        )
    return parse_reference(wanted).store_key


@record
class PullOptions:
    """How to pull: the tag to give, the platform, the policy and the layer parallelism."""

    name: str | None = None  # NAME[:TAG]; default: what the source suggests
    platform: Platform | None = None  # default: this machine's
    policy: PolicyCheck | None = None  # default: AcceptAll
    parallel: int = DEFAULT_PARALLEL
    # called with the store name once the manifest is resolved, before anything is fetched
    # or written (install checks the container name it derives from it)
    vet_name: Callable[[str], None] | None = None


def pull_image(
    store: Store,
    source: ImageSource,
    options: PullOptions = PullOptions(),
    reporter: Reporter | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> PullResult:
    """Pull one image from SOURCE into STORE and tag it, under the exclusive lock."""
    with (
        filesystem_errors(store.path, "setting up the store", AGAIN),
        store.locked(LockMode.EXCLUSIVE, on_wait=on_wait),
    ):
        return pull_locked(store, source, options, reporter)


def pull_locked(
    store: Store,
    source: ImageSource,
    options: PullOptions = PullOptions(),
    reporter: Reporter | None = None,
) -> PullResult:
    """``pull_image`` for callers that already hold the exclusive lock (install, update)."""
    rep = reporter or progress.NullReporter()
    image = source.resolve(options.platform or Platform.host())
    key = store_key(image, options.name, source.description)
    if options.vet_name is not None:
        options.vet_name(key)
    (options.policy or AcceptAll()).check(source, image)
    config_bytes, config = read_config(source, image)
    jobs = plan_layers(store, image, config, f'image "{key}"')
    progress.step(
        rep,
        f"pulling {key} from {source.description}: "
        f"{len(jobs)} of {len(config.diff_ids)} layers to import",
    )
    with filesystem_errors(store.path, f"pulling {key}", AGAIN):
        written, objects = import_layers(store, source, jobs, rep, options.parallel)
        store.put_blob(config_bytes, image.manifest.config.digest)
        store.put_blob(image.manifest_bytes, image.manifest_digest)
        store.set_ref(key, image.manifest_digest)
    return PullResult(key, image.manifest_digest, len(config.diff_ids), len(jobs), written, objects)
