"""CLI verbs for registries: login, logout, and inspect of a remote image.

``add_registry_options`` and ``registry_options`` are shared with the pull
verb, so that every command that talks to a registry takes the same flags.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from syscontainers.cli.context import Answer, Context, Document, answer
from syscontainers.cli.output import human_bytes
from syscontainers.errors import ManifestError, UsageError
from syscontainers.settings_table import POLICY, add_flag

if TYPE_CHECKING:  # the registry package imports requests: load it only when a verb needs it
    from collections.abc import Callable

    from syscontainers.oci import Platform
    from syscontainers.operations.pull import PolicyCheck
    from syscontainers.registry import RegistryOptions
    from syscontainers.registry.credentials import Credentials
    from syscontainers.registry.remote_inspect import RemoteImage
    from syscontainers.sources import ImageSource, SourceOpener, SourceSpec


def parse_bool(text: str) -> bool:
    """'true'/'false' (and yes/no, 1/0) for flags such as --tls-verify=false."""
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not true or false")


def add_registry_options(parser: argparse.ArgumentParser) -> None:
    """Add --tls-verify, --authfile and --cert-dir to PARSER."""
    parser.add_argument(
        "--tls-verify",
        type=parse_bool,
        nargs="?",
        const=True,
        default=None,
        metavar="BOOL",
        help="require HTTPS with verified certificates (default: true, unless "
        "registries.conf marks the registry insecure); --tls-verify=false allows plain "
        "HTTP and unverified TLS",
    )
    parser.add_argument(
        "--authfile",
        type=Path,
        help="read and write credentials in this file only (default: $REGISTRY_AUTH_FILE "
        "alone if set, else ${XDG_RUNTIME_DIR}/containers/auth.json, "
        "~/.config/containers/auth.json, $DOCKER_CONFIG/config.json or "
        "~/.docker/config.json, then ~/.dockercfg)",
    )
    parser.add_argument(
        "--cert-dir",
        type=Path,
        help="use the *.crt CAs and *.cert/*.key client certificates in this directory "
        "instead of the first certs.d/HOST of ~/.config/containers, /etc/containers and "
        "/etc/docker",
    )


def add_policy_options(parser: argparse.ArgumentParser) -> None:
    """The trust-policy flags of every verb that pulls."""
    add_flag(
        parser,
        POLICY,
        "the containers-policy.json(5) that decides which images may be "
        "pulled (default: the policy setting, else ~/.config/containers/policy.json if it "
        "exists, else /etc/containers/policy.json)",
    )
    parser.add_argument(
        "--insecure-policy",
        action="store_true",
        help="pull without checking the trust policy or any signature",
    )


def policy_checks(ctx: Context, args: argparse.Namespace) -> Callable[[SourceSpec], PolicyCheck]:
    """The trust-policy check for each source a command pulls from (the trust package is
    imported, and the policy file chosen, when a source is first checked: nothing is read
    before that in either case, so a command that pulls nothing does not load it)."""
    settings = ctx.settings
    insecure = bool(args.insecure_policy)

    def check(spec: SourceSpec) -> PolicyCheck:
        from syscontainers.containers_conf import policy_file
        from syscontainers.trust.check import policy_checks as checks

        policy = policy_file(os.environ, settings.policy)
        return checks(policy, settings.registries_d, insecure)(spec)

    return check


def lazy_registry_opener(ctx: Context, args: argparse.Namespace) -> SourceOpener:
    """The opener for docker:// sources, with the flags from add_registry_options; the
    registry package (and requests) is imported when a source is first opened."""

    def opener(spec: SourceSpec) -> ImageSource:
        from syscontainers.registry import registry_opener

        return registry_opener(ctx.settings, registry_options(args))(spec)

    return opener


def registry_options(args: argparse.Namespace) -> RegistryOptions:
    """The RegistryOptions the flags from add_registry_options ask for."""
    from syscontainers.registry import RegistryOptions

    return RegistryOptions(
        tls_verify=args.tls_verify, authfile=args.authfile, cert_dir=args.cert_dir
    )


def parse_platform(text: str | None) -> Platform:
    """The --platform value, or this machine's platform."""
    from syscontainers.oci import Platform

    if not text:
        return Platform.host()
    try:
        return Platform.parse(text)
    except ManifestError as e:
        raise UsageError(e.message, hint=e.hint) from e


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add this area's verbs."""
    p = sub.add_parser(
        "login",
        help="save credentials for a registry",
        description="Check a username and password against REGISTRY, then save them where "
        "skopeo login would: in the containers auth file (--authfile, $REGISTRY_AUTH_FILE, "
        "else ${XDG_RUNTIME_DIR}/containers/auth.json; mode 0600), or in the credential "
        "helper that file's credHelpers names for REGISTRY.",
        allow_abbrev=False,
    )
    p.add_argument("registry", metavar="REGISTRY", help="the registry host[:port][/namespace]")
    p.add_argument("-u", "--username", help="the user name (prompted for when omitted)")
    p.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    add_registry_options(p)
    p.set_defaults(handler=_login)

    p = sub.add_parser(
        "logout",
        help="forget saved credentials",
        description="Remove the credentials for REGISTRY (or, with --all, for every "
        "registry) from the containers auth file that login writes, and from the credential "
        "helpers its credHelpers names.",
        allow_abbrev=False,
    )
    p.add_argument("registry", metavar="REGISTRY", nargs="?", help="the registry to forget")
    p.add_argument("--all", action="store_true", help="forget every registry")
    p.add_argument("--authfile", type=Path, help="the auth file to edit")
    p.set_defaults(handler=_logout)

    p = sub.add_parser(
        "inspect",
        help="show an image in a registry without pulling it",
        description="Show the digest, labels, config, layers and platforms of an image in "
        "a registry. No layer is downloaded.",
        allow_abbrev=False,
    )
    p.add_argument("image", metavar="docker://IMAGE", help="the image, e.g. docker://quay.io/x:1")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--raw", action="store_true", help="print the manifest (or index) verbatim")
    what.add_argument("--config", action="store_true", help="print the image config")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--platform", help="os/arch[/variant] to inspect in a multi-platform image")
    add_registry_options(p)
    p.set_defaults(handler=_inspect)


