"""load_policy: a policy file (or YAML text, or a dict) to a validated AuthPolicy, or a PolicyError with file:line."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from pydantic import ValidationError

from stacks.policy.errors import PolicyError, Problem
from stacks.policy.checks import check_policy, policy_warnings
from stacks.policy.model import ApiSpec, AuthPolicy, ClientSpec, IssuerSpec, RouteSpec
from stacks.policy.yaml_source import PolicySource, parse_policy_yaml


def load_policy(path: str | Path, *, variables: Mapping[str, str] | None = None) -> AuthPolicy:
    """Load and validate a policy file.

    `variables` fills `${NAME}` placeholders in string values (e.g. `issuer: ${LOCAL_ISSUER_URL}` in
    policies/local.yaml, whose port is only known when the sandbox IdP starts). A placeholder without a value is an
    error; nothing is read from the environment implicitly.
    """
    path = Path(path)
    display = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PolicyError(f"policy file not found: {display}", file=display) from None
    except OSError as exc:
        raise PolicyError(f"cannot read the policy file: {exc.strerror}", file=display) from None
    policy = load_policy_text(_utf8_text(raw, display), file=display, base_dir=path.parent, variables=variables)
    policy._source_path = path.resolve()
    return policy


def _utf8_text(raw: bytes, display: str) -> str:
    """The file as text, or a PolicyError on the line of the first byte that is not UTF-8 (a Latin-1 file, a binary)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise PolicyError([Problem((), (
            f"the policy file is not UTF-8 text: byte 0x{raw[exc.start]:02x} at column {column} cannot be decoded; "
            f"save the file as UTF-8 (a policy is YAML text, e.g. `iconv -f latin1 -t utf-8`)"),
            file=display, line=line)]) from None


def load_policy_text(text: str, *, file: str = "<policy>", base_dir: str | Path = ".",
                     variables: Mapping[str, str] | None = None) -> AuthPolicy:
    source = parse_policy_yaml(text, file=file, variables=variables)
    return validate_policy_data(source.data, source=source, base_dir=base_dir)


def validate_policy_data(data: Any, *, source: PolicySource | None = None, base_dir: str | Path = ".") -> AuthPolicy:
    """Validate already-parsed data (a dict); problems carry lines when `source` knows them.

    Every problem of the file comes in one PolicyError: those found reading the YAML, the fields' own, and the
    cross references among the parts that are valid on their own (a wrong type does not hide an unknown issuer)."""
    source = source or PolicySource(data=data)
    if not isinstance(data, dict):
        raise PolicyError([Problem((), "a policy is a mapping with issuers: and apis: at the top",
                                   file=source.file, line=1 if source.file else None)])
    context = {"base_dir": str(base_dir)}
    try:
        policy = AuthPolicy.model_validate(data, context=context)
    except ValidationError as exc:
        problems = _from_validation_error(exc, source) + _cross_reference_problems_of_valid_parts(data, context)
    except PolicyError as exc:
        problems = list(exc.problems)
    else:
        problems = []
    if problems or source.problems:
        raise PolicyError(_merge(source, problems))
    policy._warnings = tuple(_located(source, policy_warnings(policy)))
    return policy


def _located(source: PolicySource, problems) -> list[Problem]:
    return [Problem(p.loc, p.message, file=p.file or source.file,
                    line=p.line or (source.line_of(p.loc) if source.file else None)) for p in problems]


def _merge(source: PolicySource, problems: list[Problem]) -> list[Problem]:
    """Reading problems first claim their field: a model complaint about the same field (a `${NAME}` left unfilled
    is no URL) would only repeat them. Then everything in file order."""
    claimed = [p.loc for p in source.problems]
    kept = [p for p in _located(source, problems) if not any(p.loc[:len(loc)] == loc for loc in claimed)]
    merged = list(source.problems) + kept
    return sorted(merged, key=lambda p: (p.line is None, p.line or 0))


def _cross_reference_problems_of_valid_parts(data: dict, context: dict) -> list[Problem]:
    """check_policy over the issuers, APIs (with their valid routes) and clients that validate on their own."""
    def valid(model, raw):
        try:
            return model.model_validate(raw, context=context)
        except (ValidationError, PolicyError):
            return None

    def section(name: str) -> dict:
        value = data.get(name)
        return value if isinstance(value, dict) else {}

    issuers = {name: spec for name, raw in section("issuers").items() if (spec := valid(IssuerSpec, raw))}
    apis: dict[str, ApiSpec] = {}
    every_route_valid = True
    for name, raw in section("apis").items():
        api = valid(ApiSpec, raw)
        if api is None and isinstance(raw, dict) and isinstance(raw.get("routes"), dict):
            every_route_valid = False
            routes = {key: route for key, route in raw["routes"].items() if valid(RouteSpec, route)}
            api = valid(ApiSpec, {**raw, "routes": routes}) if routes else None
        if api is not None:
            apis[name] = api
        else:
            every_route_valid = False
    clients = {name: spec for name, raw in section("clients").items() if (spec := valid(ClientSpec, raw))}
    partial = AuthPolicy.model_construct(issuers=issuers, apis=apis, clients=clients)
    try:
        check_policy(partial, invalid_issuers=frozenset(section("issuers")) - set(issuers),
                     every_route_valid=every_route_valid)
    except PolicyError as exc:
        return list(exc.problems)
    return []


def _from_validation_error(exc: ValidationError, source: PolicySource) -> list[Problem]:
    problems = []
    for error in exc.errors(include_url=False):
        loc = _data_loc(error["loc"], source)
        problems.append(Problem(loc, _explain(error), file=source.file,
                                line=source.line_of(loc) if source.file else None))
    return problems


def _data_loc(loc: tuple, source: PolicySource) -> tuple:
    """Drop the segments pydantic adds for validators and unions ('function-after[...]', 'list[str]') when they are
    not keys in the data itself."""
    out: list = []
    node: Any = source.data
    for part in loc:
        if isinstance(node, dict) and part in node:
            out.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            out.append(part)
            node = node[part]
        elif isinstance(part, str) and ("[" in part or "-" in part and part.startswith(("function", "union"))):
            continue
        else:
            out.append(part)
            node = None
    return tuple(out)


def _explain(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    message = error["msg"]
    if kind == "extra_forbidden":
        field = error["loc"][-1] if error["loc"] else "?"
        return f"unknown field {field!r}; check the spelling against policies/authgate.schema.json"
    if kind == "missing":
        return "required field is missing"
    if kind == "literal_error":
        expected = (error.get("ctx") or {}).get("expected", "")
        return f"{error.get('input')!r} is not allowed; use one of {expected}"
    if kind == "value_error":
        return message.removeprefix("Value error, ")
    if kind in ("dict_type", "model_type"):
        return f"expected a mapping (key: value lines), found {type(error.get('input')).__name__}"
    if kind == "list_type":
        return f"expected a list (e.g. [a, b]), found {_found(error)}"
    if kind == "bool_type":
        return f"expected true or false, found {_found(error)}; write it without quotes"
    if kind == "int_type":
        return f"expected a whole number, found {_found(error)}; write it without quotes or decimals"
    if kind == "string_type":
        return f"expected a string, found {_found(error)}; quote it if YAML read it as something else"
    return message


def _found(error: Mapping[str, Any]) -> str:
    """`str 'yes'`, `int 1`; a mapping or list only by its type (it may be long)."""
    value = error.get("input")
    if isinstance(value, (dict, list)):
        return type(value).__name__
    return f"{type(value).__name__} {value!r}"
