"""Tests for syscontainers.registry.registries_conf: drop-ins, short names, mirrors."""

from __future__ import annotations

from pathlib import Path

import pytest

from syscontainers.errors import RegistryError, UsageError
from syscontainers.reference import parse
from syscontainers.registry.registries_conf import (
    Endpoint,
    PullFrom,
    RegistriesConfig,
    ShortNameMode,
    drop_in_dir,
    endpoints,
    host_insecure,
    load,
    resolve_candidates,
)

DIG = "sha256:" + "cd" * 32


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def conf(tmp_path: Path, text: str, **drop_ins: str) -> RegistriesConfig:
    main = write(tmp_path / "registries.conf", text)
    for name, body in drop_ins.items():
        write(drop_in_dir(main) / f"{name}.conf", body)
    return load(main)


def test_missing_file_is_empty(tmp_path: Path) -> None:
    config = load(tmp_path / "nope.conf")
    assert config.search == () and config.registries == () and config.aliases == ()
    assert "absent" in config.origin


def test_drop_ins_override_in_name_order(tmp_path: Path) -> None:
    config = conf(
        tmp_path,
        'unqualified-search-registries = ["a.example", "b.example"]\n'
        '[aliases]\n"app" = "a.example/app"\n"db" = "a.example/db"\n'
        '[[registry]]\nprefix = "a.example"\ninsecure = true\n',
        **{
            "10-one": 'unqualified-search-registries = ["c.example"]\n'
            '[aliases]\n"app" = "c.example/team/app"\n',
            "20-two": '[[registry]]\nprefix = "a.example"\nblocked = true\n'
            '[[registry]]\nlocation = "d.example"\n',
        },
    )
    assert config.search == ("c.example",)
    assert dict(config.aliases) == {"app": "c.example/team/app", "db": "a.example/db"}
    by_prefix = {r.prefix: r for r in config.registries}
    assert by_prefix["a.example"].blocked and not by_prefix["a.example"].insecure  # replaced
    assert by_prefix["d.example"].location == "d.example"
    assert "10-one.conf" in config.origin and "20-two.conf" in config.origin


def test_only_conf_files_are_drop_ins(tmp_path: Path) -> None:
    config = conf(tmp_path, "", a='unqualified-search-registries = ["x.example"]\n')
    write(drop_in_dir(tmp_path / "registries.conf") / "b.conf.rpmsave", "not = [toml")
    assert load(tmp_path / "registries.conf").search == config.search == ("x.example",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("unqualified-search-registries = [", "not valid TOML"),
        ('unqualified-search-registries = "x"', "list of strings"),
        ("[[registry]]\ninsecure = true", "neither prefix nor location"),
        ('[[registry]]\nlocation = "x.io"\ninsecure = "yes"', "true or false"),
        ('[[registry]]\nprefix = "*.x.io"\nlocation = "y.io"', "wildcard"),
        ('[[registry]]\nlocation = "x.io"\n[[registry.mirror]]\ninsecure = true', "no location"),
        (
            '[[registry]]\nlocation = "x.io"\n[[registry.mirror]]\nlocation = "m.io"\n'
            'pull-from-mirror = "sometimes"',
            "pull-from-mirror",
        ),
        ('[aliases]\n"app" = "app2"', "fully qualified"),
        ('[aliases]\n"x.io/app" = "x.io/app"', "short name"),
        ('[aliases]\n"app" = "x.io/app@' + DIG + '"', "fully qualified"),
        ('[registries.search]\nregistries = ["a.io"]\n[[registry]]\nlocation = "b"', "mixes"),
    ],
)
def test_bad_config_is_a_usage_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as err:
        conf(tmp_path, text)
    assert "registries.conf" in err.value.message


