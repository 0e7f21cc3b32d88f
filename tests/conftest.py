"""Suite-wide setup: the CLI's trust policy is an accept-anything policy from tests/data, so that
tests (and the commands they run) do not depend on the machine's /etc/containers/policy.json.
The trust tests pass their own policies."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ACCEPT_ANYTHING = Path(__file__).resolve().parent / "data" / "accept-anything-policy.json"


def pytest_configure(config: pytest.Config) -> None:
    os.environ["SYSCONTAINERS_POLICY"] = str(ACCEPT_ANYTHING)
