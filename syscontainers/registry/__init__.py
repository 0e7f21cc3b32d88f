"""The registry transport: wiring settings, registries.conf, credentials and TLS into a source.

``registry_opener(settings, options)`` is what the pull command hands to
``sources.open_source`` for ``docker://`` references; ``login`` and
``logout`` keep containers-auth.json. The parts live in ``registries_conf``
(what registries.conf says), ``credentials`` (auth files and their helpers),
``token`` (how a token is fetched), ``tls`` (certs.d),
``http`` (the only module that speaks HTTP), ``stream`` (resumable blob
streams), ``source`` (the ImageSource) and ``remote_inspect`` (what an
image in a registry is, without its layers).

Importing this package, building ``RegistryOptions`` or a ``registry_opener``
loads none of them but ``stream``: requests, TLS and registries.conf parsing
are imported inside the functions, when a registry is really spoken to
(``install`` of an image already in the store never does).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from syscontainers.record import record
from syscontainers.reference import normalize, parse
from syscontainers.registry.stream import RetryPolicy

if TYPE_CHECKING:
    from syscontainers.registry.credentials import Credentials
    from syscontainers.registry.http import RegistryClient
    from syscontainers.registry.source import RegistrySource
    from syscontainers.registry.tls import HostTls
    from syscontainers.settings import Settings
    from syscontainers.sources import ImageSource, SourceOpener, SourceSpec


@record
class RegistryOptions:
    """Per-command registry choices (from flags); None leaves the decision to the config."""

    tls_verify: bool | None = None  # False: plain HTTP or unverified TLS for every host
    authfile: Path | None = None  # read and write only this auth file
    cert_dir: Path | None = None  # one directory of *.crt/*.cert/*.key for every host
    retry: RetryPolicy = RetryPolicy()


def _verify(host_insecure: bool, settings: Settings, options: RegistryOptions) -> bool:
    if options.tls_verify is not None:
        return options.tls_verify
    return settings.tls_verify and not host_insecure


def make_client(
    settings: Settings,
    options: RegistryOptions,
    insecure_hosts: frozenset[str],
    env: Mapping[str, str],
    helpers: tuple[str, ...] = ("containers-auth.json",),  # credentials.AUTH_FILES_HELPER
) -> RegistryClient:
    """A client with credentials from the auth files (and the credential-helpers of
    registries.conf, in that list's order) and TLS from certs.d and the flags."""
    from syscontainers.containers_conf import certs_dirs
    from syscontainers.registry import credentials
    from syscontainers.registry.http import RegistryClient
    from syscontainers.registry.tls import HostTls, files_for_host

    files = credentials.auth_files(env, options.authfile or settings.authfile)
    certs = certs_dirs(env, settings.certs_d)

    def lookup(registry: str, repository: str) -> Credentials | None:
        return credentials.lookup_helpers(helpers, files, registry, repository, env)

    def tls_for(host: str) -> HostTls:
        verify = _verify(host in insecure_hosts, settings, options)
        return HostTls(verify, files_for_host(host, certs, options.cert_dir))

    return RegistryClient(lookup, tls_for, options.retry)


def open_registry(
    name: str,
    settings: Settings,
    options: RegistryOptions = RegistryOptions(),
    env: Mapping[str, str] = os.environ,
) -> RegistrySource:
    """A source for the image NAME (short names resolved through registries.conf)."""
    from syscontainers.registry import registries_conf
    from syscontainers.registry.source import RegistrySource

    conf = registries_conf.load_for(env, settings.registries_conf)
    candidates = registries_conf.resolve_candidates(name, conf)
    endpoints = registries_conf.candidate_endpoints(candidates, conf)
    reference = candidates[0]
    insecure = frozenset(ep.host for ep in endpoints if ep.insecure)
    client = make_client(settings, options, insecure, env, conf.credential_helpers)
    return RegistrySource(client, reference, endpoints)


def registry_opener(
    settings: Settings,
    options: RegistryOptions = RegistryOptions(),
    env: Mapping[str, str] = os.environ,
) -> SourceOpener:
    """The opener for docker:// specs, for ``sources.open_source`` (nothing is imported,
    read or connected until a spec is opened)."""

    def opener(spec: SourceSpec) -> ImageSource:
        return open_registry(spec.location, settings, options, env)

    return opener


def registry_key(text: str) -> str:
    """The auth-file key for what a user typed at login: host[/namespace], no scheme."""
    from syscontainers.registry import credentials

    key = credentials.normalize_key(text.strip())
    host = key.split("/", 1)[0]
    parse(f"{host}/x")  # raises ReferenceParseError for a malformed host
    if "/" in key:
        normalize(parse(key))
    return key


def login(
    registry: str,
    creds: Credentials,
    settings: Settings,
    options: RegistryOptions = RegistryOptions(),
    env: Mapping[str, str] = os.environ,
) -> str:
    """Check CREDS against REGISTRY, then save them; returns where (a file or a helper)."""
    from syscontainers.registry import credentials, registries_conf

    key = registry_key(registry)
    host = key.split("/", 1)[0]
    conf = registries_conf.load_for(env, settings.registries_conf)
    insecure = frozenset({host}) if registries_conf.host_insecure(host, conf) else frozenset()
    client = make_client(settings, options, insecure, env, conf.credential_helpers)
    try:
        client.check_login(host, creds)
    finally:
        client.close()
    path = credentials.write_target(env, options.authfile or settings.authfile)
    return credentials.store(path, key, creds, env)


def logout(
    registry: str | None,
    settings: Settings,
    authfile: Path | None = None,
    env: Mapping[str, str] = os.environ,
) -> tuple[Path, list[str]]:
    """Forget REGISTRY (every registry when None); returns the file and the keys removed."""
    from syscontainers.errors import AuthError
    from syscontainers.registry import credentials

    chosen = authfile or settings.authfile
    path = credentials.write_target(env, chosen)
    key = None if registry is None else registry_key(registry)
    try:
        return path, credentials.remove(path, key, env)
    except AuthError as e:
        others = [f.path for f in credentials.auth_files(env, chosen)[1:]]
        found = [
            p for p in others if credentials.lookup([credentials.AuthFile(p)], str(key), env=env)
        ]
        hint = (
            f"the credentials for {key} come from {found[0]} (docker login writes there); "
            f"remove them with docker logout, or pass --authfile {found[0]}"
            if found
            else "pass --authfile to name another auth file"
        )
        raise AuthError(e.message, hint=hint) from None
