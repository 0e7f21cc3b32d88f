"""A hostile registry on loopback, and a way to run the CLI against it with its memory measured.

``HostileRegistry`` serves one image (an OCI layout on disk) over the distribution API, and
misbehaves as its ``mode`` says: bodies that never end (an error, a token, a token refusal),
redirect loops, a manifest labelled ``Content-Encoding: gzip`` that is not gzip, or blobs
labelled so although they are sent as they are. An endless body is bounded by time
(``ENDLESS_SECONDS``) and stops as soon as the client hangs up, so no test can hang on it.

``run_cli`` runs ``python -m syscontainers`` in a child under an address-space limit and
returns its exit code, output and its own peak RSS (tests/peak.py), so a test sees both the
error a user gets and what it cost.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from syscontainers.oci import MT_OCI_MANIFEST
from tests.integration.conftest_registry import LoopbackServer
from tests.peak import Measured, run_measured

ENDLESS_SECONDS = 30.0  # the longest an endless body runs, whatever the client does
CHILD_ADDRESS_SPACE = 1 << 30  # RLIMIT_AS of the CLI child: far above a bounded pull's needs
_FILLER = b"A" * (64 << 10)


class HostileRegistry(LoopbackServer):
    """A loopback registry that serves LAYOUT's tagged image and misbehaves per ``mode``."""

    def __init__(self, layout: Path, repo: str, tag: str) -> None:
        self.layout = layout
        self.repo = repo
        self.tag = tag
        self.mode = ""
        self.requests: list[str] = []
        self.endless_sent = 0  # bytes of endless bodies sent
        super().__init__(_Handler, "registry")

    @property
    def image(self) -> str:
        """The docker:// reference of the served image."""
        return f"docker://{self.host}/{self.repo}:{self.tag}"

    def manifest(self) -> bytes:
        """The served manifest's bytes."""
        index = json.loads((self.layout / "index.json").read_text())
        return self.blob(index["manifests"][-1]["digest"])

    def blob(self, digest: str) -> bytes:
        """One blob of the layout."""
        return (self.layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    registry: HostileRegistry

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        reg = self.registry
        reg.requests.append(self.path)
        mode = reg.mode
        if self.path.startswith("/token"):
            if mode == "endless-token":
                self._endless(200)
            else:
                self._endless(401)
            return
        if self.path == "/v2/":
            if mode in ("endless-token", "endless-token-refusal"):
                realm = f'Bearer realm="http://{reg.host}/token",service="hostile"'
                self._send(401, b"{}", {"WWW-Authenticate": realm})
            else:
                self._send(200, b"{}")
            return
        if "/manifests/" in self.path:
            self._manifest(mode)
        elif "/blobs/" in self.path:
            self._blob(mode)
        else:
            self._send(404, b"{}")

    def _manifest(self, mode: str) -> None:
        if mode == "endless-error":
            self._endless(404)
        elif mode == "redirect-loop":
            self._send(302, b"", {"Location": self.path})
        elif mode == "redirect-pingpong":
            other = self.path + "x" if not self.path.endswith("x") else self.path[:-1]
            self._send(307, b"", {"Location": other})
        elif mode == "redirect-to-a-bad-url":
            self._send(302, b"", {"Location": "http://[::1"})
        elif mode == "not-json":
            self._send(200, b"{not json", {"Content-Type": MT_OCI_MANIFEST})
        elif mode == "false-gzip":
            body = self.registry.manifest()
            self._send(200, body, {"Content-Type": MT_OCI_MANIFEST, "Content-Encoding": "gzip"})
        else:
            self._send(200, self.registry.manifest(), {"Content-Type": MT_OCI_MANIFEST})

    def _blob(self, mode: str) -> None:
        digest = self.path.rsplit("/", 1)[1]
        try:
            data = self.registry.blob(digest)
        except OSError:
            self._send(404, b'{"errors":[{"code":"BLOB_UNKNOWN","message":"no"}]}')
            return
        if mode == "blob-redirect-loop":
            self._send(302, b"", {"Location": self.path})
            return
        extra = {"Content-Encoding": "gzip"} if mode == "gzip-labelled-blobs" else {}
        self._send(200, data, {"Content-Type": "application/octet-stream", **extra})

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _endless(self, status: int) -> None:
        """A JSON-looking body that never ends (until the client leaves or time runs out)."""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()  # no length: the body ends when the connection does
        self.close_connection = True
        deadline = time.monotonic() + ENDLESS_SECONDS
        try:
            self.wfile.write(b'{"errors": [{"code": "DENIED", "message": "')
            while time.monotonic() < deadline:
                self.wfile.write(_FILLER)
                self.registry.endless_sent += len(_FILLER)
        except OSError:
            return  # the client hung up: what a bounded reader does
        finally:
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)


def cli_env(tmp: Path) -> dict[str, str]:
    """An environment whose settings, auth files and registries.conf all live in TMP."""
    config = tmp / "config.yaml"
    config.write_text(
        f"root: {tmp / 'root'}\n"
        f"registries-conf: {tmp / 'registries.conf'}\n"
        f"certs-d: {tmp / 'certs.d'}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYSCONTAINERS_")}
    env.pop("REGISTRY_AUTH_FILE", None)
    env.update(
        SYSCONTAINERS_CONFIG=str(config), HOME=str(tmp / "home"), XDG_RUNTIME_DIR=str(tmp / "run")
    )
    return env


def run_cli(env: dict[str, str], *argv: str, timeout: int = 120) -> Measured:
    """``python -m syscontainers ARGV`` under an address-space limit, with its own peak RSS."""
    return run_measured(
        [sys.executable, "-m", "syscontainers", *argv],
        env=env,
        address_space=CHILD_ADDRESS_SPACE,
        timeout=timeout,
    )
