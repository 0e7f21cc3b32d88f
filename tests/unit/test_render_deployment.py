"""Tests for syscontainers.render (render_deployment): whole deployments, end to end and pure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from syscontainers.errors import TemplateError
from syscontainers.render import (
    Rendered,
    RuntimeCommands,
    load_exports,
    load_user_db,
    parse_exports,
    render_deployment,
    wants_detached,
)
from syscontainers.render.unit import SUPPLEMENT_HEADER
from tests.unit.render_fixtures import (
    ADDTL_MOUNTS,
    WEB_CGROUP,
    assert_golden,
    etcd_exports,
    image_config,
    values_for,
)


def nothing_exists(path: str) -> bool:
    return False


def test_etcd_deployment_goldens() -> None:
    exports = etcd_exports()
    values = values_for(exports, {"ADDTL_MOUNTS": ADDTL_MOUNTS})
    rendered = render_deployment(exports, image_config(), values, exists=nothing_exists)
    assert_golden("etcd-config.json", rendered.config_json)
    assert_golden("etcd.service", rendered.unit)
    assert_golden("etcd-tmpfiles.conf", rendered.tmpfiles)
    assert [h.dest for h in rendered.host_files] == [
        "/etc/etcd/etcd.conf",
        "/usr/local/bin/etcdctl",
    ]


def test_plain_image_uses_defaults() -> None:
    exports = parse_exports({}, present=False)
    image = image_config(cmd=("/bin/httpd", "-f"), volumes=("/data",))
    rendered = render_deployment(
        exports,
        image,
        values_for(exports, name="web"),
        exists=nothing_exists,
        cgroups_path=WEB_CGROUP,
    )
    assert_golden("default.service", rendered.unit)
    config = json.loads(rendered.config_json)
    assert config["process"]["args"] == ["/bin/httpd", "-f"]
    assert config["linux"]["cgroupsPath"] == WEB_CGROUP
    assert rendered.tmpfiles == "d /var/lib/web/data 0700 0 0 - -\n"
    assert rendered.host_files == ()


def test_detached_template_gets_detached_commands() -> None:
    service = b"[Service]\nExecStart=$EXEC_START\nExecStopPost=$EXEC_STOPPOST\nPIDFile=$PIDFILE\n"
    exports = parse_exports({"service.template": service})
    assert wants_detached(exports)
    commands = RuntimeCommands(
        exec_start="/usr/sbin/runc run -d --pid-file /run/container-etcd.pid 'etcd'",
        exec_stoppost="/usr/sbin/runc delete 'etcd'",
    )
    values = values_for(exports, commands=commands)
    rendered = render_deployment(exports, image_config(cmd=("x",)), values, exists=nothing_exists)
    assert rendered.unit == (
        "[Service]\nExecStart=/usr/sbin/runc run -d --pid-file /run/container-etcd.pid 'etcd'\n"
        "ExecStopPost=/usr/sbin/runc delete 'etcd'\nPIDFile=/run/container-etcd.pid\n"
        + SUPPLEMENT_HEADER
        + "Delegate=yes\nSuccessExitStatus=143 SIGKILL\n"
        "SyslogIdentifier=etcd\n"
    )
    assert "cgroupsPath" not in rendered.config_json.decode()  # none asked for


def test_no_container_service_renders_only_host_files() -> None:
    manifest = b'{"noContainerService": true, "installedFilesTemplate": ["/etc/motd"]}'
    exports = parse_exports({"manifest.json": manifest, "hostfs/etc/motd": b"hi $NAME\n"})
    rendered = render_deployment(
        exports, image_config(), values_for(exports), exists=nothing_exists
    )
    assert rendered.config_json == b"" and rendered.unit == "" and rendered.tmpfiles == ""
    assert rendered.host_files[0].content == b"hi etcd\n"


def test_every_missing_variable_before_rendering_anything() -> None:
    exports = parse_exports(
        {
            "config.json.template": b'{"root": {"path": "rootfs", "readonly": true}, "a": "$ONE"}',
            "service.j2": b"ExecStart={{ EXEC_START }} {{ TWO }}",
            "tmpfiles.template": b"d $THREE",
        }
    )
    with pytest.raises(TemplateError) as info:
        render_deployment(exports, image_config(), values_for(exports), exists=nothing_exists)
    message = info.value.message
    assert "ONE, THREE, TWO" in message
    assert "config.json.template needs ONE" in message and "service.j2 needs TWO" in message
    assert "tmpfiles.template needs THREE" in message


def test_rendered_from_a_real_rootfs(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text(
        "root:x:0:0::/root:/bin/sh\napp:x:1500:1600::/:/bin/false\n"
    )
    (tmp_path / "etc/group").write_text("app:x:1600:\n")
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports/manifest.json").write_text('{"defaultValues": {"PORT": "8081"}}')
    exports = load_exports(tmp_path)
    image = image_config(cmd=("/bin/app",), env=("PORT=8081",), user="app")
    rendered = render_deployment(
        exports, image, values_for(exports), exists=nothing_exists, users=load_user_db(tmp_path)
    )
    assert isinstance(rendered, Rendered)
    assert json.loads(rendered.config_json)["process"]["user"] == {"uid": 1500, "gid": 1600}


def test_load_user_db_ignores_symlinked_passwd(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").symlink_to("/etc/passwd")
    assert load_user_db(tmp_path).users == ()
