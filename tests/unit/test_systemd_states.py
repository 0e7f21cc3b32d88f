"""Tests for the pure systemd vocabulary: states, job results, verdicts, error messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from syscontainers.errors import SystemdError
from syscontainers.systemd_states import (
    ActiveState,
    JobResult,
    LoadState,
    UnitFileChange,
    UnitState,
    check_job,
    dbus_error,
    judge,
    unreachable_error,
)
from tests.fakes import FakeUnitManager

A, F = ActiveState.ACTIVE, ActiveState.FAILED
ING, INACT = ActiveState.ACTIVATING, ActiveState.INACTIVE


def _row(name: str, load: str, active: str, sub: str) -> tuple[object, ...]:
    return (
        name,
        "desc",
        load,
        active,
        sub,
        "",
        f"/org/freedesktop/systemd1/unit/{name}",
        0,
        "",
        "/",
    )


@pytest.mark.parametrize(
    ("row", "name", "state"),
    [
        (
            _row("etcd.service", "loaded", "active", "running"),
            "etcd.service",
            UnitState(LoadState.LOADED, A, "running"),
        ),
        (
            _row("gone.service", "not-found", "inactive", "dead"),
            "gone.service",
            UnitState(LoadState.NOT_FOUND, INACT, "dead"),
        ),
        (
            _row("w.service", "masked", "failed", "failed"),
            "w.service",
            UnitState(LoadState.MASKED, F, "failed"),
        ),
        (
            _row("n.service", "loaded", "activating", "start"),
            "n.service",
            UnitState(LoadState.LOADED, ING, "start"),
        ),
        (
            _row("x.service", "shiny-new", "hibernating", "odd"),
            "x.service",
            UnitState(LoadState.UNKNOWN, ActiveState.UNKNOWN, "odd"),
        ),
    ],
)
def test_unit_state_from_row(row: tuple[object, ...], name: str, state: UnitState) -> None:
    assert UnitState.from_row(row) == (name, state)


@pytest.mark.parametrize(
    ("state", "exists", "is_active"),
    [
        (UnitState(LoadState.LOADED, A, "running"), True, True),
        (UnitState(LoadState.LOADED, ActiveState.RELOADING, "reload"), True, True),
        (UnitState(LoadState.LOADED, ING, "start"), True, False),
        (UnitState(LoadState.NOT_FOUND, INACT, "dead"), False, False),
    ],
)
def test_unit_state_predicates(state: UnitState, exists: bool, is_active: bool) -> None:
    assert (state.exists, state.is_active) == (exists, is_active)


def test_with_result_keeps_the_rest() -> None:
    state = UnitState(LoadState.LOADED, F, "failed")
    assert state.with_result("exit-code") == UnitState(LoadState.LOADED, F, "failed", "exit-code")


@pytest.mark.parametrize(
    ("text", "result"),
    [
        ("done", JobResult.DONE),
        ("timeout", JobResult.TIMEOUT),
        ("failed", JobResult.FAILED),
        ("dependency", JobResult.DEPENDENCY),
        ("brand-new", JobResult.UNKNOWN),
    ],
)
def test_job_result_parse(text: str, result: JobResult) -> None:
    assert JobResult(text) is result


def test_unit_file_change_from_row() -> None:
    row = (
        "symlink",
        "/etc/systemd/system/multi-user.target.wants/a.service",
        "/etc/systemd/system/a.service",
    )
    assert UnitFileChange.from_row(row) == UnitFileChange(*row)


@pytest.mark.parametrize(
    ("history", "restarts", "healthy", "reached", "recoverable", "reason"),
    [
        ([A], 0, True, True, True, "stayed active"),
        ([ING, ING, A, A], 0, True, True, True, "stayed active"),
        ([A, ActiveState.RELOADING, A], 0, True, True, True, "stayed active"),
        ([A, F], 0, False, True, False, "failed (active → failed)"),
        ([A, ActiveState.DEACTIVATING, INACT], 0, False, True, False, "did not stay active"),
        ([A, INACT, A], 0, False, True, False, "did not stay active"),
        ([A, A], 2, False, True, False, "restarted 2 time(s)"),
        ([ING, ING], 0, False, False, True, "never became active (last state: activating)"),
        ([INACT], 0, False, False, True, "never became active"),
        ([F, A], 0, False, True, False, "failed"),
        ([], 0, False, False, True, "last state: unknown"),
    ],
)
def test_judge(
    history: list[ActiveState],
    restarts: int,
    healthy: bool,
    reached: bool,
    recoverable: bool,
    reason: str,
) -> None:
    verdict = judge(history, restarts)
    assert (verdict.healthy, verdict.reached_active, verdict.could_recover) == (
        healthy,
        reached,
        recoverable,
    )
    assert reason in verdict.reason


@pytest.mark.parametrize(
    ("error_name", "unit", "hint_part"),
    [
        ("org.freedesktop.systemd1.NoSuchUnit", "a.service", "daemon-reload"),
        ("org.freedesktop.systemd1.UnitMasked", "a.service", "systemctl unmask a.service"),
        ("org.freedesktop.DBus.Error.AccessDenied", "a.service", "as root"),
        ("org.freedesktop.DBus.Error.ServiceUnknown", None, "booted systemd"),
        ("org.example.Unheard", "a.service", "journalctl -b -u a.service"),
    ],
)
def test_dbus_error_message_and_hint(error_name: str, unit: str | None, hint_part: str) -> None:
    error = dbus_error("StartUnit", unit, error_name, "it went wrong")
    assert isinstance(error, SystemdError)
    assert error.message.startswith("systemd refused StartUnit")
    assert "it went wrong" in error.message
    assert (unit or "") in error.message
    assert error.hint is not None and hint_part in error.hint


def test_dbus_error_without_unit_or_hint() -> None:
    error = dbus_error("Reload", None, "org.example.Unheard", "")
    assert error.message == "systemd refused Reload: org.example.Unheard"
    assert error.hint is None


def test_unreachable_error_says_systemd_is_needed() -> None:
    error = unreachable_error("the system bus", "No such file or directory")
    assert "the system bus" in error.message
    assert error.hint is not None and "booted systemd" in error.hint


def test_check_job() -> None:
    check_job("a.service", "start", JobResult.DONE)
    with pytest.raises(SystemdError, match="result 'timeout'") as info:
        check_job("a.service", "start", JobResult.TIMEOUT)
    assert info.value.hint is not None and "journalctl" in info.value.hint


def test_fake_unit_manager_follows_the_real_semantics(tmp_path: Path) -> None:
    (tmp_path / "a.service").write_text("[Service]\n")
    fake = FakeUnitManager(tmp_path)
    with pytest.raises(SystemdError):
        fake.start("a.service")  # not loaded before a reload, like systemd
    fake.daemon_reload()
    assert [c.kind for c in fake.enable(["a.service"])] == ["symlink"]
    assert fake.start("a.service") is JobResult.DONE
    states = fake.states(["a.service", "b.service"])
    assert states["a.service"].is_active and not states["b.service"].exists
    fake.boot()
    assert fake.states(["a.service"])["a.service"].is_active
    fake.unhealthy.add("a.service")
    assert not fake.observe("a.service", 1.0).healthy
