"""Tests for syscontainers.render.values: precedence, capabilities, kept values on update."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pytest

from syscontainers.errors import StoreCorruptError, UsageError
from syscontainers.record import replace
from syscontainers.render.values import (
    CAPABILITIES,
    FORCED,
    KeptValues,
    Origin,
    RuntimeCommands,
    Values,
    capability_fragment,
    compute_values,
    host_facts,
    kept_values,
    network_online,
    parse_sets,
    read_cap_bounding,
    read_cap_last_cap,
)
from tests.unit.render_fixtures import FACTS, FOREGROUND


def _values(
    sets: Mapping[str, str] | None = None,
    defaults: Mapping[str, str] | None = None,
    facts: object = FACTS,
) -> Values:
    return compute_values(
        name="web",
        image_name="oci:/srv/web:1",
        image_id="sha256:" + "cd" * 32,
        destdir="/var/lib/syscontainers/containers/web.1",
        sets=sets or {},
        defaults=defaults or {},
        facts=facts,  # type: ignore[arg-type]
        commands=FOREGROUND,
    )


@pytest.mark.parametrize(
    ("var", "sets", "defaults", "value", "origin"),
    [
        ("PORT", {}, {"PORT": "8081"}, "8081", Origin.IMAGE),
        ("PORT", {"PORT": "9000"}, {"PORT": "8081"}, "9000", Origin.USER),
        ("CONF_DIRECTORY", {}, {"CONF_DIRECTORY": "/opt/etc"}, "/etc", Origin.OS),
        (
            "CONF_DIRECTORY",
            {"CONF_DIRECTORY": "/srv"},
            {"CONF_DIRECTORY": "/x"},
            "/srv",
            Origin.USER,
        ),
        ("RUN_DIRECTORY", {}, {}, "/run", Origin.OS),
        ("STATE_DIRECTORY", {}, {}, "/var/lib", Origin.OS),
        ("PIDFILE", {}, {}, "/run/container-web.pid", Origin.OS),
        ("PIDFILE", {"RUN_DIRECTORY": "/r"}, {}, "/r/container-web.pid", Origin.OS),
        ("PIDFILE", {"PIDFILE": "/p.pid"}, {"PIDFILE": "/d.pid"}, "/p.pid", Origin.USER),
        ("RUNTIME", {}, {}, "/usr/sbin/runc", Origin.OS),
        ("RUNTIME", {"RUNTIME": "/usr/bin/crun"}, {}, "/usr/bin/crun", Origin.USER),
        ("UUID", {}, {"UUID": "from-image"}, FACTS.uuid, Origin.OS),
        ("NAME", {}, {"NAME": "from-image"}, "web", Origin.FORCED),
        ("DESTDIR", {}, {}, "/var/lib/syscontainers/containers/web.1", Origin.FORCED),
        ("IMAGE_ID", {}, {}, "cd" * 32, Origin.FORCED),
        ("IMAGE_NAME", {}, {}, "oci:/srv/web:1", Origin.FORCED),
        ("HOST_UID", {}, {}, "0", Origin.FORCED),
        ("EXEC_START", {}, {"EXEC_START": "x"}, FOREGROUND.exec_start, Origin.FORCED),
        ("EXEC_STOPPOST", {}, {}, FOREGROUND.exec_stoppost, Origin.FORCED),
    ],
)
def test_precedence(
    var: str, sets: dict[str, str], defaults: dict[str, str], value: str, origin: Origin
) -> None:
    values = _values(sets, defaults)
    assert (values[var], values.origin(var)) == (value, origin)


@pytest.mark.parametrize("name", FORCED)
def test_forced_cannot_be_set(name: str) -> None:
    with pytest.raises(UsageError, match="cannot be overridden"):
        _values({name: "x"})


def test_commands_may_depend_on_resolved_values() -> None:
    seen: dict[str, str] = {}

    def build(v: Mapping[str, str]) -> RuntimeCommands:
        seen.update(v)
        return RuntimeCommands(
            exec_start=f"{v['RUNTIME']} run -d --pid-file {v['PIDFILE']} '{v['NAME']}'",
            exec_stoppost=f"{v['RUNTIME']} delete '{v['NAME']}'",
        )

    values = compute_values(
        name="web",
        image_name="i",
        image_id="ef",
        destdir="/d",
        sets={"RUN_DIRECTORY": "/r"},
        defaults={},
        facts=FACTS,
        commands=build,
    )
    assert values["EXEC_START"] == "/usr/sbin/runc run -d --pid-file /r/container-web.pid 'web'"
    assert values["EXEC_STOPPOST"] == "/usr/sbin/runc delete 'web'"
    assert "EXEC_START" not in seen


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["A=1"], {"A": "1"}),
        (["A=b=c"], {"A": "b=c"}),
        (["A="], {"A": ""}),
        (["A=1", "A=2"], {"A": "2"}),
        (['_x9=,{"a":1}'], {"_x9": ',{"a":1}'}),
    ],
)
def test_parse_sets(args: list[str], expected: dict[str, str]) -> None:
    assert parse_sets(args) == expected


@pytest.mark.parametrize("arg", ["=x", "noequals", "1A=x", "A-B=x", "DESTDIR=/x", "NAME=y"])
def test_parse_sets_rejects(arg: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_sets([arg])
    assert info.value.hint


def test_capability_fragment_format() -> None:
    assert capability_fragment(2) == '"CAP_CHOWN",\n"CAP_DAC_OVERRIDE",\n"CAP_DAC_READ_SEARCH"\n'


@pytest.mark.parametrize(("last", "count"), [(40, 41), (37, 38), (63, len(CAPABILITIES))])
def test_capability_fragment_is_a_json_list_body(last: int, count: int) -> None:
    caps = json.loads("[" + capability_fragment(last) + "]")
    assert len(caps) == count and caps[0] == "CAP_CHOWN"
    assert caps[-1] == CAPABILITIES[count - 1]


def test_all_process_capabilities_value() -> None:
    values = _values(facts=replace(FACTS, cap_last_cap=37))
    assert json.loads("[" + values["ALL_PROCESS_CAPABILITIES"] + "]")[-1] == "CAP_AUDIT_READ"


def test_all_process_capabilities_leaves_out_what_the_bounding_set_lacks() -> None:
    # CapBnd 000001fffeffffff: every capability to 40 but CAP_SYS_RESOURCE (24), as root
    # has on the test machines; runc cannot grant a capability outside its bounding set.
    values = _values(facts=replace(FACTS, cap_bounding=0x1FFFEFFFFFF))
    caps = json.loads("[" + values["ALL_PROCESS_CAPABILITIES"] + "]")
    assert "CAP_SYS_RESOURCE" not in caps and len(caps) == 40
    assert caps[-1] == "CAP_CHECKPOINT_RESTORE" and "CAP_SYS_NICE" in caps


def test_read_cap_bounding(tmp_path: Path) -> None:
    (tmp_path / "status").write_text("Name:\tx\nCapBnd:\t000001fffeffffff\nCapAmb:\t0\n")
    assert read_cap_bounding(tmp_path / "status") == 0x1FFFEFFFFFF
    assert read_cap_bounding(tmp_path / "missing") is None
    assert read_cap_bounding(Path("/proc/self/status")) is not None


@pytest.mark.parametrize(
    ("text", "wanted"), [("yes", True), ("True", True), ("1", True), ("no", False), ("off", False)]
)
def test_network_online_values(text: str, wanted: bool) -> None:
    values = _values({"NETWORK_ONLINE": text})
    assert network_online(values) is wanted and values.origin("NETWORK_ONLINE") is Origin.USER


def test_network_online_defaults_to_no_and_rejects_other_words() -> None:
    values = _values()
    assert values["NETWORK_ONLINE"] == "no" and network_online(values) is False
    with pytest.raises(UsageError, match="NETWORK_ONLINE='maybe': not yes or no"):
        parse_sets(["NETWORK_ONLINE=maybe"])


def test_kept_values_keep_only_user_sets_and_uuid() -> None:
    values = _values({"PORT": "9000"}, {"PORT": "8081", "GREETING": "hi"})
    kept = kept_values(values)
    assert kept == KeptValues((("PORT", "9000"),), FACTS.uuid)


def test_update_recomputes_everything_but_kept() -> None:
    old = _values({"PORT": "9000"}, {"GREETING": "hi"})
    kept = kept_values(old).merged({"EXTRA": "1"})
    new_facts = replace(FACTS, uuid="fresh-uuid-is-ignored", cap_last_cap=37, runtime="/crun")
    new = _values(kept.set_map(), {"GREETING": "hello"}, replace(new_facts, uuid=kept.uuid))
    assert new["UUID"] == old["UUID"]
    assert (new["PORT"], new["EXTRA"], new["GREETING"]) == ("9000", "1", "hello")
    assert new["RUNTIME"] == "/crun" and new.origin("RUNTIME") is Origin.OS
    assert new["ALL_PROCESS_CAPABILITIES"] != old["ALL_PROCESS_CAPABILITIES"]


def test_kept_values_json_round_trip() -> None:
    kept = KeptValues((("A", "1"), ("B", "")), "u")
    assert KeptValues.from_json(json.loads(json.dumps(kept.to_json()))) == kept


@pytest.mark.parametrize(
    "doc", [[], {"set": {}}, {"uuid": "u", "set": []}, {"uuid": "u", "set": {"A": 1}}]
)
def test_kept_values_from_bad_json(doc: object) -> None:
    with pytest.raises(StoreCorruptError):
        KeptValues.from_json(doc)


def test_merged_rejects_forced() -> None:
    with pytest.raises(UsageError):
        KeptValues((), "u").merged({"NAME": "x"})


def test_values_is_a_read_only_mapping() -> None:
    values = _values({"PORT": "1"})
    assert dict(values)["PORT"] == "1" and len(values) == len(dict(values))
    assert values.user_sets() == {"PORT": "1"}
    with pytest.raises(KeyError):
        values["NOPE"]


def test_host_facts_user_mode() -> None:
    env = {"HOME": "/home/u", "XDG_RUNTIME_DIR": "/run/user/1000"}
    facts = host_facts("/usr/bin/crun", user_mode=True, env=env, uuid="kept")
    assert (facts.run_directory, facts.state_directory, facts.conf_directory) == (
        "/run/user/1000",
        "/home/u/.local/share",
        "/home/u/.config",
    )
    assert facts.uuid == "kept" and facts.runtime == "/usr/bin/crun"


def test_host_facts_system_mode_generates_uuid() -> None:
    a, b = host_facts("/usr/sbin/runc"), host_facts("/usr/sbin/runc")
    assert a.uuid != b.uuid and a.run_directory == "/run"


def test_read_cap_last_cap(tmp_path: Path) -> None:
    (tmp_path / "c").write_text("38\n")
    assert read_cap_last_cap(tmp_path / "c") == 38
    assert read_cap_last_cap(tmp_path / "missing") == len(CAPABILITIES) - 1
