"""The policy file: parse containers-policy.json(5) strictly and find an image's requirements.

Parsing follows containers/image's ``signature/policy_config.go``: unknown or duplicate keys,
wrong types and empty requirement lists reject the whole file, because a typo in a security
policy must not be silently ignored. Two deliberate differences, both stricter: ``keyType``
must be "GPGKeys" (the only one containers/image can verify; it refuses the others only when
an image needs them), and key paths must be absolute (containers/image would read a relative
one from the working directory).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from syscontainers.errors import PolicyError
from syscontainers.trust.model import (
    IdentityKind,
    IdentityRule,
    Policy,
    Requirement,
    RequirementKind,
)
from syscontainers.trust.scopes import name_problem, scope_problem

_T = TypeVar("_T")
_MAN = "see containers-policy.json(5)"
_IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
# The fields of the signedIdentity types that have any, and the IdentityRule attribute of each.
_IDENTITY_FIELDS = {
    IdentityKind.EXACT_REFERENCE: {"dockerReference": "reference"},
    IdentityKind.EXACT_REPOSITORY: {"dockerRepository": "repository"},
    IdentityKind.REMAP_IDENTITY: {"prefix": "prefix", "signedPrefix": "signed_prefix"},
}
_KEY_TYPES_NOT_IMPLEMENTED = frozenset({"signedByGPGKeys", "X509Certificates", "signedByX509CAs"})
_SIGNED_BY_KEYS = ("keyPath", "keyPaths", "keyData")
_SIGSTORE_KEYS = ("keyPath", "keyPaths", "keyData", "keyDatas", "fulcio", "pki")
_REKOR_KEYS = tuple(f"rekorPublicKey{suffix}" for suffix in ("Path", "Paths", "Data", "Datas"))


class _Invalid(Exception):
    """A problem at a JSON location; parse_policy adds the origin."""

    def __init__(self, where: str, what: str, hint: str = _MAN) -> None:
        super().__init__(what)
        self.where, self.what, self.hint = where, what, hint


class _Object(dict[str, Any]):
    """A JSON object that remembers the keys it saw twice."""

    __slots__ = ("duplicates",)

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__()
        self.duplicates: list[str] = []
        for key, value in pairs:
            if key in self:
                self.duplicates.append(key)
            self[key] = value


def parse_policy(data: bytes, origin: str, base_dir: Path | None = None) -> Policy:
    """Parse the policy DATA read from ORIGIN; raise PolicyError naming the JSON location."""
    try:
        doc = json.loads(data.decode("utf-8"), object_pairs_hook=_Object)
    except UnicodeDecodeError as e:
        raise PolicyError(f"{origin}: not UTF-8 text: {e.reason}", hint=_MAN) from e
    except json.JSONDecodeError as e:
        raise PolicyError(
            f"{origin}: line {e.lineno} column {e.colno}: invalid JSON: {e.msg}", hint=_MAN
        ) from e
    try:
        return _policy(doc, origin, base_dir)
    except _Invalid as e:
        raise PolicyError(f"{origin}: {e.where}: {e.what}", hint=e.hint) from None


def load_policy(path: Path) -> Policy:
    """Read and parse the policy file at PATH."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PolicyError(
            f"no trust policy at {path}",
            hint="create one (see containers-policy.json(5)), or pass --insecure-policy "
            "to skip the policy check",
        ) from None
    except OSError as e:
        raise PolicyError(
            f"cannot read the trust policy {path}: {e.strerror or e}",
            hint="check that the file is readable by this user",
        ) from e
    return parse_policy(data, f"policy {path}", base_dir=path.parent)


def requirements_for(
    policy: Policy, transport: str, identity: str, namespaces: Sequence[str]
) -> tuple[tuple[Requirement, ...], str]:
    """The requirements that apply to an image, and a label of the policy entry they come from.

    Precedence, as in containers/image: the transport's scope equal to IDENTITY, then the first
    of NAMESPACES (most specific first) that has a scope, then the transport's "" scope, then
    the global default.
    """
    scopes = policy.scopes(transport)
    for scope in (identity, *namespaces, ""):
        if scope in scopes:
            return scopes[scope], f"transports.{_key(transport)}.{json.dumps(scope)}"
    return policy.default, "default"


# ---- the document -----------------------------------------------------------------------


