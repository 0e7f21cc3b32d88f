"""Registry credentials: the auth files skopeo and podman read, and the helpers they name.

Lookup order, as containers-auth.json(5) has it: ``--authfile`` alone when it
is given, else ``$REGISTRY_AUTH_FILE`` alone when it is set; otherwise
``${XDG_RUNTIME_DIR}/containers/auth.json`` (or ``/run/containers/UID/auth.json``
without XDG_RUNTIME_DIR), ``${XDG_CONFIG_HOME:-~/.config}/containers/auth.json``,
``$DOCKER_CONFIG/config.json`` (or ``~/.docker/config.json``), then the legacy
``~/.dockercfg`` (a bare map of registry to entry). The first file that has
credentials for the registry wins. Within a file, a ``credHelpers`` entry for
the registry host runs ``docker-credential-NAME``; otherwise the most specific
``auths`` key (``host/namespace/repo`` before ``host``) wins; otherwise a
``credsStore`` helper is asked (docker honours it; containers/image does not).
``login``/``logout`` write the first file of the list, atomically and with
mode 0600 (or the file's ``credHelpers`` helper for that registry).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from syscontainers.errors import AuthError, UsageError
from syscontainers.fsutil import atomic_write, read_bytes_if_exists
from syscontainers.record import record
from syscontainers.registry.credhelper import Helper

_HUB_KEYS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
AUTH_FILES_HELPER = "containers-auth.json"  # registries.conf's name for the auth files
IDENTITY_TOKEN_USER = "<token>"  # a helper's username meaning "the secret is a refresh token"


@record
class Credentials:
    """A username and password (or token) for one registry."""

    username: str
    password: str

    @property
    def identity_token(self) -> bool:
        """True if PASSWORD is an OAuth2 refresh token (docker's identitytoken)."""
        return self.username == IDENTITY_TOKEN_USER

    def __repr__(self) -> str:  # never show a password in a traceback
        return f"Credentials(username={self.username!r}, password=***)"


@record
class AuthFile:
    """One file in the lookup list; a legacy file (~/.dockercfg) has no "auths" level."""

    path: Path
    legacy: bool = False


def auth_files(
    env: Mapping[str, str], authfile: Path | None = None, uid: int | None = None
) -> list[AuthFile]:
    """The files credentials are read from, in order."""
    if authfile is not None:
        return [AuthFile(authfile)]
    if env.get("REGISTRY_AUTH_FILE"):
        return [AuthFile(Path(env["REGISTRY_AUTH_FILE"]))]  # exclusive, as for skopeo
    out = [AuthFile(_runtime_file(env, uid))]
    home = env.get("HOME")
    config_home = env.get("XDG_CONFIG_HOME") or (f"{home}/.config" if home else "")
    if config_home:
        out.append(AuthFile(Path(config_home) / "containers" / "auth.json"))
    if env.get("DOCKER_CONFIG"):
        out.append(AuthFile(Path(env["DOCKER_CONFIG"]) / "config.json"))
    elif home:
        out.append(AuthFile(Path(home) / ".docker" / "config.json"))
    if home:
        out.append(AuthFile(Path(home) / ".dockercfg", legacy=True))
    return out


def _runtime_file(env: Mapping[str, str], uid: int | None) -> Path:
    xdg = env.get("XDG_RUNTIME_DIR")
    if xdg:
        return Path(xdg) / "containers" / "auth.json"
    return Path(f"/run/containers/{os.getuid() if uid is None else uid}/auth.json")


def write_target(env: Mapping[str, str], authfile: Path | None = None) -> Path:
    """The file login and logout write (where skopeo and podman login write)."""
    target = auth_files(env, authfile)[0].path
    xdg = env.get("XDG_RUNTIME_DIR")
    if authfile is None and not env.get("REGISTRY_AUTH_FILE") and xdg and not Path(xdg).is_dir():
        raise AuthError(
            f"cannot write {target}: $XDG_RUNTIME_DIR is {xdg}, which does not exist",
            hint="create that directory, unset $XDG_RUNTIME_DIR, or pass --authfile FILE",
        )
    return target


def normalize_key(key: str) -> str:
    """An auths key in canonical form: no scheme, no /v1/ path, docker.io for Docker Hub."""
    if "://" in key:
        key = key.split("://", 1)[1].split("/", 1)[0]  # legacy docker keys are URLs
    key = key.rstrip("/")
    host, _, rest = key.partition("/")
    if host in _HUB_KEYS:
        host = "docker.io"
    return f"{host}/{rest}" if rest else host


def _load(path: Path, legacy: bool = False) -> dict[str, Any]:
    try:
        data = read_bytes_if_exists(path)
    except OSError as e:
        raise AuthError(
            f"cannot read auth file {path}: {e.strerror}",
            hint="check the file's permissions, or pass --authfile FILE",
        ) from e
    if data is None:
        return {}
    try:
        doc = json.loads(data or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise AuthError(
            f"auth file {path} is not valid JSON: {e}", hint="fix or remove the file"
        ) from e
    if legacy and isinstance(doc, dict):
        doc = {"auths": doc}
    if not isinstance(doc, dict) or not isinstance(doc.get("auths", {}), dict):
        raise AuthError(f"auth file {path} has no auths object", hint="fix or remove the file")
    helpers = doc.get("credHelpers", {})
    if not isinstance(helpers, dict) or not all(isinstance(v, str) for v in helpers.values()):
        raise AuthError(
            f"auth file {path}: credHelpers must map registries to helper names",
            hint="fix or remove the file",
        )
    if not isinstance(doc.get("credsStore", ""), str):
        raise AuthError(
            f"auth file {path}: credsStore must be a helper name", hint="fix or remove the file"
        )
    return doc


def _decode(entry: object, key: str, path: Path) -> Credentials | None:
    if not isinstance(entry, dict):
        return None
    identity = entry.get("identitytoken")
    if isinstance(identity, str) and identity:
        return Credentials(IDENTITY_TOKEN_USER, identity)
    token = entry.get("auth")
    if not token:
        return None
    try:
        text = base64.b64decode(str(token), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as e:
        raise AuthError(
            f"auth file {path}: the entry for {key!r} is not base64",
            hint=f"log in to {key} again, or fix the file",
        ) from e
    user, sep, password = text.partition(":")
    if not sep or not user:
        raise AuthError(
            f"auth file {path}: the entry for {key!r} is not user:password",
            hint=f"log in to {key} again, or fix the file",
        )
    return Credentials(user, password.strip("\x00"))


def _candidates(registry: str, repository: str) -> list[str]:
    """Keys that can hold credentials for REGISTRY/REPOSITORY, most specific first."""
    parts = repository.split("/") if repository else []
    keys = [f"{registry}/{'/'.join(parts[:n])}" for n in range(len(parts), 0, -1)]
    return [normalize_key(k) for k in keys] + [normalize_key(registry)]


def helper_for(doc: Mapping[str, Any], registry: str, path: Path) -> Helper | None:
    """The credHelpers helper DOC (read from PATH) names for REGISTRY's host."""
    host = normalize_key(registry).split("/", 1)[0]
    for key, name in doc.get("credHelpers", {}).items():
        if normalize_key(key) == host:
            return Helper(name, f"credHelpers for {key} in {path}")
    return None


def _from_helper(
    helper: Helper, registry: str, env: Mapping[str, str] | None
) -> Credentials | None:
    got = helper.get(normalize_key(registry), env)
    return None if got is None else Credentials(*got)


def _in_file(
    f: AuthFile, registry: str, wanted: list[str], env: Mapping[str, str] | None
) -> Credentials | None:
    doc = _load(f.path, f.legacy)
    helper = helper_for(doc, registry, f.path)
    if helper is not None:
        return _from_helper(helper, registry, env)
    auths = doc.get("auths", {})
    entries = {normalize_key(k): (k, v) for k, v in auths.items()}
    for key in wanted if not f.legacy else wanted[-1:]:
        if key in entries:
            creds = _decode(entries[key][1], entries[key][0], f.path)
            if creds is not None:
                return creds
    if doc.get("credsStore"):
        store_helper = Helper(doc["credsStore"], f"credsStore in {f.path}")
        return _from_helper(store_helper, registry, env)
    return None


def lookup(
    files: Sequence[AuthFile],
    registry: str,
    repository: str = "",
    env: Mapping[str, str] | None = None,
) -> Credentials | None:
    """The credentials for REGISTRY/REPOSITORY from the first file that has any."""
    wanted = _candidates(registry, repository)
    for f in files:
        creds = _in_file(f, registry, wanted, env)
        if creds is not None:
            return creds
    return None


def lookup_helpers(
    helpers: Sequence[str],
    files: Sequence[AuthFile],
    registry: str,
    repository: str = "",
    env: Mapping[str, str] | None = None,
) -> Credentials | None:
    """The credentials from the first of HELPERS (registries.conf's credential-helpers) that
    has some: ``containers-auth.json`` is FILES, any other NAME docker-credential-NAME. A
    failing helper lets the later ones answer; its error is raised only if none does."""
    errors: list[AuthError] = []
    for name in helpers:
        try:
            if name == AUTH_FILES_HELPER:
                creds = lookup(files, registry, repository, env)
            else:
                helper = Helper(name, "credential-helpers in registries.conf")
                creds = _from_helper(helper, registry, env)
        except AuthError as e:
            errors.append(e)
            continue
        if creds is not None:
            return creds
    if errors:
        raise errors[0]
    return None


def _save(path: Path, doc: dict[str, Any]) -> None:
    try:
        atomic_write(path, json.dumps(doc, indent="\t").encode() + b"\n", mode=0o600)
    except OSError as e:
        raise AuthError(
            f"cannot write auth file {path}: {e.strerror}",
            hint="check that its directory is writable, or pass --authfile FILE",
        ) from e


def store(
    path: Path, registry: str, creds: Credentials, env: Mapping[str, str] | None = None
) -> str:
    """Save CREDS for REGISTRY in the auth file at PATH (mode 0600, atomically), or in the
    helper its credHelpers names for REGISTRY; returns where they went."""
    if not creds.username or ":" in creds.username:
        raise UsageError(
            f"username {creds.username!r} is empty or contains ':'",
            hint="give a username without ':'",
        )
    doc = _load(path)
    key = normalize_key(registry)
    helper = helper_for(doc, key, path)
    if helper is not None:
        if "/" in key:
            raise UsageError(
                f"{helper.origin}: a helper keeps whole registries, not {key}",
                hint=f"log in to {key.partition('/')[0]} instead",
            )
        helper.store(key, creds.username, creds.password, env)
        return f"credential helper {helper.program}"
    auths = {k: v for k, v in doc.get("auths", {}).items() if normalize_key(k) != key}
    token = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
    auths[key] = {"auth": token}
    doc["auths"] = auths
    _save(path, doc)
    return str(path)


def remove(path: Path, registry: str | None, env: Mapping[str, str] | None = None) -> list[str]:
    """Forget REGISTRY (every registry when None) in PATH and in the helper its credHelpers
    names for REGISTRY (every helper it names, when None); returns the keys removed."""
    doc = _load(path)
    auths: dict[str, Any] = doc.get("auths", {})
    gone = [k for k in auths if registry is None or normalize_key(k) == normalize_key(registry)]
    if gone:
        doc["auths"] = {k: v for k, v in auths.items() if k not in gone}
        _save(path, doc)
    if registry is None:
        helpers = doc.get("credHelpers", {}).items()
        erased = [
            normalize_key(k)
            for k, name in helpers
            if Helper(name, f"credHelpers for {k} in {path}").erase(normalize_key(k), env)
        ]
        return sorted(set(gone) | set(erased))
    key = normalize_key(registry)
    helper = helper_for(doc, key, path)
    if helper is not None and helper.erase(key, env):
        return [key]
    if not gone:
        raise AuthError(
            f"not logged in to {registry}: {path} has no entry for it",
            hint="check the name as it was given to login, or pass --authfile FILE",
        )
    return gone
