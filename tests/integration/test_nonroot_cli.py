"""Integration: the CLI run by a real non-root user (uid 65534 through setpriv) on a root store.

A verb that needs root says so, naming the verb and the path it was refused, with a hint,
instead of a traceback or "unexpected PermissionError". The read-only verbs still work for that
user on a store it may read (here one an administrator opened up with chmod -R a+rX).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from syscontainers import cli, process
from syscontainers.process import Result
from tests.imagebuild import layer_tar, write_oci_layout

pytestmark = pytest.mark.root

NOBODY = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def base() -> Iterator[Path]:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv")
    top = Path(tempfile.mkdtemp(prefix="sc-nonroot-"))
    top.chmod(0o755)  # reachable by the user, as /var/lib is
    (top / "home").mkdir(mode=0o777)
    layout = write_oci_layout(top / "img", [layer_tar({"etc/motd": b"hi\n"})], "v1")
    for root in ("root", "readable"):
        assert (
            cli.main(
                ["--root", str(top / root), "-q", "pull", f"oci:{layout}:v1", "--name", "app:1"]
            )
            == 0
        )
    process.run(["chmod", "-R", "a+rX", str(top / "readable")])
    yield top
    shutil.rmtree(top)


def as_nobody(base: Path, root: str, *argv: str) -> Result:
    """The CLI as uid/gid 65534, with a home of its own (root's config is not readable)."""
    env = {"HOME": str(base / "home"), "PATH": os.environ["PATH"], "PYTHONPATH": str(REPO)}
    return process.run(
        [*NOBODY, sys.executable, "-m", "syscontainers", "--root", str(base / root), *argv],
        check=False,
        timeout=60,
        env=env,
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["images", "list"],
        ["images", "inspect", "app:1"],
        ["images", "tag", "app:1", "b:1"],
        ["images", "verify"],
        ["images", "prune"],
        ["pull", "oci:IMG:v1"],
        ["hostfiles", "list"],
        ["checkout", "app:1", "/nonexistent/co"],
    ],
)
def test_a_verb_refused_for_want_of_root_says_it_needs_root(base: Path, argv: list[str]) -> None:
    done = as_nobody(base, "root", *(a.replace("IMG", str(base / "img")) for a in argv))
    verb = " ".join(argv[:2] if argv[0] in ("images", "hostfiles") else argv[:1])
    assert done.returncode == 1, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0].startswith(
        f"error: syscontainers needs root for {verb}: permission denied "
        f"on {base / 'root' / 'store'}"
    ), done.stderr
    assert lines[1].startswith("hint: run it as root") and len(lines) == 2, done.stderr
    assert done.stdout == ""


def test_read_only_verbs_work_on_a_store_the_user_may_read(base: Path) -> None:
    listed = as_nobody(base, "readable", "images", "list", "-q")
    assert listed.returncode == 0, listed.stderr
    assert len(listed.stdout.split()) == 1 and len(listed.stdout.strip()) == 12
    shown = as_nobody(base, "readable", "images", "inspect", "app:1", "--json")
    assert shown.returncode == 0 and '"names"' in shown.stdout, shown.stderr
    tagged = as_nobody(base, "readable", "images", "tag", "app:1", "b:1")
    assert tagged.returncode == 1
    assert "syscontainers needs root for images tag" in tagged.stderr
