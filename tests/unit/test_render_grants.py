"""Tests for syscontainers.render.grants: the list form upgraded, what the host lacks left out."""

from __future__ import annotations

import json
from typing import Any

import pytest

from syscontainers.render.config_json import UserDB, render_config
from syscontainers.render.exports import parse_exports
from syscontainers.render.grants import CAP_SETS, HostLimits, fit, upgrade, withhold
from syscontainers.render.values import capability_names
from tests.unit.render_fixtures import image_config, values_for

RC_CAPS = ["CAP_CHOWN", "CAP_SYS_RESOURCE", "CAP_KILL"]
# every capability to 40 but CAP_SYS_RESOURCE, as root has on the test machines
GRANTABLE = frozenset(capability_names(40, 0x1FFFEFFFFFF))


def rc_config(caps: Any) -> dict[str, Any]:
    """A config of the 1.0.0-rc era, whose process.capabilities is CAPS."""
    return {
        "ociVersion": "1.0.0-rc3",
        "root": {"path": "rootfs", "readonly": True},
        "process": {"args": ["/bin/true"], "capabilities": caps},
    }


def test_upgrade_turns_the_rc_list_into_every_set() -> None:
    doc = rc_config(list(RC_CAPS))
    assert upgrade(doc) is True
    assert doc["process"]["capabilities"] == {name: RC_CAPS for name in CAP_SETS}


def test_upgrade_leaves_the_object_form_alone() -> None:
    doc = rc_config({"bounding": ["CAP_KILL"]})
    assert upgrade(doc) is False and doc["process"]["capabilities"] == {"bounding": ["CAP_KILL"]}
    assert upgrade({"root": {}}) is False


def v0_config(caps: Any, process_caps: Any = None) -> dict[str, Any]:
    """A config of the 0.x specs (gscrivano/hello-world's shape): the list at linux.capabilities."""
    doc: dict[str, Any] = {
        "ociVersion": "0.3.0",
        "root": {"path": "rootfs", "readonly": True},
        "process": {"args": ["/bin/true"]},
        "linux": {"namespaces": [{"type": "pid"}], "capabilities": caps},
    }
    if process_caps is not None:
        doc["process"]["capabilities"] = process_caps
    return doc


V0_SETS = ("bounding", "effective", "inheritable", "permitted")


def test_upgrade_moves_the_0x_linux_list_to_process_without_ambient() -> None:
    doc = v0_config(list(RC_CAPS))
    assert upgrade(doc) is True
    assert doc["process"]["capabilities"] == {**{n: RC_CAPS for n in V0_SETS}, "ambient": []}
    assert doc["linux"] == {"namespaces": [{"type": "pid"}]}


@pytest.mark.parametrize(
    "doc",
    [
        v0_config(list(RC_CAPS), process_caps={"bounding": ["CAP_KILL"]}),  # process.* wins
        v0_config({"bounding": ["CAP_KILL"]}),  # not the 0.x list: the runtime judges it
        {"ociVersion": "0.3.0", "process": {"args": ["/bin/true"]}, "linux": []},
    ],
)
def test_upgrade_leaves_a_linux_capabilities_it_cannot_move_alone(doc: dict[str, Any]) -> None:
    before = json.loads(json.dumps(doc))
    assert upgrade(doc) is False and doc == before


def test_render_config_gives_a_0x_template_its_capabilities_fitted_to_the_host() -> None:
    text = json.dumps(v0_config(RC_CAPS)).encode()
    exports = parse_exports({"config.json.template": text})
    rendered = render_config(
        exports,
        image_config(),
        values_for(exports),
        UserDB(),
        lambda p: True,
        limits=HostLimits(GRANTABLE),
    )
    doc = json.loads(rendered.data)
    assert "capabilities" not in doc["linux"]
    assert doc["process"]["capabilities"] == {
        **{n: ["CAP_CHOWN", "CAP_KILL"] for n in V0_SETS},
        "ambient": [],
    }
    assert rendered.withheld == ("CAP_SYS_RESOURCE",)


def test_withhold_drops_only_known_capabilities_the_host_lacks() -> None:
    doc = rc_config({"bounding": [*RC_CAPS, "CAP_FUTURE"], "ambient": ["CAP_SYS_RESOURCE"]})
    assert withhold(doc, GRANTABLE) == ("CAP_SYS_RESOURCE",)
    assert doc["process"]["capabilities"] == {
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_FUTURE"],
        "ambient": [],
    }
    assert withhold(rc_config(None), GRANTABLE) == ()


def test_render_config_rewrites_an_rc_template_runc_can_use() -> None:
    text = json.dumps(rc_config(RC_CAPS)).encode()
    exports = parse_exports({"config.json.template": text})
    values = values_for(exports)
    rendered = render_config(
        exports, image_config(), values, UserDB(), lambda p: True, limits=HostLimits(GRANTABLE)
    )
    caps = json.loads(rendered.data)["process"]["capabilities"]
    assert caps == {name: ["CAP_CHOWN", "CAP_KILL"] for name in CAP_SETS}
    assert rendered.withheld == ("CAP_SYS_RESOURCE",)
    unfiltered = render_config(exports, image_config(), values, UserDB(), lambda p: True)
    assert json.loads(unfiltered.data)["process"]["capabilities"]["ambient"] == RC_CAPS
    assert unfiltered.withheld == ()


def test_selinux_labels_are_left_out_where_selinux_is_off() -> None:
    # docker-fedora's shape: runc refuses a label on a host without SELinux
    doc = rc_config(["CAP_KILL"])
    doc["process"]["selinuxLabel"] = "system_u:system_r:container_runtime_t:s0"
    doc["linux"] = {"mountLabel": "system_u:object_r:container_file_t:s0"}
    kept = json.loads(json.dumps(doc))
    assert fit(kept, HostLimits(selinux=True)) == () and kept == doc
    assert fit(doc, HostLimits(GRANTABLE, selinux=False)) == (
        "process.selinuxLabel",
        "linux.mountLabel",
    )
    assert "selinuxLabel" not in doc["process"] and "mountLabel" not in doc["linux"]
