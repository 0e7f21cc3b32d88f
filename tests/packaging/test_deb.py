"""The Debian package: built by packaging/build-deb, installed with dpkg into a booted Debian 12.

The .deb is built from this tree with `dpkg-buildpackage -us -uc -b`. It is installed with
`dpkg -i` into a clean bookworm root (tests/packaging/debroot.py) that holds only what the
package declares it needs, booted with systemd in systemd-nspawn. There, the installed
/usr/bin/syscontainers (not this repository: nothing on PYTHONPATH) installs a small busybox
image from an OCI layout built on this machine as a service that systemd runs with runc,
under the trust policy the package's Recommends bring. The man pages, the bash completion
and removing the package are checked in the same host. The tests run in file order.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.imagebuild import make_busybox_layout, requires
from tests.integration.nspawn import REPO, Completed, NspawnHost, booted_or_skip
from tests.packaging.debroot import debroot, relations
from tests.packaging.source import project_version, tree_tar

pytestmark = [
    pytest.mark.systemd,
    pytest.mark.slow,
    requires("dpkg-buildpackage", "mmdebstrap", "umoci", "runc"),
]

PAGE = "served by the packaged syscontainers\n"
UNITS = sorted((REPO / "units").glob("*")) if (REPO / "units").is_dir() else []
PORT = 8091
# The installed tool alone: neither this repository on PYTHONPATH nor the tests' policy.
PACKAGED = ["env", "-u", "PYTHONPATH", "-u", "SYSCONTAINERS_POLICY"]


@dataclass
class Installed:
    """The booted clean root, and where the .deb and the image layout are inside it."""

    host: NspawnHost
    deb: str
    layout: str

    def sh(self, script: str, check: bool = True, timeout: float = 120) -> Completed:
        """Run SCRIPT inside as an administrator would, with the packaged tool."""
        return self.host.run([*PACKAGED, "/bin/sh", "-c", script], check=check, timeout=timeout)


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("deb")
    built = subprocess.run(
        [str(REPO / "packaging" / "build-deb"), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr
    (path,) = out.glob("syscontainers_*_all.deb")
    return path


@pytest.fixture(scope="module")
def world(deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    root = debroot(relations(deb, "Depends") + relations(deb, "Recommends"))
    if isinstance(root, str):
        pytest.skip(root)
    test_dir = tmp_path_factory.mktemp("debhost")
    shutil.copy(deb, test_dir / deb.name)
    cmd = ("/bin/sh", "-c", f"trap 'exit 143' TERM; busybox httpd -f -p {PORT} -h /www & wait")
    make_busybox_layout(test_dir / "layout", "v1", {"www/index.html": PAGE.encode()}, cmd=cmd)
    host = NspawnHost(test_dir, directory=root, volatile="overlay")
    with booted_or_skip(host):
        # The harness's "disable *" preset keeps the host's own services from starting in a
        # booted /; this root has only its packages' units, and Debian ships no presets:
        # without it, dpkg enables units as on any Debian machine.
        host.run(["umount", "/etc/systemd/system-preset"])
        yield Installed(host, host.inside(test_dir / deb.name), host.inside(test_dir / "layout"))


def test_the_package_declares_debian_dependencies(deb: Path) -> None:
    depends = relations(deb, "Depends")
    for package in (
        "python3-dbus-next",
        "python3-requests",
        "python3-yaml",
        "python3-jinja2",
        "python3-zstandard",
        "python3-cryptography",
        "runc",
        "systemd",
    ):
        assert package in depends
    assert "golang-github-containers-common" in relations(deb, "Recommends")
    files = subprocess.run(
        ["dpkg-deb", "--contents", str(deb)], capture_output=True, text=True, check=True
    ).stdout
    for path in (
        "./usr/bin/syscontainers",
        "./usr/share/man/man8/syscontainers.8.gz",
        "./usr/share/man/man8/syscontainers-install.8.gz",
        "./usr/share/bash-completion/completions/syscontainers",
        "/syscontainers/render/defaults/service.template",
        *(f"./lib/systemd/system/{unit.name}" for unit in UNITS),
    ):
        assert path in files, path


@requires("lintian")
def test_lintian_finds_no_error_or_warning(deb: Path) -> None:
    # The project has no mail address to put in Maintainer yet.
    run = subprocess.run(
        [
            "lintian",
            "--fail-on",
            "error,warning",
            "--suppress-tags",
            "bogus-mail-host,bogus-mail-host-in-debian-changelog",
            str(deb),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr


@requires("dpkg-parsechangelog")
def test_the_debian_changelog_has_the_projects_version() -> None:
    changelog = REPO / "packaging" / "debian" / "changelog"
    version = subprocess.run(
        ["dpkg-parsechangelog", "-l", str(changelog), "-S", "Version"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert version.split("-")[0] == project_version()


def test_units_in_units_dir_are_packaged_and_enabled(tmp_path: Path) -> None:
    """Built from a copy of the tree (no git there) with a unit in units/, as other work
    will add: the package installs it and enables it, without starting it, at install."""
    tree = tmp_path / "tree"
    tree.mkdir()
    subprocess.run(
        ["tar", "-xf", str(tree_tar(tmp_path / "tree.tar")), "-C", str(tree)], check=True
    )
    (tree / "units").mkdir(exist_ok=True)
    (tree / "units" / "syscontainers-probe.service").write_text(
        "[Service]\nType=oneshot\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"
    )
    built = subprocess.run(
        [str(tree / "packaging" / "build-deb"), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr
    (deb,) = (tmp_path / "out").glob("*.deb")
    files_in = subprocess.run(
        ["dpkg-deb", "--contents", str(deb)], capture_output=True, text=True, check=True
    ).stdout
    assert "./lib/systemd/system/syscontainers-probe.service" in files_in
    control = tmp_path / "control"
    subprocess.run(["dpkg-deb", "--control", str(deb), str(control)], check=True)
    postinst = (control / "postinst").read_text()
    assert "deb-systemd-helper enable 'syscontainers-probe.service'" in postinst
    assert "deb-systemd-invoke" not in postinst  # --no-start


def test_dpkg_installs_it_into_a_clean_root(world: Installed) -> None:
    assert world.sh("command -v syscontainers", check=False).returncode != 0
    world.sh(f"dpkg -i {world.deb}")
    assert world.sh("command -v syscontainers").stdout.strip() == "/usr/bin/syscontainers"
    status = world.sh("dpkg-query -W -f '${Status}' syscontainers").stdout
    assert status == "install ok installed"
    version = world.sh("syscontainers --version").stdout
    assert version == f"syscontainers {project_version()}\n"
    where = world.sh("/usr/bin/python3 -c 'import syscontainers; print(syscontainers.__file__)'")
    assert where.stdout.startswith("/usr/lib/python3/dist-packages/syscontainers/")
    for unit in UNITS:  # enabled, not started: they act on what the administrator sets up
        enabled = world.sh(f"systemctl is-enabled {unit.name}", check=False).stdout.strip()
        assert enabled == ("enabled" if "[Install]" in unit.read_text() else "static"), unit
        active = world.sh(f"systemctl is-active {unit.name}", check=False).stdout.strip()
        assert active == "inactive", unit


def test_the_packaged_tool_installs_a_running_service(world: Installed) -> None:
    world.sh(
        f"syscontainers install --name served --now --health-timeout 2 oci:{world.layout}:v1",
        timeout=180,
    )
    assert world.sh("systemctl is-active served.service", check=False).stdout.strip() == "active"
    fetch = (
        f"import urllib.request; print(urllib.request.urlopen("
        f"'http://127.0.0.1:{PORT}/', timeout=2).read().decode(), end='')"
    )
    deadline = time.monotonic() + 15
    while True:
        got = world.sh(f'/usr/bin/python3 -c "{fetch}"', check=False)
        if got.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert got.stdout == PAGE, got.stderr
    assert "served" in world.sh("syscontainers list").stdout


def test_man_pages_and_completion_are_where_admins_look(world: Installed) -> None:
    assert (
        world.sh("man -w syscontainers-install").stdout.strip()
        == "/usr/share/man/man8/syscontainers-install.8.gz"
    )
    page = " ".join(world.sh("MANWIDTH=200 man syscontainers-install").stdout.split())
    assert "--now" in page and "syscontainers install" in page
    assert "syscontainers-install(8)" in world.sh("MANWIDTH=200 man 8 syscontainers").stdout
    for unit in UNITS:  # a unit's Documentation=man:PAGE(SECTION) is a page the package has
        for page_name, section in re.findall(r"man:([\w.-]+)\((\d)\)", unit.read_text()):
            world.sh(f"man -w {section} {page_name}")
    loads = (
        ". /usr/share/bash-completion/bash_completion; _completion_loader syscontainers; "
        "complete -p syscontainers"
    )
    complete = world.host.run([*PACKAGED, "bash", "-c", loads], check=False)
    assert "-F _shtab_syscontainers syscontainers" in complete.stdout, complete.stderr


def test_uninstall_then_remove_the_package_leaves_nothing(world: Installed) -> None:
    world.sh("syscontainers uninstall served")
    assert world.sh("systemctl is-active served.service", check=False).stdout.strip() != "active"
    world.sh("dpkg --purge syscontainers")
    left = world.sh(
        "ls /usr/bin/syscontainers /usr/lib/python3/dist-packages/syscontainers "
        "/usr/share/man/man8/syscontainers.8.gz "
        "/usr/share/bash-completion/completions/syscontainers",
        check=False,
    )
    assert left.stdout == "" and left.returncode != 0