def _policy(doc: Any, origin: str, base_dir: Path | None) -> Policy:
    top = _object(doc, "top level")
    _check_keys(top, "top level", ("default", "transports"))
    if "default" not in top:
        raise _Invalid(
            "top level",
            'no "default" requirements',
            hint='add "default": [{"type": "reject"}] (or the requirements you want for '
            f"images no scope matches); {_MAN}",
        )
    default = _requirements(top["default"], "default", base_dir)
    transports: list[tuple[str, tuple[tuple[str, tuple[Requirement, ...]], ...]]] = []
    if "transports" in top:
        for name, value in _object(top["transports"], "transports").items():
            where = f"transports.{_key(name)}"
            transports.append((name, _scopes(name, value, where, base_dir)))
    return Policy(default=default, transports=tuple(transports), origin=origin)


def _scopes(
    transport: str, value: Any, where: str, base_dir: Path | None
) -> tuple[tuple[str, tuple[Requirement, ...]], ...]:
    out = []
    for scope, reqs in _object(value, where).items():
        at = f"{where}.{json.dumps(scope)}"
        problem = scope_problem(transport, scope)
        if problem is not None:
            raise _Invalid(at, problem[0], hint=problem[1])
        out.append((scope, _requirements(reqs, at, base_dir)))
    return tuple(out)


def _requirements(value: Any, where: str, base_dir: Path | None) -> tuple[Requirement, ...]:
    items = _list(value, where)
    if not items:
        hint = 'list at least one requirement, e.g. {"type": "reject"}'
        raise _Invalid(where, "empty list of requirements", hint=hint)
    return tuple(_requirement(item, f"{where}[{i}]", base_dir) for i, item in enumerate(items))


_Parser = Callable[[dict[str, Any], str, "Path | None"], Requirement]


def _requirement(value: Any, where: str, base_dir: Path | None) -> Requirement:
    obj = _object(value, where)
    kind = _type_field(obj, where, "requirement")
    parser = _REQUIREMENTS.get(kind)
    if parser is None:
        raise _Invalid(
            where,
            f"unknown requirement type {json.dumps(kind)}",
            hint="use insecureAcceptAnything, reject, signedBy or sigstoreSigned; " + _MAN,
        )
    return parser(obj, where, base_dir)


def _plain(obj: dict[str, Any], where: str, base_dir: Path | None) -> Requirement:
    """insecureAcceptAnything or reject, which take no other key."""
    _check_keys(obj, where, ("type",))
    return Requirement(RequirementKind(obj["type"]))


def _signed_base_layer(obj: dict[str, Any], where: str, base_dir: Path | None) -> Requirement:
    # containers/image parses this, but refuses every image it applies to ("not implemented").
    _check_keys(obj, where, ("type", "baseLayerIdentity"), required=("baseLayerIdentity",))
    _identity(obj["baseLayerIdentity"], f"{where}.baseLayerIdentity")
    return Requirement(RequirementKind.REJECT)


def _signed_by(obj: dict[str, Any], where: str, base_dir: Path | None) -> Requirement:
    _check_keys(obj, where, ("type", "keyType", *_SIGNED_BY_KEYS, "signedIdentity"))
    key_type = _key_type(obj, where)
    present = [key for key in _SIGNED_BY_KEYS if key in obj]
    if len(present) != 1:
        raise _Invalid(
            where,
            f"{'more than one' if present else 'none'} of keyPath, keyPaths and keyData is given",
            hint="give exactly one: the public key file(s), or the key itself in base64",
        )
    if obj.get("keyPath") == "":
        raise _Invalid(f"{where}.keyPath", "keyPath is empty", hint="give the key file's path")
    paths = _key_paths(obj, where, base_dir)
    data = _values(obj, "keyData", where, _base64)
    identity = _signed_identity(obj, where)
    return Requirement(RequirementKind.SIGNED_BY, key_type, paths, tuple(data), identity)


def _key_type(obj: dict[str, Any], where: str) -> str:
    if "keyType" not in obj:
        raise _Invalid(where, 'signedBy has no "keyType"', hint='add "keyType": "GPGKeys"')
    key_type = _string(obj["keyType"], f"{where}.keyType")
    if key_type == "GPGKeys":
        return key_type
    if key_type in _KEY_TYPES_NOT_IMPLEMENTED:
        what = f"keyType {json.dumps(key_type)} is not implemented (nor by containers/image)"
    else:
        what = f"unknown keyType {json.dumps(key_type)}"
    raise _Invalid(f"{where}.keyType", what, hint='use "GPGKeys" with OpenPGP public keys')


