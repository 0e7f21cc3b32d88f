"""Tests for syscontainers.record: the value classes behave as frozen, slotted dataclasses.

Each behaviour is checked against ``dataclasses`` itself where it has one (the oracle), so a
difference shows up as a failing comparison rather than a guess at what dataclasses does.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import ClassVar

import pytest

from syscontainers.record import (
    FrozenInstanceError,
    as_dict,
    field,
    fields,
    mutable_record,
    record,
    replace,
)

PACKAGE = Path(__file__).resolve().parents[2] / "syscontainers"


def default_tags() -> list[str]:
    return ["a"]


@record
class Point:
    """A record with a default, a factory and a field left out of comparison."""

    x: int
    y: int = 0
    tags: list[str] = field(default_factory=default_tags, compare=False, hash=False)
    note: str = field(default="", repr=False)
    kind: ClassVar[str] = "point"


@dataclasses.dataclass(frozen=True, slots=True)
class DPoint:
    """The same class, as a dataclass: the oracle."""

    x: int
    y: int = 0
    tags: list[str] = dataclasses.field(default_factory=default_tags, compare=False, hash=False)
    note: str = dataclasses.field(default="", repr=False)
    kind: ClassVar[str] = "point"


@record
class Labelled(Point):
    """A record that extends another."""

    label: str = "none"


@record
class Index(Mapping[str, int]):
    """A record that is a Mapping, with a field made by __post_init__."""

    names: tuple[str, ...]
    _at: dict[str, int] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_at", {n: i for i, n in enumerate(self.names)})

    def __getitem__(self, name: str) -> int:
        return self._at[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._at)

    def __len__(self) -> int:
        return len(self._at)


@mutable_record
class Counter:
    """A record that may be assigned to."""

    n: int = 0
    seen: list[str] = field(default_factory=list)


def test_init_defaults_and_factory_match_dataclasses() -> None:
    p, d = Point(1), DPoint(1)
    assert (p.x, p.y, p.tags, p.note) == (d.x, d.y, d.tags, d.note)
    assert Point(1).tags is not Point(1).tags  # a new list each time, as default_factory
    assert Point(1, 2, ["b"], "n").tags == ["b"]
    assert Point(x=3, note="n").note == "n"


def test_repr_matches_dataclasses() -> None:
    assert repr(Point(1, 2)).replace("Point", "DPoint") == repr(DPoint(1, 2))
    assert "note" not in repr(Point(1, note="secret"))


def test_equality_and_hash_skip_fields_left_out() -> None:
    assert Point(1, 2, ["x"]) == Point(1, 2, ["y"])  # tags: compare=False
    assert Point(1, 2) != Point(1, 3)
    assert hash(Point(1, 2, ["x"])) == hash(Point(1, 2, ["y"]))
    # another class is never equal, as in dataclasses
    assert Point(1) != DPoint(1)  # type: ignore[comparison-overlap]
    assert Point(1).__eq__(object()) is NotImplemented
    assert len({Point(1), Point(1), Point(2)}) == 2


def test_frozen_and_slotted() -> None:
    p = Point(1)
    with pytest.raises(FrozenInstanceError):
        p.x = 2  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        del p.x
    assert isinstance(FrozenInstanceError(), AttributeError)
    assert not hasattr(p, "__dict__")
    assert Point.__slots__ == DPoint.__slots__  # type: ignore[attr-defined]


def test_classvar_is_not_a_field() -> None:
    assert [f.name for f in fields(Point)] == [f.name for f in dataclasses.fields(DPoint)]
    assert Point.kind == "point"


def test_missing_and_unknown_arguments_are_type_errors() -> None:
    with pytest.raises(TypeError):
        Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Point(1, z=2)  # type: ignore[call-arg]


def test_field_without_default_after_one_with_is_refused() -> None:
    with pytest.raises(TypeError, match="'b' without a default"):

        @record
        class Bad:
            a: int = 0
            b: int  # type: ignore[misc]


def test_inheritance_adds_fields_after_the_base() -> None:
    lab = Labelled(1, 2, label="l")
    assert [f.name for f in fields(lab)] == ["x", "y", "tags", "note", "label"]
    assert lab.label == "l" and lab.x == 1
    assert isinstance(lab, Point)
    assert Labelled.__slots__ == ("label",)  # type: ignore[attr-defined]
    with pytest.raises(FrozenInstanceError):
        lab.label = "m"  # type: ignore[misc]


def test_post_init_and_init_false_field() -> None:
    idx = Index(("a", "b"))
    assert idx["b"] == 1 and list(idx) == ["a", "b"] and len(idx) == 2
    assert dict(idx) == {"a": 0, "b": 1}
    assert idx == Index(("a", "b")) and hash(idx) == hash(Index(("a", "b")))
    with pytest.raises(TypeError):
        Index(("a",), {})  # type: ignore[call-arg]


def test_replace_runs_init_and_keeps_the_rest() -> None:
    p = Point(1, 2, ["t"], "n")
    q = replace(p, y=5)
    assert (q.x, q.y, q.tags, q.note) == (1, 5, ["t"], "n")
    assert replace(Index(("a",)), names=("z",))["z"] == 0  # __post_init__ ran again
    with pytest.raises(TypeError):
        replace(p, nosuch=1)


def test_fields_of_a_non_record() -> None:
    with pytest.raises(TypeError, match="not a record"):
        fields(object())


def test_as_dict_matches_dataclasses_asdict() -> None:
    @record
    class Outer:
        inner: Point
        many: tuple[Point, ...]
        by: dict[str, Point]

    @dataclasses.dataclass(frozen=True)
    class DOuter:
        inner: DPoint
        many: tuple[DPoint, ...]
        by: dict[str, DPoint]

    ours = as_dict(Outer(Point(1), (Point(2),), {"k": Point(3)}))
    theirs = dataclasses.asdict(DOuter(DPoint(1), (DPoint(2),), {"k": DPoint(3)}))
    assert ours == theirs


def test_pickle_and_copy_round_trip() -> None:
    p = Point(1, 2, ["t"], "n")
    for q in (pickle.loads(pickle.dumps(p)), copy.copy(p), copy.deepcopy(p)):
        assert q == p and (q.tags, q.note) == (["t"], "n")


def test_mutable_record() -> None:
    c = Counter()
    c.n += 1
    c.seen.append("x")
    assert (c.n, c.seen) == (1, ["x"])
    assert Counter().seen == []
    assert Counter.__hash__ is None  # eq without frozen: unhashable, as a dataclass
    with pytest.raises(AttributeError):
        c.other = 1


def test_no_verb_imports_dataclasses_or_inspect() -> None:
    """The point of the module: importing the package's modules loads neither (render.jinja
    and render.sandbox import inspect through jinja2; they are left out). The twin:
    dataclasses itself does load inspect, so the check can see it."""
    skip = {"__init__", "__main__", "render.jinja", "render.sandbox"}
    names = {".".join(p.with_suffix("").relative_to(PACKAGE).parts) for p in PACKAGE.rglob("*.py")}
    modules = sorted(f"syscontainers.{n.removesuffix('.__init__')}" for n in names - skip)
    assert len(modules) > 90
    script = (  # pkgutil would import inspect itself (for getmodulename): a list instead
        f"import sys, importlib\nfor m in {modules!r}:\n    importlib.import_module(m)\n"
        "print(sorted(n for n in ('dataclasses', 'inspect') if n in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    twin = "import sys, dataclasses; print('inspect' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", twin], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_init_is_compiled_at_first_use_then_replaced() -> None:
    @record
    class Late:
        a: int
        b: int = 2

    deferred = Late.__dict__["__init__"]
    with pytest.raises(TypeError):
        Late()  # type: ignore[call-arg]  # the first call compiles; the real signature refuses
    compiled = Late.__dict__["__init__"]
    assert compiled is not deferred
    assert compiled.__code__.co_varnames[:3] == ("self", "a", "b")
    assert Late(1) == Late(a=1, b=2)
    assert Late.__dict__["__init__"] is compiled  # compiled once
