"""docker:// against a real distribution registry: pull and inspect, auth, TLS, mirrors, faults.

skopeo is the oracle for digests; the images are pushed with skopeo copy. Pulls go end to end
through pull_image into a Store.
"""

from __future__ import annotations

import base64
import json
import stat
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from syscontainers.errors import (
    AuthError,
    DigestMismatchError,
    ImageNotFoundError,
    ManifestError,
    RegistryError,
    TlsError,
)
from syscontainers.oci import ImageConfig, Platform, parse_config, parse_manifest, sha256_digest
from syscontainers.operations.pull import PullOptions, PullResult, pull_image
from syscontainers.progress import EventKind, RecordingReporter, Reporter
from syscontainers.registry import RegistryOptions, login, open_registry, registry_opener
from syscontainers.registry.credentials import Credentials
from syscontainers.registry.remote_inspect import inspect_image
from syscontainers.registry.source import RegistrySource
from syscontainers.registry.stream import RetryPolicy
from syscontainers.settings import Settings
from syscontainers.sources import open_source, parse_source
from syscontainers.store import Store
from syscontainers.tree import EntryKind
from tests.integration.conftest_registry import (
    BIG,
    HOST_PLATFORM,
    OTHER_PLATFORM,
    FaultProxy,
    Faults,
    PlainRegistry,
    Registry,
    TokenServer,
    build_images,
    make_htpasswd,
    make_tls_cert,
    push,
    registry_env,
    registry_server,
    requires_registry,
    skopeo_inspect,
    write_registries_conf,
)

pytestmark = requires_registry

FAST = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05)
INSECURE = RegistryOptions(tls_verify=False, retry=FAST)


def settings_for(tmp: Path) -> Settings:
    """Settings that read nothing from /etc."""
    return Settings(
        root=tmp / "root", registries_conf=tmp / "registries.conf", certs_d=tmp / "certs.d"
    )


def source_for(
    name: str, tmp: Path, options: RegistryOptions = INSECURE, settings: Settings | None = None
) -> RegistrySource:
    """A registry source that uses only files under TMP."""
    return open_registry(name, settings or settings_for(tmp), options, env=registry_env(tmp))


def pull(
    store: Store, source: RegistrySource, reporter: Reporter | None = None, **kwargs: object
) -> PullResult:
    """pull_image, closing the source afterwards."""
    with closing(source):
        options = PullOptions(parallel=2, **kwargs)  # type: ignore[arg-type]
        return pull_image(store, source, options, reporter)


def stored_config(store: Store, manifest_digest: str) -> ImageConfig:
    """The image config of a stored manifest."""
    manifest = parse_manifest(store.get_blob(manifest_digest))
    return parse_config(store.get_blob(manifest.config.digest))


def file_content(store: Store, diff_id: str, path: str) -> bytes:
    """The content of PATH in the stored layer DIFF_ID."""
    tree = store.get_layer(diff_id)
    entry = next(e for e in tree.entries if e.path == path and e.kind is EntryKind.FILE)
    return store.object_path(entry.obj).read_bytes()


# ---- no auth -------------------------------------------------------------------------------


def test_pull_without_auth_matches_skopeo(plain_registry: PlainRegistry, tmp_path: Path) -> None:
    host = plain_registry.host
    store = Store(tmp_path / "store")
    reporter = RecordingReporter()
    source = source_for(f"{host}/test/busybox:1", tmp_path)
    result = pull(store, source, reporter=reporter)
    oracle = skopeo_inspect(plain_registry.registry, "test/busybox:1")
    assert result.manifest_digest == oracle["Digest"]
    assert (result.layers_total, result.layers_imported) == (2, 2)
    assert store.refs() == {f"{host}/test/busybox:1": oracle["Digest"]}
    config = stored_config(store, oracle["Digest"])
    assert file_content(store, config.diff_ids[1], "data/big") == plain_registry.images.big_data
    layer_events = [e for e in reporter.events if e.kind is EventKind.PROGRESS]
    assert {e.task for e in layer_events} == {f"layer {d[7:19]}" for d in oracle["Layers"]}
    assert source.stats().bytes_redownloaded == 0

    again = source_for(f"{host}/test/busybox:1", tmp_path)
    second = pull(store, again)
    assert second.layers_imported == 0
    config_size = parse_manifest(store.get_blob(oracle["Digest"])).config.size
    assert again.stats().bytes_downloaded == config_size  # no layer was fetched again


