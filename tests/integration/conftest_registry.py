"""Registry test fixtures: real distribution registries on loopback, pushed images, a fault proxy.

Import what a test module needs; the fixture ``plain_registry`` is in conftest.py. The two
registry starters return a running Registry to use in a ``with`` statement, which stops it:

    registry_server(workdir, htpasswd=, tls=, token=) -> Registry   ``docker-registry serve``
    make_tls_cert(dir) -> (cert, key)                          openssl self-signed, IP 127.0.0.1
    make_htpasswd(path, user, password) -> path                htpasswd -Bbn
    alice_registry(workdir, name) -> Registry                  Basic auth alice/s3cret, NAME pushed
    push(layout, tag, registry, name, *skopeo_options)         skopeo copy oci: -> docker://
    FaultProxy(upstream, ...)                                  cuts blob bodies, answers 5xx/429
    TokenServer(workdir, users)                                Bearer tokens (JWT) for token auth
    plain_registry (session fixture, in conftest.py)           no auth, plain HTTP, the images
    requires_registry                                          the skip mark for all of this

Images in ``plain_registry`` (see ``Images`` and ``build_images``): ``test/busybox:1``
(busybox + 3 MiB of random data, gzip), ``test/multi:1`` (an OCI index for the host platform
and one other), ``test/zstd:1`` (zstd layers, pushed by skopeo with --dest-compress-format zstd).
"""

from __future__ import annotations

import base64
import http.client
import http.server
import json
import os
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import pytest

from syscontainers import process
from syscontainers.oci import MT_OCI_INDEX, Platform
from tests.imagebuild import BUSYBOX, REF_NAME, layer_tar, requires, write_blob, write_oci_layout

requires_registry = [
    requires("docker-registry", "skopeo", "openssl", "htpasswd"),
    pytest.mark.skipif(not BUSYBOX.exists(), reason="needs busybox-static"),
    pytest.mark.registry,
]

HOST_PLATFORM = Platform.host()
OTHER_PLATFORM = Platform("linux", "arm64" if HOST_PLATFORM.architecture != "arm64" else "amd64")
BIG = 3 << 20  # the random layer of test/busybox:1


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Registry:
    """A running ``docker-registry serve``; a context manager that stops it on the way out
    (``with registry_server(...) as registry:``)."""

    host: str  # 127.0.0.1:PORT
    root: Path  # its storage root directory
    proc: subprocess.Popen[bytes]
    tls: bool = False

    def blob_path(self, digest: str) -> Path:
        """Where the registry keeps the blob DIGEST on disk."""
        hex_ = digest.split(":", 1)[1]
        return self.root / "docker/registry/v2/blobs/sha256" / hex_[:2] / hex_ / "data"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop the server (by its pid) and wait for it."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _wait_ready(host: str, tls: bool, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"docker-registry exited: {log.read_text()[-2000:]}")
        try:
            if tls:
                ctx = ssl._create_unverified_context()
                conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                    host, timeout=2, context=ctx
                )
            else:
                conn = http.client.HTTPConnection(host, timeout=2)
            conn.request("GET", "/v2/")
            status = conn.getresponse().status
            conn.close()
            if status in (200, 401):
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"docker-registry on {host} did not come up: {log.read_text()[-2000:]}")


