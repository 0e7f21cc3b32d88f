"""Store verification: re-hash objects, blobs and layer trees and name the images each fault hurts.

A damaged object is moved to ``store/quarantine/`` so that nothing deduplicates
against it any more; the layers that need it are then incomplete, and the next
pull of an affected image imports them again.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable, Iterable, Iterator
from enum import Enum
from pathlib import Path

from syscontainers.errors import StoreCorruptError, SysContainersError
from syscontainers.record import record
from syscontainers.store import Store
from syscontainers.store.gc import object_dirs
from syscontainers.store.graph import Graph, walk
from syscontainers.store.objects import (
    OBJECT_DIRS,
    ObjectMeta,
    ParsedName,
    hash_file,
    is_link_object,
    object_dir,
    object_name,
    parse_name,
    read_xattrs,
    target_hex,
)


class ProblemKind(Enum):
    """What is wrong."""

    CORRUPT_OBJECT = "corrupt-object"
    MISSING_OBJECT = "missing-object"
    BAD_IMAGE = "bad-image"
    BAD_LAYER = "bad-layer"
    BAD_PERMISSIONS = "bad-permissions"  # other users can reach the store (store.access)


@record
class Problem:
    """One fault, and the images it affects."""

    kind: ProblemKind
    item: str
    detail: str
    images: tuple[str, ...]


@record
class VerifyReport:
    """The outcome of a verify run."""

    objects_checked: int
    bytes_checked: int
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems


def check_object(store: Store, name: str) -> str | None:
    """Why the object NAME is damaged, or None if it is sound."""
    path = store.object_path(name)
    try:
        parsed = parse_name(name)
        st = os.lstat(path)
    except StoreCorruptError as e:
        return e.message
    except FileNotFoundError:
        return "missing"
    if parsed.link_mtime is not None:
        return _check_link(store, path, parsed, st)
    if not stat.S_ISREG(st.st_mode):
        return "it is not a regular file"
    actual = hash_file(path)
    if actual != parsed.content_hex:
        return f"content hashes to {actual[:16]}…"
    if st.st_mode & 0o7777 != parsed.mode:
        return f"mode is {st.st_mode & 0o7777:04o}, not {parsed.mode:04o}"
    if store.privileged:
        if (st.st_uid, st.st_gid) != (parsed.uid, parsed.gid):
            return f"owner is {st.st_uid}:{st.st_gid}, not {parsed.uid}:{parsed.gid}"
        meta = ObjectMeta(parsed.mode, parsed.uid, parsed.gid, read_xattrs(path))
        if parsed.xhash and object_name(parsed.content_hex, meta) != name:
            return "xattrs differ"
    return None


def _check_link(store: Store, path: Path, parsed: ParsedName, st: os.stat_result) -> str | None:
    """Why the symlink object at PATH does not match its name, or None."""
    if not stat.S_ISLNK(st.st_mode):
        return "it is not a symlink"
    target = os.readlink(path)
    if target_hex(target) != parsed.content_hex:
        return f"it points to {target!r}, which is not the target its name records"
    if store.privileged and (st.st_uid, st.st_gid) != (parsed.uid, parsed.gid):
        return f"owner is {st.st_uid}:{st.st_gid}, not {parsed.uid}:{parsed.gid}"
    if int(st.st_mtime) != parsed.link_mtime:
        return f"mtime is {int(st.st_mtime)}, not {parsed.link_mtime}"
    return None


def _quarantine(store: Store, name: str) -> None:
    qdir = store.path / "quarantine"
    qdir.mkdir(mode=0o700, exist_ok=True)  # damaged objects keep their modes: see store.access
    # A file whose name is no object name may sit outside objects/NAME[:2]/: prune removes it.
    with contextlib.suppress(FileNotFoundError):
        os.rename(store.object_path(name), qdir / f"{name}-{secrets.token_hex(4)}")


def _structure_problems(graph: Graph) -> list[Problem]:
    out = []
    for what, item, detail in graph.broken:
        kind = ProblemKind.BAD_IMAGE if what == "image" else ProblemKind.BAD_LAYER
        images = (item,) if what == "image" else tuple(graph.images_of_layer(item))
        out.append(Problem(kind, item, detail, images))
    return out


def _tree_problems(store: Store, graph: Graph, layers: Iterable[str]) -> list[Problem]:
    """Read each of LAYERS' trees whole (streamed); its object list is made to agree."""
    out = []
    for diff_id in sorted(layers):
        if diff_id not in graph.layers:
            continue  # already reported as broken
        try:
            store.check_layer(diff_id)
        except SysContainersError as e:
            images = tuple(graph.images_of_layer(diff_id))
            out.append(Problem(ProblemKind.BAD_LAYER, diff_id, e.message, images))
    return out


