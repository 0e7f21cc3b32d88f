"""Putting values where they land: JSON-escaped in config.json strings, checked in units.

atomic inserted every value raw. For values the user gives (``--set``) that let a ``"``
break out of a JSON string in config.json and a newline add a directive to the unit or a
line to tmpfiles.d. Here the place of each ``$VAR`` decides:

- config.json.template, inside a JSON string literal: the value is JSON-escaped.
- config.json.template, outside a string (a raw fragment such as ``$ADDTL_MOUNTS``): the
  value must be a JSON scalar (number, true, false, null), or, for a variable the image or
  the OS gives a default (which makes it a fragment by design), a balanced fragment: strings
  closed and brackets matched, so it cannot close the list or object it sits in. The whole
  rendered document must still parse (render.config_json checks that).
- service.template and tmpfiles.template (and their .j2 forms): a value with a control
  character (a newline adds a line) or a trailing backslash (which continues the line) is
  refused; in tmpfiles.d, whitespace too (it separates fields). In the atomic forms '%' is
  doubled, so systemd's specifiers do not expand inside a value.

Values of the image's own defaults keep atomic's raw insertion (the image wrote both the
template and the default), as do values given with ``--set-raw``: the user says they are raw.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Iterator, Mapping
from enum import Enum

from syscontainers.errors import UsageError
from syscontainers.render.values import Origin, Values

_SCALARS = (int, float, bool, type(None))


class Place(Enum):
    """Where a template's output goes, which decides how a value must look there."""

    JSON = "a JSON document"
    UNIT = "a systemd unit"
    TMPFILES = "a tmpfiles.d line"
    RAW = "a file of the image's own format"


def place_of(name: str) -> Place:
    """The place of a template file NAME (as TemplateSource names them)."""
    if name.startswith("config.json"):
        return Place.JSON
    if name.startswith("service."):
        return Place.UNIT
    if name.startswith("tmpfiles."):
        return Place.TMPFILES
    return Place.RAW


def _origin(values: Mapping[str, str], name: str) -> Origin:
    # A plain mapping (a library caller's) is treated as the user's: escaped, never trusted.
    return values.origin(name) if isinstance(values, Values) else Origin.USER


def _fragments(values: Mapping[str, str]) -> frozenset[str]:
    return values.fragments if isinstance(values, Values) else frozenset()


def _refused(file: str, name: str, place: Place, why: str) -> UsageError:
    return UsageError(
        f"{file}: the value of {name} cannot go in {place.value}: {why}",
        hint=f"give {name} another value, or pass it with --set-raw {name}=... if it is meant "
        "to be inserted exactly as given",
    )


def _string_positions(text: str) -> Iterator[tuple[bool, re.Match[str]]]:
    """Each $-placeholder match of TEXT, with whether it sits inside a JSON string literal."""
    inside = escaped = False
    pos = 0
    for m in string.Template.pattern.finditer(text):
        for ch in text[pos : m.start()]:
            if escaped:
                escaped = False
            elif ch == "\\" and inside:
                escaped = True
            elif ch == '"':
                inside = not inside
        pos = m.end()
        yield inside, m


def balanced(fragment: str) -> bool:
    """True if FRAGMENT closes every string and bracket it opens, and no other."""
    depth = 0
    inside = escaped = False
    for ch in fragment:
        if inside:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                inside = False
            elif ch < " ":
                return False
        elif ch == '"':
            inside = True
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0 and not inside


def _is_scalar(value: str) -> bool:
    try:
        return isinstance(json.loads(value), _SCALARS)
    except ValueError:
        return False


def _json_value(file: str, name: str, value: str, fragment: bool) -> str:
    if _is_scalar(value) or (fragment and balanced(value)):
        return value
    why = (
        "it sits outside a JSON string there, where it must be a balanced JSON fragment "
        "(strings closed, brackets matched)"
        if fragment
        else "it sits outside a JSON string there, where only a JSON number, true, false "
        "or null fits"
    )
    raise _refused(file, name, Place.JSON, why)


def check_line_value(file: str, name: str, value: str, place: Place) -> None:
    """Refuse VALUE for NAME in a unit or tmpfiles.d FILE if it cannot be represented."""
    bad = next((c for c in value if c < " " and c != "\t" or c == "\x7f"), None)
    if bad is not None:
        raise _refused(file, name, place, f"it holds the control character {bad!r}")
    if value.endswith("\\"):
        raise _refused(file, name, place, "a trailing backslash would continue the line")
    if place is Place.TMPFILES and any(c.isspace() for c in value):
        raise _refused(file, name, place, "whitespace would start another field")


def substitute(file: str, text: str, values: Mapping[str, str]) -> str:
    """$VAR substitution of TEXT (the template FILE), each value fitted to its place."""
    place = place_of(file)
    fragments = _fragments(values)
    out: list[str] = []
    pos = 0
    for in_string, m in _string_positions(text):
        out.append(text[pos : m.start()])
        pos = m.end()
        name = m.group("named") or m.group("braced")
        if not name:
            out.append("$")  # $$
            continue
        out.append(_fitted(file, name, values, place, in_string, name in fragments))
    out.append(text[pos:])
    return "".join(out)


def _fitted(
    file: str, name: str, values: Mapping[str, str], place: Place, in_string: bool, fragment: bool
) -> str:
    """NAME's value as it must be written at this place of FILE."""
    value, origin = values[name], _origin(values, name)
    if place is Place.JSON and in_string and origin not in (Origin.IMAGE, Origin.RAW):
        return json.dumps(value, ensure_ascii=False)[1:-1]
    if place is Place.JSON and origin is Origin.USER:  # outside a string: a raw fragment
        return _json_value(file, name, value, fragment)
    if place in (Place.UNIT, Place.TMPFILES) and origin is Origin.USER:
        # FORCED values (the Exec lines) come quoted for systemd by syscontainers.runtime.
        check_line_value(file, name, value, place)
        return value.replace("%", "%%")
    return value


def check_jinja_values(file: str, names: set[str], values: Mapping[str, str]) -> None:
    """For a jinja2 unit or tmpfiles FILE: refuse user values of NAMES it cannot represent
    (jinja2 templates escape for JSON themselves, with the tojson filter)."""
    place = place_of(file)
    if place not in (Place.UNIT, Place.TMPFILES):
        return
    for name in sorted(names & values.keys()):
        if _origin(values, name) is Origin.USER:
            check_line_value(file, name, values[name], place)
