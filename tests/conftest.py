"""Suite-wide setup and fixtures.

The CLI's trust policy is an accept-anything policy from tests/data, so that tests (and the
commands they run) do not depend on the machine's /etc/containers/policy.json; the trust tests
pass their own policies. The fixtures used across directories are here: ``store`` (an empty
store; other variants are built with tests/unit/store_fixtures.py's new_store) and those of the
lifecycle tests (``env``, ``atomic_image``, ``plain_image``; see tests/unit/lifecycle_fixtures.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from syscontainers.paths import Paths
from syscontainers.progress import RecordingReporter
from syscontainers.store import Store
from tests.fakes import FakeUnitManager
from tests.unit.lifecycle_fixtures import (
    PLAIN_CONFIG,
    Env,
    RecordingTmpfiles,
    atomic_files,
    plain_files,
)
from tests.unit.store_fixtures import new_store

ACCEPT_ANYTHING = Path(__file__).resolve().parent / "data" / "accept-anything-policy.json"


def pytest_configure(config: pytest.Config) -> None:
    os.environ["SYSCONTAINERS_POLICY"] = str(ACCEPT_ANYTHING)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """An empty unprivileged store at tmp_path/store, its layout made (new_store)."""
    return new_store(tmp_path)


@pytest.fixture
def env(tmp_path: Path) -> Env:
    """A fresh world under tmp_path."""
    paths = Paths(
        root=tmp_path / "root",
        unit_dir=tmp_path / "etc" / "systemd" / "system",
        tmpfiles_dir=tmp_path / "etc" / "tmpfiles.d",
        host_root=tmp_path / "host",
        system_unit_dirs=(tmp_path / "lib" / "systemd" / "system",),
        system_tmpfiles_dirs=(tmp_path / "lib" / "tmpfiles.d",),
    )
    for d in (paths.unit_dir, paths.tmpfiles_dir, paths.host_root):
        d.mkdir(parents=True)
    store = Store(paths.store, privileged=False)
    return Env(
        tmp_path,
        paths,
        store,
        FakeUnitManager(paths.unit_dir),
        RecordingTmpfiles(),
        RecordingReporter(),
    )


@pytest.fixture
def atomic_image(env: Env) -> str:
    """The atomic-contract image, stored as example.org/app:1; returns that name."""
    env.pull(env.layout("app1", atomic_files("1")), "example.org/app:1")
    return "example.org/app:1"


@pytest.fixture
def plain_image(env: Env) -> str:
    """The plain image, stored as example.org/plain:latest; returns its name."""
    env.pull(env.layout("plain", plain_files(), config=PLAIN_CONFIG), "example.org/plain:latest")
    return "example.org/plain:latest"
