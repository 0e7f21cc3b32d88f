"""Host files and directories owned across containers: the host-file database in the lifecycle.

Each test installs real images into a store under tmp_path and host files under
``host/`` (Paths.host_root), with a fake systemd; what is checked is the files on
disk and ROOT/hostfiles.json.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from syscontainers.errors import CheckoutError, StoreCorruptError
from syscontainers.operations.containers import uninstall
from syscontainers.operations.hostquery import Status, owners, verify
from syscontainers.operations.install import InstallOutcome, InstallRequest, install
from syscontainers.operations.update import UpdateRequest, rollback, update
from syscontainers.progress import EventKind
from syscontainers.record import replace
from tests.unit.lifecycle_fixtures import APPCTL, MANIFEST, Env, atomic_files
from tests.unit.test_lifecycle_crash import DieOn, killed

SHARED = "/usr/share/app/common.conf"
COMMON = b"shared by every container of this image\n"


def shared_image(env: Env, tag: str = "1", common: bytes = COMMON, **extra: bytes) -> str:
    """The atomic image plus a host file no renameFiles entry moves: every container of it
    installs the same path."""
    files = atomic_files(**{"exports/hostfs" + SHARED: common}, **extra)
    name = f"example.org/shared:{tag}"
    env.pull(env.layout(f"shared{tag}", files), name)
    return name


def db(env: Env) -> dict[str, Any]:
    return dict(json.loads((env.paths.root / "hostfiles.json").read_text())["paths"])


# --- #8.3: a file the container did not create is never removed ------------------------


def test_an_identical_admin_file_is_claimed_but_never_removed(env: Env, atomic_image: str) -> None:
    ctl = env.on_host("/usr/local/bin/webctl")
    ctl.parent.mkdir(parents=True)
    ctl.write_bytes(APPCTL)  # the admin put the very same bytes there first
    install(env.host, InstallRequest(atomic_image, name="web"))
    row = owners(env.store, env.paths, ["/usr/local/bin/webctl"])["/usr/local/bin/webctl"]
    assert row is not None and row.owners == ("web",) and not row.created
    result = uninstall(env.host, "web")
    assert ctl.read_bytes() == APPCTL, "uninstall deleted a file that existed before install"
    assert "/usr/local/bin/webctl" not in result.removed_files
    assert not env.on_host("/etc/web").exists()  # what it did make is gone
    assert db(env) == {}


# --- #8.4: shared host files are reference counted, conflicts name both owners ---------


def test_a_shared_host_file_stays_until_its_last_owner_is_uninstalled(env: Env) -> None:
    image = shared_image(env)
    install(env.host, InstallRequest(image, name="a"))
    install(env.host, InstallRequest(image, name="b"))
    assert db(env)[SHARED]["created"] and [c["owner"] for c in db(env)[SHARED]["claims"]] == [
        "a",
        "b",
    ]
    uninstall(env.host, "a")
    assert env.on_host(SHARED).read_bytes() == COMMON, "uninstall of a removed b's file"
    assert not env.on_host("/etc/a").exists() and env.on_host("/etc/b/app.conf").exists()
    uninstall(env.host, "b")
    assert not env.on_host(SHARED).exists() and not env.on_host("/usr/share").exists()
    assert list(env.paths.host_root.iterdir()) == []


def test_another_containers_file_with_other_bytes_is_refused_naming_both(env: Env) -> None:
    install(env.host, InstallRequest(shared_image(env), name="a"))
    other = shared_image(env, "2", common=b"a different version\n")
    with pytest.raises(CheckoutError) as info:
        install(env.host, InstallRequest(other, name="c"))
    text = f"{info.value.message} {info.value.hint}"
    assert SHARED in text and "container c" in text and "owned by a" in text
    assert env.on_host(SHARED).read_bytes() == COMMON
    assert not env.on_host("/etc/c").exists() and not (env.dep() / "c.0").exists()
    assert [c["owner"] for c in db(env)[SHARED]["claims"]] == ["a"]


def test_an_update_to_other_bytes_of_a_shared_file_is_refused(env: Env) -> None:
    image = shared_image(env)
    install(env.host, InstallRequest(image, name="a"))
    install(env.host, InstallRequest(image, name="b"))
    env.pull(
        env.layout("shared-v2", atomic_files("2", **{"exports/hostfs" + SHARED: b"v2\n"})), image
    )
    with pytest.raises(CheckoutError, match="owned by b"):
        update(env.host, UpdateRequest("a"))
    assert env.on_host(SHARED).read_bytes() == COMMON
    assert os.readlink(env.dep("a")) == "a.0" and not env.dep("a.1").exists()


# --- #9.1: directories from /exports/hostfs, with the same ownership -------------------


def dir_image(env: Env) -> str:
    env.pull(
        env.layout(
            "dirs",
            atomic_files(),
            dirs=["exports/hostfs/etc/flanneld", "exports/hostfs/var/lib/net-snmp"],
            modes={
                "exports/hostfs/var/lib/net-snmp": 0o700,
                "exports/hostfs/usr/local/bin/appctl": 0o755,
            },
        ),
        "example.org/dirs:1",
    )
    return "example.org/dirs:1"


def test_empty_hostfs_directories_are_made_and_removed_with_their_owner(env: Env) -> None:
    image = dir_image(env)
    env.on_host("/var/lib").mkdir(parents=True)  # the host's own
    install(env.host, InstallRequest(image, name="web"))
    assert env.on_host("/etc/flanneld").is_dir()
    assert env.on_host("/var/lib/net-snmp").stat().st_mode & 0o777 == 0o700
    assert db(env)["/etc/flanneld"]["created"] and not db(env)["/var/lib"]["created"]
    uninstall(env.host, "web")
    assert not env.on_host("/etc").exists() and not env.on_host("/var/lib/net-snmp").exists()
    assert env.on_host("/var/lib").is_dir(), "a directory the host had was removed"


def test_a_directory_is_shared_and_left_when_something_else_is_in_it(env: Env) -> None:
    image = dir_image(env)
    env.on_host("/etc/flanneld").mkdir(parents=True)  # existed before: never removed
    install(env.host, InstallRequest(image, name="a"))
    install(env.host, InstallRequest(image, name="b"))
    (env.on_host("/var/lib/net-snmp") / "admin.conf").write_text("x\n")
    uninstall(env.host, "a")
    assert env.on_host("/var/lib/net-snmp").is_dir()
    uninstall(env.host, "b")
    assert env.on_host("/var/lib/net-snmp/admin.conf").exists()  # not empty: kept
    assert env.on_host("/etc/flanneld").is_dir()
    assert db(env) == {}


def test_a_file_where_a_directory_belongs_is_refused(env: Env) -> None:
    image = dir_image(env)
    env.on_host("/etc").mkdir()
    env.on_host("/etc/flanneld").write_text("not a directory\n")
    with pytest.raises(CheckoutError, match="/etc/flanneld is in the way"):
        install(env.host, InstallRequest(image, name="web"))
    assert env.on_host("/etc/flanneld").read_text() == "not a directory\n"


# --- #9.6: the admin's file is kept, the image's goes beside it -------------------------


def test_the_kept_admin_file_is_recorded_and_verified(env: Env, atomic_image: str) -> None:
    conf = env.on_host("/etc/web/app.conf")
    conf.parent.mkdir(parents=True)
    conf.write_text("the admin's\n")
    install(env.host, InstallRequest(atomic_image, name="web"))
    row = owners(env.store, env.paths, ["/etc/web/app.conf.syscontainers-new"])
    found = row["/etc/web/app.conf.syscontainers-new"]
    assert found is not None and found.path == "/etc/web/app.conf" and found.owners == ("web",)
    assert found.beside == "/etc/web/app.conf.syscontainers-new" and not found.created
    assert all(r.status is Status.OK for r in verify(env.store, env.paths, ["web"]))
    uninstall(env.host, "web")
    assert (
        conf.read_text() == "the admin's\n"
        and not conf.with_name("app.conf.syscontainers-new").exists()
    )


def test_verify_reports_missing_and_modified_files(env: Env, atomic_image: str) -> None:
    install(env.host, InstallRequest(atomic_image, name="web"))
    env.on_host("/etc/web/motd").unlink()
    env.on_host("/etc/web/app.conf").write_text("edited\n")
    found = {r.path: r.status for r in verify(env.store, env.paths)}
    assert found["/etc/web/motd"] is Status.MISSING
    assert found["/etc/web/app.conf"] is Status.MODIFIED
    assert found["/usr/local/bin/webctl"] is Status.OK and found["/etc/web"] is Status.OK


# --- crash safety of the database ----------------------------------------------------


def test_a_kill_after_the_intent_is_recorded_loses_no_ownership(
    env: Env, atomic_image: str
) -> None:
    ctl = env.on_host("/usr/local/bin/webctl")
    ctl.parent.mkdir(parents=True)
    ctl.write_bytes(APPCTL)
    host = replace(env.host, reporter=DieOn("host file(s) of web"))
    killed(lambda: install(host, InstallRequest(atomic_image, name="web")))
    recorded = db(env)
    assert recorded["/usr/local/bin/webctl"]["created"] is False
    assert recorded["/etc/web/app.conf"]["claims"][0]["owner"] == "web"
    assert [p.name for p in env.paths.root.iterdir() if p.name.startswith(".tmp")] == []
    result = install(env.host, InstallRequest(atomic_image, name="web"))
    assert result.outcome is InstallOutcome.INSTALLED
    uninstall(env.host, "web")
    assert ctl.read_bytes() == APPCTL and db(env) == {}


def test_a_damaged_database_is_a_clear_error(env: Env, atomic_image: str) -> None:
    (env.paths.root).mkdir(parents=True, exist_ok=True)
    (env.paths.root / "hostfiles.json").write_text("{not json")
    with pytest.raises(StoreCorruptError) as info:
        install(env.host, InstallRequest(atomic_image, name="web"))
    assert "hostfiles.json" in info.value.message and "move" in (info.value.hint or "")


def test_a_missing_database_is_rebuilt_from_the_ledgers(env: Env, atomic_image: str) -> None:
    install(env.host, InstallRequest(atomic_image, name="web"))
    (env.paths.root / "hostfiles.json").unlink()
    row = owners(env.store, env.paths, ["/etc/web/app.conf"])["/etc/web/app.conf"]
    assert row is not None and row.owners == ("web",)
    uninstall(env.host, "web")
    assert not env.on_host("/etc/web/app.conf").exists()


def test_rollback_and_update_keep_the_claims_of_the_active_slot(env: Env) -> None:
    image = shared_image(env)
    install(env.host, InstallRequest(image, name="a"))
    update(env.host, UpdateRequest("a", sets=(("PORT", "9"),)))
    rollback(env.host, "a")
    assert [c["owner"] for c in db(env)[SHARED]["claims"]] == ["a"]
    assert not env.reporter.messages(EventKind.WARNING)
    uninstall(env.host, "a")
    assert db(env) == {} and list(env.paths.host_root.iterdir()) == []


def test_a_bind_source_among_the_host_directories_gets_no_default_tmpfiles_line(env: Env) -> None:
    manifest = {
        **MANIFEST,
        "renameFiles": {
            **MANIFEST["renameFiles"],  # type: ignore[dict-item]
            "/var/lib/app": "${STATE_DIRECTORY}/$NAME",
        },
    }
    files = atomic_files(**{"exports/manifest.json": json.dumps(manifest).encode()})
    del files["exports/tmpfiles.template"]  # the default lines make missing bind sources
    env.pull(env.layout("bind", files, dirs=["exports/hostfs/var/lib/app"]), "example.org/b:1")
    install(env.host, InstallRequest("example.org/b:1", name="web"))
    assert env.on_host("/var/lib/web").is_dir()  # the config binds /var/lib/web
    assert "/var/lib/web" not in (env.dep("web") / "tmpfiles-web.conf").read_text()
