"""Host files on a read-only directory: a real read-only bind mount of the host root's /usr.

Installing an image whose host files go to /usr/local/bin used to end in "unexpected
OSError … report a bug" after some files were already written; it must stop before
anything is written, with an error that names the directory and says why.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from syscontainers.errors import CommandError, FilesystemError
from syscontainers.operations.containers import uninstall
from syscontainers.operations.install import InstallRequest, install
from syscontainers.process import run
from tests.unit.lifecycle_fixtures import Env

pytestmark = pytest.mark.root


@pytest.fixture
def read_only_usr(env: Env) -> Iterator[Path]:
    """The test host root's /usr/local/bin, on a read-only bind mount of its /usr."""
    usr = env.on_host("/usr")
    (usr / "local/bin").mkdir(parents=True)
    try:
        run(["mount", "--bind", str(usr), str(usr)])
    except CommandError:
        pytest.skip("bind mounts are not permitted here")
    try:
        run(["mount", "-o", "remount,bind,ro", str(usr)])
        yield usr / "local/bin"
    finally:
        run(["umount", str(usr)], check=False)


def host_tree(env: Env) -> list[str]:
    return sorted(str(p.relative_to(env.paths.host_root)) for p in env.paths.host_root.rglob("*"))


def test_a_read_only_host_directory_is_named_before_anything_is_written(
    env: Env, atomic_image: str, read_only_usr: Path
) -> None:
    before = host_tree(env)
    with pytest.raises(FilesystemError) as info:
        install(env.host, InstallRequest(atomic_image, name="web"))
    assert "/usr/local/bin/webctl" in info.value.message
    assert "/usr/local/bin is on a read-only file system" in info.value.message
    assert info.value.hint and "read-write" in info.value.hint
    assert host_tree(env) == before, "host files were written before the error"
    assert list(env.dep().iterdir()) == [] and list(env.paths.unit_dir.iterdir()) == []
    assert env.store.pins() == {}
    run(["umount", str(env.on_host("/usr"))])
    install(env.host, InstallRequest(atomic_image, name="web"))  # writable again: it works
    assert env.on_host("/usr/local/bin/webctl").exists()
    uninstall(env.host, "web")
