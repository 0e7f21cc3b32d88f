"""Publishing a slot to the system directories: the unit and tmpfiles copies, and systemd-tmpfiles.

The active slot's ``NAME.service`` is copied to ``Paths.unit_dir`` and its
``tmpfiles-NAME.conf`` to ``Paths.tmpfiles_dir/NAME.conf`` (atomically, and only
when the bytes differ). An empty tmpfiles file or a missing unit (a
noContainerService image) removes the published copy instead.

``systemd-tmpfiles`` runs behind the small ``Tmpfiles`` protocol, so tests can
record the calls instead of touching the real /etc and /var.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Protocol

from syscontainers import process
from syscontainers.deploy.layout import ContainerDir, slot_files
from syscontainers.fsutil import atomic_write, read_bytes_if_exists
from syscontainers.paths import Paths
from syscontainers.record import record

TMPFILES_HINT = "check the tmpfiles.d lines the image renders: systemd-tmpfiles --create {conf}"


class Tmpfiles(Protocol):
    """Applies or removes the entries of one tmpfiles.d file."""

    def create(self, conf: Path) -> None:
        """Create what CONF describes."""

    def remove(self, conf: Path) -> None:
        """Remove what CONF marks for removal."""


class SystemdTmpfiles:
    """Tmpfiles through the systemd-tmpfiles command."""

    def create(self, conf: Path) -> None:
        """Run ``systemd-tmpfiles --create CONF``."""
        process.run(
            ["systemd-tmpfiles", "--create", str(conf)], hint=TMPFILES_HINT.format(conf=conf)
        )

    def remove(self, conf: Path) -> None:
        """Run ``systemd-tmpfiles --remove CONF``."""
        process.run(
            ["systemd-tmpfiles", "--remove", str(conf)], hint=TMPFILES_HINT.format(conf=conf)
        )


@record
class Published:
    """Where a container's unit and tmpfiles copies live in the system directories."""

    unit: Path
    tmpfiles: Path

    @classmethod
    def of(cls, cd: ContainerDir, paths: Paths) -> Published:
        """The published paths of container CD."""
        return cls(paths.unit_dir / cd.unit_name, paths.tmpfiles_dir / f"{cd.name}.conf")


def _wanted(cd: ContainerDir, slot_dir: Path) -> tuple[bytes | None, bytes | None]:
    files = slot_files(cd, slot_dir)
    unit = read_bytes_if_exists(files["unit"])
    tmpfiles = read_bytes_if_exists(files["tmpfiles"])
    return unit, (tmpfiles or None)


def _put(path: Path, data: bytes | None) -> bool:
    if read_bytes_if_exists(path) == data:
        return False
    if data is None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    else:
        atomic_write(path, data)
    return True


def publish(cd: ContainerDir, slot_dir: Path, paths: Paths) -> bool:
    """Make the published unit and tmpfiles match SLOT_DIR's copies; True if anything changed."""
    unit, tmpfiles = _wanted(cd, slot_dir)
    where = Published.of(cd, paths)
    changed_unit = _put(where.unit, unit)
    changed_tmpfiles = _put(where.tmpfiles, tmpfiles)
    return changed_unit or changed_tmpfiles


def matches(cd: ContainerDir, slot_dir: Path, paths: Paths) -> bool:
    """True if the published copies are exactly SLOT_DIR's."""
    unit, tmpfiles = _wanted(cd, slot_dir)
    where = Published.of(cd, paths)
    return (
        read_bytes_if_exists(where.unit) == unit
        and read_bytes_if_exists(where.tmpfiles) == tmpfiles
    )


def system_files(cd: ContainerDir, paths: Paths) -> tuple[Path, ...]:
    """Every NAME.service in systemd's unit search path and NAME.conf in tmpfiles.d's."""
    found = [d / cd.unit_name for d in paths.unit_search]
    found += [d / f"{cd.name}.conf" for d in paths.tmpfiles_search]
    return tuple(p for p in found if os.path.lexists(p))


def published_by(cd: ContainerDir, slot_dir: Path, paths: Paths) -> tuple[bool, bool]:
    """Whether the published unit and tmpfiles are byte for byte SLOT_DIR's (non-empty) ones."""
    unit, tmpfiles = _wanted(cd, slot_dir)
    where = Published.of(cd, paths)
    unit_now = read_bytes_if_exists(where.unit)
    tmpfiles_now = read_bytes_if_exists(where.tmpfiles)
    return (
        unit is not None and unit_now == unit,
        tmpfiles is not None and tmpfiles_now == tmpfiles,
    )
