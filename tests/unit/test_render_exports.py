"""Tests for syscontainers.render.exports: parsing /exports and reading it safely."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from syscontainers.errors import TemplateError
from syscontainers.render.exports import (
    Exports,
    ExportsManifest,
    Syntax,
    load_default_templates,
    load_exports,
    parse_exports,
    parse_manifest_json,
    read_rootfs_file,
    rename_path,
)
from tests.unit.render_fixtures import etcd_files

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("names", "role", "chosen", "syntax"),
    [
        (["config.json"], "config", "config.json", Syntax.VERBATIM),
        (["config.json", "config.json.template"], "config", "config.json.template", Syntax.ATOMIC),
        (["config.json.template", "config.json.j2"], "config", "config.json.j2", Syntax.JINJA),
        (["service.template"], "service", "service.template", Syntax.ATOMIC),
        (["service.template", "service.j2"], "service", "service.j2", Syntax.JINJA),
        (["tmpfiles.template"], "tmpfiles", "tmpfiles.template", Syntax.ATOMIC),
        (["tmpfiles.j2", "tmpfiles.template"], "tmpfiles", "tmpfiles.j2", Syntax.JINJA),
    ],
)
def test_preferred_file_per_role(names: list[str], role: str, chosen: str, syntax: Syntax) -> None:
    exports = parse_exports({n: n.encode() for n in names})
    source = getattr(exports, role)
    assert (source.name, source.text, source.syntax) == (chosen, chosen, syntax)


def test_absent_manifest_gives_atomic_defaults() -> None:
    manifest = parse_exports({}).manifest
    assert manifest == ExportsManifest()
    assert manifest.use_links is True and manifest.no_container_service is False


def test_manifest_parsed() -> None:
    manifest = parse_exports(etcd_files()).manifest
    assert manifest.version == "1.0"
    assert dict(manifest.default_values)["ETCD_INITIAL_CLUSTER_STATE"] == "new"
    assert dict(manifest.rename_files)["/usr/local/bin/etcdctl"] == "/usr/local/bin/${NAME}ctl"


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        ([], "must be a JSON object"),
        ({"version": True}, "version"),
        ({"defaultValues": []}, "defaultValues must be an object"),
        ({"defaultValues": {"A": ["x"]}}, "defaultValues.A must be a string"),
        ({"defaultValues": {"A": None}}, "defaultValues.A must be a string"),
        ({"defaultValues": {"A": False}}, "defaultValues.A must be a string"),
        ({"renameFiles": ["/a"]}, "renameFiles must be an object"),
        ({"renameFiles": {"etc/x": "/y"}}, "must be an absolute path"),
        ({"renameFiles": {"/etc/x": 3}}, "must be a non-empty string"),
        ({"installedFilesTemplate": "/etc/x"}, "installedFilesTemplate must be a list"),
        ({"installedFilesTemplate": ["etc/x"]}, "must be an absolute path"),
        ({"noContainerService": "yes"}, "noContainerService must be true or false"),
        ({"useLinks": 1}, "useLinks must be true or false"),
    ],
)
def test_bad_manifest_types(doc: object, fragment: str) -> None:
    with pytest.raises(TemplateError) as info:
        parse_manifest_json(json.dumps(doc).encode())
    assert fragment in info.value.message
    assert info.value.message.startswith("/exports/manifest.json")
    assert info.value.hint


def test_manifest_numbers_become_strings() -> None:
    manifest = parse_manifest_json(b'{"version": 1.0, "defaultValues": {"PORT": 8081}}')
    assert manifest.version == "1.0" and manifest.default_values == (("PORT", "8081"),)


def test_bad_manifest_json_names_line_with_hint() -> None:
    with pytest.raises(TemplateError) as info:
        parse_manifest_json(b'{\n  "version": "1.0",\n  "useLinks": false,\n}\n')
    assert "line 4" in info.value.message
    assert "manifest.json" in (info.value.hint or "")


def test_non_utf8_template_rejected() -> None:
    with pytest.raises(TemplateError, match="not UTF-8"):
        parse_exports({"service.template": b"\xff\xfe"})


@pytest.mark.parametrize("key", ["/abs", "../up", "hostfs/../../etc/passwd"])
def test_bad_relative_names_rejected(key: str) -> None:
    with pytest.raises(TemplateError):
        parse_exports({key: b""})


@pytest.mark.parametrize(
    ("path", "renames", "expected"),
    [
        ("/etc/x", {}, "/etc/x"),
        ("/etc/etcd/etcd.conf", {"/etc/etcd": "/etc/$NAME"}, "/etc/$NAME/etcd.conf"),
        ("/etc/etcd/a/b", {"/etc/etcd": "/E", "/etc/etcd/a": "/A"}, "/A/b"),
        ("/etc/etcd", {"/etc/etcd/etcd.conf": "/x"}, "/etc/etcd"),
        ("/usr/local/bin/etcdctl", {"/usr/local/bin/etcdctl": "/usr/bin/c"}, "/usr/bin/c"),
        ("/etc/etcdX/f", {"/etc/etcd": "/E"}, "/etc/etcdX/f"),
    ],
)
def test_rename_path_per_component(path: str, renames: dict[str, str], expected: str) -> None:
    assert rename_path(path, renames) == expected


def test_host_templates_selected_by_source_or_renamed_path() -> None:
    manifest = {
        "renameFiles": {"/usr/lib/a": "/usr/lib/renamed-$NAME"},
        "installedFilesTemplate": ["/usr/lib/renamed-$NAME", "/etc/msg"],
    }
    exports = parse_exports(
        {
            "manifest.json": json.dumps(manifest).encode(),
            "hostfs/usr/lib/a": b"A $NAME",
            "hostfs/etc/msg": b"hello $RECEIVER",
            "hostfs/etc/plain": b"literal $RECEIVER",
        }
    )
    assert exports.hostfs == ("hostfs/etc/msg", "hostfs/etc/plain", "hostfs/usr/lib/a")
    assert {t.name for t in exports.host_templates} == {"hostfs/etc/msg", "hostfs/usr/lib/a"}


def test_templates_lists_only_rendered_sources() -> None:
    exports = parse_exports({"config.json": b"{}", "service.j2": b"", "tmpfiles.template": b""})
    assert [t.name for t in exports.templates()] == ["service.j2", "tmpfiles.template"]


def test_default_templates_are_the_top_level_templates_dir() -> None:
    defaults = load_default_templates()
    assert defaults.service.text == (REPO / "templates" / "service.template").read_text()
    assert "ExecStart=$EXEC_START" in defaults.service.text


# --- loading from a rootfs --------------------------------------------------------


def _tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def test_load_exports_reads_templates_and_hostfs(tmp_path: Path) -> None:
    files = etcd_files()
    _tree(tmp_path / "exports", files)
    (tmp_path / "exports/hostfs/usr/local/bin/link").symlink_to("etcdctl")
    exports = load_exports(tmp_path)
    assert exports == parse_exports({**files, "hostfs/usr/local/bin/link": b""})
    assert exports.present and exports.service is not None
    assert "hostfs/usr/local/bin/link" in exports.hostfs


def test_load_exports_without_exports(tmp_path: Path) -> None:
    assert load_exports(tmp_path) == Exports(present=False)


def test_exports_symlink_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    _tree(outside, {"service.template": b"stolen"})
    (tmp_path / "rootfs").mkdir()
    (tmp_path / "rootfs/exports").symlink_to(outside)
    with pytest.raises(TemplateError, match="/exports is a symlink"):
        load_exports(tmp_path / "rootfs")


def test_template_symlink_out_of_rootfs_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("root:x:0:0")
    (tmp_path / "rootfs/exports").mkdir(parents=True)
    (tmp_path / "rootfs/exports/service.template").symlink_to(secret)
    with pytest.raises(TemplateError, match="service.template is a symlink"):
        load_exports(tmp_path / "rootfs")


def test_hostfs_directory_symlink_is_listed_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    _tree(outside, {"secret": b"x"})
    _tree(tmp_path / "rootfs/exports", {"hostfs/etc/a": b"a"})
    (tmp_path / "rootfs/exports/hostfs/etc/evil").symlink_to(outside)
    exports = load_exports(tmp_path / "rootfs")
    assert exports.hostfs == ("hostfs/etc/a", "hostfs/etc/evil")


def test_symlinked_host_template_is_refused(tmp_path: Path) -> None:
    manifest = json.dumps({"installedFilesTemplate": ["/etc/msg"]}).encode()
    _tree(tmp_path / "exports", {"manifest.json": manifest})
    (tmp_path / "exports/hostfs/etc").mkdir(parents=True)
    (tmp_path / "exports/hostfs/etc/msg").symlink_to("/etc/passwd")
    with pytest.raises(TemplateError, match="symlink"):
        load_exports(tmp_path)


def test_host_template_content_is_read(tmp_path: Path) -> None:
    manifest = json.dumps({"installedFilesTemplate": ["/etc/msg"]}).encode()
    _tree(tmp_path / "exports", {"manifest.json": manifest, "hostfs/etc/msg": b"hi $NAME"})
    exports = load_exports(tmp_path)
    assert [(t.name, t.text) for t in exports.host_templates] == [("hostfs/etc/msg", "hi $NAME")]


def test_fifo_in_hostfs_is_refused(tmp_path: Path) -> None:
    (tmp_path / "exports/hostfs").mkdir(parents=True)
    os.mkfifo(tmp_path / "exports/hostfs/pipe")
    with pytest.raises(TemplateError, match="device, socket or fifo"):
        load_exports(tmp_path)


def test_read_rootfs_file(tmp_path: Path) -> None:
    _tree(tmp_path, {"etc/passwd": b"root:x:0:0::/root:/bin/sh\n"})
    assert read_rootfs_file(tmp_path, "etc/passwd") == b"root:x:0:0::/root:/bin/sh\n"
    assert read_rootfs_file(tmp_path, "etc/group") is None
    assert read_rootfs_file(tmp_path, "nope/group") is None


def test_read_rootfs_file_refuses_symlinked_directory(tmp_path: Path) -> None:
    _tree(tmp_path / "host", {"passwd": b"host secret"})
    (tmp_path / "rootfs").mkdir()
    (tmp_path / "rootfs/etc").symlink_to(tmp_path / "host")
    with pytest.raises(TemplateError):
        read_rootfs_file(tmp_path / "rootfs", "etc/passwd")


def test_read_rootfs_file_refuses_dotdot(tmp_path: Path) -> None:
    with pytest.raises(TemplateError):
        read_rootfs_file(tmp_path, "../etc/passwd")
