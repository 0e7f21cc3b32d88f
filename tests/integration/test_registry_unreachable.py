"""A registry that cannot be reached at all fails at once; one that drops connections is retried.

The cases are real sockets on loopback: a port nothing listens on (connection refused), a name
under .invalid (RFC 6761: it never resolves), and a server that accepts each connection and
closes it unanswered (a transient failure, which keeps its retries). The client's sleep is the
seam that counts the retries. Before the change, the refused port and the unresolvable name
were tried 5 times with backoff (8 s) and said only "(tried 5 times)".
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from syscontainers import cli
from syscontainers.errors import RegistryError, RegistryUnreachableError
from syscontainers.registry.http import RegistryClient
from syscontainers.registry.tls import HostTls

UNRESOLVABLE = "registry.nonexistent.invalid"
MANIFEST = ("application/vnd.oci.image.manifest.v1+json",)


def closed_port() -> int:
    """A loopback port that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def hang_up() -> Iterator[str]:
    """host:port of a server that accepts each connection and closes it unanswered."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(5)
    server.close()


def client(sleeps: list[float]) -> RegistryClient:
    return RegistryClient(
        lambda host, repo: None, lambda host: HostTls(verify=False), sleep=sleeps.append
    )


@pytest.mark.parametrize("host", [f"127.0.0.1:{closed_port()}", UNRESOLVABLE])
def test_a_registry_that_cannot_be_reached_fails_without_retrying(host: str) -> None:
    sleeps: list[float] = []
    with pytest.raises(RegistryUnreachableError) as caught:
        client(sleeps).get_manifest(host, "test/app", "1", MANIFEST, 1 << 20)
    assert sleeps == []
    reason = "Connection refused" if host.startswith("127.") else "not known"
    assert caught.value.message.startswith(f"registry {host} cannot be reached: ")
    assert reason in caught.value.message and caught.value.hint


def test_a_registry_that_hangs_up_is_still_retried(hang_up: str) -> None:
    sleeps: list[float] = []
    with pytest.raises(RegistryError) as caught:
        client(sleeps).get_manifest(hang_up, "test/app", "1", MANIFEST, 1 << 20)
    assert not isinstance(caught.value, RegistryUnreachableError)
    # 5 tries with backoff (a first try over https can fail as TLS instead, whose fallback to
    # plain http then makes its own 5, depending on when the hang-up reaches the handshake).
    assert sleeps[-4:] == [0.5, 1.0, 2.0, 4.0]
    assert "tried 5 times" in caught.value.message


@pytest.fixture
def sysroot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An offline root with a runc, so install runs with no D-Bus; no config of the caller's."""
    for key in [k for k in os.environ if k.startswith("SYSCONTAINERS_")]:
        monkeypatch.delenv(key)
    (tmp_path / "config.yaml").write_text("")
    monkeypatch.setenv("SYSCONTAINERS_CONFIG", str(tmp_path / "config.yaml"))
    root = tmp_path / "sysroot"
    (root / "usr/sbin").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "usr/sbin/runc").write_text("#!/bin/sh\nexit 0\n")
    (root / "usr/sbin/runc").chmod(0o755)
    return root


@pytest.mark.parametrize("host", [f"127.0.0.1:{closed_port()}", UNRESOLVABLE])
def test_install_of_an_image_neither_stored_nor_reachable_says_both(
    sysroot: Path, host: str, capsys: pytest.CaptureFixture[str]
) -> None:
    image = f"{host}/test/app:1"
    argv = ["--sysroot", str(sysroot), "install", "--tls-verify=false", image]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(
        f"error: image {image} is not in the store and registry {host} cannot be reached: "
    ), err
    assert err[1].startswith("hint: check the image name ('syscontainers images list'"), err
    containers = sysroot / "var/lib/syscontainers/containers"
    assert not containers.exists() or os.listdir(containers) == []


def test_pull_from_a_refused_port_names_the_registry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = closed_port()
    argv = [
        "--root",
        str(tmp_path),
        "pull",
        "--tls-verify=false",
        f"docker://127.0.0.1:{port}/test/app:1",
    ]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        f"error: registry 127.0.0.1:{port} cannot be reached: Connection "
        "refused\nhint: check the registry's name and port"
    ), err
