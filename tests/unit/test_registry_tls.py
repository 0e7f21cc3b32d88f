"""Tests for syscontainers.registry.tls: certs.d discovery and SSL contexts."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from syscontainers.errors import RegistryError, UsageError
from syscontainers.registry.tls import HostTls, TlsFiles, files_for_host, make_context, scan_dir


def touch(directory: Path, *names: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        (directory / name).write_text("x")


def test_scan_finds_cas_and_pairs(tmp_path: Path) -> None:
    touch(tmp_path, "b.crt", "a.crt", "client.cert", "client.key", "README")
    found = scan_dir(tmp_path)
    assert found.ca_files == (tmp_path / "a.crt", tmp_path / "b.crt")
    assert found.client_pairs == ((tmp_path / "client.cert", tmp_path / "client.key"),)


@pytest.mark.parametrize(("present", "missing"), [("c.cert", "c.key"), ("c.key", "c.cert")])
def test_half_a_client_pair_is_an_error(tmp_path: Path, present: str, missing: str) -> None:
    touch(tmp_path, present)
    with pytest.raises(UsageError, match=missing):
        scan_dir(tmp_path)


def test_files_for_host(tmp_path: Path) -> None:
    certs_d = tmp_path / "certs.d"
    touch(certs_d / "reg.example:5000", "ca.crt")
    touch(tmp_path / "flat", "other.crt")
    assert files_for_host("reg.example:5000", (certs_d,), None).ca_files == (
        certs_d / "reg.example:5000" / "ca.crt",
    )
    assert files_for_host("reg.example", (certs_d,), None) == TlsFiles()  # the port matters
    assert files_for_host("reg.example:5000", (certs_d,), tmp_path / "flat").ca_files == (
        tmp_path / "flat" / "other.crt",
    )
    assert files_for_host("x", (), None) == TlsFiles()


def test_the_first_certs_d_with_the_host_wins_whole(tmp_path: Path) -> None:
    first, second, third = (tmp_path / n for n in ("user", "containers", "docker"))
    touch(second / "reg:1", "a.crt")
    touch(third / "reg:1", "b.crt")
    touch(third / "reg:2", "c.crt")
    dirs = (first, second, third)
    assert files_for_host("reg:1", dirs, None).ca_files == (second / "reg:1" / "a.crt",)
    assert files_for_host("reg:2", dirs, None).ca_files == (third / "reg:2" / "c.crt",)
    (first / "reg:2").mkdir(parents=True)  # an empty directory still wins
    assert files_for_host("reg:2", dirs, None) == TlsFiles()


def test_contexts() -> None:
    verifying = make_context(HostTls())
    assert verifying.verify_mode == ssl.CERT_REQUIRED and verifying.check_hostname
    loose = make_context(HostTls(verify=False))
    assert loose.verify_mode == ssl.CERT_NONE and not loose.check_hostname


def test_unreadable_ca_is_a_registry_error(tmp_path: Path) -> None:
    touch(tmp_path, "bad.crt")
    with pytest.raises(RegistryError, match="cannot load TLS certificates"):
        make_context(HostTls(files=scan_dir(tmp_path)))
