"""Settings, layered: built-in defaults < /etc config < user config < environment < flags.

Each setting is declared once, in ``settings_table.TABLE``; the layers here are built from
it, and ``Settings`` has one attribute per setting, whose default is the table's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from syscontainers.errors import UsageError
from syscontainers.record import fields, record, replace
from syscontainers.settings_table import (
    AUTHFILE,
    CERTS_D,
    ENV_PREFIX,
    HEALTH_TIMEOUT,
    LOCK_TIMEOUT,
    POLICY,
    REGISTRIES_CONF,
    REGISTRIES_D,
    ROOT,
    RUNTIME,
    TABLE,
    TLS_VERIFY,
)

SYSTEM_CONFIG = Path("/etc/syscontainers/config.yaml")

_BY_NAME = {s.name: s for s in TABLE}


@record
class Settings:
    """Everything a user can configure: one attribute per setting of TABLE."""

    root: Path = ROOT.default
    runtime: str = RUNTIME.default
    registries_conf: Path | None = REGISTRIES_CONF.default
    certs_d: Path | None = CERTS_D.default
    policy: Path | None = POLICY.default
    registries_d: Path = REGISTRIES_D.default
    authfile: Path | None = AUTHFILE.default
    tls_verify: bool = TLS_VERIFY.default
    lock_timeout: float | None = LOCK_TIMEOUT.default
    health_timeout: float = HEALTH_TIMEOUT.default


if [f.name for f in fields(Settings)] != [s.name for s in TABLE]:  # pragma: no cover
    raise AssertionError("Settings and TABLE must name the same settings, in the same order")


def _apply(settings: Settings, values: Mapping[str, Any], origin: str) -> Settings:
    changes: dict[str, Any] = {}
    for raw_key, value in values.items():
        key = str(raw_key).replace("-", "_")
        if key not in _BY_NAME:
            known = ", ".join(sorted(k.replace("_", "-") for k in _BY_NAME))
            raise UsageError(
                f"{origin}: unknown setting {raw_key!r}", hint=f"known settings: {known}"
            )
        changes[key] = _BY_NAME[key].coerce(value, origin)
    return replace(settings, **changes)


def _read_yaml(path: Path) -> Mapping[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise UsageError(
            f"cannot read config {path}: {e.strerror}", hint="check the file's permissions"
        ) from e
    import yaml  # only when a config file exists: keeps start-up cheap

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise UsageError(
            f"config {path} is not valid YAML: {e}",
            hint="fix the line it names; settings are written 'name: value'",
        ) from e
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise UsageError(
            f"config {path} must be a mapping of setting: value",
            hint="write one 'name: value' line per setting",
        )
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
    from_env = {s.name: env[s.env] for s in TABLE if s.env in env}
    settings = _apply(settings, from_env, "environment")
    return _apply(settings, {k: v for k, v in flags.items() if v is not None}, "command line")
