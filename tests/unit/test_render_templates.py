"""Tests for syscontainers.render.templates: both syntaxes, missing variables, the sandbox."""

from __future__ import annotations

import json

import pytest

from syscontainers.errors import TemplateError
from syscontainers.render.exports import Exports, Syntax, TemplateSource, parse_exports
from syscontainers.render.templates import (
    VariableKind,
    check_complete,
    missing_variables,
    render_text,
    template_variables,
)
from tests.unit.render_fixtures import etcd_exports


def atomic(text: str, name: str = "x.template") -> TemplateSource:
    return TemplateSource(name, text, Syntax.ATOMIC)


def jinja(text: str, name: str = "x.j2") -> TemplateSource:
    return TemplateSource(name, text, Syntax.JINJA)


@pytest.mark.parametrize(
    ("text", "values", "expected"),
    [
        ("$A-${B}c", {"A": "1", "B": "2"}, "1-2c"),
        ("cost $$5 and $$A", {}, "cost $5 and $A"),
        ("${NAME}ctl $NAME.etcd", {"NAME": "db"}, "dbctl db.etcd"),
        ("[a$M]", {"M": ',{"x":"y"}'}, '[a,{"x":"y"}]'),
        ("raw $Q", {"Q": 'he said "hi"\n'}, 'raw he said "hi"\n'),
        ("no vars at all", {}, "no vars at all"),
    ],
)
def test_atomic_substitution(text: str, values: dict[str, str], expected: str) -> None:
    assert render_text(atomic(text), values) == expected


@pytest.mark.parametrize("text", ["ok\nExecStart=echo $1", "a $ b", "${unterminated"])
def test_atomic_invalid_placeholder_names_file_and_line(text: str) -> None:
    with pytest.raises(TemplateError) as info:
        render_text(atomic(text, "service.template"), {})
    assert info.value.message.startswith("service.template: line")
    assert "$$" in (info.value.hint or "")


def test_verbatim_is_untouched() -> None:
    assert render_text(TemplateSource("config.json", "$A {{B}}", Syntax.VERBATIM), {}) == "$A {{B}}"


def test_jinja_renders_plain_strings() -> None:
    out = render_text(
        jinja("{{ NAME | upper }} {% for p in PORTS.split(',') %}[{{p}}]{% endfor %}"),
        {"NAME": "db", "PORTS": "1,2"},
    )
    assert out == "DB [1][2]"


@pytest.mark.parametrize(
    "value",
    ['he said "hi"', "two\nlines", "back\\slash", "tab\there", "ünï", "</script>", "'quote'", ""],
)
def test_jinja_tojson_is_json_safe(value: str) -> None:
    out = render_text(
        jinja('{"env": [{{ ("X=" ~ V) | tojson }}], "v": {{ V | tojson }}}'), {"V": value}
    )
    assert json.loads(out) == {"env": ["X=" + value], "v": value}


def _everything_missing() -> Exports:
    manifest = {
        "renameFiles": {"/etc/a.conf": "$CONFDIR/a.conf"},
        "installedFilesTemplate": ["/etc/motd"],
        "defaultValues": {"HAS_DEFAULT": "1"},
    }
    return parse_exports(
        {
            "config.json.template": b'{"a": "$ALPHA", "b": "${BETA}", "d": "$HAS_DEFAULT"}',
            "service.j2": b"X={{ GAMMA }} {% if OPT is defined %}{{ OPT }}{% endif %}"
            b"{{ D|default('') }}",
            "tmpfiles.template": b"d $ALPHA 0700 - - - -\n",
            "manifest.json": json.dumps(manifest).encode(),
            "hostfs/etc/motd": b"hello $RECEIVER",
            "hostfs/etc/a.conf": b"not a template $IGNORED",
        }
    )


def test_every_missing_variable_is_collected() -> None:
    missing = missing_variables(_everything_missing(), {"HAS_DEFAULT": "1"})
    assert missing == {
        "config.json.template": {"ALPHA", "BETA"},
        "service.j2": {"GAMMA"},
        "tmpfiles.template": {"ALPHA"},
        "manifest.json renameFiles": {"CONFDIR"},
        "hostfs/etc/motd": {"RECEIVER"},
    }


