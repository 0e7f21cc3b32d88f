"""Test-image builders shared by the test suite: tiny busybox images in every local format.

Two families, import what you need (``from tests.imagebuild import ...``):

Pure Python, no tools (for unit tests):
    layer_tar(files, symlinks=, modes=, delete=, opaque=) -> bytes   a reproducible layer tar
    write_oci_layout(dir, [layer, ...], tag, compression=, config=)  an OCI layout, or one more tag
    write_blob(dir, data, media_type) -> descriptor JSON             one blob in a layout
    tar_layout(dir, archive, gzip=) -> archive                       an oci-archive of a layout
    write_docker_archive(file, SavedImage(...), ...) -> file         a docker save archive

With real tools (gate the test with ``@requires("umoci", "skopeo")``):
    make_busybox_rootfs(dir, extra_files) -> dir                     busybox-static + applets
    make_busybox_layout(dir, tag, extra_files, cmd) -> dir           umoci init/new/add-layer/config
    add_layer(dir, tag, tar_bytes)                                   umoci raw add-layer
    umoci_unpack(dir, tag, bundle) -> bundle/rootfs                  the reference checkout
    to_zstd_layout / to_oci_archive / to_docker_archive              skopeo copy conversions

A layer that deletes a file: ``add_layer(d, t, layer_tar(delete=["etc/motd"]))``; one that makes
a directory opaque: ``add_layer(d, t, layer_tar({"data/new": b"x"}, opaque=["data"]))``.
Paths in these helpers are relative, slash-separated and without a leading "/".
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import zstandard

from syscontainers import process
from syscontainers.oci import MT_OCI_CONFIG, MT_OCI_MANIFEST, Compression, Platform

BUSYBOX = Path("/bin/busybox")
APPLETS = ("sh", "cat", "echo", "env", "false", "ls", "mkdir", "rm", "sleep", "test", "true")
MTIME = 1_700_000_000  # fixed, so that the same input gives the same layer bytes
REF_NAME = "org.opencontainers.image.ref.name"
LAYER_MEDIA_TYPES = {
    Compression.NONE: "application/vnd.oci.image.layer.v1.tar",
    Compression.GZIP: "application/vnd.oci.image.layer.v1.tar+gzip",
    Compression.ZSTD: "application/vnd.oci.image.layer.v1.tar+zstd",
}


def requires(*tools: str) -> pytest.MarkDecorator:
    """A skipif mark for a test that needs these executables on PATH."""
    missing = [t for t in tools if shutil.which(t) is None]
    return pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)}")


def sha256(data: bytes) -> str:
    """The ``sha256:HEX`` digest of DATA."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --- layers -------------------------------------------------------------------------------------


