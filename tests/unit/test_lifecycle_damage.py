"""A damaged info.json is reported, naming the file and the repair, by every verb: never taken
for a missing container (list, update) or a taken name (install), never deleted as debris."""

from __future__ import annotations

from pathlib import Path

import pytest

from syscontainers.errors import StoreCorruptError
from syscontainers.operations.containers import DAMAGED, list_containers, uninstall
from syscontainers.operations.install import InstallRequest, install
from syscontainers.operations.update import UpdateRequest, rollback, update
from syscontainers.progress import EventKind
from tests.unit.lifecycle_fixtures import Env

DAMAGE = {
    "truncated": b'{"name": "web", "slot": 0, "ima',
    "not-an-object": b"[1, 2]\n",
    "missing-field": b'{"name": "web", "slot": 0}\n',
    "not-utf8": b"\xff\xfe\x00",
}


def damage(env: Env, slot: str, kind: str) -> Path:
    path = env.dep(slot) / "info.json"
    path.write_bytes(DAMAGE[kind])
    return path


def assert_names_the_file(error: StoreCorruptError, path: Path) -> None:
    assert str(path) in error.message and "damaged" in error.message
    assert error.hint is not None and str(path) in error.hint
    assert "syscontainers uninstall web" in error.hint


@pytest.fixture
def running_web(env: Env, atomic_image: str) -> Env:
    install(env.host, InstallRequest(atomic_image, name="web", start=True))
    return env


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_list_shows_a_damaged_container_and_says_why(running_web: Env, kind: str) -> None:
    env = running_web
    path = damage(env, "web.0", kind)
    (row,) = list_containers(env.host)
    assert (row.name, row.state) == ("web", DAMAGED) and str(path) in row.problem
    (warning,) = env.reporter.messages(EventKind.WARNING)
    assert str(path) in warning and "uninstall web" in warning


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_update_install_and_rollback_report_the_damage(
    running_web: Env, atomic_image: str, kind: str
) -> None:
    env = running_web
    path = damage(env, "web.0", kind)
    for verb in (
        lambda: update(env.host, UpdateRequest("web")),
        lambda: install(env.host, InstallRequest(atomic_image, name="web")),
        lambda: rollback(env.host, "web"),
    ):
        with pytest.raises(StoreCorruptError) as info:
            verb()
        assert_names_the_file(info.value, path)
    assert path.read_bytes() == DAMAGE[kind]  # nothing touched it


def test_a_damaged_previous_deployment_is_reported_not_deleted(running_web: Env) -> None:
    env = running_web
    update(env.host, UpdateRequest("web", sets=(("PORT", "9"),)))
    path = damage(env, "web.0", "truncated")
    with pytest.raises(StoreCorruptError) as info:
        update(env.host, UpdateRequest("web", sets=(("PORT", "10"),)))
    assert_names_the_file(info.value, path)
    assert env.dep("web.0").is_dir() and path.read_bytes() == DAMAGE["truncated"]


def test_uninstall_still_removes_a_damaged_container(running_web: Env) -> None:
    env = running_web
    damage(env, "web.0", "truncated")
    result = uninstall(env.host, "web")
    assert result.deployments == ("web.0",) and list(env.dep().iterdir()) == []
    assert not (env.paths.unit_dir / "web.service").exists()
