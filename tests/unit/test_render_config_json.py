"""Tests for syscontainers.render.config_json: template, verbatim and generated config.json."""

from __future__ import annotations

import json
from typing import Any

import pytest

from syscontainers.errors import TemplateError
from syscontainers.record import replace
from syscontainers.render.config_json import (
    MissingSource,
    UserDB,
    bind_sources,
    generate_config,
    parse_user_db,
    render_config,
    resolve_user,
    validate_config,
)
from syscontainers.render.exports import parse_exports
from syscontainers.render.values import Origin, Values
from tests.unit.render_fixtures import (
    ADDTL_MOUNTS,
    ETCD_CGROUP,
    WEB_CGROUP,
    assert_golden,
    etcd_exports,
    image_config,
    values_for,
)

PASSWD = """\
root:x:0:0:root:/root:/bin/sh
# a comment
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
etcd:x:990:985::/var/lib/etcd:/sbin/nologin
broken line
bad:x:notanumber:1::/:/bin/false
"""
GROUP = "root:x:0:\nwheel:x:10:etcd\nssl:x:988:\n"
USERS = parse_user_db(PASSWD, GROUP)

WEB_IMAGE = image_config(
    entrypoint=("/usr/bin/web",),
    cmd=("--port", "8080"),
    env=("LANG=C.UTF-8",),
    working_dir="/srv",
    user="etcd:ssl",
    volumes=("/var/lib/web",),
)


def host_has(*paths: str) -> Any:
    return lambda p: p in paths


def test_parse_user_db_skips_junk() -> None:
    assert USERS.users == (("root", 0, 0), ("daemon", 1, 1), ("etcd", 990, 985))
    assert dict(USERS.groups) == {"root": 0, "wheel": 10, "ssl": 988}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("", (0, 0)),
        ("0", (0, 0)),
        ("990", (990, 985)),
        ("1234", (1234, 0)),
        ("1234:77", (1234, 77)),
        ("etcd", (990, 985)),
        ("etcd:wheel", (990, 10)),
        ("etcd:5", (990, 5)),
        ("daemon:root", (1, 0)),
    ],
)
def test_resolve_user(spec: str, expected: tuple[int, int]) -> None:
    assert resolve_user(spec, USERS) == expected


@pytest.mark.parametrize("spec", ["nobody", "etcd:nogroup", "ghost:0"])
def test_resolve_user_unknown(spec: str) -> None:
    with pytest.raises(TemplateError) as info:
        resolve_user(spec, USERS)
    assert spec in info.value.message and info.value.hint


def test_generated_config_golden() -> None:
    values = values_for(parse_exports({}), name="web")
    rendered = render_config(
        parse_exports({}), WEB_IMAGE, values, USERS, host_has("/etc/resolv.conf"), WEB_CGROUP
    )
    assert_golden("generated-config.json", rendered.data)
    assert rendered.document["linux"]["cgroupsPath"] == WEB_CGROUP
    assert rendered.missing_sources == (MissingSource("/var/lib/web/var/lib/web", "990", "988"),)


def test_generated_config_shape() -> None:
    values = values_for(parse_exports({}), name="web")
    doc = generate_config(WEB_IMAGE, values, USERS, host_has())
    process = doc["process"]
    assert process["args"] == ["/usr/bin/web", "--port", "8080"]
    assert process["env"][0].startswith("PATH=/usr/local/sbin")
    assert (process["cwd"], process["user"], process["terminal"]) == (
        "/srv",
        {"uid": 990, "gid": 988},
        False,
    )
    assert doc["root"] == {"path": "rootfs", "readonly": True}
    namespaces = {n["type"] for n in doc["linux"]["namespaces"]}
    assert "network" not in namespaces and "uts" not in namespaces and "hostname" not in doc
    destinations = [m["destination"] for m in doc["mounts"]]
    for d in ("/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"):
        assert d in destinations
    assert "/etc/resolv.conf" not in destinations
    validate_config(doc, "generated")


