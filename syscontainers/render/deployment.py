"""Rendering one whole deployment: config.json, unit, tmpfiles and host files, checked first.

``render_deployment`` first checks that every variable of every template has a
value, and reports all the missing ones at once, before anything is rendered.
``load_user_db`` reads the image's users and groups for config.json's user.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from syscontainers.errors import TemplateError
from syscontainers.oci import ImageConfig
from syscontainers.record import record
from syscontainers.render.config_json import MissingSource, UserDB, parse_user_db, render_config
from syscontainers.render.exports import DefaultTemplates, Exports, read_rootfs_file
from syscontainers.render.grants import HostLimits
from syscontainers.render.hostfs import HostFile, plan_host_files
from syscontainers.render.templates import check_complete
from syscontainers.render.tmpfiles import render_tmpfiles
from syscontainers.render.unit import render_unit, shipped_defaults


@record
class Rendered:
    """Everything a deployment needs written, rendered and not yet written."""

    config_json: bytes  # b"" for a noContainerService image
    unit: str  # "" for a noContainerService image
    tmpfiles: str
    host_files: tuple[HostFile, ...]
    missing_sources: tuple[MissingSource, ...] = ()
    withheld: tuple[str, ...] = ()  # what config.json asked for that the host cannot grant


def render_deployment(
    exports: Exports,
    image_config: ImageConfig,
    values: Mapping[str, str],
    *,
    exists: Callable[[str], bool],
    users: UserDB | None = None,
    defaults: DefaultTemplates | None = None,
    what: str = "the image",
    cgroups_path: str | None = None,
    limits: HostLimits | None = None,
) -> Rendered:
    """Render a deployment; EXISTS tells which host paths exist (for bind sources),
    CGROUPS_PATH is the config's linux.cgroupsPath unless the image sets one, and
    LIMITS (when given) what the host can grant config.json."""
    defaults = defaults or shipped_defaults()
    check_complete(exports, values, defaults, what)
    host_files = plan_host_files(exports, values)
    if exports.manifest.no_container_service:
        tmpfiles = render_tmpfiles(exports, values, ())
        return Rendered(b"", "", tmpfiles, host_files)
    config = render_config(
        exports, image_config, values, users or UserDB(), exists, cgroups_path, limits
    )
    return Rendered(
        config_json=config.data,
        unit=render_unit(exports, values, defaults),
        tmpfiles=render_tmpfiles(exports, values, config.missing_sources),
        host_files=host_files,
        missing_sources=config.missing_sources,
        withheld=config.withheld,
    )


def _read_or_empty(rootfs: Path, rel: str) -> str:
    try:
        data = read_rootfs_file(rootfs, rel)
    except TemplateError:  # a symlinked or odd /etc/passwd: treat it as absent
        return ""
    return (data or b"").decode(errors="replace")


def load_user_db(rootfs: Path) -> UserDB:
    """Read the image's /etc/passwd and /etc/group without following symlinks (I/O)."""
    return parse_user_db(_read_or_empty(rootfs, "etc/passwd"), _read_or_empty(rootfs, "etc/group"))
