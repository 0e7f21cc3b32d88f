"""Rendering a deployment from an image's /exports: config.json, unit, tmpfiles and host files.

The flow for install and update (all pure but the loaders):

    exports  = load_exports(rootfs)                       # I/O: the checked-out rootfs
    facts    = host_facts(runtime)                        # I/O: uid, gid, cap_last_cap
    detached = wants_detached(exports)
    values   = compute_values(..., commands=lambda v: runtime_commands(v, detached))
    rendered = render_deployment(exports, image_config, values, users=..., exists=os.path.exists,
                                 cgroups_path=runtime.service_cgroup(runtime, name))

`render_deployment` first checks that every variable of every template has a
value, and reports all the missing ones at once, before anything is rendered.
``cgroups_path`` goes into config.json for a service (see render.config_json); a
container run once, outside any unit, is rendered without it.

The names below are loaded on first use (PEP 562): importing
``syscontainers.render.values`` for KeptValues, as the deployment layout and
``list`` do, must not import jinja2 nor the config and unit renderers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from syscontainers.render.config_json import MissingSource, UserDB
    from syscontainers.render.deployment import Rendered, load_user_db, render_deployment
    from syscontainers.render.exports import (
        DefaultTemplates,
        Exports,
        ExportsManifest,
        Syntax,
        TemplateSource,
        load_exports,
        parse_exports,
    )
    from syscontainers.render.hostfs import HostFile
    from syscontainers.render.templates import (
        TemplateVariable,
        VariableKind,
        check_complete,
        missing_variables,
        template_variables,
    )
    from syscontainers.render.unit import wants_detached
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

# Each public name and the submodule that defines it.
_HOME = {
    "MissingSource": "config_json",
    "UserDB": "config_json",
    "Rendered": "deployment",
    "load_user_db": "deployment",
    "render_deployment": "deployment",
    "DefaultTemplates": "exports",
    "Exports": "exports",
    "ExportsManifest": "exports",
    "Syntax": "exports",
    "TemplateSource": "exports",
    "load_exports": "exports",
    "parse_exports": "exports",
    "TemplateVariable": "templates",
    "VariableKind": "templates",
    "check_complete": "templates",
    "missing_variables": "templates",
    "template_variables": "templates",
    "HostFile": "hostfs",
    "wants_detached": "unit",
    "HostFacts": "values",
    "KeptValues": "values",
    "Origin": "values",
    "RuntimeCommands": "values",
    "Values": "values",
    "compute_values": "values",
    "host_facts": "values",
    "kept_values": "values",
    "parse_sets": "values",
}

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

if not TYPE_CHECKING:  # mypy sees the imports above; at run time each loads on first use

    def __getattr__(name: str) -> Any:
        """Import the submodule that defines NAME, on first use."""
        home = _HOME.get(name)
        if home is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        """The module's names, the lazily loaded ones included."""
        return sorted({*globals(), *__all__})
