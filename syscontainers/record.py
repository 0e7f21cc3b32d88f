"""Value classes: what ``dataclasses.dataclass(frozen=True, slots=True)`` gives, made cheaply.

Why not dataclasses: importing it imports ``inspect`` (with ast, dis and tokenize: 6 ms), and
each class costs 0.35 ms, for it compiles six methods one by one. A verb such as ``update``
creates 68 classes before it does anything: 40 of its 89 ms of start-up (issue 12, item 9).
Here a class costs no compile until it is first instantiated (then one: its ``__init__``, as
fast per instance as a dataclass's); equality, hashing, repr and freezing are shared functions
over the fields.

The surface is the part of dataclasses this project uses, with its meaning: ``@record``
(frozen, slotted), ``@mutable_record`` (slotted), ``field(default=..., default_factory=...,
init=..., repr=..., compare=..., hash=...)``, ``__post_init__``, inheritance between records,
``replace``, ``fields`` and ``as_dict``. ``typing.dataclass_transform`` tells mypy to check
records as it checks dataclasses.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any, TypeVar, dataclass_transform, overload

_T = TypeVar("_T")
_MISSING: Any = object()


class FrozenInstanceError(AttributeError):
    """An assignment to a field of a frozen record (as dataclasses.FrozenInstanceError)."""


class Field:
    """One field: its name and how __init__, repr, == and hash treat it."""

    __slots__ = ("name", "default", "default_factory", "init", "repr", "compare", "hash")

    def __init__(
        self,
        default: Any,
        default_factory: Any,
        init: bool,
        repr: bool,  # noqa: A002 - dataclasses' name
        compare: bool,
        hash: bool | None,  # noqa: A002 - dataclasses' name
    ) -> None:
        self.name = ""
        self.default = default
        self.default_factory = default_factory
        self.init = init
        self.repr = repr
        self.compare = compare
        self.hash = compare if hash is None else hash

    def __repr__(self) -> str:
        return f"Field(name={self.name!r})"


@overload
def field(
    *,
    default: _T,
    init: bool = True,
    repr: bool = True,  # noqa: A002
    compare: bool = True,
    hash: bool | None = None,  # noqa: A002
) -> _T: ...
@overload
def field(
    *,
    default_factory: Callable[[], _T],
    init: bool = True,
    repr: bool = True,  # noqa: A002
    compare: bool = True,
    hash: bool | None = None,  # noqa: A002
) -> _T: ...
@overload
def field(
    *,
    init: bool = True,
    repr: bool = True,  # noqa: A002
    compare: bool = True,
    hash: bool | None = None,  # noqa: A002
) -> Any: ...
def field(
    *,
    default: Any = _MISSING,
    default_factory: Any = _MISSING,
    init: bool = True,
    repr: bool = True,  # noqa: A002
    compare: bool = True,
    hash: bool | None = None,  # noqa: A002
) -> Any:
    """A field with options, as dataclasses.field."""
    if default is not _MISSING and default_factory is not _MISSING:
        raise ValueError("a field cannot have both default and default_factory")
    return Field(default, default_factory, init, repr, compare, hash)


def fields(obj: Any) -> tuple[Field, ...]:
    """The fields of a record class or instance, in order."""
    try:
        found: tuple[Field, ...] = obj.__record_fields__
    except AttributeError:
        raise TypeError(f"{obj!r} is not a record") from None
    return found


def replace(obj: _T, /, **changes: Any) -> _T:
    """A copy of record OBJ with CHANGES, through __init__ (so __post_init__ runs)."""
    for f in fields(obj):
        if f.init and f.name not in changes:
            changes[f.name] = getattr(obj, f.name)
    return obj.__class__(**changes)


def as_dict(obj: Any) -> dict[str, Any]:
    """Record OBJ as a dict, with every record in it made a dict too (as dataclasses.asdict)."""
    return {f.name: _plain(getattr(obj, f.name)) for f in fields(obj)}


def _plain(obj: Any) -> Any:
    """OBJ with every record in it made a dict, recursively."""
    if hasattr(type(obj), "__record_fields__"):
        return as_dict(obj)
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*[_plain(v) for v in obj])
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain(v) for v in obj)
    if isinstance(obj, dict):
        return type(obj)((_plain(k), _plain(v)) for k, v in obj.items())
    return obj


@dataclass_transform(frozen_default=True, field_specifiers=(field, Field))
def record(cls: type[_T]) -> type[_T]:
    """Make CLS a frozen, slotted value class of its annotated fields."""
    return _build(cls, frozen=True)


@dataclass_transform(field_specifiers=(field, Field))
def mutable_record(cls: type[_T]) -> type[_T]:
    """Make CLS a slotted class of its annotated fields that may be assigned to."""
    return _build(cls, frozen=False)


def _own_fields(cls: type) -> list[Field]:
    """The fields CLS's body declares (annotations, bar ClassVar), with their defaults."""
    own = []
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():
        text = annotation if isinstance(annotation, str) else repr(annotation)
        if text.startswith(("ClassVar", "typing.ClassVar")):
            continue
        value = cls.__dict__.get(name, _MISSING)
        made = value if isinstance(value, Field) else Field(value, _MISSING, True, True, True, None)
        made.name = name
        own.append(made)
    return own


