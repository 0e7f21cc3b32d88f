"""Where the containers tools' config files are: the user's file if it exists, else the system's.

containers/image (skopeo, podman) reads ``~/.config/containers/registries.conf``
instead of ``/etc/containers/registries.conf`` when the user's file exists (and
then only the user's ``registries.conf.d``; otherwise both drop-in directories,
the system's first); ``~/.config/containers/policy.json`` instead of
``/etc/containers/policy.json``; and for TLS the first existing ``HOST[:PORT]``
directory of ``~/.config/containers/certs.d``, ``/etc/containers/certs.d`` and
``/etc/docker/certs.d`` (containers-certs.d(5)). A path set in the settings
(config file, ``SYSCONTAINERS_*`` or a flag) is used alone instead. ``~`` is
``$HOME``; as syscontainers runs as root, that is root's home. The only I/O
here is checking which files exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from syscontainers.record import record

SYSTEM_DIR = Path("/etc/containers")
SYSTEM_CERTS_DIRS = (SYSTEM_DIR / "certs.d", Path("/etc/docker/certs.d"))


def user_dir(env: Mapping[str, str]) -> Path | None:
    """``~/.config/containers`` (from $HOME, as containers/image has it), or None."""
    home = env.get("HOME")
    return Path(home) / ".config" / "containers" if home else None


def _exists(path: Path) -> bool:
    try:
        path.stat()
    except OSError:  # missing, or unreadable: containers/image moves on in both cases
        return False
    return True


@record
class RegistriesFiles:
    """The registries.conf to read and its drop-in directories, in order."""

    main: Path
    drop_in_dirs: tuple[Path, ...]


def registries_files(env: Mapping[str, str], setting: Path | None) -> RegistriesFiles:
    """Which registries.conf files apply: SETTING (and its .d) if set, else the defaults."""
    if setting is not None:
        return RegistriesFiles(setting, (setting.with_name(setting.name + ".d"),))
    user = user_dir(env)
    if user is not None and _exists(user / "registries.conf"):
        return RegistriesFiles(user / "registries.conf", (user / "registries.conf.d",))
    dirs: tuple[Path, ...] = (SYSTEM_DIR / "registries.conf.d",)
    if user is not None:
        dirs += (user / "registries.conf.d",)
    return RegistriesFiles(SYSTEM_DIR / "registries.conf", dirs)


def policy_file(env: Mapping[str, str], setting: Path | None) -> Path:
    """The policy.json to use: SETTING if set, else the user's if it exists, else /etc's."""
    if setting is not None:
        return setting
    user = user_dir(env)
    if user is not None and _exists(user / "policy.json"):
        return user / "policy.json"
    return SYSTEM_DIR / "policy.json"


def certs_dirs(env: Mapping[str, str], setting: Path | None) -> tuple[Path, ...]:
    """The certs.d directories searched for a HOST[:PORT] directory, in order."""
    if setting is not None:
        return (setting,)
    user = user_dir(env)
    return ((user / "certs.d",) if user is not None else ()) + SYSTEM_CERTS_DIRS


def host_certs_dir(dirs: tuple[Path, ...], host: str) -> Path | None:
    """The first DIRS/HOST that exists (the first one wins whole; they are not merged)."""
    return next((d / host for d in dirs if _exists(d / host)), None)
