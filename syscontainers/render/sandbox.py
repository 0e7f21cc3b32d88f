"""The bounded jinja2 sandbox: every operator, filter and method that can grow a value is checked.

jinja2's immutable sandbox stops attribute tricks, not resource exhaustion: ``'x' * 10**9``,
squaring an integer in a chain, ``s ~ s`` doubling in a recursive macro, ``center(10**9)``,
``'%*s' | format(10**9, '')``, ``[s] * 10**6 | join``, ``'x'.ljust(10**9)`` each allocate
gigabytes in one step. Here the size of a result is predicted *before* it is made, from the
operands, and refused above ``MAX_STRING`` characters (strings, and containers measured by what
``str()`` would make of them) or ``MAX_INT_BITS`` bits; whatever reaches the output is measured
too. What these checks do not foresee, the child process of ``render.isolate`` bounds by CPU
time and memory.

Only ``render.jinja`` imports this module (it imports jinja2, which is not cheap).
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from jinja2.compiler import CodeGenerator
from jinja2.environment import Environment
from jinja2.exceptions import SecurityError
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from syscontainers.render.exports import MAX_OUTPUT

MAX_STRING = MAX_OUTPUT  # characters in one value or in the output
MAX_INT_BITS = 4096  # an integer's size; 2**4096 has 1,234 digits
MAX_WIDTH = 10_000  # a padding or field width (center, ljust, '%10000s', '{:>10000}')
MAX_ITEMS = 100_000  # items a filter may make from a count (batch, slice): as range()

# '%' conversions: flags, width, precision ('*' takes them from the arguments)
_PERCENT = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?([a-zA-Z%])")


_PASSED = (Context, EvalContext, Environment)  # what pass_context & co. put before the value


class TooLarge(SecurityError):
    """A value a template would make is over a limit (caught as a template error)."""


def size(value: Any, limit: int = MAX_STRING) -> int:
    """About len(str(VALUE)), counted only up to a little past LIMIT (so it stays cheap)."""
    if isinstance(value, str | bytes | bytearray):
        return len(value)
    if isinstance(value, bool) or value is None:
        return 5
    if isinstance(value, int):
        return value.bit_length() * 3 // 10 + 2
    if isinstance(value, list | tuple | set | frozenset | dict):
        items: Iterable[Any] = value.items() if isinstance(value, dict) else value
        total = 2
        for item in items:
            total += size(item, limit - total) + 2
            if total > limit:
                break
        return total
    return 32  # floats, Undefined, macros, loop objects: small when printed


def check(value: Any, what: str) -> Any:
    """VALUE, if it is within the limits; TooLarge naming WHAT otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value.bit_length() > MAX_INT_BITS:
            raise TooLarge(f"{what}: an integer over {MAX_INT_BITS} bits")
    elif size(value) > MAX_STRING:
        raise TooLarge(f"{what}: a value over {MAX_STRING} characters")
    return value


def _expect(predicted: int, what: str) -> None:
    if predicted > MAX_STRING:
        raise TooLarge(f"{what}: the result would have about {predicted} characters")


def _width(value: Any, what: str) -> None:
    if isinstance(value, int) and abs(value) > MAX_WIDTH:
        raise TooLarge(f"{what}: a width of {value} (at most {MAX_WIDTH})")


def _bits(left: Any, right: Any) -> tuple[int, int] | None:
    if all(isinstance(v, int) and not isinstance(v, bool) for v in (left, right)):
        return abs(left).bit_length(), abs(right).bit_length()
    return None


def _is_seq(value: Any) -> bool:
    return isinstance(value, str | bytes | list | tuple)


# --- operators ------------------------------------------------------------------------------


