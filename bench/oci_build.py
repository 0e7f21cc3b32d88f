"""Write OCI image layouts from layer tarballs, for the benchmarks (no external tools)."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import tarfile
from pathlib import Path

CHUNK = 1 << 20


def _hash_file(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return "sha256:" + h.hexdigest(), size


def _put_blob(layout: Path, data: bytes) -> tuple[str, int]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest[7:]).write_bytes(data)
    return digest, len(data)


def write_layout(layout: Path, layer_tar: Path, tag: str = "latest", compress: bool = True) -> None:
    """Make LAYOUT an OCI layout holding one image whose single layer is LAYER_TAR."""
    if layout.exists():
        shutil.rmtree(layout)
    (layout / "blobs" / "sha256").mkdir(parents=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    diff_id, _ = _hash_file(layer_tar)
    blob_tmp = layout / "layer.tmp"
    if compress:
        with open(layer_tar, "rb") as src, gzip.open(blob_tmp, "wb", compresslevel=6) as dst:
            shutil.copyfileobj(src, dst, CHUNK)
        media = "application/vnd.oci.image.layer.v1.tar+gzip"
    else:
        shutil.copyfile(layer_tar, blob_tmp)
        media = "application/vnd.oci.image.layer.v1.tar"
    digest, size = _hash_file(blob_tmp)
    os.rename(blob_tmp, layout / "blobs" / "sha256" / digest[7:])
    config = {
        "created": "2026-01-01T00:00:00Z",
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }
    cdigest, csize = _put_blob(layout, json.dumps(config).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": cdigest,
            "size": csize,
        },
        "layers": [{"mediaType": media, "digest": digest, "size": size}],
    }
    mdigest, msize = _put_blob(layout, json.dumps(manifest).encode())
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": mdigest,
                "size": msize,
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    (layout / "index.json").write_text(json.dumps(index))


def rebuild_tar(src: Path, dst: Path, mtime_shift: int = 1) -> None:
    """Copy a tarball entry by entry with every mtime shifted: same files, a new layer digest."""
    with tarfile.open(src, "r|") as tin, tarfile.open(dst, "w", format=tarfile.PAX_FORMAT) as tout:
        for member in tin:
            member.mtime = int(member.mtime) + mtime_shift
            data = tin.extractfile(member) if member.isreg() else None
            tout.addfile(member, data)


def big_tar(dst: Path, total: int, files: int = 64) -> None:
    """A tarball of FILES files of pseudo-random bytes adding up to TOTAL bytes."""
    per = total // files
    seed = hashlib.sha256(b"bench").digest()
    with tarfile.open(dst, "w") as tout:
        for i in range(files):
            info = tarfile.TarInfo(f"data/file{i:04d}.bin")
            info.size = per
            tout.addfile(info, _PseudoRandom(per, seed + i.to_bytes(4, "big")))


class _PseudoRandom:
    """A file-like of N deterministic, incompressible bytes (no big buffers)."""

    def __init__(self, n: int, seed: bytes) -> None:
        self.left = n
        self.block = hashlib.sha512(seed).digest() * (CHUNK // 64)
        self.counter = 0

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        size = self.left if size < 0 else min(size, self.left)
        out = bytearray()
        while len(out) < size:
            self.counter += 1
            head = hashlib.sha256(self.counter.to_bytes(8, "big")).digest()
            out += head + self.block[: CHUNK - 32]
        self.left -= size
        return bytes(out[:size])


def _ustar(name: str, flag: bytes, mode: int) -> bytes:
    """One ustar header block for an entry with no content."""
    block = bytearray(512)
    block[0 : len(name)] = name.encode()
    block[100:108] = b"%07o\0" % mode
    block[108:124] = b"0000000\x000000000\0"
    block[124:148] = b"00000000000\x0000000000000\0"
    block[148:156] = b" " * 8
    block[156:157] = flag
    block[257:265] = b"ustar\x0000"
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def many_files_tar(dst: Path, files: int, per_dir: int = 1000) -> None:
    """A tarball of FILES empty files, PER_DIR to a directory (written block by block:
    tarfile takes minutes for a million entries)."""
    tmp = dst.with_name(dst.name + ".tmp")
    with open(tmp, "wb") as out:
        for i in range(files):
            if i % per_dir == 0:
                out.write(_ustar(f"d{i // per_dir:05d}/", b"5", 0o755))
            out.write(_ustar(f"d{i // per_dir:05d}/f{i:07d}", b"0", 0o644))
        out.write(bytes(1024))
    os.rename(tmp, dst)
