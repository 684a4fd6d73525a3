"""The Azure API Management renderer: one API of the policy -> APIM policy XML (validate-jwt, rate limit, identity headers).

Templates live in policies/apim/; every value from the policy is XML-escaped before it is substituted, so a hostile
scope or claim value can never change the document's structure. An API or route trusting several issuers gets one
validate-jwt per issuer inside a <choose> on the token's iss, so each issuer's audiences (and claim names) bind to
that issuer alone; a token from no listed issuer is refused by the <otherwise>. Output is deterministic (sorted, no timestamps), so
re-rendering an unchanged policy never shows a diff in `pulumi preview`.
"""
from __future__ import annotations

import base64
import functools
import json
import textwrap
from http import HTTPStatus
from pathlib import Path
from string import Template
from xml.sax.saxutils import escape

from stacks.policy.enforcement import refuse_per_request_checks
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
# Answered by the <otherwise> of a per-issuer <choose>: no token, an unreadable one, or an iss the API does not trust.
UNTRUSTED_ISSUER_MESSAGE = ("Unauthorized: send a valid bearer token (Authorization: Bearer) from an issuer this API "
                            "trusts; this token's issuer is not one of them")
# The API level already accepted the token, so its issuer is trusted by the API but not named on this operation.
ISSUER_NOT_FOR_ROUTE_MESSAGE = "Forbidden: this operation does not accept tokens from the issuer of this token"
INDENT = "    "
GATEWAY = "Azure API Management"
# After validate-jwt: the verified token (the output variable) carries a confirmation claim. validate-jwt cannot
# check a DPoP proof (it requires the Bearer scheme) nor the client certificate a cnf x5t#S256 names, so a bound
# token here arrived without its proof, as every authgate entry point refuses it (possession.confirmation). Any cnf
# member counts: APIM's Claims give the claim's JSON, not its members, and no binding can be checked here.
BOUND_TOKEN_CONDITION = f'@(((Jwt)context.Variables["{TOKEN_VARIABLE}"]).Claims.ContainsKey("cnf"))'
BOUND_TOKEN_MESSAGE = ("Unauthorized: this token is bound to a key or client certificate (cnf), and this gateway "
                       "cannot check its proof; call with an unbound token, or where proofs are checked")
BOUND_TOKEN_CHALLENGE = ('Bearer error="invalid_token", error_description="the token is bound (cnf); its proof '
                         'cannot be checked here"')
# Why nothing behind APIM as authgate deploys it can make up for it, and where such routes can be served.
PER_REQUEST_CHECKS_INSTEAD = (
    "validate-jwt checks a token's signature and claims only and requires the Bearer scheme (a DPoP request never "
    "passes it), the backend is not given the client certificate, and App Service EasyAuth "
    "(lambdas.guards.easyauth.EasyAuthGuard) passes on only the claims, so no proof, certificate or revocation "
    "check can happen there either. Serve this API where every request is checked (on AKS through the in-cluster "
    "front door, authgate:aks.inCluster with authgate's forward-auth service, or the AWS stacks' Lambda "
    "authorizer), or set the setting to none on these routes if the API does not need it")


@functools.cache
def _template(name: str) -> Template:
    return Template((TEMPLATE_DIR / name).read_text(encoding="utf-8"))


def _fill(template_name: str, **values: str) -> str:
    return _template(template_name).substitute(values)


