"""A unit's ``[Install]`` symlinks, made and removed in a root as ``systemctl --root=DIR`` does.

Enabling a unit file found in the unit search path creates, in the unit
directory (``/etc/systemd/system``):

- ``TARGET.wants/UNIT`` for each ``WantedBy=TARGET``, ``TARGET.requires/UNIT``
  for each ``RequiredBy=TARGET``;
- ``ALIAS`` for each ``Alias=ALIAS``;

each pointing at the unit file's path as the booted root sees it, and enables
the units named by ``Also=`` the same way. Disabling removes every symlink in
the unit directory (and its ``.wants``/``.requires`` directories) that points
at the unit file or carries its name there, and disables the ``Also=`` units.
Nothing talks to systemd: this is what ``--sysroot`` uses instead of D-Bus.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from syscontainers.errors import SystemdError
from syscontainers.paths import Paths
from syscontainers.systemd_states import UnitFileChange

DEPENDENCY_DIRS = {"WantedBy": ".wants", "RequiredBy": ".requires"}
_SPECIFIER = re.compile(r"%(.)")


def install_section(text: str) -> dict[str, list[str]]:
    """The [Install] settings of a unit file's TEXT: key -> every word of every line."""
    out: dict[str, list[str]] = {}
    section = ""
    for line in _logical_lines(text):
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif section == "Install" and "=" in line:
            key, _, value = line.partition("=")
            words = value.split()
            if not words:  # an empty assignment resets the list
                out.pop(key.strip(), None)
            else:
                out.setdefault(key.strip(), []).extend(words)
    return out


def _logical_lines(text: str) -> Iterator[str]:
    """Lines without comments, with backslash continuations joined (systemd.syntax(7))."""
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line[0] in "#;"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        yield pending + line
        pending = ""
    if pending:
        yield pending


def _expand(word: str, unit: str) -> str:
    """Expand the specifiers [Install] names use: %n, %N, %p and %%."""
    stem = unit.rsplit(".", 1)[0]
    known = {"n": unit, "N": stem, "p": stem.split("@", 1)[0], "%": "%"}

    def one(match: re.Match[str]) -> str:
        if match.group(1) not in known:
            raise SystemdError(
                f"unit {unit}: [Install] uses the specifier %{match.group(1)}, "
                "which an offline enable cannot expand",
                hint="use the unit's full names in its [Install] section",
            )
        return known[match.group(1)]

    return _SPECIFIER.sub(one, word)


def find_unit(paths: Paths, unit: str) -> Path | None:
    """The unit file systemd would load for UNIT from the unit search path, on this host."""
    for d in paths.unit_search:
        candidate = d / unit
        if os.path.lexists(candidate):
            return candidate
    return None


def planned_links(paths: Paths, unit: str) -> tuple[list[tuple[Path, str]], list[str]]:
    """The symlinks enabling UNIT makes (host path, target as booted) and its Also= units."""
    found = find_unit(paths, unit)
    if found is None:
        raise SystemdError(
            f"unit {unit} was not found in {paths.unit_dir} or the rest of the unit search path",
            hint="install the container first",
        )
    target = str(paths.booted(found))
    section = install_section(found.read_text(errors="replace"))
    links: list[tuple[Path, str]] = []
    for key, suffix in DEPENDENCY_DIRS.items():
        for word in section.get(key, []):
            links.append((paths.unit_dir / (_expand(word, unit) + suffix) / unit, target))
    for word in section.get("Alias", []):
        alias = _expand(word, unit)
        if "/" in alias or alias == unit:
            raise SystemdError(
                f"unit {unit}: Alias={alias} is not a unit name",
                hint="fix Alias= in the unit's [Install] section (an image's: tell its author)",
            )
        links.append((paths.unit_dir / alias, target))
    return links, [_expand(w, unit) for w in section.get("Also", [])]


def enable(paths: Paths, units: Sequence[str]) -> tuple[UnitFileChange, ...]:
    """Make the [Install] symlinks of UNITS (and their Also= units); return the links made."""
    changes: list[UnitFileChange] = []
    todo, seen = list(units), set()
    while todo:
        unit = Path(todo.pop(0)).name
        if unit in seen:
            continue
        seen.add(unit)
        links, also = planned_links(paths, unit)
        todo += also
        for link, target in links:
            if _points_to(link, target):
                continue
            if os.path.lexists(link):
                raise SystemdError(
                    f"cannot enable {unit}: {link} exists and is not a link to {target}",
                    hint=f"remove {link} if it is stale",
                )
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(target, link)
            changes.append(UnitFileChange("symlink", str(paths.booted(link)), target))
    return tuple(changes)


def _points_to(link: Path, target: str) -> bool:
    try:
        return os.readlink(link) == target
    except OSError:
        return False


def is_enabled(paths: Paths, unit: str) -> bool:
    """True if UNIT has a unit file and all its [Install] symlinks (False without any)."""
    if find_unit(paths, unit) is None:
        return False
    links, _also = planned_links(paths, unit)
    return bool(links) and all(_points_to(link, target) for link, target in links)


def disable(paths: Paths, units: Sequence[str]) -> tuple[UnitFileChange, ...]:
    """Remove the symlinks that enable UNITS (and their Also= units); return those removed."""
    changes: list[UnitFileChange] = []
    todo, seen = [Path(u).name for u in units], set()
    while todo:
        unit = todo.pop(0)
        if unit in seen:
            continue
        seen.add(unit)
        found = find_unit(paths, unit)
        target = str(paths.booted(found)) if found is not None else None
        if found is not None and found.is_file():
            todo += [
                _expand(w, unit)
                for w in install_section(found.read_text(errors="replace")).get("Also", [])
            ]
        for link in _links_to(paths.unit_dir, unit, target):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(link)
                changes.append(UnitFileChange("unlink", str(paths.booted(link)), ""))
    return tuple(changes)


def _links_to(unit_dir: Path, unit: str, target: str | None) -> list[Path]:
    """Symlinks in UNIT_DIR and its .wants/.requires directories that enable UNIT."""
    found: list[Path] = []
    try:
        entries = list(os.scandir(unit_dir))
    except FileNotFoundError:
        return found
    for entry in entries:
        path = Path(entry.path)
        if entry.is_symlink():
            if target is not None and os.readlink(path) == target and path.name != unit:
                found.append(path)
        elif entry.is_dir(follow_symlinks=False) and path.suffix in DEPENDENCY_DIRS.values():
            link = path / unit
            if link.is_symlink():
                found.append(link)
    return found
