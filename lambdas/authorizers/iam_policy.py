"""IAM policies for API Gateway Lambda authorizers that stay right when API Gateway reuses them for every route.

API Gateway caches an authorizer's policy per identity source (the token) and applies it to every later request with
that token, whatever method and path it targets. So a policy must allow exactly the routes this principal satisfies
and nothing else, not only the route that was asked.

A route `GET /orders/{id}` becomes the resource pattern `.../GET/orders/*`. In IAM, `*` also matches '/', so that
pattern covers `/orders/1/refunds` too, a different route. Widening is handled by explicit Deny statements: for every
route the principal does not satisfy that some Allow pattern reaches, its own pattern is denied (Deny beats Allow).
Whether a pattern reaches a route is decided exactly, by searching for a request that the pattern matches *and* that
API Gateway would route to that route (literal segment values are what route selection depends on, so the search
tries each literal the table uses at that position plus one value equal to none of them). A request with a trailing
slash (`/orders/`) goes to the same route as without it while its method ARN keeps the slash, so the search counts
that form too and Deny statements name it. A path with an empty segment (`//admin`) matches no route, and every policy
whose Allow holds a wildcard denies `*//*`, so no cached policy admits one. The model assumes the method ARN carries
the path as routed (no encoded '/' decoded into a separator); requests outside it stay denied under the exact encoding.

Three encodings, the first that fits the size budget and gets the current request right wins:
  exact          Allow the satisfied routes' patterns; Deny the unsatisfied routes an Allow pattern reaches. Where a
                 method, or a method and leading literal segments (`GET/*`, `GET/svc1/*`), holds satisfied routes
                 only, one wildcard stands for all of them, so a reader over thousands of routes gets one resource.
  deny_list      Allow the whole stage; Deny every unsatisfied route (used when no Deny pattern reaches a satisfied
                 route), with the same wildcards over parts holding unsatisfied routes only.
  current_route  Allow or Deny exactly this request's method ARN. Always small and always right for this request;
                 while it is cached, other routes are denied (fail closed) until the entry expires. A path holding
                 '*' or '?' is refused (Deny): as an Allow resource it would be a wildcard over other routes.
"""
from __future__ import annotations

import bisect
import functools
import json
import re
from typing import Collection, Iterable, Sequence

from lambdas.validation.records import Record, set_field
from lambdas.validation.route_decision import permission_groups
from lambdas.validation.route_table import GREEDY, LITERAL, PARAM, ApiRoutes, Route

# API Gateway has no documented limit for REST policies but enforces 8 KB for WebSocket APIs; one budget for all.
DEFAULT_MAX_POLICY_BYTES = 8192
# "the Resource ARN ... in the policy statement output by the authorizer is currently limited to 512 characters"
MAX_RESOURCE_ARN_CHARS = 512
CONCRETE_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
# A path segment value equal to no literal in any route: stands for "any other value" in the reach search.
_OTHER_SEGMENT = "\u2022other\u2022"
# Denied in every policy whose Allow holds a wildcard: a method ARN with an empty path segment (GET//admin). The
# router matches no route for such a path (what API Gateway routes it to is unverified offline), so nothing may allow
# it, and an Allow's `*` would match it.
EMPTY_SEGMENT_PATTERN = "*//*"
# Reach searches that exceed this many steps conclude "reaches" (an extra Deny is safe; a missing one is not).
_SEARCH_BUDGET = 4000


class MethodArnError(ValueError):
    """The event's methodArn/routeArn is not an execute-api ARN."""


class MethodArn(Record):
    """arn:<partition>:execute-api:<region>:<account>:<api-id>/<stage>/<METHOD>/<path> split into its parts.

    prefix   arn:...:<api-id>/<stage>
    method   GET, POST, ..., or a WebSocket route key such as $connect
    path     "/orders/1" ("/" for the root); "" for WebSocket route keys"""

    __slots__ = ("prefix", "method", "path")

    def __init__(self, prefix: str, method: str, path: str) -> None:
        set_field(self, "prefix", prefix)
        set_field(self, "method", method)
        set_field(self, "path", path)

    @classmethod
    def parse(cls, arn: str) -> "MethodArn":
        if not isinstance(arn, str) or not arn.startswith("arn:") or ":execute-api:" not in arn:
            raise MethodArnError(f"not an execute-api ARN: {str(arn)[:200]!r}")
        head, sep, rest = arn.partition("/")
        parts = rest.split("/", 2)
        if not sep or len(parts) < 2 or not parts[0] or not parts[1]:
            raise MethodArnError(f"execute-api ARN without stage and method: {arn[:200]!r}")
        stage, method = parts[0], parts[1]
        path = "/" + parts[2] if len(parts) == 3 else ("" if method.startswith("$") else "/")
        return cls(prefix=f"{head}/{stage}", method=method, path=path)

    @property
    def arn(self) -> str:
        if self.method.startswith("$"):
            return f"{self.prefix}/{self.method}"
        return f"{self.prefix}/{self.method}{self.path}"

    def resource(self, pattern: str) -> str:
        """The full resource ARN for a route pattern relative to the stage (e.g. "GET/orders/*")."""
        return f"{self.prefix}/{pattern}"

    @property
    def whole_stage(self) -> str:
        return f"{self.prefix}/*"