def _sigstore_signed(obj: dict[str, Any], where: str, base_dir: Path | None) -> Requirement:
    # Validated as containers/image does; plain public keys are verified, what needs Fulcio,
    # PKI or Rekor is marked unsupported and refused by the checker.
    _check_fields(obj, where, ("type", *_SIGSTORE_KEYS, *_REKOR_KEYS, "signedIdentity"))
    if "fulcio" in obj:
        _fulcio(obj["fulcio"], f"{where}.fulcio")
    if "pki" in obj:
        _pki(obj["pki"], f"{where}.pki")
    _count(obj, where, _SIGSTORE_KEYS, 1, 1)
    rekor = _count(obj, where, _REKOR_KEYS, 0, 1)
    if "fulcio" in obj and not rekor:
        raise _Invalid(where, "fulcio needs one of " + ", ".join(_REKOR_KEYS))
    if "pki" in obj and rekor:
        raise _Invalid(where, f"pki cannot be used with {rekor[0]}")
    paths = _key_paths(obj, where, base_dir)
    data = _values(obj, "keyData", where, _base64) + _values(obj, "keyDatas", where, _base64)
    identity = _signed_identity(obj, where)
    unsupported = [
        what
        for present, what in (
            ("fulcio" in obj, "Fulcio certificates"),
            ("pki" in obj, "X.509 (pki) certificates"),
            (bool(rekor), "Rekor transparency-log proofs"),
        )
        if present
    ]
    return Requirement(
        RequirementKind.SIGSTORE_SIGNED, "", paths, tuple(data), identity, " and ".join(unsupported)
    )


def _fulcio(value: Any, where: str) -> None:
    obj = _object(value, where)
    _check_fields(obj, where, ("caPath", "caData", "oidcIssuer", "subjectEmail"))
    _count(obj, where, ("caPath", "caData"), 1, 1)
    if not (obj.get("oidcIssuer") and obj.get("subjectEmail")):
        raise _Invalid(where, "fulcio needs a non-empty oidcIssuer and subjectEmail")


def _pki(value: Any, where: str) -> None:
    obj = _object(value, where)
    names = ("caRootsPath", "caRootsData", "caIntermediatesPath", "caIntermediatesData")
    _check_fields(obj, where, (*names, "subjectEmail", "subjectHostname"))
    _count(obj, where, names[:2], 1, 1)
    _count(obj, where, names[2:], 0, 1)
    if not (obj.get("subjectEmail") or obj.get("subjectHostname")):
        raise _Invalid(where, "pki needs a non-empty subjectEmail or subjectHostname")


def _check_fields(obj: dict[str, Any], where: str, allowed: Sequence[str]) -> None:
    """Check OBJ's keys, and the types its names imply: …Data is base64, …Paths and …Datas are
    non-empty lists, objects are checked by their own parsers, and the rest are strings."""
    _check_keys(obj, where, allowed)
    for name, value in obj.items():
        at = f"{where}.{name}"
        if name.endswith(("Paths", "Datas")):
            if not _list(value, at):
                raise _Invalid(at, f"{name} has no entries")
            _values(obj, name, where, _base64 if name.endswith("Datas") else _string)
        elif name.endswith("Data"):
            _base64(value, at)
        elif name not in ("fulcio", "pki", "signedIdentity"):
            _string(value, at)


def _count(obj: dict[str, Any], where: str, names: Sequence[str], low: int, high: int) -> list[str]:
    """Which of NAMES OBJ gives (a …Path of "" counts as not given, as in containers/image);
    there must be between LOW and HIGH of them."""
    given = [n for n in names if n in obj and not (n.endswith("Path") and obj[n] == "")]
    if not low <= len(given) <= high:
        need = "exactly one" if low else "at most one"
        raise _Invalid(
            where,
            f"{len(given)} of {', '.join(names)} given; {need} is allowed",
            hint="give " + need + "; " + _MAN,
        )
    return given


def _key_paths(obj: dict[str, Any], where: str, base_dir: Path | None) -> tuple[Path, ...]:
    """The paths of keyPath (unless "") and keyPaths, which must be absolute."""
    texts = _values(obj, "keyPath", where, _string) if obj.get("keyPath") != "" else []
    at = [f"{where}.keyPath"] * len(texts)
    more = _values(obj, "keyPaths", where, _string)
    at += [f"{where}.keyPaths[{i}]" for i in range(len(more))]
    return tuple(_key_path(t, loc, base_dir) for t, loc in zip(texts + more, at, strict=True))


