"""The Debian 12 root the provisioning tests install into and boot: cached, copied per test.

``mmdebstrap --variant=minbase`` with systemd (as init), dbus, runc and the Python
packages syscontainers needs, so that ``syscontainers-apply.service`` can run the
repository's CLI inside. Made once (about a minute, needs the Debian mirror) by
tests/packaging/debroot.py under its cache, keyed by this package list.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.packaging.debroot import debroot

PACKAGES = [
    "systemd",
    "systemd-sysv",
    "dbus",
    "runc",
    "python3",
    "python3-dbus-next",
    "python3-yaml",
    "python3-jinja2",
    "python3-requests",
    "python3-zstandard",
]
PREFIX = "bookworm-provision-"


def provision_root(dest: Path) -> Path | str:
    """A fresh copy of the cached root at DEST, or why the root cannot be made here."""
    cached = debroot(PACKAGES, base=(), prefix=PREFIX)
    if isinstance(cached, str):
        return cached
    done = subprocess.run(
        ["cp", "-a", "--reflink=auto", str(cached), str(dest)], capture_output=True, text=True
    )
    if done.returncode != 0:
        return f"cannot copy {cached}: {done.stderr.strip()}"
    return dest
