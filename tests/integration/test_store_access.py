"""Integration: what an unprivileged local user can do to a root store, its checkouts and mounts.

A hostile image carries a setuid-root copy of id(1), a world-writable file and a world-
readable device node. The store is real (pulled as root), the deployment is a real
install (systemd faked: only its unit calls), the mount is a real bind mount, and the
"user" is a real process with uid and gid 65534 and no groups (setpriv). The base
directory is reachable by that user, as /var/lib is.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from syscontainers import cli, process
from syscontainers.deploy.layout import read_info
from syscontainers.mount import MOUNTINFO, mount_points
from syscontainers.operations.containers import one_off_bundle
from syscontainers.operations.install import InstallRequest, install
from syscontainers.paths import Paths
from syscontainers.process import Result
from syscontainers.progress import RecordingReporter
from syscontainers.store import Store
from tests.fakes import FakeUnitManager
from tests.imagebuild import BUSYBOX, write_oci_layout
from tests.unit.lifecycle_fixtures import Env, RecordingTmpfiles

pytestmark = pytest.mark.root

NOBODY = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")
ID = Path("/usr/bin/id")
IMAGE = "localhost/hostile:1"
SUID, SHARED, DEVICE = "usr/bin/suid-id", "etc/shared", "dev/zero-node"


def as_nobody(*argv: str) -> Result:
    """Run ARGV as uid/gid 65534 without supplementary groups. A shell that already runs as
    that user execs it: setpriv keeps root's capabilities until its own execve, so a path it
    execs itself passes 0700 directories that the user cannot even stat."""
    return process.run(
        [*NOBODY, "/bin/sh", "-c", 'exec "$@"', "sh", *argv], check=False, timeout=30
    )


def nobody_can_open_for_writing(path: Path) -> bool:
    # ": >>" opens with O_WRONLY|O_APPEND and writes nothing
    return as_nobody("sh", "-c", ': >> "$1"', "sh", str(path)).returncode == 0


def nobody_runs_as_root(path: Path) -> bool:
    """True if running PATH (a setuid-root id) gives user 65534 effective uid 0."""
    out = as_nobody(str(path))
    return out.returncode == 0 and "euid=0" in out.stdout


def _member(
    path: str,
    mode: int,
    data: bytes = b"",
    kind: bytes = tarfile.REGTYPE,
    dev: tuple[int, int] = (0, 0),
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(path)
    info.type, info.mode, info.size, info.mtime = kind, mode, len(data), 1_700_000_000
    info.devmajor, info.devminor = dev
    return info, data


def hostile_layer() -> bytes:
    """busybox, a setuid-root id, a world-writable file and a 0666 /dev/zero node."""
    members = [
        _member("bin", 0o755, kind=tarfile.DIRTYPE),
        _member("bin/busybox", 0o755, BUSYBOX.read_bytes()),
        _member("dev", 0o755, kind=tarfile.DIRTYPE),
        _member(DEVICE, 0o666, kind=tarfile.CHRTYPE, dev=(1, 5)),
        _member("etc", 0o755, kind=tarfile.DIRTYPE),
        _member(SHARED, 0o666, b"original\n"),
        _member("usr", 0o755, kind=tarfile.DIRTYPE),
        _member("usr/bin", 0o755, kind=tarfile.DIRTYPE),
        _member(SUID, 0o4755, ID.read_bytes()),
    ]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


@dataclass
class World:
    base: Path
    paths: Paths
    store: Store
    env: Env

    def cli(self, *argv: str) -> int:
        return cli.main(["--root", str(self.paths.root), "-q", *argv])

    def objects_of(self, path: str) -> Path:
        """The store object that the image's file PATH is a hardlink of."""
        ino = os.stat(self.rootfs / path).st_ino
        for sub in self.store.objects_dir.iterdir():
            for obj in sub.iterdir():
                if obj.lstat().st_ino == ino:
                    return obj
        raise AssertionError(f"no object for {path}")

    @property
    def rootfs(self) -> Path:
        return self.paths.deployments / "app.0" / "rootfs"

    def mount_backing(self) -> Path:
        (digest,) = [d for d in os.listdir(self.paths.mounts) if not d.endswith(".json")]
        return self.paths.mounts / digest / "rootfs"


