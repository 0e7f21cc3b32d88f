"""The OCI runtime config.json: rendered from the image's template, used verbatim, or generated.

Generated configs follow `runc spec` with these deliberate differences, all
because a system container is a host service run by systemd:
- no network or UTS namespace: the service uses the host's network and hostname
  (there is no CNI here; a private network namespace would have only loopback);
- read-only root, no terminal, and args/env/cwd/user from the image config;
- tmpfs on /run, /tmp and /var/tmp, since the root is read-only;
- the host's /etc/resolv.conf and /etc/hosts bound read-only when they exist;
- each image VOLUME bound from $STATE_DIRECTORY/$NAME/<path>, so data persists;
- no rlimits: the unit's Limit*= settings apply.

What the host grants (see render.grants): a pre-1.0 capability list
(``process.capabilities``, or the 0.x specs' ``linux.capabilities``) is upgraded
to the 1.0 object at ``process.capabilities``, and capabilities the
host's bounding set lacks, and SELinux labels on a host without SELinux, are
left out, with the config rewritten.

Every config, generated or from the image, gets the ``linux.cgroupsPath`` the
installer asks for (syscontainers.runtime.service_cgroup: a cgroup inside the
service's own) unless the image sets one itself, so that systemd accounts for
the container and kills it with its unit. A config that gains one is written
back as indented JSON rather than as the image's text. Because ``runc run``
itself stays in the unit's cgroup, runc cannot enable cgroup controllers below
it: resource limits belong in the unit (MemoryMax=, TasksMax=, ...), where
they cover the container too, not in config.json's linux.resources.
"""

from __future__ import annotations

import copy
import json
import posixpath
from collections.abc import Callable, Mapping
from typing import Any

from syscontainers.errors import TemplateError
from syscontainers.oci import ImageConfig
from syscontainers.record import record
from syscontainers.render import grants
from syscontainers.render.exports import Exports, Syntax, TemplateSource
from syscontainers.render.templates import render_text

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_CAPS = ("CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE")
HOST_FILES = ("/etc/resolv.conf", "/etc/hosts")
_NOEXEC = ["nosuid", "noexec", "nodev"]
RUNC_MOUNTS: tuple[dict[str, Any], ...] = (
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
        "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
    },
    {
        "destination": "/dev/shm",
        "type": "tmpfs",
        "source": "shm",
        "options": [*_NOEXEC, "mode=1777", "size=65536k"],
    },
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": _NOEXEC},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": [*_NOEXEC, "ro"]},
    {
        "destination": "/sys/fs/cgroup",
        "type": "cgroup",
        "source": "cgroup",
        "options": [*_NOEXEC, "relatime", "ro"],
    },
)
TMPFS_DIRS = ("/run", "/tmp", "/var/tmp")
MASKED_PATHS = (
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
NAMESPACES = ("pid", "ipc", "mount")


@record
class UserDB:
    """The users and groups of an image's /etc/passwd and /etc/group."""

    users: tuple[tuple[str, int, int], ...] = ()  # (name, uid, gid)
    groups: tuple[tuple[str, int], ...] = ()  # (name, gid)


@record
class MissingSource:
    """A bind-mount source that does not exist on the host, and who should own it."""

    path: str
    uid: str
    gid: str


@record
class RenderedConfig:
    """The config.json bytes, the parsed document, its missing bind sources, and what it
    asked for that the host cannot grant (left out: capability names, SELinux label keys)."""

    data: bytes
    document: dict[str, Any]
    missing_sources: tuple[MissingSource, ...]
    withheld: tuple[str, ...] = ()


def _colon_file(text: str, fields: int) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) >= fields and parts[0] and not line.startswith("#"):
            rows.append(parts)
    return rows


