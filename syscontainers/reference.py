"""Image reference parsing: ``[domain/]path[:tag][@sha256:…]``, as in the distribution grammar."""

from __future__ import annotations

import re

from syscontainers.errors import ReferenceParseError
from syscontainers.record import record

DEFAULT_TAG = "latest"
MAX_NAME = 255  # the distribution spec's limit on a repository name, registry included

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"sha256:[0-9a-f]{64}"
# Matched with fullmatch: "$" would let a trailing newline through. Tags are ASCII.
_DOMAIN_RE = re.compile(_DOMAIN)
_PATH_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG_RE = re.compile(_TAG, re.ASCII)
_DIGEST_RE = re.compile(_DIGEST)


@record
class Reference:
    """A parsed image reference. ``domain`` is empty for a name without one."""

    domain: str
    path: str
    tag: str = ""
    digest: str = ""

    @property
    def name(self) -> str:
        """The repository name, with the domain when there is one."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    @property
    def tag_or_default(self) -> str:
        """The tag, or ``latest`` when neither tag nor digest was given."""
        return self.tag or DEFAULT_TAG

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    def with_default_tag(self) -> Reference:
        """This reference, with tag ``latest`` if it names neither tag nor digest."""
        if self.tag or self.digest:
            return self
        return Reference(self.domain, self.path, DEFAULT_TAG)

    @property
    def store_key(self) -> str:
        """The key the store keeps this reference under: ``name:tag``, or ``name@digest`` for a
        reference by digest alone (so that it never overwrites the user's ``name:latest``)."""
        if self.digest and not self.tag:
            return f"{self.name}@{self.digest}"
        return f"{self.name}:{self.tag_or_default}"


def _looks_like_domain(first: str) -> bool:
    return "." in first or ":" in first or first == "localhost" or first.startswith("[")


def parse(text: str) -> Reference:
    """Parse TEXT into a Reference; raise ReferenceParseError with a hint if it is invalid."""
    if not text or len(text) > 4096 or text != text.strip():
        raise ReferenceParseError(
            f"image reference {text!r} is empty or has surrounding whitespace",
            hint="write it as [registry/]name[:tag][@sha256:digest]",
        )
    rest, digest = text, ""
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST_RE.fullmatch(digest):
            raise ReferenceParseError(
                f"image reference {text!r} has an invalid digest {digest!r}",
                hint="a digest is sha256: followed by 64 lowercase hex digits",
            )
    tag = ""
    slash, colon = rest.rfind("/"), rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG_RE.fullmatch(tag):
            raise ReferenceParseError(
                f"image reference {text!r} has an invalid tag {tag!r}",
                hint="a tag is up to 128 ASCII letters, digits, '_', '.' or '-', "
                "not starting with . or -",
            )
    first = rest.split("/", 1)[0]
    domain, path = ("", rest)
    if "/" in rest and _looks_like_domain(first):
        domain, path = rest.split("/", 1)
    if not _PATH_RE.fullmatch(path) or (domain and not _DOMAIN_RE.fullmatch(domain)):
        raise ReferenceParseError(
            f"image reference {text!r} is not a valid image name",
            hint="names are lowercase letters, digits and separators (. _ - /), "
            "optionally after a registry host[:port]/",
        )
    if len(rest) > MAX_NAME:
        raise ReferenceParseError(
            f"image reference {text!r} has a name longer than {MAX_NAME} characters",
            hint="registries refuse longer repository names; choose a shorter name",
        )
    return Reference(domain, path, tag, digest)


# ---- normalisation, as the containers tools do it ---------------------------

DOCKER_HUB = "docker.io"
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})


def is_short_name(ref: Reference) -> bool:
    """True if REF names no registry (it must be resolved through registries.conf)."""
    return not ref.domain


def normalize(ref: Reference) -> Reference:
    """A fully qualified REF in canonical form: docker.io/library/NAME, tag ``latest``.

    Raises ReferenceParseError for a short name, which only registries.conf can qualify.
    """
    if is_short_name(ref):
        raise ReferenceParseError(
            f"image reference {str(ref)!r} names no registry",
            hint="write it as REGISTRY/NAME, for example docker.io/library/" + ref.path,
        )
    domain, path = ref.domain, ref.path
    if domain in _HUB_ALIASES:
        domain = DOCKER_HUB
        if "/" not in path:
            path = f"library/{path}"
    return Reference(domain, path, ref.tag, ref.digest).with_default_tag()


def qualify(ref: Reference, name: str) -> Reference:
    """REF's tag and digest on the fully qualified NAME, normalised."""
    target = parse(name)
    return normalize(Reference(target.domain, target.path, ref.tag, ref.digest))