class PolicyResult(Record):
    """An IAM policy document, the strategy that built it, its size in bytes, and `conflicts`: satisfied routes
    whose requests a Deny pattern partly covers (see the module docstring)."""

    __slots__ = ("document", "strategy", "size", "conflicts")

    def __init__(self, document: dict, strategy: str, size: int, conflicts: int = 0) -> None:
        set_field(self, "document", document)
        set_field(self, "strategy", strategy)
        set_field(self, "size", size)
        set_field(self, "conflicts", conflicts)


class _Glob:
    """An IAM resource glob split at its `*`s, matched without backtracking.

    A glob matches when the text starts with its first piece, ends with its last, and holds the pieces between in
    order; taking each middle piece at its leftmost place never loses a match, so one left-to-right pass decides it.
    Every step is a string search over the text, so a decision costs linear time in the method ARN whatever path the
    caller sends (a backtracking regular expression for `*/*/*/*/status` took seconds on an 800-character path)."""

    __slots__ = ("head", "middle", "tail", "starred")

    def __init__(self, pattern: str) -> None:
        pieces = pattern.split("*")
        self.starred = len(pieces) > 1
        self.head = _Piece(pieces[0])
        self.tail = _Piece(pieces[-1]) if self.starred else None
        self.middle = tuple(_Piece(p) for p in pieces[1:-1] if p)

    def matches(self, text: str) -> bool:
        head, tail = self.head, self.tail
        if tail is None:
            return len(text) == len(head.text) and head.at(text, 0)
        end = len(text) - len(tail.text)
        if end < len(head.text) or not head.at(text, 0) or not tail.at(text, end):
            return False
        position = len(head.text)
        for piece in self.middle:
            found = piece.find(text, position, end)
            if found < 0:
                return False
            position = found + len(piece.text)
        return True


class _Piece:
    """A run of a glob between `*`s: literal characters and `?` (any one character)."""

    __slots__ = ("text", "_regex")

    def __init__(self, text: str) -> None:
        self.text = text
        # Only a piece holding '?' needs a regex: fixed length, no repetition, so it cannot backtrack.
        self._regex = re.compile("".join("." if c == "?" else re.escape(c) for c in text), re.DOTALL) \
            if "?" in text else None

    def at(self, text: str, position: int) -> bool:
        if self._regex is None:
            return text.startswith(self.text, position)
        return self._regex.match(text, position) is not None

    def find(self, text: str, start: int, end: int) -> int:
        if self._regex is None:
            return text.find(self.text, start, end)
        found = self._regex.search(text, start, end)
        return found.start() if found else -1


@functools.lru_cache(maxsize=4096)
def _glob(pattern: str) -> _Glob:
    return _Glob(pattern)


def glob_matches(pattern: str, text: str) -> bool:
    """Whether an IAM resource pattern (`*` any run of characters, '/' included; `?` one character) matches `text`."""
    return _glob(pattern).matches(text)


def policy_allows(document: dict, resource_arn: str) -> bool:
    """IAM evaluation of an authorizer policy for one method ARN: an explicit Deny wins, else an Allow is needed."""
    allowed = False
    for statement in document.get("Statement", ()):
        resources = statement["Resource"]
        resources = [resources] if isinstance(resources, str) else resources
        if any(glob_matches(r, resource_arn) for r in resources):
            if statement["Effect"] == "Deny":
                return False
            allowed = True
    return allowed


