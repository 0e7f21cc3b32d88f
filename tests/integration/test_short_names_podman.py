"""short-name-mode with several unqualified-search-registries, with podman as the oracle (skopeo
does not resolve short names): both read the same ~/.config/containers/registries.conf, have no
TTY, and pull the same short name from real registries on loopback."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest_registry import (
    PlainRegistry,
    Registry,
    registry_server,
    requires_registry,
)
from tests.integration.parity_box import Box, make_box

pytestmark = [
    *requires_registry,
    pytest.mark.skipif(shutil.which("podman") is None, reason="needs podman (the oracle)"),
]
SHORT = "test/busybox:1"  # only in the plain registry


@pytest.fixture(scope="module")
def empty_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry without any image: every candidate on it is 'not found'."""
    with registry_server(tmp_path_factory.mktemp("empty-registry")) as registry:
        yield registry


@pytest.fixture
def box(tmp_path: Path, plain_registry: PlainRegistry) -> Iterator[Box]:
    box = make_box(tmp_path, plain_registry.host)
    runroot = Path(tempfile.mkdtemp(prefix="scp-"))  # podman wants a runroot under 50 chars
    (box.root / "podman-run").symlink_to(runroot)
    try:
        yield box
    finally:
        shutil.rmtree(runroot, ignore_errors=True)


def configure(box: Box, search: list[str], extra: str = "") -> None:
    """The user's registries.conf: SEARCH in order, every registry plain HTTP, then EXTRA."""
    lines = [f"unqualified-search-registries = {search!r}".replace("'", '"'), extra]
    lines += [f'[[registry]]\nlocation = "{host}"\ninsecure = true' for host in search]
    box.write("home/.config/containers/registries.conf", "\n".join(lines) + "\n")


def podman(box: Box, *args: str) -> subprocess.CompletedProcess[str]:
    runroot = (box.root / "podman-run").resolve()
    storage = ("--root", str(box.root / "podman"), "--runroot", str(runroot))
    options = ("--storage-driver", "vfs", "--events-backend", "none",
               "--cgroup-manager", "cgroupfs")  # fmt: skip
    return subprocess.run(
        ["podman", *storage, *options, *args],
        env=box.env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )


def pulled_from(box: Box, expect: str | None) -> subprocess.CompletedProcess[str]:
    """Both pull SHORT, and store it under EXPECT/test/busybox (or both fail, for None)."""
    oracle = podman(box, "pull", "-q", SHORT)
    assert (oracle.returncode == 0) is (expect is not None), f"podman: {oracle.stderr}"
    ours = box.ours("pull", SHORT)
    assert (ours.returncode == 0) is (expect is not None), ours.stderr
    if expect is not None:
        listed = podman(box, "images", "--format", "{{.Repository}}:{{.Tag}}").stdout
        assert listed.split() == [f"{expect}/{SHORT}"]
        rows = [line.split()[:2] for line in box.ours("images", "list").stdout.splitlines()]
        assert rows[1:] == [[f"{expect}/test/busybox", "1"]]
    return ours


def test_enforcing_with_several_search_registries_and_no_tty_fails(
    box: Box, empty_registry: Registry
) -> None:
    configure(box, [empty_registry.host, box.host], 'short-name-mode = "enforcing"')
    ours = pulled_from(box, None)
    assert "ambiguous" in ours.stderr and "short-name-mode is enforcing" in ours.stderr
    assert "hint:" in ours.stderr and "permissive" in ours.stderr
    assert ours.returncode == 2


def test_an_unset_mode_is_enforcing_here_and_permissive_in_podman(
    box: Box, empty_registry: Registry
) -> None:
    """A deliberate difference (README): containers/image defaults to permissive."""
    configure(box, [empty_registry.host, box.host])
    assert podman(box, "pull", "-q", SHORT).returncode == 0
    ours = box.ours("pull", SHORT)
    assert ours.returncode == 2 and "ambiguous" in ours.stderr


@pytest.mark.parametrize("mode", ["permissive", "disabled"])
def test_permissive_and_disabled_try_each_in_order(
    box: Box, empty_registry: Registry, mode: str
) -> None:
    configure(box, [empty_registry.host, box.host], f'short-name-mode = "{mode}"')
    pulled_from(box, box.host)


def test_the_first_candidate_that_has_it_wins(box: Box, empty_registry: Registry) -> None:
    configure(box, [box.host, empty_registry.host], 'short-name-mode = "permissive"')
    pulled_from(box, box.host)


def test_an_alias_wins_even_when_enforcing(box: Box, empty_registry: Registry) -> None:
    alias = f'[aliases]\n"test/busybox" = "{box.host}/test/busybox"'
    configure(box, [empty_registry.host, box.host], alias)
    pulled_from(box, box.host)


def test_no_candidate_has_it(box: Box, empty_registry: Registry) -> None:
    configure(box, [empty_registry.host], 'short-name-mode = "permissive"')
    ours = pulled_from(box, None)
    assert f"{empty_registry.host}/{SHORT}" in ours.stderr