def test_generated_keeps_image_path() -> None:
    image = image_config(cmd=("sh",), env=("PATH=/opt/bin",))
    doc = generate_config(image, values_for(parse_exports({})), UserDB(), host_has())
    assert doc["process"]["env"] == ["PATH=/opt/bin"] and doc["process"]["user"] == {
        "uid": 0,
        "gid": 0,
    }


def test_generated_needs_a_command() -> None:
    with pytest.raises(TemplateError, match="no Entrypoint or Cmd") as info:
        generate_config(image_config(), values_for(parse_exports({})), UserDB(), host_has())
    assert "config.json.template" in (info.value.hint or "")


def test_generated_config_is_not_aliased() -> None:
    values = values_for(parse_exports({}))
    first = generate_config(WEB_IMAGE, values, USERS, host_has())
    first["mounts"][0]["options"] = ["mutated"]
    first["process"]["capabilities"]["bounding"].append("CAP_SYS_ADMIN")
    second = generate_config(WEB_IMAGE, values, USERS, host_has())
    assert "options" not in second["mounts"][0]
    assert "CAP_SYS_ADMIN" not in second["process"]["capabilities"]["effective"]


def test_etcd_template_with_addtl_mounts_golden() -> None:
    exports = etcd_exports()
    values = values_for(exports, {"ADDTL_MOUNTS": ADDTL_MOUNTS})
    rendered = render_config(
        exports, image_config(), values, UserDB(), host_has("/etc/resolv.conf")
    )
    assert_golden("etcd-config.json", rendered.data)  # the template's text, values inserted raw
    doc = json.loads(rendered.data)
    assert doc["mounts"][-1]["source"] == "/srv/certs"
    assert doc["process"]["capabilities"]["bounding"][-1] == "CAP_CHECKPOINT_RESTORE"
    assert [m.path for m in rendered.missing_sources] == [
        "/var/lib/etcd/etcd.etcd",
        "/run/etcd",
        "/etc/etcd",
        "/srv/certs",
    ]
    assert {(m.uid, m.gid) for m in rendered.missing_sources} == {("0", "0")}


def test_a_set_value_in_a_json_string_is_escaped() -> None:
    exports = etcd_exports()
    values = values_for(exports, {"ETCD_NAME": 'say "hi"'})
    rendered = render_config(exports, image_config(), values, UserDB(), host_has())
    assert 'ETCD_NAME=say "hi"' in rendered.document["process"]["env"]


def test_raw_value_breaking_json_names_file_and_line() -> None:
    exports = etcd_exports()
    base = values_for(exports, {"ETCD_NAME": 'say "hi"'})
    values = Values(
        tuple(replace(v, origin=Origin.RAW) if v.name == "ETCD_NAME" else v for v in base.entries),
        base.fragments,
    )
    with pytest.raises(TemplateError) as info:
        render_config(exports, image_config(), values, UserDB(), host_has())
    message = info.value.message
    assert message.startswith("/exports/config.json.template: not valid JSON")
    assert "line 10" in message and "ETCD_NAME=say" in message
    assert "--set-raw" in (info.value.hint or "") and "tojson" in (info.value.hint or "")


def test_jinja_config_with_tojson_survives_hostile_value() -> None:
    template = (
        '{"process": {"args": ["/bin/app"], "env": [{{ ("MSG=" ~ MSG) | tojson }}]},'
        ' "root": {"path": "rootfs", "readonly": true}}'
    )
    exports = parse_exports({"config.json.j2": template.encode()})
    hostile = 'x", "LD_PRELOAD=/evil.so\n'
    values = {**values_for(exports), "MSG": hostile}
    rendered = render_config(exports, image_config(), values, UserDB(), host_has())
    assert rendered.document["process"]["env"] == ["MSG=" + hostile]


