"""Rendering a deployment from an image's /exports: config.json, unit, tmpfiles and host files.

The flow for install and update (all pure but the loaders):

    exports  = load_exports(rootfs)                       # I/O: the checked-out rootfs
    facts    = host_facts(runtime)                        # I/O: uid, gid, cap_last_cap
    detached = wants_detached(exports)
    values   = compute_values(..., commands=lambda v: runtime_commands(v, detached))
    rendered = render_deployment(exports, image_config, values, users=..., exists=os.path.exists)

`render_deployment` first checks that every variable of every template has a
value, and reports all the missing ones at once, before anything is rendered.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from syscontainers.errors import TemplateError
from syscontainers.oci import ImageConfig
from syscontainers.render.config import MissingSource, UserDB, parse_user_db, render_config
from syscontainers.render.exports import (
    DefaultTemplates,
    Exports,
    ExportsManifest,
    Syntax,
    TemplateSource,
    load_exports,
    parse_exports,
    read_rootfs_file,
)
from syscontainers.render.templates import (
    TemplateVariable,
    VariableKind,
    check_complete,
    missing_variables,
    template_variables,
)
from syscontainers.render.unit import (
    HostFile,
    plan_host_files,
    render_tmpfiles,
    render_unit,
    shipped_defaults,
    wants_detached,
)
from syscontainers.render.values import (
    HostFacts,
    KeptValues,
    Origin,
    RuntimeCommands,
    Values,
    compute_values,
    host_facts,
    kept_values,
    parse_sets,
)

__all__ = [
    "DefaultTemplates",
    "Exports",
    "ExportsManifest",
    "HostFacts",
    "HostFile",
    "KeptValues",
    "MissingSource",
    "Origin",
    "Rendered",
    "RuntimeCommands",
    "Syntax",
    "TemplateSource",
    "TemplateVariable",
    "UserDB",
    "Values",
    "VariableKind",
    "check_complete",
    "compute_values",
    "host_facts",
    "kept_values",
    "load_exports",
    "load_user_db",
    "missing_variables",
    "parse_exports",
    "parse_sets",
    "render_deployment",
    "template_variables",
    "wants_detached",
]


@dataclass(frozen=True, slots=True)
class Rendered:
    """Everything a deployment needs written, rendered and not yet written."""

    config_json: bytes  # b"" for a noContainerService image
    unit: str  # "" for a noContainerService image
    tmpfiles: str
    host_files: tuple[HostFile, ...]
    missing_sources: tuple[MissingSource, ...] = ()


def render_deployment(
    exports: Exports,
    image_config: ImageConfig,
    values: Mapping[str, str],
    *,
    exists: Callable[[str], bool],
    users: UserDB | None = None,
    defaults: DefaultTemplates | None = None,
    what: str = "the image",
) -> Rendered:
    """Render a deployment; EXISTS tells which host paths exist (for bind sources)."""
    defaults = defaults or shipped_defaults()
    check_complete(exports, values, defaults, what)
    host_files = plan_host_files(exports, values)
    if exports.manifest.no_container_service:
        tmpfiles = render_tmpfiles(exports, values, ())
        return Rendered(b"", "", tmpfiles, host_files)
    config = render_config(exports, image_config, values, users or UserDB(), exists)
    return Rendered(
        config_json=config.data,
        unit=render_unit(exports, values, defaults),
        tmpfiles=render_tmpfiles(exports, values, config.missing_sources),
        host_files=host_files,
        missing_sources=config.missing_sources,
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
