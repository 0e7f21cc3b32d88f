"""The template variable model: forced, user-set, OS-provided and image-default values.

Precedence is forced > --set > OS-provided > manifest defaultValues. Everything
here is pure except `read_cap_last_cap`, `read_cap_bounding` and `host_facts`,
the edge that gathers the facts about this host into a frozen HostFacts.

ALL_PROCESS_CAPABILITIES lists the capabilities this host can grant: those the
kernel knows (cap_last_cap) that are also in the installer's own bounding set.
atomic listed every capability up to cap_last_cap, but runc cannot give a
container a capability its own bounding set lacks ("unable to apply caps"): root
lacks some on hardened hosts, and in containers and nspawn hosts.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from enum import Enum
from pathlib import Path

from syscontainers.errors import StoreCorruptError, UsageError
from syscontainers.record import field, record

FORCED = (
    "DESTDIR",
    "NAME",
    "EXEC_START",
    "EXEC_STOP",
    "EXEC_STARTPRE",
    "EXEC_STOPPOST",
    "HOST_UID",
    "HOST_GID",
    "IMAGE_NAME",
    "IMAGE_ID",
)
OS_PROVIDED = (
    "RUN_DIRECTORY",
    "STATE_DIRECTORY",
    "CONF_DIRECTORY",
    "PIDFILE",
    "UUID",
    "ALL_PROCESS_CAPABILITIES",
    "RUNTIME",
    "NETWORK_ONLINE",
)
NETWORK_ONLINE = "NETWORK_ONLINE"  # yes: the unit wants and waits for network-online.target
_BOOLEANS = {
    "yes": True,
    "true": True,
    "on": True,
    "1": True,
    "no": False,
    "false": False,
    "off": False,
    "0": False,
    "": False,
}

# Linux capability numbers (include/uapi/linux/capability.h).
CAPABILITIES = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)
CAP_LAST_CAP = Path("/proc/sys/kernel/cap_last_cap")
SELINUX_ENFORCE = Path("/sys/fs/selinux/enforce")  # there when selinuxfs is mounted
PROC_STATUS = Path("/proc/self/status")

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Origin(Enum):
    """Where a value came from."""

    FORCED = "forced"
    USER = "set"
    RAW = "set-raw"  # given with --set-raw: inserted exactly as given
    OS = "os"
    IMAGE = "image"


@record
class RuntimeCommands:
    """The runtime command lines that go into the unit (built by syscontainers.runtime)."""

    exec_start: str
    exec_stop: str = ""
    exec_startpre: str = ""
    exec_stoppost: str = ""


CommandSource = RuntimeCommands | Callable[[Mapping[str, str]], RuntimeCommands]


@record
class HostFacts:
    """What the values depend on about this host, gathered once at the edge."""

    uid: int
    gid: int
    cap_last_cap: int
    runtime: str
    uuid: str
    cap_bounding: int | None = None  # the bounding set as a mask; None: not known, assume all
    selinux: bool = True  # whether SELinux is enabled (runc refuses labels without it)
    run_directory: str = "/run"
    state_directory: str = "/var/lib"
    conf_directory: str = "/etc"


@record
class Value:
    """One resolved variable."""

    name: str
    value: str
    origin: Origin


@record
class Values(Mapping[str, str]):
    """The resolved variables: a read-only name -> value mapping that knows each origin."""

    entries: tuple[Value, ...]
    fragments: frozenset[str] = frozenset()  # names the image or the OS gives a default
    _index: dict[str, Value] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {v.name: v for v in self.entries})

    def __getitem__(self, name: str) -> str:
        return self._index[name].value

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def origin(self, name: str) -> Origin:
        """Where NAME's value came from."""
        return self._index[name].origin

    def user_sets(self) -> dict[str, str]:
        """The values the user gave with --set or --set-raw."""
        return {v.name: v.value for v in self.entries if v.origin in (Origin.USER, Origin.RAW)}

    def raw_names(self) -> tuple[str, ...]:
        """The names the user gave with --set-raw."""
        return tuple(v.name for v in self.entries if v.origin is Origin.RAW)


