"""The jinja2 template engine: an immutable sandbox, its parse checks, renders and probes.

Template text comes from a pulled image and is untrusted. jinja2 runs in an
immutable sandbox with no loader (so no include, import or extends), no
helper globals and StrictUndefined, with every growing operation bounded
(render.sandbox), and each render or probe runs in a child with CPU-time and
memory limits (render.isolate). Every failure becomes a TemplateError that
names the file.

Only ``render.templates`` imports this module, and only inside the functions
that meet a jinja2 template: jinja2 costs tens of milliseconds to import, and
images with atomic ``$VAR`` templates (or none) never need it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import TracebackType
from typing import Any, ClassVar

import jinja2
from jinja2 import meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.utils import missing as _MISSING

from syscontainers.errors import TemplateError
from syscontainers.render.exports import TemplateSource
from syscontainers.render.isolate import run_isolated
from syscontainers.render.sandbox import BoundedSandbox, TooLarge

_FORBIDDEN_NODES = (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)
_FORBIDDEN_NAMES = frozenset({"self"})
_GLOBALS = ("range", "dict")
_BOUNDS = (SecurityError, OverflowError, MemoryError, RecursionError)  # range() says Overflow


@functools.cache
def _environment() -> BoundedSandbox:
    env = BoundedSandbox(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        loader=None,
        keep_trailing_newline=True,
    )
    env.globals = {k: env.globals[k] for k in _GLOBALS}
    return env


class _Recorder(jinja2.Undefined):
    """An Undefined that records top-level names a render really uses, instead of failing."""

    __slots__ = ()
    seen: ClassVar[set[str]] = set()

    def _record(self) -> None:
        if self._undefined_obj is _MISSING and self._undefined_name:
            type(self).seen.add(self._undefined_name)

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> Any:
        self._record()
        return super()._fail_with_undefined_error(*args, **kwargs)

    def __str__(self) -> str:
        self._record()
        return ""

    def __iter__(self) -> Any:
        self._record()
        return iter(())

    def __bool__(self) -> bool:
        self._record()
        return False

    def __len__(self) -> int:
        self._record()
        return 0

    def __eq__(self, other: object) -> bool:
        self._record()
        return type(self) is type(other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        self._record()
        return id(type(self))


def _template_line(tb: TracebackType | None) -> int | None:
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _jinja_error(name: str, e: BaseException) -> TemplateError:
    line = getattr(e, "lineno", None) or _template_line(e.__traceback__)
    where = f"{name}: line {line}" if line else name
    if isinstance(e, TooLarge):
        return TemplateError(
            f"{where}: rejected by the template sandbox: {e}",
            hint="the template builds something far larger than any template needs; "
            "tell the image's author",
        )
    if isinstance(e, SecurityError):
        return TemplateError(
            f"{where}: rejected by the template sandbox: {e}",
            hint="templates may use only the values given to them; tell the image's author",
        )
    return TemplateError(f"{where}: {type(e).__name__}: {e}", hint="fix the template in the image")


def _parse_jinja(source: TemplateSource) -> nodes.Template:
    try:
        ast = _environment().parse(source.text)
    except jinja2.TemplateSyntaxError as e:
        raise _jinja_error(source.name, e) from e
    for node in ast.find_all(_FORBIDDEN_NODES):
        raise TemplateError(
            f"{source.name}: line {node.lineno}: include, import and extends are not allowed",
            hint="a template must be self-contained; it has no access to other files",
        )
    for ref in ast.find_all(nodes.Name):
        if ref.name in _FORBIDDEN_NAMES:
            raise TemplateError(
                f"{source.name}: line {ref.lineno}: '{ref.name}' is not available to templates",
                hint="templates may only use the values they are given",
            )
    return ast


def jinja_identifiers(source: TemplateSource) -> set[str]:
    """The variables a jinja2 template refers to without defining them."""
    return set(meta.find_undeclared_variables(_parse_jinja(source))) - set(_GLOBALS)


def jinja_missing(source: TemplateSource, values: Mapping[str, str]) -> set[str]:
    """Names a render would fail on: referenced, absent, and not guarded by 'is defined'."""
    candidates = jinja_identifiers(source) - values.keys()
    if not candidates:
        return set()
    return set(run_isolated(source.name, lambda: _probe(source, values, candidates)))


def _probe(source: TemplateSource, values: Mapping[str, str], candidates: set[str]) -> list[str]:
    """Render with an Undefined that records what is used (in the limited child)."""
    recorder: type[_Recorder] = type("_Rec", (_Recorder,), {"__slots__": (), "seen": set()})
    env = _environment().overlay(undefined=recorder)
    try:
        env.from_string(source.text).render(dict(values))
    except _BOUNDS as e:  # a bound was hit: that is the template's error, not the probe's
        raise _jinja_error(source.name, e) from e
    except Exception:  # noqa: BLE001 - the probe stopped early; report every candidate
        return sorted(candidates)
    return sorted(candidates & recorder.seen)


def render_jinja(source: TemplateSource, values: Mapping[str, str]) -> str:
    """Render the jinja2 template SOURCE in the bounded sandbox, in a child with CPU and memory
    limits (render.isolate); any failure is a TemplateError."""
    _parse_jinja(source)
    text = run_isolated(source.name, lambda: _render(source, values))
    assert isinstance(text, str)
    return text


def _render(source: TemplateSource, values: Mapping[str, str]) -> str:
    try:
        return _environment().from_string(source.text).render(dict(values))
    except Exception as e:  # noqa: BLE001 - untrusted code: any failure is the template's
        raise _jinja_error(source.name, e) from e
