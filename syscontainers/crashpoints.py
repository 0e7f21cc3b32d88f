"""Named crash points of install, update and rollback: a seam for tests, inert otherwise.

The lifecycle operations call ``Host.crashpoint(NAME)`` at every point where a
``kill -9`` leaves a different state on disk or in systemd (between the steps of
building a slot, activating it, telling systemd, starting it and watching its
health, and the same steps of an automatic rollback). ``ignore`` is the default
and does nothing. Tests put their own hook there:

- the unit tests kill a forked child with ``os._exit`` at the Nth point reached
  (tests/unit/test_lifecycle_crash.py), then check that running the same command
  again converges;
- the end-to-end tests run the real CLI with ``$SYSCONTAINERS_TEST_STOP_AT`` set
  to ``NAME`` or ``NAME#N`` (the Nth time NAME is reached): the CLI then installs
  ``stop_at``, which stops the process with SIGSTOP there, so the test can
  SIGKILL it at exactly that point. Test use only: never set it in production.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Mapping

from syscontainers.errors import UsageError

STOP_AT_ENV = "SYSCONTAINERS_TEST_STOP_AT"

# Every name an operation passes, in the order an update that rolls back reaches them.
POINTS = (
    "slot-staged",  # built and pinned in its temp directory, not renamed to NAME.N yet
    "slot-built",  # renamed to NAME.N, not active
    "activation-recorded",  # info.json says this slot is being activated (and restarted)
    "host-path-changed",  # one host directory made, or one host file written or removed
    "host-files-synced",  # the host files are the new slot's
    "unit-published",  # the unit and tmpfiles copies are the new slot's; not flipped
    "flipped",  # NAME -> the new slot: the commit point
    "systemd-told",  # reloaded, tmpfiles applied, enabled
    "restarted",  # the (re)start job finished; its health not watched yet
    "health-watched",  # the health window is over; not marked complete or rolled back yet
)


def ignore(name: str) -> None:
    """The production hook: nothing happens at a crash point."""


def stop_at(spec: str) -> Callable[[str], None]:
    """A hook that stops this process with SIGSTOP at SPEC (``NAME`` or ``NAME#N``)."""
    name, _, nth = spec.partition("#")
    if name not in POINTS or (nth and not nth.isdigit()):
        raise UsageError(
            f"${STOP_AT_ENV}={spec!r} names no crash point",
            hint=f"one of {', '.join(POINTS)}, optionally followed by #N",
        )
    wanted = int(nth or "1")
    seen = 0

    def hook(point: str) -> None:
        nonlocal seen
        if point == name:
            seen += 1
            if seen == wanted:
                os.kill(os.getpid(), signal.SIGSTOP)

    return hook


def from_env(env: Mapping[str, str]) -> Callable[[str], None]:
    """``stop_at`` for $SYSCONTAINERS_TEST_STOP_AT if it is set, else ``ignore``."""
    spec = env.get(STOP_AT_ENV)
    return stop_at(spec) if spec else ignore
