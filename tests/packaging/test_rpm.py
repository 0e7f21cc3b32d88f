"""The RPM spec (packaging/syscontainers.spec), checked with Debian 12's rpm tools.

rpmspec parses it; rpmbuild runs its %prep, %build, %install, %check and %files on a
tarball of this tree, with Fedora's Python and systemd macros stood in for by Debian's
python3 -m build and installer (tests/packaging/data/fedora-macros) and --nodeps, since
Fedora's build dependencies cannot be installed here. That proves the spec's own steps and
file list, not Fedora's macros: a build on Fedora is still the real test of those.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
from pathlib import Path

import pytest

from syscontainers.cli import build_parser
from tests.imagebuild import requires
from tests.integration.nspawn import REPO
from tests.packaging.source import project_version, tree_tar

SPEC = REPO / "packaging" / "syscontainers.spec"
MACROS = Path(__file__).resolve().parent / "data" / "fedora-macros"
SYSTEM_PATH = {**os.environ, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}


def rpm_query(*args: str) -> str:
    return subprocess.run(["rpm", *args], capture_output=True, text=True, check=True).stdout


@requires("rpmspec")
def test_rpmspec_parses_the_spec_with_the_projects_version() -> None:
    parsed = subprocess.run(["rpmspec", "--parse", str(SPEC)], capture_output=True, text=True)
    assert parsed.returncode == 0, parsed.stderr
    assert "error" not in parsed.stderr.lower()
    query = subprocess.run(
        ["rpmspec", "-q", "--srpm", "--qf", "%{name} %{version} %{license}", str(SPEC)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert query == f"syscontainers {project_version()} Apache-2.0"


def test_the_spec_names_every_unit_for_its_scriptlets() -> None:
    named = re.search(r"^%global units (.*)$", SPEC.read_text(), re.M)
    assert named is not None
    units = set(named.group(1).split()) - {"%{nil}"}
    on_disk = {p.name for p in (REPO / "units").glob("*")} if (REPO / "units").is_dir() else set()
    assert units == on_disk, "list the units of units/ in the spec's %global units"


@pytest.mark.slow
@requires("rpmbuild")
def test_rpmbuild_builds_a_package_with_the_tool_its_man_pages_and_completion(
    tmp_path: Path,
) -> None:
    version = project_version()
    (tmp_path / "SOURCES").mkdir()
    tree_tar(tmp_path / "SOURCES" / f"syscontainers-{version}.tar.gz", f"syscontainers-{version}/")
    built = subprocess.run(
        [
            "rpmbuild",
            "-bb",
            "--nodeps",
            "--define",
            f"_topdir {tmp_path}",
            "--load",
            str(MACROS),
            str(SPEC),
        ],
        capture_output=True,
        text=True,
        env=SYSTEM_PATH,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (rpm,) = (tmp_path / "RPMS" / "noarch").glob(f"syscontainers-{version}-1*.noarch.rpm")

    listed = set(rpm_query("-qlp", str(rpm)).split())
    verbs = [
        name
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
        for name in action.choices
    ]
    pages = {f"/usr/share/man/man8/syscontainers-{verb}.8" for verb in verbs}
    pages.add("/usr/share/man/man8/syscontainers.8")
    assert pages <= {re.sub(r"\.gz$", "", path) for path in listed}
    for path in (
        "/usr/bin/syscontainers",
        "/usr/share/bash-completion/completions/syscontainers",
        "/usr/lib/python3/dist-packages/syscontainers/render/defaults/service.template",
        f"/usr/share/licenses/syscontainers-{version}/LICENSE",
    ):
        assert path in listed, path
    requires_ = rpm_query("-qp", "--requires", str(rpm)).split()
    assert {"runc", "systemd"} <= set(requires_)
    assert rpm_query("-qp", "--recommends", str(rpm)).split() == ["containers-common"]
