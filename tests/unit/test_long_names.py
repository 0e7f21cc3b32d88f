"""Names that are valid but longer than a file name allows: image tags and mount pins.

A ref or pin file is named after its key; a long key (a 240-character image name whose
slashes quote to three characters each, a deep mount path) does not fit in 255 bytes.
These run the real store on disk and the CLI.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from syscontainers import cli
from syscontainers.errors import ReferenceParseError
from syscontainers.oci import sha256_digest
from syscontainers.reference import MAX_NAME, parse
from syscontainers.store import Store
from tests.imagebuild import layer_tar, write_oci_layout
from tests.unit.store_fixtures import new_store

# 237 characters with 12 slashes: URL-quoted, 261 characters before the tag
LONG_NAME = "localhost/" + "/".join(["a" * 18] * 12)
DEEP_PATH = "/mnt/" + "/".join("d" * 3 for _ in range(37))  # 152 chars, 38 slashes


def test_the_cases_are_what_broke() -> None:
    assert len(LONG_NAME) == 237 and len(DEEP_PATH) == 152
    assert parse(LONG_NAME).name == LONG_NAME


@pytest.mark.parametrize(
    "key", [f"{LONG_NAME}:latest", f"{LONG_NAME}:" + "t" * 128, f"{LONG_NAME}@sha256:{'e' * 64}"]
)
def test_long_ref_round_trip(tmp_path: Path, key: str) -> None:
    store = new_store(tmp_path)
    digest = sha256_digest(key.encode())
    store.set_ref(key, digest)
    store.set_ref("short:1", digest)
    assert store.refs() == {key: digest, "short:1": digest}
    assert all(len(n) <= 255 for n in os.listdir(store.refs_dir))
    store.set_ref(key, sha256_digest(b"moved"))  # a long ref is overwritten, not duplicated
    assert store.refs()[key] == sha256_digest(b"moved") and len(os.listdir(store.refs_dir)) == 2
    assert store.delete_ref(key) is True
    assert store.refs() == {"short:1": digest}
    assert store.delete_ref(key) is False


@pytest.mark.parametrize("target", [DEEP_PATH, "/mnt/" + "x" * 250, "/mnt/new\nline/" + "y" * 240])
def test_long_pin_round_trip(tmp_path: Path, target: str) -> None:
    store = new_store(tmp_path)
    pin = f"mount:{target}"
    store.pin(pin, sha256_digest(b"img"))
    assert store.pins() == {pin: sha256_digest(b"img")}
    store.unpin(pin)
    assert store.pins() == {}


def test_a_short_key_keeps_its_readable_file_name(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    store.set_ref("example.org/etcd:3.5", sha256_digest(b"x"))
    assert os.listdir(store.refs_dir) == ["example.org%2Fetcd%3A3.5"]


def test_pull_tag_and_delete_a_long_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout = write_oci_layout(tmp_path / "img", [layer_tar({"etc/motd": b"hi\n"})], "v1")
    root = ["--root", str(tmp_path / "root")]
    assert cli.main([*root, "pull", f"oci:{layout}:v1", "--name", LONG_NAME]) == 0
    assert cli.main([*root, "images", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert [(r["name"], r["tag"]) for r in rows] == [(LONG_NAME, "latest")]
    assert cli.main([*root, "images", "tag", LONG_NAME, f"{LONG_NAME}:two"]) == 0
    assert cli.main([*root, "checkout", f"{LONG_NAME}:two", str(tmp_path / "co")]) == 0
    assert (tmp_path / "co" / "etc" / "motd").read_bytes() == b"hi\n"
    assert cli.main([*root, "images", "delete", LONG_NAME, f"{LONG_NAME}:two"]) == 0
    assert Store(tmp_path / "root" / "store").refs() == {}


def test_a_name_longer_than_the_registry_allows_is_refused_before_any_import(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    too_long = "localhost/" + "n" * (MAX_NAME - 9)
    with pytest.raises(ReferenceParseError) as e:
        parse(too_long)
    assert f"longer than {MAX_NAME}" in e.value.message and e.value.hint
    layout = write_oci_layout(tmp_path / "img", [layer_tar({"etc/motd": b"hi\n"})], "v1")
    root = tmp_path / "root"
    assert cli.main(["--root", str(root), "pull", f"oci:{layout}:v1", "--name", too_long]) == 2
    assert "error:" in capsys.readouterr().err
    assert not list(root.glob("store/layers/*.json"))  # nothing was imported


def test_checkout_to_a_destination_whose_name_nearly_fills_a_file_name(tmp_path: Path) -> None:
    """The checkout is built under a temp name beside DEST, which must fit too."""
    layout = write_oci_layout(tmp_path / "img", [layer_tar({"etc/motd": b"hi\n"})], "v1")
    root = ["--root", str(tmp_path / "root"), "-q"]
    assert cli.main([*root, "pull", f"oci:{layout}:v1", "--name", "app:1"]) == 0
    for name in ("c" * 255, "é" * 127):  # 255 and 254 bytes
        dest = tmp_path / name
        assert cli.main([*root, "checkout", "app:1", str(dest)]) == 0
        assert (dest / "etc" / "motd").read_bytes() == b"hi\n"
    assert [n for n in os.listdir(tmp_path) if n.startswith(".tmp-")] == []