def _probe() -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None or not BUSYBOX.exists():
        pytest.skip("needs root, setpriv and busybox-static")
    if as_nobody("true").returncode != 0:
        pytest.skip("cannot run a process as uid 65534 here")


@pytest.fixture
def world() -> Iterator[World]:
    _probe()
    base = Path(tempfile.mkdtemp(prefix="sc-access-", dir="/var/tmp"))
    base.chmod(0o755)  # reachable by every user, like /var/lib
    paths = Paths(
        root=base / "root",
        unit_dir=base / "units",
        tmpfiles_dir=base / "tmpfiles",
        host_root=base / "host",
    )
    for d in (paths.unit_dir, paths.tmpfiles_dir, paths.host_root):
        d.mkdir()
    store = Store(paths.store)
    assert store.privileged
    env = Env(
        base,
        paths,
        store,
        FakeUnitManager(paths.unit_dir),
        RecordingTmpfiles(),
        RecordingReporter(),
    )
    config = {"config": {"User": "65534:65534", "Cmd": ["/bin/busybox", "cat", "/etc/shared"]}}
    write_oci_layout(base / "layout", [hostile_layer()], "v1", config=config)
    w = World(base, paths, store, env)
    try:
        assert w.cli("pull", f"oci:{base / 'layout'}:v1", "--name", IMAGE) == 0
        install(env.host, InstallRequest(IMAGE, name="app"))
        (base / "view").mkdir()
        assert w.cli("mount", IMAGE, str(base / "view")) == 0
        yield w
    finally:
        for point in sorted(mount_points(MOUNTINFO.read_text()), reverse=True):
            if point.startswith(str(base)):
                process.run(["umount", point], check=False)
        shutil.rmtree(base)


def test_the_image_really_is_hostile(world: World) -> None:
    """The checkout holds what the attacks need: a setuid-root id, a 0666 file and device."""
    st = os.stat(world.rootfs / SUID)
    assert st.st_uid == 0 and st.st_mode & stat.S_ISUID
    assert os.stat(world.rootfs / SHARED).st_mode & 0o777 == 0o666
    assert stat.S_ISCHR(os.lstat(world.rootfs / DEVICE).st_mode)
    assert world.objects_of(SUID).name.endswith(".4755.0.0")


def test_no_local_user_reaches_the_store_deployments_or_mount_checkouts(world: World) -> None:
    targets = [
        world.objects_of(SUID),  # store/objects/XX/…
        world.rootfs / SUID,  # containers/app.0/rootfs/…
        world.mount_backing() / SUID,  # mounts/HEX/rootfs/…
    ]
    for path in targets:
        assert not nobody_runs_as_root(path), path
        assert as_nobody("stat", str(path)).returncode != 0, path
    for path in (world.objects_of(SHARED), world.rootfs / SHARED, world.mount_backing() / SHARED):
        assert not nobody_can_open_for_writing(path), path
    for d in (world.paths.store, world.paths.deployments, world.paths.mounts):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
    # the root itself stays reachable: the protection is the private directories below it
    assert as_nobody("ls", str(world.paths.root)).returncode == 0


