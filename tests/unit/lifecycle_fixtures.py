"""Shared setup for the lifecycle tests: a store, fake systemd and tmpfiles, and test images.

Everything lives under tmp_path: the store root, the unit and tmpfiles directories,
and ``host/``, the root the host files are installed under. Images are OCI layouts
written by tests/imagebuild.py; ``ATOMIC`` follows the atomic contract (manifest.json
with defaultValues and renameFiles, hostfs files, tmpfiles/service/config templates),
``PLAIN`` has no /exports at all. The pytest fixtures (``env``, ``atomic_image``,
``plain_image``) are in tests/conftest.py.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from syscontainers.operations.host import Host
from syscontainers.operations.pull import PullOptions, pull_image
from syscontainers.paths import Paths
from syscontainers.progress import RecordingReporter
from syscontainers.sources import open_source, parse_source
from syscontainers.store import Store
from tests.fakes import FakeUnitManager
from tests.imagebuild import layer_tar, write_oci_layout

SERVICE = """\
[Unit]
Description=app $NAME on port $PORT

[Service]
ExecStartPre=$EXEC_STARTPRE
ExecStart=$EXEC_START
ExecStop=$EXEC_STOP
WorkingDirectory=$DESTDIR
SuccessExitStatus=143
Environment=GREETING=$GREETING

[Install]
WantedBy=multi-user.target
"""
TMPFILES = "d ${STATE_DIRECTORY}/${NAME} 0700 ${HOST_UID} ${HOST_GID} - -\n"
CONFIG = {
    "ociVersion": "1.0.2",
    "process": {
        "terminal": False,
        "user": {"uid": 0, "gid": 0},
        "args": ["/bin/httpd", "-f", "-p", "$PORT"],
        "env": ["GREETING=$GREETING"],
        "cwd": "/",
    },
    "root": {"path": "rootfs", "readonly": True},
    "hostname": "$NAME",
    "mounts": [
        {
            "destination": "/data",
            "type": "bind",
            "source": "${STATE_DIRECTORY}/$NAME",
            "options": ["rbind", "rw"],
        }
    ],
    "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]},
}
MANIFEST = {
    "version": "1.0",
    "defaultValues": {"PORT": "8080", "GREETING": "hello"},
    "renameFiles": {
        "/etc/app": "$CONF_DIRECTORY/$NAME",
        "/usr/local/bin/appctl": "/usr/local/bin/${NAME}ctl",
    },
    "installedFilesTemplate": ["/etc/app/motd"],
}
APPCTL = b"#!/bin/sh\necho appctl\n"
APP_CONF = b"listen = 8080\n"


def atomic_files(version: str = "1", /, **overrides: bytes) -> dict[str, bytes]:
    """The files of an atomic-contract image; VERSION changes the app.conf host file."""
    files = {
        "bin/sh": b"#!busybox\n",
        "etc/passwd": b"root:x:0:0:root:/:/bin/sh\n",
        "var/www/index.html": f"version {version}\n".encode(),
        "exports/manifest.json": json.dumps(MANIFEST).encode(),
        "exports/service.template": SERVICE.encode(),
        "exports/tmpfiles.template": TMPFILES.encode(),
        "exports/config.json.template": json.dumps(CONFIG, indent=1).encode(),
        "exports/hostfs/etc/app/app.conf": APP_CONF + f"# v{version}\n".encode(),
        "exports/hostfs/etc/app/motd": b"$NAME listens on $PORT\n",
        "exports/hostfs/usr/local/bin/appctl": APPCTL,
    }
    files.update(overrides)
    return files


def plain_files() -> dict[str, bytes]:
    """A plain image without /exports."""
    return {"bin/httpd": b"#!busybox\n", "var/www/index.html": b"plain\n"}


PLAIN_CONFIG: dict[str, object] = {
    "config": {"Cmd": ["/bin/httpd", "-f", "-p", "8081"], "Env": ["PATH=/bin"]}
}


def fake_journal(unit: str) -> tuple[str, ...]:
    """What the tests' journal holds for UNIT: one line naming it."""
    return (f"{unit}: Main process exited, code=exited, status=3/NOTIMPLEMENTED",)


class RecordingTmpfiles:
    """A Tmpfiles that records each call with the file's text at that moment."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Path, str]] = []

    def create(self, conf: Path) -> None:
        """Record a create."""
        self.calls.append(("create", conf, conf.read_text()))

    def remove(self, conf: Path) -> None:
        """Record a remove."""
        self.calls.append(("remove", conf, conf.read_text()))


@dataclass
class Env:
    """One test's world."""

    tmp: Path
    paths: Paths
    store: Store
    units: FakeUnitManager
    tmpfiles: RecordingTmpfiles
    reporter: RecordingReporter
    executed: list[tuple[str, ...]] = field(default_factory=list)

    @property
    def host(self) -> Host:
        """The Host seams, all fakes but the store and the files."""

        def execute(argv: Sequence[str]) -> int:
            self.executed.append(tuple(argv))
            return 0

        return Host(
            self.store,
            self.paths,
            self.units,
            self.tmpfiles,
            self.reporter,
            None,
            execute,
            journal=fake_journal,
        )

    def on_host(self, path: str) -> Path:
        """Where host path PATH is in this test."""
        return self.paths.host_root / path.lstrip("/")

    def layout(
        self,
        name: str,
        files: dict[str, bytes],
        tag: str = "latest",
        config: dict[str, object] | None = None,
        modes: dict[str, int] | None = None,
        dirs: Sequence[str] = (),
    ) -> str:
        """Write an OCI layout of one layer (with the empty directories DIRS); return its
        oci: source string."""
        layout = self.tmp / "layouts" / name
        layer = layer_tar(
            files, modes=modes or {"exports/hostfs/usr/local/bin/appctl": 0o755}, dirs=dirs
        )
        write_oci_layout(layout, [layer], tag, config=config)
        return f"oci:{layout}:{tag}"

    def pull(self, source: str, name: str) -> str:
        """Pull SOURCE into the store as NAME; return the manifest digest."""
        src = open_source(parse_source(source))
        try:
            return pull_image(self.store, src, PullOptions(name=name)).manifest_digest
        finally:
            src.close()

    def dep(self, name: str = "") -> Path:
        """The deployments directory, or one entry of it."""
        return self.paths.deployments / name if name else self.paths.deployments
