"""Tests that short-lived verbs import only what they use: jinja2, requests and the heavy parts.

Each case runs in a fresh interpreter (this one has long since imported
everything), does what a verb does, and prints which of the watched modules
got loaded. Every "must not load" case has a twin that must load the module,
so a check that could never fail would show up.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import syscontainers.render as render
from syscontainers.checkout import FORK_MIN
from syscontainers.oci import Compression
from tests.imagebuild import layer_tar, tar_layout, write_oci_layout

REPO = Path(__file__).resolve().parents[2]
WATCHED = (
    "jinja2",
    "requests",
    "urllib3",
    "syscontainers.render.config_json",
    "syscontainers.render.jinja",
    "syscontainers.registry.http",
    "syscontainers.registry.source",
    "syscontainers.operations.activation",
    "syscontainers.operations.update",
    "syscontainers.operations.pull",
    "syscontainers.operations.slot",
    "syscontainers.registry",
    "zstandard",
    "concurrent.futures",
    "getpass",
    "cryptography",
)


def loaded_after(code: str, watched: tuple[str, ...] = WATCHED) -> set[str]:
    """The WATCHED modules a fresh interpreter has loaded after running CODE."""
    script = textwrap.dedent(code) + textwrap.dedent(f"""
        import sys as _sys
        _seen = [m for m in {watched!r} if m in _sys.modules]  # before json is imported here
        import json as _json
        print(_json.dumps(_seen))
    """)
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True
    )
    return set(json.loads(out.stdout.splitlines()[-1]))


RENDER_ETCD = """
    import os
    from syscontainers.render import render_deployment
    from tests.unit.render_fixtures import etcd_exports, image_config, values_for
    exports = etcd_exports()
    rendered = render_deployment(exports, image_config(), values_for(exports),
                                 exists=os.path.exists)
    assert rendered.unit and rendered.config_json
"""

RENDER_JINJA = """
    from syscontainers.render.exports import Syntax, TemplateSource
    from syscontainers.render.templates import render_text
    assert render_text(TemplateSource("x.j2", "{{ A }}", Syntax.JINJA), {"A": "1"}) == "1"
"""

OPEN_DOCKER = """
    from pathlib import Path
    from syscontainers.registry import RegistryOptions, registry_opener
    from syscontainers.settings import Settings
    from syscontainers.sources import parse_source
    settings = Settings(registries_conf=Path("/nonexistent/registries.conf"))
    opener = registry_opener(settings, RegistryOptions())
