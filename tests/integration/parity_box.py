"""A sandbox in which skopeo (the oracle) and syscontainers run with the same containers config.

``make_box(tmp_path, host)`` gives each test its own HOME, XDG_RUNTIME_DIR, PATH
(``tmp/bin`` first, for credential helpers) and store. ``Box.run(tool, ...)``
runs ``skopeo`` or our CLI (``"ours"``) with that environment; with
``Box.private_etc()`` both run in a private mount namespace where
``/etc/containers`` and ``/etc/docker`` are ``tmp/etc/containers`` and
``tmp/etc/docker`` (bind mounts that nothing outside the command sees), so the
system-wide files can be tested without touching the host's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ETC_DIRS = (Path("/etc/containers"), Path("/etc/docker"))
_BIND = 'mount --bind "$1" /etc/containers && mount --bind "$2" /etc/docker && shift 2 && exec "$@"'


def can_bind_etc() -> bool:
    """True if a private mount namespace can cover /etc/containers and /etc/docker."""
    if not all(d.is_dir() for d in ETC_DIRS) or shutil.which("unshare") is None:
        return False
    probe = ["unshare", "-m", "--propagation", "private", "sh", "-c", _BIND, "sh", "/", "/", "true"]
    return subprocess.run(probe, capture_output=True).returncode == 0


requires_private_etc = pytest.mark.skipif(
    not can_bind_etc(), reason="needs unshare -m and /etc/containers, /etc/docker to cover"
)


@dataclass
class Box:
    """A HOME, XDG_RUNTIME_DIR and PATH of one test, shared by both tools."""

    root: Path
    env: dict[str, str]
    host: str
    etc: bool = False  # run in a private mount namespace with ROOT/etc/{containers,docker}

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    def write(self, rel: str, doc: object) -> Path:
        """Write DOC at ROOT/REL: JSON, or a string as it is."""
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
        return path

    def private_etc(self) -> None:
        """From now on, run the tools with ROOT/etc/containers and ROOT/etc/docker as /etc's."""
        for d in ETC_DIRS:
            (self.root / "etc" / d.name).mkdir(parents=True, exist_ok=True)
        self.etc = True

    def run(self, tool: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        """Run skopeo or our CLI ("ours") with ARGS in this box's environment."""
        argv = ["skopeo"] if tool == "skopeo" else [sys.executable, "-m", "syscontainers"]
        if self.etc:
            etc = [str(self.root / "etc" / d.name) for d in ETC_DIRS]
            argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", _BIND, "sh",
                    *etc, *argv]  # fmt: skip
        return subprocess.run(
            [*argv, *args], env=self.env, input=stdin, capture_output=True, text=True, cwd=REPO
        )

    def skopeo(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run("skopeo", *args)

    def ours(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run("ours", *args)


def make_box(tmp_path: Path, host: str) -> Box:
    """A box in TMP_PATH for tests against the registry at HOST."""
    config = tmp_path / "config.yaml"
    config.write_text(f"root: {tmp_path / 'store'}\n")
    (tmp_path / "run").mkdir()
    (tmp_path / "home").mkdir()
    keep = {k: v for k, v in os.environ.items() if k in ("LANG", "LC_ALL", "TMPDIR")}
    env = {
        **keep,
        "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
        "HOME": str(tmp_path / "home"),
        "XDG_RUNTIME_DIR": str(tmp_path / "run"),
        "SYSCONTAINERS_CONFIG": str(config),
        "PYTHONPATH": str(REPO),
    }
    return Box(tmp_path, env, host)
