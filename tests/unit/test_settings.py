"""Tests for syscontainers.settings: the layers, their order, and errors that name the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from syscontainers.errors import UsageError
from syscontainers.paths import DEFAULT_ROOT
from syscontainers.settings import Settings, load, user_config_path


class Layers:
    """A sandbox: a system config path and a HOME, both under tmp_path."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.system = tmp / "etc" / "config.yaml"
        self.home = tmp / "home"
        self.user = self.home / ".config" / "syscontainers" / "config.yaml"
        self.env: dict[str, str] = {"HOME": str(self.home)}

    def write(self, path: Path, text: str) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def load(self, flags: dict[str, Any] | None = None) -> Settings:
        return load(self.env, flags or {}, system_config=self.system)


@pytest.fixture
def layers(tmp_path: Path) -> Layers:
    return Layers(tmp_path)


def test_defaults_when_nothing_is_configured(layers: Layers) -> None:
    s = layers.load()
    assert s == Settings()
    assert s.root == DEFAULT_ROOT == Path("/var/lib/syscontainers")
    assert (s.tls_verify, s.authfile, s.lock_timeout) == (True, None, None)


# which layers set root -> the root that wins
@pytest.mark.parametrize(
    "system, user, env, flag, expected",
    [
        (False, False, False, False, str(DEFAULT_ROOT)),
        (True, False, False, False, "/from/system"),
        (False, True, False, False, "/from/user"),
        (True, True, False, False, "/from/user"),
        (True, True, True, False, "/from/env"),
        (False, False, True, False, "/from/env"),
        (True, True, True, True, "/from/flag"),
        (True, False, False, True, "/from/flag"),
        (False, False, False, True, "/from/flag"),
    ],
)
def test_layer_order(
    layers: Layers, system: bool, user: bool, env: bool, flag: bool, expected: str
) -> None:
    if system:
        layers.write(layers.system, "root: /from/system\n")
    if user:
        layers.write(layers.user, "root: /from/user\n")
    if env:
        layers.env["SYSCONTAINERS_ROOT"] = "/from/env"
    s = layers.load({"root": "/from/flag" if flag else None})
    assert s.root == Path(expected)


def test_layers_merge_key_by_key(layers: Layers) -> None:
    layers.write(layers.system, "runtime: /usr/bin/crun\ntls-verify: false\nroot: /sys\n")
    layers.write(layers.user, "root: /user\nlock_timeout: 2.5\n")
    layers.env["SYSCONTAINERS_AUTHFILE"] = "/run/auth.json"
    s = layers.load()
    assert s.runtime == "/usr/bin/crun"  # only the system file set it
    assert s.tls_verify is False
    assert s.root == Path("/user")
    assert s.lock_timeout == 2.5
    assert s.authfile == Path("/run/auth.json")
    assert isinstance(s.root, Path) and isinstance(s.authfile, Path)


def test_user_config_follows_xdg(layers: Layers) -> None:
    xdg = layers.tmp / "xdg"
    layers.env["XDG_CONFIG_HOME"] = str(xdg)
    layers.write(layers.user, "root: /ignored\n")  # under HOME, which XDG overrides
    layers.write(xdg / "syscontainers" / "config.yaml", "root: /xdg\n")
    assert layers.load().root == Path("/xdg")


@pytest.mark.parametrize(
    "env, expected",
    [
        ({"HOME": "/home/u"}, Path("/home/u/.config/syscontainers/config.yaml")),
        ({"HOME": "/home/u", "XDG_CONFIG_HOME": "/x"}, Path("/x/syscontainers/config.yaml")),
        ({"HOME": "/h", "XDG_CONFIG_HOME": ""}, Path("/h/.config/syscontainers/config.yaml")),
        ({}, Path("/root/.config/syscontainers/config.yaml")),
    ],
)
def test_user_config_path(env: dict[str, str], expected: Path) -> None:
    assert user_config_path(env) == expected


