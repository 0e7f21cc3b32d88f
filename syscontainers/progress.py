"""The reporter interface: how the library tells the CLI what it is doing, without printing."""

from __future__ import annotations

from enum import Enum
from typing import Any, Protocol

from syscontainers.record import field, record


class EventKind(Enum):
    """What an event announces."""

    STEP = "step"  # a phase begins: "importing layer 2/5"
    WARNING = "warning"  # something the user should know, not fatal
    PROGRESS = "progress"  # DONE of TOTAL bytes (or items) for TASK
    TASK_DONE = "task-done"  # TASK finished
    RESULT = "result"  # a summary fact, such as bytes freed


@record
class Event:
    """One report from the library."""

    kind: EventKind
    message: str = ""
    task: str = ""
    done: int = 0
    total: int = 0
    data: dict[str, Any] = field(default_factory=dict)


class Reporter(Protocol):
    """Receives events; the CLI implements it as bars, JSON lines, or silence."""

    def emit(self, event: Event) -> None:
        """Handle one event."""


class NullReporter:
    """Drops every event."""

    def emit(self, event: Event) -> None:
        """Ignore EVENT."""


class RecordingReporter:
    """Keeps every event, for tests and for callers that summarise afterwards."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        """Remember EVENT."""
        self.events.append(event)

    def messages(self, kind: EventKind) -> list[str]:
        """The messages of every event of KIND."""
        return [e.message for e in self.events if e.kind is kind]


def step(reporter: Reporter, message: str, **data: Any) -> None:
    """Announce a phase."""
    reporter.emit(Event(EventKind.STEP, message, data=data))


def warn(reporter: Reporter, message: str, **data: Any) -> None:
    """Report a non-fatal problem."""
    reporter.emit(Event(EventKind.WARNING, message, data=data))


def progress(reporter: Reporter, task: str, done: int, total: int, message: str = "") -> None:
    """Report DONE of TOTAL for TASK."""
    reporter.emit(Event(EventKind.PROGRESS, message, task=task, done=done, total=total))


def task_done(reporter: Reporter, task: str, message: str = "") -> None:
    """Report that TASK finished."""
    reporter.emit(Event(EventKind.TASK_DONE, message, task=task))
