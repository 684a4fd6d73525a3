"""Policy-wide rules a single field cannot see: names, route keys, cross references, forced enforcement."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

from stacks.policy.enforcement import route_native_blockers
from stacks.policy.errors import PolicyError, Problem
from stacks.policy.route_keys import (WEBSOCKET_CONNECT, RouteKey, parse_route_key,
                                      parse_websocket_route_key)

if TYPE_CHECKING:
    from stacks.policy.model import ApiSpec, AuthPolicy, RouteSpec

# Names become CDK construct ids, Pulumi resource names and OpenAPI security definition names.
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,62}")
_NAME_HELP = "names start with a letter and hold up to 63 letters, digits, '-' or '_'"
# Why a WebSocket message route cannot carry requirements, said wherever that is refused.
WEBSOCKET_AUTHORIZES_ON_CONNECT = (
    "API Gateway runs a WebSocket API's authorizer on $connect only, so authorization happens once per connection "
    "on $connect and every later message rides on that connection")


def check_policy(policy: "AuthPolicy", *, invalid_issuers: frozenset[str] = frozenset(),
                 every_route_valid: bool = True) -> None:
    """Raise one PolicyError listing every cross-reference problem, each with its field path.

    The loader also runs this over the valid parts of a policy whose fields have errors, so one report lists both:
    `invalid_issuers` names issuers the file defines whose own fields failed (a reference to one is not "unknown"),
    and `every_route_valid=False` skips the checks that need every route (which scopes an issuer defines).
    """
    from stacks.policy.model import STANDARD_SCOPES

    problems: list[Problem] = []
    for section in ("issuers", "apis", "clients"):
        for name in getattr(policy, section):
            if not _NAME.fullmatch(name):
                problems.append(Problem((section, name), f"{name!r} is not a usable name: {_NAME_HELP}"))

    by_url: dict[str, str] = {}
    for name, issuer in policy.issuers.items():
        if issuer.issuer in by_url:
            problems.append(Problem(("issuers", name, "issuer"), (
                f"issuer {by_url[issuer.issuer]} already has {issuer.issuer}; tokens are matched to issuers by iss, "
                f"so give each issuer URL once (list all its audiences there)")))
        by_url.setdefault(issuer.issuer, name)

    known_issuers = ", ".join(policy.issuers)
    for api_name, api in policy.apis.items():
        parsed: list[RouteKey] = []
        if api.is_websocket:
            problems.extend(_websocket_route_problems(api_name, api))
        for key, route in api.routes.items():
            loc = ("apis", api_name, "routes", key)
            if api.is_websocket:
                try:
                    parse_websocket_route_key(key)
                except ValueError as exc:
                    problems.append(Problem(loc, str(exc)))
                    continue
                if key != WEBSOCKET_CONNECT:
                    continue   # carries nothing to check (_websocket_route_problems refused any requirement)
            else:
                try:
                    route_key = parse_route_key(key)
                except ValueError as exc:
                    problems.append(Problem(loc, str(exc)))
                    continue
                for other in parsed:
                    if route_key.conflicts_with(other):
                        problems.append(Problem(loc, f"{key!r} is the same route as {other.key!r} (parameter names "
                                                     f"do not distinguish routes); merge them"))
                parsed.append(route_key)
            if not route.public and not route.issuers:
                problems.append(Problem(loc, "a protected route names the issuers whose tokens it accepts (issuers: "
                                             "[name]); for a route without authentication set public: true"))
            for index, issuer_name in enumerate(route.issuers):
                if issuer_name in invalid_issuers:
                    continue
                if issuer_name not in policy.issuers:
                    problems.append(Problem(loc + ("issuers", index), (
                        f"no issuer named {issuer_name!r}; the policy defines: {known_issuers}")))
                    continue
                issuer = policy.issuers[issuer_name]
                if route.token_use not in (None, "any") and issuer.token_use not in ("any", route.token_use):
                    problems.append(Problem(loc + ("token_use",), (
                        f"the route accepts only {route.token_use} tokens but issuer {issuer_name} accepts only "
                        f"{issuer.token_use} tokens (token_use: {issuer.token_use}); set token_use: any on the "
                        f"issuer to narrow per route")))
            problems.extend(_revocation_and_proof_problems(loc, route, policy, websocket=api.is_websocket))
            problems.extend(_cookie_route_problems(loc, route, policy, websocket=api.is_websocket))
            if route.enforcement == "native" and api.is_websocket:
                problems.append(Problem(loc + ("enforcement",), (
                    "enforcement: native is impossible on a WebSocket API: API Gateway has no native JWT authorizer "
                    "for WebSocket APIs, so $connect is authorized by the Lambda REQUEST authorizer. Use "
                    "enforcement: auto (or lambda)")))
            elif route.enforcement == "native" and all(i in policy.issuers for i in route.issuers):
                blockers = route_native_blockers(policy, route_key.key, route)
                if blockers:
                    problems.append(Problem(loc + ("enforcement",), (
                        "enforcement: native is impossible here: " + "; ".join(blockers)
                        + ". Use enforcement: auto (or lambda) or change the route")))

    for client_name, client in policy.clients.items():
        loc = ("clients", client_name)
        issuer = policy.issuers.get(client.issuer)
        if client.issuer in invalid_issuers:
            continue
        if issuer is None:
            problems.append(Problem(loc + ("issuer",), f"no issuer named {client.issuer!r}; the policy defines: "
                                                       f"{known_issuers}"))
            continue
        defined = set(policy.issuer_scopes(client.issuer))
        for index, scope in enumerate(client.scopes if every_route_valid else ()):
            if scope not in defined and scope not in STANDARD_SCOPES:
                choices = ", ".join(sorted(defined)) or "none yet"
                problems.append(Problem(loc + ("scopes", index), (
                    f"scope {scope!r} is not defined by issuer {client.issuer} (defined: {choices}); require it on a "
                    f"route or declare it under issuers.{client.issuer}.scopes")))
        if client.audience is not None and client.audience not in issuer.audiences:
            problems.append(Problem(loc + ("audience",), (
                f"audience {client.audience!r} is not one of issuer {client.issuer}'s audiences "
                f"({', '.join(issuer.audiences)}); a token for it would be refused")))
        if client.audience is None and issuer.profile != "cognito":
            problems.append(Problem(loc + ("audience",), (
                f"name the audience this client calls (one of {', '.join(issuer.audiences)}); only Cognito, whose "
                f"access tokens carry client_id instead of aud, can do without")))
    if problems:
        raise PolicyError(problems)


def policy_warnings(policy: "AuthPolicy") -> list[Problem]:
    """What a valid policy holds that is probably a mistake: an issuer no route accepts."""
    used = {name for api in policy.apis.values() for route in api.routes.values() for name in route.issuers}
    return [Problem(("issuers", name), (
        f"issuer {name} is defined but no route accepts its tokens (no route lists it under issuers:); add it to "
        f"the routes that should accept it, or remove it"))
        for name in policy.issuers if name not in used]


def _revocation_and_proof_problems(loc: tuple, route: "RouteSpec", policy: "AuthPolicy", *,
                                   websocket: bool) -> list["Problem"]:
    """A route's freshness and proof need issuers configured for them: introspection, DPoP or certificate binding."""
    problems: list[Problem] = []
    if route.dpop_nonce != "none" and route.proof != "dpop":
        problems.append(Problem(loc + ("dpop_nonce",), (
            f"dpop_nonce: {route.dpop_nonce} asks for server nonces in DPoP proofs, and this route has proof: "
            f"{route.proof}; set proof: dpop as well, or remove dpop_nonce")))
    if route.proof != "none" and websocket:
        problems.append(Problem(loc + ("proof",), (
            f"proof: {route.proof} is not available on a WebSocket API: API Gateway WebSocket APIs have no mutual "
            f"TLS, and a browser cannot send a DPoP header on the upgrade request. Use proof: none on $connect")))
        return problems
    wanted = []
    if route.freshness == "introspect":
        wanted.append(("freshness", lambda issuer: issuer.introspection is not None,
                       "has no introspection settings; add introspection: {client_id: ..., client_secret_env: ...} "
                       "to the issuer (the endpoint defaults to its discovery document's introspection_endpoint)"))
    if route.proof == "dpop":
        wanted.append(("proof", lambda issuer: issuer.binding.dpop,
                       "does not issue DPoP-bound tokens; set binding: {dpop: true} on the issuer once it does "
                       "(its tokens then carry cnf.jkt)"))
    if route.proof == "mtls":
        wanted.append(("proof", lambda issuer: issuer.binding.mtls,
                       "does not issue certificate-bound tokens; set binding: {mtls: true} on the issuer once it "
                       "does (its tokens then carry cnf.x5t#S256)"))
    for field, has_it, why in wanted:
        for issuer_name in route.issuers:
            issuer = policy.issuers.get(issuer_name)
            if issuer is not None and not has_it(issuer):
                problems.append(Problem(loc + (field,), (
                    f"{field}: {getattr(route, field)} needs every issuer of the route to support it, and issuer "
                    f"{issuer_name} {why}")))
    return problems


