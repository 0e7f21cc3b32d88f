"""Tests for syscontainers.cli.registry: the shared registry flags and the inspect text."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from syscontainers.cli.registry import (
    add_registry_options,
    describe,
    parse_bool,
    parse_platform,
    register,
    registry_options,
)
from syscontainers.errors import UsageError
from syscontainers.oci import ImageConfig, Platform
from syscontainers.registry import RegistryOptions
from syscontainers.registry.remote_inspect import LayerInfo, RemoteImage
from tests.unit.test_cli_habits import snake_keys


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(exit_on_error=False)
    add_registry_options(p)
    return p


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], RegistryOptions()),
        (["--tls-verify"], RegistryOptions(tls_verify=True)),
        (["--tls-verify=false"], RegistryOptions(tls_verify=False)),
        (["--tls-verify=TRUE"], RegistryOptions(tls_verify=True)),
        (
            ["--authfile", "/a.json", "--cert-dir", "/certs"],
            RegistryOptions(authfile=Path("/a.json"), cert_dir=Path("/certs")),
        ),
    ],
)
def test_registry_flags(argv: list[str], expected: RegistryOptions) -> None:
    assert registry_options(parser().parse_args(argv)) == expected


def test_parse_bool() -> None:
    assert [parse_bool(x) for x in ("1", "yes", "On", "0", "no", "off")] == [True] * 3 + [False] * 3
    with pytest.raises(argparse.ArgumentTypeError):
        parse_bool("maybe")


def test_parse_platform() -> None:
    assert parse_platform("linux/arm64/v8") == Platform("linux", "arm64", "v8")
    assert parse_platform(None) == Platform.host()
    with pytest.raises(UsageError, match="os/arch"):
        parse_platform("arm64")


def test_register_adds_the_verbs() -> None:
    p = argparse.ArgumentParser()
    register(p.add_subparsers(dest="verb"))
    args = p.parse_args(["inspect", "docker://quay.io/x:1", "--raw", "--platform", "linux/arm64"])
    assert (args.verb, args.raw, args.config, args.platform) == (
        "inspect",
        True,
        False,
        "linux/arm64",
    )
    args = p.parse_args(["login", "quay.io", "-u", "bob", "--password-stdin"])
    assert (args.registry, args.username, args.password_stdin) == ("quay.io", "bob", True)
    args = p.parse_args(["logout", "--all"])
    assert args.all and args.registry is None


def test_describe() -> None:
    config = ImageConfig(
        diff_ids=("sha256:" + "1" * 64,),
        created="2024-01-01T00:00:00Z",
        architecture="amd64",
        os="linux",
        cmd=("/bin/sh",),
        labels=(("a", "1"), ("b", "2")),
    )
    image = RemoteImage(
        name="quay.io/x:1",
        digest="sha256:" + "a" * 64,
        manifest_digest="sha256:" + "b" * 64,
        media_type="application/vnd.oci.image.index.v1+json",
        platform="linux/amd64",
        platforms=("linux/amd64", "linux/arm64"),
        config=config,
        layers=(LayerInfo("sha256:" + "c" * 64, 2048, "application/vnd.oci.image.layer.v1.tar"),),
        raw_manifest=b"{}",
        raw_config=b"{}",
    )
    text = "\n".join(describe(image))
    assert f"Manifest:    sha256:{'b' * 64} (for linux/amd64)" in text
    assert "Platforms:   linux/amd64, linux/arm64" in text
    assert "Labels:      a=1\n             b=2" in text
    assert "Layers:      1, 2.0 KiB compressed" in text
    assert image.to_json()["layers_data"][0]["size"] == 2048
    assert snake_keys(image.to_json()) == []  # was skopeo's "LayersData", "MIMEType" …