def test_a_store_made_by_an_older_version_is_tightened_by_the_next_write(world: World) -> None:
    """Older versions made these directories 0755: the attacks then work (shown here), until
    the next command that takes the store's write lock."""
    for d in (
        world.paths.store,
        world.store.objects_dir,
        world.paths.deployments,
        world.paths.mounts,
    ):
        d.chmod(0o755)
    obj = world.objects_of(SUID)
    assert nobody_runs_as_root(obj)  # the attack, on the real store
    assert nobody_runs_as_root(world.rootfs / SUID)
    assert nobody_can_open_for_writing(world.objects_of(SHARED))

    assert world.cli("images", "tag", IMAGE, "localhost/hostile:2") == 0  # any writer
    assert not nobody_runs_as_root(obj)
    assert not nobody_runs_as_root(world.rootfs / SUID)
    assert not nobody_can_open_for_writing(world.objects_of(SHARED))
    assert stat.S_IMODE(world.store.objects_dir.stat().st_mode) == 0o700


def test_the_mount_view_runs_nothing_setuid_opens_no_device_and_is_read_only(
    world: World,
) -> None:
    view = world.base / "view"
    assert as_nobody("cat", str(view / SHARED)).stdout == "original\n"  # a scanner can read
    assert not nobody_runs_as_root(view / SUID)
    ran = as_nobody(str(view / SUID))
    assert ran.returncode != 0 and "ermission denied" in ran.stderr  # noexec
    read = as_nobody("head", "-c", "4", str(view / DEVICE))
    assert read.returncode != 0 and "ermission denied" in read.stderr  # nodev
    assert not nobody_can_open_for_writing(view / SHARED)
    assert {"ro", "nosuid", "nodev", "noexec"} <= _mount_options(view)
    # a second mount of the same image is bound from the same restricted checkout
    (world.base / "view2").mkdir()
    assert world.cli("mount", IMAGE, str(world.base / "view2")) == 0
    assert {"ro", "nosuid", "nodev", "noexec"} <= _mount_options(world.base / "view2")
    assert world.cli("umount", str(view)) == 0
    assert world.cli("umount", str(world.base / "view2")) == 0
    assert not [p for p in mount_points(MOUNTINFO.read_text()) if p.startswith(str(world.base))]
    assert os.listdir(world.paths.mounts) == []


def test_the_container_still_sees_its_files_as_a_non_root_user(world: World) -> None:
    """The private directories are above the rootfs: a container's root is its rootfs, so
    even its uid 65534 process reads /etc/shared (runc itself runs as root)."""
    runc = shutil.which("runc")
    if runc is None:
        pytest.skip("runc is not installed")
    info = read_info(world.paths.deployments / "app.0")
    assert info is not None
    bundle = one_off_bundle(world.env.host.container("app"), info, (), tty=False)
    config = json.loads((bundle / "config.json").read_text())
    assert config["process"]["user"]["uid"] == 65534
    state = world.base / "runc-state"
    argv = [runc, "--root", str(state), "run", "--bundle", str(bundle), "sc-access-test"]
    try:
        result = process.run(argv, check=False, timeout=60)
    finally:
        process.run([runc, "--root", str(state), "delete", "-f", "sc-access-test"], check=False)
    if result.returncode != 0 and "original" not in result.stdout:
        pytest.skip(f"runc cannot run containers here: {result.stderr.strip()[-200:]}")
    assert result.stdout == "original\n"


def _mount_options(path: Path) -> set[str]:
    for line in MOUNTINFO.read_text().splitlines():
        fields = line.split(" ")
        if fields[4] == str(path):
            return set(fields[5].split(","))
    raise AssertionError(f"{path} is not mounted")


def test_a_quarantined_setuid_object_is_out_of_reach_too(world: World) -> None:
    obj = world.objects_of(SUID)
    with open(obj, "ab") as f:  # damaged in place (root keeps the setuid bit: CAP_FSETID)
        f.write(b"\0")
    assert os.stat(obj).st_mode & stat.S_ISUID
    assert world.cli("images", "verify") == 1
    (moved,) = (world.paths.store / "quarantine").iterdir()
    assert moved.name.startswith(obj.name) and moved.stat().st_mode & stat.S_ISUID
    assert not nobody_runs_as_root(moved)
    assert as_nobody("stat", str(moved)).returncode != 0
    assert stat.S_IMODE(moved.parent.stat().st_mode) == 0o700