class _GlobMatcher:
    """A glob (`*`, `?`) as a tiny NFA, so the reach search can abandon a partial request as soon as it cannot match."""

    __slots__ = ("pattern", "_start", "_steps")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._start = self._closure({0})
        # One matcher is run against every route of the table, which repeat the same prefixes ("GET/", "svc1"):
        # remembering each (states, segment) step makes the whole-table analysis at init several times cheaper.
        self._steps: dict[tuple[frozenset[int], str], frozenset[int]] = {}

    def _closure(self, states: Iterable[int]) -> frozenset[int]:
        out = set()
        for state in states:
            while True:
                out.add(state)
                if state < len(self.pattern) and self.pattern[state] == "*":
                    state += 1
                    continue
                break
        return frozenset(out)

    @property
    def start(self) -> frozenset[int]:
        return self._start

    def step(self, states: frozenset[int], text: str) -> frozenset[int]:
        key = (states, text)
        moved = self._steps.get(key)
        if moved is None:
            moved = self._steps[key] = self._advance(states, text)
        return moved

    def _advance(self, states: frozenset[int], text: str) -> frozenset[int]:
        pattern = self.pattern
        for char in text:
            moved = set()
            for state in states:
                if state >= len(pattern):
                    continue
                token = pattern[state]
                if token == "*":
                    moved.add(state)
                elif token == "?" or token == char:
                    moved.add(state + 1)
            if not moved:
                return frozenset()
            states = self._closure(moved)
        return states

    def accepts(self, states: frozenset[int]) -> bool:
        return len(self.pattern) in states


