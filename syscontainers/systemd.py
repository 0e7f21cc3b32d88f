"""systemd over D-Bus: reload, enable, start and stop units, read their states, watch their health.

With syscontainers.dbus (the blocking connection it talks through), the only
module that imports dbus_next. Callers see plain synchronous functions behind
the ``UnitManager`` protocol. ``SystemdManager`` holds one system-bus
connection for the length of a ``with`` block (or for a single call when used
without one), so nothing stays resident.

Job completion is read from the Manager's ``JobRemoved`` signal, the way
``systemctl`` waits: "done" means the start job finished, which for a
``Type=notify`` service means READY=1 arrived. Health after an update is judged
by ``observe``: the unit must reach ``active`` and stay there, without a
restart, for the whole window.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from types import TracebackType
from typing import Any, Protocol, TypeVar

from syscontainers.dbus import BUS_NAME as BUS
from syscontainers.dbus import BUS_PATH, Connection, Message, MessageType
from syscontainers.errors import DBusTimeoutError, SystemdCallError, SystemdError
from syscontainers.systemd_states import (
    ActiveState,
    JobResult,
    LoadState,
    Observation,
    UnitFileChange,
    UnitState,
    Verdict,
    check_job,
    dbus_error,
    judge,
)

__all__ = [
    "ActiveState",
    "JobResult",
    "LoadState",
    "Observation",
    "SystemdManager",
    "UnitFileChange",
    "UnitManager",
    "UnitState",
    "Verdict",
    "check_job",
]

T = TypeVar("T")

SYSTEMD = "org.freedesktop.systemd1"
MANAGER_PATH = "/org/freedesktop/systemd1"
MANAGER = "org.freedesktop.systemd1.Manager"
UNIT = "org.freedesktop.systemd1.Unit"
SERVICE = "org.freedesktop.systemd1.Service"
PROPERTIES = "org.freedesktop.DBus.Properties"
NO_SUCH_UNIT = "org.freedesktop.systemd1.NoSuchUnit"
FILE_NOT_FOUND = "org.freedesktop.DBus.Error.FileNotFound"
_JOB_MATCH = f"type='signal',sender='{SYSTEMD}',path='{MANAGER_PATH}',interface='{MANAGER}'"


class UnitManager(Protocol):
    """What the operations need from systemd; SystemdManager and test fakes provide it."""

    def daemon_reload(self) -> None:
        """Make systemd re-read unit files."""

    def enable(self, unit_files: Sequence[str]) -> tuple[UnitFileChange, ...]:
        """Enable unit files (names or paths) persistently; return the links made."""

    def disable(self, unit_files: Sequence[str]) -> tuple[UnitFileChange, ...]:
        """Disable unit files; return the links removed."""

    def start(self, unit: str) -> JobResult:
        """Start UNIT and wait for its job to finish."""

    def stop(self, unit: str) -> JobResult:
        """Stop UNIT and wait for its job; a unit that is not loaded counts as stopped."""

    def restart(self, unit: str) -> JobResult:
        """Restart UNIT (starting it if stopped) and wait for its job."""

    def reset_failed(self, unit: str) -> None:
        """Forget UNIT's failed state; a unit that is not loaded is ignored."""

    def states(self, names: Sequence[str]) -> dict[str, UnitState]:
        """Live states of NAMES, in one round trip."""

    def wait_state(self, unit: str, want: Collection[ActiveState], timeout: float) -> UnitState:
        """Wait until UNIT's active state is in WANT, it fails, or TIMEOUT passes."""

    def observe(self, unit: str, window: float) -> Observation:
        """Watch UNIT for WINDOW seconds and judge whether it became and stayed active."""


