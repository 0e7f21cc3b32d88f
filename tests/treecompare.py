"""Compare two unpacked root filesystems the way the umoci oracle tests need."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Everything that should match between two unpacked trees (the root dir aside)."""
    out: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            rel = os.path.relpath(path, root)
            what: object = None
            if stat.S_ISREG(st.st_mode):
                what = Path(path).read_bytes()
            elif stat.S_ISLNK(st.st_mode):
                what = os.readlink(path)
            if stat.S_ISCHR(st.st_mode):
                what = (os.major(st.st_rdev), os.minor(st.st_rdev))
            mtime = None if stat.S_ISREG(st.st_mode) else st.st_mtime  # objects keep their own
            out[rel] = (stat.filemode(st.st_mode), st.st_uid, st.st_gid, what, mtime)
    return out


def can_make_devices(tmp: Path) -> bool:
    """umoci unpack (not --rootless) and our privileged checkout need chown and mknod."""
    probe = tmp / "probe"
    try:
        os.mknod(probe, 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        os.chown(probe, 12, 34)
    except OSError:
        return False
    probe.unlink()
    return True
