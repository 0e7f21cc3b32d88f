"""Test doubles for the library's seams; FakeUnitManager stands in for systemd."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path

from syscontainers.systemd import UnitManager
from syscontainers.systemd_states import (
    ActiveState,
    JobResult,
    LoadState,
    Observation,
    UnitFileChange,
    UnitState,
    dbus_error,
    judge,
)

_NO_SUCH_UNIT = "org.freedesktop.systemd1.NoSuchUnit"
_WANTS = "/etc/systemd/system/multi-user.target.wants"


class FakeUnitManager:
    """An in-memory systemd: units load from UNIT_DIR on daemon_reload, or are added by hand.

    ``failing`` units fail to start; ``unhealthy`` units start, then fail while
    observed; with ``broken_marker`` set, a unit whose file in unit_dir contains
    it fails to start (a broken image's unit). ``calls`` records every call,
    ``round_trips`` counts them, and ``boot()`` starts the enabled units as a
    reboot would.
    """

    def __init__(self, unit_dir: Path | None = None) -> None:
        self.unit_dir = unit_dir
        self.loaded: set[str] = set()
        self.enabled: set[str] = set()
        self.active: dict[str, ActiveState] = {}
        self.failing: set[str] = set()
        self.unhealthy: set[str] = set()
        self.broken_marker: str | None = None
        self.calls: list[tuple[str, ...]] = []
        self.round_trips = 0

    def _record(self, *call: str) -> None:
        self.calls.append(call)
        self.round_trips += 1

    def add_unit(self, name: str, state: ActiveState = ActiveState.INACTIVE) -> None:
        """Make NAME a loaded unit in STATE without a unit directory."""
        self.loaded.add(name)
        self.active[name] = state

    def _require(self, member: str, unit: str) -> None:
        if unit not in self.loaded:
            raise dbus_error(member, unit, _NO_SUCH_UNIT, f"Unit {unit} not found.")

    def daemon_reload(self) -> None:
        """Load every unit file in unit_dir, forget the ones that are gone."""
        self._record("daemon_reload")
        if self.unit_dir is not None:
            self.loaded = {p.name for p in self.unit_dir.iterdir() if p.is_file()}

    def enable(self, unit_files: Sequence[str]) -> tuple[UnitFileChange, ...]:
        """Mark unit files enabled."""
        self._record("enable", *unit_files)
        for unit in unit_files:
            self._require("EnableUnitFiles", Path(unit).name)
        new = [Path(u).name for u in unit_files if Path(u).name not in self.enabled]
        self.enabled.update(new)
        return tuple(
            UnitFileChange("symlink", f"{_WANTS}/{u}", f"/etc/systemd/system/{u}") for u in new
        )

    def disable(self, unit_files: Sequence[str]) -> tuple[UnitFileChange, ...]:
        """Mark unit files disabled; unknown ones are skipped."""
        self._record("disable", *unit_files)
        gone = [Path(u).name for u in unit_files if Path(u).name in self.enabled]
        self.enabled.difference_update(gone)
        return tuple(UnitFileChange("unlink", f"{_WANTS}/{u}", "") for u in gone)

    def _broken(self, unit: str) -> bool:
        if self.broken_marker is None or self.unit_dir is None:
            return False
        path = self.unit_dir / unit
        return path.is_file() and self.broken_marker in path.read_text()

    def _start(self, member: str, unit: str) -> JobResult:
        self._require(member, unit)
        if unit in self.failing or self._broken(unit):
            self.active[unit] = ActiveState.FAILED
            return JobResult.FAILED
        self.active[unit] = ActiveState.ACTIVE
        return JobResult.DONE

    def start(self, unit: str) -> JobResult:
        """Start UNIT; FAILED for units in ``failing``."""
        self._record("start", unit)
        return self._start("StartUnit", unit)

    def stop(self, unit: str) -> JobResult:
        """Stop UNIT."""
        self._record("stop", unit)
        if unit in self.loaded:
            self.active[unit] = ActiveState.INACTIVE
        return JobResult.DONE

    def restart(self, unit: str) -> JobResult:
        """Restart UNIT."""
        self._record("restart", unit)
        return self._start("RestartUnit", unit)

    def reset_failed(self, unit: str) -> None:
        """Turn a failed UNIT inactive."""
        self._record("reset_failed", unit)
        if self.active.get(unit) is ActiveState.FAILED:
            self.active[unit] = ActiveState.INACTIVE

    def _state(self, name: str) -> UnitState:
        if name not in self.loaded:
            return UnitState(LoadState.NOT_FOUND, ActiveState.INACTIVE, "dead")
        state = self.active.get(name, ActiveState.INACTIVE)
        sub = {ActiveState.ACTIVE: "running", ActiveState.FAILED: "failed"}.get(state, "dead")
        return UnitState(LoadState.LOADED, state, sub)

    def states(self, names: Sequence[str]) -> dict[str, UnitState]:
        """Every name's state, as one round trip."""
        self._record("states", *names)
        return {name: self._state(name) for name in names}

    def wait_state(self, unit: str, want: Collection[ActiveState], timeout: float) -> UnitState:
        """The current state: nothing changes on its own here."""
        self._record("wait_state", unit)
        return self._state(unit)

    def observe(self, unit: str, window: float) -> Observation:
        """Healthy if UNIT is active, unless it is in ``unhealthy`` (then it fails now)."""
        self._record("observe", unit)
        history = [self.active.get(unit, ActiveState.INACTIVE)]
        if unit in self.unhealthy and history[0] is ActiveState.ACTIVE:
            self.active[unit] = ActiveState.FAILED
            history.append(ActiveState.FAILED)
        return Observation(unit, judge(history, 0), self._state(unit), window)

    def boot(self) -> None:
        """Simulate a reboot: enabled units start, every other unit is inactive."""
        self.active = {}
        for unit in self.enabled & self.loaded:
            self._start("StartUnit", unit)


_CHECK: type[UnitManager] = FakeUnitManager  # mypy: the fake must satisfy the protocol