def test_config_override_replaces_both_files(layers: Layers) -> None:
    layers.write(layers.system, "runtime: /sys/runc\nroot: /sys\n")
    layers.write(layers.user, "runtime: /user/runc\nroot: /user\n")
    override = layers.write(layers.tmp / "only.yaml", "root: /override\n")
    layers.env["SYSCONTAINERS_CONFIG"] = str(override)
    s = layers.load()
    assert s.root == Path("/override")
    assert s.runtime == Settings().runtime  # neither the system nor the user file was read
    layers.env["SYSCONTAINERS_ROOT"] = "/env"  # the environment still beats the file
    assert layers.load().root == Path("/env")
    assert layers.load({"root": "/flag"}).root == Path("/flag")


def test_config_override_must_exist(layers: Layers) -> None:
    missing = layers.tmp / "typo.yaml"
    layers.env["SYSCONTAINERS_CONFIG"] = str(missing)
    with pytest.raises(UsageError) as e:
        layers.load()
    assert str(missing) in e.value.message


def test_config_override_may_be_empty(layers: Layers) -> None:
    layers.env["SYSCONTAINERS_CONFIG"] = "/dev/null"
    layers.write(layers.system, "root: /sys\n")
    assert layers.load() == Settings()


@pytest.mark.parametrize(
    "value, expected",
    [
        ("1", True),
        ("true", True),
        ("YES", True),
        ("on", True),
        ("0", False),
        ("False", False),
        ("no", False),
        ("off", False),
    ],
)
def test_env_booleans(layers: Layers, value: str, expected: bool) -> None:
    layers.env["SYSCONTAINERS_TLS_VERIFY"] = value
    assert layers.load().tls_verify is expected


@pytest.mark.parametrize(
    "text, expected",
    [("tls_verify: no\n", False), ("tls_verify: true\n", True), ("tls-verify: 'off'\n", False)],
)
def test_yaml_booleans(layers: Layers, text: str, expected: bool) -> None:
    layers.write(layers.system, text)
    assert layers.load().tls_verify is expected


def test_unrelated_environment_is_ignored(layers: Layers) -> None:
    layers.env.update(SYSCONTAINERS_FOO="x", SYSCONTAINERS_DEBUG="1", OTHER_ROOT="/x")
    assert layers.load() == Settings()


def test_values_are_coerced(layers: Layers) -> None:
    layers.write(layers.system, "runtime: 5\nlock-timeout: 3\nauthfile: null\n")
    s = layers.load()
    assert s.runtime == "5"
    assert s.lock_timeout == 3.0 and isinstance(s.lock_timeout, float)
    assert s.authfile is None


def test_empty_and_comment_only_files(layers: Layers) -> None:
    layers.write(layers.system, "")
    layers.write(layers.user, "# nothing here\n")
    assert layers.load() == Settings()


@pytest.mark.parametrize(
    "text, fragments",
    [
        ("root: [\n", ["is not valid YAML"]),
        ("- root\n- /x\n", ["must be a mapping"]),
        ("just a string\n", ["must be a mapping"]),
        ("rooot: /x\n", ["unknown setting 'rooot'"]),
        ("tls_verify: maybe\n", ["tls_verify must be true or false", "'maybe'"]),
        ("tls_verify: 2\n", ["tls_verify must be true or false"]),
        ("lock_timeout: soon\n", ["lock_timeout must be a number"]),
        ("lock_timeout: [1]\n", ["lock_timeout must be a number"]),
        ("root: null\n", ["root"]),
        ("runtime:\n", ["runtime"]),
    ],
)
@pytest.mark.parametrize("where", ["system", "user"])
def test_bad_config_names_the_file(
    layers: Layers, where: str, text: str, fragments: list[str]
) -> None:
    path = layers.write(layers.system if where == "system" else layers.user, text)
    with pytest.raises(UsageError) as e:
        layers.load()
    assert str(path) in e.value.message
    for fragment in fragments:
        assert fragment in e.value.message
    assert e.value.exit_code == 2


def test_unknown_setting_hint_lists_the_known_ones(layers: Layers) -> None:
    layers.write(layers.user, "colour: blue\n")
    with pytest.raises(UsageError) as e:
        layers.load()
    assert e.value.hint is not None
    for key in ("root", "runtime", "tls-verify", "lock-timeout", "authfile"):
        assert key in e.value.hint


