"""Reading a policy file: safe YAML to plain data plus the line of every field, with explicit ${NAME} substitution."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import yaml

from stacks.policy.errors import Loc, PolicyError, Problem

# `${NAME}` is replaced by an explicitly passed variable; `$${` writes a literal `${`. Substitution happens on parsed
# scalar strings, never on the YAML text, so a variable's value can never change the document's structure.
_VARIABLE = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass
class PolicySource:
    """Plain data parsed from a policy file and the 1-based line where each field path begins."""

    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)
    file: str | None = None
    # Problems found while reading (duplicate keys, merge keys, variables without a value). The data is still built
    # (the first of duplicate keys kept) so the loader can report the model's problems in the same pass.
    problems: list[Problem] = field(default_factory=list)

    def line_of(self, loc: Loc) -> int | None:
        """The line of the longest prefix of `loc` that appears in the file (pydantic adds segments of its own)."""
        loc = tuple(loc)
        # A key set read from jwks_file reports its problems under `jwks`; point at the jwks_file line.
        if len(loc) >= 3 and loc[0] == "issuers" and loc[2] == "jwks" and loc[:3] not in self.lines:
            loc = loc[:2] + ("jwks_file",)
        for end in range(len(loc), -1, -1):
            line = self.lines.get(loc[:end])
            if line is not None:
                return line
        return None


def substitute_variables(text: str, variables: Mapping[str, str], loc: Loc, problems: list[Problem]) -> str:
    def replace(match: re.Match) -> str:
        escaped, name = match.group(1), match.group(2)
        if escaped:
            return "${" + name + "}"
        if name not in variables:
            known = ", ".join(sorted(variables)) or "none were given"
            problems.append(Problem(loc, f"variable ${{{name}}} has no value; pass it explicitly "
                                         f"(CLI: --var {name}=VALUE; Python: load_policy(..., variables={{'{name}': ...}})); "
                                         f"variables given: {known}"))
            return match.group(0)
        return str(variables[name])

    return _VARIABLE.sub(replace, text)


def parse_policy_yaml(text: str, *, file: str | None = None, variables: Mapping[str, str] | None = None
                      ) -> PolicySource:
    """Parse with the safe loader; refuse duplicate keys (YAML would silently keep the last) and merge keys.

    Syntax errors raise PolicyError at once; problems in well-formed YAML are collected in `source.problems`."""
    variables = dict(variables or {})
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        raise PolicyError([Problem((), f"not valid YAML: {reason}", file=file, line=line)]) from None
    finally:
        loader.dispose()
    source = PolicySource(data=None, file=file)
    problems: list[Problem] = []
    if root is None:
        raise PolicyError([Problem((), "the policy file is empty; it needs at least `issuers:` and `apis:`",
                                   file=file, line=1)])

    def build(node: yaml.Node, loc: Loc) -> Any:
        source.lines.setdefault(loc, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    problems.append(Problem(loc, "YAML merge keys (<<) are not supported; write the fields out",
                                            line=key_node.start_mark.line + 1))
                    continue
                key = loader.construct_object(key_node, deep=True)
                if not isinstance(key, str):
                    key = str(key) if isinstance(key, (int, float, bool)) or key is None else key
                if not isinstance(key, str):
                    problems.append(Problem(loc, "mapping keys must be plain strings",
                                            line=key_node.start_mark.line + 1))
                    continue
                child = loc + (key,)
                if key in out:
                    problems.append(Problem(child, f"duplicate key {key!r} (first given on line "
                                                   f"{source.lines[child]}); give each key once",
                                            line=key_node.start_mark.line + 1))
                    continue
                source.lines[child] = key_node.start_mark.line + 1
                out[key] = build(value_node, child)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [build(item, loc + (index,)) for index, item in enumerate(node.value)]
        value = loader.construct_object(node, deep=True)
        if isinstance(value, str) and "${" in value:
            value = substitute_variables(value, variables, loc, problems)
        return value

    source.data = build(root, ())
    source.problems = [Problem(p.loc, p.message, file=file, line=p.line or source.line_of(p.loc)) for p in problems]
    return source
