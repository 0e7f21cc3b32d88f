"""Crash safety: a command killed mid-way (os._exit in a forked child, no cleanup runs) leaves the
previous version in place, and the next command reconciles what it left."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from syscontainers.crashpoints import POINTS
from syscontainers.deploy.layout import read_info
from syscontainers.deploy.publish import publish
from syscontainers.errors import ContainerExistsError
from syscontainers.operations.activation import reconcile
from syscontainers.operations.containers import uninstall
from syscontainers.operations.host import Host
from syscontainers.operations.hostsync import sync
from syscontainers.operations.install import (
    InstallOutcome,
    InstallRequest,
    InstallResult,
    install,
)
from syscontainers.operations.slot import build_slot, from_store, prepare
from syscontainers.operations.update import UpdateOutcome, UpdateRequest, UpdateResult, update
from syscontainers.progress import Event
from syscontainers.record import replace
from syscontainers.render import KeptValues
from syscontainers.systemd_states import ActiveState
from tests.unit.lifecycle_fixtures import APP_CONF, Env, atomic_files

KILLED = 9


class DieOn:
    """A reporter that kills the process when a step message contains TEXT."""

    def __init__(self, text: str) -> None:
        self.text = text

    def emit(self, event: Event) -> None:
        if self.text in event.message:
            os._exit(KILLED)


def killed(work: Callable[[], object]) -> None:
    """Run WORK in a child that is expected to die by os._exit(KILLED) half way."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            work()
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == KILLED, status


def entries(env: Env) -> list[str]:
    return sorted(p.name for p in env.dep().iterdir())


def test_kill_during_install_checkout_leaves_a_temp_slot_that_is_cleaned(
    env: Env, atomic_image: str
) -> None:
    host = replace(env.host, reporter=DieOn("checking out"))
    killed(lambda: install(host, InstallRequest(atomic_image, name="web")))
    assert [n for n in entries(env) if n.startswith(".tmp-web.0-")], entries(env)
    assert list(env.paths.unit_dir.iterdir()) == []
    result = install(env.host, InstallRequest(atomic_image, name="web"))
    assert result.outcome is InstallOutcome.INSTALLED
    assert entries(env) == ["web", "web.0"]


def test_kill_after_the_flip_is_finished_by_the_next_install(env: Env, atomic_image: str) -> None:
    def die() -> None:
        os._exit(KILLED)

    units = env.units
    original = units.daemon_reload
    units.daemon_reload = die  # type: ignore[method-assign]
    killed(lambda: install(env.host, InstallRequest(atomic_image, name="web", start=True)))
    units.daemon_reload = original  # type: ignore[method-assign]
    info = read_info(env.dep("web"))
    assert info is not None and not info.complete
    assert (env.paths.unit_dir / "web.service").exists() and units.enabled == set()
    result = install(env.host, InstallRequest(atomic_image, name="web", start=True))
    assert result.outcome is InstallOutcome.FINISHED and result.started
    assert units.enabled == {"web.service"}
    done = read_info(env.dep("web"))
    assert done is not None and done.complete
    try:
        install(env.host, InstallRequest(atomic_image, name="web"))
    except ContainerExistsError:
        pass
    else:
        raise AssertionError("a finished install must now be refused")


def test_kill_during_update_keeps_the_old_version(env: Env, atomic_image: str) -> None:
    install(env.host, InstallRequest(atomic_image, name="web", start=True))
    unit_before = (env.paths.unit_dir / "web.service").read_text()
    env.pull(env.layout("app2", atomic_files("2")), "example.org/app:1")
    host = replace(env.host, reporter=DieOn("checking out"))
    killed(lambda: update(host, UpdateRequest("web")))
    assert os.readlink(env.dep("web")) == "web.0"
    assert (env.paths.unit_dir / "web.service").read_text() == unit_before
    assert [n for n in entries(env) if n.startswith(".tmp-web.1-")]
    result = update(env.host, UpdateRequest("web"))
    assert result.outcome is UpdateOutcome.UPDATED
    assert entries(env) == ["web", "web.0", "web.1"]


def test_unflipped_update_with_published_unit_is_reconciled(env: Env, atomic_image: str) -> None:
    """The state a kill leaves between writing host files and the unit, and the flip."""
    install(env.host, InstallRequest(atomic_image, name="web", start=True))
    old_unit = (env.paths.unit_dir / "web.service").read_bytes()
    env.pull(env.layout("app2", atomic_files("2")), "example.org/app:1")
    cd = env.host.container("web")
    current = read_info(env.dep("web.0"))
    assert current is not None
    with env.host.locked():
        choice = from_store(env.store, "example.org/app:1", "example.org/app:1", "")
        new = build_slot(env.host, prepare(env.host, cd, 1, choice, current.runtime, current.kept))
        sync(env.host, cd, new)
        publish(cd, env.dep("web.1"), env.paths)
    assert env.on_host("/etc/web/app.conf").read_bytes() == APP_CONF + b"# v2\n"
    assert (env.paths.unit_dir / "web.service").read_bytes() != old_unit
    env.units.calls.clear()
    with env.host.locked():
        report = reconcile(env.host, cd)
    assert report.removed == (str(env.dep("web.1")),) and report.republished
    assert (env.paths.unit_dir / "web.service").read_bytes() == old_unit
    assert env.on_host("/etc/web/app.conf").read_bytes() == APP_CONF + b"# v1\n"
    assert entries(env) == ["web", "web.0"] and "container:web.1" not in env.store.pins()
    assert env.units.calls == [("daemon_reload",)]


