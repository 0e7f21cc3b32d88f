"""Shared inputs for the render tests: an etcd-like image, fixed host facts, golden files."""

from __future__ import annotations

import json
import os
from pathlib import Path

from syscontainers.oci import ImageConfig
from syscontainers.render import (
    Exports,
    HostFacts,
    RuntimeCommands,
    Values,
    compute_values,
    parse_exports,
)
from syscontainers.runtime import Runtime, runtime_commands

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "render"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"

FACTS = HostFacts(
    uid=0,
    gid=0,
    cap_last_cap=40,
    runtime="/usr/sbin/runc",
    uuid="6f1c2a4e-1b7d-4c1e-9a57-0d2f3c4b5a69",
)


def foreground(name: str) -> RuntimeCommands:
    """The foreground-mode command lines syscontainers.runtime builds for runc."""
    return runtime_commands(Runtime("/usr/sbin/runc"), name)


FOREGROUND = foreground("etcd")
# The linux.cgroupsPath an install asks for (syscontainers.runtime.service_cgroup).
ETCD_CGROUP = "/system.slice/etcd.service/container"
WEB_CGROUP = "/system.slice/web.service/container"

ETCD_SERVICE = """\
[Unit]
Description=Etcd Server
After=network.target

[Service]
ExecStart=$EXEC_START
ExecStop=$EXEC_STOP
Restart=on-failure
WorkingDirectory=$DESTDIR
RuntimeDirectory=${NAME}
Environment=COST=$$5

[Install]
WantedBy=multi-user.target
"""

ETCD_TMPFILES = """\
d    ${STATE_DIRECTORY}/etcd                0700 ${HOST_UID} ${HOST_GID} - -
d    ${STATE_DIRECTORY}/etcd/${NAME}.etcd   0700 ${HOST_UID} ${HOST_GID} - -
Z    ${STATE_DIRECTORY}/etcd/${NAME}.etcd   0700 ${HOST_UID} ${HOST_GID} - -
d    ${RUN_DIRECTORY}/${NAME}               -        -           -       - -
"""

ETCD_CONFIG = """\
{
    "ociVersion": "1.0.0",
    "process": {
        "terminal": false,
        "user": {"uid": 0, "gid": 0},
        "args": ["/usr/bin/etcd-env.sh", "/usr/bin/etcd"],
        "env": [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "NAME=$NAME",
            "ETCD_NAME=$ETCD_NAME",
            "ETCD_DATA_DIR=$ETCD_DATA_DIR",
            "ETCD_INITIAL_CLUSTER_STATE=$ETCD_INITIAL_CLUSTER_STATE"
        ],
        "cwd": "/",
        "capabilities": {
            "bounding": [${ALL_PROCESS_CAPABILITIES}],
            "permitted": ["CAP_NET_BIND_SERVICE"],
            "effective": ["CAP_NET_BIND_SERVICE"]
        },
        "noNewPrivileges": true
    },
    "root": {"path": "rootfs", "readonly": true},
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"type": "bind", "source": "${STATE_DIRECTORY}/etcd/${NAME}.etcd",
         "destination": "/var/lib/etcd", "options": ["rbind", "rw", "mode=755"]},
        {"type": "bind", "source": "${RUN_DIRECTORY}/${NAME}",
         "destination": "/var/run/etcd", "options": ["rbind", "rw", "mode=755"]},
        {"type": "bind", "source": "/etc/resolv.conf",
         "destination": "/etc/resolv.conf", "options": ["rbind", "ro"]},
        {"type": "bind", "source": "$CONF_DIRECTORY/$NAME",
         "destination": "/etc/etcd/", "options": ["rbind", "ro", "rprivate"]}
        $ADDTL_MOUNTS
    ],
    "linux": {
        "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "mount"}]
    }
}
"""

ETCD_MANIFEST = {
    "version": "1.0",
    "defaultValues": {
        "CONF_DIRECTORY": "/etc",
        "ETCD_NAME": "default",
        "ETCD_DATA_DIR": "/var/lib/etcd/default.etcd",
        "ETCD_INITIAL_CLUSTER_STATE": "new",
        "ADDTL_MOUNTS": "",
    },
    "renameFiles": {
        "/etc/etcd/etcd.conf": "$CONF_DIRECTORY/$NAME/etcd.conf",
        "/usr/local/bin/etcdctl": "/usr/local/bin/${NAME}ctl",
    },
}

ADDTL_MOUNTS = (
    ',{"type":"bind","source":"/srv/certs","destination":"/etc/pki/etcd","options":["rbind","ro"]}'
)


def etcd_files() -> dict[str, bytes]:
    """The /exports files of the etcd-like image."""
    return {
        "service.template": ETCD_SERVICE.encode(),
        "tmpfiles.template": ETCD_TMPFILES.encode(),
        "config.json.template": ETCD_CONFIG.encode(),
        "manifest.json": json.dumps(ETCD_MANIFEST).encode(),
        "hostfs/etc/etcd/etcd.conf": b"ETCD_NAME=default\n",
        "hostfs/usr/local/bin/etcdctl": b"\x7fELF...",
    }


def etcd_exports() -> Exports:
    """The etcd-like image's Exports."""
    return parse_exports(etcd_files())


def image_config(**fields: object) -> ImageConfig:
    """An ImageConfig with no layers and the given fields."""
    return ImageConfig(diff_ids=(), **fields)  # type: ignore[arg-type]


def values_for(
    exports: Exports,
    sets: dict[str, str] | None = None,
    name: str = "etcd",
    commands: RuntimeCommands | None = None,
) -> Values:
    """Deterministic values for NAME.0 of the image."""
    return compute_values(
        name=name,
        image_name="docker://registry.example/etcd:3.5",
        image_id="sha256:" + "ab" * 32,
        destdir=f"/var/lib/syscontainers/containers/{name}.0",
        sets=sets or {},
        defaults=dict(exports.manifest.default_values),
        facts=FACTS,
        commands=commands or foreground(name),
    )


def assert_golden(name: str, text: str | bytes) -> None:
    """Compare TEXT with tests/golden/render/NAME; UPDATE_GOLDEN=1 rewrites the file."""
    data = text.encode() if isinstance(text, str) else text
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return
    assert path.exists(), f"{path} is missing; run with UPDATE_GOLDEN=1 to create it"
    assert data.decode() == path.read_text(), f"{name} differs from its golden file"