@record
class KeptValues:
    """What survives an update: the user's --set (and --set-raw) values and the UUID."""

    sets: tuple[tuple[str, str], ...]
    uuid: str
    raw: tuple[str, ...] = ()  # the names of SETS given with --set-raw

    def set_map(self) -> dict[str, str]:
        """The kept --set values as a dict."""
        return dict(self.sets)

    def merged(self, new_sets: Mapping[str, str], new_raw: Iterable[str] = ()) -> KeptValues:
        """These kept values with NEW_SETS applied on top (for update --set); NEW_RAW names
        those of them given with --set-raw (a name set again with --set is plain again)."""
        check_sets(new_sets)
        raw = (set(self.raw) - new_sets.keys()) | set(new_raw)
        sets = tuple(sorted({**self.set_map(), **new_sets}.items()))
        return KeptValues(sets, self.uuid, tuple(sorted(raw)))

    def to_json(self) -> dict[str, object]:
        """A JSON-ready form for a deployment's info file."""
        doc: dict[str, object] = {"set": self.set_map(), "uuid": self.uuid}
        if self.raw:
            doc["raw"] = list(self.raw)
        return doc

    @classmethod
    def from_json(cls, doc: object) -> KeptValues:
        """Parse what to_json wrote."""
        if not isinstance(doc, dict):
            raise StoreCorruptError("stored template values are not a JSON object")
        sets, uuid = doc.get("set", {}), doc.get("uuid")
        if not isinstance(uuid, str) or not isinstance(sets, dict):
            raise StoreCorruptError("stored template values lack a uuid or a set map")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in sets.items()):
            raise StoreCorruptError("stored --set values must map strings to strings")
        raw = doc.get("raw", [])
        if not isinstance(raw, list) or not all(isinstance(n, str) and n in sets for n in raw):
            raise StoreCorruptError("stored --set-raw names must be a list of --set names")
        return cls(tuple(sorted(sets.items())), uuid, tuple(sorted(raw)))


def kept_values(values: Values) -> KeptValues:
    """The part of VALUES that an update keeps: --set values and the UUID."""
    sets = tuple(sorted(values.user_sets().items()))
    return KeptValues(sets, values["UUID"], tuple(sorted(values.raw_names())))


def check_sets(sets: Mapping[str, str]) -> None:
    """Reject --set names that are not identifiers or that name a forced variable."""
    for name in sets:
        if not _NAME_RE.match(name):
            raise UsageError(
                f"--set {name!r}: not a valid variable name",
                hint="names are letters, digits and underscores, not starting with a digit",
            )
        if name in FORCED:
            raise UsageError(
                f"--set {name}: {name} is always set by syscontainers and cannot be overridden",
                hint="forced variables: " + ", ".join(FORCED),
            )
    if NETWORK_ONLINE in sets:
        network_online(sets)


def network_online(values: Mapping[str, str]) -> bool:
    """Whether VALUES ask the unit to wait for network-online.target (NETWORK_ONLINE)."""
    text = values.get(NETWORK_ONLINE, "")
    try:
        return _BOOLEANS[text.strip().lower()]
    except KeyError:
        raise UsageError(
            f"--set {NETWORK_ONLINE}={text!r}: not yes or no",
            hint=f"--set {NETWORK_ONLINE}=yes makes the unit wait for network-online.target",
        ) from None


def parse_sets(assignments: Iterable[str]) -> dict[str, str]:
    """Parse repeated --set NAME=VALUE arguments (the last one of a name wins)."""
    out: dict[str, str] = {}
    for text in assignments:
        name, sep, value = text.partition("=")
        if not sep or not name:
            raise UsageError(f"invalid --set {text!r}", hint="expected the form NAME=VALUE")
        out[name] = value
    check_sets(out)
    return out


def capability_names(cap_last_cap: int, bounding: int | None = None) -> tuple[str, ...]:
    """The capabilities 0..CAP_LAST_CAP this table knows that are in BOUNDING (a mask)."""
    known = CAPABILITIES[: max(0, cap_last_cap + 1)]
    if bounding is None:
        return known
    return tuple(c for i, c in enumerate(known) if bounding >> i & 1)


def capability_fragment(cap_last_cap: int, bounding: int | None = None) -> str:
    """The ALL_PROCESS_CAPABILITIES JSON list fragment, as atomic wrote it."""
    return ",\n".join(f'"{c}"' for c in capability_names(cap_last_cap, bounding)) + "\n"


