"""API Gateway HTTP API, emulated from the synthesized CloudFormation template.

Read from the template: AWS::ApiGatewayV2::Route (route key, AuthorizationType, AuthorizerId, AuthorizationScopes),
AWS::ApiGatewayV2::Authorizer (JWT: Issuer and Audience; REQUEST: identity sources, result cache TTL, simple
responses, and the Lambda function it invokes, whose environment names the route table's API).
JWT routes are decided by the validation module configured from the authorizer's issuer and audience, with the
route's scopes as any-of (what the native authorizer does); Lambda routes invoke lambdas/authorizers/http_api.py
in-process with a payload 2.0 event and honour its answer and the result cache.
Integrations (AWS::ApiGatewayV2::Integration behind each route's Target): a Lambda proxy integration whose function
runs one of authgate's own endpoints (AUTHGATE_ENDPOINT_HANDLERS, e.g. the back-channel logout endpoint) is invoked
in-process from its bundled code with a payload 2.0 event, and its answer is the response; every other integration
(the echo backend, a URL) is stood in for by the sandbox's backend.
"""
from __future__ import annotations

import base64
import datetime
import threading
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import parse_qsl, urlsplit

from lambdas.validation import IssuerConfig, TokenRejected, Verifier
from lambdas.validation.native_gateway import NATIVE_JWT_ALGORITHMS
from sandbox.gateways.cfn import Template, TemplateError
from sandbox.gateways.iam_policy import policy_allows
from sandbox.gateways.lambda_runtime import InProcessLambda, LambdaInvocationError
from sandbox.gateways.routing import GATEWAYS, HTTP_API
from sandbox.gateways.server import Decision, client_cert_context

NAME = HTTP_API
ACCOUNT, REGION, STAGE = "123456789012", "us-east-1", "$default"
# Handlers of authgate's own endpoints the emulator runs in-process behind their routes (not the API's backend).
AUTHGATE_ENDPOINT_HANDLERS = frozenset({"lambdas.backchannel_logout.http_api.handler"})


@dataclass(frozen=True)
class HttpRoute:
    route_key: str
    method: str
    path: str                     # empty for $default
    authorization: str            # NONE | JWT | CUSTOM
    authorizer_id: str | None
    scopes: tuple[str, ...]
    endpoint: InProcessLambda | None = None   # an authgate endpoint answering this route itself


@dataclass(frozen=True)
class LambdaAuthorizer:
    logical_id: str
    identity_sources: tuple[str, ...]
    cache_ttl_seconds: int
    simple_responses: bool
    function: InProcessLambda


