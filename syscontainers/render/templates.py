"""Template engines: atomic's $VAR syntax and sandboxed jinja2, plus missing-variable checks.

Template text comes from a pulled image and is untrusted. The atomic engine
is here; the jinja2 sandbox is in ``render.jinja``, imported only inside the
functions below that meet a jinja2 template, so images with atomic templates
(or none) never pay for importing jinja2. Every failure becomes a
TemplateError that names the file.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from enum import Enum

from syscontainers.errors import TemplateError
from syscontainers.record import record
from syscontainers.render.escape import check_jinja_values, substitute
from syscontainers.render.exports import (
    MAX_OUTPUT,
    DefaultTemplates,
    Exports,
    Syntax,
    TemplateSource,
)
from syscontainers.render.values import FORCED, OS_PROVIDED

RENAME_FILES = "manifest.json renameFiles"


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
    return _substitute(source, values)


def _substitute(source: TemplateSource, values: Mapping[str, str]) -> str:
    """SOURCE with VALUES put in, each fitted to its place, if the output stays bounded."""
    _check_atomic_size(source, values)
    return substitute(source.name, source.text, values)


def _check_atomic_size(source: TemplateSource, values: Mapping[str, str]) -> None:
    """Refuse a render whose output would pass MAX_OUTPUT (a long value used many times),
    predicted before anything is made."""
    size = len(source.text)
    for m in string.Template.pattern.finditer(source.text):
        ident = m.group("named") or m.group("braced")
        size += len(values[ident]) if ident else 0
        if size > MAX_OUTPUT:
            raise TemplateError(
                f"{source.name}: rendered with these values it would pass {MAX_OUTPUT} "
                f"characters (line {_line_of(source.text, m.start())})",
                hint="a value is used too often or is far too long; check the values you "
                "--set, or tell the image's author",
            )


# --- jinja2 (render.jinja, imported on first use) ---------------------------------


def jinja_identifiers(source: TemplateSource) -> set[str]:
    """The variables a jinja2 template refers to without defining them."""
    from syscontainers.render.jinja import jinja_identifiers as identify

    return identify(source)


# --- public API -----------------------------------------------------------------


def ensure_newline(text: str) -> str:
    """TEXT ending in a newline, unless it is empty."""
    return text if not text or text.endswith("\n") else text + "\n"


def render_text(source: TemplateSource, values: Mapping[str, str]) -> str:
    """Render one template with VALUES (verbatim sources come back unchanged), each value
    fitted to where it lands (render.escape)."""
    if source.syntax is Syntax.JINJA:
        from syscontainers.render.jinja import render_jinja

        check_jinja_values(source.name, jinja_identifiers(source), values)
        return render_jinja(source, values)
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
            from syscontainers.render.jinja import jinja_missing

            missing = jinja_missing(source, values)
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
    """Raise one TemplateError listing every missing variable of every template, per file;
    then a UsageError for a value that cannot go where a template puts it."""
    missing = missing_variables(exports, values, defaults)
    if missing:
        raise _missing_error(missing, what)
    for source in all_sources(exports, defaults):  # every value fits where it lands
        if source.syntax is Syntax.ATOMIC:
            _substitute(source, values)
        elif source.syntax is Syntax.JINJA:
            check_jinja_values(source.name, jinja_identifiers(source), values)


class VariableKind(Enum):
    """How a variable gets its value (what `images inspect` shows)."""

    FORCED = "forced"  # always set by syscontainers
    OS = "os"  # set by the OS, overridable with --set
    DEFAULT = "default"  # manifest defaultValues, overridable with --set
    REQUIRED = "required"  # must be given with --set
    OPTIONAL = "optional"  # a jinja2 template uses it only if it is defined


@record
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