class RouteReach:
    """For one API: which routes each IAM pattern reaches. Independent of the principal; memoised.

    Routes are indexed by their literal request prefixes (method and leading literal segments, e.g. "GET/svc1/items"):
    a pattern can only reach a route whose prefix and the pattern's own literal prefix agree (one starts with the
    other), so each pattern is searched against those few routes, not the whole table. A pattern starting with `*`
    (an ANY route's `*/path`) can place its literals at any depth: it is searched against the routes holding its
    first run of literals (or parameters) at some depth, found through a (depth, literal) index. That keeps the
    analysis of a table with thousands of routes near-linear."""

    def __init__(self, api: ApiRoutes) -> None:
        self.api = api
        self.routes = tuple(r for r in api.routes if r.template is not None)
        self._reach: dict[str, frozenset[str]] = {}
        self._patterns: dict[str, tuple[str, ...]] = {}
        self._nodes: dict[str, _PrefixNode] = {}
        depth = max((len(r.template.segments) for r in self.routes), default=0)  # type: ignore[union-attr]
        self._max_depth = depth + 1
        self.glob_unsafe = any("*" in literal or "?" in literal  # a literal '*' in a path is a wildcard to IAM
                               for r in self.routes for kind, literal in r.template.segments  # type: ignore[union-attr]
                               if kind == LITERAL)
        self._by_prefix: dict[str, list[tuple[Route, str]]] = {}
        for route in self.routes:
            for method, prefix in _request_prefixes(route):
                self._by_prefix.setdefault(prefix, []).append((route, method))
        self._sorted_prefixes = sorted(self._by_prefix)
        # Where each literal sits, and which positions take any value: what a pattern starting with `*` (which can
        # place its literals at any depth) is matched against, instead of every route.
        self._literal_at: dict[tuple[int, str], set[Route]] = {}
        self._any_at: list[set[Route]] = [set() for _ in range(self._max_depth + 1)]
        self._greedy: set[Route] = set()
        for route in self.routes:
            for index, (kind, literal) in enumerate(route.template.segments):  # type: ignore[union-attr]
                if kind == LITERAL:
                    self._literal_at.setdefault((index, literal), set()).add(route)
                elif kind == PARAM:
                    self._any_at[index].add(route)
                else:
                    self._greedy.add(route)

    def analyse_all(self) -> None:
        """Compute every route's patterns and reach now. Handlers call this at init: reach does not depend on the
        principal, and working it out lazily put the whole analysis on the first request of every execution
        environment."""
        if self.glob_unsafe:
            return  # such tables only ever get current-route policies (PolicyBuilder.build)
        for route in self.routes:
            self.reaches(route)
            self.deny_reaches(route)

    def patterns(self, route: Route) -> tuple[str, ...]:
        """The IAM patterns (relative to the stage) that cover `route`. An ANY route is one `*/path` pattern, unless
        that `*` (which also crosses '/') reaches more routes than naming each method would; then one per method."""
        cached = self._patterns.get(route.route_key)
        if cached is None:
            if route.template is None:
                cached = (route.route_key,)
            elif route.method != "ANY":
                cached = (f"{route.method}/{route.template.iam_resource_glob()}",)
            else:
                path = route.template.iam_resource_glob()
                star = (f"*/{path}",)
                each = tuple(f"{method}/{path}" for method in CONCRETE_METHODS)
                wide = self._pattern_reach(star[0])
                narrow = frozenset().union(*(self._pattern_reach(p) for p in each))
                cached = star if wide <= narrow else each
            self._patterns[route.route_key] = cached
        return cached

    def deny_patterns(self, route: Route) -> tuple[str, ...]:
        """The patterns that deny every request to `route`: its own patterns plus, where a pattern ends in a literal,
        the trailing-slash form (".../orders/" reaches the route but `GET/orders` does not match it)."""
        own = self.patterns(route)
        if route.template is None or not route.template.segments:
            return own
        return own + tuple(f"{p}/" for p in own if not p.endswith("*"))

    def reaches(self, route: Route) -> frozenset[str]:
        """Route keys of the other routes having at least one request that one of `route`'s patterns matches."""
        if route.template is None:
            return frozenset()
        return frozenset().union(*(self._pattern_reach(p) for p in self.patterns(route))) - {route.route_key}

    def deny_reaches(self, route: Route) -> frozenset[str]:
        """Route keys of the other routes having at least one request that one of `route`'s deny patterns matches."""
        if route.template is None:
            return frozenset()
        return frozenset().union(*(self._pattern_reach(p) for p in self.deny_patterns(route))) - {route.route_key}

    def node(self, fixed: str) -> "_PrefixNode":
        """The routes under the wildcard pattern `fixed + "*"`, where `fixed` is a method and leading literal
        segments ending in '/' ("GET/", "GET/svc1/"); see _PrefixNode. Index lookups only, no search."""
        found = self._nodes.get(fixed)
        if found is None:
            found = self._nodes[fixed] = self._prefix_node(fixed)
        return found

    def _prefix_node(self, fixed: str) -> "_PrefixNode":
        covered: list[tuple[str, str]] = []
        children: set[str] = set()
        for prefix in self._prefixes_starting_with(fixed):
            rest = prefix[len(fixed):]
            if rest:
                children.add(fixed + rest.split("/", 1)[0] + "/")
            covered.extend((route.route_key, method) for route, method in self._by_prefix[prefix])
        # Routes whose literal prefix stops short of `fixed` ("GET/svc1/items" under "GET/svc1/items/", or a route
        # starting with a parameter) may have requests the pattern matches too: counted as reached (over-counting
        # only ever withholds a wildcard).
        reached = {key for key, _ in covered}
        reached.update(route.route_key for route, _ in self._routes_with_prefix_of(fixed))
        return _PrefixNode(fixed + "*", tuple(covered), frozenset(reached), tuple(sorted(children)))

    def _prefixes_starting_with(self, fixed: str) -> list[str]:
        prefixes = self._sorted_prefixes
        index = bisect.bisect_left(prefixes, fixed)
        out = []
        while index < len(prefixes) and prefixes[index].startswith(fixed):
            out.append(prefixes[index])
            index += 1
        return out

    def _routes_with_prefix_of(self, fixed: str) -> list[tuple[Route, str]]:
        """Routes whose literal prefix is a prefix of `fixed` ending at one of its segment boundaries."""
        out = []
        for end in range(len(fixed) + 1):
            if end == len(fixed) or fixed[end] == "/" or (end and fixed[end - 1] == "/"):
                out.extend(self._by_prefix.get(fixed[:end], ()))
        return out

    def _candidates(self, fixed: str) -> list[Route]:
        """Every route having a request that starts with `fixed`: its literal prefix and `fixed` must agree."""
        if not fixed:
            return list(self.routes)
        found = {route.route_key: route for route, _ in self._routes_with_prefix_of(fixed)}
        for prefix in self._prefixes_starting_with(fixed):
            found.update((route.route_key, route) for route, _ in self._by_prefix[prefix])
        return list(found.values())

    def _candidates_anywhere(self, pattern: str) -> list[Route]:
        """For a pattern starting with `*`: every route that can hold the pattern's first run of literal segments
        at some depth (each the same literal there, or a parameter), and every greedy route."""
        segments = pattern.split("/")[1:]
        run: list[str] = []
        for segment in segments:
            if segment and "*" not in segment and "?" not in segment:
                run.append(segment)
            elif run:
                break
        if not run:
            return list(self.routes)
        found = set(self._greedy)
        empty: set[Route] = set()
        for start in range(self._max_depth + 1 - len(run)):
            # (routes with that literal there, routes with a parameter there) per segment of the run; start from the
            # smallest and test the others by membership, so no large set is copied
            options = sorted(((self._literal_at.get((start + offset, literal), empty), self._any_at[start + offset])
                              for offset, literal in enumerate(run)), key=lambda pair: len(pair[0]) + len(pair[1]))
            (literal_here, any_here), rest = options[0], options[1:]
            found.update(route for route in (*literal_here, *any_here)
                         if all(route in literals or route in anything for literals, anything in rest))
        return sorted(found, key=lambda r: r.route_key)

    def _pattern_reach(self, pattern: str) -> frozenset[str]:
        """Route keys of the routes having at least one request that `pattern` matches."""
        cached = self._reach.get(pattern)
        if cached is None and not _has_wildcard(pattern):
            # One request ARN: wherever the router sends it.
            method, _, path = pattern.partition("/")
            target = self.api.match(method, "/" + path)
            cached = self._reach[pattern] = frozenset(
                (target.route_key,) if target is not None and target.template is not None else ())
        if cached is None:
            fixed = _literal_prefix(pattern)
            candidates = self._candidates(fixed) if fixed else self._candidates_anywhere(pattern)
            # What can steer the routing of a request the pattern matches: the literals of the routes that could
            # match it at each position (only candidates can), and the pattern's own literals.
            literals_at: list[set[str]] = [set() for _ in range(self._max_depth + 1)]
            for route in candidates:
                for index, (kind, literal) in enumerate(route.template.segments):  # type: ignore[union-attr]
                    if kind == LITERAL:
                        literals_at[index].add(literal)
            own = {segment for segment in pattern.split("/")[1:] if segment and "*" not in segment}
            values = [[_OTHER_SEGMENT, *sorted(pool | own)] for pool in literals_at]
            matcher = _GlobMatcher(pattern)
            cached = frozenset(route.route_key for route in candidates
                               if self._reaches_directly(pattern, route)
                               or self._pattern_reaches(matcher, values, route))
            self._reach[pattern] = cached
        return cached

    def _reaches_directly(self, pattern: str, target: Route) -> bool:
        """The cases that need no search: a route without parameters has only its own ARNs (with and without the
        trailing slash), and a route's own patterns match all of its requests. False means "search"."""
        template = target.template
        assert template is not None
        methods = CONCRETE_METHODS if target.method == "ANY" else (target.method,)
        if not template.has_parameters:
            glob = template.iam_resource_glob()
            tails = ("", "/") if template.segments else ("",)
            return any(glob_matches(pattern, f"{method}/{glob}{tail}") and self.api.match(method, template.path) is target
                       for method in methods for tail in tails)
        own = f"{target.method}/{template.iam_resource_glob()}"
        return pattern == own or pattern == own + "/"

    def _pattern_reaches(self, matcher: _GlobMatcher, values: list[list[str]], target: Route) -> bool:
        template = target.template
        assert template is not None
        methods = CONCRETE_METHODS if target.method == "ANY" else (target.method,)
        budget = [_SEARCH_BUDGET]
        segments = template.segments
        greedy = bool(segments) and segments[-1][0] == GREEDY

        def candidates(index: int) -> list[str]:
            return values[index] if index < len(values) else [_OTHER_SEGMENT]

        def search(method: str, index: int, states: frozenset[int], chosen: list[str]) -> bool:
            budget[0] -= 1
            if budget[0] < 0:
                return True
            fixed = len(segments) - (1 if greedy else 0)
            if index >= fixed:
                if not greedy:
                    return self._accepted_here(matcher, states, method, chosen, target)
                # the greedy parameter takes one or more further segments
                return extend(method, index, states, chosen, first=True)
            kind, literal = segments[index]
            options = [literal] if kind == LITERAL else candidates(index)
            for value in options:
                text = ("/" if index else "") + value
                nxt = matcher.step(states, text)
                if nxt and search(method, index + 1, nxt, chosen + [value]):
                    return True
            return False

        def extend(method: str, index: int, states: frozenset[int], chosen: list[str], first: bool) -> bool:
            if not first and self._accepted_here(matcher, states, method, chosen, target):
                return True
            if index > self._max_depth:
                return False
            for value in candidates(index):
                budget[0] -= 1
                if budget[0] < 0:
                    return True
                nxt = matcher.step(states, ("/" if index else "") + value)
                if nxt and extend(method, index + 1, nxt, chosen + [value], first=False):
                    return True
            return False

        for method in methods:
            start = matcher.step(matcher.start, method + "/")
            if start and search(method, 0, start, []):
                return True
        return False

    def _accepted_here(self, matcher: _GlobMatcher, states: frozenset[int], method: str, chosen: Sequence[str],
                       target: Route) -> bool:
        # API Gateway routes ".../orders/" like ".../orders", but the method ARN keeps the slash: both are requests
        # to the target, and a pattern reaches it if it matches either.
        if not (matcher.accepts(states) or (chosen and matcher.accepts(matcher.step(states, "/")))):
            return False
        return self.api.match(method, "/" + "/".join(chosen)) is target