class HttpApiEmulator:
    """One AWS::ApiGatewayV2::Api of `template`."""

    name = NAME

    def __init__(self, template: Template, *, code_root_of: Callable[[str], Path], route_table_path: str,
                 api_logical_id: str | None = None, verifier_options: Mapping[str, Any] | None = None,
                 function_environment: Mapping[str, str] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        """code_root_of(function logical id) is the directory the function's code was bundled from;
        route_table_path replaces the functions' AUTHGATE_POLICY (the bundled table pointed at the local issuer);
        function_environment is added to every function run in-process: the emulated account's resources, which the
        template names only through references (e.g. AUTHGATE_DENYLIST_TABLE and the endpoint serving it)."""
        apis = [lid for lid, props in template.of_type("AWS::ApiGatewayV2::Api") if props.get("ProtocolType") == "HTTP"]
        if api_logical_id is None:
            if len(apis) != 1:
                raise TemplateError(f"{template.source}: expected one HTTP API, found {len(apis)}; name the one to "
                                    "emulate")
            api_logical_id = apis[0]
        elif api_logical_id not in apis:
            raise TemplateError(f"{template.source}: no HTTP API {api_logical_id!r} (have {apis})")
        self.api_id = api_logical_id
        self.clock = clock
        # The mutual TLS custom domain, when the API has one: events then name it and carry the client certificate.
        self.mtls_domain = template.mtls_domain(api_logical_id)
        belongs = lambda props, where: template.ref_target(props.get("ApiId"), where=where) == api_logical_id  # noqa
        issuers: list[IssuerConfig] = []
        self.lambda_authorizers: dict[str, LambdaAuthorizer] = {}
        for lid, props in template.of_type("AWS::ApiGatewayV2::Authorizer"):
            if not belongs(props, f"{lid}.ApiId"):
                continue
            kind = props.get("AuthorizerType")
            if kind == "JWT":
                jwt = props.get("JwtConfiguration") or {}
                issuer = template.literal(jwt.get("Issuer"), where=f"{lid}.JwtConfiguration.Issuer")
                audiences = template.literal(jwt.get("Audience") or [], where=f"{lid}.JwtConfiguration.Audience")
                host = urlsplit(issuer).hostname or ""
                issuers.append(IssuerConfig(
                    issuer=issuer, audiences=audiences, algorithms=sorted(NATIVE_JWT_ALGORITHMS), name=lid,
                    profile="cognito" if host.startswith("cognito-idp.") else "generic", token_use=None,
                    allow_insecure_http=host in ("127.0.0.1", "localhost", "::1")))
            elif kind == "REQUEST":
                function_id = template.function_behind(props.get("AuthorizerUri"), where=f"{lid}.AuthorizerUri")
                env = {**template.lambda_environment(function_id), "AUTHGATE_POLICY": route_table_path,
                       **dict(function_environment or {})}
                if props.get("AuthorizerPayloadFormatVersion") != "2.0":
                    raise TemplateError(f"{template.source}: authorizer {lid} uses payload format "
                                        f"{props.get('AuthorizerPayloadFormatVersion')!r}; the sandbox emulates 2.0")
                self.lambda_authorizers[lid] = LambdaAuthorizer(
                    lid, tuple(template.literal(props.get("IdentitySource") or [], where=f"{lid}.IdentitySource")),
                    int(props.get("AuthorizerResultTtlInSeconds") or 0), bool(props.get("EnableSimpleResponses")),
                    InProcessLambda(template.function_handler(function_id), code_root=code_root_of(function_id),
                                    environment=env, function_name=function_id))
            else:
                raise TemplateError(f"{template.source}: authorizer {lid} has type {kind!r}; the sandbox emulates "
                                    "JWT and REQUEST authorizers")
        self.verifier = Verifier(issuers, **dict(verifier_options or {})) if issuers else None
        self.routes: list[HttpRoute] = []
        for lid, props in template.of_type("AWS::ApiGatewayV2::Route"):
            if not belongs(props, f"{lid}.ApiId"):
                continue
            key = template.literal(props.get("RouteKey"), where=f"{lid}.RouteKey")
            method, _, path = key.partition(" ")
            authorizer = props.get("AuthorizerId")
            self.routes.append(HttpRoute(
                key, method, path, props.get("AuthorizationType", "NONE"),
                template.ref_target(authorizer, where=f"{lid}.AuthorizerId") if authorizer else None,
                tuple(template.literal(props.get("AuthorizationScopes") or [], where=f"{lid}.AuthorizationScopes")),
                endpoint=self._endpoint_behind(template, lid, props, code_root_of, route_table_path,
                                               function_environment)))
        routing = GATEWAYS[HTTP_API]
        self.router = routing.router(((r.method, r.path, r) for r in self.routes if r.path),
                                     catch_all=next((r for r in self.routes if r.route_key == routing.catch_all), None))
        self._cache: dict[tuple, tuple[float, Any, str]] = {}
        self._cache_lock = threading.Lock()

    def _endpoint_behind(self, template: Template, route_id: str, props: Mapping[str, Any],
                         code_root_of: Callable[[str], Path], route_table_path: str,
                         function_environment: Mapping[str, str] | None) -> InProcessLambda | None:
        """The authgate endpoint a route's Lambda proxy integration runs, loaded from its bundled code; None for
        any other integration (the backend stands in for it)."""
        target = props.get("Target")
        if target is None:
            return None
        integration_id = template.ref_target(_integration_ref(target), where=f"{route_id}.Target")
        integration = (template.resources.get(integration_id) or {}).get("Properties") or {}
        if integration.get("IntegrationType") != "AWS_PROXY":
            return None
        function_id = template.function_behind(integration.get("IntegrationUri"),
                                               where=f"{integration_id}.IntegrationUri")
        handler = template.function_handler(function_id)
        if handler not in AUTHGATE_ENDPOINT_HANDLERS:
            return None
        if integration.get("PayloadFormatVersion") != "2.0":
            raise TemplateError(f"{template.source}: integration {integration_id} uses payload format "
                                f"{integration.get('PayloadFormatVersion')!r}; the sandbox emulates 2.0")
        env = {**template.lambda_environment(function_id), "AUTHGATE_POLICY": route_table_path,
               **dict(function_environment or {})}
        return InProcessLambda(handler, code_root=code_root_of(function_id), environment=env,
                               function_name=function_id)

    def match(self, method: str, path: str) -> tuple[HttpRoute, dict[str, str]] | None:
        """The route and path parameters, selected as the runtime selects (sandbox/gateways/routing.py)."""
        found = self.router.select(method, path)
        return None if found is None else (found.value, dict(found.parameters))

    def decide(self, method: str, path: str, headers: Mapping[str, str], *,
               client_ip: str = "127.0.0.1", client_certificate: str | None = None) -> Decision:
        """`client_certificate`: the PEM the client presented over mutual TLS (GatewayServer with tls=), which API
        Gateway passes to the authorizer only on the API's mutual TLS domain."""
        raw_path, _, query = path.partition("?")
        matched = self.match(method, raw_path)
        if matched is None:
            return Decision.refuse(404, "Not Found", code="no_route", checked="route lookup")
        route, params = matched
        if route.authorization == "NONE":
            decision = Decision(allowed=True, checked=f"{route.route_key}: no authorizer")
        elif route.authorization == "JWT":
            decision = self._jwt(route, headers)
        elif route.authorization == "CUSTOM":
            decision = self._lambda(route, raw_path, query, params, method, headers, client_certificate)
        else:
            return Decision.refuse(500, f"route {route.route_key} uses {route.authorization}, not emulated",
                                   code="emulator_error")
        if decision.allowed and route.endpoint is not None:
            endpoint = route.endpoint
            return replace(decision, checked=f"{decision.checked}; answered by {endpoint.handler_name}",
                           respond=lambda body: _invoke_endpoint(endpoint, route, raw_path, query, params, method,
                                                                 headers, body, self.api_id, self.clock()))
        return decision

    def _jwt(self, route: HttpRoute, headers: Mapping[str, str]) -> Decision:
        scopes = f", scope any-of {list(route.scopes)}" if route.scopes else ""
        checked = f"{route.route_key}: JWT authorizer (signature, iss, aud/client_id, exp, nbf{scopes})"
        value = headers.get("authorization", "").strip()
        if not value:
            return Decision.refuse(401, "Unauthorized", code="malformed", checked=checked)
        # The native authorizer strips a "Bearer " prefix and tolerates its absence.
        token = value[7:].strip() if value[:7].lower() == "bearer " else value
        try:
            self.verifier.verify(token, scopes=route.scopes, issuers=[route.authorizer_id])
        except TokenRejected as err:
            return Decision.refuse(err.status, "Forbidden" if err.status == 403 else "Unauthorized",
                                   code=err.code, checked=checked)
        return Decision(allowed=True, checked=checked)

    def _identity(self, source: str, headers: Mapping[str, str], route: HttpRoute, query: str) -> str | None:
        if source.startswith("$request.header."):
            return headers.get(source[len("$request.header."):].lower()) or None
        if source.startswith("$request.querystring."):
            return dict(parse_qsl(query)).get(source[len("$request.querystring."):]) or None
        if source == "$context.routeKey":
            return route.route_key
        raise TemplateError(f"identity source {source!r} is not emulated")

    def _lambda(self, route: HttpRoute, raw_path: str, query: str, params: dict[str, str], method: str,
                headers: Mapping[str, str], client_certificate: str | None = None) -> Decision:
        authorizer = self.lambda_authorizers[route.authorizer_id]
        checked = (f"{route.route_key}: Lambda authorizer ({authorizer.function.handler_name}, payload 2.0, identity "
                   f"{', '.join(authorizer.identity_sources)})")
        identity = [self._identity(s, headers, route, query) for s in authorizer.identity_sources]
        if any(v is None for v in identity):
            # API Gateway refuses without invoking the function when an identity source is missing.
            return Decision.refuse(401, "Unauthorized", code="malformed", checked=checked)
        cache_key = (authorizer.logical_id, *identity)
        now = self.clock()
        event = _payload_v2(route, raw_path, query, params, method, headers, identity, self.api_id, now)
        if self.mtls_domain is not None:
            event["requestContext"]["domainName"] = self.mtls_domain
            if client_certificate is not None:
                event["requestContext"]["authentication"] = {"clientCert": client_cert_context(client_certificate)}
        cached = None
        if authorizer.cache_ttl_seconds:
            with self._cache_lock:
                cached = self._cache.get(cache_key)
            if cached is not None and cached[0] <= now:
                cached = None
        if cached is not None:
            # A cached answer is reused as is: a simple response for any route with these identity values, an IAM
            # policy evaluated against this request's route ARN.
            answer, code = cached[1], "cached_deny"
            checked += f" [cached answer from {cached[2]}, {int(cached[0] - now)}s left: authorizer not invoked]"
        else:
            try:
                answer = authorizer.function.invoke(event)
            except LambdaInvocationError as err:
                code = authorizer.function.last_audit().get("code") or "lambda_error"
                if str(err.cause) == "Unauthorized":
                    return Decision.refuse(401, "Unauthorized", code=code, checked=checked + " -> Unauthorized")
                return Decision.refuse(500, "Internal Server Error", code=code,
                                       checked=checked + f" -> failed: {err}")
            audit = authorizer.function.last_audit()
            code = audit.get("code") or "lambda_deny"
            if audit.get("code"):
                checked += f" -> {audit.get('decision')} ({audit['code']})"
            if authorizer.cache_ttl_seconds:
                with self._cache_lock:
                    self._cache[cache_key] = (now + authorizer.cache_ttl_seconds, answer, route.route_key)
        if not _is_authorized(answer, authorizer.simple_responses, event["routeArn"]):
            return Decision.refuse(403, "Forbidden", code=code, checked=checked)
        return Decision(allowed=True, checked=checked)


def _is_authorized(answer: Any, simple: bool, route_arn: str) -> bool:
    if not isinstance(answer, Mapping):
        return False
    if simple and "isAuthorized" in answer:
        return answer["isAuthorized"] is True
    return policy_allows(answer.get("policyDocument"), route_arn)


def _payload_v2(route: HttpRoute, raw_path: str, query: str, params: dict[str, str], method: str,
                headers: Mapping[str, str], identity: list, api_id: str, now: float) -> dict:
    """The HTTP API Lambda authorizer event, payload format 2.0."""
    api = api_id.lower()[:10]
    path_for_arn = raw_path if raw_path.startswith("/") else "/" + raw_path
    return {
        "version": "2.0", "type": "REQUEST",
        "routeArn": f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api}/{STAGE}/{method}{path_for_arn}",
        "identitySource": identity, "routeKey": route.route_key, "rawPath": raw_path, "rawQueryString": query,
        "cookies": [c.strip() for c in headers.get("cookie", "").split(";") if c.strip()],
        "headers": dict(headers), "queryStringParameters": dict(parse_qsl(query)) or None,
        "requestContext": {
            "accountId": ACCOUNT, "apiId": api, "domainName": f"{api}.execute-api.{REGION}.amazonaws.com",
            "domainPrefix": api,
            "http": {"method": method, "path": raw_path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                     "userAgent": headers.get("user-agent", "")},
            "requestId": uuid.uuid4().hex, "routeKey": route.route_key, "stage": STAGE,
            "time": datetime.datetime.fromtimestamp(now, datetime.timezone.utc).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now * 1000)},
        "pathParameters": params or None, "stageVariables": None,
    }


