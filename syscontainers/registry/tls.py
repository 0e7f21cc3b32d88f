"""TLS trust for registries: system CAs plus certs.d (``*.crt`` CAs, ``*.cert``/``*.key`` pairs).

The layout is the one containers-certs.d(5) describes: a directory per
``HOST[:PORT]`` under ``~/.config/containers/certs.d``, ``/etc/containers/certs.d``
or ``/etc/docker/certs.d`` (the first that has one wins) holding extra CA
certificates and client certificate/key pairs. ``--cert-dir`` names one such
directory directly, for every host of a command.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from syscontainers.containers_conf import host_certs_dir
from syscontainers.errors import RegistryError, UsageError
from syscontainers.record import record


@record
class TlsFiles:
    """The certificate files that apply to one registry host."""

    ca_files: tuple[Path, ...] = ()
    client_pairs: tuple[tuple[Path, Path], ...] = ()  # (cert, key)


@record
class HostTls:
    """How to talk TLS to one host."""

    verify: bool = True
    files: TlsFiles = TlsFiles()


def scan_dir(directory: Path) -> TlsFiles:
    """The CAs and client pairs in one certs directory; a missing directory is empty."""
    try:
        names = sorted(p.name for p in directory.iterdir() if p.is_file())
    except FileNotFoundError:
        return TlsFiles()
    except OSError as e:
        raise UsageError(
            f"cannot read certificate directory {directory}: {e.strerror}",
            hint="check the directory's permissions",
        ) from e
    cas = tuple(directory / n for n in names if n.endswith(".crt"))
    certs = {n[: -len(".cert")] for n in names if n.endswith(".cert")}
    keys = {n[: -len(".key")] for n in names if n.endswith(".key")}
    for stem in sorted(certs ^ keys):
        have, lack = (".cert", ".key") if stem in certs else (".key", ".cert")
        raise UsageError(
            f"{directory / (stem + have)} has no matching {stem + lack}",
            hint="a client certificate needs both NAME.cert and NAME.key",
        )
    pairs = tuple((directory / f"{s}.cert", directory / f"{s}.key") for s in sorted(certs))
    return TlsFiles(cas, pairs)


def files_for_host(host: str, certs_dirs: tuple[Path, ...], cert_dir: Path | None) -> TlsFiles:
    """The files for HOST: ``cert_dir`` if given, else the first ``CERTS_DIRS/HOST`` that
    exists (containers-certs.d(5): the first one wins whole)."""
    if cert_dir is not None:
        return scan_dir(cert_dir)
    found = host_certs_dir(certs_dirs, host)
    return TlsFiles() if found is None else scan_dir(found)


def make_context(tls: HostTls) -> ssl.SSLContext:
    """An SSL context trusting the system CAs and TLS's extra files."""
    context = ssl.create_default_context()
    try:
        for ca in tls.files.ca_files:
            context.load_verify_locations(cafile=str(ca))
        for cert, key in tls.files.client_pairs:
            context.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as e:
        raise RegistryError(
            f"cannot load TLS certificates: {e}",
            hint="check the *.crt, *.cert and *.key files in the certs.d directory",
        ) from e
    if not tls.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
