"""What every verb handler receives (settings, paths, a reporter, the output mode) and returns
(an ``Answer``), and ``render``, the one place that prints an answer as text or as JSON."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from syscontainers.record import field, record

if TYPE_CHECKING:  # the store, json and the reporters are imported by the verbs that use them
    from syscontainers.paths import Paths
    from syscontainers.progress import Reporter
    from syscontainers.settings import Settings
    from syscontainers.store import Store


@record
class Context:
    """Per-invocation state for handlers."""

    settings: Settings
    paths: Paths
    reporter: Reporter
    json: bool = False

    def store(self) -> Store:
        """The store under the configured root."""
        from syscontainers.store import Store

        return Store(self.paths.store, lock_timeout=self.settings.lock_timeout)

    def show(self, part: Part) -> None:
        """Print PART now, before the verb goes on (apply's plan, before it is carried out)."""
        render(self, Answer((part,)))


@record
class Report:
    """What an action verb did: SUMMARY and then LINES as text, or with --json one JSON line
    ``{"event": "result", "message": SUMMARY, …DATA}`` after the progress events (see
    ``add_json_option``), where DATA holds what LINES say.

    ERROR (message, hint) goes to stderr first, and then says it all as text: SUMMARY and
    LINES are printed only with --json. Without SHOW_SUMMARY the text is LINES alone."""

    summary: str
    data: Mapping[str, Any] = field(default_factory=dict)
    lines: Sequence[str] = ()
    error: tuple[str, str | None] | None = None
    show_summary: bool = True


@record
class Document:
    """What a verb found: LINES as text, or with --json DOC as one JSON document. A verb with
    no JSON form leaves DOC None and prints LINES either way; RAW bytes are printed as they
    are, after LINES. TEXT_ONLY lines are not printed with --json (a later result holds
    what they say)."""

    lines: Sequence[str] = ()
    doc: Any = None
    raw: bytes | None = None
    text_only: bool = False


@record
class Failure:
    """A part of the work that failed while the verb went on: ``error: MESSAGE`` and its
    HINT on stderr, in either mode."""

    message: str
    hint: str | None = None


Part = Report | Document | Failure


@record
class Answer:
    """Everything a verb prints, in order, and its exit code."""

    parts: Sequence[Part]
    code: int = 0


def answer(*parts: Part, code: int = 0) -> Answer:
    """An Answer of PARTS, exiting with CODE."""
    return Answer(parts, code)


def render(ctx: Context, result: Answer | int) -> int:
    """Print RESULT as text, or as JSON with --json; return its exit code. An int is the exit
    code of a verb that printed nothing of its own (run, logs: the command's output)."""
    if isinstance(result, int):
        return result
    for part in result.parts:
        if isinstance(part, Report):
            _report(ctx, part)
        elif isinstance(part, Failure):
            _error(part.message, part.hint)
        else:
            _document(ctx, part)
    return result.code


def _error(message: str, hint: str | None) -> None:
    from syscontainers.cli.output import print_error

    print_error(message, hint)


def _out(text: str) -> None:
    print(text, file=sys.stdout, flush=True)


def _report(ctx: Context, report: Report) -> None:
    if report.error is not None:
        _error(*report.error)
    if ctx.json:
        from syscontainers.progress import Event, EventKind

        ctx.reporter.emit(Event(EventKind.RESULT, report.summary, data=dict(report.data)))
        return
    if report.error is not None:
        return
    if report.show_summary:
        _out(report.summary)
    for line in report.lines:
        _out(line)


def _document(ctx: Context, document: Document) -> None:
    if ctx.json and document.text_only:
        return
    if ctx.json and document.doc is not None:
        import json

        _out(json.dumps(document.doc, indent=2, sort_keys=True, default=str))
    else:
        for line in document.lines:
            _out(line)
    if document.raw is not None:
        sys.stdout.buffer.write(document.raw)
        sys.stdout.flush()
