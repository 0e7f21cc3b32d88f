"""systemd and systemd-tmpfiles for an offline root (``--sysroot DIR``): files only, nothing run.

``OfflineUnits`` is the ``UnitManager`` an operation drives when it works on a
root filesystem that is not booted. It never connects to D-Bus and never runs
anything: enabling and disabling make and remove the ``[Install]`` symlinks
(``syscontainers.unitlinks``), a reload is a no-op, every unit is stopped, and
starting one is refused, since nothing can run there. A unit is "loaded" when
its file is in the root's unit search path. ``OfflineTmpfiles`` applies
nothing: systemd-tmpfiles-setup.service applies the published tmpfiles.d files
when that root boots.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path

from syscontainers import unitlinks
from syscontainers.errors import SystemdError
from syscontainers.paths import Paths
from syscontainers.systemd_states import (
    ActiveState,
    JobResult,
    LoadState,
    Observation,
    UnitFileChange,
    UnitState,
)


class OfflineUnits:
    """A UnitManager that only writes [Install] symlinks under an offline root."""

    def __init__(self, paths: Paths) -> None:
        if paths.sysroot is None:
            raise ValueError("OfflineUnits needs paths with a sysroot")
        self.paths = paths

    def _refuse(self, verb: str, unit: str) -> SystemdError:
        return SystemdError(
            f"cannot {verb} {unit} in the offline root {self.paths.sysroot}: nothing runs there",
            hint="it starts when that root boots, if it is enabled; leave out --now",
        )

    def daemon_reload(self) -> None:
        """Nothing to reload: the root's systemd reads its units when it boots."""

    def enable(self, unit_files: Sequence[str]) -> tuple[UnitFileChange, ...]:
        """Make the [Install] symlinks, as systemctl --root enable does."""
        return unitlinks.enable(self.paths, unit_files)

    def disable(self, unit_files: Sequence[str]) -> tuple[UnitFileChange, ...]:
        """Remove the [Install] symlinks, as systemctl --root disable does."""
        return unitlinks.disable(self.paths, unit_files)

    def start(self, unit: str) -> JobResult:
        """Refused: nothing can run in an offline root."""
        raise self._refuse("start", unit)

    def stop(self, unit: str) -> JobResult:
        """Nothing runs, so every unit is already stopped."""
        return JobResult.DONE

    def restart(self, unit: str) -> JobResult:
        """Refused: nothing can run in an offline root."""
        raise self._refuse("restart", unit)

    def reset_failed(self, unit: str) -> None:
        """Nothing has failed in a root that is not running."""

    def _state(self, unit: str) -> UnitState:
        if unitlinks.find_unit(self.paths, unit) is None:
            return UnitState(LoadState.NOT_FOUND, ActiveState.INACTIVE, "dead")
        return UnitState(LoadState.LOADED, ActiveState.INACTIVE, "dead")

    def states(self, names: Sequence[str]) -> dict[str, UnitState]:
        """Every unit is inactive; "loaded" if its file is in the root's unit search path."""
        return {name: self._state(name) for name in names}

    def wait_state(self, unit: str, want: Collection[ActiveState], timeout: float) -> UnitState:
        """The state now: nothing changes in a root that is not running."""
        return self._state(unit)

    def observe(self, unit: str, window: float) -> Observation:
        """Refused: there is nothing to watch."""
        raise self._refuse("watch", unit)


class OfflineTmpfiles:
    """Tmpfiles for an offline root: its systemd applies tmpfiles.d at boot."""

    def create(self, conf: Path) -> None:
        """Nothing now: systemd-tmpfiles --create runs when the root boots."""

    def remove(self, conf: Path) -> None:
        """Nothing now: what the file made is made again only if the file is there."""
