"""Template engines: atomic's $VAR syntax and sandboxed jinja2, plus missing-variable checks.

Template text comes from a pulled image and is untrusted. jinja2 runs in an
immutable sandbox with no loader (so no include, import or extends), no
helper globals, StrictUndefined and bounded `*`/`**`. Every failure becomes a
TemplateError that names the file.
"""

from __future__ import annotations

import functools
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from types import TracebackType
from typing import Any, ClassVar

import jinja2
from jinja2 import meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import missing as _MISSING

from syscontainers.errors import TemplateError
from syscontainers.render.exports import DefaultTemplates, Exports, Syntax, TemplateSource
from syscontainers.render.values import FORCED, OS_PROVIDED

RENAME_FILES = "manifest.json renameFiles"
MAX_REPEAT = 1 << 20  # the longest string or list a template may build with '*'
_FORBIDDEN_NODES = (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)
_FORBIDDEN_NAMES = frozenset({"self"})
_GLOBALS = ("range", "dict")


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with '*' and '**' bounded so a template cannot exhaust memory."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(right, int) and abs(right) > 64:
                raise SecurityError("exponent too large")
            return left**right
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, str | list | tuple) and isinstance(times, int):
                if len(seq) * times > MAX_REPEAT:
                    raise SecurityError("repetition result too large")
        return left * right


