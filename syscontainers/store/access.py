"""Who can reach the store: the private directories that keep other local users out.

Objects keep the image's modes, setuid-root and world-writable files included, and
every checkout under the store root hardlinks them. A local user who could reach
``store/objects/`` could run a setuid-root file as root, or write a world-writable
object and so change every later checkout and every container that shares it. The
objects cannot be made private themselves: a checkout shares their inode, so their
mode is the container's view. The directories above them are private instead::

    ROOT/                 left as it is (checked: no other user may write to it)
      store/              0700, like /var/lib/containers/storage and OSTree's repo
        objects/          0700 too, so that a descriptor someone opened on store/ while
        quarantine/       0700   it was still 0755 does not lead to the objects
      containers/         0700: deployments, whose rootfs/ are hardlink checkouts
      mounts/             0700: the checkouts behind read-only mounts

Root passes through them regardless: runc and systemd run as root, and a container
never walks them, because its root is its rootfs. A read-only mount's view is
reached through its mount point, not through ``mounts/``. Every writer tightens
them when it takes the store lock (older versions made them 0755); ``images verify``
reports what it found wrong and what it fixed.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from syscontainers.record import record

PRIVATE_MODE = 0o700
_OTHERS = 0o077  # the group and other permission bits


@record
class AccessProblem:
    """A directory that lets other local users in, or lets them change it."""

    path: Path
    detail: str
    fixable: bool  # the next writer tightens it; else only the administrator can


def private_dirs(store_path: Path) -> tuple[Path, ...]:
    """The directories kept at 0700 for the store at STORE_PATH (``ROOT/store``)."""
    root = store_path.parent
    return (
        store_path,
        store_path / "objects",
        store_path / "quarantine",
        root / "containers",
        root / "mounts",
    )


def tighten(store_path: Path) -> None:
    """Take group and other permissions off every private directory that exists."""
    for path in private_dirs(store_path):
        with contextlib.suppress(FileNotFoundError):
            mode = stat.S_IMODE(os.stat(path).st_mode)
            if mode & _OTHERS:
                os.chmod(path, mode & ~_OTHERS)


def check(store_path: Path) -> list[AccessProblem]:
    """What lets other local users reach or replace the store at STORE_PATH."""
    owner = os.geteuid()
    problems = []
    root = store_path.parent
    with contextlib.suppress(FileNotFoundError):
        st = os.stat(root)
        if st.st_mode & 0o022:
            problems.append(
                AccessProblem(
                    root,
                    f"mode {stat.S_IMODE(st.st_mode):04o} lets other users replace the "
                    "store and deployments in it; make it writable only by its owner",
                    False,
                )
            )
        problems.extend(_owner_problem(root, st, owner))
    for path in private_dirs(store_path):
        try:
            st = os.stat(path)
        except FileNotFoundError:
            continue
        if st.st_mode & _OTHERS:
            problems.append(
                AccessProblem(
                    path,
                    f"mode {stat.S_IMODE(st.st_mode):04o} lets every local user reach the "
                    f"images' files (setuid and world-writable ones too); it must be "
                    f"{PRIVATE_MODE:04o}",
                    True,
                )
            )
        problems.extend(_owner_problem(path, st, owner))
    return problems


def _owner_problem(path: Path, st: os.stat_result, owner: int) -> list[AccessProblem]:
    if st.st_uid == owner:
        return []
    return [
        AccessProblem(
            path,
            f"owned by uid {st.st_uid}, not {owner}: that user can open it to everyone; "
            f"chown it to uid {owner}",
            False,
        )
    ]
