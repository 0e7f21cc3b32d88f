"""Tests for syscontainers.reference: the image name grammar, tags, digests and store keys."""

from __future__ import annotations

import pytest

from syscontainers.errors import ReferenceParseError, UsageError
from syscontainers.reference import DEFAULT_TAG, Reference, parse

DIG = "sha256:" + "0123456789abcdef" * 4

# text -> (domain, path, tag, digest)
VALID: list[tuple[str, tuple[str, str, str, str]]] = [
    ("busybox", ("", "busybox", "", "")),
    ("x", ("", "x", "", "")),
    ("busybox:1.36", ("", "busybox", "1.36", "")),
    ("library/busybox:latest", ("", "library/busybox", "latest", "")),
    ("docker.io/library/busybox", ("docker.io", "library/busybox", "", "")),
    ("example.org/etcd:3.5", ("example.org", "etcd", "3.5", "")),
    ("example.org:5000/team/app:v1.2.3-rc_1", ("example.org:5000", "team/app", "v1.2.3-rc_1", "")),
    ("Registry.Example.COM/app", ("Registry.Example.COM", "app", "", "")),  # hosts may be upper
    ("my-registry.local/a__b/c.d/e-f", ("my-registry.local", "a__b/c.d/e-f", "", "")),
    ("127.0.0.1:5000/app", ("127.0.0.1:5000", "app", "", "")),
    ("registry:5000/app", ("registry:5000", "app", "", "")),  # a port makes it a host
    ("localhost/app", ("localhost", "app", "", "")),
    ("localhost:5000/app:tag", ("localhost:5000", "app", "tag", "")),
    ("localhost:5000/a/b/c:tag", ("localhost:5000", "a/b/c", "tag", "")),
    ("[::1]/app", ("[::1]", "app", "", "")),
    ("[::1]:5000/app:1", ("[::1]:5000", "app", "1", "")),
    ("[2001:db8::1]:443/a/b", ("[2001:db8::1]:443", "a/b", "", "")),
    ("localhost", ("", "localhost", "", "")),  # no slash: a name, not a host
    ("localhost:5000", ("", "localhost", "5000", "")),  # ... and 5000 is its tag
    ("example.com", ("", "example.com", "", "")),
    ("team/app", ("", "team/app", "", "")),  # no dot, colon or localhost: not a host
    ("a--b", ("", "a--b", "", "")),
    ("a---b.c_d", ("", "a---b.c_d", "", "")),
    ("app:_private", ("", "app", "_private", "")),
    ("app:V1.Final", ("", "app", "V1.Final", "")),  # tags may be upper case
    ("app:" + "t" * 128, ("", "app", "t" * 128, "")),
    (f"app@{DIG}", ("", "app", "", DIG)),
    (f"app:1@{DIG}", ("", "app", "1", DIG)),
    (f"example.org:5000/app:1@{DIG}", ("example.org:5000", "app", "1", DIG)),
    (f"[::1]:5000/app@{DIG}", ("[::1]:5000", "app", "", DIG)),
]