def test_check_complete_reports_all_at_once_with_hint() -> None:
    with pytest.raises(TemplateError) as info:
        check_complete(_everything_missing(), {}, what='image "example/app:1"')
    message, hint = info.value.message, info.value.hint or ""
    assert message.startswith('image "example/app:1" needs values for ALPHA, BETA, CONFDIR')
    for file in ("config.json.template", "service.j2", "tmpfiles.template", "hostfs/etc/motd"):
        assert file in message
    for name in ("ALPHA", "BETA", "CONFDIR", "GAMMA", "HAS_DEFAULT", "RECEIVER"):
        assert f"--set {name}=..." in hint
    assert "OPT" not in message and "IGNORED" not in message


def test_check_complete_passes_when_all_given() -> None:
    values = dict.fromkeys(["ALPHA", "BETA", "CONFDIR", "GAMMA", "HAS_DEFAULT", "RECEIVER"], "v")
    check_complete(_everything_missing(), values)  # raises if anything were missing
    for name in values:  # and each value is needed: without it, it is named
        fewer = {k: v for k, v in values.items() if k != name}
        with pytest.raises(TemplateError, match=f"needs values for {name} \\("):
            check_complete(_everything_missing(), fewer)


def test_jinja_missing_inside_taken_branch_only() -> None:
    exports = parse_exports(
        {"service.j2": b"{% if MODE == 'a' %}{{ A_ONLY }}{% else %}{{ B_ONLY }}{% endif %}"}
    )
    assert missing_variables(exports, {"MODE": "a"}) == {"service.j2": {"A_ONLY"}}
    assert missing_variables(exports, {}) == {"service.j2": {"MODE", "B_ONLY"}}


@pytest.mark.parametrize(
    "text",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ lipsum.__globals__['os'] }}",
        "{{ joiner.__init__.__globals__ }}",
        "{{ namespace.__init__.__globals__ }}",
        "{{ range.__self__ }}",
        "{{ dict.mro() }}",
        "{% include '/etc/passwd' %}",
        "{% import 'x' as y %}",
        "{% from 'x' import y %}",
        "{% extends '/etc/passwd' %}",
        "{{ self }}",
        "{{ self._TemplateReference__context }}",
        "{{ [].append(1) }}",
        "{% set d = {} %}{{ d.update({'a': 1}) }}",
        "{{ '{0.__class__}'.format(1) }}",
        "{{ 'x' * 100000000 }}",
        "{{ 9 ** 999999 }}",
        "{{ V.__class__ }}",
        "{{ V|attr('__class__') }}",
    ],
)
def test_sandbox_escapes_are_rejected(text: str) -> None:
    exports = parse_exports({"service.j2": text.encode()})
    with pytest.raises(TemplateError) as info:
        check_complete(exports, {"V": "v"})
        render_text(exports.service, {"V": "v"})  # type: ignore[arg-type]
    assert "service.j2" in info.value.message


def test_jinja_errors_name_file_and_line() -> None:
    with pytest.raises(TemplateError) as info:
        render_text(jinja("line one\n{{ 1 / 0 }}", "config.json.j2"), {})
    assert info.value.message.startswith("config.json.j2: line 2")
    with pytest.raises(TemplateError) as info:
        render_text(jinja("a\nb\n{% if %}", "tmpfiles.j2"), {})
    assert info.value.message.startswith("tmpfiles.j2: line 3")


def test_jinja_strict_undefined_at_render() -> None:
    with pytest.raises(TemplateError, match="x.j2"):
        render_text(jinja("{{ NOPE }}"), {})


def test_template_variables_for_images_inspect() -> None:
    variables = template_variables(etcd_exports())
    kinds = {name: (v.kind, v.default) for name, v in variables.items()}
    assert kinds["ETCD_INITIAL_CLUSTER_STATE"] == (VariableKind.DEFAULT, "new")
    assert kinds["ADDTL_MOUNTS"] == (VariableKind.DEFAULT, "")
    assert kinds["CONF_DIRECTORY"] == (VariableKind.OS, None)
    assert kinds["ALL_PROCESS_CAPABILITIES"] == (VariableKind.OS, None)
    assert kinds["PIDFILE"] == (VariableKind.OS, None)
    assert kinds["EXEC_START"] == (VariableKind.FORCED, None)


def test_template_variables_required_and_optional() -> None:
    variables = template_variables(_everything_missing())
    kinds = {name: v.kind for name, v in variables.items()}
    assert kinds["ALPHA"] is kinds["RECEIVER"] is kinds["CONFDIR"] is VariableKind.REQUIRED
    assert kinds["OPT"] is kinds["D"] is VariableKind.OPTIONAL
    assert kinds["HAS_DEFAULT"] is VariableKind.DEFAULT
    assert "IGNORED" not in kinds
