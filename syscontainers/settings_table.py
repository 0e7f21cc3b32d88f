"""The settings table: each setting declared once, with its name (the YAML key, with ``-`` or
``_``), how a value is read, its default, its environment variable, its command-line flag
and its help.

``settings`` builds the YAML and environment layers from it, and the CLI its flags
(``add_flag``) and the values they hand to ``load`` (``given_flags``). This module is cheap
to import (no dataclasses, no argparse): the global ``--root`` is built from it at every
start, ``--version`` included.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from syscontainers.errors import UsageError

if TYPE_CHECKING:
    import argparse

ENV_PREFIX = "SYSCONTAINERS_"

T = TypeVar("T")


def _text(value: Any) -> str:
    return str(value)


def _path(value: Any) -> Path:
    return Path(str(value))


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError("must be a number") from None


class Setting(Generic[T]):
    """One setting: read by PARSE, DEFAULT when no layer sets it, FLAG on the command line."""

    __slots__ = ("name", "parse", "default", "help", "optional", "flag", "metavar")

    def __init__(
        self,
        name: str,
        parse: Callable[[Any], T],
        default: T,
        help: str,
        *,
        optional: bool = False,
        flag: str | None = None,
        metavar: str | None = None,
    ) -> None:
        self.name = name
        self.parse = parse
        self.default = default
        self.help = help
        self.optional = optional  # may be null (None): the default then means "look elsewhere"
        self.flag = flag  # the option that sets it, on the verbs that take it
        self.metavar = metavar

    def __repr__(self) -> str:
        return f"Setting({self.name!r})"

    @property
    def env(self) -> str:
        """The environment variable that sets it."""
        return ENV_PREFIX + self.name.upper()

    @property
    def dest(self) -> str:
        """The attribute of the parsed arguments that holds its flag's value."""
        return self.name

    def coerce(self, value: Any, origin: str) -> T | None:
        """VALUE (from ORIGIN: a file, the environment, the command line) as this setting's."""
        hint = f"leave {self.name} out for its default ({self.default})"
        if value is None:
            if self.optional:
                return None
            raise UsageError(f"{origin}: {self.name} needs a value", hint=hint)
        try:
            return self.parse(value)
        except ValueError as e:  # the parsers' own: their text says what the value must be
            raise UsageError(f"{origin}: {self.name} {e}, not {value!r}", hint=hint) from None


ROOT = Setting("root", _path, Path("/var/lib/syscontainers"), "the store root", flag="--root")
# A bare name is looked up on PATH (in the offline root, its systemd's PATH) when it is used.
RUNTIME = Setting("runtime", _text, "runc", "the OCI runtime", flag="--runtime", metavar="PATH")
# None: where skopeo and podman look (~/.config/containers/... if it exists, else
# /etc/containers/...; certs.d also /etc/docker/certs.d), see containers_conf
REGISTRIES_CONF: Setting[Path | None] = Setting(
    "registries_conf", _path, None, "registries.conf(5)", optional=True
)
CERTS_D: Setting[Path | None] = Setting(
    "certs_d", _path, None, "per-registry TLS files: certs.d/HOST[:PORT]/", optional=True
)
POLICY: Setting[Path | None] = Setting(
    "policy",
    _path,
    None,
    "containers-policy.json(5)",
    optional=True,
    flag="--policy",
    metavar="FILE",
)
REGISTRIES_D = Setting(
    "registries_d",
    _path,
    Path("/etc/containers/registries.d"),
    "signature lookaside, registries.d(5)",
)
AUTHFILE: Setting[Path | None] = Setting(
    "authfile", _path, None, "the registry auth file", optional=True
)
TLS_VERIFY = Setting("tls_verify", _bool, True, "require HTTPS with verified certificates")
LOCK_TIMEOUT: Setting[float | None] = Setting(
    "lock_timeout",
    _number,
    None,
    "seconds to wait for the store lock (default: forever)",
    optional=True,
)
HEALTH_TIMEOUT = Setting(
    "health_timeout",
    _number,
    30.0,
    "seconds a (re)started service must stay active",
    flag="--health-timeout",
    metavar="SECS",
)

TABLE: tuple[Setting[Any], ...] = (
    ROOT,
    RUNTIME,
    REGISTRIES_CONF,
    CERTS_D,
    POLICY,
    REGISTRIES_D,
    AUTHFILE,
    TLS_VERIFY,
    LOCK_TIMEOUT,
    HEALTH_TIMEOUT,
)


def add_flag(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, setting: Setting[Any], help: str
) -> None:
    """Add SETTING's flag to PARSER, with HELP; it is None unless given (see given_flags)."""
    assert setting.flag is not None, f"{setting.name} has no flag"
    # A number is checked by argparse, as before: "invalid float value" is a usage error.
    kind: dict[str, Any] = {"type": float} if setting.parse is _number else {}
    parser.add_argument(
        setting.flag, dest=setting.dest, metavar=setting.metavar, default=None, help=help, **kind
    )


def given_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The settings ARGS gave flags for (the verb's, those it has)."""
    return {s.name: getattr(args, s.dest, None) for s in TABLE if s.flag is not None}