def registry_server(
    workdir: Path,
    *,
    htpasswd: Path | None = None,
    tls: tuple[Path, Path] | None = None,
    token: TokenServer | None = None,
) -> Registry:
    """Start a registry storing under WORKDIR, with Basic or token auth and/or TLS if asked;
    use it in a ``with`` statement, which stops it."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(workdir / "storage")},
            "delete": {"enabled": True},
        },
        "http": {"addr": f"127.0.0.1:{port}", "secret": "test-secret"},
    }
    if htpasswd is not None:
        config["auth"] = {"htpasswd": {"realm": "test-realm", "path": str(htpasswd)}}
    if token is not None:
        config["auth"] = {
            "token": {
                "realm": token.realm,
                "service": token.service,
                "issuer": token.issuer,
                "rootcertbundle": str(token.cert),
            }
        }
    if tls is not None:
        config["http"]["tls"] = {"certificate": str(tls[0]), "key": str(tls[1])}
    cfg = workdir / "config.yml"
    cfg.write_text(json.dumps(config))  # JSON is YAML
    log = workdir / "registry.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["docker-registry", "serve", str(cfg)], stdout=out, stderr=subprocess.STDOUT
        )
    registry = Registry(f"127.0.0.1:{port}", workdir / "storage", proc, tls is not None)
    try:
        _wait_ready(registry.host, registry.tls, proc, log)
    except BaseException:
        registry.stop()
        raise
    return registry


def make_tls_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate (its own CA) for 127.0.0.1, and its key."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "server.crt", directory / "server.key"
    process.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
            "-addext", "basicConstraints=critical,CA:TRUE",
        ]
    )  # fmt: skip
    return cert, key


def make_htpasswd(path: Path, user: str, password: str) -> Path:
    """An htpasswd file with one bcrypt entry."""
    path.write_text(process.run(["htpasswd", "-Bbn", user, password]).stdout)
    return path


def push(layout: Path, tag: str, registry: Registry, name: str, *options: str) -> None:
    """Copy LAYOUT:TAG to REGISTRY as NAME with skopeo (no TLS verification)."""
    process.run(
        [
            "skopeo", "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false",
            *options, f"oci:{layout}:{tag}", f"docker://{registry.host}/{name}",
        ]
    )  # fmt: skip


def alice_registry(workdir: Path, name: str) -> Registry:
    """A registry with Basic auth (alice / s3cret) holding the busybox image as NAME."""
    htpasswd = make_htpasswd(workdir / "htpasswd", "alice", "s3cret")
    registry = registry_server(workdir / "auth-registry", htpasswd=htpasswd)
    try:
        images = build_images(workdir / "layout")
        push(images.layout, "busybox", registry, name, "--dest-creds", "alice:s3cret")
    except BaseException:
        registry.stop()
        raise
    return registry


def skopeo_inspect(registry: Registry, name: str, *options: str) -> dict[str, Any]:
    """``skopeo inspect`` of NAME, as JSON (the oracle for digests)."""
    argv = ["skopeo", "inspect", "--tls-verify=false", *options, f"docker://{registry.host}/{name}"]
    return dict(json.loads(process.run(argv).stdout))


# ---- the images ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Images:
    """The layouts pushed to the shared registry."""

    layout: Path
    big_data: bytes = field(repr=False)  # the content of /data/big in test/busybox:1


def busybox_layer() -> bytes:
    """A layer with busybox and a few applets."""
    busybox = BUSYBOX.read_bytes()
    return layer_tar(
        {"bin/busybox": busybox, "etc/passwd": b"root:x:0:0:root:/root:/bin/sh\n"},
        symlinks={"bin/sh": "busybox", "bin/cat": "busybox"},
        modes={"bin/busybox": 0o755},
    )


def build_images(layout: Path) -> Images:
    """Write the test images into one OCI layout."""
    big = os.urandom(BIG)
    base = busybox_layer()
    write_oci_layout(
        layout,
        [base, layer_tar({"data/big": big})],
        "busybox",
        config={"config": {"Cmd": ["/bin/sh"], "Labels": {"atomic.type": "system", "k": "v"}}},
    )
    write_oci_layout(layout, [base, layer_tar({"etc/motd": b"zstd\n"})], "plain-for-zstd")
    entries = []
    for plat in (HOST_PLATFORM, OTHER_PLATFORM):
        write_oci_layout(
            layout,
            [base, layer_tar({"etc/arch": str(plat).encode()})],
            None,
            config={"architecture": plat.architecture, "os": plat.os},
        )
        entry = json.loads((layout / "index.json").read_text())["manifests"][-1]
        entry["platform"] = {"os": plat.os, "architecture": plat.architecture}
        entries.append(entry)
    index = {"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": entries}
    desc = write_blob(layout, json.dumps(index).encode(), MT_OCI_INDEX)
    desc["annotations"] = {REF_NAME: "multi"}
    top = json.loads((layout / "index.json").read_text())
    top["manifests"].append(desc)
    (layout / "index.json").write_text(json.dumps(top))
    return Images(layout, big)


@dataclass
class PlainRegistry:
    """The shared no-auth registry and what was pushed to it."""

    registry: Registry
    images: Images

    @property
    def host(self) -> str:
        """127.0.0.1:PORT."""
        return self.registry.host


# ---- the fault-injecting proxy -----------------------------------------------------------

_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade", "te"}


@dataclass
class Faults:
    """What the proxy does wrong, and what it saw."""

    cut_after: int = 0  # cut a blob body after this many bytes (0: never)
    cuts: int = 1  # how many bodies to cut
    cut_digest: str = ""  # only this blob ("" for any)
    strip_range: bool = False  # forward blob requests without their Range header
    die_after_cut: bool = False  # after cutting, refuse every later request
    statuses: list[int] = field(default_factory=list)  # answer manifest requests with these first
    pace: float = 0.0  # seconds to wait after each 64 KiB of a blob body (a slow link)
    range_requests: list[str] = field(default_factory=list)
    blob_requests: int = 0
    dead: bool = False


class LoopbackServer:
    """An HTTP server on 127.0.0.1 in a thread, its handler class given the server as ATTR;
    a context manager that starts and stops it."""

    def __init__(self, handler: type[http.server.BaseHTTPRequestHandler], attr: str) -> None:
        bound = type("Handler", (handler,), {attr: self})
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), bound)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        """127.0.0.1:PORT of the server."""
        return f"127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


class FaultProxy(LoopbackServer):
    """A loopback HTTP reverse proxy to a registry that breaks things on purpose."""

    def __init__(self, upstream: str, faults: Faults) -> None:
        self.upstream = upstream
        self.faults = faults
        self.lock = threading.Lock()
        super().__init__(_ProxyHandler, "proxy")


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    proxy: FaultProxy

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
        self._handle()

    def do_GET(self) -> None:  # noqa: N802
        self._handle()

    def _handle(self) -> None:
        faults = self.proxy.faults
        is_blob = "/blobs/sha256:" in self.path
        with self.proxy.lock:
            if faults.dead:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            status = faults.statuses.pop(0) if faults.statuses and "/manifests/" in self.path else 0
            if is_blob:
                faults.blob_requests += 1
                if self.headers.get("Range"):
                    faults.range_requests.append(self.headers["Range"])
        if status:
            self.send_response(status)
            self.send_header("Retry-After", "0")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
        if is_blob and faults.strip_range:
            headers.pop("Range", None)
        conn = http.client.HTTPConnection(self.proxy.upstream, timeout=30)
        try:
            conn.request(self.command, self.path, headers=headers)
            resp = conn.getresponse()
            self._relay(resp, is_blob)
        finally:
            conn.close()

    def _relay(self, resp: http.client.HTTPResponse, is_blob: bool) -> None:
        body = b"" if is_blob else resp.read()
        self.send_response(resp.status)
        for key, value in resp.getheaders():
            if key.lower() not in _HOP and (is_blob or key.lower() != "content-length"):
                self.send_header(key, value)
        if not is_blob:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if not is_blob:
            self.wfile.write(body)
            return
        limit = self._cut_limit(resp.status)
        sent = 0
        while True:
            chunk = resp.read(64 << 10)
            if not chunk:
                break
            if limit is not None and sent + len(chunk) >= limit:
                self.wfile.write(chunk[: limit - sent])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(chunk)
            sent += len(chunk)
            if self.proxy.faults.pace:
                self.wfile.flush()
                time.sleep(self.proxy.faults.pace)

    def _cut_limit(self, status: int) -> int | None:
        faults = self.proxy.faults
        with self.proxy.lock:
            wanted = not faults.cut_digest or faults.cut_digest in self.path
            if status not in (200, 206) or not faults.cut_after or faults.cuts <= 0 or not wanted:
                return None
            faults.cuts -= 1
            if faults.die_after_cut:
                faults.dead = True
            return faults.cut_after


# ---- a Bearer token server -----------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """A loopback token server for the registry's token auth (JWTs signed RS256 with openssl).

    USERS may pull and push; anonymous requests get a token that grants nothing. ``issued``
    counts the tokens handed out, ``refused`` the bad passwords.
    """

    service = "test-registry"
    issuer = "test-issuer"

    def __init__(self, workdir: Path, users: dict[str, str]) -> None:
        self.workdir = workdir
        self.cert, self.key = make_tls_cert(workdir / "signing")
        der = workdir / "signing" / "cert.der"
        process.run(["openssl", "x509", "-in", str(self.cert), "-outform", "DER", "-out", str(der)])
        self.x5c = base64.b64encode(der.read_bytes()).decode()
        self.users = users
        self.refresh_tokens: dict[str, str] = {}  # OAuth2 refresh (identity) token -> user
        self.issued: list[str] = []  # the scope of each token
        self.refused = 0
        self.lock = threading.Lock()
        handler = type("TokenHandler", (_TokenHandler,), {"token_server": self})
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def realm(self) -> str:
        """The token endpoint."""
        return f"http://127.0.0.1:{self.server.server_address[1]}/token"

    def __enter__(self) -> TokenServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def sign(self, user: str, scopes: list[str]) -> str:
        """A JWT granting USER the actions of SCOPES (repository:NAME:ACTIONS)."""
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if user in self.users and kind == "repository":
                access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        claims = {
            "iss": self.issuer, "sub": user, "aud": self.service, "exp": now + 300,
            "nbf": now - 10, "iat": now - 10, "jti": os.urandom(8).hex(), "access": access,
        }  # fmt: skip
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        signing_input = (
            f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        )
        with self.lock:
            data, sig = self.workdir / "input", self.workdir / "sig"
            data.write_text(signing_input)
            argv = ["openssl", "dgst", "-sha256", "-sign", str(self.key), "-out", str(sig)]
            process.run([*argv, str(data)])
            return f"{signing_input}.{_b64url(sig.read_bytes())}"


class _TokenHandler(http.server.BaseHTTPRequestHandler):
    token_server: TokenServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        server = self.token_server
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        user = ""
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            if server.users.get(user) != password:
                with server.lock:
                    server.refused += 1
                self._reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad password"}]})
                return
        if query.get("service", [""])[0] != server.service:
            self._reply(400, {"errors": [{"code": "DENIED", "message": "wrong service"}]})
            return
        scopes = query.get("scope", [])
        token = server.sign(user, scopes)
        with server.lock:
            server.issued.append(" ".join(scopes))
        self._reply(200, {"token": token, "expires_in": 300})

    def do_POST(self) -> None:  # noqa: N802 - OAuth2: a refresh token for an access token
        server = self.token_server
        form = urllib.parse.parse_qs(self._body().decode())
        user = server.refresh_tokens.get(form.get("refresh_token", [""])[0])
        if form.get("grant_type") != ["refresh_token"] or user is None:
            with server.lock:
                server.refused += 1
            self._reply(401, {"error": "invalid_grant"})
            return
        scopes = " ".join(form.get("scope", [])).split()
        token = server.sign(user, scopes)
        with server.lock:
            server.issued.append(" ".join(scopes))
        self._reply(200, {"access_token": token, "expires_in": 300})

    def _body(self) -> bytes:
        """The request body, sized or chunked (Go sends an unsized body chunked)."""
        if "chunked" not in self.headers.get("Transfer-Encoding", ""):
            return self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = b""
        while size := int(self.rfile.readline().split(b";")[0], 16):
            body += self.rfile.read(size)
            self.rfile.readline()
        self.rfile.readline()
        return body

    def _reply(self, status: int, doc: dict[str, Any]) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def registry_env(tmp: Path) -> dict[str, str]:
    """An environment whose auth-file lookup stays inside TMP."""
    return {"HOME": str(tmp / "home"), "XDG_RUNTIME_DIR": str(tmp / "run")}


def write_registries_conf(path: Path, text: str) -> Path:
    """Write a registries.conf for a test."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


__all__ = [
    "BIG",
    "HOST_PLATFORM",
    "OTHER_PLATFORM",
    "FaultProxy",
    "Faults",
    "PlainRegistry",
    "Registry",
    "TokenServer",
    "make_htpasswd",
    "make_tls_cert",
    "push",
    "registry_env",
    "registry_server",
    "requires_registry",
    "skopeo_inspect",
    "write_registries_conf",
]
