"""The Azure API Management renderer: one API of the policy -> APIM policy XML (validate-jwt, rate limit, identity headers).

Templates live in policies/apim/; every value from the policy is XML-escaped before it is substituted, so a hostile
scope or claim value can never change the document's structure. Output is deterministic (sorted, no timestamps), so
re-rendering an unchanged policy never shows a diff in `pulumi preview`.
"""
from __future__ import annotations

import base64
import functools
import textwrap
from pathlib import Path
from string import Template
from xml.sax.saxutils import escape

from stacks.policy.model import ApiSpec, AuthPolicy, IssuerSpec, RouteSpec

TEMPLATE_DIR = Path(__file__).resolve().parents[3] / "policies" / "apim"
TOKEN_VARIABLE = "jwt"
# Set from the validated token; a client sending any of these (or another gateway's identity headers that backends
# may trust) has them removed first.
IDENTITY_HEADERS = {
    "X-Authgate-Subject": "jwt.Subject ?? \"\"",
    "X-Authgate-Issuer": "jwt.Issuer ?? \"\"",
    "X-Authgate-Client-Id": ("jwt.Claims.GetValueOrDefault(\"azp\", jwt.Claims.GetValueOrDefault(\"appid\", "
                             "jwt.Claims.GetValueOrDefault(\"client_id\", \"\")))"),
    "X-Authgate-Scopes": "jwt.Claims.GetValueOrDefault(\"scp\", jwt.Claims.GetValueOrDefault(\"scope\", \"\"))",
}
SPOOFABLE_HEADERS = tuple(IDENTITY_HEADERS) + (
    "X-Apigateway-Api-Userinfo", "X-Amzn-Oidc-Data", "X-Amzn-Oidc-Identity", "X-Amzn-Oidc-Accesstoken",
    "X-MS-CLIENT-PRINCIPAL", "X-MS-CLIENT-PRINCIPAL-ID", "X-MS-CLIENT-PRINCIPAL-NAME", "X-MS-CLIENT-PRINCIPAL-IDP",
    "X-MS-TOKEN-AAD-ACCESS-TOKEN", "X-MS-TOKEN-AAD-ID-TOKEN")
# The rate-limit counter: the calling application when the token names one, else the subject.
CALLER_KEY = ("@{ var jwt = (Jwt)context.Variables[\"jwt\"]; return \"caller:\" + jwt.Claims.GetValueOrDefault(\"azp\", "
              "jwt.Claims.GetValueOrDefault(\"appid\", jwt.Claims.GetValueOrDefault(\"client_id\", jwt.Subject ?? \"\"))); }")
IP_KEY = "@(\"ip:\" + context.Request.IpAddress)"
UNAUTHORIZED_MESSAGE = "Unauthorized: send a valid bearer token (Authorization: Bearer) from an issuer this API trusts"
FORBIDDEN_MESSAGE = "Forbidden: the token is valid but lacks the scopes, roles or claims this operation requires"
INDENT = "    "


@functools.cache
def _template(name: str) -> Template:
    return Template((TEMPLATE_DIR / name).read_text(encoding="utf-8"))


def _fill(template_name: str, **values: str) -> str:
    return _template(template_name).substitute(values)


