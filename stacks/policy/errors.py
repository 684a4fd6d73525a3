"""PolicyError: every way a policy file can be wrong, each problem located by file, line and field path."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

Loc = tuple[str | int, ...]

_PLAIN_SEGMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def format_field_path(loc: Loc) -> str:
    """`('apis', 'orders', 'routes', 'GET /orders', 'scopes', 0)` -> `apis.orders.routes."GET /orders".scopes[0]`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        text = part if _PLAIN_SEGMENT.fullmatch(part) else '"' + part.replace('"', '\\"') + '"'
        out += ("." if out else "") + text
    return out


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a policy: where (field path, and file line when known) and what is allowed instead."""

    loc: Loc
    message: str
    file: str | None = None
    line: int | None = None

    @property
    def field(self) -> str:
        return format_field_path(self.loc)

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        field = self.field
        return f"{where}{field}: {self.message}" if field else f"{where}{self.message}"


class PolicyError(Exception):
    """A policy that cannot be used. `str(err)` lists every problem, one a line, as `file:line: field.path: why`.

    Deliberately not a ValueError: pydantic would otherwise swallow it inside a validator and re-wrap it, losing the
    precise field paths the cross-reference checks compute.
    """

    def __init__(self, problems: Sequence[Problem] | str, *, file: str | None = None) -> None:
        if isinstance(problems, str):
            problems = [Problem((), problems, file=file)]
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__(self._render())

    @classmethod
    def at(cls, loc: Loc, message: str) -> "PolicyError":
        return cls([Problem(tuple(loc), message)])

    def with_source(self, file: str, line_of) -> "PolicyError":
        """The same problems, now naming `file` and the line `line_of(loc)` finds for each."""
        located = [Problem(p.loc, p.message, file=p.file or file, line=p.line or line_of(p.loc))
                   for p in self.problems]
        return PolicyError(located)

    def _render(self) -> str:
        if len(self.problems) == 1:
            return str(self.problems[0])
        return f"{len(self.problems)} problems in the policy:\n" + "\n".join(f"  {p}" for p in self.problems)

    @property
    def file(self) -> str | None:
        return self.problems[0].file if self.problems else None

    @property
    def line(self) -> int | None:
        return self.problems[0].line if self.problems else None

    @property
    def field(self) -> str:
        return self.problems[0].field if self.problems else ""