def test_blob_is_streamed_not_buffered(plain_registry: PlainRegistry, tmp_path: Path) -> None:
    source = source_for(f"{plain_registry.host}/test/busybox:1", tmp_path)
    with closing(source):
        image = source.resolve(HOST_PLATFORM)
        big = image.manifest.layers[1]
        with source.open_blob(big) as stream:
            first = stream.read(4096)
            # Only a bounded read-ahead has arrived, not the 3 MiB blob.
            assert len(first) == 4096
            assert source.stats().bytes_downloaded < 1 << 20
            rest = stream.read()
        assert sha256_digest(first + rest) == big.digest


def test_inspect_downloads_no_layer(plain_registry: PlainRegistry, tmp_path: Path) -> None:
    source = source_for(f"{plain_registry.host}/test/busybox:1", tmp_path)
    with closing(source):
        image = inspect_image(source, HOST_PLATFORM)
        stats = source.stats()
    oracle = skopeo_inspect(plain_registry.registry, "test/busybox:1")
    assert image.digest == oracle["Digest"]
    assert dict(image.config.labels) == oracle["Labels"] == {"atomic.type": "system", "k": "v"}
    assert [x.digest for x in image.layers] == oracle["Layers"]
    assert image.layers[1].size > BIG  # random data does not compress
    assert image.platforms == (str(HOST_PLATFORM),)
    assert stats.bytes_downloaded == len(image.raw_config)
    raw = skopeo_inspect(plain_registry.registry, "test/busybox:1", "--raw")
    assert json.loads(image.raw_manifest) == raw


def test_unknown_tag_is_not_found(plain_registry: PlainRegistry, tmp_path: Path) -> None:
    source = source_for(f"{plain_registry.host}/test/busybox:nope", tmp_path)
    with closing(source), pytest.raises(ImageNotFoundError, match="busybox:nope"):
        source.resolve(HOST_PLATFORM)


# ---- formats ---------------------------------------------------------------------------------


def test_manifest_list_picks_each_platform(plain_registry: PlainRegistry, tmp_path: Path) -> None:
    name = f"{plain_registry.host}/test/multi:1"
    raw_index = skopeo_inspect(plain_registry.registry, "test/multi:1", "--raw")
    by_arch = {m["platform"]["architecture"]: m["digest"] for m in raw_index["manifests"]}
    store = Store(tmp_path / "store")
    for plat in (HOST_PLATFORM, OTHER_PLATFORM):
        result = pull(store, source_for(name, tmp_path), platform=plat)
        assert result.manifest_digest == by_arch[plat.architecture]
        config = stored_config(store, result.manifest_digest)
        assert file_content(store, config.diff_ids[1], "etc/arch") == str(plat).encode()
    source = source_for(name, tmp_path)
    with closing(source):
        image = inspect_image(source, OTHER_PLATFORM)
    assert set(image.platforms) == {str(HOST_PLATFORM), str(OTHER_PLATFORM)}
    assert image.digest == sha256_digest(image.raw_manifest) != image.manifest_digest
    assert image.config.architecture == OTHER_PLATFORM.architecture
    source = source_for(name, tmp_path)
    with closing(source), pytest.raises(ManifestError, match="linux/s390x") as err:
        source.resolve(Platform("linux", "s390x"))
    assert err.value.hint and str(OTHER_PLATFORM) in err.value.hint


def test_zstd_layers(plain_registry: PlainRegistry, tmp_path: Path) -> None:
    raw = skopeo_inspect(plain_registry.registry, "test/zstd:1", "--raw")
    assert {x["mediaType"] for x in raw["layers"]} == {
        "application/vnd.oci.image.layer.v1.tar+zstd"
    }
    store = Store(tmp_path / "store")
    result = pull(store, source_for(f"{plain_registry.host}/test/zstd:1", tmp_path))
    assert result.layers_imported == 2
    config = stored_config(store, result.manifest_digest)
    assert file_content(store, config.diff_ids[1], "etc/motd") == b"zstd\n"