"""


@pytest.mark.parametrize(
    ("code", "absent"),
    [
        pytest.param(
            "import syscontainers.render.values",
            {"jinja2", "syscontainers.render.config_json"},
            id="render.values",
        ),
        pytest.param(
            "import syscontainers.deploy.layout",
            {"jinja2", "syscontainers.render.config_json"},
            id="deploy.layout",
        ),
        pytest.param(
            "import syscontainers.operations.containers",
            set(WATCHED),
            id="operations.containers",
        ),
        pytest.param(
            "from syscontainers.operations.update import update, rollback, is_running",
            {"syscontainers.operations.slot", "syscontainers.operations.pull"},
            id="update-without-slot",
        ),
        pytest.param(RENDER_ETCD, {"jinja2", "syscontainers.render.jinja"}, id="atomic-render"),
        pytest.param(
            OPEN_DOCKER,
            {"requests", "urllib3", "syscontainers.registry.http", "syscontainers.registry.source"},
            id="registry-opener",
        ),
    ],
)
def test_not_loaded(code: str, absent: set[str]) -> None:
    assert loaded_after(code) & absent == set()


@pytest.mark.parametrize(
    ("code", "present"),
    [
        pytest.param(RENDER_JINJA, {"jinja2", "syscontainers.render.jinja"}, id="jinja-render"),
        pytest.param(
            OPEN_DOCKER + "    opener(parse_source('docker://127.0.0.1:1/x:1')).close()\n",
            {"requests", "syscontainers.registry.http", "syscontainers.registry.source"},
            id="registry-opened",
        ),
        pytest.param(
            "from syscontainers.operations.update import update",
            {"syscontainers.operations.activation"},
            id="operations.update",
        ),
        pytest.param(  # the twin of update-without-slot: install makes a slot
            "import syscontainers.operations.install",
            {"syscontainers.operations.slot"},
            id="operations.install",
        ),
        pytest.param(OPEN_DOCKER, {"syscontainers.registry"}, id="registry-opener-loads-registry"),
    ],
)
def test_loaded_when_used(code: str, present: set[str]) -> None:
    assert present <= loaded_after(code)


def local_pull(tmp_path: Path, compression: Compression) -> str:
    """Code that pulls a small image from an OCI layout (made here, with layers compressed
    as COMPRESSION) and checks it out, through the CLI."""
    # More files than checkout.FORK_MIN, so that a forked child makes half of them.
    files = {f"usr/share/doc/f{i}": b"%d\n" % i for i in range(FORK_MIN + 10)}
    layout = write_oci_layout(tmp_path / "img", [layer_tar(files)], "v1", compression=compression)
    root, dest = tmp_path / "root", tmp_path / "co"
    return f"""
        from syscontainers.cli import main
        assert main(["--root", "{root}", "-q", "pull", "oci:{layout}:v1", "--name", "x:1"]) == 0
        assert main(["--root", "{root}", "-q", "checkout", "x:1", "{dest}"]) == 0
    """


def test_local_pull_and_checkout_load_no_registry_zstd_or_futures(tmp_path: Path) -> None:
    loaded = loaded_after(local_pull(tmp_path, Compression.GZIP), (*WATCHED, "tarfile"))
    assert "syscontainers.operations.pull" in loaded  # the pull did run here
    unneeded = {
        "syscontainers.registry",
        "zstandard",
        "concurrent.futures",
        "getpass",
        "cryptography",
        "tarfile",  # a layout in a directory; only an archive needs sources.tar_reader
    }
    assert loaded & unneeded == set()


def test_archive_pull_loads_tarfile(tmp_path: Path) -> None:  # the twin of the above
    layout = write_oci_layout(tmp_path / "img", [layer_tar({"a": b"1\n"})], "v1")
    archive = tar_layout(layout, tmp_path / "img.tar")
    code = f"""
        from syscontainers.cli import main
        assert main(["--root", "{tmp_path / "root"}", "-q", "pull", "oci-archive:{archive}:v1",
                     "--name", "x:1"]) == 0
    """
    assert loaded_after(code, ("tarfile",)) == {"tarfile"}


def test_zstd_layers_load_zstandard(tmp_path: Path) -> None:
    assert "zstandard" in loaded_after(local_pull(tmp_path, Compression.ZSTD))


def test_render_package_resolves_every_public_name() -> None:
    for name in render.__all__:
        value = getattr(render, name)
        # the name's own definition, from the submodule that defines it (not a stand-in)
        home = sys.modules[value.__module__]
        assert value.__module__.startswith("syscontainers.render."), name
        assert getattr(home, name) is value, name
    assert set(dir(render)) >= set(render.__all__)


def test_render_package_unknown_name() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        render.nope  # type: ignore[attr-defined]  # noqa: B018 - the attribute access is the test


# ---- start-up: what a command loads before its verb runs ------------------------------------

START_UP = (
    "yaml",
    "jinja2",
    "requests",
    "dbus_next",
    "asyncio",
    "json",
    "dataclasses",
    "shutil",  # argparse's formatter imports it for the terminal's size unless given a width
    "hashlib",  # loads OpenSSL; only a verb that hashes imports it (syscontainers.hashing)
    "syscontainers.settings",
    "syscontainers.store",
    "syscontainers.cli.context",
    "syscontainers.cli.images",
    "syscontainers.cli.containers",
    "secrets",
    "datetime",
)


def cli_run(*argv: str, env: dict[str, str] | None = None) -> str:
    """Code that runs the CLI with ARGV (in ENV), as the console script would."""
    return f"""
        import os
        os.environ.update({env or {}!r})
        from syscontainers.cli import main
        try:
            main({list(argv)!r})
        except SystemExit:  # --version and --help exit from argparse
            pass
    """


def test_version_loads_no_verb_settings_or_store() -> None:
    assert loaded_after(cli_run("--version"), START_UP) == set()


def test_usage_error_without_verb_loads_no_verb() -> None:
    loaded = loaded_after(cli_run("--root", "/nonexistent"), START_UP)
    # printing the error loads the reporters' module (and with it json): no more
    assert loaded - {"json"} == set()


def test_help_loads_every_verb() -> None:  # the twin: help lists every verb
    loaded = loaded_after(cli_run("-qh"), START_UP)
    assert {"syscontainers.cli.images", "syscontainers.cli.containers"} <= loaded


def test_verb_help_loads_its_area_only() -> None:
    loaded = loaded_after(cli_run("images", "--help"), START_UP)
    assert "syscontainers.cli.images" in loaded
    assert loaded & {"syscontainers.cli.containers", "syscontainers.settings", "yaml"} == set()
    assert loaded & {"shutil", "hashlib"} == set()


def test_verbs_that_hash_nothing_load_no_hashlib(tmp_path: Path) -> None:
    (tmp_path / "sysroot").mkdir()
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    for argv in (
        ("--root", str(tmp_path / "root"), "images", "list"),
        ("--sysroot", str(tmp_path / "sysroot"), "list"),
        ("logout", "--authfile", str(tmp_path / "auth.json"), "127.0.0.1:1"),
    ):
        loaded = loaded_after(cli_run(*argv, env=env), START_UP)
        assert "syscontainers.settings" in loaded  # the verb did run
        assert "hashlib" not in loaded, argv
        assert loaded & {"subprocess", "shutil"} == set(), argv  # they run no command


def test_running_a_command_loads_subprocess() -> None:  # the twin of the above
    code = "from syscontainers import process\nassert process.run(['true']).returncode == 0\n"
    assert loaded_after(code, ("subprocess",)) == {"subprocess"}


def test_checkout_loads_hashlib(tmp_path: Path) -> None:  # the twin: it verifies the tree
    layout = write_oci_layout(tmp_path / "img", [layer_tar({"a": b"1\n"})], "v1")
    root = str(tmp_path / "root")
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    pull = cli_run("--root", root, "-q", "pull", f"oci:{layout}:v1", "--name", "x:1", env=env)
    assert "hashlib" in loaded_after(pull, ("hashlib",))
    checkout = cli_run("--root", root, "-q", "checkout", "x:1", str(tmp_path / "co"), env=env)
    assert "hashlib" in loaded_after(checkout, ("hashlib",))
    assert (tmp_path / "co" / "a").read_text() == "1\n"


def test_listing_verbs_load_no_yaml_jinja_requests_or_dbus(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    (tmp_path / "sysroot").mkdir()
    unneeded = {"yaml", "jinja2", "requests", "dbus_next", "asyncio", "secrets", "datetime"}
    images = loaded_after(
        cli_run("--root", str(tmp_path / "root"), "images", "list", env=env), START_UP
    )
    assert {"syscontainers.store", "syscontainers.cli.images"} <= images  # it did run
    assert images & (unneeded | {"syscontainers.cli.containers"}) == set()
    listing = loaded_after(
        cli_run("--sysroot", str(tmp_path / "sysroot"), "list", env=env), START_UP
    )
    assert "syscontainers.cli.containers" in listing
    assert listing & (unneeded | {"syscontainers.cli.images"}) == set()


DBUS = (
    "asyncio",
    "ssl",
    "inspect",
    "logging",
    "dbus_next.aio",
    "dbus_next.glib",
    "dbus_next.message",
)


def test_systemd_loads_dbus_next_messages_without_asyncio_or_ssl() -> None:
    # dbus_next's package __init__ imports its asyncio and glib transports: not run here
    assert loaded_after("import syscontainers.systemd", DBUS) == {"dbus_next.message"}


def test_dbus_next_imported_after_systemd_is_the_whole_package() -> None:  # the twin
    code = """
        import syscontainers.systemd
        import dbus_next
        from dbus_next.aio import MessageBus
        assert dbus_next.BusType.SYSTEM and dbus_next.aio.MessageBus is MessageBus
    """
    assert {"asyncio", "dbus_next.aio", "dbus_next.glib"} <= loaded_after(code, DBUS)


def test_config_file_loads_yaml(tmp_path: Path) -> None:  # the twin of the above
    config = tmp_path / "config" / "syscontainers" / "config.yaml"
    config.parent.mkdir(parents=True)
    config.write_text("tls-verify: true\n")
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    loaded = loaded_after(
        cli_run("--root", str(tmp_path / "root"), "images", "list", env=env), START_UP
    )
    assert "yaml" in loaded


PULL_PARTS = (
    "syscontainers.operations.update",
    "syscontainers.operations.pull",
    "syscontainers.registry",
    "syscontainers.trust.check",
    "syscontainers.containers_conf",
)


def test_update_that_pulls_nothing_loads_no_pull_registry_or_trust(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    (tmp_path / "sysroot").mkdir()
    argv = ("--sysroot", str(tmp_path / "sysroot"), "update", "nosuch")
    loaded = loaded_after(cli_run(*argv, env=env), PULL_PARTS)
    assert "syscontainers.operations.update" in loaded  # the update did run
    assert loaded - {"syscontainers.operations.update"} == set()


def test_local_pull_loads_pull_and_trust(tmp_path: Path) -> None:  # the twin of the above
    loaded = loaded_after(local_pull(tmp_path, Compression.GZIP), PULL_PARTS)
    assert {"syscontainers.operations.pull", "syscontainers.trust.check"} <= loaded


def test_small_checkout_loads_no_threading_or_store_graph(tmp_path: Path) -> None:
    layout = write_oci_layout(tmp_path / "img", [layer_tar({"a": b"1\n", "b": b"2\n"})], "v1")
    root = str(tmp_path / "root")
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    assert "threading" in loaded_after(  # pulling reads layers ahead in a thread
        cli_run("--root", root, "-q", "pull", f"oci:{layout}:v1", "--name", "x:1", env=env),
        ("threading",),
    )
    checkout = cli_run("--root", root, "-q", "checkout", "x:1", str(tmp_path / "co"), env=env)
    watched = ("threading", "syscontainers.store.graph", "syscontainers.checkout")
    assert loaded_after(checkout, watched) == {"syscontainers.checkout"}  # it ran, no thread
    assert (tmp_path / "co" / "b").read_text() == "2\n"
    images = cli_run("--root", root, "images", "list", env=env)
    # the twin: images list walks the store graph (for sizes), still without a thread
    graph = {"syscontainers.store.graph"}
    assert loaded_after(images, ("threading", "syscontainers.store.graph")) == graph


def test_large_checkout_forks_without_threading_or_signal(tmp_path: Path) -> None:
    files = {f"usr/share/doc/f{i}": b"%d\n" % i for i in range(FORK_MIN + 10)}
    layout = write_oci_layout(tmp_path / "img", [layer_tar(files)], "v1")
    root, dest = str(tmp_path / "root"), tmp_path / "co"
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    watched = ("threading", "signal")
    pull = cli_run("--root", root, "-q", "pull", f"oci:{layout}:v1", "--name", "x:1", env=env)
    assert loaded_after(pull, watched) == {"threading"}  # the twin: the pull reads ahead
    checkout = cli_run("--root", root, "-q", "checkout", "x:1", str(dest), env=env)
    assert loaded_after(checkout, watched) == set()
    assert (dest / "usr/share/doc/f1033").read_text() == "1033\n"


def test_rollback_loads_no_slot(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    (tmp_path / "sysroot").mkdir()
    argv = ("--sysroot", str(tmp_path / "sysroot"), "rollback", "nosuch")
    watched = ("syscontainers.operations.update", "syscontainers.operations.slot")
    assert loaded_after(cli_run(*argv, env=env), watched) == {"syscontainers.operations.update"}


def test_apply_plan_loads_no_slot(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    runc = tmp_path / "sysroot" / "usr" / "bin" / "runc"  # the runtime the plan checks for
    runc.parent.mkdir(parents=True)
    runc.write_text("#!/bin/sh\n")
    runc.chmod(0o755)
    manifest = tmp_path / "host.yaml"
    manifest.write_text("containers:\n  web:\n    image: example.org/app:1\n")
    argv = ("--sysroot", str(tmp_path / "sysroot"), "apply", "--dry-run", str(manifest))
    watched = ("syscontainers.operations.apply", "syscontainers.operations.slot")
    code = f"""
        import os
        os.environ.update({env!r})
        from syscontainers.cli import main
        assert main({list(argv)!r}) == 0  # the plan was made
    """
    assert loaded_after(code, watched) == {"syscontainers.operations.apply"}


@pytest.mark.parametrize("verb", [("list",), ("uninstall", "nosuch"), ("rollback", "nosuch")])
def test_container_verbs_that_name_no_source_load_no_sources(
    tmp_path: Path, verb: tuple[str, ...]
) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    (tmp_path / "sysroot").mkdir()
    argv = ("--sysroot", str(tmp_path / "sysroot"), *verb)
    watched = ("syscontainers.cli.containers", "syscontainers.sources")
    assert loaded_after(cli_run(*argv, env=env), watched) == {"syscontainers.cli.containers"}


def test_pull_loads_sources(tmp_path: Path) -> None:  # the twin: a verb that names a source
    assert "syscontainers.sources" in loaded_after(
        local_pull(tmp_path, Compression.GZIP), ("syscontainers.sources",)
    )