def parse_user_db(passwd: str, group: str) -> UserDB:
    """Parse /etc/passwd and /etc/group text, skipping malformed lines."""
    users = [
        (p[0], int(p[2]), int(p[3]))
        for p in _colon_file(passwd, 4)
        if p[2].isdigit() and p[3].isdigit()
    ]
    groups = [(g[0], int(g[2])) for g in _colon_file(group, 3) if g[2].isdigit()]
    return UserDB(tuple(users), tuple(groups))


def _user_error(spec: str, detail: str) -> TemplateError:
    return TemplateError(
        f"image config User {spec!r}: {detail}",
        hint="use a numeric uid[:gid] in the image, or add the user to its /etc/passwd",
    )


def resolve_user(spec: str, db: UserDB) -> tuple[int, int]:
    """The uid and gid for an image config User (uid, name, uid:gid, name:group)."""
    if not spec:
        return 0, 0
    user, _, group = spec.partition(":")
    by_name = {name: (uid, gid) for name, uid, gid in db.users}
    by_uid = {uid: gid for _, uid, gid in reversed(db.users)}
    if user.isdigit():
        uid, gid = int(user), by_uid.get(int(user), 0)
    elif user in by_name:
        uid, gid = by_name[user]
    else:
        raise _user_error(spec, f"user {user!r} is not in the image's /etc/passwd")
    if group.isdigit():
        gid = int(group)
    elif group:
        groups = dict(db.groups)
        if group not in groups:
            raise _user_error(spec, f"group {group!r} is not in the image's /etc/group")
        gid = groups[group]
    return uid, gid


def _volume_mounts(image: ImageConfig, values: Mapping[str, str]) -> list[dict[str, Any]]:
    mounts = []
    for volume in image.volumes:
        dest = posixpath.normpath(volume)
        if not dest.startswith("/") or dest == "/" or ".." in dest.split("/"):
            raise TemplateError(
                f"image config Volume {volume!r} is not an absolute path",
                hint="the image's config is malformed; tell the image's author",
            )
        source = f"{values['STATE_DIRECTORY']}/{values['NAME']}{dest}"
        mounts.append(
            {"destination": dest, "type": "bind", "source": source, "options": ["rbind", "rw"]}
        )
    return mounts


def generate_config(
    image: ImageConfig, values: Mapping[str, str], users: UserDB, exists: Callable[[str], bool]
) -> dict[str, Any]:
    """A complete OCI runtime spec for an image that ships no config (see module docstring)."""
    args = [*image.entrypoint, *image.cmd]
    if not args:
        raise TemplateError(
            "the image has no Entrypoint or Cmd and no /exports/config.json*",
            hint="add an ENTRYPOINT or CMD to the image, or ship /exports/config.json.template",
        )
    env = list(image.env)
    if not any(e.startswith("PATH=") for e in env):
        env.insert(0, DEFAULT_PATH)
    uid, gid = resolve_user(image.user, users)
    tmpfs = [
        {"destination": d, "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]}
        for d in TMPFS_DIRS
    ]
    host_binds = [
        {"destination": f, "type": "bind", "source": f, "options": ["rbind", "ro", "rprivate"]}
        for f in HOST_FILES
        if exists(f)
    ]
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": uid, "gid": gid},
            "args": args,
            "env": env,
            "cwd": image.working_dir or "/",
            "capabilities": {
                k: list(DEFAULT_CAPS) for k in ("bounding", "effective", "permitted", "ambient")
            },
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "mounts": [
            *copy.deepcopy(RUNC_MOUNTS),
            *tmpfs,
            *host_binds,
            *_volume_mounts(image, values),
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in NAMESPACES],
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
        },
    }


def _config_error(name: str, detail: str, hint: str) -> TemplateError:
    return TemplateError(f"{name}: {detail}", hint=hint)


