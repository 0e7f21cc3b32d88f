"""Tests for syscontainers.operations.autoupdate: opt-in, check without pulling, update, rollback.

Images come from oci: layouts rewritten in place (a new image under the same tag),
which the registry policy checks exactly as it checks a registry: by resolving the
source's manifest. tests/integration/test_autoupdate_systemd.py runs it against a
real registry on a booted systemd.
"""

from __future__ import annotations

import os
import shutil
from contextlib import AbstractContextManager
from typing import BinaryIO

import pytest

from syscontainers.deploy.layout import read_info
from syscontainers.errors import StoreLockedError, UsageError
from syscontainers.oci import Descriptor, Manifest, Platform
from syscontainers.operations.autoupdate import (
    LABEL,
    AutoUpdateOptions,
    Policy,
    Status,
    auto_update,
)
from syscontainers.operations.install import InstallRequest, install
from syscontainers.operations.update import UpdateRequest, update
from syscontainers.record import replace
from syscontainers.sources import ResolvedImage
from syscontainers.store import Store
from syscontainers.store.lock import LockMode
from tests.unit.lifecycle_fixtures import Env, atomic_files

BROKEN_UNIT = b"[Service]\nExecStart=$EXEC_START BROKEN\n[Install]\nWantedBy=multi-user.target\n"


def write_app(
    env: Env, version: str, label: str | None = None, files: dict[str, bytes] | None = None
) -> str:
    """(Re)write the layout 'app' with VERSION of the atomic image (FILES replacing some of
    its files); return its source."""
    shutil.rmtree(env.tmp / "layouts" / "app", ignore_errors=True)
    config: dict[str, object] | None = (
        {"config": {"Labels": {LABEL: label}}} if label is not None else None
    )
    return env.layout("app", atomic_files(version, **(files or {})), config=config)


def install_app(env: Env, source: str, name: str = "web", policy: str = "") -> None:
    install(env.host, InstallRequest(source, name=name, start=True, auto_update=policy))


def tree(env: Env) -> dict[str, tuple[int, int]]:
    """Every path under the deployments, the store's blobs and the unit directory, with its
    inode and mtime (the store's lock and tmp/ change with every locked command)."""
    out = {}
    for top in (env.paths.deployments, env.paths.store / "blobs", env.paths.unit_dir):
        for dirpath, dirnames, filenames in os.walk(top):
            for n in dirnames + filenames:
                st = os.lstat(os.path.join(dirpath, n))
                out[os.path.join(dirpath, n)] = (st.st_ino, st.st_mtime_ns)
    return out


def run(env: Env, dry_run: bool = False) -> dict[str, tuple[Policy, Status]]:
    rows = auto_update(env.host, AutoUpdateOptions(dry_run, health_timeout=0.1))
    return {r.name: (r.policy, r.status) for r in rows}


def test_a_new_image_is_picked_up_and_the_policy_kept(env: Env) -> None:
    install_app(env, write_app(env, "1"), policy="registry")
    before = read_info(env.dep("web.0"))
    write_app(env, "2")
    env.units.calls.clear()
    (row,) = auto_update(env.host, AutoUpdateOptions(health_timeout=0.1))
    assert (row.status, row.policy, row.unit) == (Status.UPDATED, Policy.REGISTRY, "web.service")
    assert os.readlink(env.dep("web")) == "web.1"
    after = read_info(env.dep("web.1"))
    assert before is not None and after is not None
    assert row.image_id == before.image_id and row.new_image_id == after.image_id
    assert after.image_id != before.image_id and after.auto_update == "registry"
    assert (env.dep("web") / "rootfs/var/www/index.html").read_text() == "version 2\n"
    assert ("restart", "web.service") in env.units.calls


def test_an_unchanged_image_is_not_touched(env: Env) -> None:
    install_app(env, write_app(env, "1"), policy="registry")
    before, blobs = tree(env), sorted(os.listdir(env.paths.store / "blobs" / "sha256"))
    env.units.calls.clear()
    assert run(env) == {"web": (Policy.REGISTRY, Status.UNCHANGED)}
    assert tree(env) == before and env.units.calls == []
    assert sorted(os.listdir(env.paths.store / "blobs" / "sha256")) == blobs


def test_containers_that_did_not_opt_in_are_left_alone(env: Env) -> None:
    install_app(env, write_app(env, "1"))
    install_app(env, write_app(env, "1", label="registry"), name="labelled")
    install_app(env, write_app(env, "1", label="registry"), name="optout", policy="disabled")
    write_app(env, "2", label="registry")
    assert run(env) == {"labelled": (Policy.REGISTRY, Status.UPDATED)}
    assert os.readlink(env.dep("web")) == "web.0"
    assert os.readlink(env.dep("optout")) == "optout.0"