def test_v1_format_is_translated(tmp_path: Path) -> None:
    config = conf(
        tmp_path,
        '[registries.search]\nregistries = ["a.io"]\n'
        '[registries.insecure]\nregistries = ["b.io:5000"]\n'
        '[registries.block]\nregistries = ["c.io"]\n',
    )
    assert config.search == ("a.io",)
    assert host_insecure("b.io:5000", config)
    with pytest.raises(RegistryError, match="blocked"):
        endpoints(parse("c.io/app:1"), config)


# ---- short names -------------------------------------------------------------


def one(text: str, config: RegistriesConfig) -> str:
    """The only candidate TEXT resolves to."""
    (only,) = resolve_candidates(text, config)
    return str(only)


def test_short_name_through_alias_wins_over_search(tmp_path: Path) -> None:
    config = conf(
        tmp_path,
        'unqualified-search-registries = ["a.io", "b.io"]\n[aliases]\n"app" = "quay.io/team/app"\n',
    )
    assert one("app:2", config) == "quay.io/team/app:2"
    assert one(f"app@{DIG}", config) == f"quay.io/team/app@{DIG}"


def test_short_name_with_one_search_registry(tmp_path: Path) -> None:
    config = conf(tmp_path, 'unqualified-search-registries = ["docker.io"]\n')
    assert one("busybox", config) == "docker.io/library/busybox:latest"
    assert one("team/app:1", config) == "docker.io/team/app:1"


def test_ambiguous_short_name_is_refused(tmp_path: Path) -> None:
    config = conf(tmp_path, 'unqualified-search-registries = ["quay.io", "docker.io"]\n')
    with pytest.raises(UsageError, match="ambiguous") as err:
        resolve_candidates("busybox", config)
    assert "quay.io/busybox" in err.value.message and "docker.io/busybox" in err.value.message
    assert err.value.hint and "alias" in err.value.hint and "permissive" in err.value.hint


@pytest.mark.parametrize("mode", ["permissive", "disabled"])
def test_permissive_and_disabled_try_each_search_registry(tmp_path: Path, mode: str) -> None:
    config = conf(
        tmp_path,
        f'unqualified-search-registries = ["quay.io", "docker.io"]\nshort-name-mode = "{mode}"\n'
        '[aliases]\n"app" = "x.io/team/app"\n',
    )
    assert [str(r) for r in resolve_candidates("busybox:1", config)] == [
        "quay.io/busybox:1",
        "docker.io/library/busybox:1",
    ]
    assert one("app", config) == "x.io/team/app:latest"  # an alias still wins


def test_short_name_mode_from_drop_ins_and_bad_values(tmp_path: Path) -> None:
    drop_in = tmp_path / "registries.conf.d" / "m.conf"
    drop_in.parent.mkdir()
    drop_in.write_text('short-name-mode = "permissive"\n')
    config = conf(tmp_path, 'short-name-mode = "enforcing"\n')
    assert config.short_name_mode is ShortNameMode.PERMISSIVE
    drop_in.write_text('short-name-mode = "lenient"\n')
    with pytest.raises(UsageError, match="'lenient' is not enforcing, permissive or disabled"):
        conf(tmp_path, "")


def test_unknown_short_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot be resolved") as err:
        resolve_candidates("busybox", conf(tmp_path, ""))
    assert err.value.hint == "use a fully qualified name such as docker.io/library/busybox"


def test_qualified_names_are_normalised_not_searched(tmp_path: Path) -> None:
    config = conf(tmp_path, 'unqualified-search-registries = ["a.io", "b.io"]\n')
    assert one("docker.io/busybox", config) == "docker.io/library/busybox:latest"
    assert one("127.0.0.1:5000/x", config) == "127.0.0.1:5000/x:latest"


# ---- endpoints -------------------------------------------------------------------


MIRRORS = """
[[registry]]
prefix = "example.com/foo"
location = "internal.example.com/bar"
insecure = true
[[registry.mirror]]
location = "m1.example.com/cache"
[[registry.mirror]]
location = "m2.example.com:5000"
insecure = true
pull-from-mirror = "digest-only"
[[registry.mirror]]
location = "m3.example.com"
pull-from-mirror = "tag-only"

[[registry]]
location = "example.com"
"""


