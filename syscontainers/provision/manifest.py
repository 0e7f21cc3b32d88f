"""The host manifest ``apply`` converges a host to: YAML, read with line numbers in every error.

The format (``/etc/syscontainers/host.yaml`` by convention)::

    version: 1                    # optional; 1 is the only version
    containers:                   # container name -> what it should be
      web:
        image: example.org/web:1  # required: a stored or registry image, or oci:DIR:TAG …
        values:                   # template values, as install --set KEY=VALUE
          PORT: 8081
        runtime: /usr/bin/crun    # optional: default the runtime setting (runc)
        enabled: true             # optional, default true: started at boot
        started: true             # optional, default true: running now (not with --sysroot)
        update: missing           # optional: missing (default) pulls an image only when it
                                  # is not in the store; always pulls it on every apply

The YAML is composed into nodes (never constructed into Python objects first),
so a duplicate key, a wrong type or an unknown key is reported with the line it
is on, and nothing but plain scalars, mappings and lists is accepted.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

from syscontainers.deploy.layout import name_problem
from syscontainers.errors import UsageError
from syscontainers.record import record

STR = "tag:yaml.org,2002:str"
BOOL = "tag:yaml.org,2002:bool"
INT = "tag:yaml.org,2002:int"
FLOAT = "tag:yaml.org,2002:float"
NULL = "tag:yaml.org,2002:null"
CONTAINER_KEYS = ("image", "values", "runtime", "enabled", "started", "update")


class UpdatePolicy(Enum):
    """When apply pulls a container's image."""

    MISSING = "missing"  # only when the store does not have it
    ALWAYS = "always"  # on every apply: a newer image for the same tag is an update


@record
class ContainerSpec:
    """One container as the manifest wants it."""

    name: str
    image: str
    values: tuple[tuple[str, str], ...] = ()
    runtime: str | None = None  # None: the runtime setting
    enabled: bool = True
    started: bool = True
    update: UpdatePolicy = UpdatePolicy.MISSING
    line: int = 0  # where it is in the manifest, for messages

    def value_map(self) -> dict[str, str]:
        """The values as a dict."""
        return dict(self.values)


@record
class HostManifest:
    """A whole manifest: the containers in file order."""

    path: str
    containers: tuple[ContainerSpec, ...] = ()

    def names(self) -> tuple[str, ...]:
        """The container names."""
        return tuple(c.name for c in self.containers)


class _Reader:
    """Checks nodes of one file, naming the file and line in every error."""

    def __init__(self, where: str) -> None:
        self.where = where

    def error(self, node: object, message: str, hint: str | None = None) -> UsageError:
        line = getattr(getattr(node, "start_mark", None), "line", -1) + 1
        at = f"{self.where}, line {line}" if line > 0 else self.where
        return UsageError(
            f"{at}: {message}",
            hint=hint or "see 'Provisioning a host' in the README for the format",
        )

    def mapping(self, node: object, what: str) -> list[tuple[str, object, object]]:
        """(key, key node, value node) of a mapping, refusing duplicates and non-string keys."""
        import yaml

        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, f"{what} must be a mapping")
        seen: dict[str, int] = {}
        out: list[tuple[str, object, object]] = []
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag not in (STR, INT):
                raise self.error(key_node, f"a key of {what} must be a plain name")
            key = str(key_node.value)
            if key in seen:
                raise self.error(
                    key_node, f"{what}: {key!r} appears twice (first on line {seen[key]})"
                )
            seen[key] = key_node.start_mark.line + 1
            out.append((key, key_node, value_node))
        return out

    def scalar(self, node: object, what: str, tags: tuple[str, ...] = (STR,)) -> str:
        """A scalar's text, as written, if its type is one of TAGS."""
        import yaml

        if not isinstance(node, yaml.ScalarNode) or node.tag not in tags:
            kind = (
                "text"
                if tags == (STR,)
                else "true or false"
                if tags == (BOOL,)
                else "a text, number or true/false"
            )
            raise self.error(node, f"{what} must be {kind}")
        return str(node.value)

    def boolean(self, node: object, what: str) -> bool:
        """A YAML boolean."""
        return self.scalar(node, what, (BOOL,)).lower() in ("true", "yes", "on", "y")