class _PrefixNode(Record):
    """What the wildcard pattern `<fixed>*` means for the table.

    pattern   the pattern, relative to the stage ("GET/svc1/*")
    covered   (route key, method) pairs all of whose requests the pattern matches: the routes whose literal prefix
              starts with `fixed` (an ANY route appears once per method)
    reached   route keys that may have a request the pattern matches (covered ones, and routes whose prefix stops
              short of `fixed`); a superset, so a wildcard is only used when no unwanted route is in it
    children  the next level: `fixed` plus each next literal segment of a covered route, with '/'
    """

    __slots__ = ("pattern", "covered", "reached", "children")

    def __init__(self, pattern: str, covered: tuple[tuple[str, str], ...], reached: frozenset[str],
                 children: tuple[str, ...]) -> None:
        set_field(self, "pattern", pattern)
        set_field(self, "covered", covered)
        set_field(self, "reached", reached)
        set_field(self, "children", children)


def _literal_prefix(pattern: str) -> str:
    """The part of a glob before its first wildcard: every string it matches starts with this."""
    cut = min((i for i in (pattern.find("*"), pattern.find("?")) if i >= 0), default=len(pattern))
    return pattern[:cut]


def _request_prefixes(route: Route) -> tuple[tuple[str, str], ...]:
    """(method, prefix) for each method of `route`: what every request ARN (relative to the stage) to it starts
    with, the method and the route's leading literal segments."""
    leading = []
    for kind, literal in route.template.segments:  # type: ignore[union-attr]
        if kind != LITERAL:
            break
        leading.append(literal)
    methods = CONCRETE_METHODS if route.method == "ANY" else (route.method,)
    return tuple((method, f"{method}/{'/'.join(leading)}") for method in methods)


