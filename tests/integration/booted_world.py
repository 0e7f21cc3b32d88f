"""A booted systemd with a registry inside, and the syscontainers CLI run there.

Shared by the nspawn test modules that pull over docker:// (the booted host's
private network cannot reach the host's loopback, so the registry runs inside
it, under systemd-run) and drive the CLI like an administrator would.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.integration.nspawn import REPO, Completed, NspawnHost

REGISTRY = "127.0.0.1:5000"
CLI = "import sys; from syscontainers.cli import main; sys.exit(main(sys.argv[1:]))"
ROOT = "/var/lib/syscontainers/containers"
REGISTRY_UNIT = "sc-registry.service"


def example_config(args: list[str]) -> bytes:
    """examples/hello-httpd's config.json.template with other process args."""
    source = REPO / "examples/hello-httpd/exports/config.json.template"
    config = json.loads(source.read_text())
    config["process"]["args"] = args
    return json.dumps(config, indent=1).encode()


@dataclass
class World:
    """The booted host, and the layout of test images inside it."""

    host: NspawnHost
    layout: str

    def start_registry(self, state: Path, access_log: bool = False) -> None:
        """Serve a registry at REGISTRY inside, storing under STATE (a test directory); with
        ACCESS_LOG, every request is a line in the journal of REGISTRY_UNIT."""
        state.mkdir()
        (state / "config.yml").write_text(
            json.dumps(
                {
                    "version": 0.1,
                    "log": {"level": "warn", "accesslog": {"disabled": not access_log}},
                    "storage": {
                        "filesystem": {"rootdirectory": self.host.inside(state / "storage")}
                    },
                    "http": {"addr": REGISTRY, "secret": "test"},
                }
            )
        )
        self.host.run(
            [
                "systemd-run",
                f"--unit={REGISTRY_UNIT}",
                "docker-registry",
                "serve",
                self.host.inside(state / "config.yml"),
            ]
        )
        self.get(int(REGISTRY.split(":")[1]), timeout=20)

    def sc(self, *args: str, check: bool = True, timeout: float = 180) -> Completed:
        """Run the syscontainers CLI inside, trusting the plain-HTTP registry."""
        argv = ["env", "SYSCONTAINERS_TLS_VERIFY=false", "/usr/bin/python3", "-c", CLI, *args]
        return self.host.run(argv, check=check, timeout=timeout)

    def push(self, tag: str, name: str) -> None:
        """Push LAYOUT:TAG to the registry inside as NAME."""
        self.host.run(
            [
                "skopeo",
                "--insecure-policy",
                "copy",
                "--quiet",
                "--dest-tls-verify=false",
                f"oci:{self.layout}:{tag}",
                f"docker://{REGISTRY}/{name}",
            ],
            timeout=120,
        )

    def active(self, unit: str) -> str:
        """systemctl is-active UNIT."""
        return self.host.run(["systemctl", "is-active", unit], check=False).stdout.strip()

    def get(self, port: int, timeout: float = 15.0) -> str:
        """The page on PORT inside, retried until it answers or TIMEOUT passes."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.host.run(
                ["busybox", "wget", "-qO-", f"http://127.0.0.1:{port}/"], check=False
            )
            if got.returncode == 0 or time.monotonic() > deadline:
                return got.stdout if got.returncode == 0 else f"<no answer: {got.stderr}>"
            time.sleep(0.2)

    def info(self, name: str) -> dict[str, Any]:
        """The active deployment's info.json."""
        return dict(json.loads(self.host.run(["cat", f"{ROOT}/{name}/info.json"]).stdout))

    def link(self, name: str) -> str:
        """Where the NAME symlink points."""
        return self.host.run(["readlink", f"{ROOT}/{name}"]).stdout.strip()

    def wait_active(self, unit: str, timeout: float = 30.0) -> str:
        """Wait for UNIT to be active; return its last state."""
        deadline = time.monotonic() + timeout
        while (state := self.active(unit)) != "active" and time.monotonic() < deadline:
            time.sleep(0.2)
        return state

    def cgroups(self, name: str, runtime: str) -> tuple[str, str]:
        """The cgroup of container NAME's init, and that of its unit."""
        pid = json.loads(self.host.run([*runtime.split(), "state", name]).stdout)["pid"]
        lines = self.host.run(["cat", f"/proc/{pid}/cgroup"]).stdout.splitlines()
        unit = self.host.run(["systemctl", "show", "-P", "ControlGroup", f"{name}.service"])
        return next(x[3:] for x in lines if x.startswith("0::")), unit.stdout.strip()

    def runtime_ids(self, runtime: str) -> set[str]:
        """Ids of the running containers that RUNTIME lists."""
        out = self.host.run([*runtime.split(), "list", "--format", "json"]).stdout
        return {c["id"] for c in json.loads(out or "[]") or [] if c["status"] == "running"}