def _build(cls: type[_T], frozen: bool) -> type[_T]:
    inherited: dict[str, Field] = {}
    for base in reversed(cls.__mro__[1:]):
        for f in base.__dict__.get("__record_fields__", ()):
            inherited[f.name] = f
    own = _own_fields(cls)
    every = {**inherited, **{f.name: f for f in own}}
    ordered = tuple(every.values())
    body = dict(cls.__dict__)
    for f in own:
        body.pop(f.name, None)
    body.pop("__dict__", None)
    body.pop("__weakref__", None)
    body["__slots__"] = tuple(f.name for f in own if f.name not in inherited)
    body["__record_fields__"] = ordered
    body["__match_args__"] = tuple(f.name for f in ordered if f.init)
    owner: list[type] = []  # the class made here, which the deferred __init__ replaces itself on
    body["__init__"] = _deferred_init(cls, ordered, frozen, owner)
    _add_methods(body, ordered, frozen)
    metaclass: Callable[..., type[_T]] = type(cls)
    made = metaclass(cls.__name__, cls.__bases__, body)
    made.__qualname__ = cls.__qualname__
    owner.append(made)
    return made


def _deferred_init(
    cls: type, every: tuple[Field, ...], frozen: bool, owner: list[type]
) -> Callable[..., None]:
    """__init__ for EVERY: its source is made (and checked) now, compiled at the first call.

    A run instantiates a fraction of the classes it defines; the others never pay for a
    compile. The compiled function then replaces this one on OWNER[0] (the class made from
    CLS), so every later call is as fast as a dataclass's __init__.
    """
    source, scope = _init_source(cls, every, frozen)

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        exec(source, scope)  # noqa: S102 - the source is made here from field names
        made: Callable[..., None] = scope["__init__"]
        made.__qualname__ = f"{cls.__qualname__}.__init__"
        setattr(owner[0], "__init__", made)  # noqa: B010 - mypy refuses assigning a method
        made(self, *args, **kwargs)

    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    return __init__


def _init_source(cls: type, every: tuple[Field, ...], frozen: bool) -> tuple[str, dict[str, Any]]:
    """The source of __init__ for EVERY, and the names it refers to."""
    scope: dict[str, Any] = {"_MISSING": _MISSING, "_set": object.__setattr__}
    params, lines, seen_default = [], [], False
    for i, f in enumerate(every):
        if f.default_factory is not _MISSING:
            scope[f"_f{i}"] = f.default_factory
            value = f"_f{i}() if {f.name} is _MISSING else {f.name}" if f.init else f"_f{i}()"
            default = "_MISSING"
        elif f.default is not _MISSING:
            scope[f"_d{i}"] = f.default
            value, default = f.name, f"_d{i}"
        else:
            value, default = f.name, ""
            if not f.init:
                continue
        if f.init:
            if default:
                seen_default = True
                params.append(f"{f.name}={default}")
            elif seen_default:
                raise TypeError(
                    f"{cls.__name__}: field {f.name!r} without a default follows one with"
                )
            else:
                params.append(f.name)
        elif default and f.default_factory is _MISSING:
            value = default
        lines.append(f"_set(self, {f.name!r}, {value})" if frozen else f"self.{f.name} = {value}")
    if hasattr(cls, "__post_init__"):
        lines.append("self.__post_init__()")
    return f"def __init__(self, {', '.join(params)}):\n " + "\n ".join(lines or ["pass"]), scope


def _add_methods(body: dict[str, Any], every: tuple[Field, ...], frozen: bool) -> None:
    """Equality, hash, repr and (if FROZEN) the refusal to assign, unless the body has them."""
    compared = [f.name for f in every if f.compare]
    hashed = [f.name for f in every if f.hash]
    shown = [f.name for f in every if f.repr]
    key = _getter(compared)

    def __eq__(self: Any, other: Any) -> bool:
        if other.__class__ is self.__class__:
            return bool(key(self) == key(other))
        return NotImplemented

    def __repr__(self: Any) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in shown)
        return f"{self.__class__.__qualname__}({inner})"

    body.setdefault("__eq__", __eq__)
    body.setdefault("__repr__", __repr__)
    if frozen and body.get("__hash__") is None:
        hash_key = _getter(hashed)
        body["__hash__"] = lambda self: hash(hash_key(self))
    if frozen:
        body["__setattr__"] = _refuse_set
        body["__delattr__"] = _refuse_delete
        body["__getstate__"] = _getstate
        body["__setstate__"] = _setstate


def _getter(names: list[str]) -> Callable[[Any], tuple[Any, ...]]:
    """A function from an instance to the tuple of its NAMES fields."""
    if not names:
        return lambda obj: ()
    if len(names) == 1:
        one = attrgetter(names[0])
        return lambda obj: (one(obj),)
    many: Callable[[Any], tuple[Any, ...]] = attrgetter(*names)
    return many


def _refuse_set(self: Any, name: str, value: Any) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _refuse_delete(self: Any, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")


def _getstate(self: Any) -> list[Any]:
    return [getattr(self, f.name) for f in self.__record_fields__]


def _setstate(self: Any, state: list[Any]) -> None:
    for f, value in zip(self.__record_fields__, state, strict=True):
        object.__setattr__(self, f.name, value)