# text -> a fragment of the message
INVALID: list[tuple[str, str]] = [
    ("", "is empty or has surrounding whitespace"),
    (" busybox", "surrounding whitespace"),
    ("busybox ", "surrounding whitespace"),
    ("busybox\n", "surrounding whitespace"),
    ("x" * 4097, "is empty"),
    ("Busybox", "not a valid image name"),
    ("library/Busybox", "not a valid image name"),
    ("UPPER/case", "not a valid image name"),
    ("example.org/Team/app", "not a valid image name"),
    ("foo bar", "not a valid image name"),
    ("föö", "not a valid image name"),
    ("foo/", "not a valid image name"),
    ("/foo", "not a valid image name"),
    ("foo//bar", "not a valid image name"),
    ("-foo", "not a valid image name"),
    ("foo-", "not a valid image name"),
    ("foo___bar", "not a valid image name"),
    ("foo..bar", "not a valid image name"),
    ("foo_.bar", "not a valid image name"),
    ("-registry.com/foo", "not a valid image name"),
    ("registry-.com/foo", "not a valid image name"),
    ("example.com:port/foo", "not a valid image name"),
    ("example.com:/foo", "not a valid image name"),
    ("[::1]", "invalid tag '1]'"),
    ("[::1]:5000", "not a valid image name"),
    ("[zz::1]/foo", "not a valid image name"),
    ("[::1/foo", "not a valid image name"),
    ("foo\n:tag", "not a valid image name"),
    ("foo:", "invalid tag ''"),
    ("foo:-tag", "invalid tag '-tag'"),
    ("foo:.tag", "invalid tag '.tag'"),
    ("foo:ta g", "invalid tag"),
    ("foo:t/a", "not a valid image name"),  # the colon is then inside a path component
    ("foo:" + "t" * 129, "invalid tag"),
    ("foo:tág", "invalid tag"),  # tags are ASCII
    ("foo:١٢", "invalid tag"),  # ... including their digits
    (f"foo:tag\n@{DIG}", "invalid tag"),
    ("foo@", "invalid digest ''"),
    ("foo@sha256:abc", "invalid digest"),
    ("foo@sha256:" + "A" * 64, "invalid digest"),
    ("foo@sha512:" + "a" * 128, "invalid digest"),
    ("foo@md5:" + "a" * 32, "invalid digest"),
    (f"foo@{DIG}@{DIG}", "invalid digest"),
    (f"Foo@{DIG}", "not a valid image name"),
]


@pytest.mark.parametrize("text, parts", VALID, ids=[t for t, _ in VALID])
def test_parse_valid(text: str, parts: tuple[str, str, str, str]) -> None:
    ref = parse(text)
    assert (ref.domain, ref.path, ref.tag, ref.digest) == parts
    assert str(ref) == text  # a valid reference prints as it was written


@pytest.mark.parametrize("text, fragment", INVALID, ids=[repr(t[:40]) for t, _ in INVALID])
def test_parse_invalid(text: str, fragment: str) -> None:
    with pytest.raises(ReferenceParseError) as e:
        parse(text)
    assert fragment in e.value.message
    assert repr(text) in e.value.message  # the message quotes what the user typed
    assert e.value.hint
    assert isinstance(e.value, UsageError) and e.value.exit_code == 2


@pytest.mark.parametrize(
    "text, name, store_key",
    [
        ("busybox", "busybox", "busybox:latest"),
        ("busybox:1.36", "busybox", "busybox:1.36"),
        ("example.org:5000/a/b:v1", "example.org:5000/a/b", "example.org:5000/a/b:v1"),
        ("[::1]:5000/app", "[::1]:5000/app", "[::1]:5000/app:latest"),
        ("localhost/app:dev", "localhost/app", "localhost/app:dev"),
        (f"app:2@{DIG}", "app", "app:2"),
    ],
)
def test_name_and_store_key(text: str, name: str, store_key: str) -> None:
    ref = parse(text)
    assert ref.name == name
    assert ref.store_key == store_key
    # the key parses back to the same name and tag
    back = parse(store_key)
    assert (back.name, back.tag) == (name, ref.tag_or_default)


def test_digest_only_reference_never_takes_the_latest_tag() -> None:
    ref = parse(f"example.org/app@{DIG}")
    assert ref.store_key == f"example.org/app@{DIG}"
    assert parse(ref.store_key) == ref


@pytest.mark.parametrize(
    "text, expected",
    [
        ("app", Reference("", "app", DEFAULT_TAG)),
        ("app:1", Reference("", "app", "1")),
        (f"app@{DIG}", Reference("", "app", "", DIG)),
        (f"x.io/app:1@{DIG}", Reference("x.io", "app", "1", DIG)),
    ],
)
def test_with_default_tag(text: str, expected: Reference) -> None:
    assert parse(text).with_default_tag() == expected


def test_tag_or_default() -> None:
    assert DEFAULT_TAG == "latest"
    assert parse("app").tag_or_default == "latest"
    assert parse("app:3").tag_or_default == "3"


def test_reference_is_a_frozen_value() -> None:
    ref = parse("example.org/app:1")
    assert ref == Reference("example.org", "app", "1")
    assert hash(ref) == hash(Reference("example.org", "app", "1"))
    with pytest.raises(AttributeError):
        ref.tag = "2"  # type: ignore[misc]
