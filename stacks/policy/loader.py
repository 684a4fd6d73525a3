"""load_policy: a policy file (or YAML text, or a dict) to a validated AuthPolicy, or a PolicyError with file:line."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from pydantic import ValidationError

from stacks.policy.errors import PolicyError, Problem
from stacks.policy.model import AuthPolicy
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
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(f"policy file not found: {display}", file=display) from None
    except OSError as exc:
        raise PolicyError(f"cannot read the policy file: {exc.strerror}", file=display) from None
    policy = load_policy_text(text, file=display, base_dir=path.parent, variables=variables)
    policy._source_path = path.resolve()
    return policy


def load_policy_text(text: str, *, file: str = "<policy>", base_dir: str | Path = ".",
                     variables: Mapping[str, str] | None = None) -> AuthPolicy:
    source = parse_policy_yaml(text, file=file, variables=variables)
    return validate_policy_data(source.data, source=source, base_dir=base_dir)


def validate_policy_data(data: Any, *, source: PolicySource | None = None, base_dir: str | Path = ".") -> AuthPolicy:
    """Validate already-parsed data (a dict); problems carry lines when `source` knows them."""
    source = source or PolicySource(data=data)
    if not isinstance(data, dict):
        raise PolicyError([Problem((), "a policy is a mapping with issuers: and apis: at the top",
                                   file=source.file, line=1 if source.file else None)])
    try:
        return AuthPolicy.model_validate(data, context={"base_dir": str(base_dir)})
    except ValidationError as exc:
        raise _from_validation_error(exc, source) from None
    except PolicyError as exc:
        raise (exc.with_source(source.file, source.line_of) if source.file else exc) from None


def _from_validation_error(exc: ValidationError, source: PolicySource) -> PolicyError:
    problems = []
    for error in exc.errors(include_url=False):
        loc = _data_loc(error["loc"], source)
        problems.append(Problem(loc, _explain(error), file=source.file,
                                line=source.line_of(loc) if source.file else None))
    return PolicyError(problems)


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
        return f"expected a list (e.g. [a, b]), found {type(error.get('input')).__name__}"
    if kind == "string_type":
        return (f"expected a string, found {type(error.get('input')).__name__} {error.get('input')!r}; quote it if "
                f"YAML read it as something else")
    return message
