"""Templates that try to exhaust memory or time: each ends quickly in a TemplateError naming it.

Before the bounds, ``int * int`` in a chain hung, ``~`` doubling grew to gigabytes in seconds
(in ``images inspect`` too, which a user runs before trusting an image), and filters and str
methods such as center, format, indent, join, replace and ljust took any width. Every attempt
here runs through the missing-variable probe (what ``images inspect`` and install's check do)
and through the render itself, and must fail within a few seconds, naming the file.
"""

from __future__ import annotations

import time

import pytest

from syscontainers.errors import TemplateError
from syscontainers.operations.inspect import inspect_image
from syscontainers.operations.install import InstallRequest, install
from syscontainers.render.exports import Syntax, TemplateSource, parse_exports
from syscontainers.render.isolate import WALL_SECONDS
from syscontainers.render.templates import check_complete, render_text
from tests.unit.lifecycle_fixtures import Env, atomic_files

# The guarantee: a render ends within the child's deadline however busy the host is (the CPU
# limit, 3 s, is what it takes on an idle one). Growth is refused by a bound, at once; only
# work that grows nothing (loops, recursion) is stopped by the CPU limit.
QUICK = WALL_SECONDS
BY_CPU = ("nested loops", "branching recursion", "output")
BIG = "{% set s = 'x' * 4000000 %}"
DOUBLING = "".join(f"{{% set s{i + 1} = s{i} ~ s{i} %}}" for i in range(12))

ATTEMPTS = {
    "int chain": "{% set a = 9 ** 64 %}{% set b = a * a %}{% set c = b * b %}{% set d = c * c %}"
    "{% set e = d * d %}{% set f = e * e %}{% set g = f * f %}{{ g * g }}",
    "int times int": "{{ (10 ** 1000) * (10 ** 1000) * (10 ** 1000) * (10 ** 1000) }}",
    "power": "{{ 9 ** 999999 }}",
    "power of big base": "{{ (2 ** 4000) ** 3 }}",
    "string times int": "{{ 'ab' * 1000000000 }}",
    "list times int": "{{ [1] * 1000000000 }}",
    "list of big strings": BIG + "{{ [s] * 100 }}",
    "tilde doubling": "{% set s0 = 'x' * 1000000 %}" + DOUBLING + "{{ s12 }}",
    "tilde in a recursive macro": "{% macro f(s, n) %}{% if n %}{{ f(s ~ s, n - 1) }}"
    "{% else %}{{ s }}{% endif %}{% endmacro %}{{ f('x', 40) }}",
    "plus doubling": "{% macro f(s, n) %}{% if n %}{{ f(s + s, n - 1) }}{% else %}{{ s }}"
    "{% endif %}{% endmacro %}{{ f('x', 40) }}",
    "range": "{{ range(10 ** 9) | list }}",
    "center": "{{ 'x' | center(10 ** 9) }}",
    "center, a literal": "{{ 'x' | center(1000000000) }}",
    "format width": "{{ '%999999999s' | format('x') }}",
    "format star width": "{{ '%*s' | format(999999999, 'x') }}",
    "format many": BIG + "{{ '%s%s%s%s%s' | format(s, s, s, s, s) }}",
    "percent": BIG + "{{ '%s%s%s%s' % (s, s, s, s) }}",
    "percent width": "{{ '%0999999999d' % 1 }}",
    "indent width": "{{ 'x\ny' | indent(1000000000) }}",
    "indent many lines": "{{ ('x\n' * 1000000) | indent(100) }}",
    "join separator": "{{ range(100000) | join('x' * 1000000) }}",
    "join items": BIG + "{{ [s, s, s] | join }}",
    "replace": "{{ ('x' * 1000000) | replace('x', 'y' * 1000) }}",
    "wordwrap": "{{ ('ab ' * 1000000) | wordwrap(1, wrapstring='z' * 1000) }}",
    "batch": "{{ [1] | batch(1000000000, 'x') | list }}",
    "sum of lists": "{% set l = [1] * 1000000 %}{{ [l, l, l, l] | sum(start=[]) }}",
    "tojson": BIG + "{{ [s, s, s] | tojson }}",
    "str.ljust": "{{ 'x'.ljust(1000000000) }}",
    "str.zfill": "{{ '1'.zfill(10 ** 9) }}",
    "str.center": "{{ 'x'.center(1000000000) }}",
    "str.format width": "{{ '{:>999999999}'.format('x') }}",
    "str.format nested": "{{ '{:>{w}}'.format('x', w=999999999) }}",
    "str.format_map": BIG + "{{ '{a}{a}{a}{a}'.format_map({'a': s}) }}",
    "str.join": BIG + "{{ s.join(['a', 'b', 'c']) }}",
    "str.replace": "{{ ('x' * 1000000).replace('x', 'yyyy' * 1000) }}",
    "str.expandtabs": "{{ ('\t' * 1000).expandtabs(10000000) }}",
    "int.to_bytes": "{{ (1).to_bytes(1000000000, 'big') }}",
    "output": "{% for a in range(100000) %}{% for b in range(100000) %}xxxxxxxxxx"
    "{% endfor %}{% endfor %}",
    "output of a big value": BIG + "{% for i in range(10) %}{{ s }}{% endfor %}",
    "filter block": BIG + "{% filter upper %}{% for i in range(10) %}{{ s }}{% endfor %}"
    "{% endfilter %}",
    "set block": BIG + "{% set t %}{% for i in range(10) %}{{ s }}{% endfor %}{% endset %}{{ t }}",
    "nested loops": "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}"
    "{% endfor %}",
    "branching recursion": "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}"
    "{% endmacro %}{{ f(60) }}",
}


