"""Tests for syscontainers.operations.update: update, health-gated rollback, and rollback."""

from __future__ import annotations

import os

import pytest

from syscontainers.deploy.layout import read_info
from syscontainers.errors import ContainerNotFoundError, UsageError
from syscontainers.operations.activation import reconcile
from syscontainers.operations.install import InstallRequest, install
from syscontainers.operations.update import (
    UpdateOutcome,
    UpdateRequest,
    rollback,
    update,
    update_all,
)
from syscontainers.progress import EventKind
from syscontainers.systemd_states import ActiveState
from tests.unit.lifecycle_fixtures import (
    APP_CONF,
    Env,
    atomic_files,
)


def installed(env: Env, image: str, start: bool = True, **sets: str) -> str:
    install(env.host, InstallRequest(image, name="web", sets=tuple(sets.items()), start=start))
    info = read_info(env.dep("web.0"))
    assert info is not None
    return info.kept.uuid


def push_v2(env: Env, **overrides: bytes) -> str:
    """Store version 2 of the app under the same tag; return its digest."""
    return env.pull(env.layout("app2", atomic_files("2", **overrides)), "example.org/app:1")


def test_update_with_set_keeps_uuid_and_makes_slot_1(env: Env, atomic_image: str) -> None:
    uuid = installed(env, atomic_image, GREETING="hi")
    env.units.calls.clear()
    result = update(env.host, UpdateRequest("web", sets=(("PORT", "9191"),)))
    assert result.outcome is UpdateOutcome.UPDATED and result.deployment == "web.1"
    assert result.restarted
    assert os.readlink(env.dep("web")) == "web.1"
    info = read_info(env.dep("web.1"))
    assert info is not None and info.complete and info.kept.uuid == uuid
    assert info.kept.set_map() == {"GREETING": "hi", "PORT": "9191"}
    unit = (env.paths.unit_dir / "web.service").read_text()
    assert f"WorkingDirectory={env.dep('web.1')}\n" in unit and "port 9191" in unit
    assert env.on_host("/etc/web/motd").read_text() == "web listens on 9191\n"
    assert [c[0] for c in env.units.calls] == [
        "states",
        "daemon_reload",
        "enable",
        "restart",
        "observe",
    ]
    assert env.store.pins().keys() == {"container:web.0", "container:web.1"}
    assert env.dep("web.0").is_dir()  # kept for rollback


def test_update_with_no_change_does_nothing(env: Env, atomic_image: str) -> None:
    installed(env, atomic_image)
    before = sorted(p.name for p in env.dep().iterdir())
    env.units.calls.clear()
    result = update(env.host, UpdateRequest("web"))
    assert result.outcome is UpdateOutcome.UP_TO_DATE and result.deployment == "web.0"
    assert sorted(p.name for p in env.dep().iterdir()) == before
    assert env.units.calls == []
    assert "already up to date" in " ".join(env.reporter.messages(EventKind.STEP))


def test_update_picks_up_a_newer_image_and_host_files(env: Env, atomic_image: str) -> None:
    installed(env, atomic_image)
    v2 = push_v2(env)
    result = update(env.host, UpdateRequest("web"))
    assert result.outcome is UpdateOutcome.UPDATED and result.image_id == v2
    assert result.previous_image_id != v2
    assert env.on_host("/etc/web/app.conf").read_bytes() == APP_CONF + b"# v2\n"
    assert (env.dep("web") / "rootfs/var/www/index.html").read_text() == "version 2\n"


def test_update_keeps_a_host_file_the_admin_changed(env: Env, atomic_image: str) -> None:
    """Like rpm's %config(noreplace): the edit stays, the new version goes beside it."""
    installed(env, atomic_image)
    env.on_host("/etc/web/app.conf").write_text("admin edit\n")
    push_v2(env)
    update(env.host, UpdateRequest("web"))
    assert env.on_host("/etc/web/app.conf").read_text() == "admin edit\n"
    beside = env.on_host("/etc/web/app.conf.syscontainers-new")
    assert beside.read_bytes() == APP_CONF + b"# v2\n"
    warnings = " ".join(env.reporter.messages(EventKind.WARNING))
    assert "kept the host's /etc/web/app.conf" in warnings and beside.name in warnings
    rollback(env.host, "web")  # v1 again: the edit stays, v1 is the one beside it now
    assert env.on_host("/etc/web/app.conf").read_text() == "admin edit\n"
    assert beside.read_bytes() == APP_CONF + b"# v1\n"


