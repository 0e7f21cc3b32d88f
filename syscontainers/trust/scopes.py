"""Names in a policy: the scopes an image is looked up by, and which scopes and names are valid.

These follow containers/image: ``docker/policyconfiguration/naming.go`` for registry images,
``oci/layout``, ``oci/archive`` and ``docker/archive`` for the local transports, each
transport's ``ValidatePolicyConfigurationScope`` for the scope keys a policy may use, and
``signature/policy_config.go`` for the names in a ``signedIdentity``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from syscontainers.errors import PolicyError, ReferenceParseError
from syscontainers.reference import Reference, normalize, parse

# A registry host, as in the reference grammar: DNS labels or an IPv6 literal, then a port.
_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST_RE = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?")
_WILDCARD_RE = re.compile(rf"\*\.{_LABEL}(?:\.{_LABEL})*")
# containers/image's own reference grammar (no IPv6 there), for remapIdentity prefixes.
_DOMAIN = rf"{_LABEL}(?:\.{_LABEL})*(?::[0-9]+)?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_RE = re.compile(_DOMAIN)
_NAME_RE = re.compile(rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*")
_DOMAIN_PREFIX_RE = re.compile(rf"{_DOMAIN}/")
_IMAGE_ID_RE = re.compile(r"[a-f0-9]{64}")

# Transports whose scopes are absolute, canonical paths (the others of containers/image's
# path transports, dir: and sif:, follow the same rule).
_PATH_SCOPED = frozenset({"oci", "oci-archive", "dir", "sif"})
# Transports that have no scope but the transport default "".
_UNSCOPED = frozenset({"docker-archive", "tarball"})

_DOCKER_HINT = (
    "a docker scope is a fully qualified name such as docker.io/library/busybox:latest, "
    "a repository or namespace (example.com/ns), a registry host[:port], or *.example.com"
)


def docker_scopes(ref: Reference) -> tuple[str, tuple[str, ...]]:
    """REF's policy identity and its namespaces, most specific first."""
    ref = normalize(ref)
    if ref.tag and ref.digest:
        raise PolicyError(
            f'image "{ref}" has both a tag and a digest, which no policy scope can describe',
            hint="name the image by tag or by digest, not both (containers/image refuses "
            "such references too)",
        )
    identity = f"{ref.name}:{ref.tag}" if ref.tag else f"{ref.name}@{ref.digest}"
    return identity, docker_namespaces(ref)


def docker_namespaces(ref: Reference) -> tuple[str, ...]:
    """The namespaces of the normalized REF, most specific first: the repository, each parent
    namespace, the host[:port], then ``*.DOMAIN`` wildcards of the host (naming.go); the
    registries.d lookup walks the same list."""
    namespaces = [ref.name]
    name = ref.name
    while "/" in name:
        name = name.rsplit("/", 1)[0]
        namespaces.append(name)
    # Wildcards go by the host without its port: example.com:8443 gives *.com.
    host = name.split(":", 1)[0]
    while "." in host:
        host = host.split(".", 1)[1]
        namespaces.append(f"*.{host}")
    return tuple(namespaces)


def path_scopes(transport: str, path: Path, reference: str = "") -> tuple[str, tuple[str, ...]]:
    """The policy identity and namespaces of the image at PATH in an oci:, oci-archive: or
    docker-archive: source.

    REFERENCE (the ``:ref`` of the source) is not part of the identity: containers/image
    leaves it out because ``DIR:ref`` and ``DIR:`` may name the same image.
    """
    del reference  # see the docstring
    if transport == "docker-archive":
        # containers/image gives docker-archive: no identity: only its "" scope applies.
        return "", ()
    if transport not in ("oci", "oci-archive"):
        raise PolicyError(
            f"no policy scopes are defined for transport {transport!r}",
            hint="use oci, oci-archive, docker-archive, or docker_scopes() for docker",
        )
    resolved = _clean(os.path.realpath(path))
    namespaces = []
    current = resolved
    while current not in ("/", ""):
        namespaces.append(current)
        current = current.rsplit("/", 1)[0]
    return resolved, tuple(namespaces)