# ---- damage and faults -----------------------------------------------------------------------


@pytest.fixture
def own_registry(tmp_path: Path) -> Iterator[Registry]:
    """A fresh registry (for tests that damage it) holding test/busybox:1."""
    images = build_images(tmp_path / "layout")
    with registry_server(tmp_path / "registry") as registry:
        push(images.layout, "busybox", registry, "test/busybox:1")
        yield registry


def test_corrupt_blob_on_registry_disk_is_rejected(own_registry: Registry, tmp_path: Path) -> None:
    registry = own_registry
    manifest = skopeo_inspect(registry, "test/busybox:1", "--raw")
    big = manifest["layers"][1]["digest"]
    path = registry.blob_path(big)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    store = Store(tmp_path / "store")
    name = f"{registry.host}/test/busybox:1"
    with pytest.raises(DigestMismatchError) as err:
        pull(store, source_for(name, tmp_path))
    assert big in err.value.message and "layer 2/2" in err.value.message
    assert store.refs() == {}

    config = registry.blob_path(manifest["config"]["digest"])
    config.write_bytes(config.read_bytes().replace(b"system", b"SYSTEM"))
    source = source_for(name, tmp_path)
    with closing(source), pytest.raises(DigestMismatchError, match=manifest["config"]["digest"]):
        inspect_image(source, HOST_PLATFORM)


def _big_digest(plain: PlainRegistry) -> str:
    return str(skopeo_inspect(plain.registry, "test/busybox:1")["Layers"][1])


@pytest.mark.parametrize("strip_range", [False, True], ids=["range", "no-range"])
def test_cut_mid_blob_is_resumed(
    plain_registry: PlainRegistry, tmp_path: Path, strip_range: bool
) -> None:
    cut = 1 << 20
    faults = Faults(cut_after=cut, cut_digest=_big_digest(plain_registry), strip_range=strip_range)
    with FaultProxy(plain_registry.host, faults) as proxy:
        source = source_for(f"{proxy.host}/test/busybox:1", tmp_path)
        store = Store(tmp_path / "store")
        result = pull(store, source)
    stats = source.stats()
    assert result.layers_imported == 2
    assert stats.resumes == 1 and faults.cuts == 0
    # We asked to resume where the cut was, once.
    assert len(faults.range_requests) == 1 and faults.range_requests[0].endswith("-")
    offset = int(faults.range_requests[0].removeprefix("bytes=").rstrip("-"))
    assert 0 < offset <= cut
    if strip_range:  # the registry never saw the Range header and sent the blob again
        assert stats.bytes_redownloaded == offset
    else:
        assert stats.bytes_redownloaded == 0
    config = stored_config(store, result.manifest_digest)
    assert file_content(store, config.diff_ids[1], "data/big") == plain_registry.images.big_data


def test_5xx_and_429_are_retried(plain_registry: PlainRegistry, tmp_path: Path) -> None:
    faults = Faults(statuses=[503, 429, 502])
    with FaultProxy(plain_registry.host, faults) as proxy:
        source = source_for(f"{proxy.host}/test/busybox:1", tmp_path)
        with closing(source):
            image = source.resolve(HOST_PLATFORM)
    assert source.stats().retries == 3 and faults.statuses == []
    oracle = skopeo_inspect(plain_registry.registry, "test/busybox:1")
    assert image.manifest_digest == oracle["Digest"]


def test_registry_dying_mid_pull(plain_registry: PlainRegistry, tmp_path: Path) -> None:
    big = _big_digest(plain_registry)
    faults = Faults(cut_after=1 << 20, cut_digest=big, die_after_cut=True)
    store = Store(tmp_path / "store")
    with FaultProxy(plain_registry.host, faults) as proxy:
        source = source_for(f"{proxy.host}/test/busybox:1", tmp_path)
        with closing(source), pytest.raises(RegistryError) as err:
            pull_image(store, source, PullOptions(parallel=1))  # layer 1 completes, layer 2 is cut
    assert big in err.value.message and "broke off" in err.value.message
    assert err.value.hint and "pull again" in err.value.hint
    assert store.refs() == {}
    # The next pull (the registry is back) fetches only the layer that is still missing.
    result = pull(store, source_for(f"{plain_registry.host}/test/busybox:1", tmp_path))
    assert (result.layers_total, result.layers_imported) == (2, 1)