def test_broken_update_rolls_back_by_itself(env: Env, atomic_image: str) -> None:
    installed(env, atomic_image)
    push_v2(
        env,
        **{
            "exports/service.template": b"[Service]\nExecStart=$EXEC_START BROKEN\n"
            b"[Install]\nWantedBy=multi-user.target\n"
        },
    )
    env.units.broken_marker = "BROKEN"
    result = update(env.host, UpdateRequest("web"))
    assert result.outcome is UpdateOutcome.ROLLED_BACK
    assert "restarted" in result.reason or "failed" in result.reason
    assert result.deployment == "web.0"
    assert os.readlink(env.dep("web")) == "web.0"
    assert "BROKEN" not in (env.paths.unit_dir / "web.service").read_text()
    assert env.units.active["web.service"] is ActiveState.ACTIVE
    assert env.on_host("/etc/web/app.conf").read_bytes() == APP_CONF + b"# v1\n"
    assert any("rolled back to web.0" in m for m in env.reporter.messages(EventKind.WARNING))
    # The failed deployment is debris now: the next command clears it away.
    failed = read_info(env.dep("web.1"))
    assert failed is not None and not failed.complete
    report = reconcile(env.host, env.host.container("web"))
    assert report.removed == (str(env.dep("web.1")),)
    assert not env.dep("web.1").exists() and "container:web.1" not in env.store.pins()
    assert env.on_host("/etc/web/app.conf").read_bytes() == APP_CONF + b"# v1\n"


def test_unhealthy_after_start_rolls_back(env: Env, atomic_image: str) -> None:
    installed(env, atomic_image)
    env.units.unhealthy.add("web.service")
    result = update(env.host, UpdateRequest("web", sets=(("PORT", "1"),), health_timeout=0.1))
    assert result.outcome is UpdateOutcome.ROLLED_BACK and "failed" in result.reason
    assert os.readlink(env.dep("web")) == "web.0"
    assert "port 8080" in (env.paths.unit_dir / "web.service").read_text()


def test_update_of_a_stopped_service_does_not_start_it(env: Env, atomic_image: str) -> None:
    installed(env, atomic_image, start=False)
    result = update(env.host, UpdateRequest("web", sets=(("PORT", "2"),)))
    assert result.outcome is UpdateOutcome.UPDATED and not result.restarted
    assert ("restart", "web.service") not in env.units.calls
    assert env.units.active.get("web.service") in (None, ActiveState.INACTIVE)


def test_rollback_flips_to_the_previous_deployment(env: Env, atomic_image: str) -> None:
    installed(env, atomic_image)
    update(env.host, UpdateRequest("web", sets=(("PORT", "9191"),)))
    result = rollback(env.host, "web")
    assert (result.deployment, result.previous, result.restarted) == ("web.0", "web.1", True)
    assert os.readlink(env.dep("web")) == "web.0"
    assert "port 8080" in (env.paths.unit_dir / "web.service").read_text()
    assert env.on_host("/etc/web/motd").read_text() == "web listens on 8080\n"
    assert rollback(env.host, "web").deployment == "web.1"  # and forward again
    assert "port 9191" in (env.paths.unit_dir / "web.service").read_text()


def test_rollback_without_a_previous_deployment(env: Env, atomic_image: str) -> None:
    installed(env, atomic_image)
    with pytest.raises(ContainerNotFoundError, match="no previous deployment"):
        rollback(env.host, "web")
    with pytest.raises(ContainerNotFoundError):
        update(env.host, UpdateRequest("absent"))


def test_update_all_updates_each_container(env: Env, atomic_image: str) -> None:
    installed(env, atomic_image)
    install(env.host, InstallRequest(atomic_image, name="other"))
    push_v2(env)
    results = dict(update_all(env.host, UpdateRequest("")))
    assert {n: r.outcome for n, r in results.items()} == {  # type: ignore[union-attr]
        "other": UpdateOutcome.UPDATED,
        "web": UpdateOutcome.UPDATED,
    }
    with pytest.raises(UsageError):
        update_all(env.host, UpdateRequest("", sets=(("A", "b"),)))


def test_rebase_moves_to_another_image(env: Env, atomic_image: str) -> None:
    installed(env, atomic_image)
    env.pull(env.layout("other", atomic_files("9")), "example.org/other:2")
    result = update(env.host, UpdateRequest("web", rebase="example.org/other:2"))
    assert result.outcome is UpdateOutcome.UPDATED
    info = read_info(env.dep("web"))
    assert info is not None and info.image == "example.org/other:2"
