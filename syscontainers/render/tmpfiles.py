"""tmpfiles.d lines of a deployment: the image's template, else one per missing bind source.

The lines come from /exports/tmpfiles.j2 or tmpfiles.template, else one
`d SRC 0700 UID GID - -` line per bind-mount source that does not exist.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from syscontainers.errors import TemplateError
from syscontainers.render.config_json import MissingSource
from syscontainers.render.exports import Exports
from syscontainers.render.templates import ensure_newline, render_text


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
        return ensure_newline(render_text(exports.tmpfiles, values))
    return default_tmpfiles(missing)
