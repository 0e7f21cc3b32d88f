"""apply's plan, a pure function of the host's state and the manifest: table-driven."""

from __future__ import annotations

import pytest

from syscontainers.provision.manifest import ContainerSpec, HostManifest, UpdatePolicy
from syscontainers.provision.plan import Current, HostState, Verb, plan
from syscontainers.record import replace

RUNC = "/usr/sbin/runc"
WEB = ContainerSpec("web", "example.org/web:1", (("PORT", "80"),), RUNC)
CUR = Current("web", "example.org/web:1", "sha256:aa", (("PORT", "80"),), RUNC, True, True, True)
STORED = {"example.org/web:1": "sha256:aa", "example.org/web:2": "sha256:bb"}


def verbs(
    spec: ContainerSpec | None,
    cur: Current | None,
    *,
    live: bool = True,
    stored: dict[str, str | None] | None = None,
    managed: frozenset[str] = frozenset(),
    prune: bool = False,
) -> list[str]:
    manifest = HostManifest("h.yaml", (spec,) if spec else ())
    state = HostState(
        {cur.name: cur} if cur else {}, managed, STORED if stored is None else stored, live
    )
    return [f"{a.verb.value} {a.name}" for a in plan(manifest, state, prune).actions]


CASES = [
    # (id, spec, current, live, expected)
    ("new", WEB, None, True, ["install web", "start web"]),
    ("new offline", WEB, None, False, ["install web"]),
    (
        "new, disabled, not started",
        replace(WEB, enabled=False, started=False),
        None,
        True,
        ["install web", "disable web"],
    ),
    ("same", WEB, CUR, True, ["ok web"]),
    ("same offline", WEB, replace(CUR, active=None), False, ["ok web"]),
    ("stopped", WEB, replace(CUR, active=False), True, ["start web"]),
    ("should stop", replace(WEB, started=False), CUR, True, ["stop web"]),
    (
        "started is ignored offline",
        replace(WEB, started=False),
        replace(CUR, active=None),
        False,
        ["ok web"],
    ),
    ("disabled by hand", WEB, replace(CUR, enabled=False), True, ["enable web"]),
    ("should be disabled", replace(WEB, enabled=False), CUR, True, ["disable web"]),
    ("no [Install]", replace(WEB, enabled=False), replace(CUR, enabled=None), True, ["ok web"]),
    (
        "no service",
        replace(WEB, started=False, enabled=False),
        replace(CUR, service=False, enabled=None, active=None),
        True,
        ["ok web"],
    ),
    ("new image", replace(WEB, image="example.org/web:2"), CUR, True, ["update web"]),
    ("newer in the store", WEB, replace(CUR, image_id="sha256:00"), True, ["update web"]),
    ("value changed", replace(WEB, values=(("PORT", "81"),)), CUR, True, ["update web"]),
    ("value added", replace(WEB, values=(("A", "1"), ("PORT", "80"))), CUR, True, ["update web"]),
    ("value dropped", replace(WEB, values=()), CUR, True, ["reinstall web", "start web"]),
    (
        "runtime changed",
        replace(WEB, runtime="/usr/bin/crun"),
        CUR,
        True,
        ["reinstall web", "start web"],
    ),
    (
        "update re-enables, then disable",
        replace(WEB, image="example.org/web:2", enabled=False),
        CUR,
        True,
        ["update web", "disable web"],
    ),
    (
        "update of a disabled one re-enables it",
        replace(WEB, image="example.org/web:2"),
        replace(CUR, enabled=False),
        True,
        ["update web"],
    ),
    ("always pulls", replace(WEB, update=UpdatePolicy.ALWAYS), CUR, True, ["update web"]),
    (
        "update and start",
        replace(WEB, image="example.org/web:2"),
        replace(CUR, active=False),
        True,
        ["update web", "start web"],
    ),
]


@pytest.mark.parametrize(
    ("spec", "cur", "live", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_one_container(
    spec: ContainerSpec, cur: Current | None, live: bool, expected: list[str]
) -> None:
    assert verbs(spec, cur, live=live) == expected


def test_an_image_not_in_the_store_is_not_a_newer_one() -> None:
    assert verbs(WEB, CUR, stored={"example.org/web:1": None}) == ["ok web"]


def test_reasons_and_flags() -> None:
    spec = replace(WEB, image="example.org/web:2", values=(("PORT", "81"),))
    (action,) = plan(HostManifest("h", (spec,)), HostState({"web": CUR}, stored=STORED)).actions
    assert action.rebase and not action.pull
    assert action.reason == "image example.org/web:1 -> example.org/web:2; value(s) PORT changed"
    always = replace(WEB, update=UpdatePolicy.ALWAYS)
    (action,) = plan(HostManifest("h", (always,)), HostState({"web": CUR}, stored=STORED)).actions
    assert action.pull and not action.rebase and "up to date unless" in action.reason
    reinstall = replace(WEB, values=(), runtime="/usr/bin/crun")
    (action, _start) = plan(
        HostManifest("h", (reinstall,)), HostState({"web": CUR}, stored=STORED)
    ).actions
    assert action.reason == f"runtime {RUNC} -> /usr/bin/crun; value(s) PORT no longer set"


OTHER = replace(CUR, name="old")


@pytest.mark.parametrize(
    ("managed", "prune", "expected_verbs", "expected_managed"),
    [
        (frozenset(), False, [], {"web"}),  # never managed: not touched, not listed
        (frozenset(), True, [], {"web"}),
        (frozenset({"old"}), False, ["orphan old"], {"old", "web"}),
        (frozenset({"old"}), True, ["uninstall old"], {"web"}),
        (frozenset({"gone"}), True, [], {"web"}),  # managed but uninstalled by hand: forgotten
    ],
)
def test_dropped_containers(
    managed: frozenset[str], prune: bool, expected_verbs: list[str], expected_managed: set[str]
) -> None:
    state = HostState({"web": CUR, "old": OTHER}, managed, STORED)
    result = plan(HostManifest("h", (WEB,)), state, prune)
    assert [f"{a.verb.value} {a.name}" for a in result.actions] == [*expected_verbs, "ok web"]
    assert result.managed == expected_managed
    assert bool(result.changes) == (prune and bool(expected_verbs))


def test_prunes_come_first_and_manifest_order_is_kept() -> None:
    specs = tuple(replace(WEB, name=n) for n in ("zeta", "alpha"))
    state = HostState({"old": OTHER}, frozenset({"old"}), STORED, live=False)
    assert [a.name for a in plan(HostManifest("h", specs), state, True).actions] == [
        "old",
        "zeta",
        "alpha",
    ]


def test_a_converged_host_plans_no_change() -> None:
    specs = tuple(replace(WEB, name=f"c{i}") for i in range(20))
    state = HostState(
        {s.name: replace(CUR, name=s.name) for s in specs}, frozenset(s.name for s in specs), STORED
    )
    result = plan(HostManifest("h", specs), state, prune=True)
    assert result.changes == () and all(a.verb is Verb.OK for a in result.actions)
