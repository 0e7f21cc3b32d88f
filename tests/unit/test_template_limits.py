"""Size limits on the templates an image ships: one limit, and an error naming the file.

A template over the limit used to be read as empty (one reader stopped at 1 MiB, the other
allowed 4 MiB), so an installedFilesTemplate file or a unit was installed empty without a word.
"""

from __future__ import annotations

import json
import time

import pytest

from syscontainers.errors import TemplateError
from syscontainers.operations.inspect import inspect_image
from syscontainers.operations.install import InstallRequest, install
from syscontainers.render.exports import MAX_OUTPUT, MAX_TEXT, parse_exports
from syscontainers.render.templates import check_complete
from tests.imagebuild import layer_tar, write_oci_layout
from tests.unit.lifecycle_fixtures import Env, atomic_files

JUST_OVER_1MIB = (1 << 20) + 4096


def _big(prefix: bytes, size: int) -> bytes:
    return prefix + b"#" + b"~" * (size - len(prefix) - 1)


@pytest.mark.parametrize(
    ("rel", "prefix"),
    [
        ("exports/hostfs/etc/app/motd", b"$NAME listens on $PORT\n"),
        ("exports/service.template", b"[Service]\nExecStart=$EXEC_START\n"),
        ("exports/tmpfiles.template", b"d /var/lib/$NAME 0700 - - - -\n"),
    ],
)
@pytest.mark.parametrize("size", [JUST_OVER_1MIB, MAX_TEXT])
def test_a_large_template_is_rendered_whole(env: Env, rel: str, prefix: bytes, size: int) -> None:
    """Up to the limit, every byte of a template counts (a 1 MiB reader made it empty)."""
    env.pull(env.layout("big", atomic_files(**{rel: _big(prefix, size)})), "example.org/big:1")
    install(env.host, InstallRequest("example.org/big:1", name="web"))
    slot = env.dep("web.0")
    installed = {
        "exports/hostfs/etc/app/motd": env.on_host("/etc/web/motd"),
        "exports/service.template": slot / "web.service",
        "exports/tmpfiles.template": slot / "tmpfiles-web.conf",
    }[rel].read_bytes()
    assert installed.count(b"~") == size - len(prefix) - 1
    assert b"web" in installed[:200]


@pytest.mark.parametrize(
    "rel",
    [
        "exports/hostfs/etc/app/motd",
        "exports/service.template",
        "exports/config.json.template",
        "exports/tmpfiles.template",
        "exports/manifest.json",
    ],
)
def test_a_template_over_the_limit_is_an_error_naming_it(env: Env, rel: str) -> None:
    files = atomic_files(**{rel: b" " * (MAX_TEXT + 1)})
    env.pull(env.layout("huge", files), "example.org/huge:1")
    with pytest.raises(TemplateError) as info:
        install(env.host, InstallRequest("example.org/huge:1", name="web"))
    assert f"/{rel}" in info.value.message and str(MAX_TEXT) in info.value.message
    assert info.value.hint
    assert not env.dep().exists() or list(env.dep().iterdir()) == []
    assert list(env.paths.host_root.iterdir()) == []
    with pytest.raises(TemplateError) as seen:
        inspect_image(env.store, "example.org/huge:1")
    assert f"/{rel}" in seen.value.message


def test_a_large_file_that_is_not_a_template_is_fine(env: Env) -> None:
    files = atomic_files(
        **{
            "exports/hostfs/etc/app/app.conf": b"x" * (MAX_TEXT + 10),
            "exports/README": b"y" * (MAX_TEXT + 10),
        }
    )
    env.pull(env.layout("bigdata", files), "example.org/bigdata:1")
    install(env.host, InstallRequest("example.org/bigdata:1", name="web"))
    assert env.on_host("/etc/web/app.conf").stat().st_size == MAX_TEXT + 10


def test_a_template_that_is_a_symlink_is_an_error(env: Env) -> None:
    files = atomic_files()
    del files["exports/hostfs/etc/app/motd"]
    layer = layer_tar(files, symlinks={"exports/hostfs/etc/app/motd": "/etc/shadow"})
    write_oci_layout(env.tmp / "linked", [layer], "latest")
    env.pull(f"oci:{env.tmp / 'linked'}:latest", "example.org/linked:1")
    with pytest.raises(TemplateError) as info:
        install(env.host, InstallRequest("example.org/linked:1", name="web"))
    assert "/exports/hostfs/etc/app/motd" in info.value.message
    assert "symlink" in info.value.message


def test_an_atomic_template_whose_output_would_explode_is_an_error(env: Env) -> None:
    """A 2 MB unit that says $GREETING a million times, with a 1000-character default, would
    render to a gigabyte: refused before it is made, naming the file."""
    manifest = {"defaultValues": {"PORT": "1", "GREETING": "g" * 1000}}
    files = atomic_files(
        **{
            "exports/service.template": b"[Service]\n" + b"$GREETING" * 200000,
            "exports/manifest.json": json.dumps(manifest).encode(),
        }
    )
    env.pull(env.layout("boom", files), "example.org/boom:1")
    start = time.monotonic()
    with pytest.raises(TemplateError) as info:
        install(env.host, InstallRequest("example.org/boom:1", name="web"))
    assert time.monotonic() - start < 5
    assert info.value.message.startswith("service.template: ")
    assert str(MAX_OUTPUT) in info.value.message and info.value.hint


def test_the_check_before_rendering_is_bounded_too() -> None:
    """check_complete fits every value to its place before anything is written: it must not
    build an exploding output either (2 TB here) before the render would refuse it."""
    exports = parse_exports({"service.template": b"$G" * 500000})
    start = time.monotonic()
    with pytest.raises(TemplateError) as info:
        check_complete(exports, {"G": "x" * (4 << 20)})
    assert time.monotonic() - start < 5 and str(MAX_OUTPUT) in info.value.message