@pytest.mark.parametrize(("label", "text"), ATTEMPTS.items(), ids=ATTEMPTS.keys())
def test_an_exhausting_template_ends_quickly_with_an_error(label: str, text: str) -> None:
    # V unset makes the missing-variable probe render the template, as images inspect does
    exports = parse_exports({"service.j2": ("{{ V is defined }}" + text).encode()})
    assert exports.service is not None
    for step in (
        lambda: check_complete(exports, {}),
        lambda: render_text(exports.service, {"V": "v"}),
    ):
        start = time.monotonic()
        with pytest.raises(TemplateError) as info:
            step()
        assert time.monotonic() - start < QUICK
        assert info.value.message.startswith("service.j2"), info.value.message
        assert info.value.hint
        if label not in BY_CPU:
            assert "rendering was stopped" not in info.value.message, info.value.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "{{ 'ab' * 3 }}|{{ 2 ** 10 }}|{{ 7 * 6 }}|{{ 10 // 3 }}|{{ 7 % 4 }}|{{ 1 - 3 }}",
            "ababab|1024|42|3|3|-2",
        ),
        (
            "{{ 'x' | center(5) }}|{{ '%5s' | format('a') }}|{{ '%s-%s' % ('a', 'b') }}",
            "  x  |    a|a-b",
        ),
        (
            "{{ 'a\nb' | indent(2, first=true) }}|{{ [1, 2] | join(',') }}"
            "|{{ 'aa' | replace('a', 'b') }}",
            "  a\n  b|1,2|bb",
        ),
        (
            "{{ 'x'.ljust(3) }}.|{{ '{:>3}'.format('y') }}|{{ '{a}'.format_map({'a': 1}) }}",
            "x  .|  y|1",
        ),
        (
            "{% macro f(s, n) %}{% if n %}{{ f(s ~ s, n - 1) }}{% else %}{{ s }}{% endif %}"
            "{% endmacro %}{{ f('x', 3) | length }}",
            "8",
        ),
        (
            "{{ [1, 2, 3] | batch(2) | list }}|{{ [[1], [2]] | sum(start=[]) }}|{{ 'a' ~ 1 }}",
            "[[1, 2], [3]]|[1, 2]|a1",
        ),
        (
            "{% for i in range(3) %}{{ i }}{% endfor %}|{{ range(5) | map('string') | join }}",
            "012|01234",
        ),
    ],
)
def test_ordinary_templates_still_render(text: str, expected: str) -> None:
    assert render_text(TemplateSource("x.j2", text, Syntax.JINJA), {}) == expected


def test_a_large_ordinary_output_renders(tmp_path: object) -> None:
    """A value of a few MiB (a template may be 4 MiB) is fine: the bounds are far above."""
    text = "{{ A }}{% for i in range(1000) %}{{ i }}{% endfor %}"
    out = render_text(TemplateSource("x.j2", text, Syntax.JINJA), {"A": "a" * (3 << 20)})
    assert len(out) == (3 << 20) + sum(len(str(i)) for i in range(1000))


def test_inspect_and_install_of_an_exhausting_image_end_with_an_error(env: Env) -> None:
    text = ("{{ V is defined }}" + ATTEMPTS["tilde in a recursive macro"]).encode()
    files = atomic_files(**{"exports/service.j2": text})
    env.pull(env.layout("hostile", files), "example.org/hostile:1")
    for step in (
        lambda: inspect_image(env.store, "example.org/hostile:1"),
        lambda: install(env.host, InstallRequest("example.org/hostile:1", name="web")),
    ):
        start = time.monotonic()
        with pytest.raises(TemplateError) as info:
            step()
        assert time.monotonic() - start < QUICK
        assert "/exports/service.j2" in info.value.message or "service.j2" in info.value.message
    assert not env.dep().exists() or list(env.dep().iterdir()) == []