def _os_values(facts: HostFacts) -> dict[str, str]:
    return {
        "RUN_DIRECTORY": facts.run_directory,
        "STATE_DIRECTORY": facts.state_directory,
        "CONF_DIRECTORY": facts.conf_directory,
        "UUID": facts.uuid,
        "ALL_PROCESS_CAPABILITIES": capability_fragment(facts.cap_last_cap, facts.cap_bounding),
        "RUNTIME": facts.runtime,
        NETWORK_ONLINE: "no",
    }


def compute_values(
    *,
    name: str,
    image_name: str,
    image_id: str,
    destdir: str,
    sets: Mapping[str, str],
    defaults: Mapping[str, str],
    facts: HostFacts,
    commands: CommandSource,
    raw: Iterable[str] = (),
) -> Values:
    """Resolve every variable; COMMANDS may be a function of the non-forced values; RAW
    names the SETS given with --set-raw."""
    check_sets(sets)
    raw = frozenset(raw)
    resolved: dict[str, Value] = {k: Value(k, v, Origin.IMAGE) for k, v in defaults.items()}
    resolved.update({k: Value(k, v, Origin.OS) for k, v in _os_values(facts).items()})
    resolved.update(
        {k: Value(k, v, Origin.RAW if k in raw else Origin.USER) for k, v in sets.items()}
    )
    if "PIDFILE" not in sets:
        pidfile = f"{resolved['RUN_DIRECTORY'].value}/container-{name}.pid"
        resolved["PIDFILE"] = Value("PIDFILE", pidfile, Origin.OS)
    forced = {
        "DESTDIR": destdir,
        "NAME": name,
        "HOST_UID": str(facts.uid),
        "HOST_GID": str(facts.gid),
        "IMAGE_NAME": image_name,
        "IMAGE_ID": image_id.removeprefix("sha256:"),
    }
    resolved.update({k: Value(k, v, Origin.FORCED) for k, v in forced.items()})
    if callable(commands):
        commands = commands({k: v.value for k, v in resolved.items()})
    execs = {
        "EXEC_START": commands.exec_start,
        "EXEC_STOP": commands.exec_stop,
        "EXEC_STARTPRE": commands.exec_startpre,
        "EXEC_STOPPOST": commands.exec_stoppost,
    }
    resolved.update({k: Value(k, v, Origin.FORCED) for k, v in execs.items()})
    entries = tuple(sorted(resolved.values(), key=lambda v: v.name))
    return Values(entries, frozenset(defaults) | frozenset(OS_PROVIDED))


# --- I/O edge -----------------------------------------------------------------


def read_cap_last_cap(path: Path = CAP_LAST_CAP) -> int:
    """The kernel's highest capability number (the table's last one if /proc says nothing)."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return len(CAPABILITIES) - 1


def read_cap_bounding(path: Path = PROC_STATUS) -> int | None:
    """This process's capability bounding set as a mask (None if /proc does not say)."""
    try:
        for line in path.read_text().splitlines():
            if line.startswith("CapBnd:"):
                return int(line.split(":", 1)[1].strip(), 16)
    except (OSError, ValueError):
        pass
    return None


def host_facts(
    runtime: str,
    *,
    user_mode: bool = False,
    env: Mapping[str, str] | None = None,
    uuid: str | None = None,
) -> HostFacts:
    """Gather this host's facts; UUID is the kept one on update, else a fresh uuid4."""
    import uuid as _uuid  # here, not at the top: uuid imports platform, and list needs neither

    uid, gid = os.getuid(), os.getgid()
    facts = HostFacts(
        uid=uid,
        gid=gid,
        cap_last_cap=read_cap_last_cap(),
        runtime=runtime,
        uuid=uuid or str(_uuid.uuid4()),
        cap_bounding=read_cap_bounding(),
        selinux=SELINUX_ENFORCE.exists(),
    )
    if not user_mode:
        return facts
    env = os.environ if env is None else env
    home = env.get("HOME", "/root")
    return HostFacts(
        uid=uid,
        gid=gid,
        cap_last_cap=facts.cap_last_cap,
        runtime=runtime,
        uuid=facts.uuid,
        cap_bounding=facts.cap_bounding,
        selinux=facts.selinux,
        run_directory=env.get("XDG_RUNTIME_DIR") or f"/run/user/{uid}",
        state_directory=env.get("XDG_DATA_HOME") or f"{home}/.local/share",
        conf_directory=env.get("XDG_CONFIG_HOME") or f"{home}/.config",
    )
