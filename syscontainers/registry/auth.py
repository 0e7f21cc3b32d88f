"""Registry credentials: reading and writing containers-auth.json (and ~/.docker/config.json).

Lookup order, as containers-auth.json(5) has it: ``--authfile`` alone when it
is given; otherwise ``$REGISTRY_AUTH_FILE``, then
``${XDG_RUNTIME_DIR}/containers/auth.json`` (or ``/run/containers/UID/auth.json``
without XDG_RUNTIME_DIR), then ``~/.docker/config.json``. The first file that
has an entry for the registry wins; within a file the most specific key
(``host/namespace/repo`` before ``host``) wins. ``login``/``logout`` write the
first file of that list, atomically and with mode 0600.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from syscontainers.errors import AuthError, UsageError
from syscontainers.fsutil import atomic_write, read_bytes_if_exists

_HUB_KEYS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})


@dataclass(frozen=True, slots=True)
class Credentials:
    """A username and password (or token) for one registry."""

    username: str
    password: str

    def __repr__(self) -> str:  # never show a password in a traceback
        return f"Credentials(username={self.username!r}, password=***)"


def auth_files(
    env: Mapping[str, str], authfile: Path | None = None, uid: int | None = None
) -> list[Path]:
    """The files credentials are read from, in order."""
    if authfile is not None:
        return [authfile]
    out = [Path(env["REGISTRY_AUTH_FILE"])] if env.get("REGISTRY_AUTH_FILE") else []
    out.append(_runtime_file(env, uid))
    home = env.get("HOME")
    if home:
        out.append(Path(home) / ".docker" / "config.json")
    return out


def _runtime_file(env: Mapping[str, str], uid: int | None) -> Path:
    xdg = env.get("XDG_RUNTIME_DIR")
    if xdg:
        return Path(xdg) / "containers" / "auth.json"
    return Path(f"/run/containers/{os.getuid() if uid is None else uid}/auth.json")


def write_target(env: Mapping[str, str], authfile: Path | None = None) -> Path:
    """The file login and logout write."""
    return auth_files(env, authfile)[0]


def normalize_key(key: str) -> str:
    """An auths key in canonical form: no scheme, no /v1/ path, docker.io for Docker Hub."""
    if "://" in key:
        key = key.split("://", 1)[1].split("/", 1)[0]  # legacy docker keys are URLs
    key = key.rstrip("/")
    host, _, rest = key.partition("/")
    if host in _HUB_KEYS:
        host = "docker.io"
    return f"{host}/{rest}" if rest else host


def _load(path: Path) -> dict[str, Any]:
    try:
        data = read_bytes_if_exists(path)
    except OSError as e:
        raise AuthError(f"cannot read auth file {path}: {e.strerror}") from e
    if data is None:
        return {}
    try:
        doc = json.loads(data or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise AuthError(
            f"auth file {path} is not valid JSON: {e}", hint="fix or remove the file"
        ) from e
    if not isinstance(doc, dict) or not isinstance(doc.get("auths", {}), dict):
        raise AuthError(f"auth file {path} has no auths object", hint="fix or remove the file")
    return doc


def _decode(entry: object, key: str, path: Path) -> Credentials | None:
    if not isinstance(entry, dict):
        return None
    token = entry.get("auth")
    if not token:
        return None
    try:
        text = base64.b64decode(str(token), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as e:
        raise AuthError(f"auth file {path}: the entry for {key!r} is not base64") from e
    user, sep, password = text.partition(":")
    if not sep or not user:
        raise AuthError(f"auth file {path}: the entry for {key!r} is not user:password")
    return Credentials(user, password)


def _candidates(registry: str, repository: str) -> list[str]:
    """Keys that can hold credentials for REGISTRY/REPOSITORY, most specific first."""
    parts = repository.split("/") if repository else []
    keys = [f"{registry}/{'/'.join(parts[:n])}" for n in range(len(parts), 0, -1)]
    return [normalize_key(k) for k in keys] + [normalize_key(registry)]


def lookup(files: Sequence[Path], registry: str, repository: str = "") -> Credentials | None:
    """The credentials for REGISTRY/REPOSITORY from the first file that has any."""
    wanted = _candidates(registry, repository)
    for path in files:
        auths = _load(path).get("auths", {})
        entries = {normalize_key(k): (k, v) for k, v in auths.items()}
        for key in wanted:
            if key in entries:
                creds = _decode(entries[key][1], entries[key][0], path)
                if creds is not None:
                    return creds
    return None


def _save(path: Path, doc: dict[str, Any]) -> None:
    try:
        atomic_write(path, json.dumps(doc, indent="\t").encode() + b"\n", mode=0o600)
    except OSError as e:
        raise AuthError(f"cannot write auth file {path}: {e.strerror}") from e


def store(path: Path, registry: str, creds: Credentials) -> None:
    """Save CREDS for REGISTRY in the auth file at PATH (mode 0600, atomically)."""
    if not creds.username or ":" in creds.username:
        raise UsageError(f"username {creds.username!r} is empty or contains ':'")
    doc = _load(path)
    key = normalize_key(registry)
    auths = {k: v for k, v in doc.get("auths", {}).items() if normalize_key(k) != key}
    token = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
    auths[key] = {"auth": token}
    doc["auths"] = auths
    _save(path, doc)


def remove(path: Path, registry: str | None) -> list[str]:
    """Forget REGISTRY (every registry when None) in PATH; returns the keys removed."""
    doc = _load(path)
    auths: dict[str, Any] = doc.get("auths", {})
    gone = [k for k in auths if registry is None or normalize_key(k) == normalize_key(registry)]
    if registry is not None and not gone:
        raise AuthError(
            f"not logged in to {registry}: {path} has no entry for it",
            hint="pass --authfile to name another auth file",
        )
    if gone:
        doc["auths"] = {k: v for k, v in auths.items() if k not in gone}
        _save(path, doc)
    return gone
