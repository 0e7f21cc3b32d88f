"""apply against the real store and files, with a fake systemd that makes the real links.

The fake enables and disables as systemd does on disk (the [Install] symlinks),
since apply reads whether a unit is enabled from them. A second apply of the same
manifest must touch nothing: every file's and directory's mtime and inode under the
store root, the unit and tmpfiles directories and the host root stay as they were.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from syscontainers import cli, unitlinks
from syscontainers.operations.apply import Outcome, execute, read_managed, survey
from syscontainers.paths import Paths
from syscontainers.provision.manifest import parse
from syscontainers.provision.plan import Plan, plan
from syscontainers.record import replace
from syscontainers.systemd_states import ActiveState, UnitFileChange
from tests.fakes import FakeUnitManager
from tests.unit.lifecycle_fixtures import Env, atomic_files
from tests.unit.test_sysroot import links, make_root

pytestmark = pytest.mark.usefixtures("isolated")
RUNC = "/usr/sbin/runc"


class LinkingUnits(FakeUnitManager):
    """FakeUnitManager whose enable and disable also change the links, as systemd's do."""

    def __init__(self, paths: Paths) -> None:
        super().__init__(paths.unit_dir)
        self.paths = paths

    def enable(self, unit_files: Sequence[str]) -> tuple[UnitFileChange, ...]:
        """Enable, and make the links."""
        super().enable(unit_files)
        return unitlinks.enable(self.paths, unit_files)

    def disable(self, unit_files: Sequence[str]) -> tuple[UnitFileChange, ...]:
        """Disable, and remove the links."""
        super().disable(unit_files)
        return unitlinks.disable(self.paths, unit_files)


@pytest.fixture
def world(env: Env) -> Env:
    env.units = LinkingUnits(env.paths)
    for version in ("1", "2"):
        env.pull(env.layout(f"app{version}", atomic_files(version)), f"example.org/app:{version}")
    return env


def apply(env: Env, text: str, prune: bool = False) -> tuple[Plan, list[Outcome]]:
    manifest = parse(text, "host.yaml")
    manifest = replace(
        manifest,
        containers=tuple(replace(s, runtime=s.runtime or RUNC) for s in manifest.containers),
    )
    todo = plan(manifest, survey(env.host, manifest), prune)
    return todo, execute(env.host, todo, 1.0)


def snapshot(env: Env) -> dict[str, tuple[int, int]]:
    """(mtime_ns, inode) of everything apply could touch, by path."""
    out = {}
    for top in (env.paths.root, env.paths.unit_dir, env.paths.tmpfiles_dir, env.paths.host_root):
        for dirpath, dirnames, filenames in os.walk(top):
            for name in [*dirnames, *filenames, ""]:
                path = os.path.join(dirpath, name)
                st = os.lstat(path)
                out[path] = (st.st_mtime_ns, st.st_ino)
    return out


TWO = """\
containers:
  web:
    image: example.org/app:1
    values: {PORT: "8081"}
  quiet:
    image: example.org/app:1
    enabled: false
    started: false
"""


def test_install_update_prune_and_a_second_apply_touches_nothing(world: Env) -> None:
    todo, done = apply(world, TWO)
    assert [(o.action.verb.value, o.action.name) for o in done] == [
        ("install", "web"),
        ("start", "web"),
        ("install", "quiet"),
        ("disable", "quiet"),
    ]
    assert world.units.active["web.service"] is ActiveState.ACTIVE
    assert "quiet.service" not in world.units.active
    assert unitlinks.is_enabled(world.paths, "web.service")
    assert not unitlinks.is_enabled(world.paths, "quiet.service")
    assert read_managed(world.host) == {"web", "quiet"}

    before, calls = snapshot(world), len(world.units.calls)
    todo, done = apply(world, TWO)
    assert todo.changes == () and done == []
    assert snapshot(world) == before
    assert [c[0] for c in world.units.calls[calls:]] == ["states"]  # only looked

    changed = TWO.replace('PORT: "8081"', 'PORT: "8082"').replace(
        "app:1\n    enabled", "app:2\n    enabled"
    )
    todo, done = apply(world, changed)
    assert [(o.action.verb.value, o.action.name, o.detail) for o in done] == [
        ("update", "web", "updated to web.1"),
        ("update", "quiet", "updated to quiet.1"),
        ("disable", "quiet", "disabled"),
    ]
    web = json.loads((world.dep("web") / "info.json").read_text())
    assert web["values"]["set"] == {"PORT": "8082"}
    assert "version 2" in (world.dep("quiet") / "rootfs/var/www/index.html").read_text()
    assert not unitlinks.is_enabled(world.paths, "quiet.service")

    only_web = "containers:\n  web:\n    image: example.org/app:1\n    values: {PORT: '8082'}\n"
    todo, done = apply(world, only_web)
    assert [a.describe() for a in todo.actions] == [
        "orphan quiet: no longer in the manifest; apply --prune uninstalls it",
        "ok web: example.org/app:1",
    ]
    assert done == [] and world.dep("quiet").exists()
    todo, done = apply(world, only_web, prune=True)
    assert [(o.action.verb.value, o.action.name) for o in done] == [("uninstall", "quiet")]
    assert not world.dep("quiet").exists() and read_managed(world.host) == {"web"}
    before = snapshot(world)
    assert apply(world, only_web, prune=True)[0].changes == ()
    assert snapshot(world) == before


