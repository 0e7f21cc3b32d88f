"""A store on a full filesystem: a small tmpfs (size= and nr_inodes=) as the store root.

A pull that runs out of space or inodes must end in an error that says so, with a hint (it
used to end in "unexpected OSError … report a bug"), and leave a store that ``images verify``
passes, with nothing half-written; once there is room, the same pull completes it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from syscontainers import cli
from syscontainers.errors import CommandError
from syscontainers.process import run
from tests.imagebuild import layer_tar, write_oci_layout

pytestmark = pytest.mark.root


def mount_tmpfs(target: Path, options: str) -> bool:
    """Mount a tmpfs with OPTIONS at TARGET; False where mounting is not permitted."""
    target.mkdir(parents=True, exist_ok=True)
    try:
        run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)])
    except CommandError:
        return False
    return True


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A directory where each test mounts its own small tmpfs, unmounted afterwards."""
    mnt = tmp_path / "mnt"
    if not mount_tmpfs(mnt, "size=1m"):
        pytest.skip("mounting a tmpfs is not permitted here")
    run(["umount", str(mnt)])
    yield mnt
    run(["umount", str(mnt)], check=False)


@pytest.fixture
def images(tmp_path: Path) -> Path:
    """test:big (one 6 MiB file) and test:many (1,500 small distinct files), as OCI layouts."""
    big = layer_tar({"bin/sh": b"#!\n", "data/big": os.urandom(6 << 20)})
    many = layer_tar({f"d/f{i:04}": f"file {i}\n".encode() for i in range(1500)})
    write_oci_layout(tmp_path / "layout", [big], "big")
    write_oci_layout(tmp_path / "layout", [many], "many")
    return tmp_path / "layout"


def cli_run(root: Path, *argv: str) -> int:
    return cli.main(["--root", str(root), "-q", *argv])


@pytest.mark.parametrize(
    ("options", "tag", "words"),
    [
        ("size=3m,nr_inodes=2000", "big", ("no space left", "df -h")),
        ("size=64m,nr_inodes=900", "many", ("no free inodes", "df -i")),
    ],
)
def test_a_full_filesystem_is_a_clear_error_and_leaves_the_store_sound(
    small_fs: Path,
    images: Path,
    capsys: pytest.CaptureFixture[str],
    options: str,
    tag: str,
    words: tuple[str, ...],
) -> None:
    assert mount_tmpfs(small_fs, options)
    root = small_fs / "root"
    code = cli_run(
        root, "pull", f"oci:{images}:{tag}", "--name", f"test:{tag}", "--insecure-policy"
    )
    err = capsys.readouterr().err
    assert code == 1, err
    assert "unexpected" not in err and "report a bug" not in err, err
    assert err.startswith("error: ") and "\nhint: " in err, err
    assert str(root / "store") in err, err
    for word in words:
        assert word in err, err

    assert cli_run(root, "images", "verify") == 0, capsys.readouterr()
    assert cli_run(root, "images", "list", "--json") == 0
    assert '"test:' not in capsys.readouterr().out  # nothing was tagged

    # with room again (a remount keeps the files), the same pull completes what was stored
    run(["mount", "-o", "remount,size=64m,nr_inodes=20000", str(small_fs)])
    assert (
        cli_run(root, "pull", f"oci:{images}:{tag}", "--name", f"test:{tag}", "--insecure-policy")
        == 0
    ), capsys.readouterr().err
    assert cli_run(root, "images", "verify") == 0


def test_any_verb_that_hits_a_full_filesystem_says_so(
    small_fs: Path, images: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A write no operation wraps itself (here the ref 'images tag' writes) still ends in an
    error that names the full filesystem, not in the last-resort handler."""
    assert mount_tmpfs(small_fs, "size=64m,nr_inodes=20000")
    root = small_fs / "root"
    assert (
        cli_run(root, "pull", f"oci:{images}:big", "--name", "test:big", "--insecure-policy") == 0
    )
    free = os.statvfs(small_fs).f_favail
    run(["mount", "-o", f"remount,nr_inodes={20000 - free}", str(small_fs)])
    assert os.statvfs(small_fs).f_favail == 0
    capsys.readouterr()
    assert cli_run(root, "images", "tag", "test:big", "test:other") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the filesystem that holds ") and "no free inodes" in err, err
    assert "\nhint: " in err and "df -i" in err, err
    assert "unexpected" not in err
    assert cli_run(root, "images", "verify") == 0