# ---- auth --------------------------------------------------------------------------------------


def test_basic_auth_through_auth_json(tmp_path: Path) -> None:
    htpasswd = make_htpasswd(tmp_path / "htpasswd", "alice", "s3cret")
    with registry_server(tmp_path / "registry", htpasswd=htpasswd) as registry:
        images = build_images(tmp_path / "layout")
        push(images.layout, "busybox", registry, "team/app:1", "--dest-creds", "alice:s3cret")
        name = f"{registry.host}/team/app:1"
        anonymous = source_for(name, tmp_path)
        with closing(anonymous), pytest.raises(AuthError, match="requires authentication"):
            anonymous.resolve(HOST_PLATFORM)

        authfile = tmp_path / "auth.json"
        bad = RegistryOptions(tls_verify=False, authfile=authfile, retry=FAST)
        with pytest.raises(AuthError, match="alice"):
            login(registry.host, Credentials("alice", "wrong"), settings_for(tmp_path), bad)
        assert not authfile.exists()
        written = login(registry.host, Credentials("alice", "s3cret"), settings_for(tmp_path), bad)
        assert written == str(authfile)
        assert stat.S_IMODE(authfile.stat().st_mode) == 0o600
        entry = json.loads(authfile.read_text())["auths"][registry.host]
        assert base64.b64decode(entry["auth"]) == b"alice:s3cret"

        store = Store(tmp_path / "store")
        result = pull(store, source_for(name, tmp_path, bad))
        assert result.layers_imported == 2

        # The default lookup finds it too: ${XDG_RUNTIME_DIR}/containers/auth.json.
        runtime = Path(registry_env(tmp_path)["XDG_RUNTIME_DIR"]) / "containers" / "auth.json"
        runtime.parent.mkdir(parents=True)
        runtime.write_text(authfile.read_text())
        with closing(source_for(name, tmp_path)) as found:
            assert found.resolve(HOST_PLATFORM).manifest_digest == result.manifest_digest


def test_bearer_token_auth(tmp_path: Path) -> None:
    with TokenServer(tmp_path / "token", {"alice": "s3cret"}) as tokens:
        with registry_server(tmp_path / "registry", token=tokens) as registry:
            images = build_images(tmp_path / "layout")
            push(images.layout, "busybox", registry, "team/app:1", "--dest-creds", "alice:s3cret")
            name = f"{registry.host}/team/app:1"
            anonymous = source_for(name, tmp_path)
            with closing(anonymous), pytest.raises(AuthError, match="denied access"):
                anonymous.resolve(HOST_PLATFORM)

            authfile = tmp_path / "auth.json"
            options = RegistryOptions(tls_verify=False, authfile=authfile, retry=FAST)
            settings = settings_for(tmp_path)
            with pytest.raises(AuthError, match="refused the credentials of 'alice'"):
                login(registry.host, Credentials("alice", "nope"), settings, options)
            assert tokens.refused == 1 and not authfile.exists()
            login(registry.host, Credentials("alice", "s3cret"), settings, options)

            before = len(tokens.issued)
            store = Store(tmp_path / "store")
            result = pull(store, source_for(name, tmp_path, options))
            assert result.layers_imported == 2
            # One token for the repository, reused for the manifest, the config and both layers.
            assert tokens.issued[before:] == ["repository:team/app:pull"]


# ---- TLS ---------------------------------------------------------------------------------------


