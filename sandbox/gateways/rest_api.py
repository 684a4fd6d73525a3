"""API Gateway REST API, emulated from the synthesized CloudFormation template.

Read from the template: AWS::ApiGateway::Resource (the path tree), AWS::ApiGateway::Method (HTTP method,
AuthorizationType, AuthorizerId), AWS::ApiGateway::Authorizer (TOKEN or REQUEST, IdentitySource,
IdentityValidationExpression, AuthorizerResultTtlInSeconds, the Lambda function behind AuthorizerUri and its Handler
and environment) and the stage name. CUSTOM methods invoke that handler in-process with the event API Gateway sends
(TOKEN: authorizationToken + methodArn; REQUEST: headers, query, path parameters, request context), then evaluate
the returned IAM policy against the request's method ARN (explicit Deny wins, then Allow, wildcards `*` and `?`).
The returned policy is cached per identity-source value for the authorizer's TTL and, as in API Gateway, reused
for every method of the API: a later request with the same token is decided from the cached policy against its
own method ARN, without invoking the function.
"""
from __future__ import annotations

import re
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import parse_qsl

from sandbox.gateways.cfn import Template, TemplateError
from sandbox.gateways.iam_policy import policy_effect
from sandbox.gateways.lambda_runtime import InProcessLambda, LambdaInvocationError
from sandbox.gateways.routing import GATEWAYS, REST_API
from sandbox.gateways.server import Decision, client_cert_context

NAME = REST_API
ACCOUNT, REGION = "123456789012", "us-east-1"
# API Gateway's default when a CUSTOM authorizer does not set AuthorizerResultTtlInSeconds.
DEFAULT_RESULT_TTL_SECONDS = 300
ROOT = "<root>"
# The REST API's own answers, word for word, so a client sees what it would see in AWS.
MISSING_AUTH_TOKEN = {"message": "Missing Authentication Token"}
UNAUTHORIZED = {"message": "Unauthorized"}
EXPLICIT_DENY = {"Message": "User is not authorized to access this resource with an explicit deny"}
IMPLICIT_DENY = {"Message": "User is not authorized to access this resource"}
AUTHORIZER_ERROR = {"message": None}


@dataclass(frozen=True)
class RestMethod:
    http_method: str              # GET, POST, ... or ANY
    resource_path: str            # "/orders/{id}"
    authorization: str            # NONE | CUSTOM
    authorizer_id: str | None


@dataclass(frozen=True)
class RestAuthorizer:
    logical_id: str
    kind: str                     # TOKEN | REQUEST
    identity_sources: tuple[str, ...]
    validation_expression: re.Pattern | None
    ttl_seconds: int
    function: InProcessLambda


@dataclass(frozen=True)
class CachedPolicy:
    expires_at: float
    answer: Mapping[str, Any]
    first_route: str


