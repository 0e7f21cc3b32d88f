"""A hostile registry on loopback: endless bodies, redirect loops, false Content-Encoding.

Each pull runs the real CLI in a child process under a 1 GiB address-space limit, against
tests/integration/hostile_registry.py, and must end quickly with a clear error and hint (not
"unexpected …, report a bug"), in bounded memory. Before the fixes an endless error or token
body grew the pull until MemoryError, and the other cases reached the last-resort handler.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.imagebuild import layer_tar, write_oci_layout
from tests.integration.hostile_registry import HostileRegistry, cli_env, run_cli

MAX_RSS = 200 << 20  # a bounded pull of this tiny image needs a fraction of this
QUICK = 25.0  # seconds: well under the endless bodies' 30 s


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileRegistry]:
    """The hostile registry, serving test/app:1 (two gzip layers); each test sets its mode."""
    layout = tmp_path_factory.mktemp("hostile") / "layout"
    layers = [layer_tar({"bin/app": b"#!/bin/sh\necho hi\n"}), layer_tar({"etc/x": b"x" * 5000})]
    write_oci_layout(layout, layers, "1")
    with HostileRegistry(layout, "test/app", "1") as reg:
        yield reg


def pull(reg: HostileRegistry, tmp: Path, mode: str) -> tuple[int, str, int, float]:
    """Pull the served image through the CLI with REG in MODE: (exit code, stderr, rss, s)."""
    reg.mode = mode
    run = run_cli(cli_env(tmp), "pull", reg.image, "--tls-verify=false", "--insecure-policy")
    return run.code, run.err, run.max_rss, run.seconds


def assert_clear_error(code: int, err: str, *words: str) -> None:
    """Exit 1 with an 'error:' line holding WORDS and a hint, and no last-resort message."""
    assert code == 1, err
    assert "unexpected" not in err and "report a bug" not in err, err
    assert err.startswith("error: ") and "\nhint: " in err, err
    for word in words:
        assert word in err, err


@pytest.mark.parametrize(
    ("mode", "words"),
    [
        ("endless-error", ("manifest", "not found")),
        ("endless-token", ("token", "more than")),
        ("endless-token-refusal", ("refused anonymous access",)),
    ],
)
def test_an_endless_body_is_cut_off_with_a_clear_error(
    hostile: HostileRegistry, tmp_path: Path, mode: str, words: tuple[str, ...]
) -> None:
    code, err, rss, seconds = pull(hostile, tmp_path, mode)
    assert_clear_error(code, err, *words)
    assert rss < MAX_RSS, f"peak RSS {rss >> 20} MiB"
    assert seconds < QUICK


@pytest.mark.parametrize("mode", ["redirect-loop", "redirect-pingpong", "blob-redirect-loop"])
def test_a_redirect_loop_is_a_clear_error(
    hostile: HostileRegistry, tmp_path: Path, mode: str
) -> None:
    code, err, _, seconds = pull(hostile, tmp_path, mode)
    assert_clear_error(code, err, "redirect")
    assert seconds < QUICK


@pytest.mark.parametrize(
    ("mode", "words"),
    [("redirect-to-a-bad-url", ("cannot be followed",)), ("not-json", ("not valid JSON",))],
)
def test_a_broken_answer_is_a_clear_error(
    hostile: HostileRegistry, tmp_path: Path, mode: str, words: tuple[str, ...]
) -> None:
    code, err, _, _ = pull(hostile, tmp_path, mode)
    assert_clear_error(code, err, "manifest", *words)


def test_a_manifest_falsely_labelled_gzip_is_a_clear_error(
    hostile: HostileRegistry, tmp_path: Path
) -> None:
    code, err, _, _ = pull(hostile, tmp_path, "false-gzip")
    assert_clear_error(code, err, "manifest", "Content-Encoding", "gzip")


def test_blobs_labelled_gzip_are_read_as_sent(hostile: HostileRegistry, tmp_path: Path) -> None:
    """We ask for blobs with Accept-Encoding: identity, so a Content-Encoding label on one (as
    some object stores put on .tar.gz files) must not make us decompress it before hashing."""
    code, err, _, _ = pull(hostile, tmp_path, "gzip-labelled-blobs")
    assert code == 0, err
    run = run_cli(cli_env(tmp_path), "images", "verify")
    assert run.code == 0, run.err