Item = tuple[str, int, tuple[str, ...]]  # an object's name, size and the layers using it


def _with_strays(store: Store, referenced: Iterator[Item]) -> Iterator[Item]:
    """REFERENCED (sorted by name) and every other file under objects/, an objects/XX
    directory at a time; symlink objects only where they exist (they are a cache)."""
    dirs = {d.name: d.path for d in object_dirs(store)}
    pending = next(referenced, None)
    for prefix in [*sorted(set(dirs) | _HEX_PREFIXES), None]:
        refs: dict[str, Item] = {}
        while pending is not None and (prefix is None or object_dir(pending[0]) <= prefix):
            refs[pending[0]] = pending
            pending = next(referenced, None)
        present = set(os.listdir(dirs[prefix])) if prefix in dirs else set()
        for name in sorted(present | {n for n in refs if not is_link_object(n)}):
            yield refs.get(name, (name, 0, ()))


_HEX_PREFIXES = set(OBJECT_DIRS)


def _existing_links(store: Store, items: Iterator[Item]) -> Iterator[Item]:
    for item in items:
        if not is_link_object(item[0]) or os.path.lexists(store.object_path(item[0])):
            yield item


def verify(
    store: Store,
    manifests: Iterable[str] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    repair: bool = True,
) -> VerifyReport:
    """Check the objects of MANIFESTS (default: every object reachable, plus stray ones).

    Memory does not grow with the entries: trees are streamed, and the objects come from
    the layers' sorted object lists, merged."""
    graph = walk(store, migrate=True)
    layers = set(graph.layers) if manifests is None else graph.image_layers(manifests)
    problems = _structure_problems(graph) + _tree_problems(store, graph, layers)
    total = sum(size for _, size, _ in graph.objects(layers))
    items = graph.objects(layers)
    stream = _with_strays(store, items) if manifests is None else _existing_links(store, items)
    done = checked = 0
    bad: list[tuple[ProblemKind, str, str]] = []
    for name, size, _ in stream:
        why = check_object(store, name)
        checked += 1
        done += size
        if on_progress is not None and checked % 256 == 0:
            on_progress(done, total)
        if why is None:
            continue
        kind = ProblemKind.MISSING_OBJECT if why == "missing" else ProblemKind.CORRUPT_OBJECT
        if kind is ProblemKind.CORRUPT_OBJECT and repair:
            _quarantine(store, name)
        bad.append((kind, name, why))
    problems += _object_problems(graph, bad)
    return VerifyReport(checked, done, tuple(problems))


def _object_problems(graph: Graph, bad: list[tuple[ProblemKind, str, str]]) -> list[Problem]:
    """BAD as problems, each naming every image that uses the object (one more merge)."""
    if not bad:
        return []
    wanted = {name for _, name, _ in bad}
    users = {n: graph.images_of_layers(layers) for n, _, layers in graph.objects() if n in wanted}
    return [Problem(kind, name, why, tuple(users.get(name, ()))) for kind, name, why in bad]
