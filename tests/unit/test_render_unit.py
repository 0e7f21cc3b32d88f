"""Tests for render.unit, render.tmpfiles and render.hostfs (the runtime mode too)."""

from __future__ import annotations

import json

import pytest

from syscontainers.errors import TemplateError
from syscontainers.render.config_json import MissingSource
from syscontainers.render.exports import parse_exports
from syscontainers.render.hostfs import HostFile, plan_host_files
from syscontainers.render.tmpfiles import default_tmpfiles, render_tmpfiles, tmpfiles_path
from syscontainers.render.unit import (
    SUPPLEMENT_EXECS,
    SUPPLEMENT_HEADER,
    render_unit,
    shipped_defaults,
    wants_detached,
)
from syscontainers.runtime import STOP_GRACE_SECONDS, Runtime, RuntimeMode, runtime_commands
from tests.unit.render_fixtures import assert_golden, etcd_exports, values_for


def test_default_unit_golden() -> None:
    exports = parse_exports({}, present=False)
    unit = render_unit(exports, values_for(exports, name="web"))
    assert_golden("default.service", unit)
    assert "SuccessExitStatus=143 137\n" in unit and "RestartForceExitStatus=137\n" in unit
    assert "Delegate=yes\n" in unit and "KillMode=mixed\n" in unit
    assert "WantedBy=multi-user.target" in unit
    assert "$" not in unit.replace("$$", "")
    assert SUPPLEMENT_HEADER not in unit  # the default unit has it all written out
    for key, var in SUPPLEMENT_EXECS:
        assert f"{key}=${var}\n" in shipped_defaults().service.text


def test_default_unit_stop_timeout_leaves_room_for_the_grace() -> None:
    text = shipped_defaults().service.text
    (line,) = [x for x in text.splitlines() if x.startswith("TimeoutStopSec=")]
    assert int(line.partition("=")[2]) >= STOP_GRACE_SECONDS + 5
    assert f"{STOP_GRACE_SECONDS} s" in text  # the comments name the grace


ATOMIC_SERVICE = (
    "[Unit]\nDescription=$NAME\n\n[Service]\nExecStart=$EXEC_START\nExecStop=$EXEC_STOP\n"
    "SuccessExitStatus=3\n\n[Install]\nWantedBy=multi-user.target\n"
)