def test_a_broken_image_is_rolled_back_and_reported(env: Env) -> None:
    install_app(env, write_app(env, "1"), policy="registry")
    write_app(env, "2", files={"exports/service.template": BROKEN_UNIT})
    env.units.broken_marker = "BROKEN"
    (row,) = auto_update(env.host, AutoUpdateOptions(health_timeout=0.1))
    assert row.status is Status.ROLLED_BACK and row.reason and row.journal
    assert os.readlink(env.dep("web")) == "web.0"
    assert "BROKEN" not in (env.paths.unit_dir / "web.service").read_text()
    info = read_info(env.dep("web.0"))
    assert info is not None and info.auto_update_failed == row.new_image_id


def test_an_image_that_was_rolled_back_is_not_tried_again(env: Env) -> None:
    install_app(env, write_app(env, "1"), policy="registry")
    write_app(env, "2", files={"exports/service.template": BROKEN_UNIT})
    env.units.broken_marker = "BROKEN"
    assert run(env) == {"web": (Policy.REGISTRY, Status.ROLLED_BACK)}
    env.units.calls.clear()
    (row,) = auto_update(env.host, AutoUpdateOptions(health_timeout=0.1))
    assert row.status is Status.FAILED and "not tried again" in row.reason
    assert "syscontainers update web" in row.hint
    assert env.units.calls == [] and os.readlink(env.dep("web")) == "web.0"
    write_app(env, "3")  # the tag names another image: tried
    assert run(env) == {"web": (Policy.REGISTRY, Status.UPDATED)}
    info = read_info(env.dep("web"))
    assert info is not None and info.auto_update_failed == ""


def test_dry_run_shows_pending_and_writes_nothing(env: Env) -> None:
    install_app(env, write_app(env, "1"), policy="registry")
    write_app(env, "2")
    before = tree(env)
    assert run(env, dry_run=True) == {"web": (Policy.REGISTRY, Status.PENDING)}
    assert tree(env) == before


def test_local_policy_follows_the_store_name(env: Env, atomic_image: str) -> None:
    install_app(env, atomic_image, policy="local")
    assert run(env) == {"web": (Policy.LOCAL, Status.UNCHANGED)}
    v2 = env.pull(env.layout("app2", atomic_files("2")), atomic_image)
    assert run(env) == {"web": (Policy.LOCAL, Status.UPDATED)}
    info = read_info(env.dep("web.1"))
    assert info is not None and info.image_id == v2 and info.auto_update == "local"


def test_registry_policy_on_a_short_store_name_says_what_to_do(env: Env) -> None:
    env.pull(write_app(env, "1"), "app:1")
    install_app(env, "app:1", policy="registry")
    (row,) = auto_update(env.host, AutoUpdateOptions())
    assert row.status is Status.FAILED and "names no registry" in row.reason
    assert "--auto-update local" in row.hint


def test_an_unknown_label_value_is_an_error_row(env: Env) -> None:
    install_app(env, write_app(env, "1", label="always"), name="odd")
    (row,) = auto_update(env.host, AutoUpdateOptions())
    assert row.status is Status.FAILED and "io.containers.autoupdate='always'" in row.reason


def test_one_failure_does_not_stop_the_others(env: Env) -> None:
    install_app(env, write_app(env, "1"), name="a", policy="registry")
    install_app(env, write_app(env, "1"), name="b", policy="registry")
    (env.tmp / "layouts" / "app" / "index.json").write_text("{")  # a's and b's source broken
    env.pull(env.layout("c1", atomic_files("1")), "example.org/c:1")
    install_app(env, "example.org/c:1", name="c", policy="local")
    env.pull(env.layout("c2", atomic_files("2")), "example.org/c:1")
    got = run(env)
    assert got == {
        "a": (Policy.REGISTRY, Status.FAILED),
        "b": (Policy.REGISTRY, Status.FAILED),
        "c": (Policy.LOCAL, Status.UPDATED),
    }


def test_the_policy_is_kept_through_a_plain_update(env: Env) -> None:
    install_app(env, write_app(env, "1"), policy="local")
    update(env.host, UpdateRequest("web", sets=(("PORT", "9"),)))
    info = read_info(env.dep("web.1"))
    assert info is not None and info.auto_update == "local"


