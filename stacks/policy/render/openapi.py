"""The GCP API Gateway renderer: one API of the policy -> an OpenAPI 2.0 document with x-google-* JWT security."""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from stacks.policy.enforcement import refuse_per_request_checks
from stacks.policy.model import AuthPolicy, IssuerSpec, RouteSpec
from lambdas.validation.fetcher import is_loopback_host
from stacks.policy.route_keys import PathParameter, RouteKey, parse_route_key

# What ANY expands to: OpenAPI 2.0 has no catch-all method.
ANY_METHODS = ("get", "post", "put", "patch", "delete", "head", "options")
GATEWAY_CHECKS_NOTE = (
    "GCP API Gateway verifies each token's signature, issuer (x-google-issuer), audience (x-google-audiences) and "
    "expiry, and nothing else. Scopes, roles, groups and claim rules are not enforced here: every operation lists "
    "them under x-authgate-requirements, and the backend guard must enforce them from the "
    "X-Apigateway-Api-Userinfo header.")
_RESPONSES = {
    "200": {"description": "Success (the backend's response)"},
    "401": {"description": "Missing, malformed, expired or untrusted token (rejected by the gateway)"},
    "403": {"description": "Valid token without the scopes, roles or claims the route requires (backend guard)"},
}
_PUBLIC_RESPONSES = {"200": {"description": "Success (the backend's response)"}}
GATEWAY = "GCP API Gateway"
# Why nothing behind the gateway can make up for it, and where such routes can be served.
PER_REQUEST_CHECKS_INSTEAD = (
    "The gateway passes the backend only the verified claims (X-Apigateway-Api-Userinfo, which is all "
    "lambdas.guards.gcp.GcpGatewayGuard reads), it accepts only the Bearer scheme and terminates TLS without client "
    "certificates, so no proof, certificate or revocation check can happen behind it either. Serve this API where "
    "every request is checked (the AWS stacks' Lambda authorizer, or an in-cluster gateway with authgate's "
    "forward-auth service: authgate render k8s), or set the setting to none on these routes if the API does not "
    "need it")


def _openapi_path(key: RouteKey) -> str:
    if not key.segments:
        return "/"
    parts = []
    for segment in key.segments:
        if isinstance(segment, PathParameter):
            # API Gateway's OpenAPI 2.0 spelling of a multi-segment wildcard.
            parts.append(f"{{{segment.name}=**}}" if segment.greedy else f"{{{segment.name}}}")
        else:
            parts.append(segment)
    return "/" + "/".join(parts)


def _operation_id(api_name: str, method: str, key: RouteKey) -> str:
    words = [api_name, method]
    for segment in key.segments:
        words.append(f"by_{segment.name}" if isinstance(segment, PathParameter) else segment)
    return re.sub(r"[^A-Za-z0-9]+", "_", "_".join(words)).strip("_")


def _security_definition(name: str, issuer: IssuerSpec) -> dict[str, Any]:
    jwks_uri = issuer.effective_jwks_uri
    if jwks_uri is None:
        source = "its keys are bundled (jwks_file)" if issuer.jwks is not None else "no jwks_uri is set"
        raise ValueError(f"issuer {name}: GCP API Gateway fetches signing keys from a URL and {source}; set jwks_uri "
                         f"on the issuer (the jwks_uri of {issuer.discovery_url})")
    if issuer.profile == "cognito" and issuer.token_use == "access":
        raise ValueError(f"issuer {name}: Cognito access tokens carry no aud claim, so GCP API Gateway (which "
                         f"requires aud) would refuse every one; set token_use: id to accept Cognito ID tokens, or "
                         f"put this API behind a gateway that matches client_id")
    split = [audience for audience in issuer.audiences if "," in audience]
    if split:
        # x-google-audiences is one comma-separated string: the gateway would read this audience as several.
        raise ValueError(f"issuer {name}: audience {split[0]!r} contains a comma, which GCP API Gateway's "
                         f"x-google-audiences reads as a separator (it would accept each part as an audience); list "
                         f"each audience separately")
    return {
        "type": "oauth2",
        "flow": "implicit",
        "authorizationUrl": "",
        "x-google-issuer": issuer.issuer,
        "x-google-jwks_uri": jwks_uri,
        "x-google-audiences": ",".join(issuer.audiences),
    }