class _Connection:
    """One system-bus connection, with systemd's signal bookkeeping."""

    def __init__(self, bus: Connection, timeout: float) -> None:
        self._bus = bus
        self._timeout = timeout
        self._subscribed = False
        self._finished: dict[str, str] = {}
        self._inflight = 0
        self._watchers: dict[str, Callable[[ActiveState], None]] = {}
        bus.on_signal = self._on_signal

    @classmethod
    def open(cls, address: str | None, timeout: float) -> _Connection:
        """Connect to the system bus (or ADDRESS) and say Hello."""
        return cls(Connection.open(address, timeout), timeout)

    def close(self) -> None:
        """Disconnect and release the socket."""
        self._bus.close()

    def _on_signal(self, msg: Message) -> None:
        if msg.interface == MANAGER and msg.member == "JobRemoved":
            _job_id, job, _unit, result = msg.body
            if self._inflight:
                self._finished[job] = result
        elif msg.interface == PROPERTIES and msg.member == "PropertiesChanged":
            interface, changed, _invalidated = msg.body
            watcher = self._watchers.get(msg.path or "")
            if interface == UNIT and watcher is not None and "ActiveState" in changed:
                watcher(ActiveState(changed["ActiveState"].value))

    def call(
        self,
        member: str,
        signature: str = "",
        body: Sequence[Any] = (),
        *,
        path: str = MANAGER_PATH,
        interface: str = MANAGER,
        destination: str = SYSTEMD,
        unit: str | None = None,
    ) -> list[Any]:
        """Call a method and return the reply body; D-Bus errors become SystemdError."""
        msg = Message(
            destination=destination,
            path=path,
            interface=interface,
            member=member,
            signature=signature,
            body=list(body),
        )
        try:
            reply = self._bus.call(msg, self._timeout)
        except DBusTimeoutError as e:
            raise SystemdError(
                f"systemd did not answer {member} within {self._timeout:g} s",
                hint="see: journalctl -b -u init.scope",
            ) from e
        if reply.message_type is MessageType.ERROR:
            text = str(reply.body[0]) if reply.body else ""
            name = reply.error_name or ""
            error = dbus_error(member, unit, name, text)
            raise SystemdCallError(error.message, error.hint, name)
        return list(reply.body)

    def pause(self, seconds: float) -> None:
        """Wait SECONDS, handling the signals that arrive meanwhile."""
        self._bus.pump(lambda: False, time.monotonic() + seconds)

    def watch(self, path: str, watcher: Callable[[ActiveState], None] | None) -> None:
        """Pass the ActiveState changes of the unit at PATH to WATCHER (None: stop)."""
        if watcher is None:
            self._watchers.pop(path, None)
        else:
            self._watchers[path] = watcher

    def add_match(self, rule: str) -> None:
        """Ask the bus to route signals matching RULE to us."""
        self.call("AddMatch", "s", [rule], path=BUS_PATH, interface=BUS, destination=BUS)

    def remove_match(self, rule: str) -> None:
        """Undo add_match."""
        self.call("RemoveMatch", "s", [rule], path=BUS_PATH, interface=BUS, destination=BUS)

    def subscribe(self) -> None:
        """Have systemd send us job and property signals, once per connection."""
        if not self._subscribed:
            self.add_match(_JOB_MATCH)
            self.call("Subscribe")
            self._subscribed = True

    def job(self, member: str, unit: str, timeout: float) -> JobResult:
        """Queue a job with MEMBER (StartUnit, ...) and wait for its JobRemoved result."""
        self.subscribe()
        self._inflight += 1
        try:
            (job,) = self.call(member, "ss", [unit, "replace"], unit=unit)
            # JobRemoved may come before the reply: then it is in _finished already.
            if not self._bus.pump(lambda: job in self._finished, time.monotonic() + timeout):
                raise SystemdError(
                    f"the {member} job of {unit} did not finish within {timeout:g} s",
                    hint=f"see: systemctl status {unit}",
                )
            result = self._finished.pop(job)
        finally:
            self._inflight -= 1
            if not self._inflight:
                self._finished.clear()
        return JobResult(result)

    def states(self, names: Sequence[str]) -> dict[str, UnitState]:
        """ListUnitsByNames: every name's state in one call."""
        if not names:
            return {}
        (rows,) = self.call("ListUnitsByNames", "as", [list(names)])
        return dict(UnitState.from_row(row) for row in rows)

    def unit_path(self, unit: str) -> str:
        """The object path of UNIT, loading it if needed."""
        (path,) = self.call("LoadUnit", "s", [unit], unit=unit)
        return str(path)

    def service_property(self, path: str, unit: str, name: str) -> Any:
        """A property of the Service interface, or None for units that are not services."""
        if not unit.endswith(".service"):
            return None
        (variant,) = self.call(
            "Get", "ss", [SERVICE, name], path=path, interface=PROPERTIES, unit=unit
        )
        return variant.value

    def with_result(self, unit: str, state: UnitState) -> UnitState:
        """STATE with the service's Result filled in (when systemd knows the unit)."""
        if not state.exists:
            return state
        result = self.service_property(self.unit_path(unit), unit, "Result")
        return state.with_result(None if result is None else str(result))