class PolicyBuilder:
    """Builds the authorizer policy for a principal from the set of routes it satisfies.

    Many principals share one permission set, so the encodings are built once per (stage, satisfied set) and looked
    up after that: `satisfied_routes` hands out one frozenset per set, whose hash Python caches."""

    _MAX_MEMO = 256

    def __init__(self, api: ApiRoutes, *, max_bytes: int = DEFAULT_MAX_POLICY_BYTES) -> None:
        self.api = api
        self.reach = RouteReach(api)
        self.max_bytes = max_bytes
        self._encodings: dict[tuple, list[PolicyResult]] = {}

    def build(self, arn: MethodArn, satisfied: Collection[Route], *, current_allowed: bool) -> PolicyResult:
        """The smallest correct encoding that fits; `current_allowed` is the decision for this request's route."""
        if arn.method.startswith("$") or self.reach.glob_unsafe:
            return self.for_current_route(arn, current_allowed)
        if not isinstance(satisfied, frozenset):
            satisfied = frozenset(satisfied)
        cache_key = (arn.prefix, satisfied)
        candidates = self._encodings.get(cache_key)
        if candidates is None:
            candidates = self._encodings_for(arn, frozenset(r.route_key for r in satisfied))
            if len(self._encodings) >= self._MAX_MEMO:
                self._encodings.clear()
            self._encodings[cache_key] = candidates
        for result in candidates:  # in order of preference: exact relies least on the table being complete
            if not self._fits(result):
                continue
            if policy_allows(result.document, arn.arn) == current_allowed:
                return result
        return self.for_current_route(arn, current_allowed)

    def route_wide(self, arn: MethodArn, satisfied: Collection[Route]) -> PolicyResult | None:
        """The encoding `build` would return for every request of a principal satisfying `satisfied`, if one is
        right for every route (fits, and no Deny covers a satisfied route); None when some request would get only
        a current-route policy. What the construct checks at synth to decide whether a token-keyed cache is safe."""
        if arn.method.startswith("$") or self.reach.glob_unsafe:
            return None
        candidates = self._encodings_for(arn, frozenset(r.route_key for r in satisfied))
        return next((r for r in candidates if self._fits(r) and not r.conflicts), None)

    def _fits(self, result: PolicyResult) -> bool:
        return result.size <= self.max_bytes and not _too_long(result.document)

    def _encodings_for(self, arn: MethodArn, sat_keys: frozenset[str]) -> list[PolicyResult]:
        plain = self.reach.routes
        sat = [r for r in plain if r.route_key in sat_keys]
        unsat = [r for r in plain if r.route_key not in sat_keys]
        if not sat:
            return [_policy_result(_document([], [arn.whole_stage]), "exact")]
        sat_plain = frozenset(r.route_key for r in sat)
        unsat_keys = frozenset(r.route_key for r in unsat)
        candidates: list[PolicyResult] = []

        # exact: wildcards over parts of the table holding only satisfied routes, each other satisfied route's own
        # patterns, and a Deny for every unsatisfied route those own patterns reach.
        wide, covered = self._wildcards(wanted=sat_plain, unwanted=unsat_keys)
        rest = [r for r in sat if not _fully_covered(r, covered)]
        reached = frozenset().union(*(self.reach.reaches(r) for r in rest))
        denied = [s for s in unsat if s.route_key in reached]
        conflicts = sum(1 for s in denied if self.reach.deny_reaches(s) & sat_keys)
        allow = [arn.resource(p) for p in wide] + [arn.resource(p) for r in rest for p in self.reach.patterns(r)]
        deny = [arn.resource(p) for s in denied for p in self.reach.deny_patterns(s)]
        if any(_has_wildcard(a) for a in allow):
            deny.append(arn.resource(EMPTY_SEGMENT_PATTERN))
        candidates.append(_policy_result(_document(allow, deny), "exact", conflicts))

        # deny_list: the whole stage, minus wildcards over parts holding only unsatisfied routes and each other
        # unsatisfied route's deny patterns (only when none of those reaches a satisfied route).
        wide, covered = self._wildcards(wanted=unsat_keys, unwanted=sat_plain)
        rest = [s for s in unsat if not _fully_covered(s, covered)]
        if not any(self.reach.deny_reaches(s) & sat_keys for s in rest):
            deny_all = [arn.resource(p) for p in wide]
            deny_all += [arn.resource(p) for s in rest for p in self.reach.deny_patterns(s)]
            deny_all.append(arn.resource(EMPTY_SEGMENT_PATTERN))
            candidates.append(_policy_result(_document([arn.whole_stage], deny_all), "deny_list"))
        return candidates

    def _wildcards(self, *, wanted: frozenset[str], unwanted: frozenset[str]) -> tuple[list[str], set]:
        """Patterns `<method>/<literals>/*` that reach no `unwanted` route and cover at least two `wanted` ones,
        widest first, and the (route key, method) pairs they cover. Nodes are looked at from each method down,
        stopping where a node is usable or holds nothing wanted, so the walk costs about the size of the table."""
        patterns: list[str] = []
        covered: set[tuple[str, str]] = set()
        pending = [f"{method}/" for method in CONCRETE_METHODS]
        while pending:
            node = self.reach.node(pending.pop())
            wanted_here = sum(1 for key, _ in node.covered if key in wanted)
            if wanted_here == 0:
                continue
            if wanted_here >= 2 and node.reached.isdisjoint(unwanted):
                patterns.append(node.pattern)
                covered.update(node.covered)
            else:
                pending.extend(node.children)
        return patterns, covered

    def for_current_route(self, arn: MethodArn, allowed: bool) -> PolicyResult:
        return current_route_policy(arn, allowed)


