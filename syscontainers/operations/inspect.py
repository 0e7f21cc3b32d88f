"""``images inspect``: config, labels, layers and the template variables an image needs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from syscontainers.checkout import merge
from syscontainers.operations.images import StoredImage, find_image
from syscontainers.render.exports import parse_exports
from syscontainers.render.templates import TemplateVariable, VariableKind, template_variables
from syscontainers.store import Store
from syscontainers.tree import EntryKind

EXPORTS = "exports/"
TEMPLATE_READ_LIMIT = 1 << 20


@dataclass(frozen=True, slots=True)
class LayerInfo:
    """One layer as stored."""

    digest: str
    diff_id: str
    media_type: str
    compressed_size: int
    size: int
    entries: int


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """Everything ``images inspect`` shows."""

    image: StoredImage
    names: tuple[str, ...]
    layers: tuple[LayerInfo, ...]
    exports: tuple[str, ...]
    variables: tuple[TemplateVariable, ...]

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
                f"  {v.name}: {v.default}" for v in self.variables
                if v.kind is VariableKind.DEFAULT
            ]
            out += [f"  {k}: {{SET_BY_OS}}" for k in self._names(VariableKind.OS)]
            out += [f"  {k}: (optional)" for k in self._names(VariableKind.OPTIONAL)]
            required = self._names(VariableKind.REQUIRED)
            out.append("Template variables with no default value, which must be set with --set:")
            out += [f"  {k}" for k in required] or ["  (none)"]
        else:
            out.append("No /exports: default templates apply")
        return out


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


def exports_files(store: Store, image: StoredImage) -> dict[str, bytes]:
    """The files under /exports of the merged image (templates read, others empty)."""
    out: dict[str, bytes] = {}
    for entry in merge(image.layers):
        if not entry.path.startswith(EXPORTS) or entry.kind is not EntryKind.FILE:
            continue
        rel = entry.path[len(EXPORTS) :]
        if rel.startswith("hostfs/") or entry.size > TEMPLATE_READ_LIMIT:
            out[rel] = b""
            continue
        with open(store.object_path(entry.obj), "rb") as f:
            out[rel] = f.read()
    return out


def _variables(files: dict[str, bytes]) -> tuple[TemplateVariable, ...]:
    return tuple(template_variables(parse_exports(files)).values())


def inspect_image(store: Store, text: str) -> ImageInfo:
    """Gather what ``images inspect`` shows (call under a lock)."""
    image = find_image(store, text)
    names = tuple(sorted(k for k, d in store.refs().items() if d == image.manifest_digest))
    layers = tuple(
        LayerInfo(desc.digest, tree.diff_id, desc.media_type, desc.size, tree.size,
                  len(tree.entries))
        for desc, (_, tree) in zip(image.manifest.layers, image.layers, strict=True)
    )
    files = exports_files(store, image)
    variables = _variables(files) if files else ()
    return ImageInfo(image, names, layers, tuple(sorted(files)), variables)