class RestApiEmulator:
    """One AWS::ApiGateway::RestApi of `template` and its stage."""

    name = NAME

    def __init__(self, template: Template, *, code_root_of: Callable[[str], Path], route_table_path: str,
                 clock: Callable[[], float] = time.time) -> None:
        """code_root_of(function logical id) is the directory the function's code was bundled from;
        route_table_path replaces the function's AUTHGATE_POLICY (the bundled table pointed at the local issuer)."""
        apis = [lid for lid, _ in template.of_type("AWS::ApiGateway::RestApi")]
        if len(apis) != 1:
            raise TemplateError(f"{template.source}: expected one AWS::ApiGateway::RestApi, found {len(apis)}")
        self.api_id = apis[0]
        self.clock = clock
        stages = [template.literal(p.get("StageName"), where=f"{lid}.StageName")
                  for lid, p in template.of_type("AWS::ApiGateway::Stage")]
        if len(stages) != 1:
            raise TemplateError(f"{template.source}: expected one AWS::ApiGateway::Stage, found {len(stages)}")
        self.stage = stages[0]
        self.api_key = re.sub(r"[^a-z0-9]", "", self.api_id.lower())[:10]
        # The mutual TLS custom domain, when the API has one: events then name it and carry the client certificate.
        self.mtls_domain = template.mtls_domain(self.api_id)
        paths = self._resource_paths(template)
        self.authorizers: dict[str, RestAuthorizer] = {}
        for lid, props in template.of_type("AWS::ApiGateway::Authorizer"):
            kind = props.get("Type")
            if kind not in ("TOKEN", "REQUEST"):
                raise TemplateError(f"{template.source}: authorizer {lid} has type {kind!r}; the sandbox emulates "
                                    "TOKEN and REQUEST (Lambda) authorizers")
            function_id = template.function_behind(props.get("AuthorizerUri"), where=f"{lid}.AuthorizerUri")
            env = template.lambda_environment(function_id)
            env["AUTHGATE_POLICY"] = route_table_path
            sources = str(template.literal(props.get("IdentitySource") or "", where=f"{lid}.IdentitySource"))
            expression = props.get("IdentityValidationExpression")
            ttl = props.get("AuthorizerResultTtlInSeconds")
            self.authorizers[lid] = RestAuthorizer(
                lid, kind, tuple(s.strip() for s in sources.split(",") if s.strip()),
                re.compile(expression) if expression else None,
                DEFAULT_RESULT_TTL_SECONDS if ttl is None else int(ttl),
                InProcessLambda(template.function_handler(function_id), code_root=code_root_of(function_id),
                                environment=env, function_name=function_id))
        self.methods: list[RestMethod] = []
        for lid, props in template.of_type("AWS::ApiGateway::Method"):
            resource = props.get("ResourceId")
            resource_id = ROOT if _is_root(resource) else template.ref_target(resource, where=f"{lid}.ResourceId")
            if resource_id not in paths:
                raise TemplateError(f"{template.source}: method {lid} is on {resource_id}, not a resource of the API")
            authorization = props.get("AuthorizationType", "NONE")
            if authorization not in ("NONE", "CUSTOM"):
                raise TemplateError(f"{template.source}: method {lid} uses {authorization}; the sandbox emulates "
                                    "NONE and CUSTOM")
            authorizer = props.get("AuthorizerId")
            authorizer_id = template.ref_target(authorizer, where=f"{lid}.AuthorizerId") if authorizer else None
            if authorization == "CUSTOM" and authorizer_id not in self.authorizers:
                raise TemplateError(f"{template.source}: method {lid} names authorizer {authorizer_id!r}, which is "
                                    "not a Lambda authorizer of this template")
            path = paths[resource_id]
            self.methods.append(RestMethod(str(props.get("HttpMethod")).upper(), path, authorization, authorizer_id))
        self.router = GATEWAYS[REST_API].router((m.http_method, m.resource_path, m) for m in self.methods)
        self._cache: dict[tuple, CachedPolicy] = {}
        self._lock = threading.Lock()

    def _resource_paths(self, template: Template) -> dict[str, str]:
        parents: dict[str, tuple[str, str]] = {}
        for lid, props in template.of_type("AWS::ApiGateway::Resource"):
            parent = props.get("ParentId")
            parent_id = ROOT if _is_root(parent) else template.ref_target(parent, where=f"{lid}.ParentId")
            parents[lid] = (parent_id, str(template.literal(props.get("PathPart"), where=f"{lid}.PathPart")))
        paths = {ROOT: "/"}

        def resolve(lid: str, seen: tuple = ()) -> str:
            if lid in paths:
                return paths[lid]
            if lid not in parents or lid in seen:
                raise TemplateError(f"{template.source}: resource {lid} has no path to the API's root")
            parent, part = parents[lid]
            paths[lid] = resolve(parent, seen + (lid,)).rstrip("/") + "/" + part
            return paths[lid]

        for lid in parents:
            resolve(lid)
        return paths

    def match(self, method: str, path: str) -> tuple[RestMethod, dict[str, str]] | None:
        """The method and path parameters, selected as the runtime selects (sandbox/gateways/routing.py)."""
        found = self.router.select(method, path)
        return None if found is None else (found.value, dict(found.parameters))

    def method_arn(self, method: str, path: str) -> str:
        return f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{self.api_key}/{self.stage}/{method}/{path.lstrip('/')}"

    def decide(self, method: str, path: str, headers: Mapping[str, str], *,
               client_ip: str = "127.0.0.1", client_certificate: str | None = None) -> Decision:
        """`client_certificate`: the PEM the client presented over mutual TLS (GatewayServer with tls=), which API
        Gateway passes to a REQUEST authorizer only on the API's mutual TLS domain."""
        raw_path, _, query = path.partition("?")
        matched = self.match(method, raw_path)
        if matched is None:
            # REST APIs answer an undefined resource or method with 403, not 404.
            return Decision(False, 403, MISSING_AUTH_TOKEN, "resource lookup", "no_route")
        rest_method, params = matched
        route = f"{method} {rest_method.resource_path}"
        if rest_method.authorization == "NONE":
            return Decision(allowed=True, checked=f"{route}: no authorizer")
        authorizer = self.authorizers[rest_method.authorizer_id]
        arn = self.method_arn(method, raw_path)
        checked = (f"{route}: Lambda {authorizer.kind} authorizer ({authorizer.function.handler_name}), policy "
                   f"evaluated for {arn.split(':', 5)[5]}")
        identity = self._identity(authorizer, headers, query, method=method, path=raw_path)
        if identity is None:
            return Decision(False, 401, UNAUTHORIZED, checked + " [identity source missing: not invoked]",
                            "malformed")
        now = self.clock()
        key = (authorizer.logical_id, *identity)
        cached = None
        if authorizer.ttl_seconds:
            with self._lock:
                cached = self._cache.get(key)
            if cached is not None and cached.expires_at <= now:
                cached = None
        if cached is not None:
            answer = cached.answer
            checked += (f" [cached policy from {cached.first_route}, {int(cached.expires_at - now)}s left: "
                        "authorizer not invoked]")
        else:
            event = self._event(authorizer, rest_method, method, raw_path, query, params, headers, arn, now)
            if self.mtls_domain is not None and event["type"] == "REQUEST":
                event["requestContext"]["domainName"] = self.mtls_domain
                if client_certificate is not None:
                    event["requestContext"]["identity"]["clientCert"] = client_cert_context(client_certificate)
            try:
                answer = authorizer.function.invoke(event)
            except LambdaInvocationError as err:
                if str(err.cause) == "Unauthorized":
                    code = authorizer.function.last_audit().get("code") or "lambda_unauthorized"
                    return Decision(False, 401, UNAUTHORIZED, checked + f" [authorizer: Unauthorized, {code}]", code)
                return Decision(False, 500, AUTHORIZER_ERROR, checked + f" [authorizer failed: {err}]",
                                "lambda_error")
            audit = authorizer.function.last_audit()
            if audit.get("code"):
                checked += f" [authorizer: {audit.get('decision')} {audit['code']}]"
            if not _well_formed(answer):
                return Decision(False, 500, AUTHORIZER_ERROR, checked + " [malformed authorizer response]",
                                "lambda_error")
            if authorizer.ttl_seconds:
                with self._lock:
                    self._cache[key] = CachedPolicy(now + authorizer.ttl_seconds, answer, route)
        effect = policy_effect(answer.get("policyDocument"), arn)
        if effect == "Deny":
            return Decision(False, 403, EXPLICIT_DENY, checked + " -> explicit Deny", "policy_deny")
        if effect != "Allow":
            return Decision(False, 403, IMPLICIT_DENY, checked + " -> no Allow matches", "policy_no_allow")
        return Decision(allowed=True, checked=checked + " -> Allow")

    def _identity(self, authorizer: RestAuthorizer, headers: Mapping[str, str], query: str, *, method: str,
                  path: str) -> tuple | None:
        """The identity-source values, or None when one is missing (API Gateway then answers 401 uninvoked)."""
        values = []
        request_context = {"context.httpMethod": method, "context.path": f"/{self.stage}{path}"}
        for source in authorizer.identity_sources:
            if source.startswith("method.request.header."):
                value = headers.get(source[len("method.request.header."):].lower())
            elif source.startswith("method.request.querystring."):
                value = dict(parse_qsl(query)).get(source[len("method.request.querystring."):])
            elif source in request_context:
                value = request_context[source]
            else:
                raise TemplateError(f"authorizer {authorizer.logical_id}: identity source {source!r} is not emulated")
            if not value:
                return None
            values.append(value)
        if authorizer.kind == "TOKEN":
            if len(values) != 1:
                raise TemplateError(f"TOKEN authorizer {authorizer.logical_id} needs exactly one header source")
            if authorizer.validation_expression and not authorizer.validation_expression.fullmatch(values[0]):
                return None
        elif not values and authorizer.ttl_seconds:
            raise TemplateError(f"REQUEST authorizer {authorizer.logical_id} caches results but has no identity "
                                "source")
        return tuple(values)

    def _event(self, authorizer: RestAuthorizer, rest_method: RestMethod, method: str, raw_path: str, query: str,
               params: dict[str, str], headers: Mapping[str, str], arn: str, now: float) -> dict:
        if authorizer.kind == "TOKEN":
            header = authorizer.identity_sources[0][len("method.request.header."):].lower()
            return {"type": "TOKEN", "authorizationToken": headers.get(header, ""), "methodArn": arn}
        pairs = parse_qsl(query)
        multi_query: dict[str, list[str]] = {}
        for name, value in pairs:
            multi_query.setdefault(name, []).append(value)
        return {
            "type": "REQUEST", "methodArn": arn, "resource": rest_method.resource_path, "path": raw_path,
            "httpMethod": method, "headers": dict(headers),
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": {k: v[-1] for k, v in multi_query.items()},
            "multiValueQueryStringParameters": multi_query,
            "pathParameters": params, "stageVariables": {},
            "requestContext": {
                "accountId": ACCOUNT, "apiId": self.api_key, "domainName":
                    f"{self.api_key}.execute-api.{REGION}.amazonaws.com", "httpMethod": method,
                "path": f"/{self.stage}{raw_path}", "protocol": "HTTP/1.1", "requestId": str(uuid.uuid4()),
                "requestTimeEpoch": int(now * 1000), "resourceId": uuid.uuid4().hex[:6],
                "resourcePath": rest_method.resource_path, "stage": self.stage,
                "identity": {"sourceIp": "127.0.0.1", "userAgent": headers.get("user-agent", "")}},
        }

    @property
    def invocations(self) -> int:
        return sum(a.function.invocations for a in self.authorizers.values())


def _is_root(value: Any) -> bool:
    """{"Fn::GetAtt": [<RestApi>, "RootResourceId"]}: the API's root resource."""
    if isinstance(value, Mapping) and "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        attribute = target[1] if isinstance(target, list) else str(target).split(".", 1)[-1]
        return attribute == "RootResourceId"
    return False


def _well_formed(answer: Any) -> bool:
    """API Gateway needs principalId and a policyDocument with a Statement; anything else is a 500."""
    return (isinstance(answer, Mapping) and isinstance(answer.get("principalId"), str)
            and isinstance(answer.get("policyDocument"), Mapping)
            and "Statement" in answer["policyDocument"])
