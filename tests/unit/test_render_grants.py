"""Tests for syscontainers.render.grants: the list form upgraded, what the host lacks left out."""

from __future__ import annotations

import json
from typing import Any

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