class SystemdManager:
    """UnitManager over the system bus.

    Use it as a context manager to share one connection between calls;
    without one, each call connects and disconnects on its own.
    """

    def __init__(
        self,
        bus_address: str | None = None,
        *,
        timeout: float = 30.0,
        job_timeout: float = 300.0,
        poll_interval: float = 0.2,
    ) -> None:
        self._address = bus_address
        self._timeout = timeout
        self._job_timeout = job_timeout
        self._poll = poll_interval
        self._conn: _Connection | None = None

    def __enter__(self) -> SystemdManager:
        if self._conn is not None:
            raise RuntimeError("SystemdManager is not reentrant")
        self._conn = _Connection.open(self._address, self._timeout)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _run(self, work: Callable[[_Connection], T]) -> T:
        if self._conn is not None:
            return work(self._conn)
        conn = _Connection.open(self._address, self._timeout)
        try:
            return work(conn)
        finally:
            conn.close()

    def daemon_reload(self) -> None:
        """Make systemd re-read unit files (returns once the reload is done)."""
        self._run(lambda c: c.call("Reload"))

    def enable(self, unit_files: Sequence[str]) -> tuple[UnitFileChange, ...]:
        """Enable unit files persistently; return the links made (none: no [Install])."""
        if not unit_files:
            return ()
        body = [list(unit_files), False, False]
        reply = self._run(lambda c: c.call("EnableUnitFiles", "asbb", body, unit=unit_files[0]))
        return tuple(UnitFileChange.from_row(row) for row in reply[1])

    def disable(self, unit_files: Sequence[str]) -> tuple[UnitFileChange, ...]:
        """Disable unit files; return the links removed. Missing files are skipped."""
        return self._run(lambda c: self._disable(c, unit_files))

    @staticmethod
    def _disable(conn: _Connection, unit_files: Sequence[str]) -> tuple[UnitFileChange, ...]:
        changes: list[UnitFileChange] = []
        # One file at a time: systemd refuses the whole call if any one file is gone,
        # and uninstall must work on a half-removed container.
        for unit_file in unit_files:
            try:
                (rows,) = conn.call("DisableUnitFiles", "asb", [[unit_file], False], unit=unit_file)
            except SystemdCallError as e:
                if e.error_name not in (NO_SUCH_UNIT, FILE_NOT_FOUND):
                    raise
                continue
            changes.extend(UnitFileChange.from_row(row) for row in rows)
        return tuple(changes)

    def start(self, unit: str) -> JobResult:
        """Start UNIT and wait for its job ("done" once a notify service is READY)."""
        return self._run(lambda c: c.job("StartUnit", unit, self._job_timeout))

    def stop(self, unit: str) -> JobResult:
        """Stop UNIT and wait for its job; a unit that is not loaded counts as stopped."""
        try:
            return self._run(lambda c: c.job("StopUnit", unit, self._job_timeout))
        except SystemdCallError as e:
            if e.error_name == NO_SUCH_UNIT:
                return JobResult.DONE
            raise

    def restart(self, unit: str) -> JobResult:
        """Restart UNIT, starting it if it was stopped, and wait for its job."""
        return self._run(lambda c: c.job("RestartUnit", unit, self._job_timeout))

    def reset_failed(self, unit: str) -> None:
        """Forget UNIT's failed state; a unit that is not loaded is ignored."""
        try:
            self._run(lambda c: c.call("ResetFailedUnit", "s", [unit], unit=unit))
        except SystemdCallError as e:
            if e.error_name != NO_SUCH_UNIT:
                raise

    def states(self, names: Sequence[str]) -> dict[str, UnitState]:
        """Live states of NAMES in one ListUnitsByNames round trip."""
        return self._run(lambda c: c.states(names))

    def wait_state(self, unit: str, want: Collection[ActiveState], timeout: float) -> UnitState:
        """Poll UNIT until its active state is in WANT, it fails, or TIMEOUT passes."""
        return self._run(lambda c: self._wait_state(c, unit, frozenset(want), timeout))

    def _wait_state(
        self, conn: _Connection, unit: str, want: frozenset[ActiveState], timeout: float
    ) -> UnitState:
        deadline = time.monotonic() + timeout
        while True:
            state = conn.states([unit])[unit]
            done = state.active_state in want or state.active_state is ActiveState.FAILED
            if done or time.monotonic() >= deadline:
                return conn.with_result(unit, state)
            conn.pause(min(self._poll, max(0.0, deadline - time.monotonic())))

    def observe(self, unit: str, window: float) -> Observation:
        """Watch UNIT for WINDOW seconds: healthy if it is active and stays so, unrestarted."""
        return self._run(lambda c: self._observe(c, unit, window))

    def _observe(self, conn: _Connection, unit: str, window: float) -> Observation:
        path = conn.unit_path(unit)
        rule = f"type='signal',sender='{SYSTEMD}',path='{path}',interface='{PROPERTIES}'"
        history: list[ActiveState] = []
        conn.subscribe()
        conn.add_match(rule)
        conn.watch(path, history.append)
        try:
            restarts_before = conn.service_property(path, unit, "NRestarts") or 0
            started = time.monotonic()
            while True:
                history.append(conn.states([unit])[unit].active_state)
                remaining = started + window - time.monotonic()
                if remaining <= 0 or not judge(history, 0).could_recover:
                    break
                conn.pause(min(self._poll, remaining))
            restarts = (conn.service_property(path, unit, "NRestarts") or 0) - restarts_before
            final = conn.with_result(unit, conn.states([unit])[unit])
        finally:
            conn.watch(path, None)
            conn.remove_match(rule)
        verdict = judge([*history, final.active_state], int(restarts))
        return Observation(unit, verdict, final, time.monotonic() - started)
