"""Lookaside signature storage: where containers-registries.d(5) keeps an image's signatures.

A registries.d directory holds ``*.yaml`` files, merged; a scope or ``default-docker`` given in
two files is an error. Each names a section whose ``lookaside`` (legacy: ``sigstore``) URL is the
top of a signature store; the ``*-staging`` keys are for writers (``skopeo copy --sign-by``), so
they are accepted and ignored; ``use-sigstore-attachments`` says whether sigstore signatures are
read from the registry (``uses_sigstore_attachments``). For an image the
section of its most specific scope with a ``lookaside`` URL wins: the exact reference
(``host/repo:tag`` or ``host/repo@digest``), the repository, each parent namespace, the host,
``*.`` wildcards of the host's domains, and last ``default-docker``. The store then reads::

    BASE/REPO@ALGO=HEX/signature-1      REPO: the repository path without the host,
    BASE/REPO@ALGO=HEX/signature-2      ALGO:HEX: the manifest digest
    ...                                 (signature-N up to the first missing one)

as containers/image does (docker/registries_d.go, docker/docker_image_src.go).
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

from syscontainers.errors import PolicyError
from syscontainers.record import record, replace
from syscontainers.reference import Reference, normalize
from syscontainers.trust.scopes import docker_namespaces

MAX_SIGNATURE_SIZE = 4 << 20  # containers/image iolimits.MaxSignatureBodySize
MAX_SIGNATURES = 128  # containers/image maxLookasideSignatures
# Where containers/image (and skopeo --sign-by) read and write for root when registries.d
# configures nothing; callers that want that pass it as FALLBACK.
BUILTIN_LOOKASIDE = "file:///var/lib/containers/sigstore"

_URL_KEYS = ("lookaside", "sigstore", "lookaside-staging", "sigstore-staging")
_FLAG_KEY = "use-sigstore-attachments"
# What yaml.v3 decodes into a Go bool: YAML 1.2 booleans and the YAML 1.1 spellings.
_YAML_BOOLS = frozenset(
    "true True TRUE false False FALSE y Y yes Yes YES n N no No NO on On ON off Off OFF".split()
)
_DIGEST_RE = re.compile(r"sha256:[a-f0-9]{64}|sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128}")
_HINT = (
    "see containers-registries.d(5): optional 'default-docker' and 'docker' (scope -> section) "
    "keys, each section a mapping with a 'lookaside' URL"
)


@record
class RegistriesD:
    """The merged lookaside configuration of a registries.d directory."""

    default: str = ""  # default-docker lookaside URL ("" if none)
    scopes: tuple[tuple[str, str], ...] = ()  # (scope, lookaside URL; "" if it has none)
    origin: str = ""  # the directory (or files) it came from, for messages
    # use-sigstore-attachments, where a section sets it: default-docker's, then per scope
    default_attachments: bool | None = None
    attachments: tuple[tuple[str, bool], ...] = ()


# ---- parsing -------------------------------------------------------------------


@functools.cache
def _loader() -> Any:
    """yaml.safe_load's loader, reading as containers/image's yaml.v3 does: a key twice in one
    mapping is an error, and a scalar given for a string (``lookaside: 8080``) is its text."""
    import yaml

    class Loader(yaml.SafeLoader):
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
            seen: set[str] = set()
            for key, _ in node.value:
                if isinstance(key, yaml.ScalarNode):
                    if key.value in seen:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"found duplicate key {key.value!r}", key.start_mark
                        )
                    seen.add(key.value)
            return super().construct_mapping(node, deep)

    def text(loader: yaml.SafeLoader, node: yaml.Node) -> str:
        return str(node.value)

    for tag in ("bool", "int", "float", "timestamp"):
        Loader.add_constructor(f"tag:yaml.org,2002:{tag}", text)
    return Loader


def _load_yaml(name: str, content: bytes) -> dict[Any, Any]:
    import yaml

    try:
        # yaml.v3's Unmarshal reads the first document of a stream and ignores the rest.
        doc = next(iter(yaml.load_all(content, Loader=_loader())), None)
    except yaml.YAMLError as e:
        where = ""
        if isinstance(e, yaml.MarkedYAMLError) and e.problem_mark is not None:
            where = f" at line {e.problem_mark.line + 1}, column {e.problem_mark.column + 1}"
        problem = e.problem if isinstance(e, yaml.MarkedYAMLError) and e.problem else str(e)
        raise PolicyError(
            f"registries.d file {name} is not valid YAML: {problem}{where}", hint=_HINT
        ) from e
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise PolicyError(
            f"registries.d file {name} is a YAML {_kind(doc)}, not a mapping", hint=_HINT
        )
    return doc


def _kind(value: object) -> str:
    if isinstance(value, dict):
        return "mapping"
    return "sequence" if isinstance(value, list) else "scalar"


def _section(name: str, where: str, value: object) -> tuple[str, bool | None]:
    """The read URL and the use-sigstore-attachments flag (None: unset) of the section VALUE,
    found at WHERE in the file NAME."""
    if value is None:
        return "", None
    if not isinstance(value, dict):
        raise PolicyError(
            f"registries.d file {name}: {where} is a {_kind(value)}, not a mapping of settings",
            hint=_HINT,
        )
    urls: dict[str, str] = {}
    for key in _URL_KEYS:
        url = value.get(key)
        if url is not None and not isinstance(url, str):
            raise PolicyError(
                f"registries.d file {name}: {where} key {key!r} is a {_kind(url)}, not a URL",
                hint="write it as lookaside: https://host/path or file:///path",
            )
        urls[key] = url or ""
    flag = value.get(_FLAG_KEY)
    if flag is not None and flag not in _YAML_BOOLS:
        raise PolicyError(
            f"registries.d file {name}: {where} key {_FLAG_KEY!r} is {flag!r}, not a boolean",
            hint="write true or false",
        )
    attachments = None if flag is None else flag.lower() in ("true", "y", "yes", "on")
    return urls["lookaside"] or urls["sigstore"], attachments


def _docker(name: str, value: object) -> dict[str, object]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PolicyError(
            f"registries.d file {name}: key 'docker' is a {_kind(value)}, not a mapping of scopes",
            hint=_HINT,
        )
    return {"" if key is None else str(key): section for key, section in value.items()}


def parse_registries_d(files: Sequence[tuple[str, bytes]]) -> RegistriesD:
    """Merge registries.d FILES, (name, YAML content) pairs; raise PolicyError if one is
    malformed or two define the same scope (unknown keys are ignored, as containers/image does)."""
    default, default_from = "", ""
    default_attachments: bool | None = None
    scopes: dict[str, str] = {}
    attachments: dict[str, bool] = {}
    scope_from: dict[str, str] = {}
    for name, content in files:
        doc = _load_yaml(name, content)
        # A null default-docker is no section at all (a nil pointer in containers/image);
        # a null scope is an empty section, which still counts as defined.
        if doc.get("default-docker") is not None:
            if default_from:
                raise PolicyError(
                    f"registries.d: 'default-docker' is defined both in {default_from} "
                    f"and in {name}",
                    hint="keep one default-docker section in the whole directory",
                )
            default, default_attachments = _section(name, "'default-docker'", doc["default-docker"])
            default_from = name
        for scope, section in _docker(name, doc.get("docker")).items():
            if scope in scope_from:
                raise PolicyError(
                    f"registries.d: docker scope {scope!r} is defined both in "
                    f"{scope_from[scope]} and in {name}",
                    hint="configure each scope in one file only",
                )
            scopes[scope], flag = _section(name, f"docker scope {scope!r}", section)
            if flag is not None:
                attachments[scope] = flag
            scope_from[scope] = name
    origin = ", ".join(name for name, _ in files)
    return RegistriesD(
        default, tuple(scopes.items()), origin, default_attachments, tuple(attachments.items())
    )


def load_registries_d(directory: Path) -> RegistriesD:
    """Read and merge every ``*.yaml`` in DIRECTORY, by name; a missing directory is empty."""
    try:
        names = sorted(p.name for p in directory.iterdir() if p.name.endswith(".yaml"))
    except FileNotFoundError:
        return RegistriesD(origin=str(directory))
    except OSError as e:
        raise PolicyError(
            f"cannot list the registries.d directory {directory}: {e.strerror}",
            hint="point the registries.d setting at a readable directory",
        ) from e
    files = []
    for name in names:
        path = directory / name
        try:
            files.append((str(path), path.read_bytes()))
        except FileNotFoundError:
            continue  # removed since the listing: containers/image skips it too
        except OSError as e:
            raise PolicyError(
                f"cannot read the registries.d file {path}: {e.strerror}",
                hint="fix its permissions, or remove it",
            ) from e
    return replace(parse_registries_d(files), origin=str(directory))


# ---- lookup --------------------------------------------------------------------


def _scopes(ref: Reference) -> tuple[str, ...]:
    """The registries.d scopes of REF, most specific first: its exact forms, then the
    namespaces a policy uses too. containers/image refuses a reference with both a tag and a
    digest; we accept either exact form for it, the tag first."""
    ref = normalize(ref)
    exact = [f"{ref.name}:{ref.tag}"] if ref.tag else []
    if ref.digest:
        exact.append(f"{ref.name}@{ref.digest}")
    return (*exact, *docker_namespaces(ref))


def lookaside_for(config: RegistriesD, ref: Reference, fallback: str = "") -> str:
    """The lookaside base URL for REF, from its most specific scope with one; else
    default-docker; else FALLBACK ("" by default; containers/image uses BUILTIN_LOOKASIDE).

    A scope with a tag (``host/repo:tag``) applies to that tag only, never as a namespace.
    A section without a lookaside URL (say, only ``lookaside-staging``) passes to the next scope.
    """
    table = dict(config.scopes)
    for scope in _scopes(ref):
        if table.get(scope):
            return table[scope]
    return config.default or fallback


def uses_sigstore_attachments(config: RegistriesD, ref: Reference) -> bool:
    """Whether REF's sigstore signatures are to be read from registry attachments (the
    ``sha256-HEX.sig`` tag): the flag of REF's most specific scope that sets it, else
    default-docker's, else no (docker/registries_d.go useSigstoreAttachments)."""
    table = dict(config.attachments)
    for scope in _scopes(ref):
        if scope in table:
            return table[scope]
    return bool(config.default_attachments)


