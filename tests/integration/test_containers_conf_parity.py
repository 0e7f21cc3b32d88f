"""certs.d, registries.conf and policy.json are found where skopeo finds them: the user's files
under ~/.config/containers, the system's under /etc/containers (and /etc/docker/certs.d), the
system ones swapped for test copies in a private mount namespace; skopeo is the oracle."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest_registry import (
    PlainRegistry,
    Registry,
    build_images,
    make_tls_cert,
    push,
    registry_server,
    requires_registry,
)
from tests.integration.parity_box import Box, make_box, requires_private_etc

pytestmark = [*requires_registry, requires_private_etc]
USER = "home/.config/containers"


def agree(box: Box, image: str, expect: bool, *flags: str) -> subprocess.CompletedProcess[str]:
    """skopeo inspect and our inspect of IMAGE both succeed (EXPECT) or both fail."""
    oracle = box.skopeo("inspect", "--no-tags", *flags, image)
    assert (oracle.returncode == 0) is expect, f"skopeo, the oracle: {oracle.stderr}"
    ours = box.ours("inspect", "--json", *flags, image)
    assert (ours.returncode == 0) is expect, ours.stderr
    return ours


# ---- certs.d -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Registry, Path]]:
    """A TLS registry with a self-signed certificate holding test/app:1, and that CA."""
    tmp = tmp_path_factory.mktemp("tls-parity")
    cert, key = make_tls_cert(tmp / "tls")
    with registry_server(tmp / "r", tls=(cert, key)) as registry:
        push(build_images(tmp / "layout").layout, "busybox", registry, "test/app:1")
        yield registry, cert


@pytest.fixture
def tls_box(tmp_path: Path, tls_registry: tuple[Registry, Path]) -> Box:
    box = make_box(tmp_path, tls_registry[0].host)
    box.private_etc()
    return box


def put_ca(box: Box, certs_d: str, cert: Path) -> None:
    """Trust CERT for the box's host in CERTS_D (relative to the box)."""
    target = box.root / certs_d / box.host
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(cert, target / "ca.crt")


def test_an_unknown_ca_fails_both(tls_box: Box) -> None:
    ours = agree(tls_box, f"docker://{tls_box.host}/test/app:1", False)
    assert "certificate" in ours.stderr


@pytest.mark.parametrize("certs_d", [f"{USER}/certs.d", "etc/containers/certs.d",
                                     "etc/docker/certs.d"])  # fmt: skip
def test_each_certs_d_is_searched(
    tls_box: Box, tls_registry: tuple[Registry, Path], certs_d: str
) -> None:
    put_ca(tls_box, certs_d, tls_registry[1])
    agree(tls_box, f"docker://{tls_box.host}/test/app:1", True)


def test_the_first_certs_d_with_the_host_wins_whole(
    tls_box: Box, tls_registry: tuple[Registry, Path]
) -> None:
    wrong, _ = make_tls_cert(tls_box.root / "other-ca")
    put_ca(tls_box, "etc/docker/certs.d", tls_registry[1])
    put_ca(tls_box, "etc/containers/certs.d", wrong)
    image = f"docker://{tls_box.host}/test/app:1"
    agree(tls_box, image, False)  # /etc/containers/certs.d/HOST hides /etc/docker's
    put_ca(tls_box, f"{USER}/certs.d", tls_registry[1])
    agree(tls_box, image, True)  # and the user's hides both


# ---- registries.conf -----------------------------------------------------------------------


@pytest.fixture
def plain_box(tmp_path: Path, plain_registry: PlainRegistry) -> Box:
    box = make_box(tmp_path, plain_registry.host)
    box.private_etc()
    return box


def rewrite(box: Box) -> str:
    """A registries.conf that sends parity.invalid/* to the plain registry (insecure)."""
    return f'[[registry]]\nprefix = "parity.invalid"\nlocation = "{box.host}"\ninsecure = true\n'


IMAGE = "docker://parity.invalid/test/busybox:1"


def test_the_system_registries_conf_is_read(plain_box: Box) -> None:
    agree(plain_box, IMAGE, False)
    plain_box.write("etc/containers/registries.conf", rewrite(plain_box))
    agree(plain_box, IMAGE, True)


def test_a_user_registries_conf_replaces_the_system_one(plain_box: Box) -> None:
    plain_box.write("etc/containers/registries.conf", rewrite(plain_box))
    plain_box.write(f"{USER}/registries.conf", "")
    agree(plain_box, IMAGE, False)
    plain_box.write(f"{USER}/registries.conf.d/a.conf", rewrite(plain_box))
    agree(plain_box, IMAGE, True)


def test_the_user_drop_ins_come_after_the_system_ones(plain_box: Box) -> None:
    plain_box.write("etc/containers/registries.conf", "")
    plain_box.write(f"{USER}/registries.conf.d/a.conf", rewrite(plain_box))
    agree(plain_box, IMAGE, True)
    dead = rewrite(plain_box).replace(plain_box.host, "127.0.0.1:1")
    plain_box.write("etc/containers/registries.conf.d/z.conf", dead)
    agree(plain_box, IMAGE, True)  # the user's a.conf still replaces the system's z.conf
    plain_box.write(f"{USER}/registries.conf.d/a.conf", "")
    agree(plain_box, IMAGE, False)


# ---- policy.json ---------------------------------------------------------------------------

ACCEPT = '{"default": [{"type": "insecureAcceptAnything"}]}'
REJECT = '{"default": [{"type": "reject"}]}'


def pulls(box: Box, expect: bool) -> subprocess.CompletedProcess[str]:
    """skopeo copy and our pull of test/busybox:1 both pass the policy (EXPECT) or not."""
    image = f"docker://{box.host}/test/busybox:1"
    oracle = box.skopeo("copy", "--src-tls-verify=false", image, f"oci:{box.root / 'out'}:x")
    assert (oracle.returncode == 0) is expect, f"skopeo, the oracle: {oracle.stderr}"
    ours = box.ours("pull", "--tls-verify=false", image)
    assert (ours.returncode == 0) is expect, ours.stderr
    return ours


def test_a_user_policy_replaces_the_system_one(plain_box: Box) -> None:
    plain_box.write("etc/containers/policy.json", REJECT)
    assert "reject" in pulls(plain_box, False).stderr
    plain_box.write(f"{USER}/policy.json", ACCEPT)
    pulls(plain_box, True)
    plain_box.write("etc/containers/policy.json", ACCEPT)
    plain_box.write(f"{USER}/policy.json", REJECT)
    pulls(plain_box, False)
