"""Test images that use the /exports features of projectatomic/atomic-system-containers.

Each ``Mirror`` is a busybox image whose /exports exercises what one image of that
repository does: its template variables, bind sources, tmpfiles lines, capability
forms, unit settings, labels and host files. The text is written here; nothing is
copied from that repository. The payload is a busybox shell standing in for the
daemon (it says it serves, keeps a pid file where the real one would, and exits on
SIGTERM). ``build`` writes one into an OCI layout with umoci.

``atomic-system-containers`` has 18 system-container images (plus two base images,
kubernetes-master and kubernetes-node, with no /exports); ``mirrors()`` has one for
each of the 18, by the same name. tests/integration/atomic_survey.py installs each.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from syscontainers import process
from syscontainers.render.values import CAPABILITIES
from tests.imagebuild import MTIME, add_layer, make_busybox_layout

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
# What a Debian host has and a --volatile=yes nspawn host lacks (its /etc is a fresh tmpfs).
DEBIAN_HOST = (
    "test -e /etc/os-release || ln -s ../usr/lib/os-release /etc/os-release; "
    "test -e /etc/resolv.conf || : > /etc/resolv.conf; "
    "mkdir -p /home /opt /mnt /srv /root"
)


def bind(source: str, dest: str, *options: str) -> dict[str, Any]:
    """A bind mount as atomic-era configs wrote them."""
    return {
        "type": "bind",
        "source": source,
        "destination": dest,
        "options": list(options or ("rbind", "rw")),
    }


BASE_MOUNTS: tuple[dict[str, Any], ...] = (
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {
        "destination": "/dev",
        "type": "tmpfs",
        "source": "tmpfs",
        "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
    },
    {
        "destination": "/dev/pts",
        "type": "devpts",
        "source": "devpts",
        "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
    },
    {
        "destination": "/dev/shm",
        "type": "tmpfs",
        "source": "shm",
        "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
    },
    {
        "destination": "/sys",
        "type": "sysfs",
        "source": "sysfs",
        "options": ["nosuid", "noexec", "nodev", "ro"],
    },
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
        "terminal": False,
        "user": {"uid": 0, "gid": 0},
        "args": [a.replace("$", "$$") for a in args],
        "env": ["PATH=/bin:/usr/bin", "NAME=$NAME", *env],
        "cwd": "/",
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
    }
    if caps is not None:
        process_["capabilities"] = caps
    all_mounts = [*(BASE_MOUNTS if base else ()), *mounts]
    if addtl_mounts:
        all_mounts.append(_PLACEHOLDER)
    doc = {
        "ociVersion": version,
        "platform": {"os": "linux", "arch": "amd64"},
        "process": process_,
        "root": {"path": "rootfs", "readonly": True},
        "mounts": all_mounts,
        "linux": {
            "namespaces": [{"type": t} for t in namespaces],
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            **(linux or {}),
        },
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


def unit(
    description: str, *, unit_extra: str = "", service_extra: str = "", install_extra: str = ""
) -> bytes:
    """A service.template in the shape the atomic images use."""
    return (
        f"[Unit]\nDescription={description}\n{unit_extra}\n[Service]\n"
        "ExecStart=$EXEC_START\nExecStop=$EXEC_STOP\n"
        f"WorkingDirectory=$DESTDIR\n{service_extra}\n"
        f"[Install]\nWantedBy=multi-user.target\n{install_extra}"
    ).encode()


@dataclass(frozen=True)
class Mirror:
    """One test image: its /exports files, extra rootfs files, labels and command."""

    name: str
    exports: Mapping[str, bytes]
    labels: Mapping[str, str] = field(default_factory=lambda: {"atomic.type": "system"})
    files: Mapping[str, bytes] = field(default_factory=dict)
    cmd: Sequence[str] = ("/bin/sh", "-c", DAEMON)
    why_not: str = ""  # what keeps the image from running unchanged on these hosts
    empty_dirs: Sequence[str] = ()  # directories with nothing in them (hostfs ones too)
    executables: Mapping[str, bytes] = field(default_factory=dict)  # path -> bytes, mode 0755


def host_binary(path: str) -> dict[str, bytes]:
    """The host's executable PATH and the libraries ldd lists for it, by path in an image."""
    out = {path.lstrip("/"): Path(path).read_bytes()}
    listing = process.run(["ldd", path]).stdout
    for line in listing.splitlines():
        words = line.split()
        lib = words[2] if "=>" in words and len(words) > 2 else words[0] if words else ""
        if lib.startswith("/"):
            out[lib.lstrip("/")] = Path(lib).read_bytes()
            if lib.startswith("/lib/"):
                out["usr" + lib] = out[lib.lstrip("/")]
    return out


