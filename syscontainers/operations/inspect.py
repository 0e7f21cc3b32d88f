"""``images inspect``: config, labels, layers and the template variables an image needs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from syscontainers.errors import TemplateError
from syscontainers.merge import merge
from syscontainers.operations.images import StoredImage, find_image
from syscontainers.record import record
from syscontainers.render.exports import (
    HOSTFS,
    MANIFEST,
    MAX_TEXT,
    TOP_FILES,
    check_text_size,
    is_host_template,
    parse_exports,
    parse_manifest_json,
)
from syscontainers.render.templates import TemplateVariable, VariableKind, template_variables
from syscontainers.render.values import capability_names, read_cap_bounding, read_cap_last_cap
from syscontainers.store import Store
from syscontainers.store.lock import LockMode
from syscontainers.tree import Entry, EntryKind

EXPORTS = "exports/"


@record
class LayerInfo:
    """One layer as stored."""

    digest: str
    diff_id: str
    media_type: str
    compressed_size: int
    size: int
    entries: int


@record
class ImageInfo:
    """Everything ``images inspect`` shows."""

    image: StoredImage
    names: tuple[str, ...]
    layers: tuple[LayerInfo, ...]
    exports: tuple[str, ...]
    variables: tuple[TemplateVariable, ...]
    grantable: tuple[str, ...] = ()  # ALL_PROCESS_CAPABILITIES on this host
    withheld: tuple[str, ...] = ()  # capabilities the kernel knows that this host cannot grant

    def _names(self, kind: VariableKind) -> list[str]:
        return [v.name for v in self.variables if v.kind is kind]

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        cfg = self.image.config
        return {
            "id": self.image.manifest_digest,
            "names": list(self.names),
            "manifest_media_type": self.image.manifest.media_type,
            "config_digest": self.image.manifest.config.digest,
            "created": cfg.created,
            "os": cfg.os,
            "architecture": cfg.architecture,
            "labels": dict(cfg.labels),
            "config": cfg.raw.get("config", {}),
            "layers": [vars_of(layer) for layer in self.layers],
            "exports": list(self.exports),
            "template_variables": {
                "with_default": {
                    v.name: v.default for v in self.variables if v.kind is VariableKind.DEFAULT
                },
                "required": self._names(VariableKind.REQUIRED),
                "optional": self._names(VariableKind.OPTIONAL),
                "set_by_os": self._names(VariableKind.OS),
                "forced": self._names(VariableKind.FORCED),
            },
            "capabilities": {"grantable": list(self.grantable), "withheld": list(self.withheld)},
        }

    def to_text(self) -> list[str]:
        """Human-readable lines."""
        cfg = self.image.config
        out = [
            f"Image: {self.image.label}",
            f"Id: {self.image.manifest_digest}",
            f"Names: {', '.join(self.names) or '<none>'}",
            f"Created: {cfg.created}",
            f"Platform: {cfg.os}/{cfg.architecture}",
            f"Entrypoint: {list(cfg.entrypoint)}  Cmd: {list(cfg.cmd)}",
        ]
        out += ["Labels:"] + [f"  {k}={v}" for k, v in cfg.labels] if cfg.labels else []
        out.append("Layers:")
        for la in self.layers:
            out.append(f"  {la.digest}  {la.size} bytes, {la.entries} entries")
        if self.exports:
            out.append("Template variables with default value, overridable with --set:")
            out += [
                f"  {v.name}: {v.default}" for v in self.variables if v.kind is VariableKind.DEFAULT
            ]
            out += [f"  {k}: {{SET_BY_OS}}{self._os_note(k)}" for k in self._names(VariableKind.OS)]
            out += [f"  {k}: (optional)" for k in self._names(VariableKind.OPTIONAL)]
            required = self._names(VariableKind.REQUIRED)
            out.append("Template variables with no default value, which must be set with --set:")
            out += [f"  {k}" for k in required] or ["  (none)"]
        else:
            out.append("No /exports: default templates apply")
        return out

    def _os_note(self, name: str) -> str:
        if name != "ALL_PROCESS_CAPABILITIES":
            return ""
        withheld = f"; not {', '.join(self.withheld)}" if self.withheld else ""
        return (
            f" (the {len(self.grantable)} capabilities this host can grant, "
            f"its bounding set{withheld})"
        )


def vars_of(layer: LayerInfo) -> dict[str, Any]:
    """A LayerInfo as a dict."""
    return {
        "digest": layer.digest,
        "diff_id": layer.diff_id,
        "media_type": layer.media_type,
        "compressed_size": layer.compressed_size,
        "size": layer.size,
        "entries": layer.entries,
    }


def export_entries(
    image: StoredImage, kinds: tuple[EntryKind, ...] = (EntryKind.FILE, EntryKind.SYMLINK)
) -> dict[str, Entry]:
    """The entries of KINDS (files and symlinks) under /exports of the merged image, by path
    relative to /exports."""
    return {
        entry.path[len(EXPORTS) :]: entry
        for entry in merge(image.layers)
        if entry.path.startswith(EXPORTS) and entry.kind in kinds
    }


def exports_files(
    store: Store, image: StoredImage, entries: Mapping[str, Entry] | None = None
) -> dict[str, bytes]:
    """The files under /exports of the merged image: the top-level templates, manifest.json
    and the installedFilesTemplate host files read (TemplateError naming any that is over
    MAX_TEXT or not a regular file); every other file and symlink empty."""
    entries = export_entries(image) if entries is None else entries

    def read(rel: str) -> bytes:
        entry = entries[rel]
        if entry.kind is not EntryKind.FILE:
            raise TemplateError(
                f"/exports/{rel} is a symlink, not a template file",
                hint="an image must ship its templates as regular files",
            )
        check_text_size(rel, entry.size)
        with open(store.object_path(entry.obj), "rb") as f:
            return f.read(MAX_TEXT + 1)

    out = {
        rel: read(rel) if rel in TOP_FILES else b"" for rel in entries if not rel.startswith(HOSTFS)
    }
    manifest = parse_manifest_json(out[MANIFEST]) if MANIFEST in out else None
    for rel in entries:
        if rel.startswith(HOSTFS):
            wanted = manifest is not None and is_host_template(rel, manifest)
            out[rel] = read(rel) if wanted else b""
    return out


def _variables(files: dict[str, bytes]) -> tuple[TemplateVariable, ...]:
    return tuple(template_variables(parse_exports(files)).values())


def inspect_image(store: Store, text: str) -> ImageInfo:
    """Gather what ``images inspect`` shows, under the shared lock."""
    with store.locked(LockMode.SHARED):
        image = find_image(store, text)
        names = tuple(sorted(k for k, d in store.refs().items() if d == image.manifest_digest))
        files = exports_files(store, image)
    layers = tuple(
        LayerInfo(
            desc.digest, tree.diff_id, desc.media_type, desc.size, tree.size, len(tree.entries)
        )
        for desc, (_, tree) in zip(image.manifest.layers, image.layers, strict=True)
    )
    variables = _variables(files) if files else ()
    last, bounding = read_cap_last_cap(), read_cap_bounding()
    grantable = capability_names(last, bounding)
    withheld = tuple(c for c in capability_names(last) if c not in grantable)
    return ImageInfo(image, names, layers, tuple(sorted(files)), variables, grantable, withheld)
