"""Tests for syscontainers.deploy.hostfiles: staging and safe host-side file work."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from syscontainers.deploy import hostfiles
from syscontainers.deploy.hostfiles import HostFileSource
from syscontainers.deploy.layout import HostDirRecord
from syscontainers.errors import CheckoutError


def test_host_directories_are_the_hostfs_dirs_and_every_parent() -> None:
    got = hostfiles.host_directories(
        ["/etc/app/a.conf", "/usr/bin/x"], {"/etc/flanneld": 0o700, "/var/lib/snmp": 0o750}
    )
    assert [(d.path, d.mode) for d in got] == [
        ("/etc", 0o755),
        ("/etc/app", 0o755),
        ("/etc/flanneld", 0o700),
        ("/usr", 0o755),
        ("/usr/bin", 0o755),
        ("/var", 0o755),
        ("/var/lib", 0o755),
        ("/var/lib/snmp", 0o750),
    ]


def test_make_dir_sets_the_mode_despite_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        hostfiles.make_dir(tmp_path, HostDirRecord("/etc/flanneld", 0o755))
    finally:
        os.umask(old)
    assert (tmp_path / "etc/flanneld").stat().st_mode & 0o7777 == 0o755
    assert hostfiles.current_checksum(tmp_path, "/etc/flanneld") == hostfiles.IS_DIR


def test_check_writable_names_the_directory_that_is_not(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    hostfiles.check_writable(tmp_path, ["/etc/app/a.conf", "/usr/bin/x"])
    if os.geteuid() != 0:  # root may write anywhere its file system lets it
        (tmp_path / "etc").chmod(0o555)
        with pytest.raises(CheckoutError, match="/etc is not writable"):
            hostfiles.check_writable(tmp_path, ["/etc/app/a.conf"])


def test_host_files_install_check_and_remove(tmp_path: Path) -> None:
    root, stage = tmp_path / "host", tmp_path / "stage"
    root.mkdir()
    recs = [
        hostfiles.stage(stage, HostFileSource("/etc/app/a.conf", "hostfs/x", 0o640, b"abc")),
        hostfiles.stage(stage, HostFileSource("/usr/bin/app", "hostfs/y", target="../lib/app")),
    ]
    assert recs[0].sha256 == hostfiles.sha256_hex(b"abc") and recs[1].symlink
    made: list[str] = []
    for r in recs:
        made += hostfiles.install_file(root, stage, r)
    assert sorted(made) == ["/etc", "/etc/app", "/usr", "/usr/bin"]
    assert (root / "etc/app/a.conf").stat().st_mode & 0o777 == 0o640
    assert os.readlink(root / "usr/bin/app") == "../lib/app"
    sums = hostfiles.checksums(root, [r.path for r in recs])
    assert sums == {r.path: r.sha256 for r in recs}
    for r in recs:
        hostfiles.remove_file(root, r.path)
    hostfiles.remove_empty_dirs(root, made)
    assert list(root.iterdir()) == []


def test_symlinked_parent_is_refused_everywhere(tmp_path: Path) -> None:
    root, outside = tmp_path / "host", tmp_path / "outside"
    (root / "etc").mkdir(parents=True)
    outside.mkdir()
    (outside / "app.conf").write_text("secret")
    (root / "etc/app").symlink_to(outside)
    rec_ = hostfiles.stage(
        tmp_path / "stage", HostFileSource("/etc/app/app.conf", "s", content=b"x")
    )
    for action in (
        lambda: hostfiles.current_checksum(root, "/etc/app/app.conf"),
        lambda: hostfiles.install_file(root, tmp_path / "stage", rec_),
        lambda: hostfiles.remove_file(root, "/etc/app/app.conf"),
    ):
        with pytest.raises(CheckoutError, match="symlink"):
            action()
    assert (outside / "app.conf").read_text() == "secret"
    assert hostfiles.checksums(root, ["/etc/app/app.conf"], strict=False) == {
        "/etc/app/app.conf": hostfiles.NOT_A_FILE
    }


@pytest.mark.parametrize("dest", ["relative", "/a/../b", "/a//b", "/a/./b"])
def test_unclean_destinations_are_refused(tmp_path: Path, dest: str) -> None:
    with pytest.raises(CheckoutError):
        hostfiles.current_checksum(tmp_path, dest)