def _cookie_route_problems(loc: tuple, route: "RouteSpec", policy: "AuthPolicy", *,
                           websocket: bool) -> list["Problem"]:
    """A cookie route is reached by a browser signed in through a web client of one of its issuers."""
    if route.token_source != "cookie":
        return []
    if websocket:
        return [Problem(loc + ("token_source",), (
            "token_source: cookie is for HTTP routes a signed-in browser calls; a WebSocket $connect takes its token "
            "from a header or the query string"))]
    if route.proof != "none":
        return [Problem(loc + ("token_source",), (
            f"token_source: cookie cannot be combined with proof: {route.proof}: the token handler holds the session, "
            "so no client key or certificate of the browser's is bound to it"))]
    web_issuers = {client.issuer for client in policy.clients.values() if client.kind == "web"}
    if not web_issuers.intersection(route.issuers):
        return [Problem(loc + ("token_source",), (
            "token_source: cookie needs a web client (clients: ... kind: web) of one of the route's issuers "
            f"({', '.join(route.issuers) or 'none'}): its token handler is what sets the session cookie"))]
    return []


def _websocket_route_problems(api_name: str, api: "ApiSpec") -> list["Problem"]:
    """A WebSocket API has a $connect route, and its other routes (message routes) carry no requirements."""
    problems: list[Problem] = []
    if WEBSOCKET_CONNECT not in api.routes:
        problems.append(Problem(("apis", api_name, "routes"), (
            f"a WebSocket API needs a \"{WEBSOCKET_CONNECT}\" route: it is where the connection is authorized "
            f"({WEBSOCKET_AUTHORIZES_ON_CONNECT}); add e.g. \"$connect\": {{issuers: [name], scopes: [...]}}")))
    for key, route in api.routes.items():
        if key == WEBSOCKET_CONNECT:
            continue
        for field in _fields_given(route):
            problems.append(Problem(("apis", api_name, "routes", key, field), (
                f"route {key!r} of a WebSocket API cannot set {field}: {WEBSOCKET_AUTHORIZES_ON_CONNECT}. Put the "
                f"requirement on the \"$connect\" route (a message route takes only description)")))
    return problems


def _fields_given(route: "RouteSpec") -> list[str]:
    """The fields the policy file set on a route, apart from its description, in declaration order."""
    given = route.model_fields_set - {"description"}
    return [name for name in type(route).model_fields if name in given]