def _split(url: str, what: str) -> SplitResult:
    try:
        return urlsplit(url)
    except ValueError as e:
        raise PolicyError(
            f"{what} {url!r} is not a valid URL: {e}",
            hint="fix the lookaside URL in registries.d",
        ) from e


def signature_urls(base: str, ref: Reference, manifest_digest: str) -> Iterator[str]:
    """BASE/REPO@ALGO=HEX/signature-1, -2, … without end, for REF's repository path (no host)
    and MANIFEST_DIGEST; raise PolicyError for an empty BASE or an invalid digest."""
    if not _DIGEST_RE.fullmatch(manifest_digest):
        raise PolicyError(
            f"manifest digest {manifest_digest!r} of {ref} is not a valid digest",
            hint="a digest is sha256:, sha384: or sha512: and its lowercase hex",
        )
    if not base:
        raise PolicyError(f"no lookaside storage is configured for {ref}", hint=_HINT)
    parts = _split(base, "lookaside storage")
    algo, encoded = manifest_digest.split(":", 1)
    # String concatenation, not a URL join: containers/image appends to the base's path, so
    # a trailing slash in BASE gives "//" and a base's query string is kept.
    prefix = f"{parts.path}/{normalize(ref).path}@{algo}={encoded}/signature-"
    return (urlunsplit(parts._replace(path=f"{prefix}{n}")) for n in itertools.count(1))


