"""Fixtures shared by unit test modules (the suite-wide ones are in tests/conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No /etc config, no SYSCONTAINERS_* from the caller, and an unreachable system bus."""
    empty = tmp_path / "empty-config.yaml"
    empty.write_text("")
    for key in [k for k in os.environ if k.startswith("SYSCONTAINERS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("SYSCONTAINERS_CONFIG", str(empty))
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path}/no-bus")
