"""The registry verbs through main(): inspect docker://, login and logout, on real registries."""

from __future__ import annotations

import io
import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from syscontainers import cli
from syscontainers.oci import sha256_digest
from tests.integration.conftest_registry import (
    OTHER_PLATFORM,
    PlainRegistry,
    Registry,
    alice_registry,
    requires_registry,
    skopeo_inspect,
)

pytestmark = requires_registry


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An environment whose settings, auth files and registries.conf live in TMP_PATH."""
    config = tmp_path / "config.yaml"
    config.write_text(
        f"root: {tmp_path / 'root'}\n"
        f"registries-conf: {tmp_path / 'registries.conf'}\n"
        f"certs-d: {tmp_path / 'certs.d'}\n"
    )
    monkeypatch.setenv("SYSCONTAINERS_CONFIG", str(config))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "run").mkdir()  # login writes there, and needs it to exist (as skopeo does)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    return tmp_path


def run(*argv: str) -> int:
    """main() with ARGV."""
    return cli.main(list(argv))


def test_inspect_json_lists_platforms(
    home: Path, plain_registry: PlainRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    image = f"docker://{plain_registry.host}/test/multi:1"
    args = ("--tls-verify=false", "--platform", str(OTHER_PLATFORM))
    assert run("inspect", image, "--json", *args) == 0
    doc = json.loads(capsys.readouterr().out)
    raw = skopeo_inspect(plain_registry.registry, "test/multi:1", "--raw")
    arch = OTHER_PLATFORM.architecture
    wanted = next(m for m in raw["manifests"] if m["platform"]["architecture"] == arch)
    assert doc["manifest_digest"] == wanted["digest"]
    assert doc["architecture"] == OTHER_PLATFORM.architecture
    assert len(doc["platforms"]) == 2 and str(OTHER_PLATFORM) in doc["platforms"]


def test_inspect_raw_config_and_text(
    home: Path, plain_registry: PlainRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    image = f"docker://{plain_registry.host}/test/busybox:1"
    oracle = skopeo_inspect(plain_registry.registry, "test/busybox:1")
    assert run("inspect", image, "--raw", "--tls-verify=false") == 0
    raw = capsys.readouterr().out
    assert sha256_digest(raw.encode()) == oracle["Digest"]  # verbatim: no newline added

    assert run("inspect", image, "--config", "--tls-verify=false") == 0
    config = json.loads(capsys.readouterr().out)
    assert config["config"]["Labels"]["atomic.type"] == "system"
    assert len(config["rootfs"]["diff_ids"]) == 2

    assert run("inspect", image, "--tls-verify=false") == 0
    text = capsys.readouterr().out
    assert f"Digest:      {oracle['Digest']}" in text
    assert "atomic.type=system" in text
    for layer in oracle["Layers"]:
        assert layer in text


def test_inspect_usage_errors(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("inspect", "oci:/nowhere:tag") == 2
    assert "docker://" in capsys.readouterr().err
    assert run("inspect", "docker://busybox") == 2  # a short name, and no registries.conf
    err = capsys.readouterr().err
    assert "short name 'busybox'" in err and "hint: use a fully qualified name" in err
    assert run("inspect", "docker://127.0.0.1:1/x:1", "--raw", "--config") == 2


@pytest.fixture
def auth_registry(tmp_path: Path) -> Iterator[Registry]:
    """A registry with Basic auth (alice / s3cret) holding private/app:1."""
    with alice_registry(tmp_path, "private/app:1") as registry:
        yield registry


def test_login_inspect_logout(
    home: Path,
    auth_registry: Registry,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    host = auth_registry.host
    image = f"docker://{host}/private/app:1"
    assert run("inspect", image, "--tls-verify=false") == 1
    assert "requires authentication" in capsys.readouterr().err

    monkeypatch.setattr("sys.stdin", io.StringIO("wrong\n"))
    assert run("login", host, "-u", "alice", "--password-stdin", "--tls-verify=false") == 1
    assert "refused" in capsys.readouterr().err

    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret\n"))
    assert run("login", host, "-u", "alice", "--password-stdin", "--tls-verify=false") == 0
    authfile = home / "run" / "containers" / "auth.json"
    assert str(authfile) in capsys.readouterr().out
    assert stat.S_IMODE(authfile.stat().st_mode) == 0o600
    assert host in json.loads(authfile.read_text())["auths"]

    assert run("inspect", image, "--tls-verify=false", "--json") == 0
    assert json.loads(capsys.readouterr().out)["labels"]["atomic.type"] == "system"

    assert run("logout", host) == 0
    assert json.loads(authfile.read_text())["auths"] == {}
    assert run("logout", host) == 1
    assert "not logged in" in capsys.readouterr().err
    assert run("logout") == 2


def test_pull_from_registry_through_the_cli(
    home: Path, plain_registry: PlainRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    """pull docker://… --json streams JSON events, the image lists and checks out."""
    ref = f"docker://{plain_registry.host}/test/busybox:1"
    assert run("pull", ref, "--tls-verify=false", "--json") == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    result = events[-1]
    assert result["event"] == "result" and result["name"] == f"{plain_registry.host}/test/busybox:1"
    assert result["layers_imported"] == result["layers_total"] >= 1
    expected = skopeo_inspect(plain_registry.registry, "test/busybox:1")["Digest"]
    assert result["id"] == expected
    assert run("images", "list", "--json") == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["image_id"] == expected and row["tag"] == "1"
    assert run("checkout", "busybox:1", str(home / "co")) == 0
    assert (home / "co" / "bin" / "busybox").is_file()
    # a plain-HTTP registry without --tls-verify=false is refused with a hint
    capsys.readouterr()
    assert run("pull", ref) == 1
    assert "hint:" in capsys.readouterr().err
