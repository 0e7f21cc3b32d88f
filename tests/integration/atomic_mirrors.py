"""Test images that use the /exports features of projectatomic/atomic-system-containers.

Each ``Mirror`` is a busybox image whose /exports exercises what one image of that
repository does: its template variables, bind sources, tmpfiles lines, capability
forms, unit settings, labels and host files. The text is written here; nothing is
copied from that repository. The payload is a busybox shell standing in for the
daemon (it says it serves, keeps a pid file where the real one would, and exits on
SIGTERM). ``build`` writes one into an OCI layout with umoci.

``atomic-system-containers`` has 17 system-container images (plus two base images,
kubernetes-master and kubernetes-node, with no /exports); ``MIRRORS`` has one entry
for each of the 17, by the same name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from syscontainers import process
from syscontainers.render.values import CAPABILITIES
from tests.imagebuild import make_busybox_layout

# A daemon under a shell that exits on SIGTERM (PID 1 of its namespace needs a handler).
DAEMON = (
    "trap 'exit 0' TERM; echo \"$NAME serving as $0\"; "
    "for d in $PIDDIRS; do echo $$ > $d/pid; done; "
    "while :; do sleep 1 & wait $!; done"
)
# Every capability as the images wrote the list by hand (CAP_SYS_RESOURCE included).
EVERY_CAP = [c for c in CAPABILITIES[:38]]
ONE_O_CAPS = ("bounding", "permitted", "inheritable", "effective", "ambient")
_PLACEHOLDER = {"destination": "/PLACEHOLDER"}


def bind(source: str, dest: str, *options: str) -> dict[str, Any]:
    """A bind mount as atomic-era configs wrote them."""
    return {"type": "bind", "source": source, "destination": dest,
            "options": list(options or ("rbind", "rw"))}


BASE_MOUNTS: tuple[dict[str, Any], ...] = (
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
     "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs",
     "options": ["nosuid", "noexec", "nodev", "ro"]},
)


def config_template(
    args: Sequence[str],
    mounts: Sequence[dict[str, Any]],
    *,
    caps: Any = None,
    version: str = "1.0.0",
    env: Sequence[str] = (),
    namespaces: Sequence[str] = ("pid", "ipc", "mount"),
    addtl_mounts: bool = False,
    linux: Mapping[str, Any] | None = None,
    base: bool = True,
) -> bytes:
    """An atomic-style config.json.template: values go in raw, $ADDTL_MOUNTS after the mounts."""
    process_: dict[str, Any] = {
        # args are shell text: a literal $ is $$ in an atomic template
        "terminal": False, "user": {"uid": 0, "gid": 0},
        "args": [a.replace("$", "$$") for a in args],
        "env": ["PATH=/bin:/usr/bin", "NAME=$NAME", *env], "cwd": "/",
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
    }
    if caps is not None:
        process_["capabilities"] = caps
    all_mounts = [*(BASE_MOUNTS if base else ()), *mounts]
    if addtl_mounts:
        all_mounts.append(_PLACEHOLDER)
    doc = {
        "ociVersion": version, "platform": {"os": "linux", "arch": "amd64"},
        "process": process_, "root": {"path": "rootfs", "readonly": True},
        "mounts": all_mounts,
        "linux": {"namespaces": [{"type": t} for t in namespaces],
                  "resources": {"devices": [{"allow": False, "access": "rwm"}]},
                  **(linux or {})},
    }
    text = json.dumps(doc, indent=1)
    placeholder = json.dumps(_PLACEHOLDER, indent=1).replace("\n", "\n  ")
    if addtl_mounts:  # where atomic images put it: raw after the last mount, no comma
        text = text.replace(",\n  " + placeholder, "\n  $ADDTL_MOUNTS")
        assert "$ADDTL_MOUNTS" in text
    return text.encode()


def every_set(names: Sequence[str]) -> dict[str, list[str]]:
    """The 1.0 object form: the same list in each of the five sets."""
    return {k: list(names) for k in ONE_O_CAPS}


def unit(description: str, *, unit_extra: str = "", service_extra: str = "",
         install_extra: str = "") -> bytes:
    """A service.template in the shape the atomic images use."""
    return (f"[Unit]\nDescription={description}\n{unit_extra}\n[Service]\n"
            "ExecStart=$EXEC_START\nExecStop=$EXEC_STOP\n"
            f"WorkingDirectory=$DESTDIR\n{service_extra}\n"
            f"[Install]\nWantedBy=multi-user.target\n{install_extra}").encode()


@dataclass(frozen=True)
class Mirror:
    """One test image: its /exports files, extra rootfs files, labels and command."""

    name: str
    exports: Mapping[str, bytes]
    labels: Mapping[str, str] = field(default_factory=lambda: {"atomic.type": "system"})
    files: Mapping[str, bytes] = field(default_factory=dict)
    cmd: Sequence[str] = ("/bin/sh", "-c", DAEMON)
    why_not: str = ""  # what keeps the image from running unchanged on these hosts


def build(layout: Any, mirror: Mirror) -> str:
    """Write MIRROR into LAYOUT under its name as tag; return that tag."""
    files = {f"exports/{k}": v for k, v in mirror.exports.items()}
    files.update(mirror.files)
    make_busybox_layout(layout, mirror.name, files, cmd=mirror.cmd)
    argv = ["umoci", "config", "--image", f"{layout}:{mirror.name}"]
    for key, value in mirror.labels.items():
        argv += ["--config.label", f"{key}={value}"]
    process.run(argv)
    return mirror.name


def daemon(*piddirs: str) -> list[str]:
    """process.args running DAEMON, writing its pid into each of PIDDIRS."""
    return ["/bin/env", f"PIDDIRS={' '.join(piddirs)}", "/bin/sh", "-c", DAEMON]


# --- the images the end-to-end tests install ------------------------------------------------

ETCD_VARS = {
    "CONF_DIRECTORY": "/etc", "ETCD_NAME": "", "ETCD_DATA_DIR": "",
    "ETCD_LISTEN_CLIENT_URLS": "", "ETCD_INITIAL_CLUSTER_STATE": "new",
    "ETCD_SNAPSHOT_COUNT": "10000", "ETCD_CORS": "", "ADDTL_MOUNTS": "",
}
ETCD = Mirror("etcd", {
    "service.template": unit("etcd-like store", unit_extra="After=network.target\n",
                             service_extra="Restart=on-failure\nRuntimeDirectory=${NAME}\n"),
    "tmpfiles.template": (
        b"d    ${STATE_DIRECTORY}/etcd              0700 ${HOST_UID} ${HOST_GID} - -\n"
        b"d    ${STATE_DIRECTORY}/etcd/${NAME}.etcd 0700 ${HOST_UID} ${HOST_GID} - -\n"
        b"Z    ${STATE_DIRECTORY}/etcd/${NAME}.etcd 0700 ${HOST_UID} ${HOST_GID} - -\n"
        b"d    ${RUN_DIRECTORY}/${NAME}             -    -           -           - -\n"),
    "config.json.template": config_template(
        daemon("/var/run/etcd", "/var/lib/etcd"),
        [bind("${STATE_DIRECTORY}/etcd/${NAME}.etcd", "/var/lib/etcd", "rbind", "rw", "mode=755"),
         bind("${RUN_DIRECTORY}/${NAME}", "/var/run/etcd", "rbind", "rw", "mode=755"),
         bind("/etc/resolv.conf", "/etc/resolv.conf", "ro", "rbind", "rprivate"),
         bind("$CONF_DIRECTORY/$NAME", "/etc/etcd/", "rbind", "ro", "rprivate")],
        caps=every_set(["CAP_DAC_READ_SEARCH", "CAP_AUDIT_WRITE", "CAP_KILL",
                        "CAP_NET_BIND_SERVICE"]),
        env=[f"{k}=${k}" for k in ETCD_VARS if k.startswith("ETCD_")],
        addtl_mounts=True, linux={"devices": None, "apparmorProfile": ""}),
    "manifest.json": json.dumps({"version": "1.0", "defaultValues": ETCD_VARS, "renameFiles": {
        "/etc/etcd/etcd.conf": "$CONF_DIRECTORY/$NAME/etcd.conf",
        "/usr/local/bin/etcdctl": "/usr/local/bin/${NAME}ctl"}}).encode(),
    "hostfs/etc/etcd/etcd.conf": b"#ETCD_NAME=default\nETCD_LISTEN_CLIENT_URLS=http://localhost:2379\n",
    "hostfs/usr/local/bin/etcdctl": b"#!/bin/sh\necho etcdctl stand-in\n",
})

BUILDAH = Mirror("buildah-fedora", {
    "config.json.template": config_template(
        ["/bin/sh", "-c", "test -d /var/run/NetworkManager && echo buildah-like: ran once"],
        [bind("/tmp", "/tmp", "private", "bind", "rw", "mode=755"),
         bind("${RUN_DIRECTORY}", "/run", "rshared", "rbind", "rw", "mode=755"),
         bind("${RUN_DIRECTORY}/systemd", "/run/systemd", "rslave", "bind", "rw", "mode=755"),
         bind("/var/log", "/var/log", "rbind", "rslave", "rw"),
         bind("${STATE_DIRECTORY}", "/var/lib", "rbind", "rslave", "rw"),
         {"destination": "/var/tmp", "type": "tmpfs", "source": "tmpfs",
          "options": ["nosuid", "strictatime"]},
         bind("/", "/host", "rbind", "slave", "ro"),
         bind("/root", "/root", "rbind", "slave", "rw"),
         *BASE_MOUNTS[1:4],
         bind("/sys", "/sys", "rprivate", "rbind", "rw", "mode=755"),
         {"source": "/proc", "destination": "/proc", "type": "proc", "options": ["private"]},
         bind("/etc", "/etc", "rbind", "slave", "ro"),
         bind("/var/run/NetworkManager", "/var/run/NetworkManager", "rbind", "slave", "ro")],
        caps=every_set(EVERY_CAP), base=False,
        linux={"rootfsPropagation": "rslave",
               "resources": {"devices": [{"allow": True, "access": "rwm"}]}}),
    "tmpfiles.template": b"d /var/run/NetworkManager - - - - -\n",
}, labels={"atomic.type": "system", "atomic.run": "once"}, cmd=("--help",))


def qemu_guest_agent(name: str, *, hardware: bool) -> Mirror:
    """qemu-guest-agent's features; HARDWARE adds the virtio-serial and redhat-release binds."""
    mounts = [
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
         "options": ["rw", "noexec", "nosuid", "nodev", "size=65536k"]},
        {"destination": "/run", "type": "tmpfs", "source": "tmpfs",
         "options": ["rw", "noexec", "nosuid", "nodev", "size=65536k"]},
        *([bind("/dev/virtio-ports", "/dev/virtio-ports", "rw", "bind")] if hardware else []),
        bind("/", "/host", "rw", "bind"),
        bind("/etc/os-release", "/etc/os-release", "ro", "bind"),
        *([bind("/etc/redhat-release", "/etc/redhat-release", "ro", "bind")] if hardware else []),
        bind("/var/log/qemu-ga", "/var/log/qemu-ga", "rw", "bind"),
        bind("/proc", "/hostproc", "rw", "bind"),
        bind("/dev", "/dev", "rw", "bind"),
    ]
    vports = [{"path": f"/dev/vport2p{i}", "type": "c", "major": 249, "minor": i,
               "fileMode": 8576, "uid": 0, "gid": 0} for i in (1, 2, 3)]
    caps = [c for c in EVERY_CAP if c not in ("CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
                                              "CAP_AUDIT_READ")]
    return Mirror(name, {
        "service.template": unit("QEMU guest agent stand-in",
                                 service_extra="Restart=on-failure\n"),
        "tmpfiles.template": b"d /var/log/qemu-ga - - - - -\nd /var/run - - - - -\n",
        "config.json.template": config_template(
            daemon("/var/log/qemu-ga"), mounts, caps=caps, version="1.0.0-rc3",
            env=["HOST=/host", "container=1"], namespaces=("mount",),
            linux={"resources": {"devices": [{"allow": True, "access": "rwm"}]},
                   "devices": vports}),
    }, labels={}, cmd=("/bin/sh", "-c", "/usr/bin/qemu-ga"),
        why_not="binds /dev/virtio-ports (no virtio-serial device on this machine) and "
                "/etc/redhat-release (Debian has none)" if hardware else "")


QEMU_GA = qemu_guest_agent("qemu-guest-agent", hardware=True)
QEMU_GA_HERE = qemu_guest_agent("qemu-guest-agent-here", hardware=False)

# Not an atomic image: ALL_PROCESS_CAPABILITIES in every set (atomic's variable).
ALLCAPS = Mirror("allcaps", {
    "config.json.template": config_template(
        daemon(), [], caps={k: "@ALL@" for k in ONE_O_CAPS}
    ).replace(b'"@ALL@"', b"[$ALL_PROCESS_CAPABILITIES]"),
})
# Not an atomic image: no /exports, so the default unit.
PLAIN = Mirror("plain", {}, labels={}, cmd=("/bin/sh", "-c", "NAME=plain; " + DAEMON))