def test_an_image_unit_gets_the_stop_guarantees() -> None:
    exports = parse_exports({"service.template": ATOMIC_SERVICE.encode()})
    values = values_for(exports)
    unit = render_unit(exports, values)
    head, _, added = unit.partition(SUPPLEMENT_HEADER)
    assert head == (
        "[Unit]\nDescription=etcd\n\n[Service]\nExecStart=/usr/sbin/runc run 'etcd'\n"
        f"ExecStop={values['EXEC_STOP']}\nSuccessExitStatus=3\n\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )
    assert added == (
        "ExecStartPre=-/usr/sbin/runc delete --force 'etcd'\n"
        "ExecStopPost=-/usr/sbin/runc delete --force 'etcd'\n"
        "Delegate=yes\nSuccessExitStatus=143 137\nSyslogIdentifier=etcd\n"
    )
    assert unit.count("ExecStop=") == 1


@pytest.mark.parametrize(
    ("service", "detached", "execs"),
    [
        (
            "[Service]\nExecStartPre=$EXEC_STARTPRE\nExecStart=$EXEC_START\n"
            "ExecStop=$EXEC_STOP\nExecStopPost=$EXEC_STOPPOST\n",
            False,
            [],
        ),
        (
            "[Service]\nExecStart={{ EXEC_START }}\nExecStopPost={{ EXEC_STOPPOST }}\n",
            False,
            ["ExecStartPre", "ExecStop"],
        ),
        (
            "[Service]\nExecStart=$EXEC_START\nExecStopPost=$EXEC_STOPPOST\nPIDFile=$PIDFILE\n",
            True,
            ["ExecStartPre", "ExecStop"],
        ),
    ],
)
def test_supplement_adds_only_what_the_template_lacks(
    service: str, detached: bool, execs: list[str]
) -> None:
    name = "service.j2" if "{{" in service else "service.template"
    exports = parse_exports({name: service.encode()})
    assert wants_detached(exports) is detached
    mode = RuntimeMode.DETACHED if detached else RuntimeMode.FOREGROUND
    commands = runtime_commands(Runtime("/usr/sbin/runc"), "etcd", mode, "/run/c.pid")
    unit = render_unit(exports, values_for(exports, commands=commands))
    added = unit.partition(SUPPLEMENT_HEADER)[2].splitlines()
    assert [line.partition("=")[0] for line in added] == [
        *execs,
        "Delegate",
        "SuccessExitStatus",
        "SyslogIdentifier",
    ]
    assert added[-2] == (
        "SuccessExitStatus=143 SIGKILL" if detached else "SuccessExitStatus=143 137"
    )


def test_default_unit_starts_after_network_target_and_names_the_journal() -> None:
    exports = parse_exports({}, present=False)
    unit = render_unit(exports, values_for(exports, name="web"))
    lines = [line for line in unit.splitlines() if not line.startswith("#")]
    assert "After=network.target" in lines and "SyslogIdentifier=web" in lines
    assert not [line for line in lines if "network-online" in line or "Wants=" in line]


@pytest.mark.parametrize("files", [{}, {"service.template": ATOMIC_SERVICE.encode()}])
def test_network_online_yes_makes_any_unit_wait_for_it(files: dict[str, bytes]) -> None:
    exports = parse_exports(files, present=bool(files))
    unit = render_unit(exports, values_for(exports, {"NETWORK_ONLINE": "yes"}))
    assert unit.endswith("[Unit]\nWants=network-online.target\nAfter=network-online.target\n")
    assert unit.count("Wants=network-online.target") == 1


def test_a_unit_that_starts_no_container_gets_no_runtime_commands() -> None:
    # azure's shape: ExecStart runs a host program, not $EXEC_START
    service = "[Service]\nExecStart=/usr/bin/python -u /usr/sbin/waagent -daemon\n"
    exports = parse_exports({"service.template": service.encode()})
    added = render_unit(exports, values_for(exports)).partition(SUPPLEMENT_HEADER)[2]
    assert added == "Delegate=yes\nSuccessExitStatus=143 137\nSyslogIdentifier=etcd\n"


def test_an_image_unit_keeps_its_own_syslog_identifier() -> None:
    service = ATOMIC_SERVICE.replace("SuccessExitStatus=3\n", "SyslogIdentifier=mine\n")
    exports = parse_exports({"service.template": service.encode()})
    unit = render_unit(exports, values_for(exports))
    assert unit.count("SyslogIdentifier=") == 1 and "SyslogIdentifier=mine\n" in unit


def test_etcd_unit_golden() -> None:
    exports = etcd_exports()
    unit = render_unit(exports, values_for(exports))
    assert_golden("etcd.service", unit)
    assert "ExecStart=/usr/sbin/runc run 'etcd'\n" in unit
    assert "Environment=COST=$5\n" in unit


def test_no_container_service_has_no_unit() -> None:
    exports = parse_exports({"manifest.json": b'{"noContainerService": true}'})
    assert render_unit(exports, values_for(exports)) == ""
    assert wants_detached(exports) is False


@pytest.mark.parametrize(
    ("files", "detached"),
    [
        ({}, False),
        (
            {
                "service.template": "ExecStart=$EXEC_START\nExecStopPost=$EXEC_STOPPOST\n"
                "PIDFile=$PIDFILE"
            },
            True,
        ),
        ({"service.template": "ExecStopPost=${EXEC_STOPPOST}\nPIDFile=${PIDFILE}"}, True),
        ({"service.template": "ExecStart=$EXEC_START\nExecStopPost=$EXEC_STOPPOST"}, False),
        ({"service.template": "ExecStart=$EXEC_START\nPIDFile=$PIDFILE"}, False),
        ({"service.template": "ExecStopPost=$EXEC_STOPPOST\n# $$PIDFILE"}, False),
        ({"service.j2": "ExecStopPost={{ EXEC_STOPPOST }}\nPIDFile={{ PIDFILE }}"}, True),
        ({"service.j2": "ExecStart={{ EXEC_START }}"}, False),
    ],
)
def test_wants_detached(files: dict[str, str], detached: bool) -> None:
    exports = parse_exports({k: v.encode() for k, v in files.items()})
    assert wants_detached(exports) is detached


def test_tmpfiles_from_template() -> None:
    exports = parse_exports({"tmpfiles.template": b"d ${RUN_DIRECTORY}/${NAME} 0700 - - - -"})
    text = render_tmpfiles(exports, values_for(exports), [MissingSource("/ignored", "0", "0")])
    assert text == "d /run/etcd 0700 - - - -\n"


def test_default_tmpfiles_per_missing_source() -> None:
    exports = parse_exports({})
    missing = [MissingSource("/var/lib/web/data", "990", "988"), MissingSource("/srv/x", "0", "0")]
    assert render_tmpfiles(exports, values_for(exports), missing) == (
        "d /var/lib/web/data 0700 990 988 - -\nd /srv/x 0700 0 0 - -\n"
    )
    assert default_tmpfiles([]) == ""


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/var/lib/a", "/var/lib/a"),
        ("/var/lib/100%", "/var/lib/100%%"),
        ("/srv/my data", '"/srv/my data"'),
        ('/srv/q"uote', '"/srv/q\\"uote"'),
    ],
)
def test_tmpfiles_path_quoting(path: str, field: str) -> None:
    assert tmpfiles_path(path) == field