def _fully_covered(route: Route, covered: set) -> bool:
    """Whether wildcards cover every method of `route` (an ANY route needs all of them)."""
    methods = CONCRETE_METHODS if route.method == "ANY" else (route.method,)
    return all((route.route_key, method) in covered for method in methods)


# The longest stage prefix a deployed method ARN can have (partition aws-iso-b/aws-us-gov, a 14-character region, a
# 12-digit account, a 10-character API id): synth-time size checks use it, since the real one is known only deployed.
_LONGEST_ARN_HEAD = "arn:aws-us-gov:execute-api:ap-southeast-4:123456789012:abcdefghij"
# Permission combinations a synth-time check tries at most (2^8): past that, it cannot prove that every one fits.
MAX_CHECKED_COMBINATIONS = 256


class PolicyCoverage(Record):
    """Whether every principal of an API gets a route-wide policy (so a policy cached per token is right for every
    route), as far as a synth-time check can tell.

    route_wide  True only when every combination of the API's permissions was tried and each one fits
    reason      one sentence for the operator: what was checked and, when not route-wide, what failed
    """

    __slots__ = ("route_wide", "reason")

    def __init__(self, route_wide: bool, reason: str) -> None:
        set_field(self, "route_wide", route_wide)
        set_field(self, "reason", reason)