def test_unreadable_config(layers: Layers) -> None:
    layers.system.mkdir(parents=True)  # a directory where the file should be
    with pytest.raises(UsageError, match="cannot read config") as e:
        layers.load()
    assert str(layers.system) in e.value.message


@pytest.mark.parametrize(
    "env, fragment",
    [
        ({"SYSCONTAINERS_TLS_VERIFY": "maybe"}, "environment: tls_verify"),
        ({"SYSCONTAINERS_LOCK_TIMEOUT": "soon"}, "environment: lock_timeout"),
    ],
)
def test_bad_environment(layers: Layers, env: dict[str, str], fragment: str) -> None:
    layers.env.update(env)
    with pytest.raises(UsageError, match=fragment):
        layers.load()


def test_flags(layers: Layers) -> None:
    s = layers.load({"root": "/r", "tls_verify": False, "lock_timeout": None})
    assert (s.root, s.tls_verify, s.lock_timeout) == (Path("/r"), False, None)
    with pytest.raises(UsageError, match="command line: unknown setting 'bogus'"):
        layers.load({"bogus": 1})


# --- the table: every setting declared once, each layer built from it ---


def test_the_table_names_every_setting_with_its_default() -> None:
    from syscontainers.record import fields
    from syscontainers.settings_table import TABLE

    assert [s.name for s in TABLE] == [f.name for f in fields(Settings)]
    assert {s.name: s.default for s in TABLE} == {
        f.name: getattr(Settings(), f.name) for f in fields(Settings)
    }


@pytest.mark.parametrize(
    "name, text, expected",
    [
        ("health_timeout", "2.5", 2.5),
        ("runtime", "/usr/bin/crun", "/usr/bin/crun"),
        ("lock_timeout", "4", 4.0),
        ("registries_d", "/x/d", Path("/x/d")),
    ],
)
def test_each_setting_comes_from_its_environment_variable_and_yaml_key(
    layers: Layers, name: str, text: str, expected: object
) -> None:
    from syscontainers.settings_table import TABLE

    (setting,) = [s for s in TABLE if s.name == name]
    layers.env[setting.env] = text
    assert getattr(layers.load(), name) == expected
    del layers.env[setting.env]
    layers.write(layers.user, f"{name.replace('_', '-')}: '{text}'\n")
    assert getattr(layers.load(), name) == expected


def test_every_flag_of_the_table_is_an_option_of_the_parser_and_reaches_the_settings(
    tmp_path: Path,
) -> None:
    from syscontainers.cli import build_parser
    from syscontainers.settings_table import TABLE, given_flags

    flagged = [s for s in TABLE if s.flag]
    assert {s.name for s in flagged} == {"root", "runtime", "policy", "health_timeout"}
    parser = build_parser(["install"])
    args = parser.parse_args(
        [
            "--root",
            "/r",
            "install",
            "--runtime",
            "/c",
            "--policy",
            "/p",
            "--health-timeout",
            "3",
            "img",
        ]
    )
    s = load({"HOME": str(tmp_path)}, given_flags(args), system_config=tmp_path / "none")
    assert (s.root, s.runtime, s.policy, s.health_timeout) == (Path("/r"), "/c", Path("/p"), 3.0)
    unset = parser.parse_args(["install", "img"])
    assert (
        load({"HOME": str(tmp_path)}, given_flags(unset), system_config=tmp_path / "none")
        == Settings()
    )


def test_the_health_window_and_runtime_defaults_are_the_tables(tmp_path: Path) -> None:
    from syscontainers.operations.activation import DEFAULT_HEALTH_TIMEOUT
    from syscontainers.operations.install import InstallRequest
    from syscontainers.settings_table import HEALTH_TIMEOUT, RUNTIME

    assert InstallRequest("img").health_timeout == DEFAULT_HEALTH_TIMEOUT == HEALTH_TIMEOUT.default
    assert InstallRequest("img").runtime == RUNTIME.default == Settings().runtime
