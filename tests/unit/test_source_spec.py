"""Tests for syscontainers.sources.parse_source: transport strings and how they print."""

from __future__ import annotations

import pytest

from syscontainers.errors import UsageError
from syscontainers.sources import (
    TRANSPORT_PREFIXES,
    SourceSpec,
    Transport,
    has_transport,
    open_source,
    parse_source,
    registry_source,
)

T = Transport

# text -> (transport, location, reference, how it prints)
VALID: list[tuple[str, tuple[Transport, str, str], str]] = [
    ("oci:/srv/layout", (T.OCI, "/srv/layout", ""), "oci:/srv/layout"),
    ("oci:/srv/layout:v1", (T.OCI, "/srv/layout", "v1"), "oci:/srv/layout:v1"),
    ("oci:layout", (T.OCI, "layout", ""), "oci:layout"),
    ("oci:./rel/dir:1.0", (T.OCI, "./rel/dir", "1.0"), "oci:./rel/dir:1.0"),
    # the first colon ends the path, as in skopeo: the rest is the reference, colons and all
    ("oci:dir:example.org/app:1", (T.OCI, "dir", "example.org/app:1"), "oci:dir:example.org/app:1"),
    ("oci-archive:/tmp/a.tar", (T.OCI_ARCHIVE, "/tmp/a.tar", ""), "oci-archive:/tmp/a.tar"),
    ("oci-archive:a.tar:latest", (T.OCI_ARCHIVE, "a.tar", "latest"), "oci-archive:a.tar:latest"),
    ("docker-archive:/x.tar", (T.DOCKER_ARCHIVE, "/x.tar", ""), "docker-archive:/x.tar"),
    (
        "docker-archive:x.tar:example.org/app:1",
        (T.DOCKER_ARCHIVE, "x.tar", "example.org/app:1"),
        "docker-archive:x.tar:example.org/app:1",
    ),
    ("docker-archive:x.tar:@0", (T.DOCKER_ARCHIVE, "x.tar", "@0"), "docker-archive:x.tar:@0"),
    ("docker://busybox", (T.DOCKER, "busybox", ""), "docker://busybox"),
    (
        "docker://example.org:5000/team/app:1",
        (T.DOCKER, "example.org:5000/team/app:1", ""),
        "docker://example.org:5000/team/app:1",
    ),
    ("docker://[::1]:5000/app", (T.DOCKER, "[::1]:5000/app", ""), "docker://[::1]:5000/app"),
    # no transport: a registry reference
    ("busybox", (T.DOCKER, "busybox", ""), "docker://busybox"),
    ("example.org/app:1", (T.DOCKER, "example.org/app:1", ""), "docker://example.org/app:1"),
    ("localhost:5000/app", (T.DOCKER, "localhost:5000/app", ""), "docker://localhost:5000/app"),
]


@pytest.mark.parametrize("text, parts, printed", VALID, ids=[t for t, _, _ in VALID])
def test_parse_source(text: str, parts: tuple[Transport, str, str], printed: str) -> None:
    spec = parse_source(text)
    assert (spec.transport, spec.location, spec.reference) == parts
    assert str(spec) == printed
    assert parse_source(str(spec)) == spec  # printing is lossless


@pytest.mark.parametrize(
    "text, fragment, hint",
    [
        ("oci:", "names no path", "oci:PATH[:TAG]"),
        ("oci::v1", "names no path", "oci:PATH[:TAG]"),
        ("oci-archive:", "names no path", "oci-archive:PATH[:TAG]"),
        ("docker-archive::app:1", "names no path", "docker-archive:PATH"),
        ("http://example.org/app", "unknown transport 'http'", "docker://"),
        ("ftp://x/y", "unknown transport 'ftp'", "oci-archive:"),
        ("docker://", "names no image", "[docker://]NAME"),
        ("", "names no image", "[docker://]NAME"),
    ],
)
def test_parse_source_errors(text: str, fragment: str, hint: str) -> None:
    with pytest.raises(UsageError) as e:
        parse_source(text)
    assert repr(text) in e.value.message
    assert fragment in e.value.message
    assert e.value.hint and hint in e.value.hint
    assert e.value.exit_code == 2


def test_transport_values() -> None:
    assert {t.value for t in Transport} == {"oci", "oci-archive", "docker-archive", "docker"}


def test_transport_prefixes_are_the_ones_parse_source_reads() -> None:
    assert TRANSPORT_PREFIXES == ("oci:", "oci-archive:", "docker-archive:", "docker://")
    for transport in Transport:
        text = f"{transport.prefix}x.tar"
        assert has_transport(text) and parse_source(text).transport is transport
        assert str(parse_source(text)).startswith(transport.prefix)
    for text in ("busybox", "example.org/app:1", "localhost:5000/app", "ocifoo", "docker:/x"):
        assert not has_transport(text)
    assert registry_source("quay.io/a:1") == "docker://quay.io/a:1"
    assert parse_source(registry_source("quay.io/a:1")) == SourceSpec(T.DOCKER, "quay.io/a:1")


def test_spec_is_a_frozen_value() -> None:
    spec = SourceSpec(T.OCI, "/srv", "v1")
    assert spec == parse_source("oci:/srv:v1")
    with pytest.raises(AttributeError):
        spec.location = "/x"  # type: ignore[misc]


def test_registry_transport_needs_an_opener() -> None:
    with pytest.raises(UsageError, match="registry transport is not available"):
        open_source(parse_source("docker://busybox"))
    opened: list[SourceSpec] = []

    def opener(spec: SourceSpec) -> object:
        opened.append(spec)
        return object()

    open_source(parse_source("busybox"), opener)  # type: ignore[arg-type]
    assert opened == [SourceSpec(T.DOCKER, "busybox")]