def hosts(eps: list[Endpoint]) -> list[tuple[str, bool, bool]]:
    return [(str(e.reference), e.insecure, e.mirror) for e in eps]


def test_mirrors_in_order_then_primary_by_tag(tmp_path: Path) -> None:
    config = conf(tmp_path, MIRRORS)
    assert hosts(endpoints(parse("example.com/foo/app:1"), config)) == [
        ("m1.example.com/cache/app:1", False, True),
        ("m3.example.com/app:1", False, True),
        ("internal.example.com/bar/app:1", True, False),
    ]


def test_mirrors_by_digest(tmp_path: Path) -> None:
    config = conf(tmp_path, MIRRORS)
    assert hosts(endpoints(parse(f"example.com/foo/app@{DIG}"), config)) == [
        (f"m1.example.com/cache/app@{DIG}", False, True),
        (f"m2.example.com:5000/app@{DIG}", True, True),
        (f"internal.example.com/bar/app@{DIG}", True, False),
    ]


def test_longest_prefix_wins_and_boundaries_hold(tmp_path: Path) -> None:
    config = conf(tmp_path, MIRRORS)
    assert hosts(endpoints(parse("example.com/foobar:1"), config)) == [
        ("example.com/foobar:1", False, False)
    ]
    assert hosts(endpoints(parse("example.com/foo:1"), config))[-1][0] == (
        "internal.example.com/bar:1"
    )
    assert hosts(endpoints(parse("other.io/x:1"), config)) == [("other.io/x:1", False, False)]


def test_mirror_by_digest_only(tmp_path: Path) -> None:
    config = conf(
        tmp_path,
        '[[registry]]\nlocation = "docker.io"\nmirror-by-digest-only = true\n'
        '[[registry.mirror]]\nlocation = "mirror.local:5000"\npull-from-mirror = "tag-only"\n',
    )
    assert [e.mirror for e in endpoints(parse("docker.io/library/busybox:1"), config)] == [False]
    by_digest = endpoints(parse(f"docker.io/library/busybox@{DIG}"), config)
    assert [str(e.reference) for e in by_digest] == [
        f"mirror.local:5000/library/busybox@{DIG}",
        f"docker.io/library/busybox@{DIG}",
    ]
    assert config.registries[0].mirrors[0].pull_from is PullFrom.TAG_ONLY


def test_wildcard_prefix(tmp_path: Path) -> None:
    config = conf(
        tmp_path,
        '[[registry]]\nprefix = "*.corp.example"\ninsecure = true\n'
        '[[registry.mirror]]\nlocation = "cache.local/corp"\n',
    )
    eps = endpoints(parse("r1.corp.example/team/app:1"), config)
    assert hosts(eps) == [
        ("cache.local/corp/team/app:1", False, True),
        ("r1.corp.example/team/app:1", True, False),
    ]
    assert host_insecure("r1.corp.example", config)
    assert not host_insecure("corp.example.org", config)


def test_blocked_prefix(tmp_path: Path) -> None:
    config = conf(tmp_path, '[[registry]]\nprefix = "bad.io/evil"\nblocked = true\n')
    with pytest.raises(RegistryError, match="blocked") as err:
        endpoints(parse("bad.io/evil/app:1"), config)
    assert "bad.io/evil" in err.value.message and err.value.hint
    assert len(endpoints(parse("bad.io/good:1"), config)) == 1


def test_insecure_mirror_host(tmp_path: Path) -> None:
    config = conf(tmp_path, MIRRORS)
    assert host_insecure("m2.example.com:5000", config)
    assert host_insecure("internal.example.com", config)  # the location of an insecure entry
    assert not host_insecure("m1.example.com", config)
