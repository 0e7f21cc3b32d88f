"""The systemd vocabulary, pure: unit and job states, health verdicts, D-Bus error messages.

Nothing here talks to systemd; syscontainers.systemd fills these values from
D-Bus replies and re-exports them, and test fakes build them directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Any

from syscontainers.errors import SystemdError
from syscontainers.record import record, replace

BOOTED_HINT = "is systemd running? syscontainers needs a booted systemd with its D-Bus system bus"
_ROOT_HINT = "run syscontainers as root"


class ActiveState(Enum):
    """A unit's high-level state, as systemctl's ACTIVE column shows it."""

    ACTIVE = "active"
    RELOADING = "reloading"
    REFRESHING = "refreshing"
    INACTIVE = "inactive"
    FAILED = "failed"
    ACTIVATING = "activating"
    DEACTIVATING = "deactivating"
    MAINTENANCE = "maintenance"
    UNKNOWN = "unknown"

    @classmethod
    def _missing_(cls, value: object) -> ActiveState:
        return cls.UNKNOWN  # a state newer than this code


class LoadState(Enum):
    """Whether systemd found and parsed a unit's file."""

    LOADED = "loaded"
    NOT_FOUND = "not-found"
    BAD_SETTING = "bad-setting"
    ERROR = "error"
    MASKED = "masked"
    STUB = "stub"
    MERGED = "merged"
    UNKNOWN = "unknown"

    @classmethod
    def _missing_(cls, value: object) -> LoadState:
        return cls.UNKNOWN


class JobResult(Enum):
    """How a start, stop or restart job ended (the JobRemoved signal's result)."""

    DONE = "done"
    CANCELED = "canceled"
    TIMEOUT = "timeout"
    FAILED = "failed"
    DEPENDENCY = "dependency"
    SKIPPED = "skipped"
    INVALID = "invalid"
    ASSERT = "assert"
    UNSUPPORTED = "unsupported"
    COLLECTED = "collected"
    ONCE = "once"
    UNKNOWN = "unknown"

    @classmethod
    def _missing_(cls, value: object) -> JobResult:
        return cls.UNKNOWN


_UP = frozenset({ActiveState.ACTIVE, ActiveState.RELOADING, ActiveState.REFRESHING})


@record
class UnitState:
    """One unit's live state; ``result`` is the service's Result, when it was read."""

    load_state: LoadState
    active_state: ActiveState
    sub_state: str
    result: str | None = None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> tuple[str, UnitState]:
        """Name and state from one ``(ssssssouso)`` row of ListUnits/ListUnitsByNames."""
        name, _description, load, active, sub = (str(v) for v in row[:5])
        return name, cls(LoadState(load), ActiveState(active), sub)

    @property
    def exists(self) -> bool:
        """Whether systemd has a unit file for it."""
        return self.load_state not in (LoadState.NOT_FOUND, LoadState.UNKNOWN)

    @property
    def is_active(self) -> bool:
        """Active, or reloading while active."""
        return self.active_state in _UP

    def with_result(self, result: str | None) -> UnitState:
        """This state with RESULT filled in."""
        return replace(self, result=result)


@record
class UnitFileChange:
    """One link that enable or disable made or removed."""

    kind: str  # "symlink" or "unlink"
    path: str
    source: str

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> UnitFileChange:
        """From one ``(sss)`` row of EnableUnitFiles/DisableUnitFiles."""
        kind, path, source = (str(v) for v in row)
        return cls(kind, path, source)


@record
class Verdict:
    """The judgement of a unit's states seen over an observation window."""

    healthy: bool
    reached_active: bool
    restarts: int
    could_recover: bool  # False once only an unhealthy outcome is possible
    reason: str


@record
class Observation:
    """What watching a unit for a while showed."""

    unit: str
    verdict: Verdict
    final: UnitState
    elapsed: float

    @property
    def healthy(self) -> bool:
        """Reached active (READY, for notify services) and stayed there, unrestarted."""
        return self.verdict.healthy


def _collapse(history: Sequence[ActiveState]) -> list[ActiveState]:
    collapsed: list[ActiveState] = []
    for state in history:
        if not collapsed or collapsed[-1] is not state:
            collapsed.append(state)
    return collapsed


def judge(history: Sequence[ActiveState], restarts: int) -> Verdict:
    """Judge a unit from the active states seen, in order, and its restart count."""
    seen = _collapse(history)
    reached = ActiveState.ACTIVE in seen
    after = seen[seen.index(ActiveState.ACTIVE) :] if reached else []
    left = [s for s in after if s not in _UP]
    failed = ActiveState.FAILED in seen
    last = seen[-1] if seen else ActiveState.UNKNOWN
    healthy = reached and not left and not failed and not restarts and last in _UP
    trail = " → ".join(s.value for s in seen) or "nothing"
    if healthy:
        reason = "became active and stayed active"
    elif restarts:
        reason = f"was restarted {restarts} time(s) ({trail})"
    elif failed:
        reason = f"failed ({trail})"
    elif left:
        reason = f"did not stay active ({trail})"
    else:
        reason = f"never became active (last state: {last.value})"
    could_recover = not (failed or left or restarts)
    return Verdict(healthy, reached, restarts, could_recover, reason)


_SD = "org.freedesktop.systemd1."
_BUS = "org.freedesktop.DBus.Error."
_HINTS = {
    _SD + "NoSuchUnit": "is its unit file installed? try: systemctl daemon-reload",
    _SD + "UnitMasked": "the unit is masked; unmask it with: systemctl unmask {unit}",
    _SD + "LoadFailed": "check the unit file with: systemd-analyze verify {unit}",
    _SD + "TransactionIsDestructive": "see: systemctl list-jobs",
    _SD + "TransactionOrderIsCyclic": "see: journalctl -b -u {unit}",
    _BUS + "FileNotFound": "the unit file is missing; is it installed?",
    _BUS + "AccessDenied": _ROOT_HINT,
    _BUS + "InteractiveAuthorizationRequired": _ROOT_HINT,
    _BUS + "ServiceUnknown": BOOTED_HINT,
    _BUS + "NameHasNoOwner": BOOTED_HINT,
    _BUS + "NoReply": "systemd did not answer; see: journalctl -b",
    _BUS + "Disconnected": BOOTED_HINT,
}


def check_job(unit: str, verb: str, result: JobResult) -> None:
    """Raise SystemdError unless the VERB job for UNIT finished as "done"."""
    if result is not JobResult.DONE:
        raise SystemdError(
            f"could not {verb} {unit}: its job ended with result {result.value!r}",
            hint=f"see: journalctl -b -u {unit}",
        )


def dbus_error(member: str, unit: str | None, error_name: str, text: str) -> SystemdError:
    """A SystemdError for a D-Bus error reply to MEMBER about UNIT."""
    about = f" for {unit}" if unit else ""
    detail = text or error_name or "no reason given"
    hint = _HINTS.get(error_name)
    if hint is None and unit:
        hint = "see: journalctl -b -u {unit}"
    return SystemdError(
        f"systemd refused {member}{about}: {detail}",
        hint=hint.format(unit=unit) if hint else None,
    )


def unreachable_error(where: str, detail: str) -> SystemdError:
    """A SystemdError for a bus that cannot be reached at all."""
    return SystemdError(f"cannot reach systemd over D-Bus at {where}: {detail}", hint=BOOTED_HINT)
