"""The plan ``apply`` carries out: the host's state and a manifest in, a list of actions out (pure).

For each container of the manifest, in file order:

- not installed: ``install`` (it pulls the image if the store lacks it), then
  ``disable`` if it should not be enabled, and ``start`` if it should run;
- installed with another runtime, or with a value the manifest no longer sets:
  ``reinstall`` (uninstall, then install: update keeps runtime and values);
- installed with another image, a newer image for the same name in the store,
  or other values: ``update`` (which keeps the UUID and rolls back by itself if
  the restarted service is unhealthy); with ``update: always`` an ``update``
  that pulls first is planned every time, and ends "up to date" if the pull
  brought nothing new;
- then ``enable``/``disable`` and ``start``/``stop`` where the unit's state
  differs. ``started`` is only acted on when a live systemd is driven (never
  with --sysroot); a unit without [Install] has nothing to enable.

Containers apply installed earlier (``managed``) that the manifest dropped are
uninstalled with ``prune`` and otherwise only reported (``orphan``); a
container apply never managed is not touched. Prunes come first.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any

from syscontainers.provision.manifest import ContainerSpec, HostManifest, UpdatePolicy
from syscontainers.record import field, record


class Verb(Enum):
    """What one action does."""

    INSTALL = "install"
    REINSTALL = "reinstall"
    UPDATE = "update"
    ENABLE = "enable"
    DISABLE = "disable"
    START = "start"
    STOP = "stop"
    UNINSTALL = "uninstall"
    OK = "ok"  # nothing to do
    ORPHAN = "orphan"  # managed, dropped from the manifest, kept without --prune


INFORMATIONAL = frozenset({Verb.OK, Verb.ORPHAN})


@record
class Current:
    """One installed container, as the plan needs to see it."""

    name: str
    image: str  # as it was given to install or update
    image_id: str
    values: tuple[tuple[str, str], ...]
    runtime: str
    service: bool = True
    enabled: bool | None = None  # None: its unit has no [Install] links to make
    active: bool | None = None  # None: not known (no live systemd)


@record
class HostState:
    """What is on the host: installed containers, those apply manages, stored images."""

    containers: Mapping[str, Current] = field(default_factory=dict)
    managed: frozenset[str] = frozenset()
    stored: Mapping[str, str | None] = field(default_factory=dict)  # image -> its digest
    live: bool = True  # a running systemd is driven (started/stopped are acted on)


@record
class Action:
    """One step of a plan."""

    verb: Verb
    name: str
    reason: str = ""
    spec: ContainerSpec | None = None  # what to install or update to
    rebase: bool = False  # update: move to spec.image (it differs from the current one)
    pull: bool = False  # update: pull the image first (update: always)

    @property
    def changes(self) -> bool:
        """True unless the action only reports."""
        return self.verb not in INFORMATIONAL

    def describe(self) -> str:
        """One line for the printed plan."""
        text = f"{self.verb.value} {self.name}"
        return f"{text}: {self.reason}" if self.reason else text

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "action": self.verb.value,
            "name": self.name,
            "reason": self.reason,
            "image": self.spec.image if self.spec else "",
            "pull": self.pull,
        }


@record
class Plan:
    """The actions, in order, and the names apply manages afterwards."""

    actions: tuple[Action, ...]
    managed: frozenset[str]

    @property
    def changes(self) -> tuple[Action, ...]:
        """The actions that change something."""
        return tuple(a for a in self.actions if a.changes)


def plan(manifest: HostManifest, state: HostState, prune: bool = False) -> Plan:
    """The actions that make STATE what MANIFEST says (see the module docstring)."""
    actions: list[Action] = []
    wanted = set(manifest.names())
    pruned = set()
    for name in sorted(state.managed - wanted):
        if name not in state.containers:
            continue
        if prune:
            actions.append(Action(Verb.UNINSTALL, name, "no longer in the manifest"))
            pruned.add(name)
        else:
            actions.append(
                Action(Verb.ORPHAN, name, "no longer in the manifest; apply --prune uninstalls it")
            )
    for spec in manifest.containers:
        actions += _container(spec, state)
    managed = ((state.managed & set(state.containers)) | wanted) - pruned
    return Plan(tuple(actions), frozenset(managed))


def _container(spec: ContainerSpec, state: HostState) -> list[Action]:
    cur = state.containers.get(spec.name)
    stored = state.stored.get(spec.image)
    if cur is None:
        how = "in the store" if stored else "to be pulled"
        return [
            Action(Verb.INSTALL, spec.name, f"{spec.image} ({how})", spec),
            *_unit_state(spec, state, True, None, True),
        ]
    reinstall = _reinstall_reasons(spec, cur)
    if reinstall:
        return [
            Action(Verb.REINSTALL, spec.name, "; ".join(reinstall), spec),
            *_unit_state(spec, state, cur.service, None, True),
        ]
    reasons, rebase = _update_reasons(spec, cur, stored)
    pull = spec.update is UpdatePolicy.ALWAYS
    steps = []
    if reasons or pull:
        if not reasons:
            reasons = [f"pull {spec.image} (up to date unless it brings a newer image)"]
        steps.append(Action(Verb.UPDATE, spec.name, "; ".join(reasons), spec, rebase, pull))
    enabled = True if reasons and cur.enabled is not None else cur.enabled
    steps += _unit_state(spec, state, cur.service, cur.active, enabled)
    return steps or [Action(Verb.OK, spec.name, spec.image)]


def _reinstall_reasons(spec: ContainerSpec, cur: Current) -> list[str]:
    reasons = []
    if spec.runtime is not None and spec.runtime != cur.runtime:
        reasons.append(f"runtime {cur.runtime} -> {spec.runtime}")
    dropped = sorted(set(dict(cur.values)) - set(spec.value_map()))
    if dropped:
        reasons.append(f"value(s) {', '.join(dropped)} no longer set")
    return reasons


def _update_reasons(
    spec: ContainerSpec, cur: Current, stored: str | None
) -> tuple[list[str], bool]:
    reasons = []
    rebase = spec.image != cur.image
    if rebase:
        reasons.append(f"image {cur.image} -> {spec.image}")
    elif stored is not None and stored != cur.image_id:
        reasons.append(f"a newer {spec.image} is in the store")
    changed = sorted(k for k, v in spec.values if dict(cur.values).get(k) != v)
    if changed:
        reasons.append(f"value(s) {', '.join(changed)} changed")
    return reasons, rebase


def _unit_state(
    spec: ContainerSpec,
    state: HostState,
    service: bool,
    active: bool | None,
    enabled: bool | None,
) -> list[Action]:
    """Enable/disable and start/stop to match SPEC, the unit being ENABLED and ACTIVE now."""
    if not service:
        return []
    steps = []
    if enabled is not None and enabled != spec.enabled:
        steps.append(Action(Verb.ENABLE if spec.enabled else Verb.DISABLE, spec.name))
    if state.live and bool(active) != spec.started:
        steps.append(Action(Verb.START if spec.started else Verb.STOP, spec.name))
    return steps
