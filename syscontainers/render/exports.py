"""The image's /exports directory as a value: templates, manifest.json settings and hostfs files.

`parse_exports` is pure: it takes the files as a mapping of path (relative to
/exports) to bytes. `load_exports` and `read_rootfs_file` are the I/O edge: they
read a checked-out rootfs one path component at a time with O_NOFOLLOW, so a
symlink planted in an image can never lead a read outside that rootfs.
"""

from __future__ import annotations

import errno
import json
import os
import posixpath
import stat
from collections.abc import Iterator, Mapping
from enum import Enum
from importlib import resources
from pathlib import Path

from syscontainers.errors import TemplateError
from syscontainers.record import record

HOSTFS = "hostfs/"
MANIFEST = "manifest.json"
MAX_TEXT = 4 * 1024 * 1024  # no sane template or manifest is bigger
MAX_OUTPUT = 2 * MAX_TEXT  # what one template may render to, and the largest value it may build

# For each role, the candidate files in order of preference. A jinja2 file wins
# over the atomic one so that one image can serve both atomic and syscontainers.
CONFIG_FILES = ("config.json.j2", "config.json.template", "config.json")
SERVICE_FILES = ("service.j2", "service.template")
TMPFILES_FILES = ("tmpfiles.j2", "tmpfiles.template")
TOP_FILES = (*CONFIG_FILES, *SERVICE_FILES, *TMPFILES_FILES, MANIFEST)


class Syntax(Enum):
    """How a template's text is turned into output."""

    ATOMIC = "atomic"  # string.Template: $VAR, ${VAR}, $$
    JINJA = "jinja2"  # sandboxed jinja2
    VERBATIM = "verbatim"  # used as is (config.json)


def syntax_of(filename: str) -> Syntax:
    """The syntax a file name implies."""
    if filename.endswith(".j2"):
        return Syntax.JINJA
    if filename.endswith(".template") or filename.startswith(HOSTFS):
        return Syntax.ATOMIC
    return Syntax.VERBATIM


@record
class TemplateSource:
    """One template: its name (for messages), its text and its syntax."""

    name: str
    text: str
    syntax: Syntax


@record
class ExportsManifest:
    """The settings of /exports/manifest.json (atomic defaults when absent)."""

    version: str = ""
    default_values: tuple[tuple[str, str], ...] = ()
    rename_files: tuple[tuple[str, str], ...] = ()
    installed_files_template: tuple[str, ...] = ()
    no_container_service: bool = False
    use_links: bool = True


@record
class Exports:
    """Everything rendering needs from an image's /exports."""

    present: bool = False
    config: TemplateSource | None = None
    service: TemplateSource | None = None
    tmpfiles: TemplateSource | None = None
    manifest: ExportsManifest = ExportsManifest()
    hostfs: tuple[str, ...] = ()  # "hostfs/usr/bin/x": regular files and symlinks
    host_templates: tuple[TemplateSource, ...] = ()  # the installedFilesTemplate files

    def templates(self) -> tuple[TemplateSource, ...]:
        """Every template the image ships (not counting the built-in defaults)."""
        own = (self.config, self.service, self.tmpfiles)
        found = [t for t in own if t is not None and t.syntax is not Syntax.VERBATIM]
        return (*found, *self.host_templates)


@record
class DefaultTemplates:
    """The built-in templates used when an image does not ship its own."""

    service: TemplateSource


def load_default_templates() -> DefaultTemplates:
    """Read the shipped default templates (package data under render/defaults -> templates/)."""
    base = resources.files("syscontainers.render").joinpath("defaults")
    text = base.joinpath("service.template").read_text(encoding="utf-8")
    return DefaultTemplates(
        service=TemplateSource("service.template (default)", text, Syntax.ATOMIC)
    )


def _manifest_error(detail: str, hint: str | None = None) -> TemplateError:
    return TemplateError(
        f"/exports/manifest.json: {detail}",
        hint=hint or "fix the image's manifest.json; see the image contract in the README",
    )


def check_text_size(name: str, size: int) -> None:
    """Raise TemplateError if /exports/NAME, a template or manifest, is over MAX_TEXT bytes."""
    if size > MAX_TEXT:
        raise TemplateError(
            f"/exports/{name} is {size} bytes, larger than the {MAX_TEXT} bytes a template "
            "or manifest.json may have",
            hint="the image is broken or hostile; tell the image's author",
        )


def _decode(name: str, data: bytes) -> str:
    check_text_size(name, len(data))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise TemplateError(
            f"/exports/{name} is not UTF-8 text (byte {e.start})",
            hint="templates must be UTF-8 text files",
        ) from e


