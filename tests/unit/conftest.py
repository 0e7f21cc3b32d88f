"""Fixtures shared by unit test modules (the suite-wide ones are in tests/conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep /etc, ~/.config and the caller's SYSCONTAINERS_* out of the test."""
    empty = tmp_path / "empty-config.yaml"
    empty.write_text("")
    for key in [k for k in os.environ if k.startswith("SYSCONTAINERS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("SYSCONTAINERS_CONFIG", str(empty))


@pytest.fixture
def isolated(isolated_settings: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Isolated settings, and an unreachable system bus."""
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path}/no-bus")