def _read_credentials(args: argparse.Namespace) -> Credentials:
    interactive = sys.stdin.isatty()
    username = args.username
    if not username:
        if not interactive:
            raise UsageError("no username given", hint="pass --username NAME")
        username = input("Username: ").strip()
    if args.password_stdin:
        password = sys.stdin.read().rstrip("\r\n")
    elif interactive:
        import getpass

        password = getpass.getpass("Password: ")
    else:
        raise UsageError("no password given", hint="pipe it in with --password-stdin")
    if not username or not password:
        raise UsageError(
            "the username and the password must not be empty",
            hint="give both: --username NAME, and the password when asked or on "
            "stdin with --password-stdin",
        )
    from syscontainers.registry.credentials import Credentials

    return Credentials(username, password)


def _login(ctx: Context, args: argparse.Namespace) -> Answer:
    creds = _read_credentials(args)
    from syscontainers.registry import login

    where = login(args.registry, creds, ctx.settings, registry_options(args))
    return answer(Document([f"Login succeeded for {args.registry} (saved in {where})"]))


def _logout(ctx: Context, args: argparse.Namespace) -> Answer:
    if args.all == bool(args.registry):
        raise UsageError("name one REGISTRY, or pass --all", hint="syscontainers logout quay.io")
    from syscontainers.registry import logout

    path, removed = logout(None if args.all else args.registry, ctx.settings, args.authfile)
    return answer(Document([f"Removed login credentials for {key} from {path}" for key in removed]))


def _inspect(ctx: Context, args: argparse.Namespace) -> Answer:
    from syscontainers.sources import Transport, parse_source  # only where a verb uses them

    spec = parse_source(args.image)
    if spec.transport is not Transport.DOCKER:
        raise UsageError(
            f"inspect reads registries, not {spec.transport.value}: sources",
            hint="write the image as docker://REGISTRY/NAME[:TAG]",
        )
    platform = parse_platform(args.platform)
    from syscontainers.registry import open_registry
    from syscontainers.registry.remote_inspect import inspect_image

    source = open_registry(spec.location, ctx.settings, registry_options(args))
    try:
        image = inspect_image(source, platform)
    finally:
        source.close()
    if args.raw:
        return answer(Document(raw=image.raw_manifest))
    if args.config:
        return answer(
            Document([json.dumps(json.loads(image.raw_config), indent=2, sort_keys=True)])
        )
    return answer(Document(describe(image), image.to_json()))


def describe(image: RemoteImage) -> list[str]:
    """Human-readable lines for an inspected image."""
    cfg = image.config
    lines = [f"Name:        {image.name}", f"Digest:      {image.digest}"]
    if image.manifest_digest != image.digest:
        lines.append(f"Manifest:    {image.manifest_digest} (for {image.platform})")
    lines += [
        f"Platform:    {image.platform}",
        f"Platforms:   {', '.join(image.platforms)}",
        f"Created:     {cfg.created or '-'}",
    ]
    labels = [f"{k}={v}" for k, v in cfg.labels] or ["-"]
    lines.append(f"Labels:      {labels[0]}")
    lines += [f"             {label}" for label in labels[1:]]
    command = " ".join((*cfg.entrypoint, *cfg.cmd)) or "-"
    lines.append(f"Command:     {command}")
    lines.append(f"Layers:      {len(image.layers)}, {human_bytes(image.size)} compressed")
    lines += [f"  {x.digest}  {human_bytes(x.size):>10}  {x.media_type}" for x in image.layers]
    return lines
