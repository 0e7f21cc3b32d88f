"""The host manifest: what it accepts, and errors that name the line for what it does not."""

from __future__ import annotations

from pathlib import Path

import pytest

from syscontainers.errors import UsageError
from syscontainers.provision.manifest import ContainerSpec, UpdatePolicy, load, parse

GOOD = """\
version: 1
containers:
  web:
    image: example.org/web:1
    values:
      PORT: 8081
      DEBUG: yes
      RATIO: 0.5
      NAME_: web server
    runtime: /usr/bin/crun --cgroup-manager=disabled
    enabled: false
    started: no
    update: always
  db:
    image: oci:/srv/db:2
"""


def test_a_full_manifest() -> None:
    manifest = parse(GOOD, "host.yaml")
    assert manifest.names() == ("web", "db")
    web, db = manifest.containers
    assert web == ContainerSpec(
        "web",
        "example.org/web:1",
        (("DEBUG", "yes"), ("NAME_", "web server"), ("PORT", "8081"), ("RATIO", "0.5")),
        "/usr/bin/crun --cgroup-manager=disabled",
        False,
        False,
        UpdatePolicy.ALWAYS,
        line=3,
    )
    assert db == ContainerSpec("db", "oci:/srv/db:2", line=14)
    assert (db.enabled, db.started, db.update, db.runtime) == (
        True,
        True,
        UpdatePolicy.MISSING,
        None,
    )


@pytest.mark.parametrize("text", ["", "# nothing\n", "containers:\n", "containers: {}\n"])
def test_an_empty_manifest_has_no_containers(text: str) -> None:
    assert parse(text, "h.yaml").containers == ()


BAD = [
    ("containers:\n  web:\n    image: [a\n", 4, "not valid YAML"),
    ("- web\n", 1, "the manifest must be a mapping"),
    ("containers:\n  web: {image: a}\nextra: 1\n", 3, "unknown key 'extra'"),
    ("version: 2\n", 1, "version '2' is not known"),
    (
        "containers:\n  web:\n    image: a\n  web:\n    image: b\n",
        4,
        "'web' appears twice (first on line 2)",
    ),
    ("containers:\n  web:\n    values: {A: 1}\n", 2, "container web has no image"),
    ("containers:\n  web:\n    image: a\n    imgae: b\n", 4, "unknown key 'imgae'"),
    (
        "containers:\n  web:\n    image: a\n    enabled: maybe\n",
        4,
        "web.enabled must be true or false",
    ),
    (
        "containers:\n  web:\n    image: a\n    update: sometimes\n",
        4,
        "must be 'missing' or 'always'",
    ),
    ("containers:\n  web:\n    image: {a: 1}\n", 3, "web.image must be text"),
    ("containers:\n  web:\n    image: ''\n", 3, "web.image is empty"),
    (
        "containers:\n  web:\n    image: a\n    values:\n      A: [1, 2]\n",
        5,
        "web.values.A must be",
    ),
    ("containers:\n  web:\n    image: a\n    values:\n      bad-name: 1\n", 5, "web.values:"),
    ("containers:\n  ../etc:\n    image: a\n", 2, "container name '../etc' is not valid"),
    ("containers:\n  web:\n    image: a\n    values: [A]\n", 4, "web.values must be a mapping"),
    ("containers:\n  web: nginx\n", 2, "container web must be a mapping"),
    ("containers:\n  ? [a]\n  : {image: b}\n", 2, "must be a plain name"),
]


@pytest.mark.parametrize(("text", "line", "message"), BAD)
def test_errors_name_the_line(text: str, line: int, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse(text, "/etc/syscontainers/host.yaml")
    assert caught.value.message.startswith(f"/etc/syscontainers/host.yaml, line {line}: ")
    assert message in caught.value.message
    assert caught.value.hint


def test_load_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        load(tmp_path / "nope.yaml")
    (tmp_path / "h.yaml").write_text(GOOD)
    assert load(tmp_path / "h.yaml").path == str(tmp_path / "h.yaml")