def test_crashed_install_that_never_flipped_is_removed_with_its_unit(
    env: Env, atomic_image: str
) -> None:
    cd = env.host.container("web")
    with env.host.locked():
        choice = from_store(env.store, atomic_image, atomic_image, "")
        info = build_slot(
            env.host, prepare(env.host, cd, 0, choice, "/usr/sbin/runc", KeptValues((), ""))
        )
        sync(env.host, cd, info)
        publish(cd, env.dep("web.0"), env.paths)
    assert env.on_host("/etc/web/motd").exists()
    result = install(env.host, InstallRequest(atomic_image, name="web"))
    assert result.outcome is InstallOutcome.INSTALLED
    info_after = read_info(env.dep("web.0"))
    assert info_after is not None and info_after.complete


def test_reconcile_of_a_clean_container_does_nothing(env: Env, atomic_image: str) -> None:
    install(env.host, InstallRequest(atomic_image, name="web"))
    env.units.calls.clear()
    with env.host.locked():
        report = reconcile(env.host, env.host.container("web"))
    assert not report.acted and env.units.calls == []


def test_kill_before_the_restart_of_an_update_is_finished_with_a_restart(
    env: Env, atomic_image: str
) -> None:
    install(env.host, InstallRequest(atomic_image, name="web", start=True))

    def die(unit: str) -> object:
        os._exit(KILLED)

    units = env.units
    original = units.restart
    units.restart = die  # type: ignore[method-assign,assignment]
    killed(lambda: update(env.host, UpdateRequest("web", sets=(("PORT", "9"),))))
    units.restart = original  # type: ignore[method-assign]
    assert os.readlink(env.dep("web")) == "web.1"
    half = read_info(env.dep("web.1"))
    assert half is not None and not half.complete
    units.calls.clear()
    result = update(env.host, UpdateRequest("web", sets=(("PORT", "9"),)))
    # the re-run finished this very update (restart, health gate): it says updated
    assert result.outcome is UpdateOutcome.UPDATED and result.deployment == "web.1"
    assert result.restarted
    assert ("restart", "web.service") in units.calls
    done = read_info(env.dep("web.1"))
    assert done is not None and done.complete


# --- every crash point, through the Host.crashpoint seam -------------------------------
#
# Each scenario runs one command in a forked child that dies (os._exit, no cleanup) at
# its Nth crash point, then runs the same command again in this process and checks that
# the second run converged to what the command asked for, and says so honestly.

BROKEN_UNIT = b"[Service]\nExecStart=$EXEC_START BROKEN\n[Install]\nWantedBy=multi-user.target\n"


def forward(host_paths: int) -> tuple[str, ...]:
    """The points of a first activation that changes HOST_PATHS host paths, starts the
    service and watches its health."""
    return (
        "slot-staged",
        "slot-built",
        "activation-recorded",
        *("host-path-changed",) * host_paths,
        "host-files-synced",
        "unit-published",
        "flipped",
        "systemd-told",
        "restarted",
        "health-watched",
    )


# the automatic rollback to the previous slot (app.conf goes back to v1)
BACK = (
    "activation-recorded",
    "host-path-changed",
    "host-files-synced",
    "unit-published",
    "flipped",
    "systemd-told",
    "restarted",
)


class KillAt:
    """A crash-point hook: records the points reached, and kills the process at the Nth."""

    def __init__(self, nth: int | None = None) -> None:
        self.nth = nth
        self.seen: list[str] = []

    def __call__(self, point: str) -> None:
        self.seen.append(point)
        if self.nth is not None and len(self.seen) == self.nth:
            os._exit(KILLED)


def broken_image(env: Env) -> None:
    """example.org/app:1 now names an image whose unit cannot start."""
    env.pull(
        env.layout("broken", atomic_files("2", **{"exports/service.template": BROKEN_UNIT})),
        "example.org/app:1",
    )
    env.units.broken_marker = "BROKEN"


def _install_now(env: Env, image: str) -> Callable[[Host], object]:
    return lambda host: install(host, InstallRequest(image, name="web", start=True))


def _update(env: Env, image: str, broken: bool) -> Callable[[Host], object]:
    install(env.host, InstallRequest(image, name="web", start=True))
    if broken:
        broken_image(env)
        return lambda host: update(host, UpdateRequest("web"))
    return lambda host: update(host, UpdateRequest("web", sets=(("PORT", "9"),)))