_ATTRIBUTE_ENTITIES = {'"': "&quot;", "'": "&apos;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}


# APIM evaluates an attribute or element value that starts with one of these as a C# policy expression. XML escaping
# cannot help (the gateway sees the unescaped text) and APIM has no escape for a literal one.
POLICY_EXPRESSION_PREFIXES = ("@(", "@{")


def _literal(value: object) -> str:
    """`value` as text APIM will read literally; ValueError for a policy value it would run as an expression."""
    text = str(value)
    if text.lstrip().startswith(POLICY_EXPRESSION_PREFIXES):
        raise ValueError(f"the policy value {text[:80]!r} starts with '@(' or '@{{', which Azure API Management "
                         "evaluates as a policy expression (code run by the gateway), not as a value; APIM has no way "
                         "to write it literally, so change the value (a claim value, audience, scope, role or group)")
    return text


def _attr_value(value: object) -> str:
    """An attribute value for a double-quoted attribute, every XML special character escaped."""
    return escape(_literal(value), _ATTRIBUTE_ENTITIES)


def _expression_attr_value(expression: str) -> str:
    """One of the renderer's own policy expressions (never a policy value), escaped for an attribute."""
    return escape(expression, _ATTRIBUTE_ENTITIES)


def _attr(value: object) -> str:
    return f'"{_attr_value(value)}"'


def _text(value: object) -> str:
    return escape(_literal(value))


def _indent(text: str, levels: int) -> str:
    return textwrap.indent(text.strip("\n"), INDENT * levels)


def _scope_claim(issuer: IssuerSpec) -> str:
    return "scp" if issuer.profile == "entra" else "scope"


def _groups_claim(issuer: IssuerSpec) -> str:
    return "cognito:groups" if issuer.profile == "cognito" else "groups"


def _claim(name: str, match: str, values: list[str], separator: str | None = None) -> str:
    values_xml = "\n".join(f"{INDENT}<value>{_text(v)}</value>" for v in sorted(values))
    sep = f" separator={_attr(separator)}" if separator else ""
    return _fill("required-claim.xml", name=_attr_value(name), match=match, separator=sep, values=values_xml)


def _key_sources(name: str, issuer: IssuerSpec) -> str:
    if issuer.local_development:
        raise ValueError(f"issuer {name} is a loopback development issuer; Azure API Management cannot reach it")
    if issuer.jwks is None:
        return f"<openid-config url={_attr(issuer.discovery_url)} />"
    keys = []
    for index, jwk in enumerate(issuer.jwks["keys"]):
        if jwk.get("kty") != "RSA":
            raise ValueError(f"issuer {name}: bundled key {index} is {jwk.get('kty')}; APIM takes bundled keys "
                             f"only as RSA modulus/exponent. Publish a discovery document instead (drop jwks_file)")
        _check_b64url(jwk.get("n"), name, index)
        _check_b64url(jwk.get("e"), name, index)
        keys.append(f"{INDENT}<key n={_attr(jwk['n'])} e={_attr(jwk['e'])} />")
    return "<issuer-signing-keys>\n" + "\n".join(keys) + "\n</issuer-signing-keys>"


def _check_b64url(value: object, issuer: str, index: int) -> None:
    try:
        if not isinstance(value, str) or not value:
            raise ValueError
        base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (ValueError, TypeError):
        raise ValueError(f"issuer {issuer}: bundled RSA key {index} has no valid base64url n/e") from None


def _validate_jwt(name: str, issuer: IssuerSpec, route: RouteSpec | None, *, status: int, message: str) -> str:
    """One validate-jwt bound to ONE issuer: its keys, its iss, its own audiences (Cognito: client_id) and the
    route's requirements in the claims where this issuer puts them."""
    claims: list[str] = []
    audiences_xml = ""
    if issuer.profile == "cognito":
        claims.append(_claim("client_id", "any", list(issuer.audiences)))
        if issuer.token_use in ("access", "id"):
            claims.append(_claim("token_use", "any", [issuer.token_use]))
    else:
        audiences = sorted(set(issuer.audiences))
        audiences_xml = "<audiences>\n" + "\n".join(f"{INDENT}<audience>{_text(a)}</audience>" for a in audiences) \
                        + "\n</audiences>"
    if route is not None:
        scope_claim = _scope_claim(issuer)
        if route.scopes:
            claims.append(_claim(scope_claim, "any", list(route.scopes), " "))
        if route.scopes_all:
            claims.append(_claim(scope_claim, "all", list(route.scopes_all), " "))
        if route.roles:
            claims.append(_claim("roles", "any", list(route.roles)))
        if route.roles_all:
            claims.append(_claim("roles", "all", list(route.roles_all)))
        groups_claim = _groups_claim(issuer)
        if route.groups:
            claims.append(_claim(groups_claim, "any", list(route.groups)))
        if route.groups_all:
            claims.append(_claim(groups_claim, "all", list(route.groups_all)))
        for claim_name, allowed in sorted(route.claims.items()):
            claims.append(_claim(claim_name, "any", list(allowed)))
    required = ("<required-claims>\n" + _indent("\n".join(claims), 1) + "\n</required-claims>") if claims else ""
    xml = _fill("validate-jwt.xml", status=str(status), message=_attr_value(message),
                clock_skew=str(issuer.leeway_seconds), token_variable=TOKEN_VARIABLE,
                key_sources=_indent(_key_sources(name, issuer), 1), audiences=_indent(audiences_xml, 1),
                issuers=f"{INDENT * 2}<issuer>{_text(issuer.issuer)}</issuer>", required_claims=_indent(required, 1))
    return "\n".join(line for line in xml.splitlines() if line.strip())


def _csharp_string(value: str) -> str:
    """A C# regular string literal holding value (the issuer URL compared in a policy expression)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _issuer_condition(issuer_url: str) -> str:
    # The token's iss read WITHOUT verification, only to pick the branch: that branch's validate-jwt then checks the
    # signature against this issuer's keys and iss against this issuer exactly, so a forged iss gains nothing.
    return (f'@(context.Request.Headers.GetValueOrDefault("Authorization", "").AsJwt()?.Issuer == '
            f'{_csharp_string(issuer_url)})')


def _token_check(issuers: dict[str, IssuerSpec], route: RouteSpec | None, *, status: int, message: str,
                 unmatched_message: str) -> str:
    """The token check for a set of issuers: one validate-jwt for one issuer; for several, a <choose> on the token's
    iss with one validate-jwt per issuer (APIM checks a validate-jwt's issuers and audiences as independent lists,
    so one shared element would let issuer A's token in with issuer B's audience), and an <otherwise> that refuses
    a token from no listed issuer."""
    if len(issuers) == 1:
        [(name, issuer)] = issuers.items()
        return _validate_jwt(name, issuer, route, status=status, message=message)
    # The policy model gives each issuer URL to one issuer name, so every <when> condition is distinct.
    branches = []
    for name, issuer in sorted(issuers.items(), key=lambda item: item[1].issuer):
        check = _validate_jwt(name, issuer, route, status=status, message=message)
        condition = _expression_attr_value(_issuer_condition(issuer.issuer))
        branches.append(_fill("issuer-branch.xml", condition=condition, validate_jwt=_indent(check, 1)).strip("\n"))
    body = json.dumps({"statusCode": status, "message": unmatched_message}, ensure_ascii=False)
    xml = _fill("issuer-dispatch.xml", branches=_indent("\n".join(branches), 1), status=str(status),
                reason=HTTPStatus(status).phrase, body=_text(body))
    return "\n".join(line for line in xml.splitlines() if line.strip())


def _bound_token_refusal() -> str:
    body = json.dumps({"statusCode": 401, "message": BOUND_TOKEN_MESSAGE}, ensure_ascii=False)
    return _fill("bound-token-refusal.xml", condition=_expression_attr_value(BOUND_TOKEN_CONDITION),
                 challenge=_text(BOUND_TOKEN_CHALLENGE), body=_text(body))


def _strip_headers() -> str:
    return "\n".join(f'<set-header name={_attr(h)} exists-action="delete" />' for h in SPOOFABLE_HEADERS)


def _identity_headers() -> str:
    out = []
    for header, expression in IDENTITY_HEADERS.items():
        value = f"@{{ var jwt = (Jwt)context.Variables[\"{TOKEN_VARIABLE}\"]; return {expression}; }}"
        out.append(f"<set-header name={_attr(header)} exists-action=\"override\">\n"
                   f"{INDENT}<value>{escape(value)}</value>\n</set-header>")
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
    refuse_per_request_checks(api_name, api, gateway=GATEWAY, instead=PER_REQUEST_CHECKS_INSTEAD)
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
                validate_jwt=_indent(_token_check(issuers, None, status=401, message=UNAUTHORIZED_MESSAGE,
                                                  unmatched_message=UNTRUSTED_ISSUER_MESSAGE), 2),
                bound_token_refusal=_indent(_bound_token_refusal(), 2),
                calls=str(api.rate_limit.calls), period=str(api.rate_limit.period_seconds),
                caller_key=_expression_attr_value(CALLER_KEY), identity_headers=_indent(_identity_headers(), 2))
    return xml.rstrip("\n") + "\n"


def _operation_policy(policy: AuthPolicy, api_name: str, route_key: str, route: RouteSpec,
                      api_issuers: dict[str, IssuerSpec]) -> str:
    api = policy.api(api_name)
    if route.public:
        xml = _fill("public-operation-policy.xml", strip_headers=_indent(_strip_headers(), 2),
                    calls=str(api.rate_limit.calls), period=str(api.rate_limit.period_seconds),
                    ip_key=_expression_attr_value(IP_KEY))
    elif not _needs_operation_policy(route, api_issuers):
        xml = _fill("operation-policy.xml", validate_jwt="")
        xml = "\n".join(line for line in xml.splitlines() if line.strip()) + "\n"
    else:
        route_issuers = {name: policy.issuers[name] for name in sorted(route.issuers)}
        xml = _fill("operation-policy.xml",
                    validate_jwt=_indent(_token_check(route_issuers, route, status=403, message=FORBIDDEN_MESSAGE,
                                                      unmatched_message=ISSUER_NOT_FOR_ROUTE_MESSAGE), 2))
    return xml.rstrip("\n") + "\n"


def render_apim_operations(policy: AuthPolicy, api_name: str) -> dict[str, str]:
    """Operation policies for the routes whose needs differ from the API level (public routes, narrower issuers,
    scopes/roles/groups/claims), keyed by route key in policy order. Other operations inherit the API policy."""
    api = _http_api(policy, api_name)
    issuers = _api_issuers(policy, api_name)
    return {key: _operation_policy(policy, api_name, key, route, issuers)
            for key, route in api.routes.items() if _needs_operation_policy(route, issuers)}
