"""Host files of a deployment: where each /exports/hostfs file goes, rendered or copied.

renameFiles targets are rendered with the values first (atomic
syntax), then applied per path component: renaming a directory renames
everything under it, and the longest renamed ancestor of a path wins. Files
listed in installedFilesTemplate are rendered here; the others are copied as
they are by the installer, which also guards against symlinks on the host side.
The installing itself (staging, the host-file database, safe writes on the
host) is deploy.hostfiles and operations.hostsync.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping

from syscontainers.errors import TemplateError
from syscontainers.record import record
from syscontainers.render.exports import HOSTFS, Exports, Syntax, TemplateSource, rename_path
from syscontainers.render.templates import render_text


@record
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