def _install_broken(env: Env, image: str) -> Callable[[Host], object]:
    broken_image(env)
    return _install_now(env, image)


# install: 5 directories (/etc, /etc/web, /usr, /usr/local, /usr/local/bin), 3 files;
# update: the motd (PORT=9) or app.conf (the broken image) changes
SCENARIOS: dict[str, tuple[Callable[[Env, str], Callable[[Host], object]], tuple[str, ...]]] = {
    "install --now": (_install_now, forward(8)),
    "install --now, fails to start": (_install_broken, forward(8)),
    "update": (lambda env, image: _update(env, image, broken=False), forward(1)),
    "update, rolled back": (lambda env, image: _update(env, image, broken=True), forward(1) + BACK),
}
KILLS = [(name, n) for name, (_, points) in SCENARIOS.items() for n in range(1, len(points) + 1)]


def test_the_scenarios_cover_every_crash_point() -> None:
    assert {p for _, points in SCENARIOS.values() for p in points} == set(POINTS)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_a_run_passes_every_crash_point_in_order(
    env: Env, atomic_image: str, scenario: str
) -> None:
    setup, points = SCENARIOS[scenario]
    run = setup(env, atomic_image)
    hook = KillAt()
    run(replace(env.host, crashpoint=hook))
    assert tuple(hook.seen) == points


def restarted_after_last_reload(env: Env) -> bool:
    """Whether the unit was (re)started after systemd last read the unit files."""
    calls = [c[0] for c in env.units.calls]
    reload = max(i for i, c in enumerate(calls) if c == "daemon_reload")
    return any(c in ("restart", "start") for c in calls[reload:])


def settled_on(env: Env, slot: str) -> None:
    """The container is on SLOT, finished, with its unit published and nothing half done."""
    assert os.readlink(env.dep("web")) == slot
    info = read_info(env.dep(slot))
    assert info is not None and info.complete and not info.activating
    assert (env.paths.unit_dir / "web.service").read_bytes() == (
        env.dep(slot) / "web.service"
    ).read_bytes()
    assert env.units.enabled == {"web.service"}
    assert not [n for n in entries(env) if n.startswith(".tmp-")], entries(env)


@pytest.mark.parametrize(("scenario", "nth"), KILLS)
def test_a_kill_at_any_point_then_the_same_command_converges(
    env: Env, atomic_image: str, scenario: str, nth: int
) -> None:
    setup, points = SCENARIOS[scenario]
    run = setup(env, atomic_image)
    killed(lambda: run(replace(env.host, crashpoint=KillAt(nth))))
    env.units.calls.clear()
    result = run(env.host)
    if scenario == "install --now":
        assert isinstance(result, InstallResult) and result.started and not result.failure
        settled_on(env, "web.0")
        assert env.units.active["web.service"] is ActiveState.ACTIVE
        assert restarted_after_last_reload(env)
        with pytest.raises(ContainerExistsError):
            run(env.host)
        uninstall(env.host, "web")  # and nothing of it is left behind: no file, no directory
        assert list(env.paths.host_root.iterdir()) == [] and list(env.dep().iterdir()) == []
    elif scenario == "install --now, fails to start":
        assert isinstance(result, InstallResult) and not result.started
        assert "could not be started" in result.failure and "web.service" in result.journal[0]
        settled_on(env, "web.0")
        assert env.units.active["web.service"] is ActiveState.FAILED
    elif scenario == "update":
        assert isinstance(result, UpdateResult)
        assert result.outcome is UpdateOutcome.UPDATED and result.deployment == "web.1"
        settled_on(env, "web.1")
        assert env.units.active["web.service"] is ActiveState.ACTIVE
        assert restarted_after_last_reload(env)
        assert env.on_host("/etc/web/motd").read_text() == "web listens on 9\n"
    else:
        assert isinstance(result, UpdateResult)
        assert result.outcome is UpdateOutcome.ROLLED_BACK and result.deployment == "web.0"
        assert result.reason
        settled_on(env, "web.0")
        assert env.units.active["web.service"] is ActiveState.ACTIVE
        assert restarted_after_last_reload(env)
        assert env.on_host("/etc/web/app.conf").read_bytes() == APP_CONF + b"# v1\n"
        again = run(env.host)  # the broken image is tried again, never taken as up to date
        assert isinstance(again, UpdateResult) and again.outcome is UpdateOutcome.ROLLED_BACK


def test_install_over_an_interrupted_update_finishes_it_but_is_refused(
    env: Env, atomic_image: str
) -> None:
    """install of an installed name says so, even when it had an update to finish first."""
    run = _update(env, atomic_image, broken=False)
    killed(lambda: run(replace(env.host, crashpoint=KillAt(len(forward(1)) - 2))))  # flipped+
    with pytest.raises(ContainerExistsError, match="already installed"):
        install(env.host, InstallRequest(atomic_image, name="web", start=True))
    settled_on(env, "web.1")
