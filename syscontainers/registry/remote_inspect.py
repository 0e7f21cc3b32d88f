"""Remote inspection: what an image in a registry is, without downloading its layers.

It fetches the top-level manifest (or index), the manifest for the chosen
platform and the image config (checked against its digest), and nothing else.
"""

from __future__ import annotations

from typing import Any

from syscontainers.oci import ImageConfig, Platform, parse_config
from syscontainers.record import record
from syscontainers.registry.source import RegistrySource


@record
class LayerInfo:
    """One layer as the manifest describes it."""

    digest: str
    size: int
    media_type: str


@record
class RemoteImage:
    """Everything remote inspection shows."""

    name: str  # the normalised reference
    digest: str  # of the top-level document (the index, for a multi-platform image)
    manifest_digest: str  # of the manifest for the chosen platform
    media_type: str  # of the top-level document
    platform: str  # os/arch[/variant] of the chosen image
    platforms: tuple[str, ...]  # every platform an index offers (just ours otherwise)
    config: ImageConfig
    layers: tuple[LayerInfo, ...]
    raw_manifest: bytes  # the top-level document, verbatim
    raw_config: bytes

    @property
    def size(self) -> int:
        """The compressed size of all layers."""
        return sum(layer.size for layer in self.layers)

    def to_json(self) -> dict[str, Any]:
        """A JSON view: skopeo inspect's fields, with the snake_case keys of every --json."""
        cfg = self.config
        return {
            "name": self.name,
            "digest": self.digest,
            "manifest_digest": self.manifest_digest,
            "media_type": self.media_type,
            "created": cfg.created or None,
            "architecture": cfg.architecture,
            "os": cfg.os,
            "variant": str(cfg.raw.get("variant") or ""),
            "labels": dict(cfg.labels),
            "env": list(cfg.env),
            "entrypoint": list(cfg.entrypoint),
            "cmd": list(cfg.cmd),
            "layers": [layer.digest for layer in self.layers],
            "layers_data": [
                {"digest": x.digest, "size": x.size, "media_type": x.media_type}
                for x in self.layers
            ],
            "size": self.size,
            "platforms": list(self.platforms),
        }


def _platform_of(config: ImageConfig) -> str:
    variant = str(config.raw.get("variant") or "")
    return str(Platform(config.os, config.architecture, variant))


def inspect_image(source: RegistrySource, platform: Platform) -> RemoteImage:
    """Inspect the image SOURCE names, for PLATFORM when it is an index."""
    top = source.fetch_top()
    resolved = source.resolve_from(top, platform)
    raw_config = source.read_blob(resolved.manifest.config)
    config = parse_config(raw_config, f"{source.description} config")
    index = source.index_of(top)
    if index is not None:
        platforms = tuple(str(d.platform) for d in index.manifests if d.platform is not None)
    else:
        platforms = (_platform_of(config),)
    return RemoteImage(
        name=str(source.reference),
        digest=top.digest,
        manifest_digest=resolved.manifest_digest,
        media_type=top.media_type,
        platform=_platform_of(config),
        platforms=platforms,
        config=config,
        layers=tuple(LayerInfo(d.digest, d.size, d.media_type) for d in resolved.manifest.layers),
        raw_manifest=top.data,
        raw_config=raw_config,
    )