def _key_path(text: str, where: str, base_dir: Path | None) -> Path:
    path = Path(text)
    if path.is_absolute():
        return path
    example = (base_dir or Path("/etc/pki/containers")) / path
    raise _Invalid(
        where,
        f"key path {json.dumps(text)} is not absolute",
        hint=f"write the full path, e.g. {example} (containers/image would read a relative path "
        "from the working directory, not from the policy's)",
    )


def _base64(value: Any, where: str) -> bytes:
    text = _string(value, where)
    try:
        # Go's decoder, which containers/image uses, skips line breaks and needs the padding.
        return base64.b64decode(text.replace("\r", "").replace("\n", ""), validate=True)
    except (binascii.Error, ValueError) as e:
        raise _Invalid(where, f"invalid base64: {e}", hint="give the key's bytes in base64") from e


# ---- signed identities ----------------------------------------------------------------------


def _signed_identity(obj: dict[str, Any], where: str) -> IdentityRule:
    if "signedIdentity" not in obj:
        return IdentityRule()
    return _identity(obj["signedIdentity"], f"{where}.signedIdentity")


def _identity(value: Any, where: str) -> IdentityRule:
    obj = _object(value, where)
    name = _type_field(obj, where, "signedIdentity")
    try:
        kind = IdentityKind(name)
    except ValueError:
        raise _Invalid(
            where,
            f"unknown signedIdentity type {json.dumps(name)}",
            hint="use one of " + ", ".join(k.value for k in IdentityKind) + "; " + _MAN,
        ) from None
    fields = _IDENTITY_FIELDS.get(kind, {})
    _check_keys(obj, where, ("type", *fields), required=tuple(fields))
    values = {}
    for field, attribute in fields.items():
        values[attribute] = text = _string(obj[field], f"{where}.{field}")
        problem = name_problem(field, text)
        if problem is not None:
            raise _Invalid(f"{where}.{field}", problem[0], hint=problem[1])
    attributes = ("reference", "repository", "prefix", "signed_prefix")
    return IdentityRule(kind, *(values.get(a, "") for a in attributes))


# ---- JSON helpers ---------------------------------------------------------------------------


_REQUIREMENTS: dict[str, _Parser] = {
    "insecureAcceptAnything": _plain,
    "reject": _plain,
    "signedBy": _signed_by,
    "signedBaseLayer": _signed_base_layer,
    "sigstoreSigned": _sigstore_signed,
}


def _kind(value: Any) -> str:
    kinds = ((bool, "a boolean"), (dict, "an object"), (list, "a list"), (str, "a string"))
    for kind, name in kinds:
        if isinstance(value, kind):
            return name
    return "null" if value is None else "a number"


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Invalid(where, f"expected a JSON object, got {_kind(value)}")
    if isinstance(value, _Object) and value.duplicates:
        key = json.dumps(value.duplicates[0])
        raise _Invalid(where, f"duplicate key {key}", hint="give each key once")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise _Invalid(where, f"expected a JSON list, got {_kind(value)}")
    return value


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _Invalid(where, f"expected a string, got {_kind(value)}")
    return value


def _values(obj: dict[str, Any], name: str, where: str, item: Callable[[Any, str], _T]) -> list[_T]:
    """NAME's value in OBJ through ITEM: none if absent, one per entry for a plural name."""
    if name not in obj:
        return []
    at = f"{where}.{name}"
    if not name.endswith("s"):
        return [item(obj[name], at)]
    return [item(v, f"{at}[{i}]") for i, v in enumerate(_list(obj[name], at))]


def _type_field(obj: dict[str, Any], where: str, what: str) -> str:
    if "type" not in obj:
        raise _Invalid(where, f'{what} has no "type"')
    return _string(obj["type"], f"{where}.type")


def _check_keys(
    obj: dict[str, Any], where: str, allowed: Sequence[str], required: Sequence[str] = ()
) -> None:
    for key in obj:
        if key not in allowed:
            raise _Invalid(
                where,
                f"unknown key {json.dumps(key)}",
                hint="allowed here: " + ", ".join(allowed) + f" (keys are case-sensitive); {_MAN}",
            )
    for key in required:
        if key not in obj:
            raise _Invalid(where, f"missing key {json.dumps(key)}")


def _key(name: str) -> str:
    return name if _IDENTIFIER_RE.fullmatch(name) else json.dumps(name)
