"""--set values are escaped for where they land, or refused where they cannot be represented.

A `"` in a --set value broke out of its JSON string in config.json (and could add entries), and
a newline added a directive to the unit or a line to tmpfiles.d. Now a value inside a JSON
string is JSON-escaped; one outside a string (a raw fragment such as $ADDTL_MOUNTS) must be a
JSON scalar, or a balanced fragment for a variable the image gives a default; in units and
tmpfiles.d, control characters are refused and '%' is doubled. --set-raw passes a value as is.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from syscontainers.deploy.layout import read_info
from syscontainers.errors import UsageError
from syscontainers.operations.install import InstallRequest, install
from syscontainers.operations.update import UpdateRequest, update
from syscontainers.render import render_deployment
from syscontainers.render.exports import parse_exports
from syscontainers.render.values import compute_values
from tests.unit.lifecycle_fixtures import Env
from tests.unit.render_fixtures import (
    ADDTL_MOUNTS,
    ETCD_CONFIG,
    FACTS,
    etcd_files,
    foreground,
    image_config,
)


def web(env: Env, image: str, *sets: tuple[str, str], raw: tuple[str, ...] = ()) -> None:
    install(env.host, InstallRequest(image, name="web", sets=(("PORT", "1"), *sets), raw=raw))


def config_env(env: Env) -> list[str]:
    doc = json.loads((env.dep("web.0") / "config.json").read_text())
    return list(doc["process"]["env"])


@pytest.mark.parametrize(
    "value",
    ['he said "hi"', 'x", "LD_PRELOAD=/tmp/evil.so', "back\\slash", "tab\there", "ünï €"],
)
def test_a_value_inside_a_json_string_is_escaped(env: Env, atomic_image: str, value: str) -> None:
    web(env, atomic_image, ("GREETING", value))
    assert config_env(env) == [f"GREETING={value}"]


@pytest.mark.parametrize(
    ("name", "value", "where"),
    [
        ("GREETING", "hi\nExecStartPre=/bin/evil", "service.template"),
        ("GREETING", "hi\rx", "service.template"),
        ("GREETING", "hi\\", "service.template"),  # a trailing backslash continues the line
        ("STATE_DIRECTORY", "/var/lib\nR /", "tmpfiles.template"),
        ("STATE_DIRECTORY", "/var/lib 0777", "tmpfiles.template"),
    ],
)
def test_a_value_that_cannot_be_represented_in_a_unit_is_refused(
    env: Env, atomic_image: str, name: str, value: str, where: str
) -> None:
    with pytest.raises(UsageError) as info:
        web(env, atomic_image, (name, value))
    assert name in info.value.message and where in info.value.message
    assert "--set-raw" in (info.value.hint or "")
    assert not env.dep().exists() or list(env.dep().iterdir()) == []
    assert list(env.paths.unit_dir.iterdir()) == []


def test_percent_is_doubled_in_a_unit(env: Env, atomic_image: str) -> None:
    web(env, atomic_image, ("GREETING", "100%n"))
    unit = (env.paths.unit_dir / "web.service").read_text()
    assert "Environment=GREETING=100%%n\n" in unit
    assert config_env(env) == ["GREETING=100%n"]


def test_set_raw_passes_a_value_as_is_and_update_keeps_it(env: Env, atomic_image: str) -> None:
    web(env, atomic_image, ("GREETING", 'a\\"b'), raw=("GREETING",))
    assert config_env(env) == ['GREETING=a"b']
    info = read_info(env.dep("web.0"))
    assert info is not None and info.kept.raw == ("GREETING",)
    update(env.host, UpdateRequest("web", sets=(("PORT", "2"),)))
    assert config_env_of(env, "web.1") == ['GREETING=a"b']
    update(env.host, UpdateRequest("web", sets=(("GREETING", 'a\\"b'),)))  # plain again
    assert config_env_of(env, "web.0") == ['GREETING=a\\"b']


def config_env_of(env: Env, slot: str) -> list[str]:
    return list(json.loads((env.dep(slot) / "config.json").read_text())["process"]["env"])


# ---- raw positions: outside a JSON string -----------------------------------------------------


def render_etcd(
    sets: dict[str, str], config: str = ETCD_CONFIG, raw: tuple[str, ...] = ()
) -> dict[str, Any]:
    files = {**etcd_files(), "config.json.template": config.encode()}
    exports = parse_exports(files)
    values = compute_values(
        name="etcd",
        image_name="etcd",
        image_id="sha256:" + "ab" * 32,
        destdir="/d/etcd.0",
        sets=sets,
        raw=raw,
        defaults=dict(exports.manifest.default_values),
        facts=FACTS,
        commands=foreground("etcd"),
    )
    rendered = render_deployment(exports, image_config(), values, exists=lambda _: True)
    doc: dict[str, Any] = json.loads(rendered.config_json)
    return doc


def test_a_fragment_variable_takes_a_balanced_fragment() -> None:
    doc = render_etcd({"ADDTL_MOUNTS": ADDTL_MOUNTS})
    assert doc["mounts"][-1]["source"] == "/srv/certs"


@pytest.mark.parametrize(
    "value",
    [
        '], "process": {"args": ["/evil"]}, "x": [',  # closes the mounts list
        ',{"source": "/"}]}',
        ',{"source": "/x',  # an unterminated string
    ],
)
def test_a_fragment_that_breaks_out_is_refused(value: str) -> None:
    with pytest.raises(UsageError) as info:
        render_etcd({"ADDTL_MOUNTS": value})
    assert "ADDTL_MOUNTS" in info.value.message and "config.json.template" in info.value.message
    assert "--set-raw" in (info.value.hint or "")


NUMBER_CONFIG = ETCD_CONFIG.replace(
    '"user": {"uid": 0, "gid": 0}', '"user": {"uid": $RUN_UID, "gid": 0}'
)


@pytest.mark.parametrize(
    "value", ['0, "gid": 0}, "privileged": {"a": 1', '0, "umask": 0', "[0]", "{}"]
)
def test_a_value_without_a_default_outside_a_string_must_be_a_scalar(value: str) -> None:
    assert render_etcd({"RUN_UID": "1000"}, NUMBER_CONFIG)["process"]["user"]["uid"] == 1000
    with pytest.raises(UsageError) as info:
        render_etcd({"RUN_UID": value}, NUMBER_CONFIG)
    assert "RUN_UID" in info.value.message


def test_set_raw_may_put_anything_that_still_parses() -> None:
    value = '0, "umask": 18'
    doc = render_etcd({"RUN_UID": value}, NUMBER_CONFIG, raw=("RUN_UID",))
    assert doc["process"]["user"] == {"uid": 0, "umask": 18, "gid": 0}


def test_the_cli_passes_set_raw_names_and_the_last_value_of_a_name_wins() -> None:
    from syscontainers.cli import build_parser
    from syscontainers.cli.containers import _sets

    argv = [
        "install",
        "--set",
        "A=1",
        "--set-raw",
        "B={}",
        "--set",
        "B=2",
        "--set-raw",
        "C=[",
        "--set",
        "C=3",
        "img",
    ]
    args = build_parser(argv).parse_args(argv)
    assert _sets(args) == ((("A", "1"), ("B", "{}"), ("C", "[")), ("B", "C"))