def parse_config_text(source: TemplateSource, text: str) -> dict[str, Any]:
    """Parse a rendered config, naming the file, line and text where the JSON breaks."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        lines = text.splitlines() or [""]
        bad = lines[min(e.lineno, len(lines)) - 1].strip()[:120]
        hint = (
            "fix config.json in the image"
            if source.syntax is Syntax.VERBATIM
            else "--set-raw values are inserted exactly as given: check those used in this "
            "file, or use config.json.j2 with the tojson filter"
        )
        raise _config_error(
            f"/exports/{source.name}",
            f"not valid JSON after rendering, line {e.lineno} column {e.colno}: {e.msg}: {bad!r}",
            hint,
        ) from e
    if not isinstance(doc, dict):
        raise _config_error(
            f"/exports/{source.name}", "must be a JSON object", "fix the template in the image"
        )
    return doc


def validate_config(doc: Mapping[str, Any], name: str) -> None:
    """Check what a system container needs: a read-only root at 'rootfs' and no terminal."""
    root = doc.get("root")
    if not isinstance(root, dict) or root.get("path") != "rootfs":
        raise _config_error(name, 'root.path must be "rootfs"', "fix the image's config")
    if root.get("readonly") is not True:
        raise _config_error(
            name,
            "root.readonly must be true",
            "the rootfs is hard-linked from the shared store, so a writable root would "
            "corrupt other images; write to bind mounts or tmpfs instead",
        )
    process = doc.get("process")
    if isinstance(process, dict) and process.get("terminal") is True:
        raise _config_error(name, "process.terminal must be false", "a service has no terminal")
    if not isinstance(doc.get("mounts", []), list):
        raise _config_error(name, "mounts must be a list", "fix the image's config")


def bind_sources(doc: Mapping[str, Any]) -> list[str]:
    """The absolute host sources of the bind mounts in a config, in order, once each."""
    out: list[str] = []
    for mount in doc.get("mounts", []):
        if not isinstance(mount, dict):
            continue
        options = mount.get("options") or []
        is_bind = mount.get("type") == "bind" or "bind" in options or "rbind" in options
        source = mount.get("source")
        if is_bind and isinstance(source, str) and source.startswith("/") and source not in out:
            out.append(source)
    return out


def set_cgroups_path(doc: dict[str, Any], path: str, name: str) -> bool:
    """Give DOC linux.cgroupsPath=PATH unless it has one; True if DOC changed."""
    linux = doc.setdefault("linux", {})
    if not isinstance(linux, dict):
        raise _config_error(name, "linux must be a JSON object", "fix the image's config")
    if linux.get("cgroupsPath"):
        return False
    linux["cgroupsPath"] = path
    return True


def render_config(
    exports: Exports,
    image: ImageConfig,
    values: Mapping[str, str],
    users: UserDB,
    exists: Callable[[str], bool],
    cgroups_path: str | None = None,
    limits: grants.HostLimits | None = None,
) -> RenderedConfig:
    """Produce config.json (with CGROUPS_PATH unless the image sets one, fitted to the
    host's LIMITS when given) and list the bind sources that do not exist yet."""
    source = exports.config
    if source is None:
        doc = generate_config(image, values, users, exists)
        data = (json.dumps(doc, indent=2) + "\n").encode()
        process_user = doc["process"]["user"]
        owner = (str(process_user["uid"]), str(process_user["gid"]))
        name = "config.json (generated)"
    else:
        text = render_text(source, values)
        doc = parse_config_text(source, text)
        data = text.encode()
        owner = (values["HOST_UID"], values["HOST_GID"])
        name = f"/exports/{source.name}"
    validate_config(doc, name)
    changed = grants.upgrade(doc)
    withheld = grants.fit(doc, limits) if limits is not None else ()
    if cgroups_path is not None and set_cgroups_path(doc, cgroups_path, name):
        changed = True
    if changed or withheld:
        data = (json.dumps(doc, indent=2) + "\n").encode()
    missing = tuple(MissingSource(p, *owner) for p in bind_sources(doc) if not exists(p))
    return RenderedConfig(data, doc, missing, withheld)
