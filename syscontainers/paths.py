"""Where things live on the host, derived from the store root and the system directories.

With ``--sysroot DIR`` (``Paths.in_sysroot``) every one of them lies under DIR, an
offline root filesystem, and ``booted`` maps a path under DIR back to the path
that root sees once it is booted (what units and config.json must name).
"""

from __future__ import annotations

from pathlib import Path

from syscontainers.record import record
from syscontainers.settings_table import ROOT

DEFAULT_ROOT = ROOT.default
# systemd's unit search path (systemd.unit(5), for the system manager) besides unit_dir,
# and tmpfiles.d's (tmpfiles.d(5)) besides tmpfiles_dir: a container must not take a name
# that shadows a unit or tmpfiles file found there.
SYSTEM_UNIT_DIRS = tuple(
    Path(p)
    for p in (
        "/etc/systemd/system.control",
        "/run/systemd/system.control",
        "/run/systemd/transient",
        "/run/systemd/generator.early",
        "/etc/systemd/system",
        "/etc/systemd/system.attached",
        "/run/systemd/system",
        "/run/systemd/system.attached",
        "/run/systemd/generator",
        "/usr/local/lib/systemd/system",
        "/usr/lib/systemd/system",
        "/lib/systemd/system",
        "/run/systemd/generator.late",
    )
)
SYSTEM_TMPFILES_DIRS = tuple(
    Path(p)
    for p in (
        "/etc/tmpfiles.d",
        "/run/tmpfiles.d",
        "/usr/local/lib/tmpfiles.d",
        "/usr/lib/tmpfiles.d",
        "/lib/tmpfiles.d",
    )
)


@record
class Paths:
    """The host paths syscontainers reads and writes."""

    root: Path = DEFAULT_ROOT
    unit_dir: Path = Path("/etc/systemd/system")
    tmpfiles_dir: Path = Path("/etc/tmpfiles.d")
    host_root: Path = Path("/")  # where containers' host files (hostfs/) are installed
    system_unit_dirs: tuple[Path, ...] = SYSTEM_UNIT_DIRS  # searched for name conflicts
    system_tmpfiles_dirs: tuple[Path, ...] = SYSTEM_TMPFILES_DIRS
    sysroot: Path | None = None  # an offline root all of the above lie under (--sysroot)

    @classmethod
    def in_sysroot(cls, sysroot: Path, root: Path = DEFAULT_ROOT) -> Paths:
        """The paths of the offline root SYSROOT, whose store root is ROOT as it sees it."""
        base = cls()

        def under(path: Path) -> Path:
            return sysroot / path.relative_to("/")

        return cls(
            root=under(root if root.is_absolute() else Path("/") / root),
            unit_dir=under(base.unit_dir),
            tmpfiles_dir=under(base.tmpfiles_dir),
            host_root=sysroot,
            system_unit_dirs=tuple(map(under, SYSTEM_UNIT_DIRS)),
            system_tmpfiles_dirs=tuple(map(under, SYSTEM_TMPFILES_DIRS)),
            sysroot=sysroot,
        )

    @property
    def offline(self) -> bool:
        """True for an offline root: nothing runs, no systemd is driven."""
        return self.sysroot is not None

    def booted(self, path: Path) -> Path:
        """PATH as the booted root sees it (PATH itself without a sysroot)."""
        if self.sysroot is None:
            return path
        return Path("/") / path.relative_to(self.sysroot)

    def on_host(self, booted: str | Path) -> Path:
        """Where the booted root's absolute path BOOTED is on this host."""
        if self.sysroot is None:
            return Path(booted)
        return self.sysroot / str(booted).lstrip("/")

    @property
    def unit_search(self) -> tuple[Path, ...]:
        """Every directory systemd loads units from: unit_dir, then the system's."""
        return (self.unit_dir, *(d for d in self.system_unit_dirs if d != self.unit_dir))

    @property
    def tmpfiles_search(self) -> tuple[Path, ...]:
        """Every directory systemd-tmpfiles reads: tmpfiles_dir, then the system's."""
        return (
            self.tmpfiles_dir,
            *(d for d in self.system_tmpfiles_dirs if d != self.tmpfiles_dir),
        )

    @property
    def store(self) -> Path:
        """The content-addressed store."""
        return self.root / "store"

    @property
    def mounts(self) -> Path:
        """Checkouts that back read-only image mounts."""
        return self.root / "mounts"

    @property
    def deployments(self) -> Path:
        """Container deployments: NAME -> NAME.N symlinks and their directories."""
        return self.root / "containers"