def test_verbatim_config_used_unchanged() -> None:
    text = b'{"root": {"path": "rootfs", "readonly": true}, "note": "$NOT_A_VAR"}'
    exports = parse_exports({"config.json": text})
    rendered = render_config(exports, image_config(), values_for(exports), UserDB(), host_has())
    assert rendered.data == text


def test_cgroups_path_is_added_to_an_image_config() -> None:
    text = b'{"root": {"path": "rootfs", "readonly": true}, "note": "$NOT_A_VAR"}'
    exports = parse_exports({"config.json": text})
    values = values_for(exports)
    rendered = render_config(exports, image_config(), values, UserDB(), host_has(), ETCD_CGROUP)
    assert json.loads(rendered.data) == {**json.loads(text), "linux": {"cgroupsPath": ETCD_CGROUP}}
    assert rendered.document == json.loads(rendered.data)
    etcd = etcd_exports()
    values = values_for(etcd, {"ADDTL_MOUNTS": ""})
    plain = render_config(etcd, image_config(), values, UserDB(), host_has())
    placed = render_config(etcd, image_config(), values, UserDB(), host_has(), ETCD_CGROUP)
    plain.document["linux"]["cgroupsPath"] = ETCD_CGROUP
    assert json.loads(placed.data) == plain.document


def test_an_image_cgroups_path_is_kept() -> None:
    text = (
        b'{"root": {"path": "rootfs", "readonly": true}, "linux": {"cgroupsPath": "/mine/$NAME"}}'
    )
    exports = parse_exports({"config.json.template": text})
    values = values_for(exports)
    rendered = render_config(exports, image_config(), values, UserDB(), host_has(), ETCD_CGROUP)
    assert rendered.data == text.replace(b"$NAME", b"etcd")


def test_cgroups_path_needs_linux_to_be_an_object() -> None:
    text = b'{"root": {"path": "rootfs", "readonly": true}, "linux": []}'
    exports = parse_exports({"config.json": text})
    with pytest.raises(TemplateError, match="linux must be a JSON object"):
        render_config(
            exports, image_config(), values_for(exports), UserDB(), host_has(), ETCD_CGROUP
        )


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        ({}, 'root.path must be "rootfs"'),
        ({"root": {"path": "/", "readonly": True}}, 'root.path must be "rootfs"'),
        ({"root": {"path": "rootfs"}}, "root.readonly must be true"),
        ({"root": {"path": "rootfs", "readonly": False}}, "root.readonly must be true"),
        ({"root": {"path": "rootfs", "readonly": "true"}}, "root.readonly must be true"),
        (
            {"root": {"path": "rootfs", "readonly": True}, "process": {"terminal": True}},
            "process.terminal must be false",
        ),
        ({"root": {"path": "rootfs", "readonly": True}, "mounts": {}}, "mounts must be a list"),
    ],
)
def test_validate_config(doc: dict[str, Any], fragment: str) -> None:
    with pytest.raises(TemplateError) as info:
        validate_config(doc, "/exports/config.json")
    assert fragment in info.value.message and info.value.hint


def test_not_an_object() -> None:
    exports = parse_exports({"config.json": b"[1, 2]"})
    with pytest.raises(TemplateError, match="must be a JSON object"):
        render_config(exports, image_config(), values_for(exports), UserDB(), host_has())


def test_bind_sources() -> None:
    doc = {
        "mounts": [
            {"type": "bind", "source": "/a", "destination": "/x"},
            {"type": "none", "source": "/b", "destination": "/y", "options": ["rbind"]},
            {"source": "/c", "destination": "/z", "options": ["bind", "ro"]},
            {"type": "bind", "source": "/a", "destination": "/again"},
            {"type": "bind", "source": "relative", "destination": "/r"},
            {"type": "tmpfs", "source": "tmpfs", "destination": "/tmp"},
            "junk",
        ]
    }
    assert bind_sources(doc) == ["/a", "/b", "/c"]
