"""--sysroot: install, update, rollback, list and uninstall on an offline root, with no D-Bus.

The [Install] symlinks are compared with what ``systemctl --root=DIR enable`` makes (the
oracle) for the same unit files; the CLI runs with a system bus address that cannot be
reached, so any D-Bus use would fail the command.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from syscontainers import cli, unitlinks
from syscontainers.errors import SystemdError
from syscontainers.offline import OfflineUnits
from syscontainers.paths import Paths
from syscontainers.systemd_states import ActiveState, LoadState
from tests.imagebuild import layer_tar, requires, write_oci_layout
from tests.unit.lifecycle_fixtures import atomic_files

needs_systemctl = requires("systemctl")
pytestmark = pytest.mark.usefixtures("isolated")


def make_root(base: Path) -> Path:
    """A tiny offline root: a runc executable at /usr/sbin/runc and empty /etc."""
    root = base / "sysroot"
    (root / "usr/sbin").mkdir(parents=True)
    (root / "etc").mkdir()
    runc = root / "usr/sbin/runc"
    runc.write_text("#!/bin/sh\nexit 0\n")
    runc.chmod(0o755)
    return root


def layout(base: Path, version: str = "1") -> str:
    """An atomic-contract image in an OCI layout; returns its source string."""
    where = base / "layout"
    write_oci_layout(where, [layer_tar(atomic_files(version))], f"v{version}")
    return f"oci:{where}:v{version}"


def links(root: Path) -> dict[str, str]:
    """Every symlink under ROOT/etc: path relative to ROOT -> target."""
    return {
        str(p.relative_to(root)): os.readlink(p)
        for p in sorted((root / "etc").rglob("*"))
        if p.is_symlink()
    }


def sc(root: Path, *args: str) -> int:
    return cli.main(["--sysroot", str(root), *args])


def test_paths_of_a_sysroot_all_lie_under_it(tmp_path: Path) -> None:
    paths = Paths.in_sysroot(tmp_path, Path("/srv/sc"))
    assert paths.root == tmp_path / "srv/sc"
    for path in (
        paths.store,
        paths.deployments,
        paths.unit_dir,
        paths.tmpfiles_dir,
        paths.host_root,
        *paths.unit_search,
        *paths.tmpfiles_search,
    ):
        assert path == tmp_path or tmp_path in path.parents, path
    assert paths.booted(paths.deployments / "web.0") == Path("/srv/sc/containers/web.0")
    assert paths.on_host("/run/x") == tmp_path / "run/x"
    assert Paths().booted(Path("/a")) == Path("/a") and not Paths().offline


UNITS = {
    "wanted": "[Install]\nWantedBy=multi-user.target\n",
    "several": "[Install]\nWantedBy=multi-user.target default.target\nRequiredBy=a.target\n"
    "RequiredBy=b.target\nAlias=web-alias.service\n",
    "continued": "[Unit]\nDescription=x\n# WantedBy=ignored.target\n[Install]\n"
    "WantedBy=one.target \\\n  two.target\n",
    "specifiers": "[Install]\nWantedBy=%N.target\nAlias=%p-alias.service\n",
    "also": "[Install]\nWantedBy=multi-user.target\nAlso=helper.service\n",
    "reset": "[Install]\nWantedBy=lost.target\nWantedBy=\nWantedBy=kept.target\n",
    "none": "[Service]\nExecStart=/bin/true\n",
}


@needs_systemctl
@pytest.mark.parametrize("case", sorted(UNITS))
def test_enable_and_disable_make_the_links_systemctl_root_makes(tmp_path: Path, case: str) -> None:
    ours, oracle = make_root(tmp_path / "a"), make_root(tmp_path / "b")
    for root in (ours, oracle):
        unit_dir = root / "etc/systemd/system"
        unit_dir.mkdir(parents=True)
        (unit_dir / "web.service").write_text("[Service]\nExecStart=/bin/true\n" + UNITS[case])
        lib = root / "usr/lib/systemd/system"
        lib.mkdir(parents=True)
        (lib / "helper.service").write_text("[Install]\nWantedBy=sockets.target\n")
    subprocess.run(
        ["systemctl", f"--root={oracle}", "enable", "web.service"], check=True, capture_output=True
    )
    units = OfflineUnits(Paths.in_sysroot(ours))
    made = units.enable(["web.service"])
    assert links(ours) == links(oracle)
    assert len(made) == len(links(ours)) and (case == "none") == (not made)
    assert all(not c.path.startswith(str(ours)) for c in made)  # booted paths
    assert units.enable(["web.service"]) == ()  # again: nothing to do
    subprocess.run(
        ["systemctl", f"--root={oracle}", "disable", "web.service"], check=True, capture_output=True
    )
    units.disable(["web.service"])
    assert links(ours) == links(oracle) == {}


def test_enable_refuses_a_foreign_file_where_a_link_goes(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    unit_dir = root / "etc/systemd/system"
    (unit_dir / "x.target.wants").mkdir(parents=True)
    (unit_dir / "web.service").write_text("[Install]\nWantedBy=x.target\n")
    (unit_dir / "x.target.wants/web.service").write_text("not a link")
    with pytest.raises(SystemdError, match="exists and is not a link"):
        OfflineUnits(Paths.in_sysroot(root)).enable(["web.service"])


def test_an_unknown_specifier_is_an_error(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    (root / "etc/systemd/system").mkdir(parents=True)
    (root / "etc/systemd/system/web.service").write_text("[Install]\nWantedBy=%H.target\n")
    with pytest.raises(SystemdError, match="specifier %H"):
        OfflineUnits(Paths.in_sysroot(root)).enable(["web.service"])


def test_offline_units_run_nothing(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    (root / "usr/lib/systemd/system").mkdir(parents=True)
    (root / "usr/lib/systemd/system/sshd.service").write_text("[Service]\n")
    units = OfflineUnits(Paths.in_sysroot(root))
    with pytest.raises(SystemdError, match="nothing runs there"):
        units.start("sshd.service")
    with pytest.raises(SystemdError):
        units.restart("sshd.service")
    states = units.states(["sshd.service", "web.service"])
    assert states["sshd.service"].load_state is LoadState.LOADED
    assert states["web.service"].load_state is LoadState.NOT_FOUND
    assert all(s.active_state is ActiveState.INACTIVE for s in states.values())


@needs_systemctl
def test_install_into_a_sysroot_writes_only_there_with_booted_paths(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    oracle = tmp_path / "oracle"
    assert sc(root, "install", "--name", "web", layout(tmp_path)) == 0
    base = root / "var/lib/syscontainers"
    slot = base / "containers/web.0"
    assert (base / "store").is_dir() and (slot / "rootfs/var/www/index.html").is_file()
    unit = (root / "etc/systemd/system/web.service").read_text()
    config = (slot / "config.json").read_text()
    assert "WorkingDirectory=/var/lib/syscontainers/containers/web.0\n" in unit
    assert "ExecStart=/usr/sbin/runc run 'web'" in unit
    for text in (unit, config, (root / "etc/tmpfiles.d/web.conf").read_text()):
        assert str(root) not in text
    assert (root / "etc/web/app.conf").is_file()  # the host files, under DIR
    # the links are those systemctl --root enable makes for the same unit file
    shutil.copytree(root / "etc", oracle / "etc", symlinks=True)
    unitlinks.disable(Paths.in_sysroot(oracle), ["web.service"])
    assert links(oracle) == {}
    subprocess.run(
        ["systemctl", f"--root={oracle}", "enable", "web.service"], check=True, capture_output=True
    )
    wants = "etc/systemd/system/multi-user.target.wants/web.service"
    assert links(root) == links(oracle) == {wants: "/etc/systemd/system/web.service"}


def test_update_rollback_list_and_uninstall_in_a_sysroot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_root(tmp_path)
    source = layout(tmp_path)
    assert sc(root, "install", "--name", "web", source) == 0
    assert sc(root, "update", "web", "--set", "PORT=9000") == 0
    unit = (root / "etc/systemd/system/web.service").read_text()
    assert "port 9000" in unit
    assert "WorkingDirectory=/var/lib/syscontainers/containers/web.1" in unit
    capsys.readouterr()
    assert sc(root, "list", "--json") == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["deployment"], row["state"], row["previous"]) == ("web.1", "inactive", "web.0")
    assert sc(root, "rollback", "web") == 0
    assert "port 8080" in (root / "etc/systemd/system/web.service").read_text()
    assert sc(root, "uninstall", "web") == 0
    assert not (root / "etc/systemd/system/web.service").exists()
    assert links(root) == {} and not (root / "etc/web/app.conf").exists()
    assert os.listdir(root / "var/lib/syscontainers/containers") == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["install", "--now", "--name", "web", "IMAGE"], "--now cannot start anything"),
        (["run", "web"], "run cannot work on an offline root"),
        (["mount", "x", "/mnt"], "mount cannot work on an offline root"),
    ],
)
def test_what_cannot_work_offline_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    root = make_root(tmp_path)
    argv = [layout(tmp_path) if a == "IMAGE" else a for a in argv]
    assert sc(root, *argv) == 2
    assert message in capsys.readouterr().err
    assert not (root / "etc/systemd").exists()


def test_a_missing_sysroot_or_runtime_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["--sysroot", str(tmp_path / "nope"), "list"]) == 2
    assert "no such directory" in capsys.readouterr().err
    root = make_root(tmp_path)
    (root / "usr/sbin/runc").unlink()
    assert sc(root, "install", "--name", "web", layout(tmp_path)) == 2
    assert "runtime 'runc' was not found" in capsys.readouterr().err
    assert sc(root, "install", "--name", "web", "--runtime", "/usr/bin/crun", layout(tmp_path)) == 2
    assert "runtime /usr/bin/crun is not an executable" in capsys.readouterr().err


def test_name_checks_look_in_the_sysroot_not_on_this_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_root(tmp_path)
    source = layout(tmp_path)
    on_this_host = next(
        (
            p.name
            for d in ("/usr/lib/systemd/system", "/lib/systemd/system")
            for p in sorted(Path(d).glob("*.service"))
            if "@" not in p.name
        ),
        None,
    )
    if on_this_host is not None:  # this machine's unit is not the offline root's
        name = on_this_host.removesuffix(".service")
        assert sc(root, "install", "--name", name, source) == 0, capsys.readouterr().err
    lib = root / "usr/lib/systemd/system"
    lib.mkdir(parents=True)
    (lib / "sshd.service").write_text("[Service]\nExecStart=/usr/sbin/sshd\n")
    (root / "usr/lib/tmpfiles.d").mkdir(parents=True)
    (root / "usr/lib/tmpfiles.d/journal.conf").write_text("d /var/log/journal\n")
    capsys.readouterr()
    assert sc(root, "install", "--name", "sshd", source) == 1
    assert f"{lib}/sshd.service exist" in capsys.readouterr().err
    assert sc(root, "install", "--name", "journal", source) == 1
    assert "journal.conf" in capsys.readouterr().err


def test_a_rootfs_is_the_booted_roots_path(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    (root / "srv/app/etc").mkdir(parents=True)
    (root / "srv/app/etc/passwd").write_text("root:x:0:0::/:/bin/sh\n")
    assert sc(root, "install", "--name", "web", "--rootfs", "/srv/app", layout(tmp_path)) == 0
    rootfs = root / "var/lib/syscontainers/containers/web.0/rootfs"
    assert os.readlink(rootfs) == "/srv/app"
    assert sc(root, "install", "--name", "w2", "--rootfs", "/srv/none", layout(tmp_path)) == 2


WRITES = (
    "open",
    "openat",
    "creat",
    "mkdir",
    "mkdirat",
    "rename",
    "renameat",
    "renameat2",
    "unlink",
    "unlinkat",
    "rmdir",
    "symlink",
    "symlinkat",
    "link",
    "linkat",
    "chmod",
    "fchmodat",
    "truncate",
    "utimensat",
    "mknodat",
    "connect",
)
_CALL = re.compile(r"^(?:\d+ +)?(\w+)\((.*)\) += (-?\d+)")
_ARG = re.compile(r'(?:\d+<([^>]*)>, )?"((?:[^"\\]|\\.)*)"')


def written_paths(trace: str) -> set[str]:
    """The paths the traced process wrote (or connected to), from strace -f -y output."""
    out = set()
    for line in trace.splitlines():
        match = _CALL.match(line)
        if match is None or int(match.group(3)) < 0 or match.group(1) not in WRITES:
            continue
        call, args = match.group(1), match.group(2)
        if call in ("open", "openat") and not re.search(r"O_WRONLY|O_RDWR|O_CREAT", args):
            continue
        found = _ARG.findall(args)
        if call in ("symlink", "symlinkat"):
            found = found[1:]  # the first is the link's target text, not a path written
        for base, path in found:
            out.add(os.path.normpath(os.path.join(base or "/", path)))
    return out


@requires("strace")
def test_nothing_is_written_outside_the_sysroot(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    source = layout(tmp_path)
    manifest = tmp_path / "host.yaml"
    manifest.write_text(f"containers:\n  app:\n    image: {source}\n")
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    steps = [
        ["install", "--name", "web", source],
        ["update", "web", "--set", "PORT=1"],
        ["rollback", "web"],
        ["list"],
        ["apply", str(manifest)],
        ["uninstall", "web"],
    ]
    for step in steps:
        trace = tmp_path / "trace"
        done = subprocess.run(
            [
                "strace",
                "-f",
                "-qq",
                "-y",
                "-s",
                "4096",
                "-o",
                str(trace),
                "-e",
                f"trace={','.join(WRITES)}",
                sys.executable,
                "-m",
                "syscontainers",
                "--sysroot",
                str(root),
                *step,
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        written = written_paths(trace.read_text())
        assert written, "the trace shows no writes at all: the parser is broken"
        outside = {p for p in written if not p.startswith(f"{root}/") and p != "/dev/null"}
        assert outside == set(), step