def _value_map(raw: object, key: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, dict):
        raise _manifest_error(f"{key} must be an object of NAME: value")
    out: list[tuple[str, str]] = []
    for name, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise _manifest_error(f"{key}.{name} must be a string, not {type(value).__name__}")
        out.append((name, str(value)))
    return tuple(sorted(out))


def _host_path(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        raise _manifest_error(f"{what} must be an absolute path, not {value!r}")
    return posixpath.normpath(value)


def _rename_map(raw: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, dict):
        raise _manifest_error("renameFiles must be an object of /host/path: /new/path")
    out: list[tuple[str, str]] = []
    for src, dst in raw.items():
        if not isinstance(dst, str) or not dst:
            raise _manifest_error(f"renameFiles[{src!r}] must be a non-empty string")
        out.append((_host_path(src, f"renameFiles key {src!r}"), dst))
    return tuple(sorted(out))


def _flag(doc: Mapping[str, object], key: str, default: bool) -> bool:
    value = doc.get(key, default)
    if not isinstance(value, bool):
        raise _manifest_error(f"{key} must be true or false, not {value!r}")
    return value


def parse_manifest_json(data: bytes) -> ExportsManifest:
    """Parse and type-check /exports/manifest.json."""
    try:
        doc = json.loads(_decode(MANIFEST, data))
    except json.JSONDecodeError as e:
        raise _manifest_error(
            f"not valid JSON at line {e.lineno}, column {e.colno}: {e.msg}",
            hint="manifest.json must be one JSON object; check commas and quotes there",
        ) from e
    if not isinstance(doc, dict):
        raise _manifest_error(f"must be a JSON object, not {type(doc).__name__}")
    version = doc.get("version", "")
    if not isinstance(version, str | int | float) or isinstance(version, bool):
        raise _manifest_error(f'version must be a string such as "1.0", not {version!r}')
    installed = doc.get("installedFilesTemplate", [])
    if not isinstance(installed, list):
        raise _manifest_error("installedFilesTemplate must be a list of host paths")
    return ExportsManifest(
        version=str(version),
        default_values=_value_map(doc.get("defaultValues", {}), "defaultValues"),
        rename_files=_rename_map(doc.get("renameFiles", {})),
        installed_files_template=tuple(
            _host_path(p, "installedFilesTemplate entry") for p in installed
        ),
        no_container_service=_flag(doc, "noContainerService", False),
        use_links=_flag(doc, "useLinks", True),
    )


def rename_path(path: str, renames: Mapping[str, str]) -> str:
    """Apply renameFiles to one absolute host path, the longest renamed ancestor winning."""
    path = posixpath.normpath(path)
    suffix: list[str] = []
    head = path
    while True:
        if head in renames:
            return posixpath.join(renames[head], *reversed(suffix))
        parent, base = posixpath.split(head)
        if parent == head or not base:
            return path
        suffix.append(base)
        head = parent


def is_host_template(rel: str, manifest: ExportsManifest) -> bool:
    """True if hostfs file REL is listed in installedFilesTemplate (by source or renamed path)."""
    wanted = set(manifest.installed_files_template)
    host = "/" + rel[len(HOSTFS) :]
    return host in wanted or rename_path(host, dict(manifest.rename_files)) in wanted


def _check_rel(rel: str) -> str:
    norm = posixpath.normpath(rel)
    if rel.startswith("/") or norm.startswith("..") or norm != rel.rstrip("/"):
        raise TemplateError(
            f"/exports entry {rel!r} is not a plain relative path",
            hint="the image is broken or hostile; tell the image's author",
        )
    return norm


def _source(files: Mapping[str, bytes], names: tuple[str, ...]) -> TemplateSource | None:
    for name in names:
        if name in files:
            return TemplateSource(name, _decode(name, files[name]), syntax_of(name))
    return None


def parse_exports(files: Mapping[str, bytes], present: bool = True) -> Exports:
    """Build Exports from /exports files; bytes of hostfs files matter only for templates."""
    names = {_check_rel(k): v for k, v in files.items()}
    manifest = parse_manifest_json(names[MANIFEST]) if MANIFEST in names else ExportsManifest()
    hostfs = tuple(sorted(k for k in names if k.startswith(HOSTFS)))
    host_templates = tuple(
        TemplateSource(rel, _decode(rel, names[rel]), Syntax.ATOMIC)
        for rel in hostfs
        if is_host_template(rel, manifest)
    )
    return Exports(
        present=present,
        config=_source(names, CONFIG_FILES),
        service=_source(names, SERVICE_FILES),
        tmpfiles=_source(names, TMPFILES_FILES),
        manifest=manifest,
        hostfs=hostfs,
        host_templates=host_templates,
    )


# --- I/O edge -----------------------------------------------------------------

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


def _open_at(parent: int, name: str, flags: int, what: str) -> int | None:
    """Open NAME under PARENT without following a symlink; None if it does not exist."""
    try:
        return os.open(name, flags, dir_fd=parent)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            raise TemplateError(
                f"{what} is a symlink or not of the expected type",
                hint="the image must ship /exports entries as plain files and directories",
            ) from e
        raise TemplateError(
            f"cannot open {what}: {e.strerror}",
            hint="run the command as root; if it was, run 'syscontainers images verify'",
        ) from e


def _read_fd(fd: int, what: str, limit: int) -> bytes:
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise TemplateError(
            f"{what} is not a regular file",
            hint="the image is broken or hostile; tell the image's author",
        )
    if st.st_size > limit:
        raise TemplateError(
            f"{what} is {st.st_size} bytes, larger than the {limit} bytes allowed",
            hint="the image is broken or hostile; tell the image's author",
        )
    with os.fdopen(os.dup(fd), "rb") as f:
        return f.read(limit + 1)


def _read_under(fd: int, rel: str, limit: int, label: str = "") -> bytes | None:
    """Read REL below directory FD one component at a time; None if a component is missing."""
    parts = [p for p in rel.split("/") if p and p != "."]
    if not parts or ".." in parts:
        raise TemplateError(f"{rel!r} is not a path inside the rootfs")
    what = label + "/" + "/".join(parts)
    opened: list[int] = []
    try:
        current = fd
        for part in parts[:-1]:
            child = _open_at(current, part, _DIR_FLAGS, what)
            if child is None:
                return None
            opened.append(child)
            current = child
        file_fd = _open_at(current, parts[-1], _FILE_FLAGS, what)
        if file_fd is None:
            return None
        opened.append(file_fd)
        return _read_fd(file_fd, what, limit)
    finally:
        for o in opened:
            os.close(o)


def read_rootfs_file(rootfs: Path, rel: str, limit: int = MAX_TEXT) -> bytes | None:
    """Read ROOTFS/REL without following any symlink in REL; None if a component is missing."""
    root_fd = os.open(rootfs, _DIR_FLAGS)
    try:
        return _read_under(root_fd, rel, limit)
    finally:
        os.close(root_fd)


def _walk_hostfs(fd: int, prefix: str) -> Iterator[str]:
    """Yield the files and symlinks under an open hostfs directory, never following links."""
    with os.scandir(fd) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        rel = prefix + entry.name
        if entry.is_dir(follow_symlinks=False):
            child = _open_at(fd, entry.name, _DIR_FLAGS, f"/exports/{rel}")
            if child is None:
                continue
            try:
                yield from _walk_hostfs(child, rel + "/")
            finally:
                os.close(child)
        elif entry.is_file(follow_symlinks=False) or entry.is_symlink():
            yield rel
        else:
            raise TemplateError(
                f"/exports/{rel} is a device, socket or fifo",
                hint="hostfs may hold only files, symlinks and directories",
            )


def load_exports(rootfs: Path) -> Exports:
    """Read ROOTFS/exports safely into Exports (absent exports give an empty Exports)."""
    root_fd = os.open(rootfs, _DIR_FLAGS)
    try:
        exports_fd = _open_at(root_fd, "exports", _DIR_FLAGS, "/exports")
    finally:
        os.close(root_fd)
    if exports_fd is None:
        return Exports()
    try:
        files: dict[str, bytes] = {}
        for name in TOP_FILES:
            fd = _open_at(exports_fd, name, _FILE_FLAGS, f"/exports/{name}")
            if fd is not None:
                try:
                    files[name] = _read_fd(fd, f"/exports/{name}", MAX_TEXT)
                finally:
                    os.close(fd)
        manifest = parse_manifest_json(files[MANIFEST]) if MANIFEST in files else None
        hostfs_fd = _open_at(exports_fd, HOSTFS.rstrip("/"), _DIR_FLAGS, "/exports/hostfs")
        if hostfs_fd is not None:
            try:
                for rel in _walk_hostfs(hostfs_fd, HOSTFS):
                    wanted = manifest is not None and is_host_template(rel, manifest)
                    files[rel] = _read_hostfs(exports_fd, rel) if wanted else b""
            finally:
                os.close(hostfs_fd)
    finally:
        os.close(exports_fd)
    return parse_exports(files)


def _read_hostfs(exports_fd: int, rel: str) -> bytes:
    data = _read_under(exports_fd, rel, MAX_TEXT, "/exports")
    if data is None:
        raise TemplateError(
            f"/exports/{rel} vanished while it was being read",
            hint="something changed the checkout meanwhile; run the command again",
        )
    return data