def test_self_signed_tls_trusted_through_certs_d(tmp_path: Path) -> None:
    cert, key = make_tls_cert(tmp_path / "tls")
    with registry_server(tmp_path / "registry", tls=(cert, key)) as registry:
        images = build_images(tmp_path / "layout")
        push(images.layout, "busybox", registry, "secure/app:1")
        name = f"{registry.host}/secure/app:1"
        verify = RegistryOptions(retry=FAST)  # TLS verification on (the default)
        untrusted = source_for(name, tmp_path, verify)
        with closing(untrusted), pytest.raises(TlsError, match=registry.host) as err:
            untrusted.resolve(HOST_PLATFORM)
        assert "certificate" in err.value.message
        assert err.value.hint and f"certs.d/{registry.host}" in err.value.hint

        unverified = source_for(name, tmp_path, INSECURE)  # --tls-verify=false: still https
        with closing(unverified):
            digest = unverified.resolve(HOST_PLATFORM).manifest_digest
        assert digest == skopeo_inspect(registry, "secure/app:1")["Digest"]

        host_dir = tmp_path / "certs.d" / registry.host
        host_dir.mkdir(parents=True)
        (host_dir / "ca.crt").write_bytes(cert.read_bytes())
        store = Store(tmp_path / "store")
        result = pull(store, source_for(name, tmp_path, verify))
        assert result.manifest_digest == digest

        flat = tmp_path / "flat"
        flat.mkdir()
        (flat / "registry.crt").write_bytes(cert.read_bytes())
        other = RegistryOptions(cert_dir=flat, retry=FAST)
        with closing(source_for(name, tmp_path / "elsewhere", other)) as via_flag:
            assert via_flag.resolve(HOST_PLATFORM).manifest_digest == result.manifest_digest


# ---- mirrors -----------------------------------------------------------------------------------


def test_mirror_that_holds_the_image(plain_registry: PlainRegistry, tmp_path: Path) -> None:
    with registry_server(tmp_path / "primary") as primary:  # empty
        conf = write_registries_conf(
            tmp_path / "registries.conf",
            f"""
[[registry]]
location = "{primary.host}"
insecure = true
[[registry.mirror]]
location = "{plain_registry.host}"
insecure = true
""",
        )
        settings = settings_for(tmp_path)
        assert settings.registries_conf == conf
        options = RegistryOptions(retry=FAST)  # insecure comes from registries.conf
        source = source_for(f"{primary.host}/test/busybox:1", tmp_path, options)
        store = Store(tmp_path / "store")
        result = pull(store, source)
        assert source.endpoint is not None and source.endpoint.mirror
        assert source.endpoint.host == plain_registry.host
        assert store.refs() == {f"{primary.host}/test/busybox:1": result.manifest_digest}

        digest_only = "[[registry]]\nmirror-by-digest-only = true"
        conf.write_text(conf.read_text().replace("[[registry]]", digest_only))
        by_tag = source_for(f"{primary.host}/test/busybox:1", tmp_path, options)
        with closing(by_tag), pytest.raises(ImageNotFoundError, match=primary.host):
            by_tag.resolve(HOST_PLATFORM)
        pinned = f"{primary.host}/test/busybox@{result.manifest_digest}"
        by_digest = source_for(pinned, tmp_path, options)
        with closing(by_digest):
            assert by_digest.resolve(HOST_PLATFORM).manifest_digest == result.manifest_digest
            assert by_digest.endpoint is not None and by_digest.endpoint.mirror


def test_short_name_alias_through_the_opener(plain_registry: PlainRegistry, tmp_path: Path) -> None:
    host = plain_registry.host
    write_registries_conf(
        tmp_path / "registries.conf",
        f'[[registry]]\nlocation = "{host}"\ninsecure = true\n',
    )
    drop_in = tmp_path / "registries.conf.d" / "50-test.conf"
    write_registries_conf(drop_in, f'[aliases]\n"mybox" = "{host}/test/busybox"\n')
    options = RegistryOptions(retry=FAST)
    opener = registry_opener(settings_for(tmp_path), options, env=registry_env(tmp_path))
    source = open_source(parse_source("mybox:1"), opener)
    assert isinstance(source, RegistrySource)
    store = Store(tmp_path / "store")
    result = pull(store, source)
    assert result.name == f"{host}/test/busybox:1"
    assert store.refs() == {
        result.name: skopeo_inspect(plain_registry.registry, "test/busybox:1")["Digest"]
    }


def test_blocked_registry_is_refused(tmp_path: Path) -> None:
    write_registries_conf(
        tmp_path / "registries.conf",
        '[[registry]]\nlocation = "127.0.0.1:1"\nblocked = true\n',
    )
    with pytest.raises(RegistryError, match="blocked"):
        source_for("127.0.0.1:1/any/image:1", tmp_path)