def percent_format(fmt: str, args: Any, what: str) -> None:
    """Refuse FMT % ARGS if a width is '*' or large, or the result would be too long."""
    conversions = 0
    for m in _PERCENT.finditer(fmt):
        for part in (m.group(1), m.group(2)):
            if part == "*":
                raise TooLarge(f"{what}: a '*' width or precision")
            if part:
                _width(int(part), what)
        conversions += m.group(3) != "%"
    values = args.values() if isinstance(args, Mapping) else args
    if isinstance(values, tuple | list) or isinstance(args, Mapping):
        longest = max((size(v) for v in values), default=0)
    else:
        longest = size(args)
    _expect(len(fmt) + conversions * (longest + MAX_WIDTH), what)


def check_binop(op: str, left: Any, right: Any) -> None:
    """Refuse LEFT OP RIGHT when its result would be over a limit (predicted, not made)."""
    what = f"'{op}'"
    bits = _bits(left, right)
    if op == "**":
        if bits and bits[0] > 1 and right > 0 and bits[0] * right > MAX_INT_BITS:
            raise TooLarge(f"{what}: an integer over {MAX_INT_BITS} bits")
        if isinstance(right, int) and abs(right) > MAX_INT_BITS:
            raise TooLarge(f"{what}: an exponent of {right}")
    elif op == "*":
        if bits and sum(bits) > MAX_INT_BITS:
            raise TooLarge(f"{what}: an integer over {MAX_INT_BITS} bits")
        for seq, times in ((left, right), (right, left)):
            if _is_seq(seq) and isinstance(times, int):
                _expect(size(seq) * max(times, 0), what)
    elif op == "+" and _is_seq(left) and _is_seq(right):
        _expect(size(left) + size(right), what)
    elif op == "%" and isinstance(left, str):
        percent_format(left, right, what)


def concat(values: Iterable[Any]) -> str:
    """'~', every buffer a template joins and its whole output: refused past MAX_STRING,
    counted part by part as they come, before the joined string is made."""
    parts: list[Any] = []
    total = 0
    for part in values:
        total += size(part, MAX_STRING - total)
        if total > MAX_STRING:
            raise TooLarge(
                f"the output, or a string joined with '~', is over {MAX_STRING} characters"
            )
        parts.append(part)
    return "".join(map(str, parts))


# --- methods --------------------------------------------------------------------------------


def _str_format(fmt: str, args: tuple[Any, ...], kwargs: Mapping[str, Any], what: str) -> None:
    fields = 0
    for _, name, spec, _ in string.Formatter().parse(fmt):
        if name is None:
            continue
        fields += 1
        if spec and "{" in spec:
            raise TooLarge(f"{what}: a nested replacement field in a format spec")
        m = re.search(r"(\d+)(?:\.(\d+))?[a-zA-Z%]?$", spec or "")
        if m:
            for part in m.groups():
                if part:
                    _width(int(part), what)
    longest = max((size(v) for v in (*args, *kwargs.values())), default=0)
    _expect(len(fmt) + fields * (longest + MAX_WIDTH), what)


