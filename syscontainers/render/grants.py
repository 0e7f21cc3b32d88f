"""What config.json asks of the host, fitted to what this host can grant.

Four things make images written for atomic fail under today's runc on hosts
other than theirs, or run without what they ask, and all are fixed in the
rendered config.json, never in the image:

- The OCI 1.0.0-rc form: ``process.capabilities`` as one list (qemu-guest-agent's
  template). runc of that time applied the list to every set; runc 1.1 rejects
  it ("json: cannot unmarshal array into ... LinuxCapabilities"). ``upgrade``
  turns it into the 1.0 object with the same list in each of the five sets.
- The OCI 0.x form: the list at ``linux.capabilities`` (gscrivano/hello-world,
  ociVersion 0.3.0). runc 1.1 does not read it there, so the container would run
  with no capability at all. ``upgrade`` moves it to ``process.capabilities`` (when
  that is not set) in the 1.0 object, the list in the four sets runc of that time
  gave it (bounding, effective, inheritable, permitted) and none ambient: that
  runc set no ambient capabilities, which only a process.user other than root
  would notice.
- Capabilities the host cannot grant: runc gives a container only what its own
  bounding set holds, and fails the whole start ("unable to apply caps:
  operation not permitted") when config.json asks for more. Templates written
  as "every capability" list them by hand (net-snmp, buildah), and root lacks
  some on hardened hosts, in containers and in nspawn hosts. ``withhold``
  leaves out of every set the capabilities the kernel knows but the host's
  bounding set lacks, and returns their names so the installer can say so.
  Names this table does not know are left for the runtime to judge.
- SELinux labels on a host without SELinux: runc refuses ``process.selinuxLabel``
  and ``linux.mountLabel`` then ("selinux label is specified in config, but
  selinux is disabled or not supported"); the docker images set them for
  Fedora. ``fit`` leaves them out where SELinux is off, as systemd does with a
  unit's SELinuxContext=.

``HostLimits`` says what a host grants; ``fit`` applies it and names what it
left out, for the installer's warning.
"""

from __future__ import annotations

from collections.abc import Set
from typing import Any

from syscontainers.record import record
from syscontainers.render.values import CAPABILITIES

CAP_SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")
# runc of the 0.x specs' time (libcontainer's allCapabilityTypes = CAPS | BOUNDS) applied
# linux.capabilities to these sets; ambient ones came later, with process.capabilities.
V0_SETS = CAP_SETS[:4]
SELINUX_LABELS = (("process", "selinuxLabel"), ("linux", "mountLabel"))


@record
class HostLimits:
    """What a host can grant a container: these capabilities (None: any), SELinux labels."""

    capabilities: frozenset[str] | None = None
    selinux: bool = True


def upgrade(doc: dict[str, Any]) -> bool:
    """Turn a pre-1.0 capability list (process.capabilities, or linux.capabilities of the
    0.x specs) into the 1.0 object form at process.capabilities; True if DOC changed."""
    process = doc.get("process")
    if not isinstance(process, dict):
        return False
    caps = process.get("capabilities")
    if isinstance(caps, list):
        process["capabilities"] = {name: list(caps) for name in CAP_SETS}
        return True
    linux = doc.get("linux")
    if caps is not None or not isinstance(linux, dict):
        return False
    if not isinstance(linux.get("capabilities"), list):
        return False
    caps = linux.pop("capabilities")
    process["capabilities"] = {name: list(caps) for name in V0_SETS} | {"ambient": []}
    return True


def withhold(doc: dict[str, Any], grantable: Set[str]) -> tuple[str, ...]:
    """Remove from DOC's capability sets the known ones not in GRANTABLE; return their names."""
    process = doc.get("process")
    caps = process.get("capabilities") if isinstance(process, dict) else None
    if not isinstance(caps, dict):
        return ()
    known = set(CAPABILITIES)
    dropped: set[str] = set()
    for key, names in caps.items():
        if isinstance(names, list):
            out = [n for n in names if not (n in known and n not in grantable)]
            dropped.update(n for n in names if n not in out)
            caps[key] = out
    return tuple(c for c in CAPABILITIES if c in dropped)


def drop_selinux_labels(doc: dict[str, Any]) -> tuple[str, ...]:
    """Remove DOC's SELinux labels; return where they were (process.selinuxLabel, ...)."""
    dropped = []
    for section, key in SELINUX_LABELS:
        part = doc.get(section)
        if isinstance(part, dict) and part.pop(key, None) is not None:
            dropped.append(f"{section}.{key}")
    return tuple(dropped)


def fit(doc: dict[str, Any], limits: HostLimits) -> tuple[str, ...]:
    """Leave out of DOC what the host cannot grant (see the module docstring); name it."""
    dropped: tuple[str, ...] = ()
    if limits.capabilities is not None:
        dropped += withhold(doc, limits.capabilities)
    if not limits.selinux:
        dropped += drop_selinux_labels(doc)
    return dropped