def _extra_layer(mirror: Mirror) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        made: set[str] = set()

        def directory(path: str) -> None:
            parts = path.split("/")
            for i in range(1, len(parts) + 1):
                name = "/".join(parts[:i])
                if name not in made:
                    made.add(name)
                    info = tarfile.TarInfo(name)
                    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, MTIME
                    tar.addfile(info)

        for path in mirror.empty_dirs:
            directory(path)
        for path, data in sorted(mirror.executables.items()):
            directory(path.rpartition("/")[0])
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), 0o755, MTIME
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def build(layout: Any, mirror: Mirror) -> str:
    """Write MIRROR into LAYOUT under its name as tag; return that tag."""
    files = {f"exports/{k}": v for k, v in mirror.exports.items()}
    files.update(mirror.files)
    make_busybox_layout(layout, mirror.name, files, cmd=mirror.cmd)
    if mirror.empty_dirs or mirror.executables:
        add_layer(layout, mirror.name, _extra_layer(mirror))
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
    "CONF_DIRECTORY": "/etc",
    "ETCD_NAME": "",
    "ETCD_DATA_DIR": "",
    "ETCD_LISTEN_CLIENT_URLS": "",
    "ETCD_INITIAL_CLUSTER_STATE": "new",
    "ETCD_SNAPSHOT_COUNT": "10000",
    "ETCD_CORS": "",
    "ADDTL_MOUNTS": "",
}
ETCD = Mirror(
    "etcd",
    {
        "service.template": unit(
            "etcd-like store",
            unit_extra="After=network.target\n",
            service_extra="Restart=on-failure\nRuntimeDirectory=${NAME}\n",
        ),
        "tmpfiles.template": (
            b"d    ${STATE_DIRECTORY}/etcd              0700 ${HOST_UID} ${HOST_GID} - -\n"
            b"d    ${STATE_DIRECTORY}/etcd/${NAME}.etcd 0700 ${HOST_UID} ${HOST_GID} - -\n"
            b"Z    ${STATE_DIRECTORY}/etcd/${NAME}.etcd 0700 ${HOST_UID} ${HOST_GID} - -\n"
            b"d    ${RUN_DIRECTORY}/${NAME}             -    -           -           - -\n"
        ),
        "config.json.template": config_template(
            daemon("/var/run/etcd", "/var/lib/etcd"),
            [
                bind(
                    "${STATE_DIRECTORY}/etcd/${NAME}.etcd",
                    "/var/lib/etcd",
                    "rbind",
                    "rw",
                    "mode=755",
                ),
                bind("${RUN_DIRECTORY}/${NAME}", "/var/run/etcd", "rbind", "rw", "mode=755"),
                bind("/etc/resolv.conf", "/etc/resolv.conf", "ro", "rbind", "rprivate"),
                bind("$CONF_DIRECTORY/$NAME", "/etc/etcd/", "rbind", "ro", "rprivate"),
            ],
            caps=every_set(
                ["CAP_DAC_READ_SEARCH", "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
            ),
            env=[f"{k}=${k}" for k in ETCD_VARS if k.startswith("ETCD_")],
            addtl_mounts=True,
            linux={"devices": None, "apparmorProfile": ""},
        ),
        "manifest.json": json.dumps(
            {
                "version": "1.0",
                "defaultValues": ETCD_VARS,
                "renameFiles": {
                    "/etc/etcd/etcd.conf": "$CONF_DIRECTORY/$NAME/etcd.conf",
                    "/usr/local/bin/etcdctl": "/usr/local/bin/${NAME}ctl",
                },
            }
        ).encode(),
        "hostfs/etc/etcd/etcd.conf": b"#ETCD_NAME=default\nETCD_LISTEN_CLIENT_URLS=http://localhost:2379\n",
        "hostfs/usr/local/bin/etcdctl": b"#!/bin/sh\necho etcdctl stand-in\n",
    },
)

BUILDAH = Mirror(
    "buildah-fedora",
    {
        "config.json.template": config_template(
            ["/bin/sh", "-c", "test -d /var/run/NetworkManager && echo buildah-like: ran once"],
            [
                bind("/tmp", "/tmp", "private", "bind", "rw", "mode=755"),
                bind("${RUN_DIRECTORY}", "/run", "rshared", "rbind", "rw", "mode=755"),
                bind(
                    "${RUN_DIRECTORY}/systemd", "/run/systemd", "rslave", "bind", "rw", "mode=755"
                ),
                bind("/var/log", "/var/log", "rbind", "rslave", "rw"),
                bind("${STATE_DIRECTORY}", "/var/lib", "rbind", "rslave", "rw"),
                {
                    "destination": "/var/tmp",
                    "type": "tmpfs",
                    "source": "tmpfs",
                    "options": ["nosuid", "strictatime"],
                },
                bind("/", "/host", "rbind", "slave", "ro"),
                bind("/root", "/root", "rbind", "slave", "rw"),
                *BASE_MOUNTS[1:4],
                bind("/sys", "/sys", "rprivate", "rbind", "rw", "mode=755"),
                {"source": "/proc", "destination": "/proc", "type": "proc", "options": ["private"]},
                bind("/etc", "/etc", "rbind", "slave", "ro"),
                bind("/var/run/NetworkManager", "/var/run/NetworkManager", "rbind", "slave", "ro"),
            ],
            caps=every_set(EVERY_CAP),
            base=False,
            linux={
                "rootfsPropagation": "rslave",
                "resources": {"devices": [{"allow": True, "access": "rwm"}]},
            },
        ),
        "tmpfiles.template": b"d /var/run/NetworkManager - - - - -\n",
    },
    labels={"atomic.type": "system", "atomic.run": "once"},
    cmd=("--help",),
)


def qemu_guest_agent(name: str, *, hardware: bool) -> Mirror:
    """qemu-guest-agent's features; HARDWARE adds the virtio-serial and redhat-release binds."""
    mounts = [
        {
            "destination": "/tmp",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["rw", "noexec", "nosuid", "nodev", "size=65536k"],
        },
        {
            "destination": "/run",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["rw", "noexec", "nosuid", "nodev", "size=65536k"],
        },
        *([bind("/dev/virtio-ports", "/dev/virtio-ports", "rw", "bind")] if hardware else []),
        bind("/", "/host", "rw", "bind"),
        bind("/etc/os-release", "/etc/os-release", "ro", "bind"),
        *([bind("/etc/redhat-release", "/etc/redhat-release", "ro", "bind")] if hardware else []),
        bind("/var/log/qemu-ga", "/var/log/qemu-ga", "rw", "bind"),
        bind("/proc", "/hostproc", "rw", "bind"),
        bind("/dev", "/dev", "rw", "bind"),
    ]
    vports = [
        {
            "path": f"/dev/vport2p{i}",
            "type": "c",
            "major": 249,
            "minor": i,
            "fileMode": 8576,
            "uid": 0,
            "gid": 0,
        }
        for i in (1, 2, 3)
    ]
    caps = [
        c for c in EVERY_CAP if c not in ("CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_AUDIT_READ")
    ]
    return Mirror(
        name,
        {
            "service.template": unit(
                "QEMU guest agent stand-in", service_extra="Restart=on-failure\n"
            ),
            "tmpfiles.template": b"d /var/log/qemu-ga - - - - -\nd /var/run - - - - -\n",
            "config.json.template": config_template(
                daemon("/var/log/qemu-ga"),
                mounts,
                caps=caps,
                version="1.0.0-rc3",
                env=["HOST=/host", "container=1"],
                namespaces=("mount",),
                linux={
                    "resources": {"devices": [{"allow": True, "access": "rwm"}]},
                    "devices": vports,
                },
            ),
        },
        labels={},
        cmd=("/bin/sh", "-c", "/usr/bin/qemu-ga"),
        why_not="binds /dev/virtio-ports (no virtio-serial device on this machine) and "
        "/etc/redhat-release (Debian has none)"
        if hardware
        else "",
    )


QEMU_GA = qemu_guest_agent("qemu-guest-agent", hardware=True)
QEMU_GA_HERE = qemu_guest_agent("qemu-guest-agent-here", hardware=False)

# Not an atomic image: ALL_PROCESS_CAPABILITIES in every set (atomic's variable).
ALLCAPS = Mirror(
    "allcaps",
    {
        "config.json.template": config_template(
            daemon(), [], caps={k: "@ALL@" for k in ONE_O_CAPS}
        ).replace(b'"@ALL@"', b"[$ALL_PROCESS_CAPABILITIES]"),
    },
)
# Not an atomic image: no /exports, so the default unit.
PLAIN = Mirror("plain", {}, labels={}, cmd=("/bin/sh", "-c", "NAME=plain; " + DAEMON))


# --- the other images, for the survey (tests/integration/atomic_survey.py) ---------------------

NOTIFY = "/usr/bin/systemd-notify"  # the host's, with its libraries (busybox has no sd_notify)
NOTIFY_DAEMON = DAEMON.replace("while :;", f"{NOTIFY} --ready; while :;")
STANDARD_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
KUBE_USER = {
    "etc/passwd": b"root:x:0:0:root:/root:/bin/sh\nkube:x:996:994::/:/bin/sh\n",
    "etc/group": b"root:x:0:\nkube:x:994:\n",
}


def notify_daemon(*piddirs: str) -> list[str]:
    """process.args for a daemon that tells systemd it is ready (Type=notify units)."""
    return ["/bin/env", f"PIDDIRS={' '.join(piddirs)}", "/bin/sh", "-c", NOTIFY_DAEMON]


def hello_world() -> Mirror:
    """gscrivano/hello-world: ociVersion 0.3.0 with linux.capabilities, values in env."""
    config = json.loads(
        config_template(daemon(), [], version="0.3.0", env=["PORT=$PORT", "RECEIVER=$RECEIVER"])
    )
    config["linux"]["capabilities"] = STANDARD_CAPS  # where 0.x specs put them
    config["hooks"] = {}
    return Mirror(
        "hello-world",
        {
            "config.json.template": json.dumps(config, indent=1).encode(),
            "manifest.json": b'{"version": "1.0", "defaultValues": {"PORT": "8081", '
            b'"RECEIVER": "World"}}',
            "service.template": unit(
                "Hello World System Container", service_extra="Restart=on-failure\n"
            ),
        },
        labels={"atomic.type": "system", "Foo": "bar"},
    )


def flannel() -> Mirror:
    """flannel: uts namespace and hostname, Type=notify, RequiredBy=$REQUIRED_BY, D and r
    tmpfiles lines, a host file and an empty host directory bound in, network-online."""
    script = (
        'echo "[Service]" > /etc/systemd/system/docker.service.d/$NAME.conf; '
        "touch /run/flannel/subnet.env; "
    )
    config = json.loads(
        config_template(
            ["/bin/sh", "-c", script + NOTIFY_DAEMON],
            [
                bind("/dev", "/dev", "rbind", "rw", "mode=755"),
                bind(
                    "/etc/systemd/system/docker.service.d", "/etc/systemd/system/docker.service.d"
                ),
                bind("${RUN_DIRECTORY}/${NAME}", "/run/flannel", "rw", "rbind", "rprivate"),
                bind("/etc/resolv.conf", "/etc/resolv.conf", "ro", "rbind", "rprivate"),
                bind(
                    "/etc/sysconfig/flanneld", "/etc/sysconfig/flanneld", "rw", "rbind", "rprivate"
                ),
                bind("/etc/flanneld", "/etc/flanneld", "rw", "rbind", "rprivate"),
            ],
            caps=every_set(["CAP_DAC_READ_SEARCH", *STANDARD_CAPS, "CAP_NET_ADMIN"]),
            env=[
                "FLANNELD_ETCD_PREFIX=$FLANNELD_ETCD_PREFIX",
                "FLANNELD_ETCD_ENDPOINTS=$FLANNELD_ETCD_ENDPOINTS",
            ],
            namespaces=("ipc", "uts", "mount"),
            linux={
                "resources": {"devices": [{"allow": True, "access": "rwm"}]},
                "maskedPaths": ["/proc/kcore"],
                "readonlyPaths": ["/proc/bus"],
            },
        )
    )
    config["hostname"] = "flannel"
    config["process"]["noNewPrivileges"] = False
    return Mirror(
        "flannel",
        {
            "config.json.template": json.dumps(config, indent=1).encode(),
            "manifest.json": json.dumps(
                {
                    "version": "1.0",
                    "defaultValues": {
                        "FLANNELD_ETCD_PREFIX": "/atomic.io/network",
                        "FLANNELD_ETCD_ENDPOINTS": "http://127.0.0.1:2379",
                        "AFTER": "etcd.service",
                        "REQUIRED_BY": "docker.service",
                    },
                }
            ).encode(),
            "service.template": unit(
                "flanneld stand-in",
                unit_extra="After=network.target\nAfter=network-online.target\n"
                "Wants=network-online.target\nAfter=$AFTER\nBefore=docker.service\n",
                service_extra="Type=notify\nNotifyAccess=all\n"
                "ExecStopPost=/bin/rm /etc/systemd/system/docker.service.d/$NAME.conf\n"
                "Restart=on-failure\nRuntimeDirectory=${NAME}\n",
                install_extra="RequiredBy=$REQUIRED_BY\n",
            ),
            "tmpfiles.template": b"D    ${RUN_DIRECTORY}/${NAME}   - - - - -\n"
            b"d    /etc/systemd/system/docker.service.d - - - - -\n"
            b"r    /etc/systemd/system/docker.service.d/$NAME.conf - - - - -\n",
            "hostfs/etc/sysconfig/flanneld": b'FLANNEL_ETCD_ENDPOINTS="http://127.0.0.1:2379"\n',
        },
        executables=host_binary(NOTIFY),
        empty_dirs=("exports/hostfs/etc/flanneld",),
    )


def net_snmp() -> Mirror:
    """net-snmp: every capability by hand, the host's /dev, /sys, /home and /root, host files
    and an empty host directory bound in, Type=notify, an empty tmpfiles.template."""
    mounts = [
        bind("/dev", "/dev", "rbind", "rw", "mode=755"),
        bind("/dev/log", "/dev/log", "rbind", "rw", "mode=755"),
        *BASE_MOUNTS[2:4],
        bind("/sys", "/sys", "rbind", "rw", "mode=755"),
        *(
            bind(p, p, "rbind", "rw", "mode=755")
            for p in (
                "/home",
                "/root",
                "/etc/snmp",
                "/etc/sysconfig/snmpd",
                "/etc/sysconfig/snmptrapd",
                "/var/lib/net-snmp",
            )
        ),
        bind("${RUN_DIRECTORY}/${NAME}", "/var/run/net-snmp", "rbind", "rw", "mode=755"),
        bind("/etc/resolv.conf", "/etc/resolv.conf", "ro", "rbind", "rprivate"),
    ]
    config = json.loads(
        config_template(
            notify_daemon("/var/run/net-snmp"),
            [{"destination": "/proc", "type": "proc", "source": "proc"}, *mounts],
            caps=every_set(EVERY_CAP),
            namespaces=("mount",),
            base=False,
            linux={"resources": {"devices": [{"allow": True, "access": "rwm"}]}},
        )
    )
    config["process"]["noNewPrivileges"] = False
    return Mirror(
        "net-snmp",
        {
            "config.json.template": json.dumps(config, indent=1).encode(),
            "manifest.json": b'{"version": "1.0"}\n',
            "service.template": unit(
                "net-snmp stand-in",
                unit_extra="After=syslog.target network.target\n",
                service_extra="Type=notify\nNotifyAccess=all\n"
                "Restart=on-failure\nRuntimeDirectory=${NAME}\n",
            ),
            "tmpfiles.template": b"",
            "hostfs/etc/sysconfig/snmpd": b'OPTIONS="-LS0-6d"\n',
            "hostfs/etc/sysconfig/snmptrapd": b'OPTIONS="-Lsd"\n',
            "hostfs/etc/snmp/snmpd.conf": b"rocommunity public localhost\n",
            "hostfs/etc/snmp/snmptrapd.conf": b"# traps\n",
        },
        executables=host_binary(NOTIFY),
        empty_dirs=("exports/hostfs/var/lib/net-snmp",),
    )


def azure() -> Mirror:
    """azure (WALinuxAgent): only a service.template, which runs the host's python on the
    host's waagent in the deployment's rootfs; network-online and RuntimeDirectory."""
    return Mirror(
        "azure",
        {
            "service.template": (
                b"[Unit]\nDescription=WALA Agent\n"
                b"Wants=network-online.target sshd.service sshd-keygen.service\n"
                b"After=network-online.target\n\n[Service]\n"
                b"ExecStart=/usr/bin/python -u /usr/sbin/waagent -daemon\n"
                b"Restart=always\nRestartSec=5\nWorkingDirectory=${DESTDIR}/rootfs\n"
                b"RuntimeDirectory=${NAME}\n\n[Install]\nWantedBy=multi-user.target\n"
            )
        },
        why_not="its unit runs the host's /usr/bin/python and /usr/sbin/waagent "
        "(WALinuxAgent), which Debian 12 does not have at those paths",
    )


def docker(name: str, *, fedora: bool, modules: bool = True) -> Mirror:
    """docker-centos and docker-fedora: SELinux labels, the host's /, /etc, /dev, /sys and
    more bound in, rootfsPropagation, Type=notify with TimeoutStartSec=0, $ADDTL_MOUNTS."""
    mounts = [
        bind("/tmp", "/tmp", "rbind", "rw"),
        bind("/etc", "/etc", "rbind", "rw"),
        *([bind("/lib/modules", "/lib/modules", "rbind", "ro")] if modules else []),
        *(bind(p, p, "rbind", "rw") for p in ("/root", "/home", "/opt", "/mnt")),
        bind("${RUN_DIRECTORY}", "/run", "rshared", "rbind", "rw"),
        *([bind("/run/systemd", "/run/systemd", "rbind", "rslave")] if fedora else []),
        bind("/var/log", "/var/log", "rbind", "rw"),
        bind("${STATE_DIRECTORY}", "/var/lib", "rshared", "rbind", "rw"),
        bind("/dev", "/dev", "rbind", "rw"),
        bind("/", "/host", "rslave", "rbind", "rw"),
        bind("/sys", "/sys", "rbind", "rw"),
        {"destination": "/proc", "type": "proc", "source": "proc"},
    ]
    config = json.loads(
        config_template(
            notify_daemon("/var/lib/docker"),
            mounts,
            caps=every_set(EVERY_CAP),
            namespaces=("mount",),
            base=False,
            addtl_mounts=False,
            linux={
                "rootfsPropagation": "shared",
                "resources": {"devices": [{"allow": True, "access": "rwm"}]},
            },
        )
    )
    config["process"]["selinuxLabel"] = "system_u:system_r:container_runtime_t:s0"
    text = json.dumps(config, indent=1)
    text = text.replace(
        '"destination": "/proc",\n   "type": "proc",\n   "source": "proc"\n  }',
        '"destination": "/proc",\n   "type": "proc",\n   "source": "proc"\n  }\n  $ADDTL_MOUNTS',
        1,
    )
    pre = "ExecStartPre=/bin/sh $DESTDIR/rootfs/set_mounts.sh\n" if fedora else ""
    service = unit(
        "Docker stand-in",
        unit_extra="After=network.target\n",
        service_extra=(
            "EnvironmentFile=-/etc/sysconfig/docker-storage\n"
            "EnvironmentFile=-/etc/sysconfig/docker-network\nEnvironment=GOTRACEBACK=crash\n"
            "SELinuxContext=system_u:system_r:container_runtime_t:s0\n"
            + pre
            + "ExecStartPre=/bin/bash -c 'export -p > /run/docker-bash-env'\n"
            + ("" if fedora else "RuntimeDirectory=docker\n")
            + "Restart=on-failure\nLimitNOFILE=1048576\nLimitNPROC=1048576\nLimitCORE=infinity\n"
            "TimeoutStartSec=0\nType=notify\nNotifyAccess=all\n"
        ),
    )
    files = {
        **(
            {
                "set_mounts.sh": (
                    b"#!/bin/sh\nmount --make-shared /run\nfindmnt /run/systemd > /dev/null || "
                    b"mount --bind --make-rslave /run/systemd /run/systemd\n"
                )
            }
            if fedora
            else {}
        )
    }
    return Mirror(
        name,
        {
            "config.json.template": text.encode(),
            "manifest.json": b'{"version": "1.0", "defaultValues": {"ADDTL_MOUNTS": ""}}',
            "service.template": service,
            "tmpfiles.template": b"d /var/lib/docker - - - - -\n"
            + (
                b"d /var/run/docker - - - - -\nd /var/run/containerd - - - - -\n" if fedora else b""
            ),
            "hostfs/etc/docker/container-daemon.json": b'{"default-runtime": "oci"}\n',
        },
        files=files,
        executables=host_binary(NOTIFY),
        why_not=""
        if not modules
        else (
            "binds /lib/modules, which this machine lacks (its kernel has no modules; "
            "Debian has the directory)"
        ),
    )


def kube(
    name: str,
    *,
    user: Mapping[str, int] | None,
    caps: Sequence[str],
    mounts: Sequence[dict[str, Any]],
    hostfs: Mapping[str, bytes],
    empty_dirs: Sequence[str] = (),
    tmpfiles: bytes | None = None,
    unit_extra: str = "",
    service_extra: str = "Restart=on-failure\n",
    namespaces: Sequence[str] = ("pid", "ipc", "mount"),
    addtl: bool = False,
) -> Mirror:
    """One of the kubernetes images: the shape they share, with what differs given."""
    config = json.loads(
        config_template(
            daemon(),
            mounts,
            caps=every_set(caps),
            namespaces=namespaces,
            linux={"devices": [], "apparmorProfile": ""},
        )
    )
    config["process"]["user"] = dict(user) if user is not None else {}
    text = json.dumps(config, indent=1)
    if addtl:
        text = text.replace('\n ],\n "linux"', '\n  $ADDTL_MOUNTS\n ],\n "linux"', 1)
    exports = {
        "config.json.template": text.encode(),
        "service.template": unit(name, unit_extra=unit_extra, service_extra=service_extra),
        **{f"hostfs/{k}": v for k, v in hostfs.items()},
    }
    if tmpfiles is not None:
        exports["tmpfiles.template"] = tmpfiles
    if addtl:
        exports["manifest.json"] = b'{"version": "1.0", "defaultValues": {"ADDTL_MOUNTS": ""}}'
    return Mirror(
        name, exports, files=KUBE_USER, empty_dirs=tuple(f"exports/hostfs/{d}" for d in empty_dirs)
    )


KUBE_CONFIG = {"etc/kubernetes/config": b'KUBE_LOGTOSTDERR="--logtostderr=true"\n'}
KUBE = {"uid": 996, "gid": 994}
KUBECTL = {"usr/local/bin/kubectl": b"#!/bin/sh\necho kubectl stand-in\n"}
RESOLV = bind("/etc/resolv.conf", "/etc/resolv.conf", "ro", "rbind", "rprivate")
FOUR_CAPS = ["CAP_DAC_READ_SEARCH", *STANDARD_CAPS]
KUBE_TMPFS = {
    "destination": "/run",
    "type": "tmpfs",
    "source": "tmpfs",
    "options": ["nosuid", "nodev", "mode=755"],
}


def kube_mirrors() -> list[Mirror]:
    """kubeadm and the kubernetes-* images."""
    etc_kube = bind("/etc/kubernetes", "/etc/kubernetes", "rbind", "ro", "rprivate")
    return [
        kube(
            "kubeadm",
            user=None,
            caps=EVERY_CAP[:37],
            namespaces=("mount",),
            mounts=[
                bind("/dev", "/dev"),
                etc_kube,
                RESOLV,
                bind("/", "/rootfs", "rbind", "ro"),
                bind("/var/run/", "/var/run/"),
                bind("/run", "/run"),
                bind("/var/lib", "/var/lib"),
                bind("/var/lib/kubelet", "/var/lib/kubelet", "rbind", "rshared"),
                bind("/var/log", "/var/log"),
                bind("/etc/cni", "/etc/cni"),
            ],
            hostfs={
                **KUBECTL,
                "usr/local/bin/kubeadm": b"#!/bin/sh\necho kubeadm\n",
                "etc/kubernetes/kubeadm-env": b'KUBELET_KUBECONFIG_ARGS=""\n',
            },
            empty_dirs=("etc/cni", "etc/kubernetes/pki"),
            unit_extra="After=docker.service\n",
            service_extra="Restart=always\nStartLimitInterval=0\nRestartSec=10\n",
        ),
        kube(
            "kubernetes-apiserver",
            user=KUBE,
            caps=FOUR_CAPS,
            mounts=[
                KUBE_TMPFS,
                etc_kube,
                RESOLV,
                bind("/var/run/kubernetes", "/var/run/kubernetes"),
            ],
            hostfs={**KUBECTL, **KUBE_CONFIG, "etc/kubernetes/apiserver": b"KUBE_API_ARGS=\n"},
        ),
        kube(
            "kubernetes-controller-manager",
            user=KUBE,
            caps=FOUR_CAPS,
            mounts=[KUBE_TMPFS, etc_kube, RESOLV],
            hostfs={**KUBE_CONFIG, "etc/kubernetes/controller-manager": b"ARGS=\n"},
        ),
        kube(
            "kubernetes-scheduler",
            user=KUBE,
            caps=FOUR_CAPS,
            mounts=[KUBE_TMPFS, etc_kube, RESOLV],
            hostfs={**KUBE_CONFIG, "etc/kubernetes/scheduler": b"ARGS=\n"},
        ),
        kube(
            "kubernetes-proxy",
            user={"uid": 0, "gid": 0},
            caps=EVERY_CAP[:37],
            mounts=[etc_kube, RESOLV, bind("/run", "/run")],
            hostfs={**KUBE_CONFIG, "etc/kubernetes/proxy": b"KUBE_PROXY_ARGS=\n"},
        ),
        kube(
            "kubernetes-kubelet",
            user=None,
            caps=EVERY_CAP[:37],
            namespaces=("mount",),
            mounts=[
                bind("/dev", "/dev"),
                bind("/sys", "/sys"),
                bind("/etc/cni/net.d", "/etc/cni/net.d"),
                etc_kube,
                bind("/etc/localtime", "/etc/localtime", "rbind", "ro"),
                bind("/etc/pki", "/etc/pki", "rbind", "ro"),
                RESOLV,
                bind("/", "/rootfs", "rbind", "ro"),
                bind("/var/run/secrets", "/var/run/secrets"),
                bind("${RUN_DIRECTORY}", "/run"),
                bind("${STATE_DIRECTORY}", "/var/lib"),
                bind("${STATE_DIRECTORY}/kubelet", "/var/lib/kubelet", "rbind", "rshared"),
                bind("/var/log", "/var/log"),
            ],
            hostfs={**KUBE_CONFIG, "etc/kubernetes/kubelet": b"KUBELET_ARGS=\n"},
            empty_dirs=("etc/cni/net.d",),
            addtl=True,
            tmpfiles=b"d ${STATE_DIRECTORY}/kubelet - - - - -\nd /var/lib/cni - - - - -\n"
            b"d /var/run/secrets - - - - -\n",
            unit_extra="After=docker.service\n",
        ),
    ]


def open_vm_tools() -> Mirror:
    """open-vm-tools-centos: ConditionVirtualization=vmware, an empty process.user, and many
    host files bound in, some of which only Fedora/CentOS or VMware guests have."""
    sources = [
        "/run/systemd",
        "/etc/adjtime",
        "/etc/hosts",
        "/tmp",
        "/etc/sysconfig",
        "/etc/resolv.conf",
        "/etc/shadow",
        "/etc/hostname",
        "/sysroot",
        "/etc/passwd",
        "/usr/share/zoneinfo",
        "/var/lib/sss/pipes",
        "/etc/nsswitch.conf",
        "/var/log",
    ]
    mounts = [
        *(bind(p, p, "rw", "rbind", "rprivate") for p in sources),
        bind("/proc", "/hostproc", "rw", "rbind", "rprivate"),
        bind("/", "/host", "rw", "rbind", "rprivate"),
        bind("/dev/rtc", "/dev/rtc", "rw", "rbind"),
        *BASE_MOUNTS,
    ]
    config = json.loads(
        config_template(
            daemon(),
            mounts,
            caps=every_set(EVERY_CAP[:37]),
            namespaces=("ipc", "mount"),
            base=False,
        )
    )
    config["process"]["user"] = {}
    return Mirror(
        "open-vm-tools-centos",
        {
            "config.json.template": json.dumps(config, indent=1).encode(),
            "service.template": unit(
                "open-vm-tools stand-in", unit_extra="ConditionVirtualization=vmware\n"
            ),
        },
        labels={},
        why_not="ConditionVirtualization=vmware: this machine is not a VMware guest; "
        "it also binds /dev/rtc (no RTC here) and /sysroot, /etc/sysconfig, "
        "/var/lib/sss/pipes (not on Debian), made as empty directories",
    )


def ovirt(name: str) -> Mirror:
    """ovirt-guest-agent-centos/-fedora: 1.0.0-rc3 with object capabilities, virtio-serial."""
    mirror = qemu_guest_agent(name, hardware=True)
    text = mirror.exports["config.json.template"].decode()
    caps = json.loads(text.replace("$$", "$"))["process"]["capabilities"]
    doc = json.loads(text)
    doc["process"]["capabilities"] = every_set(caps)
    for m in doc["mounts"]:
        if m.get("source") == "/etc/redhat-release":
            m["destination"] = "/etc-redhat-release"
        if m.get("source") == "/var/log/qemu-ga":
            m["source"] = m["destination"] = "/var/log/ovirt-guest-agent"
    doc["mounts"] = [m for m in doc["mounts"] if m.get("source") != "/etc/os-release"]
    doc["process"]["args"] = [
        a.replace("qemu-ga", "ovirt-guest-agent") for a in doc["process"]["args"]
    ]
    return Mirror(
        name,
        {
            "config.json.template": json.dumps(doc, indent=1).encode(),
            "service.template": unit(
                "oVirt guest agent stand-in", service_extra="Restart=on-failure\n"
            ),
            "tmpfiles.template": b"d /var/log/ovirt-guest-agent - - - - -\n",
        },
        labels={},
        why_not=mirror.why_not,
    )


def mirrors() -> list[Mirror]:
    """One mirror per system-container image of atomic-system-containers, by name."""
    return [
        azure(),
        BUILDAH,
        docker("docker-centos", fedora=False),
        docker("docker-fedora", fedora=True),
        ETCD,
        flannel(),
        hello_world(),
        *kube_mirrors(),
        net_snmp(),
        open_vm_tools(),
        ovirt("ovirt-guest-agent-centos"),
        ovirt("ovirt-guest-agent-fedora"),
        QEMU_GA,
    ]


def here() -> list[Mirror]:
    """Variants without what this machine lacks, to try the rest of those images' features."""
    return [
        docker("docker-centos-here", fedora=False, modules=False),
        docker("docker-fedora-here", fedora=True, modules=False),
        QEMU_GA_HERE,
    ]