def test_install_refuses_an_unknown_policy(env: Env) -> None:
    with pytest.raises(UsageError, match="unknown auto-update policy 'weekly'"):
        install_app(env, write_app(env, "1"), policy="weekly")


class Crash(Exception):
    """Stands for a kill at a crash point."""


def test_a_container_that_did_not_opt_in_is_not_even_reconciled(env: Env) -> None:
    install_app(env, write_app(env, "1"))

    def crash(point: str) -> None:
        if point == "slot-built":
            raise Crash(point)

    with pytest.raises(Crash):
        update(replace(env.host, crashpoint=crash), UpdateRequest("web", sets=(("PORT", "9"),)))
    assert env.dep("web.1").is_dir()  # the debris the next update or install would clear
    assert run(env) == {}
    assert env.dep("web.1").is_dir()
    install_app(env, write_app(env, "1"), name="other", policy="registry")
    assert run(env) == {"other": (Policy.REGISTRY, Status.UNCHANGED)}
    assert env.dep("web.1").is_dir()


def test_update_changes_the_policy_without_redeploying(env: Env) -> None:
    install_app(env, write_app(env, "1", label="registry"))
    env.units.calls.clear()
    update(env.host, UpdateRequest("web", auto_update="disabled"))
    assert os.readlink(env.dep("web")) == "web.0" and not env.dep("web.1").exists()
    assert env.units.calls == []
    info = read_info(env.dep("web.0"))
    assert info is not None and info.auto_update == "disabled" and info.complete
    assert run(env) == {}
    update(env.host, UpdateRequest("web", auto_update=""))  # back to the image's label
    assert run(env) == {"web": (Policy.REGISTRY, Status.UNCHANGED)}
    with pytest.raises(UsageError, match="unknown auto-update policy 'hourly'"):
        update(env.host, UpdateRequest("web", auto_update="hourly"))


def test_update_with_a_new_image_records_a_new_policy(env: Env) -> None:
    install_app(env, write_app(env, "1"))
    write_app(env, "2")
    update(env.host, UpdateRequest("web", auto_update="registry"))
    info = read_info(env.dep("web.1"))
    assert info is not None and info.auto_update == "registry"


class LockProbingSource:
    """A registry source that, when asked for its manifest, records whether another
    command could take the store's exclusive lock at that moment."""

    def __init__(self, env: Env, digest: str, seen: list[bool]) -> None:
        self.description = "docker://example.org/app:1"
        self.env, self.digest, self.seen = env, digest, seen

    def resolve(self, platform: Platform) -> ResolvedImage:
        try:
            with Store(self.env.paths.store, lock_timeout=0).locked(LockMode.EXCLUSIVE):
                self.seen.append(True)
        except StoreLockedError:
            self.seen.append(False)
        return ResolvedImage(Manifest.__new__(Manifest), b"", self.digest, "")

    def open_blob(self, desc: Descriptor) -> AbstractContextManager[BinaryIO]:
        raise AssertionError(f"a check read the blob {desc.digest}")

    def close(self) -> None:
        """Nothing to release."""


@pytest.mark.parametrize("changed", [False, True])
def test_the_registry_is_asked_with_no_store_lock_held(
    env: Env, atomic_image: str, changed: bool
) -> None:
    install_app(env, atomic_image, policy="registry")
    info = read_info(env.dep("web.0"))
    assert info is not None
    seen: list[bool] = []
    digest = "sha256:" + "1" * 64 if changed else info.image_id
    host = replace(env.host, registry=lambda spec: LockProbingSource(env, digest, seen))
    (row,) = auto_update(host, AutoUpdateOptions(dry_run=True))
    assert seen == [True]  # another command could have taken the lock meanwhile
    assert (row.status, row.new_image_id) == (
        Status.PENDING if changed else Status.UNCHANGED,
        digest,
    )


def test_an_update_a_crash_interrupted_is_finished_even_when_unchanged(env: Env) -> None:
    install_app(env, write_app(env, "1"), policy="registry")
    write_app(env, "2")

    def crash(point: str) -> None:
        if point == "systemd-told":
            raise Crash(point)

    with pytest.raises(Crash):
        update(replace(env.host, crashpoint=crash), UpdateRequest("web"))
    stuck = read_info(env.dep("web.1"))
    assert os.readlink(env.dep("web")) == "web.1" and stuck is not None and not stuck.complete
    assert run(env) == {"web": (Policy.REGISTRY, Status.UNCHANGED)}
    done = read_info(env.dep("web.1"))
    assert done is not None and done.complete and not done.activating