def _requirements(route: RouteSpec, issuers: dict[str, IssuerSpec]) -> dict[str, Any]:
    """What the backend guard must enforce beyond what the gateway checked."""
    out: dict[str, Any] = {"issuers": list(route.issuers)}
    for field, values in route.requirement_fields.items():
        if values:
            out[field] = values
    token_uses = {route.token_use if route.token_use not in (None, "any") else issuers[name].token_use
                  for name in route.issuers}
    if token_uses != {"any"}:
        out["token_use"] = sorted(token_uses)
    return out


def _check_backend_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and is_loopback_host(parts.hostname or ""):
        return
    raise ValueError(f"backend_url {url!r} must be an https:// URL (the Cloud Run service URL); http:// only for a "
                     f"loopback backend in the local sandbox")


def render_openapi(policy: AuthPolicy, api_name: str, *, backend_url: str, jwt_audience: str | None = None,
                   title: str | None = None, version: str = "1.0.0") -> dict[str, Any]:
    """OpenAPI 2.0 for GCP API Gateway: one security definition per issuer the API uses, per-operation security,
    and an x-google-backend that calls a private Cloud Run service with an identity token for `jwt_audience`
    (default: the backend URL, which is what Cloud Run expects)."""
    api = policy.api(api_name)
    if api.is_websocket:
        raise ValueError(f"API {api_name!r} is a WebSocket API (protocol: websocket); GCP API Gateway serves HTTP "
                         f"APIs described by OpenAPI only. Deploy it with the AWS WebSocket API stack "
                         f"(stacks/aws/websocket_api), or pick an HTTP API of the policy")
    refuse_per_request_checks(api_name, api, gateway=GATEWAY, instead=PER_REQUEST_CHECKS_INSTEAD)
    _check_backend_url(backend_url)
    used: dict[str, None] = {}
    for route in api.routes.values():
        for name in route.issuers:
            used.setdefault(name, None)
    definitions = {name: _security_definition(name, policy.issuers[name]) for name in used}
    description = api.description.strip() + "\n\n" if api.description else ""
    document: dict[str, Any] = {
        "swagger": "2.0",
        "info": {"title": title or api.title or f"{api_name} API", "version": version,
                 "description": description + GATEWAY_CHECKS_NOTE},
        "schemes": ["https"],
        "produces": ["application/json"],
        "x-google-backend": {"address": backend_url, "jwt_audience": jwt_audience or backend_url,
                             "path_translation": "APPEND_PATH_TO_ADDRESS"},
        "securityDefinitions": definitions,
        "paths": {},
    }
    keys = {key: parse_route_key(key) for key in api.routes}
    explicit = {(k.method, k.shape) for k in keys.values() if k.method != "ANY"}
    operation_ids: set[str] = set()
    # Routes of one shape ("GET /files/{name}", "ANY /files/{id}") share one OpenAPI path: two templates differing
    # only in parameter names are ambiguous. The first route's parameter names win.
    first_of_shape: dict[tuple[str, ...], RouteKey] = {}
    for key_text, route in api.routes.items():
        own_key = keys[key_text]
        key = first_of_shape.setdefault(own_key.shape, own_key)
        methods = ANY_METHODS if own_key.method == "ANY" else (own_key.method.lower(),)
        path_item = document["paths"].setdefault(_openapi_path(key), {})
        for method in methods:
            # A specific method beats ANY on the same path, as at every other gateway.
            if own_key.method == "ANY" and (method.upper(), key.shape) in explicit:
                continue
            operation_id = _operation_id(api_name, method, key)
            while operation_id in operation_ids:
                operation_id += "_"
            operation_ids.add(operation_id)
            operation: dict[str, Any] = {"operationId": operation_id, "summary": route.description or key_text}
            if key.parameters:
                operation["parameters"] = [{"name": p.name, "in": "path", "required": True, "type": "string"}
                                           for p in key.parameters]
            if route.public:
                operation["security"] = []
                operation["responses"] = dict(_PUBLIC_RESPONSES)
            else:
                # Alternatives: a token from any one of the route's issuers.
                operation["security"] = [{name: []} for name in route.issuers]
                operation["responses"] = dict(_RESPONSES)
                operation["x-authgate-requirements"] = _requirements(route, policy.issuers)
            path_item[method] = operation
    return document