def policy_coverage(api: ApiRoutes, *, stage: str, max_bytes: int = DEFAULT_MAX_POLICY_BYTES) -> PolicyCoverage:
    """Try every combination of the API's permissions (routes asking the same thing are one) for a route-wide
    policy within `max_bytes`. A principal's satisfied routes are always the public ones plus the routes of some
    set of permissions it meets, so this covers every principal, as long as there are few enough permissions."""
    builder = PolicyBuilder(api, max_bytes=max_bytes)
    if builder.reach.glob_unsafe:
        return PolicyCoverage(False, "a route path holds '*' or '?', which IAM reads as a wildcard, so every policy "
                                     "names only the current request")
    plain = builder.reach.routes
    public = [r for r in plain if r.public]
    groups = [group for group in permission_groups(plain) if not group[0].public]
    if 2 ** len(groups) > MAX_CHECKED_COMBINATIONS:
        return PolicyCoverage(False, f"the API's routes ask for {len(groups)} distinct permissions, more "
                                     f"combinations than the {MAX_CHECKED_COMBINATIONS} a synth-time check tries, so "
                                     "it cannot show that every principal's policy fits")
    builder.reach.analyse_all()
    arn = MethodArn.parse(f"{_LONGEST_ARN_HEAD}/{stage}/GET/")
    for chosen in range(2 ** len(groups)):
        satisfied = public + [r for bit, group in enumerate(groups) if chosen >> bit & 1 for r in group]
        if builder.route_wide(arn, satisfied) is None:
            example = ", ".join(sorted(r.route_key for r in satisfied if not r.public)[:3]) or "no route"
            return PolicyCoverage(False, f"a principal satisfying {len(satisfied)} of the {len(plain)} routes (e.g. "
                                         f"{example}) gets no route-wide policy within {max_bytes} bytes, only one "
                                         "naming the current request")
    return PolicyCoverage(True, f"every combination of the API's {len(groups)} permissions gets a route-wide policy "
                                f"within {max_bytes} bytes")


def current_route_policy(arn: MethodArn, allowed: bool) -> PolicyResult:
    """Allow or Deny exactly this request's ARN (WebSocket $connect, public routes, and the size fallback).

    A request path may itself contain '*' or '?' (GET /pages/*), which IAM reads as wildcards: such an ARN in an
    Allow would, once cached, admit every route it matches. It can only be denied (a Deny that covers more than this
    request is safe); the request is refused rather than answered with a policy that means more than it says."""
    if allowed and not _has_wildcard(arn.arn):
        return _policy_result(_document([arn.arn], []), "current_route")
    strategy = "current_route" if not allowed else "wildcard_path_refused"
    return _policy_result(_document([], [arn.arn]), strategy)


def _has_wildcard(resource: str) -> bool:
    return "*" in resource or "?" in resource


def _policy_result(document: dict, strategy: str, conflicts: int = 0) -> PolicyResult:
    return PolicyResult(document, strategy, len(json.dumps(document, separators=(",", ":"))), conflicts)


def _document(allow: Sequence[str], deny: Sequence[str]) -> dict:
    statements = []
    if allow:
        statements.append({"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": sorted(set(allow))})
    if deny:
        statements.append({"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": sorted(set(deny))})
    return {"Version": "2012-10-17", "Statement": statements}


def _too_long(document: dict) -> bool:
    return any(len(r) > MAX_RESOURCE_ARN_CHARS for s in document["Statement"] for r in s["Resource"])