def _method_check(name: str, owner: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    what = f".{name}()"
    if name in ("ljust", "rjust", "center", "zfill", "to_bytes") and args:
        _width(args[0], what)
    elif name == "expandtabs":
        tab = args[0] if args else kwargs.get("tabsize", 8)
        _expect(size(owner) * (abs(tab) if isinstance(tab, int) else 8), what)
    elif name == "join" and args:
        items = list(args[0]) if not isinstance(args[0], str) else args[0]
        _expect(size(owner) * len(items) + sum(size(i) for i in items), what)
    elif name == "replace" and len(args) >= 2:
        old, new = args[0], args[1]
        count = owner.count(old) if isinstance(owner, str | bytes) and old else size(owner) + 1
        _expect(size(owner) + count * size(new), what)
    elif name == "translate" and args and isinstance(args[0], Mapping):
        longest = max((size(v) for v in args[0].values()), default=1)
        _expect(size(owner) * longest, what)
    elif name in ("format", "format_map") and isinstance(owner, str):
        mapping = args[0] if name == "format_map" and args else kwargs
        _str_format(owner, args if name == "format" else (), mapping, what)


def check_call(obj: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Refuse a call of a growing str/bytes/int method whose result would be over a limit."""
    wrapped = getattr(obj, "__wrapped__", obj)  # the sandbox wraps str.format
    owner = getattr(wrapped, "__self__", None)
    if isinstance(owner, str | bytes | int) and not isinstance(owner, bool):
        _method_check(getattr(wrapped, "__name__", ""), owner, args, kwargs)
    for value in (*args, *kwargs.values()):
        check(value, "an argument")


# --- filters --------------------------------------------------------------------------------


def _filter_checks(name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    what = f"filter '{name}'"
    value = args[0] if args else ""
    rest = args[1:]
    if name == "center":
        _width(rest[0] if rest else kwargs.get("width", 80), what)
    elif name == "indent":
        width = rest[0] if rest else kwargs.get("width", 4)
        _width(width, what)
        lines = str(value).count("\n") + 1
        _expect(size(value) + lines * (size(width) if isinstance(width, str) else abs(width)), what)
    elif name == "format":
        percent_format(str(value), kwargs or rest, what)
    elif name == "join":
        items = list(value) if not isinstance(value, str) else value
        sep = rest[0] if rest else kwargs.get("d", "")
        _expect(sum(size(i) for i in items) + len(items) * size(sep), what)
    elif name == "replace" and len(rest) >= 2:
        _method_check("replace", str(value), (rest[0], rest[1]), {})
    elif name == "wordwrap":
        wrap = kwargs.get("wrapstring", rest[3] if len(rest) > 3 else "\n")
        _expect(size(value) * (1 + size(wrap)), what)
    elif name in ("batch", "slice"):
        count = rest[0] if rest else kwargs.get("linecount", kwargs.get("slices", 1))
        if isinstance(count, int) and abs(count) > MAX_ITEMS:
            raise TooLarge(f"{what}: a count of {count} (at most {MAX_ITEMS})")
    elif name == "sum":
        items = list(value)
        if any(_is_seq(i) for i in items) or _is_seq(kwargs.get("start")):
            _expect(sum(size(i) for i in items) + size(kwargs.get("start", 0)), what)


def bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """FUNC with its input checked and, where it can grow, its result predicted first."""

    @functools.wraps(func)  # keeps jinja_pass_arg: the compiler passes what FUNC wants
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        lead = 1 if args and isinstance(args[0], _PASSED) else 0
        values = list(args[lead:])
        if values and isinstance(values[0], Iterator):  # a generator: check what it yields
            values[0] = list(values[0])
        for value in (*values, *kwargs.values()):
            check(value, f"filter '{name}'")
        _filter_checks(name, tuple(values), kwargs)
        result = func(*args[:lead], *values, **kwargs)
        return check(result, f"filter '{name}'")

    return wrapper


# --- the environment ------------------------------------------------------------------------


class _BoundedCodeGenerator(CodeGenerator):
    """Compiles '~' and buffer joins to ``concat`` above instead of jinja2's own."""

    def writeline(self, x: str, node: Any = None, extra: int = 0) -> None:
        super().writeline(x, node, extra)
        if x.startswith("from jinja2.runtime import "):
            super().writeline("concat = str_join = environment.bounded_concat")


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox with every growing operation bounded (see the module docstring)."""

    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "-", "/", "//", "%"})
    bounded_concat = staticmethod(concat)

    def __init__(self, **options: Any) -> None:
        super().__init__(finalize=lambda v: check(v, "output"), **options)
        self.filters = {n: bounded_filter(n, f) for n, f in self.filters.items()}
        self.concat = concat  # type: ignore[method-assign]

    def call_binop(self, context: Context, operator_: str, left: Any, right: Any) -> Any:
        """LEFT OPERATOR RIGHT, refused when its result would be too large."""
        check_binop(operator_, left, right)
        return check(self.binop_table[operator_](left, right), f"'{operator_}'")

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        """Call __OBJ for the template, refused when its result would be too large."""
        check_call(__obj, args, kwargs)
        return check(super().call(__context, __obj, *args, **kwargs), "a call")