@pytest.mark.parametrize("path", ["/a\nR /", "/a\tb", "/a\x00"])
def test_tmpfiles_path_refuses_control_characters(path: str) -> None:
    with pytest.raises(TemplateError, match="control character"):
        tmpfiles_path(path)


def test_host_files_renamed_per_component() -> None:
    exports = etcd_exports()
    plan = plan_host_files(
        exports, values_for(exports, {"CONF_DIRECTORY": "/srv/conf/"}, name="db1")
    )
    assert plan == (
        HostFile("/srv/conf/db1/etcd.conf", "hostfs/etc/etcd/etcd.conf", rendered=False),
        HostFile("/usr/local/bin/db1ctl", "hostfs/usr/local/bin/etcdctl", rendered=False),
    )


def test_directory_rename_moves_children_and_templates_render() -> None:
    manifest = {
        "defaultValues": {"RECEIVER": "World"},
        "renameFiles": {
            "/usr/local/lib/app": "/opt/$NAME",
            "/usr/local/lib/placeholder": "/usr/local/lib/renamed-$NAME",
        },
        "installedFilesTemplate": ["/opt/$NAME/secret-message-template"],
    }
    exports = parse_exports(
        {
            "manifest.json": json.dumps(manifest).encode(),
            "hostfs/usr/local/lib/app/secret-message-template": b"Hello $RECEIVER from $NAME\n",
            "hostfs/usr/local/lib/app/sub/plain": b"$RECEIVER stays",
            "hostfs/usr/local/lib/placeholder": b"",
        }
    )
    plan = {
        h.dest: h
        for h in plan_host_files(exports, values_for(exports, {"RECEIVER": "Venus"}, name="hf"))
    }
    assert set(plan) == {
        "/opt/hf/secret-message-template",
        "/opt/hf/sub/plain",
        "/usr/local/lib/renamed-hf",
    }
    assert plan["/opt/hf/secret-message-template"].content == b"Hello Venus from hf\n"
    assert plan["/opt/hf/sub/plain"] == HostFile(
        "/opt/hf/sub/plain", "hostfs/usr/local/lib/app/sub/plain", False
    )


@pytest.mark.parametrize(
    ("target", "sets"),
    [
        ("relative/$NAME", {}),
        ("$CONF_DIRECTORY/x", {"CONF_DIRECTORY": "etc"}),
        ("/", {}),
        ("$EMPTY", {"EMPTY": ""}),
    ],
)
def test_bad_rename_targets(target: str, sets: dict[str, str]) -> None:
    manifest = {"renameFiles": {"/etc/a": target}}
    exports = parse_exports({"manifest.json": json.dumps(manifest).encode(), "hostfs/etc/a": b""})
    with pytest.raises(TemplateError) as info:
        plan_host_files(exports, values_for(exports, sets))
    assert "renameFiles" in info.value.message


def test_rename_collision_is_refused() -> None:
    manifest = {"renameFiles": {"/etc/a": "/etc/b"}}
    exports = parse_exports(
        {"manifest.json": json.dumps(manifest).encode(), "hostfs/etc/a": b"", "hostfs/etc/b": b""}
    )
    with pytest.raises(TemplateError, match="both be installed as /etc/b"):
        plan_host_files(exports, values_for(exports))
