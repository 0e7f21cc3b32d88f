"""Where things live on the host, derived from the store root and the system directories."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_ROOT = Path("/var/lib/syscontainers")


@dataclass(frozen=True, slots=True)
class Paths:
    """The host paths syscontainers reads and writes."""

    root: Path = DEFAULT_ROOT
    unit_dir: Path = Path("/etc/systemd/system")
    tmpfiles_dir: Path = Path("/etc/tmpfiles.d")
    host_root: Path = Path("/")  # where containers' host files (hostfs/) are installed

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
