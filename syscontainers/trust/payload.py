"""Strict reading of signature payloads: the JSON rules simple signing and sigstore share.

Both payload formats are JSON with a ``critical`` object (type, image digest, identity) and an
``optional`` one, read as containers/image's strict decoders read them: duplicate or unknown
keys in ``critical`` are errors, JSON null reads as Go's zero value, invalid UTF-8 inside a
string is replaced. Every function takes FAIL, which turns a reason into the caller's
PolicyError (naming the signature).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

from syscontainers.errors import PolicyError

Fail = Callable[[str], PolicyError]

# go-digest's algorithms and the length of their hex encodings.
_DIGEST_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
_INT64_LIMIT = 2**63


class Pairs(list[tuple[str, object]]):
    """A JSON object as its key/value pairs in order, so that duplicate keys can be refused."""


def load(payload: bytes, fail: Fail) -> object:
    """PAYLOAD as JSON whose objects are Pairs (key order and duplicates kept)."""

    def refuse_constant(name: str) -> object:
        raise fail(f"{name} is not valid JSON")

    # Go's decoder replaces invalid UTF-8 inside strings and refuses it elsewhere; so does this.
    try:
        return json.loads(
            payload.decode("utf-8", errors="replace"),
            object_pairs_hook=Pairs,
            parse_constant=refuse_constant,
        )
    except (ValueError, RecursionError) as e:
        raise fail(f"it is not JSON ({e})") from e


def json_object(value: object, where: str, fail: Fail) -> dict[str, object]:
    """VALUE as a JSON object without duplicate keys."""
    if not isinstance(value, Pairs):
        raise fail(f"{where} is not a JSON object")
    fields: dict[str, object] = {}
    for key, item in value:
        if key in fields:
            raise fail(f"{where} has the key {key!r} twice")
        fields[key] = item
    return fields


def critical_claim(value: object, expected_type: str, fail: Fail) -> tuple[str, str]:
    """The (manifest digest, docker reference) of a payload's ``critical`` object, which must
    hold exactly type (EXPECTED_TYPE), image.docker-manifest-digest and
    identity.docker-reference: the part simple signing and sigstore payloads share."""
    critical = exact_fields(value, ("type", "image", "identity"), "critical", fail)
    kind = string(critical["type"], "critical.type", fail)
    if kind != expected_type:
        raise fail(f"critical.type is {kind!r}, not {expected_type!r}")
    image = exact_fields(critical["image"], ("docker-manifest-digest",), "critical.image", fail)
    digest = string(image["docker-manifest-digest"], "docker-manifest-digest", fail)
    if not valid_digest(digest):
        raise fail(f"docker-manifest-digest {digest!r} is not a valid digest")
    identity = exact_fields(critical["identity"], ("docker-reference",), "critical.identity", fail)
    return digest, string(identity["docker-reference"], "docker-reference", fail)


def exact_fields(
    value: object, names: tuple[str, ...], where: str, fail: Fail
) -> dict[str, object]:
    """VALUE as a JSON object with exactly the keys NAMES."""
    fields = json_object(value, where, fail)
    for key in fields:
        if key not in names:
            raise fail(f"{where} has an unknown key {key!r}")
    for key in names:
        if key not in fields:
            raise fail(f"{where} lacks the key {key!r}")
    return fields


def string(value: object, where: str, fail: Fail) -> str:
    """VALUE as a string; JSON null reads as "", as Go's decoder leaves the string unset."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise fail(f"{where} is not a string")
    return value


def optional_fields(value: object, fail: Fail) -> tuple[str, int | None]:
    """The creator and timestamp of the "optional" object; other keys there are ignored."""
    fields = json_object(value, "optional", fail)
    creator = string(fields.get("creator"), "optional.creator", fail)
    if "timestamp" not in fields:
        return creator, None
    raw = fields["timestamp"]
    if raw is None:  # Go leaves its float64 at zero
        return creator, 0
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise fail("optional.timestamp is not a number")
    try:
        number = float(raw)  # Go reads it as a float64: big integers round, as there
    except OverflowError as e:
        raise fail("optional.timestamp is out of range") from e
    if not math.isfinite(number) or number != math.floor(number):
        raise fail("optional.timestamp is not an integer")
    if not -_INT64_LIMIT <= number < _INT64_LIMIT:
        raise fail("optional.timestamp is not an integer")
    return creator, int(number)


def valid_digest(text: str) -> bool:
    """Whether TEXT is ALGORITHM:HEX for an algorithm go-digest knows."""
    algorithm, sep, encoded = text.partition(":")
    size = _DIGEST_HEX_LENGTHS.get(algorithm)
    return bool(sep) and size is not None and len(encoded) == size and _is_lower_hex(encoded)


def _is_lower_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)