@functools.cache
def _environment() -> _Sandbox:
    env = _Sandbox(
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


# --- atomic: string.Template ----------------------------------------------------


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def atomic_identifiers(text: str, name: str) -> set[str]:
    """The $VAR / ${VAR} names in TEXT; TemplateError on a bad placeholder such as '$1'."""
    found: set[str] = set()
    for m in string.Template.pattern.finditer(text):
        ident = m.group("named") or m.group("braced")
        if ident:
            found.add(ident)
        elif m.group("invalid") is not None:
            line = _line_of(text, m.start("invalid"))
            raise TemplateError(
                f"{name}: line {line}: invalid placeholder {text[m.start() : m.start() + 6]!r}",
                hint="write $$ for a literal '$'; variables are $NAME or ${NAME}",
            )
    return found


def _render_atomic(source: TemplateSource, values: Mapping[str, str]) -> str:
    missing = atomic_identifiers(source.text, source.name) - values.keys()
    if missing:
        raise _missing_error({source.name: missing})
    return string.Template(source.text).substitute(values)


# --- jinja2 ---------------------------------------------------------------------


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


def _jinja_missing(source: TemplateSource, values: Mapping[str, str]) -> set[str]:
    """Names a render would fail on: referenced, absent, and not guarded by 'is defined'."""
    candidates = jinja_identifiers(source) - values.keys()
    if not candidates:
        return set()
    recorder: type[_Recorder] = type("_Rec", (_Recorder,), {"__slots__": (), "seen": set()})
    env = _environment().overlay(undefined=recorder)
    try:
        env.from_string(source.text).render(dict(values))
    except Exception:  # noqa: BLE001 - the probe stopped early; report every candidate
        return candidates
    return candidates & recorder.seen


def _render_jinja(source: TemplateSource, values: Mapping[str, str]) -> str:
    _parse_jinja(source)
    try:
        return _environment().from_string(source.text).render(dict(values))
    except Exception as e:  # noqa: BLE001 - untrusted code: any failure is the template's
        raise _jinja_error(source.name, e) from e


# --- public API -----------------------------------------------------------------


def render_text(source: TemplateSource, values: Mapping[str, str]) -> str:
    """Render one template with VALUES (verbatim sources come back unchanged)."""
    if source.syntax is Syntax.JINJA:
        return _render_jinja(source, values)
    if source.syntax is Syntax.ATOMIC:
        return _render_atomic(source, values)
    return source.text


def identifiers(source: TemplateSource) -> set[str]:
    """The variables a template refers to."""
    if source.syntax is Syntax.JINJA:
        return jinja_identifiers(source)
    if source.syntax is Syntax.ATOMIC:
        return atomic_identifiers(source.text, source.name)
    return set()


def rename_sources(exports: Exports) -> tuple[TemplateSource, ...]:
    """The renameFiles targets as one atomic-syntax pseudo-template (for variable checks)."""
    targets = "\n".join(dst for _, dst in exports.manifest.rename_files)
    return (TemplateSource(RENAME_FILES, targets, Syntax.ATOMIC),) if targets else ()


def all_sources(exports: Exports, defaults: DefaultTemplates | None) -> tuple[TemplateSource, ...]:
    """Every template an install renders, the default unit included when it is used."""
    used_default = (
        (defaults.service,)
        if defaults and exports.service is None and not exports.manifest.no_container_service
        else ()
    )
    return (*exports.templates(), *used_default, *rename_sources(exports))


def missing_variables(
    exports: Exports, values: Mapping[str, str], defaults: DefaultTemplates | None = None
) -> dict[str, set[str]]:
    """For each template file, the variables it needs that VALUES lacks (all of them)."""
    out: dict[str, set[str]] = {}
    for source in all_sources(exports, defaults):
        if source.syntax is Syntax.JINJA:
            missing = _jinja_missing(source, values)
        else:
            missing = identifiers(source) - values.keys()
        if missing:
            out[source.name] = missing
    return out


def _missing_error(missing: Mapping[str, Iterable[str]], what: str = "the image") -> TemplateError:
    per_file = "; ".join(f"{f} needs {', '.join(sorted(v))}" for f, v in sorted(missing.items()))
    names = sorted({v for vs in missing.values() for v in vs})
    return TemplateError(
        f"{what} needs values for {', '.join(names)} ({per_file})",
        hint="pass " + " ".join(f"--set {n}=..." for n in names),
    )


def check_complete(
    exports: Exports,
    values: Mapping[str, str],
    defaults: DefaultTemplates | None = None,
    what: str = "the image",
) -> None:
    """Raise one TemplateError listing every missing variable of every template, per file."""
    missing = missing_variables(exports, values, defaults)
    if missing:
        raise _missing_error(missing, what)


class VariableKind(Enum):
    """How a variable gets its value (what `images inspect` shows)."""

    FORCED = "forced"  # always set by syscontainers
    OS = "os"  # set by the OS, overridable with --set
    DEFAULT = "default"  # manifest defaultValues, overridable with --set
    REQUIRED = "required"  # must be given with --set
    OPTIONAL = "optional"  # a jinja2 template uses it only if it is defined


@dataclass(frozen=True, slots=True)
class TemplateVariable:
    """One variable an image's templates use or its manifest defines."""

    name: str
    kind: VariableKind
    default: str | None = None


def template_variables(exports: Exports) -> dict[str, TemplateVariable]:
    """Every variable of an image with its kind and default (no host facts needed)."""
    defaults = dict(exports.manifest.default_values)
    referenced: set[str] = set()
    for source in all_sources(exports, None):
        referenced |= identifiers(source)
    known = {n: "" for n in (*FORCED, *OS_PROVIDED)} | defaults
    required = {v for vs in missing_variables(exports, known).values() for v in vs}
    out: dict[str, TemplateVariable] = {}
    for name in sorted(referenced | set(defaults) | set(OS_PROVIDED)):
        if name in FORCED:
            out[name] = TemplateVariable(name, VariableKind.FORCED)
        elif name in OS_PROVIDED:
            out[name] = TemplateVariable(name, VariableKind.OS)
        elif name in defaults:
            out[name] = TemplateVariable(name, VariableKind.DEFAULT, defaults[name])
        elif name in required:
            out[name] = TemplateVariable(name, VariableKind.REQUIRED)
        else:
            out[name] = TemplateVariable(name, VariableKind.OPTIONAL)
    return out