def test_a_container_installed_by_hand_is_never_pruned(world: Env) -> None:
    from syscontainers.operations.install import InstallRequest, install

    install(world.host, InstallRequest("example.org/app:1", "mine", runtime=RUNC))
    todo, _done = apply(world, "containers: {}\n", prune=True)
    assert todo.actions == () and world.dep("mine").exists()


def test_a_runtime_or_dropped_value_reinstalls(world: Env) -> None:
    apply(world, TWO)
    todo, done = apply(world, TWO.replace('values: {PORT: "8081"}', "runtime: /usr/bin/crun"))
    assert [(o.action.verb.value, o.action.name) for o in done] == [
        ("reinstall", "web"),
        ("start", "web"),
    ]
    assert todo.actions[0].reason == f"runtime {RUNC} -> /usr/bin/crun; value(s) PORT no longer set"
    info = json.loads((world.dep("web") / "info.json").read_text())
    assert (info["runtime"], info["values"]["set"]) == ("/usr/bin/crun", {})


def test_cli_apply_into_a_sysroot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_root(tmp_path)
    layout = tmp_path / "layout"
    from tests.imagebuild import layer_tar, write_oci_layout

    write_oci_layout(layout, [layer_tar(atomic_files("1"))], "v1")
    manifest = tmp_path / "host.yaml"
    manifest.write_text(f"containers:\n  web:\n    image: oci:{layout}:v1\n")
    sc = ["--sysroot", str(root), "apply", str(manifest)]
    assert cli.main([*sc, "--dry-run", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert doc["plan"][0]["action"] == "install" and doc["changes"] == 1 and doc["dry_run"]
    assert not (root / "var").exists()
    assert cli.main(sc) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"plan for {manifest} (1 container(s)):\n  install web: ")
    assert "applied 1 change(s)" in out
    assert links(root) == {
        "etc/systemd/system/multi-user.target.wants/web.service": "/etc/systemd/system/web.service"
    }
    assert cli.main(sc) == 0
    assert f"nothing to change: the host matches {manifest}" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("containers:\n  web:\n    image: x\n    runtime: /opt/none\n")
    assert cli.main(["--sysroot", str(root), "apply", str(bad)]) == 2
    assert (
        f"{bad}, line 2: container web: runtime /opt/none is not an executable"
        in capsys.readouterr().err
    )


def test_a_failed_apply_still_records_what_it_installed(world: Env) -> None:
    from syscontainers.errors import ImageNotFoundError

    apply(world, TWO)
    text = (
        "containers:\n  new:\n    image: example.org/app:1\n"
        "  broken:\n    image: example.org/missing:1\n"
    )
    with pytest.raises(ImageNotFoundError):
        apply(world, text, prune=True)
    assert world.dep("new").exists() and not world.dep("web").exists()
    assert "new" in read_managed(world.host)
    todo, done = apply(world, "containers: {}\n", prune=True)
    assert [(o.action.verb.value, o.action.name) for o in done] == [("uninstall", "new")]


def test_update_always_pulls_and_updates_only_when_the_image_changed(world: Env) -> None:
    source = world.layout("moving", atomic_files("1"), tag="v1")
    text = f"containers:\n  mov:\n    image: {source}\n    update: always\n"
    todo, done = apply(world, text)
    assert [(o.action.verb.value, o.detail) for o in done][0] == ("install", "installed mov.0")
    world.layout("moving", atomic_files("2"), tag="v1")  # the same tag, a new image
    todo, done = apply(world, text)
    assert [(o.action.verb.value, o.detail) for o in done] == [("update", "updated to mov.1")]
    assert "version 2" in (world.dep("mov") / "rootfs/var/www/index.html").read_text()
    deployments = {p: s for p, s in snapshot(world).items() if "/containers" in p}
    todo, done = apply(world, text)
    assert [(o.action.verb.value, o.detail) for o in done] == [("update", "up to date")]
    assert {p: s for p, s in snapshot(world).items() if "/containers" in p} == deployments


def test_update_missing_never_pulls_an_installed_image_again(world: Env) -> None:
    source = world.layout("still", atomic_files("1"), tag="v1")
    text = f"containers:\n  still:\n    image: {source}\n"
    apply(world, text)
    world.layout("still", atomic_files("2"), tag="v1")
    todo, done = apply(world, text)
    assert todo.changes == () and done == []


def test_without_file_apply_reads_the_roots_host_yaml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_root(tmp_path)
    assert cli.main(["--sysroot", str(root), "apply"]) == 2
    assert f"manifest {root}/etc/syscontainers/host.yaml does not exist" in capsys.readouterr().err
    (root / "etc/syscontainers").mkdir()
    (root / "etc/syscontainers/host.yaml").write_text("containers:\n")
    assert cli.main(["--sysroot", str(root), "apply", "--dry-run"]) == 0
    assert "nothing to change" in capsys.readouterr().out
