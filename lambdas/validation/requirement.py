"""Requirement: what a route demands of an authenticated Principal (token use, scopes, roles, groups, claim values)."""
from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Sequence

from .errors import TokenRejected
from .config import TOKEN_USES
from .principal import Principal


def _names(value: Any, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = value.split()
    out = tuple(value)
    if not all(isinstance(v, str) and v for v in out):
        raise ValueError(f"Requirement.{field} must be a list of non-empty strings, got {value!r}")
    return out


def claim_value_at(claims: Mapping[str, Any], name: str) -> tuple[bool, Any]:
    """(present, value) for a claim name. A name starting with "/" is a JSON Pointer (RFC 6901) into nested claims,
    e.g. "/kubernetes.io/namespace"; anything else is a top-level claim name taken literally."""
    if not name.startswith("/"):
        return (name in claims, claims.get(name))
    value: Any = claims
    for token in name[1:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(value, Mapping) and token in value:
            value = value[token]
        elif isinstance(value, list) and token.isdigit() and int(token) < len(value):
            value = value[int(token)]
        else:
            return (False, None)
    return (True, value)


def _same_value(found: Any, allowed: Any) -> bool:
    # bool is an int in Python; a claim `true` must not satisfy an allowed value 1 (or the reverse).
    if isinstance(found, bool) or isinstance(allowed, bool):
        if isinstance(found, bool) and isinstance(allowed, bool):
            return found is allowed
        if isinstance(found, bool) and isinstance(allowed, str):
            return allowed == ("true" if found else "false")
        return False
    if isinstance(allowed, str) and isinstance(found, (int, float)):
        return allowed == str(found)
    return found == allowed


def claim_matches(found: Any, allowed: Sequence[Any]) -> bool:
    """A claim satisfies an any-of list when its value (or, for an array claim, any element) is allowed."""
    values = found if isinstance(found, list) else (found,)
    return any(_same_value(v, a) for v in values for a in allowed)


def wrong_token_use(expected: str, found: str) -> TokenRejected:
    """The rejection for a route that accepts only `expected` tokens (access or id) given the other kind."""
    if expected == "access":
        hint = "an ID token proves a login to a client app; call this route with the access token instead"
    else:
        hint = "this route wants an ID token; an access token was presented"
    return TokenRejected("wrong_token_use", f"this is an {'ID' if found == 'id' else 'access'} token; this route "
                         f"accepts only {'ID' if expected == 'id' else 'access'} tokens", expected=expected,
                         found=found, hint=hint)


class Requirement:
    """Token use, scopes/roles/groups any-of and all-of, and claim checks (claim name -> allowed values, any-of).

    An empty list demands nothing. Every non-empty condition must hold (they are ANDed together).

    token_use  "access" or "id" narrows an issuer that accepts either kind of token to one kind on this route;
               None leaves the issuer's own token_use in force. A token of the other kind fails with
               wrong_token_use, which is an authentication failure (401), not an authorization one: the caller
               presented the wrong credential, and no permission granted to it would make it acceptable. It is
               therefore reported before any scope/role/group/claim failure.
    """

    __slots__ = ("scopes_any", "scopes_all", "roles_any", "roles_all", "groups_any", "groups_all", "claims",
                 "token_use", "_sets", "_empty", "_allows")

    def __init__(self, scopes_any: Iterable[str] = (), scopes_all: Iterable[str] = (),
                 roles_any: Iterable[str] = (), roles_all: Iterable[str] = (), groups_any: Iterable[str] = (),
                 groups_all: Iterable[str] = (), claims: Mapping[str, Sequence[Any]] | None = None,
                 token_use: str | None = None) -> None:
        set_ = object.__setattr__
        if token_use is not None and token_use not in TOKEN_USES:
            raise ValueError(f"Requirement.token_use must be \"access\", \"id\" or null (either kind), got "
                             f"{token_use!r}")
        set_(self, "token_use", token_use)
        for field, value in (("scopes_any", scopes_any), ("scopes_all", scopes_all), ("roles_any", roles_any),
                             ("roles_all", roles_all), ("groups_any", groups_any), ("groups_all", groups_all)):
            set_(self, field, _names(value, field))
        checked: dict[str, tuple] = {}
        for name, allowed in (claims or {}).items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"Requirement.claims keys must be claim names, got {name!r}")
            if isinstance(allowed, (str, int, float, bool)):
                allowed = (allowed,)
            allowed = tuple(allowed)
            if not allowed:
                raise ValueError(f"Requirement.claims[{name!r}] lists no allowed value; nothing could ever match")
            checked[name] = allowed
        set_(self, "claims", checked)
        set_(self, "_sets", tuple(frozenset(getattr(self, f)) for f in
                                  ("scopes_any", "scopes_all", "roles_any", "roles_all", "groups_any", "groups_all")))
        set_(self, "_empty", not any(self._sets) and not checked and token_use is None)
        set_(self, "_allows", self._compile_allows())

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Requirement is immutable")

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Requirement) and self._sets == other._sets and self.claims == other.claims
                and self.token_use == other.token_use)

    def __hash__(self) -> int:
        return hash((self._sets, self.token_use))

    def __repr__(self) -> str:
        parts = [f"{f}={getattr(self, f)!r}" for f in ("token_use", "scopes_any", "scopes_all", "roles_any",
                                                         "roles_all", "groups_any", "groups_all") if getattr(self, f)]
        if self.claims:
            parts.append(f"claims={self.claims!r}")
        return f"Requirement({', '.join(parts)})"

    @property
    def is_empty(self) -> bool:
        return self._empty

    @classmethod
    def from_route(cls, route: Mapping) -> "Requirement":
        """From a route entry of the rendered route table (token_use, scopes, scopes_all, roles, roles_all, groups,
        groups_all, claims)."""
        return cls(scopes_any=route.get("scopes") or (), scopes_all=route.get("scopes_all") or (),
                   roles_any=route.get("roles") or (), roles_all=route.get("roles_all") or (),
                   groups_any=route.get("groups") or (), groups_all=route.get("groups_all") or (),
                   claims=route.get("claims") or None, token_use=route.get("token_use"))

    def to_route(self) -> dict[str, Any]:
        """The route table fields from_route reads (token_use apart: a route entry writes it after these)."""
        return {"scopes": list(self.scopes_any), "scopes_all": list(self.scopes_all), "roles": list(self.roles_any),
                "roles_all": list(self.roles_all), "groups": list(self.groups_any),
                "groups_all": list(self.groups_all),
                "claims": {name: list(values) for name, values in self.claims.items()}}

    def failures(self, principal: Principal) -> list[TokenRejected]:
        """Every condition the principal does not meet (empty when it is allowed)."""
        if self._empty:
            return []
        out = []
        if self.token_use is not None and principal.token_use != self.token_use:
            out.append(wrong_token_use(self.token_use, principal.token_use))
        scopes_any, scopes_all, roles_any, roles_all, groups_any, groups_all = self._sets
        for code, kind, have, any_of, all_of, hint in (
                ("insufficient_scope", "scope", principal.scopes, scopes_any, scopes_all,
                 "request the token with the scope(s) this route needs"),
                ("insufficient_role", "role", principal.roles, roles_any, roles_all,
                 "assign the caller the role in the identity provider"),
                ("insufficient_group", "group", principal.groups, groups_any, groups_all,
                 "add the caller to the group in the identity provider")):
            if any_of and any_of.isdisjoint(have):
                out.append(TokenRejected(code, f"the token has none of the {kind}s this route accepts",
                                         expected=sorted(any_of), found=list(have)[:50], hint=hint))
            if all_of:
                missing = all_of.difference(have)
                if missing:
                    out.append(TokenRejected(code, f"the token lacks {kind}(s) this route requires: "
                                             f"{', '.join(sorted(missing))}", expected=sorted(all_of),
                                             found=list(have)[:50], hint=hint))
        for name, allowed in self.claims.items():
            present, value = claim_value_at(principal.claims, name)
            if not present:
                out.append(TokenRejected("claim_mismatch", f"the token has no {name!r} claim, which this route "
                                         "checks", expected=list(allowed), found=None,
                                         hint=f"the issuer must include {name!r} in the token"))
            elif not claim_matches(value, allowed):
                shown = value if isinstance(value, (str, int, float, bool)) else type(value).__name__
                if isinstance(value, list):
                    shown = [v for v in value if isinstance(v, (str, int, float, bool))][:20]
                out.append(TokenRejected("claim_mismatch", f"the token's {name!r} claim is not one this route "
                                         "allows", expected=list(allowed), found=shown,
                                         hint=f"only callers whose {name!r} is one of the expected values may call"))
        return out

    def _compile_allows(self) -> Callable[[Principal], bool]:
        """The allow decision without building explanations, specialised once per Requirement because it runs on
        every request: the most common route rules (nothing, or only any-of scopes) get a one-line test."""
        scopes_any, scopes_all, roles_any, roles_all, groups_any, groups_all = self._sets
        token_use, claims = self.token_use, self.claims
        if self._empty:
            return lambda principal: True
        if token_use is None and not claims and not any(self._sets[1:]):
            return lambda principal: not scopes_any.isdisjoint(principal.scopes)

        def allows(principal: Principal) -> bool:
            if token_use is not None and principal.token_use != token_use:
                return False
            if scopes_any and scopes_any.isdisjoint(principal.scopes):
                return False
            if scopes_all and not scopes_all.issubset(principal.scopes):
                return False
            if roles_any and roles_any.isdisjoint(principal.roles):
                return False
            if roles_all and not roles_all.issubset(principal.roles):
                return False
            if groups_any and groups_any.isdisjoint(principal.groups):
                return False
            if groups_all and not groups_all.issubset(principal.groups):
                return False
            for name, allowed in claims.items():
                present, value = claim_value_at(principal.claims, name)
                if not present or not claim_matches(value, allowed):
                    return False
            return True
        return allows

    def check(self, principal: Principal) -> None:
        """Raise the first unmet condition as TokenRejected (wrong_token_use, 401, before any 403 code); return None
        when allowed."""
        if self._allows(principal):
            return
        raise self.failures(principal)[0]

    def is_satisfied_by(self, principal: Principal) -> bool:
        return self._allows(principal)
