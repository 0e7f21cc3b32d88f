"""The error hierarchy stays in one place, and errors without a hint do not multiply.

Every exception class the package defines lives in syscontainers/errors.py, except a few
internal signals that are caught and translated before they reach a user (INTERNAL). And
every place that makes a SysContainersError gives a hint (what the user can do), except the
sites listed in HINTLESS, where there is nothing useful to say beyond the message.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from collections import Counter
from pathlib import Path

import pytest

import syscontainers
from syscontainers import cli, errors
from syscontainers.registry import registries_conf
from syscontainers.runtime import Runtime

PACKAGE = Path(syscontainers.__file__).parent

# Internal signals: never a SysContainersError, each caught and translated into one near
# where it is raised (named here by module and class).
INTERNAL = {
    # a bug, not a user's error (as dataclasses.FrozenInstanceError): code assigned to a
    # field of a frozen record; never caught
    "syscontainers.record.FrozenInstanceError",
    # a body past its reader's limit; caught by that reader in the same module
    "syscontainers.registry.http._TooLarge",
    # a transfer that broke off and may be resumed: the registry client's body iterator
    # raises it, ResumableStream catches it and retries or raises RegistryError
    "syscontainers.registry.stream.Interrupted",
    # must subclass jinja2's SecurityError for the sandbox to stop a render; render.jinja
    # turns it into TemplateError (errors.py does not import jinja2)
    "syscontainers.render.sandbox.TooLarge",
    # a problem at a JSON location; parse_policy adds the file and raises PolicyError
    "syscontainers.trust.policy._Invalid",
    # a key that cannot be used; the caller in the same module raises PolicyError
    "syscontainers.trust.sigstore._Unusable",
}

# Sites (file:function:class, with how many) that make an error without a hint, because
# nothing the user can do follows from it. A new site without a hint fails the test: give
# it a hint (what to run, change or check), or, if there really is none, add it here.
HINTLESS = Counter(
    {
        # read_info turns these into damaged_info, which names the info.json and says how to repair
        # it; their own message becomes its detail
        "syscontainers/deploy/layout.py:HostDirRecord.from_json:StoreCorruptError": 1,
        "syscontainers/deploy/layout.py:HostFileRecord.from_json:StoreCorruptError": 1,
        "syscontainers/render/values.py:KeptValues.from_json:StoreCorruptError": 4,
        # checks of the caller's own arguments, never an image's or a user's: the paths are fixed
        # names (etc/passwd) or hostfs entries that parse_exports has already checked
        "syscontainers/render/exports.py:_read_under:TemplateError": 1,
        "syscontainers/render/hostfs.py:host_destination:TemplateError": 1,
    }
)


def _modules() -> list[str]:
    names = ["syscontainers"]
    for info in pkgutil.walk_packages([str(PACKAGE)], "syscontainers."):
        if not info.name.endswith(".__main__"):  # importing it runs the CLI
            names.append(info.name)
    return names


def _exception_classes() -> set[str]:
    found = set()
    for name in _modules():
        module = importlib.import_module(name)
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == name
            ):
                found.add(f"{name}.{value.__qualname__}")
    return found


def test_every_exception_class_is_in_errors_py() -> None:
    outside = {
        name for name in _exception_classes() if not name.startswith("syscontainers.errors.")
    }
    assert outside - INTERNAL == set(), "define these in syscontainers/errors.py"
    assert INTERNAL - outside == set(), "gone: take them out of INTERNAL"


def test_internal_signals_are_not_user_errors() -> None:
    for name in INTERNAL:
        module, _, cls = name.rpartition(".")
        assert not issubclass(
            getattr(importlib.import_module(module), cls), errors.SysContainersError
        ), name


def _always_hinted() -> set[str]:
    """Error classes that give a hint whatever the call site passes."""
    base = errors.SysContainersError
    return {
        name
        for name, cls in vars(errors).items()
        if inspect.isclass(cls)
        and issubclass(cls, base)
        and (cls.default_hint or cls.__init__ is not base.__init__)
    }


class _Sites(ast.NodeVisitor):
    """Calls of error classes without a hint, keyed by file, enclosing function and class."""

    def __init__(self, where: str, classes: set[str]) -> None:
        self.where, self.classes, self.scope = where, classes, ["<module>"]
        self.found: Counter[str] = Counter()

    def _enter(self, node: ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    visit_ClassDef = visit_FunctionDef = visit_AsyncFunctionDef = _enter

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        hints = [*node.args[1:2], *(k.value for k in node.keywords if k.arg in ("hint", None))]
        hinted = any(not (isinstance(h, ast.Constant) and not h.value) for h in hints)
        if name in self.classes and not hinted:
            scope = ".".join(self.scope[1:]) or "<module>"
            self.found[f"{self.where}:{scope}:{name}"] += 1
        self.generic_visit(node)


def hintless_sites() -> Counter[str]:
    """Every place in the package that makes an error that may have no hint."""
    classes = {
        name
        for name, cls in vars(errors).items()
        if inspect.isclass(cls) and issubclass(cls, errors.SysContainersError)
    }
    classes -= _always_hinted()
    found: Counter[str] = Counter()
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "errors.py" and path.parent == PACKAGE:
            continue
        sites = _Sites(str(path.relative_to(PACKAGE.parent)), classes)
        sites.visit(ast.parse(path.read_text(), str(path)))
        found += sites.found
    return found


def test_no_new_error_without_a_hint() -> None:
    new = hintless_sites() - HINTLESS
    assert not new, f"give these errors a hint (or list them in HINTLESS): {sorted(new)}"


def test_the_hintless_list_is_not_stale() -> None:
    gone = HINTLESS - hintless_sites()
    assert not gone, f"these sites now have a hint or moved; update HINTLESS: {sorted(gone)}"


def test_the_counter_sees_a_hintless_error() -> None:
    tree = ast.parse(
        "def f():\n    raise StoreError('x')\n    raise StoreError('y', 'z')\n"
        "    raise StoreError('w', hint='v')\n    raise ManifestError('u')\n"
        "    raise StoreError('t', hint=None)\n    raise StoreError('s', '')\n"
    )
    sites = _Sites("m.py", {"StoreError"} | ({"ManifestError"} - _always_hinted()))
    sites.visit(tree)
    assert sites.found == Counter({"m.py:f:StoreError": 3})


# ---- a few of the hints, as the user meets them ----------------------------------------------


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("[[registry]]\nlocation = 5\n", "see containers-registries.conf(5)"),
        ("aliases = 3\n", "see containers-registries.conf(5)"),
        ('[aliases]\n"web" = "web"\n', "give the alias a registry host"),
        ('[aliases]\n"Web" = "docker.io/library/web"\n', ""),
    ],
)
def test_a_malformed_registries_conf_has_a_hint(tmp_path: Path, text: str, hint: str) -> None:
    conf = tmp_path / "registries.conf"
    conf.write_text(text)
    with pytest.raises(errors.UsageError, match=str(conf)) as err:
        registries_conf.load(conf, [])
    assert err.value.hint and hint in err.value.hint


def test_an_unparsable_runtime_setting_shows_how_to_quote_it() -> None:
    with pytest.raises(errors.UsageError, match="cannot be parsed") as err:
        Runtime.parse("/usr/bin/crun '--cgroup-manager=disabled")
    assert err.value.hint and "quote it as a shell would" in err.value.hint


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("root: [unclosed\n", "hint: fix the line it names"),
        ("- root\n", "hint: write one 'name: value' line per setting"),
    ],
)
def test_a_malformed_config_file_has_a_hint(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    text: str,
    hint: str,
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(text)
    monkeypatch.setenv("SYSCONTAINERS_CONFIG", str(config))
    assert cli.main(["--root", str(tmp_path / "store"), "images", "list"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: config {config}") and hint in err, err