_ATTRIBUTE_ENTITIES = {'"': "&quot;", "'": "&apos;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}


def _attr_value(value: object) -> str:
    """An attribute value for a double-quoted attribute, every XML special character escaped."""
    return escape(str(value), _ATTRIBUTE_ENTITIES)


def _attr(value: object) -> str:
    return f'"{_attr_value(value)}"'


def _text(value: object) -> str:
    return escape(str(value))


def _indent(text: str, levels: int) -> str:
    return textwrap.indent(text.strip("\n"), INDENT * levels)


def _scope_claim(issuer: IssuerSpec) -> str:
    return "scp" if issuer.profile == "entra" else "scope"


def _groups_claim(issuer: IssuerSpec) -> str:
    return "cognito:groups" if issuer.profile == "cognito" else "groups"


def _single_claim_name(kind: str, names: dict[str, str], route_key: str) -> str:
    distinct = sorted(set(names.values()))
    if len(distinct) > 1:
        detail = ", ".join(f"{issuer} uses {claim}" for issuer, claim in sorted(names.items()))
        raise ValueError(f"route {route_key!r}: APIM checks {kind} in one claim for every token, but the route's "
                         f"issuers put them in different claims ({detail}); split the route per issuer")
    return distinct[0]


def _claim(name: str, match: str, values: list[str], separator: str | None = None) -> str:
    values_xml = "\n".join(f"{INDENT}<value>{_text(v)}</value>" for v in sorted(values))
    sep = f" separator={_attr(separator)}" if separator else ""
    return _fill("required-claim.xml", name=_attr_value(name), match=match, separator=sep, values=values_xml)


def _key_sources(issuers: dict[str, IssuerSpec]) -> str:
    discovery = []
    keys = []
    for name, issuer in sorted(issuers.items()):
        if issuer.local_development:
            raise ValueError(f"issuer {name} is a loopback development issuer; Azure API Management cannot reach it")
        if issuer.jwks is None:
            discovery.append(f"<openid-config url={_attr(issuer.discovery_url)} />")
            continue
        for index, jwk in enumerate(issuer.jwks["keys"]):
            if jwk.get("kty") != "RSA":
                raise ValueError(f"issuer {name}: bundled key {index} is {jwk.get('kty')}; APIM takes bundled keys "
                                 f"only as RSA modulus/exponent. Publish a discovery document instead (drop jwks_file)")
            _check_b64url(jwk.get("n"), name, index)
            _check_b64url(jwk.get("e"), name, index)
            keys.append(f"{INDENT}<key n={_attr(jwk['n'])} e={_attr(jwk['e'])} />")
    parts = list(discovery)
    if keys:
        parts.append("<issuer-signing-keys>\n" + "\n".join(keys) + "\n</issuer-signing-keys>")
    return "\n".join(parts)


def _check_b64url(value: object, issuer: str, index: int) -> None:
    try:
        if not isinstance(value, str) or not value:
            raise ValueError
        base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (ValueError, TypeError):
        raise ValueError(f"issuer {issuer}: bundled RSA key {index} has no valid base64url n/e") from None


def _validate_jwt(issuers: dict[str, IssuerSpec], route: RouteSpec | None, *, route_key: str, status: int,
                  message: str) -> str:
    cognito = sorted(n for n, i in issuers.items() if i.profile == "cognito")
    if cognito and len(cognito) != len(issuers):
        raise ValueError(f"{route_key}: Cognito access tokens carry client_id instead of aud, and APIM's validate-jwt "
                         f"checks one audience rule for every token; keep Cognito issuers ({', '.join(cognito)}) on "
                         f"routes of their own")
    claims: list[str] = []
    audiences_xml = ""
    if cognito:
        client_ids = sorted({aud for issuer in issuers.values() for aud in issuer.audiences})
        claims.append(_claim("client_id", "any", client_ids))
        token_uses = {i.token_use for i in issuers.values()}
        if token_uses == {"access"}:
            claims.append(_claim("token_use", "any", ["access"]))
        elif token_uses == {"id"}:
            claims.append(_claim("token_use", "any", ["id"]))
    else:
        audiences = sorted({aud for issuer in issuers.values() for aud in issuer.audiences})
        audiences_xml = "<audiences>\n" + "\n".join(f"{INDENT}<audience>{_text(a)}</audience>" for a in audiences) \
                        + "\n</audiences>"
    if route is not None:
        if route.scopes or route.scopes_all:
            scope_claim = _single_claim_name("scopes", {n: _scope_claim(i) for n, i in issuers.items()}, route_key)
            if route.scopes:
                claims.append(_claim(scope_claim, "any", list(route.scopes), " "))
            if route.scopes_all:
                claims.append(_claim(scope_claim, "all", list(route.scopes_all), " "))
        if route.roles:
            claims.append(_claim("roles", "any", list(route.roles)))
        if route.roles_all:
            claims.append(_claim("roles", "all", list(route.roles_all)))
        if route.groups or route.groups_all:
            groups_claim = _single_claim_name("groups", {n: _groups_claim(i) for n, i in issuers.items()}, route_key)
            if route.groups:
                claims.append(_claim(groups_claim, "any", list(route.groups)))
            if route.groups_all:
                claims.append(_claim(groups_claim, "all", list(route.groups_all)))
        for name, allowed in sorted(route.claims.items()):
            claims.append(_claim(name, "any", list(allowed)))
    required = ("<required-claims>\n" + _indent("\n".join(claims), 1) + "\n</required-claims>") if claims else ""
    issuers_xml = "\n".join(f"{INDENT * 2}<issuer>{_text(i.issuer)}</issuer>"
                            for i in sorted(issuers.values(), key=lambda i: i.issuer))
    xml = _fill("validate-jwt.xml", status=str(status), message=_attr_value(message),
                clock_skew=str(max(i.leeway_seconds for i in issuers.values())), token_variable=TOKEN_VARIABLE,
                key_sources=_indent(_key_sources(issuers), 1), audiences=_indent(audiences_xml, 1),
                issuers=issuers_xml, required_claims=_indent(required, 1))
    return "\n".join(line for line in xml.splitlines() if line.strip())


def _strip_headers() -> str:
    return "\n".join(f'<set-header name={_attr(h)} exists-action="delete" />' for h in SPOOFABLE_HEADERS)


def _identity_headers() -> str:
    out = []
    for header, expression in IDENTITY_HEADERS.items():
        value = f"@{{ var jwt = (Jwt)context.Variables[\"{TOKEN_VARIABLE}\"]; return {expression}; }}"
        out.append(f"<set-header name={_attr(header)} exists-action=\"override\">\n"
                   f"{INDENT}<value>{_text(value)}</value>\n</set-header>")
    return "\n".join(out)


def _api_issuers(policy: AuthPolicy, api_name: str) -> dict[str, IssuerSpec]:
    names = sorted({name for route in policy.api(api_name).routes.values() for name in route.issuers})
    return {name: policy.issuers[name] for name in names}


def _needs_operation_policy(route: RouteSpec, api_issuers: dict[str, IssuerSpec]) -> bool:
    if route.public:
        return True
    has_rules = any(route.requirement_fields.values())
    return has_rules or set(route.issuers) != set(api_issuers)


def _http_api(policy: AuthPolicy, api_name: str) -> ApiSpec:
    api = policy.api(api_name)
    if api.is_websocket:
        raise ValueError(f"API {api_name!r} is a WebSocket API (protocol: websocket); authgate renders APIM policies "
                         f"for HTTP APIs only (its WebSocket APIs authorize on $connect with the AWS Lambda "
                         f"authorizer: stacks/aws/websocket_api). Pick an HTTP API of the policy")
    return api


def render_apim(policy: AuthPolicy, api_name: str, *, route_key: str | None = None) -> str:
    """The API-level policy (route_key None) or the operation policy for one route, as XML text."""
    api = _http_api(policy, api_name)
    issuers = _api_issuers(policy, api_name)
    if route_key is not None:
        if route_key not in api.routes:
            raise KeyError(f"API {api_name!r} has no route {route_key!r}; its routes: {', '.join(api.routes)}")
        return _operation_policy(policy, api_name, route_key, api.routes[route_key], issuers)
    if not issuers:
        raise ValueError(f"API {api_name!r} has only public routes; there is no token to validate at the API level")
    xml = _fill("api-policy.xml", strip_headers=_indent(_strip_headers(), 2),
                validate_jwt=_indent(_validate_jwt(issuers, None, route_key=f"API {api_name}", status=401,
                                                   message=UNAUTHORIZED_MESSAGE), 2),
                calls=str(api.rate_limit.calls), period=str(api.rate_limit.period_seconds),
                caller_key=_attr_value(CALLER_KEY), identity_headers=_indent(_identity_headers(), 2))
    return xml.rstrip("\n") + "\n"


def _operation_policy(policy: AuthPolicy, api_name: str, route_key: str, route: RouteSpec,
                      api_issuers: dict[str, IssuerSpec]) -> str:
    api = policy.api(api_name)
    if route.public:
        xml = _fill("public-operation-policy.xml", strip_headers=_indent(_strip_headers(), 2),
                    calls=str(api.rate_limit.calls), period=str(api.rate_limit.period_seconds),
                    ip_key=_attr_value(IP_KEY))
    elif not _needs_operation_policy(route, api_issuers):
        xml = _fill("operation-policy.xml", validate_jwt="")
        xml = "\n".join(line for line in xml.splitlines() if line.strip()) + "\n"
    else:
        route_issuers = {name: policy.issuers[name] for name in sorted(route.issuers)}
        xml = _fill("operation-policy.xml",
                    validate_jwt=_indent(_validate_jwt(route_issuers, route, route_key=route_key, status=403,
                                                       message=FORBIDDEN_MESSAGE), 2))
    return xml.rstrip("\n") + "\n"


def render_apim_operations(policy: AuthPolicy, api_name: str) -> dict[str, str]:
    """Operation policies for the routes whose needs differ from the API level (public routes, narrower issuers,
    scopes/roles/groups/claims), keyed by route key in policy order. Other operations inherit the API policy."""
    api = _http_api(policy, api_name)
    issuers = _api_issuers(policy, api_name)
    return {key: _operation_policy(policy, api_name, key, route, issuers)
            for key, route in api.routes.items() if _needs_operation_policy(route, issuers)}
