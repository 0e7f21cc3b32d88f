"""What every verb handler receives: settings, paths, a reporter and the output mode."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the store and json are imported by the verbs that use them
    from syscontainers.paths import Paths
    from syscontainers.progress import Reporter
    from syscontainers.settings import Settings
    from syscontainers.store import Store


@dataclass(frozen=True, slots=True)
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

    def out(self, text: str = "") -> None:
        """Print a line of result output."""
        print(text, file=sys.stdout, flush=True)

    def result(self, summary: str, *, lines: Sequence[str] = (), **data: Any) -> None:
        """Report what an action verb did: SUMMARY and then LINES as output, or with --json one
        JSON line ``{"event": "result", "message": SUMMARY, …DATA}`` after the progress
        events (see ``add_json_option``), where DATA holds what LINES say."""
        if self.json:
            from syscontainers.progress import Event, EventKind

            self.reporter.emit(Event(EventKind.RESULT, summary, data=data))
            return
        self.out(summary)
        for line in lines:
            self.out(line)

    def out_json(self, value: Any) -> None:
        """Print one JSON document as result output."""
        import json

        print(json.dumps(value, indent=2, sort_keys=True, default=str), flush=True)