def _info(name: str, kind: bytes, mode: int, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.mtime = kind, mode, size, MTIME
    return info


def layer_tar(
    files: Mapping[str, bytes] | None = None,
    *,
    symlinks: Mapping[str, str] | None = None,
    modes: Mapping[str, int] | None = None,
    delete: Sequence[str] = (),
    opaque: Sequence[str] = (),
    dirs: Sequence[str] = (),
) -> bytes:
    """An uncompressed layer: FILES (path -> content, mode 0644 unless in MODES), SYMLINKS
    (path -> target), a ``.wh.`` whiteout for each path in DELETE, an opaque marker in each
    directory in OPAQUE, and the (empty) directories DIRS. Parent directories (0755 unless in
    MODES) are added; entries are sorted; owner root."""
    entries: dict[str, tarfile.TarInfo] = {}
    data: dict[str, bytes] = {}
    modes = modes or {}
    for path in dirs:
        entries[path] = _info(path, tarfile.DIRTYPE, modes.get(path, 0o755))
    for path, content in (files or {}).items():
        entries[path] = _info(path, tarfile.REGTYPE, modes.get(path, 0o644), len(content))
        data[path] = content
    for path, target in (symlinks or {}).items():
        entries[path] = _info(path, tarfile.SYMTYPE, 0o777)
        entries[path].linkname = target
    for path in delete:
        parent, _, name = path.rpartition("/")
        marker = f"{parent}/.wh.{name}" if parent else f".wh.{name}"
        entries[marker] = _info(marker, tarfile.REGTYPE, 0o644)
    for path in opaque:
        marker = f"{path}/.wh..wh..opq"
        entries[marker] = _info(marker, tarfile.REGTYPE, 0o644)
    for path in list(entries):
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            parent = "/".join(parts[:i])
            entries.setdefault(parent, _info(parent, tarfile.DIRTYPE, modes.get(parent, 0o755)))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(entries):
            body = data.get(path)
            tar.addfile(entries[path], io.BytesIO(body) if body is not None else None)
    return buf.getvalue()


def compress(data: bytes, compression: Compression) -> bytes:
    """DATA compressed as COMPRESSION (reproducibly)."""
    if compression is Compression.GZIP:
        return gzip.compress(data, mtime=0)
    if compression is Compression.ZSTD:
        return bytes(zstandard.ZstdCompressor().compress(data))
    return data


# --- pure-Python OCI layouts and archives -------------------------------------------------------


def write_blob(layout: Path, data: bytes, media_type: str) -> dict[str, Any]:
    """Store DATA as a blob of LAYOUT and return its descriptor as JSON."""
    digest = sha256(data)
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    (blobs / digest.split(":", 1)[1]).write_bytes(data)
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


def image_config(diff_ids: Sequence[str], extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A minimal image config for the host platform, running /bin/sh; EXTRA is merged on top."""
    host = Platform.host()
    config: dict[str, Any] = {
        "architecture": host.architecture,
        "os": host.os,
        "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
    }
    config.update(extra or {})
    return config


def write_oci_layout(
    layout: Path,
    layers: Sequence[bytes],
    tag: str | None = "latest",
    *,
    compression: Compression = Compression.GZIP,
    config: Mapping[str, Any] | None = None,
) -> Path:
    """Write an image of the uncompressed LAYERS into LAYOUT (created, or added to) under TAG
    (None: untagged). CONFIG keys are merged into the generated image config. An entry already
    holding TAG is replaced. Returns LAYOUT; the new entry is the last of index.json."""
    layout.mkdir(parents=True, exist_ok=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    layer_descs = [
        write_blob(layout, compress(layer, compression), LAYER_MEDIA_TYPES[compression])
        for layer in layers
    ]
    cfg = image_config([sha256(layer) for layer in layers], config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MT_OCI_MANIFEST,
        "config": write_blob(layout, json.dumps(cfg).encode(), MT_OCI_CONFIG),
        "layers": layer_descs,
    }
    entry = write_blob(layout, json.dumps(manifest).encode(), MT_OCI_MANIFEST)
    index_path = layout / "index.json"
    index: dict[str, Any] = {"schemaVersion": 2}
    if index_path.exists():
        index = json.loads(index_path.read_text())
    entries = index.setdefault("manifests", [])
    if tag is not None:
        entry["annotations"] = {REF_NAME: tag}
        entries[:] = [e for e in entries if e.get("annotations", {}).get(REF_NAME) != tag]
    entries.append(entry)
    index_path.write_text(json.dumps(index))
    return layout


def tar_layout(layout: Path, archive: Path, *, gzip: bool = False) -> Path:
    """Pack the layout directory LAYOUT into ARCHIVE (an oci-archive), entries at the top."""
    with tarfile.open(archive, "w:gz" if gzip else "w") as tar:
        for child in sorted(layout.iterdir()):
            tar.add(child, arcname=child.name)
    return archive


@dataclass(frozen=True)
class SavedImage:
    """One image of a docker save archive: uncompressed LAYERS, stored as COMPRESSION."""

    layers: Sequence[bytes]
    repo_tags: Sequence[str] = ("localhost/test:latest",)
    compression: Compression = Compression.NONE
    config: Mapping[str, Any] = field(default_factory=dict)


def write_docker_archive(archive: Path, *images: SavedImage) -> Path:
    """Write IMAGES as a docker save archive (legacy layout: HEX.json and HEX/layer.tar)."""
    members: dict[str, bytes] = {}
    manifest = []
    for image in images:
        config = json.dumps(image_config([sha256(x) for x in image.layers], image.config)).encode()
        config_name = sha256(config).split(":", 1)[1] + ".json"
        members[config_name] = config
        layer_names = []
        for layer in image.layers:
            stored = compress(layer, image.compression)
            name = sha256(stored).split(":", 1)[1] + "/layer.tar"
            members[name] = stored
            layer_names.append(name)
        manifest.append(
            {"Config": config_name, "RepoTags": list(image.repo_tags), "Layers": layer_names}
        )
    members["manifest.json"] = json.dumps(manifest).encode()
    with tarfile.open(archive, "w") as tar:
        for name, content in members.items():
            tar.addfile(_info(name, tarfile.REGTYPE, 0o644, len(content)), io.BytesIO(content))
    return archive


# --- real tools: umoci and skopeo ---------------------------------------------------------------


def make_busybox_rootfs(dest: Path, extra_files: Mapping[str, bytes] | None = None) -> Path:
    """A minimal root filesystem in DEST: /bin/busybox, applet symlinks, /etc/passwd, /tmp."""
    (dest / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, dest / "bin" / "busybox")
    for applet in APPLETS:
        (dest / "bin" / applet).symlink_to("busybox")
    (dest / "etc").mkdir(exist_ok=True)
    (dest / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (dest / "etc" / "group").write_text("root:x:0:\n")
    (dest / "tmp").mkdir(mode=0o1777, exist_ok=True)
    (dest / "tmp").chmod(0o1777)
    for path, content in (extra_files or {}).items():
        target = dest / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    return dest


def tar_tree(root: Path) -> bytes:
    """A reproducible uncompressed tar of the directory ROOT (owner root, fixed mtime)."""

    def reset(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = MTIME
        return info

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for child in sorted(root.iterdir()):
            tar.add(child, arcname=child.name, filter=reset)
    return buf.getvalue()


def add_layer(layout: Path, tag: str, tar: bytes) -> None:
    """Append the uncompressed layer TAR to LAYOUT:TAG with ``umoci raw add-layer``."""
    with tempfile.NamedTemporaryFile(suffix=".tar") as tmp:
        tmp.write(tar)
        tmp.flush()
        process.run(["umoci", "raw", "add-layer", "--image", f"{layout}:{tag}", tmp.name])
    process.run(["umoci", "gc", "--layout", str(layout)])


def make_busybox_layout(
    layout: Path,
    tag: str = "latest",
    extra_files: Mapping[str, bytes] | None = None,
    cmd: Sequence[str] = ("/bin/sh",),
) -> Path:
    """A one-layer busybox image tagged TAG in the OCI layout LAYOUT (made by umoci if absent)."""
    if not (layout / "oci-layout").exists():
        process.run(["umoci", "init", "--layout", str(layout)])
    process.run(["umoci", "new", "--image", f"{layout}:{tag}"])
    with tempfile.TemporaryDirectory() as tmp:
        add_layer(layout, tag, tar_tree(make_busybox_rootfs(Path(tmp), extra_files)))
    argv = ["umoci", "config", "--image", f"{layout}:{tag}"]
    for arg in cmd:
        argv += ["--config.cmd", arg]
    process.run(argv)
    process.run(["umoci", "gc", "--layout", str(layout)])
    return layout


def umoci_unpack(layout: Path, tag: str, bundle: Path) -> Path:
    """Unpack LAYOUT:TAG into the new directory BUNDLE with umoci; returns its rootfs."""
    process.run(["umoci", "unpack", "--image", f"{layout}:{tag}", str(bundle)])
    return bundle / "rootfs"


def skopeo_copy(src: str, dest: str, *options: str) -> None:
    """``skopeo copy [OPTIONS] SRC DEST`` (no signature policy needed)."""
    process.run(["skopeo", "--insecure-policy", "copy", "--quiet", *options, src, dest])


def to_zstd_layout(src: Path, dest: Path, tag: str = "latest") -> Path:
    """Copy SRC:TAG to the layout DEST with its layers recompressed as zstd."""
    skopeo_copy(f"oci:{src}:{tag}", f"oci:{dest}:{tag}", "--dest-compress-format", "zstd")
    return dest


def to_oci_archive(src: Path, archive: Path, tag: str = "latest") -> Path:
    """Copy SRC:TAG into the oci-archive ARCHIVE."""
    skopeo_copy(f"oci:{src}:{tag}", f"oci-archive:{archive}:{tag}")
    return archive


def to_docker_archive(
    src: Path, archive: Path, tag: str = "latest", name: str = "localhost/busybox:latest"
) -> Path:
    """Copy SRC:TAG into the docker save archive ARCHIVE, tagged NAME (uncompressed layers)."""
    skopeo_copy(f"oci:{src}:{tag}", f"docker-archive:{archive}:{name}")
    return archive
