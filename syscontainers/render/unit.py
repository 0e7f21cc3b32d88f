"""What a deployment puts on the host outside its directory: unit, tmpfiles lines, host files.

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

tmpfiles come from /exports/tmpfiles.j2 or tmpfiles.template, else one
`d SRC 0700 UID GID - -` line per bind-mount source that does not exist.

Host files: renameFiles targets are rendered with the values first (atomic
syntax), then applied per path component: renaming a directory renames
everything under it, and the longest renamed ancestor of a path wins. Files
listed in installedFilesTemplate are rendered here; the others are copied as
they are by the installer, which also guards against symlinks on the host side.
"""

from __future__ import annotations

import functools
import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from syscontainers.errors import TemplateError
from syscontainers.render.config_json import MissingSource
from syscontainers.render.exports import (
    HOSTFS,
    DefaultTemplates,
    Exports,
    Syntax,
    TemplateSource,
    load_default_templates,
    rename_path,
)
from syscontainers.render.templates import identifiers, render_text
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


def _ensure_newline(text: str) -> str:
    return text if not text or text.endswith("\n") else text + "\n"


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
    text = _ensure_newline(render_text(source, values))
    if exports.service is not None:
        text += supplement(source, values, wants_detached(exports, defaults), text)
    if network_online(values):
        text += NETWORK_ONLINE_BLOCK
    return text


def tmpfiles_path(path: str) -> str:
    """PATH as one tmpfiles.d field: '%' doubled, quoted and escaped if it has blanks."""
    if any(ord(c) < 0x20 or c == "\x7f" for c in path):
        raise TemplateError(
            f"bind-mount source {path!r} contains a control character",
            hint="paths with newlines or other control characters cannot go in tmpfiles.d",
        )
    field = path.replace("%", "%%")
    if any(c in field for c in " \"\\'"):
        field = '"' + field.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return field


def default_tmpfiles(missing: Iterable[MissingSource]) -> str:
    """One `d` line per missing bind-mount source, owned as MissingSource says."""
    return "".join(f"d {tmpfiles_path(m.path)} 0700 {m.uid} {m.gid} - -\n" for m in missing)


def render_tmpfiles(
    exports: Exports, values: Mapping[str, str], missing: Iterable[MissingSource]
) -> str:
    """The tmpfiles.d text: the image's template rendered, else the default lines."""
    if exports.tmpfiles is not None:
        return _ensure_newline(render_text(exports.tmpfiles, values))
    return default_tmpfiles(missing)


@dataclass(frozen=True, slots=True)
class HostFile:
    """One hostfs file to install: host destination, source under /exports, rendered content."""

    dest: str
    source: str  # relative to /exports, e.g. "hostfs/usr/local/bin/etcdctl"
    rendered: bool
    content: bytes | None = None  # the rendered bytes when rendered, else None: copy source


def check_host_path(path: str, what: str) -> str:
    """Return PATH if it is an absolute, normalised host path other than '/'."""
    if (
        not path.startswith("/")
        or path == "/"
        or "\x00" in path
        or ".." in path.split("/")
        or posixpath.normpath(path) != path
    ):
        raise TemplateError(
            f"{what}: {path!r} is not a clean absolute host path",
            hint="renameFiles targets and their values must give absolute paths without '..'",
        )
    return path


def substituted_renames(exports: Exports, values: Mapping[str, str]) -> dict[str, str]:
    """The renameFiles map with values rendered into each target."""
    out: dict[str, str] = {}
    for src, pattern in exports.manifest.rename_files:
        what = f"renameFiles[{src!r}]"
        target = render_text(TemplateSource(what, pattern, Syntax.ATOMIC), values)
        # '..' is refused, not normalised away: it must not carry a file out of its directory.
        clean = target and ".." not in target.split("/")
        out[src] = check_host_path(posixpath.normpath(target) if clean else target, what)
    return out


def host_destination(rel: str, renames: Mapping[str, str]) -> str:
    """The host path of hostfs entry REL ("hostfs/a/b") after renameFiles."""
    if not rel.startswith(HOSTFS):
        raise TemplateError(f"{rel!r} is not under /exports/hostfs")
    dest = rename_path("/" + rel[len(HOSTFS) :], renames)
    return check_host_path(dest, f"/exports/{rel}")


def plan_host_files(exports: Exports, values: Mapping[str, str]) -> tuple[HostFile, ...]:
    """Every hostfs file with its destination, rendering the installedFilesTemplate ones."""
    renames = substituted_renames(exports, values)
    templates = {t.name: t for t in exports.host_templates}
    seen: dict[str, str] = {}
    plan: list[HostFile] = []
    for rel in exports.hostfs:
        dest = host_destination(rel, renames)
        if dest in seen:
            raise TemplateError(
                f"/exports/{rel} and /exports/{seen[dest]} would both be installed as {dest}",
                hint="fix renameFiles in the image's manifest.json",
            )
        seen[dest] = rel
        template = templates.get(rel)
        if template is None:
            plan.append(HostFile(dest, rel, rendered=False))
        else:
            content = render_text(template, values).encode()
            plan.append(HostFile(dest, rel, rendered=True, content=content))
    return tuple(plan)
