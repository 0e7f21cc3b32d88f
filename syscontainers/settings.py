"""Settings, layered: built-in defaults < /etc config < user config < environment < flags."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from syscontainers.errors import UsageError
from syscontainers.paths import DEFAULT_ROOT

SYSTEM_CONFIG = Path("/etc/syscontainers/config.yaml")
ENV_PREFIX = "SYSCONTAINERS_"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a user can configure."""

    root: Path = DEFAULT_ROOT
    runtime: str = "runc"  # a bare name is looked up on PATH when it is used
    # None: where skopeo and podman look (~/.config/containers/... if it exists, else
    # /etc/containers/...; certs.d also /etc/docker/certs.d), see containers_conf
    registries_conf: Path | None = None
    certs_d: Path | None = None  # per-registry TLS files: certs.d/HOST[:PORT]/
    policy: Path | None = None  # containers-policy.json(5)
    registries_d: Path = Path("/etc/containers/registries.d")  # signature lookaside, (5)
    authfile: Path | None = None
    tls_verify: bool = True
    lock_timeout: float | None = None


_KEYS = {f.name: f for f in fields(Settings)}


def _coerce(key: str, value: Any, origin: str) -> Any:
    kind = str(_KEYS[key].type)
    if value is None:
        if "None" in kind:
            return None
        raise UsageError(f"{origin}: {key} needs a value")
    if "Path" in kind:
        return Path(str(value))
    if "bool" in kind:
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise UsageError(f"{origin}: {key} must be true or false, not {value!r}")
    if "float" in kind:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise UsageError(f"{origin}: {key} must be a number, not {value!r}") from None
    return str(value)


def _apply(settings: Settings, values: Mapping[str, Any], origin: str) -> Settings:
    changes: dict[str, Any] = {}
    for raw_key, value in values.items():
        key = str(raw_key).replace("-", "_")
        if key not in _KEYS:
            known = ", ".join(sorted(k.replace("_", "-") for k in _KEYS))
            raise UsageError(
                f"{origin}: unknown setting {raw_key!r}", hint=f"known settings: {known}"
            )
        changes[key] = _coerce(key, value, origin)
    return replace(settings, **changes)


def _read_yaml(path: Path) -> Mapping[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise UsageError(f"cannot read config {path}: {e.strerror}",
                         hint="check the file's permissions") from e
    import yaml  # only when a config file exists: keeps start-up cheap

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise UsageError(f"config {path} is not valid YAML: {e}",
                         hint="fix the line it names; settings are written 'name: value'") from e
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise UsageError(f"config {path} must be a mapping of setting: value",
                         hint="write one 'name: value' line per setting")
    return doc


def user_config_path(env: Mapping[str, str]) -> Path:
    """The per-user config file."""
    base = env.get("XDG_CONFIG_HOME") or os.path.join(env.get("HOME", "/root"), ".config")
    return Path(base) / "syscontainers" / "config.yaml"


def load(
    env: Mapping[str, str],
    flags: Mapping[str, Any],
    system_config: Path = SYSTEM_CONFIG,
) -> Settings:
    """Build Settings from the layers; FLAGS holds only options the user gave."""
    settings = Settings()
    config_override = env.get(ENV_PREFIX + "CONFIG")
    files = [Path(config_override)] if config_override else [system_config, user_config_path(env)]
    if config_override and not files[0].exists():
        raise UsageError(
            f"config {config_override} (from ${ENV_PREFIX}CONFIG) does not exist",
            hint=f"fix or unset ${ENV_PREFIX}CONFIG",
        )
    for path in files:
        settings = _apply(settings, _read_yaml(path), str(path))
    from_env = {
        k[len(ENV_PREFIX) :].lower(): v
        for k, v in env.items()
        if k.startswith(ENV_PREFIX) and k[len(ENV_PREFIX) :].lower() in _KEYS
    }
    settings = _apply(settings, from_env, "environment")
    return _apply(settings, {k: v for k, v in flags.items() if v is not None}, "command line")