def _integration_ref(target: Any) -> Any:
    """The integration a route's Target ("integrations/<id>", which CDK writes as an Fn::Join) refers to."""
    if isinstance(target, Mapping) and "Fn::Join" in target:
        parts = [part for part in target["Fn::Join"][1] if isinstance(part, Mapping)]
        if len(parts) == 1:
            return parts[0]
    return target


def _invoke_endpoint(endpoint: InProcessLambda, route: HttpRoute, raw_path: str, query: str, params: dict[str, str],
                     method: str, headers: Mapping[str, str], body: bytes | None, api_id: str,
                     now: float) -> tuple[int, dict[str, str], bytes]:
    """A Lambda proxy integration, payload 2.0: the request in (body base64-encoded), the function's answer out."""
    event = _payload_v2(route, raw_path, query, params, method, headers, [], api_id, now)
    for authorizer_only in ("type", "identitySource", "routeArn"):
        event.pop(authorizer_only)
    event["body"] = base64.b64encode(body or b"").decode("ascii")
    event["isBase64Encoded"] = True
    try:
        answer = endpoint.invoke(event)
    except LambdaInvocationError:
        return 500, {"content-type": "application/json"}, b'{"message":"Internal Server Error"}'
    if not isinstance(answer, Mapping) or not isinstance(answer.get("statusCode"), int):
        return 502, {"content-type": "application/json"}, b'{"message":"Internal Server Error"}'
    raw = answer.get("body") or ""
    payload = base64.b64decode(raw) if answer.get("isBase64Encoded") else str(raw).encode("utf-8")
    return answer["statusCode"], {str(k): str(v) for k, v in (answer.get("headers") or {}).items()}, payload