def read_signatures(
    config: RegistriesD,
    ref: Reference,
    manifest_digest: str,
    fetch: Callable[[str], bytes | None],
    limit: int = MAX_SIGNATURES,
    fallback: str = "",
) -> list[bytes]:
    """Every lookaside signature of REF's manifest MANIFEST_DIGEST: FETCH(url) for signature-1,
    -2, … until it returns None. [] if no storage is configured (see lookaside_for's FALLBACK).

    As containers/image (with 128), at most LIMIT URLs are tried: if all LIMIT exist the store
    is taken to be broken or hostile and PolicyError is raised.
    """
    base = lookaside_for(config, ref, fallback)
    if not base:
        return []
    found: list[bytes] = []
    for url in signature_urls(base, ref, manifest_digest):
        if len(found) >= limit:
            raise PolicyError(
                f"lookaside storage {base} has {limit} or more signatures for {ref} "
                f"({manifest_digest}); assuming it is broken",
                hint="remove stale signatures from the storage, or check the server",
            )
        blob = fetch(url)
        if blob is None:
            break
        found.append(blob)
    return found


def _read_file(path: str, url: str, limit: int) -> bytes | None:
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise PolicyError(
            f"cannot read the signature {url}: {e.strerror}",
            hint="check the lookaside directory that registries.d names",
        ) from e
    return data


def fetch_url(
    url: str, http_get: Callable[[str, int], bytes | None], limit: int = MAX_SIGNATURE_SIZE
) -> bytes | None:
    """One signature at URL: file:// is read here, http(s):// through HTTP_GET(url, LIMIT);
    None if it does not exist. Raise PolicyError for another scheme or a signature over LIMIT
    bytes."""
    parts = _split(url, "signature URL")
    if parts.scheme == "file":
        data = _read_file(unquote(parts.path), url, limit)
    elif parts.scheme in ("http", "https"):
        data = http_get(url, limit)
    else:
        raise PolicyError(
            f"signature URL {url} has an unsupported scheme {parts.scheme!r}",
            hint="lookaside URLs in registries.d must be file://, http:// or https://",
        )
    if data is not None and len(data) > limit:
        raise PolicyError(
            f"the signature {url} is larger than {limit} bytes",
            hint="that is no simple-signing signature; check the lookaside storage",
        )
    return data
