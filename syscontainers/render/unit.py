"""The systemd unit of a deployment: its template, the runtime mode, the lines syscontainers adds.

The unit comes from /exports/service.j2 or service.template, else from the
shipped default (templates/service.template). The runtime mode follows
atomic's rule: a unit template that uses both $EXEC_STOPPOST and $PIDFILE
asks for the detached mode (`runtime run -d --pid-file`); any other asks for
the foreground mode. syscontainers.runtime builds the command lines for that
mode and they reach the template as EXEC_START, EXEC_STOP, EXEC_STARTPRE and
EXEC_STOPPOST.

An image's own unit gets the same stop guarantees as the default one: after
its text comes a second ``[Service]`` block (systemd merges repeated sections)
that adds the ExecStartPre, ExecStop and ExecStopPost lines of
syscontainers.runtime the template does not use, ``Delegate=yes`` (runc makes
the container's cgroup inside the unit's) and ``SuccessExitStatus`` for how a
stop ends: ``runc run`` exits 143 (SIGTERM) or 137 (SIGKILL after the grace),
and a detached container's init is the main process, so it is killed by SIGKILL
itself. SuccessExitStatus adds to the image's list; an image that sets
TimeoutStopSec below runtime.STOP_GRACE_SECONDS gets systemd's timeout instead.
The block also names the container in the journal (``SyslogIdentifier=NAME``;
otherwise the journal says ``runc``) unless the image's unit names it itself.
The shipped default unit has all of this written out and gets no block.

Network: the default unit is ordered ``After=network.target``, as daemons are.
A unit that wants network-online.target holds its start, at boot and in
``install --now``, until the wait-online service gives up (two minutes on an
offline host), and nothing syscontainers does at start needs the network. An
image that needs it says so in its own unit; a user asks with ``--set
NETWORK_ONLINE=yes`` (kept by update, like every --set value), which appends a
``[Unit]`` block with ``Wants=`` and ``After=network-online.target`` to any unit.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from syscontainers.render.exports import (
    DefaultTemplates,
    Exports,
    TemplateSource,
    load_default_templates,
)
from syscontainers.render.templates import ensure_newline, identifiers, render_text
from syscontainers.render.values import NETWORK_ONLINE, network_online

DETACHED_MARKERS = frozenset({"EXEC_STOPPOST", "PIDFILE"})


@functools.cache
def shipped_defaults() -> DefaultTemplates:
    """The shipped default templates, read once (the only I/O in this module)."""
    return load_default_templates()


def service_source(
    exports: Exports, defaults: DefaultTemplates | None = None
) -> TemplateSource | None:
    """The unit template an install uses; None for a noContainerService image."""
    if exports.manifest.no_container_service:
        return None
    if exports.service is not None:
        return exports.service
    return (defaults or shipped_defaults()).service


def wants_detached(exports: Exports, defaults: DefaultTemplates | None = None) -> bool:
    """True if the unit template uses both $EXEC_STOPPOST and $PIDFILE (detached mode)."""
    source = service_source(exports, defaults)
    return source is not None and DETACHED_MARKERS <= identifiers(source)


SUPPLEMENT_HEADER = (
    "\n# Added by syscontainers: the container lives in a cgroup inside this unit's,\n"
    "# and a stop ends it by SIGTERM or, after a grace period, SIGKILL.\n[Service]\n"
)
SUPPLEMENT_EXECS = (
    ("ExecStartPre", "EXEC_STARTPRE"),
    ("ExecStop", "EXEC_STOP"),
    ("ExecStopPost", "EXEC_STOPPOST"),
)
STOP_SUCCESS = {False: "143 137", True: "143 SIGKILL"}  # keyed by detached


NETWORK_ONLINE_BLOCK = (
    f"\n# Added by syscontainers ({NETWORK_ONLINE}=yes): start once the network is up.\n"
    "[Unit]\nWants=network-online.target\nAfter=network-online.target\n"
)


def _sets_key(text: str, key: str) -> bool:
    return any(line.strip().startswith(key + "=") for line in text.splitlines())


def supplement(
    source: TemplateSource, values: Mapping[str, str], detached: bool, text: str = ""
) -> str:
    """The [Service] block appended to an image's unit TEXT (see the module docstring)."""
    used = identifiers(source)
    # A unit that does not start the container ($EXEC_START) gets no runtime commands:
    # azure's runs a host program, and a stop that waits for a container would hang.
    lines = [
        f"{key}={values[var]}\n"
        for key, var in SUPPLEMENT_EXECS
        if "EXEC_START" in used and var not in used and values.get(var)
    ]
    lines += ["Delegate=yes\n", f"SuccessExitStatus={STOP_SUCCESS[detached]}\n"]
    if not _sets_key(text, "SyslogIdentifier"):
        lines.append(f"SyslogIdentifier={values['NAME']}\n")
    return SUPPLEMENT_HEADER + "".join(lines)


def render_unit(
    exports: Exports, values: Mapping[str, str], defaults: DefaultTemplates | None = None
) -> str:
    """The unit file text ('' for a noContainerService image)."""
    source = service_source(exports, defaults)
    if source is None:
        return ""
    text = ensure_newline(render_text(source, values))
    if exports.service is not None:
        text += supplement(source, values, wants_detached(exports, defaults), text)
    if network_online(values):
        text += NETWORK_ONLINE_BLOCK
    return text