def parse(text: str, where: str) -> HostManifest:
    """Read manifest TEXT (from WHERE, for messages); UsageError naming the line if wrong."""
    import yaml

    reader = _Reader(where)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        raise UsageError(
            f"{where}{at}: not valid YAML: {problem}", hint="fix the YAML syntax there"
        ) from e
    if root is None or (isinstance(root, yaml.ScalarNode) and root.tag == NULL):
        return HostManifest(where)
    containers: list[ContainerSpec] = []
    for key, key_node, value in reader.mapping(root, "the manifest"):
        if key == "version":
            version = reader.scalar(value, "version", (INT, STR))
            if version != "1":
                raise reader.error(
                    value,
                    f"version {version!r} is not known",
                    hint="this syscontainers reads version 1",
                )
        elif key == "containers":
            if isinstance(value, yaml.ScalarNode) and value.tag == NULL:
                continue
            for name, name_node, spec in reader.mapping(value, "containers"):
                containers.append(_container(reader, name, name_node, spec))
        else:
            raise reader.error(
                key_node, f"unknown key {key!r}", hint="the manifest has 'version' and 'containers'"
            )
    return HostManifest(where, tuple(containers))


def _container(reader: _Reader, name: str, name_node: object, node: object) -> ContainerSpec:
    problem = name_problem(name)
    if problem:
        raise reader.error(name_node, f"container name {name!r} is not valid: {problem}")
    fields: dict[str, object] = {}
    for key, key_node, value in reader.mapping(node, f"container {name}"):
        what = f"{name}.{key}"
        if key == "image":
            fields["image"] = reader.scalar(value, what).strip()
            if not fields["image"]:
                raise reader.error(value, f"{what} is empty")
        elif key == "values":
            fields["values"] = _values(reader, name, value)
        elif key == "runtime":
            fields["runtime"] = reader.scalar(value, what)
        elif key in ("enabled", "started"):
            fields[key] = reader.boolean(value, what)
        elif key == "update":
            text = reader.scalar(value, what)
            try:
                fields["update"] = UpdatePolicy(text)
            except ValueError:
                raise reader.error(
                    value, f"{what} must be 'missing' or 'always', not {text!r}"
                ) from None
        else:
            raise reader.error(
                key_node,
                f"container {name}: unknown key {key!r}",
                hint=f"a container has {', '.join(CONTAINER_KEYS)}",
            )
    if "image" not in fields:
        raise reader.error(
            name_node,
            f"container {name} has no image",
            hint="add image: NAME[:TAG] (or a source such as oci:DIR:TAG)",
        )
    line = getattr(getattr(name_node, "start_mark", None), "line", 0) + 1
    return ContainerSpec(name=name, line=line, **fields)  # type: ignore[arg-type]


def _values(reader: _Reader, name: str, node: object) -> tuple[tuple[str, str], ...]:
    from syscontainers.render.values import check_sets

    out: dict[str, str] = {}
    for key, key_node, value in reader.mapping(node, f"{name}.values"):
        out[key] = reader.scalar(value, f"{name}.values.{key}", (STR, INT, FLOAT, BOOL))
        try:
            check_sets({key: out[key]})
        except UsageError as e:
            raise reader.error(key_node, f"{name}.values: {e.message}") from None
    return tuple(sorted(out.items()))


def load(path: Path) -> HostManifest:
    """Read and check the manifest at PATH."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UsageError(
            f"manifest {path} does not exist", hint="give the path of a host manifest (YAML)"
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(
            f"cannot read manifest {path}: {e}",
            hint="check the file's permissions, and that it is UTF-8 text",
        ) from e
    return parse(text, str(path))