def scope_problem(transport: str, scope: str) -> tuple[str, str] | None:
    """Why SCOPE is not a valid scope of TRANSPORT, as (reason, hint); None if it is valid.

    The "" scope is always valid. Transports that syscontainers does not know are not checked,
    as containers/image does not check the transports it does not know.
    """
    if scope == "":
        return None
    if transport == "docker":
        return _docker_problem(scope)
    if transport in _PATH_SCOPED:
        return _path_problem(transport, scope)
    if transport in _UNSCOPED:
        return (
            f'transport {transport} has no scopes but the default ""',
            'put these requirements under "" or in the global "default"',
        )
    return None


def name_problem(field: str, text: str) -> tuple[str, str] | None:
    """Why TEXT is not valid for the signedIdentity FIELD, as (reason, hint); None if it is.

    FIELD is dockerReference (a name with a tag or digest), dockerRepository (a name),
    or prefix / signedPrefix of remapIdentity.
    """
    quoted = json.dumps(text)
    if field in ("prefix", "signedPrefix"):
        # As containers/image: a host[:port], or a name that starts with one. (Short names
        # slip through there too, and then never match.)
        if _DOMAIN_RE.fullmatch(text) or (
            _NAME_RE.fullmatch(text) and _DOMAIN_PREFIX_RE.match(text)
        ):
            return None
        return (
            f"{field} {quoted} is not a host[:port], namespace or repository",
            "write e.g. example.com/mirror (no tag, no digest, no trailing /)",
        )
    hint = "write a reference such as docker.io/library/busybox:latest"
    if _IMAGE_ID_RE.fullmatch(text):
        return f"{quoted} is an image ID, not a name", hint
    try:
        ref = parse(text)
    except ReferenceParseError as e:
        return f"invalid {field} {quoted}: {e.message}", hint
    if field == "dockerReference" and not (ref.tag or ref.digest):
        return f"{field} {quoted} has neither a tag nor a digest", hint
    return None


def _docker_problem(scope: str) -> tuple[str, str] | None:
    quoted = json.dumps(scope)
    if scope.startswith("*"):
        if _WILDCARD_RE.fullmatch(scope):
            return None
        return (
            f"wildcard scope {quoted} is not *.DOMAIN",
            "a wildcard is *. followed by a domain without a port, e.g. *.example.com",
        )
    if "/" not in scope:
        if _HOST_RE.fullmatch(scope) and _is_registry_host(scope):
            return None
        return f"scope {quoted} is not a registry host[:port]", _DOCKER_HINT
    try:
        ref = parse(scope)
    except ReferenceParseError as e:
        return f"scope {quoted} is not a valid image name ({e.message})", _DOCKER_HINT
    if not ref.domain:
        return (
            f"scope {quoted} does not start with a registry host",
            f"scopes match fully qualified names: write docker.io/{scope} or HOST/{scope}",
        )
    if ref.tag and ref.digest:
        return f"scope {quoted} has both a tag and a digest", _DOCKER_HINT
    return None


def _is_registry_host(host: str) -> bool:
    # A name without a dot or port (other than localhost) is a Docker Hub namespace in a
    # reference, so it never appears as a host.
    return "." in host or ":" in host or host == "localhost" or host.startswith("[")


def _path_problem(transport: str, scope: str) -> tuple[str, str] | None:
    quoted = json.dumps(scope)
    if not scope.startswith("/"):
        return (
            f"scope {quoted} is not an absolute path",
            f"{transport} scopes are absolute paths, e.g. /var/lib/images",
        )
    if scope == "/":
        return 'scope "/" would shadow the transport default', 'use the scope "" instead'
    cleaned = _clean(scope)
    if cleaned != scope:
        return f"scope {quoted} is not a canonical path", f"write it as {json.dumps(cleaned)}"
    return None


def _clean(path: str) -> str:
    """PATH with "//", "." and ".." collapsed lexically, as Go's filepath.Clean does."""
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == ".." and parts and parts[-1] != "..":
            parts.pop()
        elif part == ".." and rooted:
            continue
        else:
            parts.append(part)
    joined = "/".join(parts)
    if rooted:
        return "/" + joined
    return joined or "."
