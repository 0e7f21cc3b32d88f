"""registries.conf: search registries, short-name aliases, registry rewrites, mirrors, blocks.

The files are the ones skopeo and podman read (containers-registries.conf(5)
and containers-registries.conf.d(5)): the main TOML file, then every
``*.conf`` under ``registries.conf.d/`` in name order. A drop-in replaces the
top-level lists it sets, adds or replaces ``[aliases]`` one by one, and
replaces a ``[[registry]]`` whose prefix it repeats. Loading is I/O; every
lookup afterwards is pure.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import Any

from syscontainers.errors import ReferenceParseError, RegistryError, UsageError
from syscontainers.record import record, replace
from syscontainers.reference import Reference, is_short_name, normalize, parse, qualify
from syscontainers.registry.credentials import AUTH_FILES_HELPER


class ShortNameMode(Enum):
    """How a short name with several search registries is resolved (``short-name-mode``)."""

    ENFORCING = "enforcing"  # an error: we never prompt (containers/image asks on a TTY)
    PERMISSIVE = "permissive"  # try each search registry in order
    DISABLED = "disabled"  # the same, for us


class PullFrom(Enum):
    """Which pulls a mirror serves (``pull-from-mirror``)."""

    ALL = "all"
    DIGEST_ONLY = "digest-only"
    TAG_ONLY = "tag-only"


@record
class Mirror:
    """One ``[[registry.mirror]]`` entry."""

    location: str
    insecure: bool = False
    pull_from: PullFrom = PullFrom.ALL


@record
class RegistryEntry:
    """One ``[[registry]]`` table."""

    prefix: str
    location: str = ""
    insecure: bool = False
    blocked: bool = False
    mirror_by_digest_only: bool = False
    mirrors: tuple[Mirror, ...] = ()

    def matches(self, name: str) -> bool:
        """True if the repository NAME (host/path) falls under this prefix."""
        if self.prefix.startswith("*."):
            host = name.split("/", 1)[0].split(":", 1)[0]
            return host.endswith(self.prefix[1:])
        return name == self.prefix or name.startswith(self.prefix + "/")

    def matched_part(self, name: str) -> str:
        """The part of NAME that the prefix covers, which a location replaces."""
        return name.split("/", 1)[0] if self.prefix.startswith("*.") else self.prefix


@record
class Endpoint:
    """One place to pull a reference from: a mirror or the primary location."""

    reference: Reference  # the reference rewritten for this location
    insecure: bool
    mirror: bool
    wanted: Reference | None = None  # the reference asked for (a short name's candidate)

    @property
    def host(self) -> str:
        """The registry host[:port]."""
        return self.reference.domain


@record
class RegistriesConfig:
    """The merged configuration."""

    search: tuple[str, ...] = ()
    aliases: tuple[tuple[str, str], ...] = ()
    registries: tuple[RegistryEntry, ...] = ()
    origin: str = "registries.conf"  # the files it was read from, for messages
    short_name_mode: ShortNameMode = ShortNameMode.ENFORCING
    credential_helpers: tuple[str, ...] = (AUTH_FILES_HELPER,)  # ``credential-helpers``

    def find(self, name: str) -> RegistryEntry | None:
        """The entry with the longest prefix that covers the repository NAME."""
        hits = [r for r in self.registries if r.matches(name)]
        return max(hits, key=lambda r: len(r.prefix), default=None)

    def alias(self, short: str) -> str | None:
        """The fully qualified name an alias gives SHORT, if any."""
        return dict(self.aliases).get(short)


# ---- loading -------------------------------------------------------------

_FORMAT_HINT = "see containers-registries.conf(5)"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise UsageError(
            f"cannot read {path}: {e.strerror}", hint="check the file's permissions"
        ) from e
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{path} is not valid TOML: {e}", hint=_FORMAT_HINT) from e


def _bool(table: dict[str, Any], key: str, where: str) -> bool:
    value = table.get(key, False)
    if not isinstance(value, bool):
        raise UsageError(f"{where}: {key} must be true or false, not {value!r}", hint=_FORMAT_HINT)
    return value


def _str(table: dict[str, Any], key: str, where: str) -> str:
    value = table.get(key, "")
    if not isinstance(value, str):
        raise UsageError(f"{where}: {key} must be a string, not {value!r}", hint=_FORMAT_HINT)
    return value.rstrip("/")


def _str_list(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{where} must be a list of strings", hint=_FORMAT_HINT)
    return tuple(value)


def _mirror(table: object, where: str) -> Mirror:
    if not isinstance(table, dict):
        raise UsageError(f"{where} must be a table", hint=_FORMAT_HINT)
    location = _str(table, "location", where)
    if not location:
        raise UsageError(f"{where} has no location", hint=_FORMAT_HINT)
    pull_from = table.get("pull-from-mirror", "all") or "all"
    try:
        mode = PullFrom(pull_from)
    except ValueError:
        raise UsageError(
            f"{where}: pull-from-mirror {pull_from!r} is not all, digest-only or tag-only",
            hint=_FORMAT_HINT,
        ) from None
    return Mirror(location, _bool(table, "insecure", where), mode)


def _registry(table: object, where: str) -> RegistryEntry:
    if not isinstance(table, dict):
        raise UsageError(f"{where} must be a table", hint=_FORMAT_HINT)
    location = _str(table, "location", where)
    prefix = _str(table, "prefix", where) or location
    if not prefix:
        raise UsageError(f"{where} has neither prefix nor location", hint=_FORMAT_HINT)
    if prefix.startswith("*.") and location:
        raise UsageError(
            f"{where}: a wildcard prefix {prefix!r} cannot have a location", hint=_FORMAT_HINT
        )
    mirrors = table.get("mirror", [])
    if not isinstance(mirrors, list):
        raise UsageError(f"{where}: mirror must be an array of tables", hint=_FORMAT_HINT)
    return RegistryEntry(
        prefix=prefix,
        location=location or ("" if prefix.startswith("*.") else prefix),
        insecure=_bool(table, "insecure", where),
        blocked=_bool(table, "blocked", where),
        mirror_by_digest_only=_bool(table, "mirror-by-digest-only", where),
        mirrors=tuple(_mirror(m, f"{where} mirror {i + 1}") for i, m in enumerate(mirrors)),
    )


def _v1_registries(doc: dict[str, Any], where: str) -> tuple[list[str], list[RegistryEntry]]:
    """Translate the old ``[registries.search|insecure|block]`` format."""
    v1 = doc["registries"]
    if not isinstance(v1, dict):
        raise UsageError(f"{where}: registries must be a table", hint=_FORMAT_HINT)
    search: list[str] = []
    flags: dict[str, RegistryEntry] = {}
    for kind in ("search", "insecure", "block"):
        section = v1.get(kind, {})
        hosts = _str_list(section.get("registries", []), f"{where} registries.{kind}")
        if kind == "search":
            search = list(hosts)
            continue
        for host in hosts:
            entry = flags.get(host, RegistryEntry(prefix=host, location=host))
            flags[host] = replace(
                entry,
                insecure=entry.insecure or kind == "insecure",
                blocked=entry.blocked or kind == "block",
            )
    return search, list(flags.values())


def _merge(config: RegistriesConfig, doc: dict[str, Any], where: str) -> RegistriesConfig:
    search: list[str] | None = None
    entries: list[RegistryEntry] = []
    if "registries" in doc:
        if "registry" in doc or "unqualified-search-registries" in doc:
            raise UsageError(
                f"{where} mixes the v1 [registries] format with the v2 format", hint=_FORMAT_HINT
            )
        search, entries = _v1_registries(doc, where)
    if "unqualified-search-registries" in doc:
        search = list(_str_list(doc["unqualified-search-registries"], f"{where} search list"))
    tables = doc.get("registry", [])
    if not isinstance(tables, list):
        raise UsageError(
            f"{where}: registry must be an array of tables ([[registry]])", hint=_FORMAT_HINT
        )
    entries += [_registry(t, f"{where} registry {i + 1}") for i, t in enumerate(tables)]
    aliases = dict(config.aliases)
    raw_aliases = doc.get("aliases", {})
    if not isinstance(raw_aliases, dict):
        raise UsageError(f"{where}: aliases must be a table", hint=_FORMAT_HINT)
    for short, target in raw_aliases.items():
        aliases[short] = _check_alias(short, target, where)
    by_prefix = {r.prefix: r for r in config.registries}
    by_prefix.update({r.prefix: r for r in entries})
    return RegistriesConfig(
        search=config.search if search is None else tuple(search),
        aliases=tuple(sorted(aliases.items())),
        registries=tuple(by_prefix.values()),
        short_name_mode=_short_name_mode(doc, where, config.short_name_mode),
        credential_helpers=_helpers(doc, where, config.credential_helpers),
    )


def _helpers(doc: dict[str, Any], where: str, current: tuple[str, ...]) -> tuple[str, ...]:
    if "credential-helpers" not in doc:
        return current
    helpers = _str_list(doc["credential-helpers"], f"{where} credential-helpers")
    return helpers or (AUTH_FILES_HELPER,)


def _short_name_mode(doc: dict[str, Any], where: str, current: ShortNameMode) -> ShortNameMode:
    value = doc.get("short-name-mode", current.value) or current.value
    try:
        return ShortNameMode(value)
    except ValueError:
        raise UsageError(
            f"{where}: short-name-mode {value!r} is not enforcing, permissive or disabled",
            hint=_FORMAT_HINT,
        ) from None


def _check_alias(short: str, target: object, where: str) -> str:
    try:
        key = parse(short)
        value = parse(target) if isinstance(target, str) else None
    except ReferenceParseError as e:
        raise UsageError(
            f"{where}: alias {short!r}: {e.message}", hint=e.hint or _FORMAT_HINT
        ) from e
    if not is_short_name(key) or key.tag or key.digest:
        raise UsageError(
            f"{where}: alias name {short!r} must be a short name without a tag", hint=_FORMAT_HINT
        )
    if value is None or is_short_name(value) or value.digest:
        raise UsageError(
            f"{where}: alias {short!r} must map to a fully qualified name, not {target!r}",
            hint="give the alias a registry host, e.g. docker.io/library/NAME",
        )
    return str(value)


def drop_in_dir(path: Path) -> Path:
    """The drop-in directory that belongs to a registries.conf path."""
    return path.with_name(path.name + ".d")


def load(path: Path, drop_in_dirs: Sequence[Path] | None = None) -> RegistriesConfig:
    """Read PATH and the drop-ins (``PATH.d`` unless DROP_IN_DIRS names the directories,
    read in that order, each in name order); missing files are empty."""
    files = [path]
    for drop_ins in [drop_in_dir(path)] if drop_in_dirs is None else drop_in_dirs:
        if drop_ins.is_dir():
            files += sorted(p for p in drop_ins.iterdir() if p.suffix == ".conf" and p.is_file())
    config = RegistriesConfig()
    for f in files:
        doc = _read_toml(f)
        if doc:
            config = _merge(config, doc, str(f))
    read = [str(f) for f in files if f.exists()]
    return replace(config, origin=", ".join(read) or f"{path} (absent)")


def load_for(env: Mapping[str, str], setting: Path | None) -> RegistriesConfig:
    """The registries.conf files skopeo would read (SETTING alone, with its .d, if set)."""
    from syscontainers.containers_conf import registries_files

    where = registries_files(env, setting)
    return load(where.main, where.drop_in_dirs)


# ---- lookups -------------------------------------------------------------


def resolve_candidates(text: str, config: RegistriesConfig) -> tuple[Reference, ...]:
    """The fully qualified, normalised references TEXT may mean, to try in order: one for a
    qualified name or an alias; one per search registry for a short name, when there is one
    or short-name-mode is permissive or disabled. Never a guess between several."""
    ref = parse(text)
    if not is_short_name(ref):
        return (normalize(ref),)
    target = config.alias(ref.path)
    if target is not None:
        return (qualify(ref, target),)
    example = f"docker.io/library/{ref.path}" if "/" not in ref.path else f"quay.io/{ref.path}"
    if not config.search:
        raise UsageError(
            f"short name {text!r} cannot be resolved: {config.origin} lists no "
            "unqualified-search-registries and no alias for it",
            hint=f"use a fully qualified name such as {example}",
        )
    candidates = tuple(qualify(ref, f"{host}/{ref.path}") for host in config.search)
    if len(candidates) > 1 and config.short_name_mode is ShortNameMode.ENFORCING:
        names = ", ".join(f"{host}/{ref.path}" for host in config.search)
        raise UsageError(
            f"short name {text!r} is ambiguous: it could be {names} "
            f"(short-name-mode is enforcing in {config.origin})",
            hint="use the fully qualified name, add an alias for it under [aliases] in a "
            'registries.conf.d drop-in, or set short-name-mode = "permissive" to try each '
            "search registry in order",
        )
    return candidates


def _rewrite(ref: Reference, entry: RegistryEntry, location: str) -> Reference:
    if not location:
        return ref
    name = location + ref.name[len(entry.matched_part(ref.name)) :]
    target = parse(name)
    return Reference(target.domain, target.path, ref.tag, ref.digest)


def _mirror_serves(entry: RegistryEntry, mirror: Mirror, by_digest: bool) -> bool:
    if entry.mirror_by_digest_only:
        return by_digest
    if mirror.pull_from is PullFrom.DIGEST_ONLY:
        return by_digest
    if mirror.pull_from is PullFrom.TAG_ONLY:
        return not by_digest
    return True


def endpoints(ref: Reference, config: RegistriesConfig) -> list[Endpoint]:
    """Where to pull the qualified REF from, in order: usable mirrors, then the primary."""
    entry = config.find(ref.name)
    if entry is None:
        return [Endpoint(ref, insecure=False, mirror=False, wanted=ref)]
    if entry.blocked:
        raise RegistryError(
            f"pulling {ref} is blocked: registry prefix {entry.prefix!r} has blocked = true "
            f"in {config.origin}",
            hint="ask your administrator, or use an allowed registry or mirror",
        )
    by_digest = bool(ref.digest)
    out = [
        Endpoint(_rewrite(ref, entry, m.location), insecure=m.insecure, mirror=True, wanted=ref)
        for m in entry.mirrors
        if _mirror_serves(entry, m, by_digest)
    ]
    out.append(Endpoint(_rewrite(ref, entry, entry.location), entry.insecure, False, ref))
    return out


def candidate_endpoints(
    candidates: tuple[Reference, ...], config: RegistriesConfig
) -> list[Endpoint]:
    """The endpoints of every candidate, in order; a blocked candidate is skipped while
    another one is left."""
    out: list[Endpoint] = []
    blocked: list[RegistryError] = []
    for ref in candidates:
        try:
            out += endpoints(ref, config)
        except RegistryError as e:
            blocked.append(e)
    if not out:
        raise blocked[0]
    return out


def host_insecure(host: str, config: RegistriesConfig) -> bool:
    """True if registries.conf marks HOST insecure: as a prefix, a location or a mirror."""
    entry = config.find(host)
    if entry is not None and entry.insecure:
        return True
    locations = [(r.location, r.insecure) for r in config.registries]
    locations += [(m.location, m.insecure) for r in config.registries for m in r.mirrors]
    return any(insecure and loc.split("/", 1)[0] == host for loc, insecure in locations)
