"""HTTP API guarded per route as the compiled policy says: native JWT authorizer (issuer, audience, any-of scopes)
where API Gateway can enforce the rule, authgate's Lambda authorizer where it cannot, nothing for public routes."""
from __future__ import annotations

import re
from typing import Any

import jsii

from aws_cdk import (CfnOutput, Duration, aws_apigateway as apigw, aws_apigatewayv2 as apigwv2,
                     aws_apigatewayv2_authorizers as authorizers, aws_certificatemanager as acm,
                     aws_lambda as lambda_, aws_logs as logs, aws_s3 as s3)
from constructs import Construct

from lambdas.authorizers.identity_sources import DEFAULT_TOKEN_SOURCE, http_api_identity_sources
from stacks.aws.authorizer_function.infrastructure import AuthorizerFunction
from stacks.aws.nag import acknowledge_nag
from stacks.aws.log_group import DEFAULT_RETENTION, retained_log_group
from stacks.aws.mtls_domain.infrastructure import MtlsDomainSettings, require_mtls_domain
from stacks.aws.refusals import (UnsupportedConfiguration, authorizer_cache_for_api, refuse_dpop_nonce_routes,
                                 require_cache_within_token_lifetime)
from stacks.aws.revocation_table.infrastructure import RevocationTable, needs_revocation_table
from stacks.aws.route_plan import ApiPlan, IssuerPlan, RoutePlan

TOKEN_IDENTITY_SOURCE = DEFAULT_TOKEN_SOURCE
DEFAULT_CACHE_SECONDS = 300


class AuthgateHttpApi(Construct):
    """An HTTP API whose routes come from one API of the route table.

    integration              where every allowed request goes (a Lambda, a URL, or an ALB through a VPC link)
    authorizer_code          the authorizer asset (needed only when some route is enforced by Lambda)
    route_table_path         where the rendered route table sits inside that asset
    shortest_token_lifetime  the shortest access-token lifetime of the issuers; bounds the authorizer cache
    metrics_namespace        the authorizer's CloudWatch metrics namespace (default: AuthorizerFunction's)
    authorizer_cache_ttl     default 5 minutes; 0 (and nothing else) for an API with routes checked per request
    revocation_table         the shared RevocationTable; made here when Lambda routes need it and none is given
    """

    def __init__(self, scope: Construct, id_: str, *, plan: ApiPlan, integration: apigwv2.HttpRouteIntegration,
                 shortest_token_lifetime: Duration, authorizer_code: lambda_.Code | None = None,
                 route_table_path: str = "authgate_routes.json",
                 authorizer_cache_ttl: Duration | None = None, throttle_rate_limit: float = 100,
                 throttle_burst_limit: int = 200, log_retention: logs.RetentionDays = DEFAULT_RETENTION,
                 cookie_keys: Any = None, web_origin: str | None = None,
                 metrics_namespace: str | None = None, revocation_table: RevocationTable | None = None,
                 mtls_domain: MtlsDomainSettings | None = None) -> None:
        super().__init__(scope, id_)
        self.plan = plan
        cookie_routes = [r.route_key for r in plan.routes if r.token_source == "cookie"]
        if cookie_routes and (cookie_keys is None or not web_origin):
            raise UnsupportedConfiguration(
                f"API {plan.name!r} has routes that take the token handler's session cookie ({', '.join(cookie_routes)}); "
                "deploy them with browser sign-in (context authgate:web naming the policy's web client)")
        api_routes = plan.api
        refuse_dpop_nonce_routes(api_routes, what=f"API {plan.name} (HTTP API)")
        requested = None if authorizer_cache_ttl is None else int(authorizer_cache_ttl.to_seconds())
        cache_seconds = min(authorizer_cache_for_api(plan, requested, DEFAULT_CACHE_SECONDS,
                                                     what="HTTP API Lambda authorizer"),
                            int(shortest_token_lifetime.to_seconds()))
        self.revocation_table = revocation_table
        if self.revocation_table is None and plan.lambda_routes and needs_revocation_table(plan):
            self.revocation_table = RevocationTable(self, "RevocationTable")
        require_cache_within_token_lifetime(cache_seconds, int(shortest_token_lifetime.to_seconds()),
                                            what="HTTP API Lambda authorizer")
        uses_mtls = require_mtls_domain(api_routes, mtls_domain, api_name=plan.name)
        self.api = apigwv2.HttpApi(self, "Api", api_name=f"authgate-{plan.name}", create_default_stage=False,
                                   description=f"authgate API {plan.name}",
                                   disable_execute_api_endpoint=True if uses_mtls else None)
        self.access_logs = retained_log_group(self, "AccessLogs", retention=log_retention)
        self.stage = apigwv2.HttpStage(
            self, "Stage", http_api=self.api, auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(rate_limit=throttle_rate_limit, burst_limit=throttle_burst_limit),
            access_log_settings=_AccessLogSettings(apigwv2.LogGroupLogDestination(self.access_logs),
                                                   apigw.AccessLogFormat.custom(_ACCESS_LOG_FORMAT)))

        self.jwt_authorizers: dict[str, authorizers.HttpJwtAuthorizer] = {
            issuer.name: self._jwt_authorizer(issuer) for issuer in plan.issuers_used(plan.native_routes)}
        self.lambda_authorizer: authorizers.HttpLambdaAuthorizer | None = None
        self.authorizer_function: AuthorizerFunction | None = None
        self.identity_sources: list[str] = []
        if plan.lambda_routes:
            if authorizer_code is None:
                raise ValueError(f"API {plan.name!r} has routes the Lambda authorizer enforces "
                                 f"({', '.join(r.route_key for r in plan.lambda_routes)}); pass authorizer_code")
            # API Gateway caches a simple response per identity-source value for every route of the API; the
            # sources are derived from the routes (adding $context.routeKey when they differ) and cannot be
            # set by hand. The handler re-checks the same rule at init from the two settings passed below.
            self.identity_sources = http_api_identity_sources(plan.api, result_ttl_seconds=cache_seconds,
                                                              response="simple")
            self.authorizer_function = AuthorizerFunction(
                self, "Authorizer", kind="http_api", code=authorizer_code, route_table_path=route_table_path,
                api_name=plan.name, log_retention=log_retention, metrics_namespace=metrics_namespace,
                revocation_table=self.revocation_table,
                settings={"AUTHGATE_RESPONSE": "simple", "AUTHGATE_RESULT_TTL_SECONDS": str(cache_seconds),
                          "AUTHGATE_IDENTITY_SOURCES": ",".join(self.identity_sources),
                          **({"AUTHGATE_WEB_ORIGIN": web_origin} if cookie_routes else {})},
                reads_secrets=bool(cookie_routes))
            self.lambda_authorizer = authorizers.HttpLambdaAuthorizer(
                "AuthgateLambda", self.authorizer_function.function, authorizer_name=f"authgate-{plan.name}",
                response_types=[authorizers.HttpLambdaResponseType.SIMPLE],
                results_cache_ttl=Duration.seconds(cache_seconds), identity_source=self.identity_sources)
        self.cookie_authorizer: authorizers.HttpLambdaAuthorizer | None = None
        if cookie_routes:
            cookie_keys.grant_read(self.authorizer_function.function)
            # Uncached: a cookie route's answer also depends on the CSRF headers (method, Origin, X-Authgate-Csrf),
            # which a cache key of the cookie would not tell apart. Uncached authorizers need no identity source.
            self.cookie_authorizer = authorizers.HttpLambdaAuthorizer(
                "AuthgateCookie", self.authorizer_function.function, authorizer_name=f"authgate-{plan.name}-cookie",
                response_types=[authorizers.HttpLambdaResponseType.SIMPLE], results_cache_ttl=Duration.seconds(0),
                identity_source=[])

        self.domain: apigwv2.DomainName | None = None
        if uses_mtls:
            bucket_name, key = mtls_domain.truststore_location
            self.domain = apigwv2.DomainName(
                self, "MtlsDomain", domain_name=mtls_domain.domain_name,
                certificate=acm.Certificate.from_certificate_arn(self, "MtlsCertificate", mtls_domain.certificate_arn),
                mtls=apigwv2.MTLSConfig(bucket=s3.Bucket.from_bucket_name(self, "Truststore", bucket_name), key=key,
                                        version=mtls_domain.truststore_version))
            apigwv2.ApiMapping(self, "MtlsMapping", api=self.api, domain_name=self.domain, stage=self.stage)

        self.routes: dict[str, apigwv2.HttpRoute] = {}
        for route in plan.routes:
            self.routes[route.route_key] = self._add_route(route, integration)
        url = f"https://{mtls_domain.domain_name}" if uses_mtls else self.api.api_endpoint
        CfnOutput(self, "Url", value=url, description=f"base URL of API {plan.name}")

    def _jwt_authorizer(self, issuer: IssuerPlan) -> authorizers.HttpJwtAuthorizer:
        return authorizers.HttpJwtAuthorizer(
            f"Jwt{_construct_id(issuer.name)}", issuer.issuer, jwt_audience=list(issuer.audiences),
            authorizer_name=f"jwt-{issuer.name}", identity_source=[TOKEN_IDENTITY_SOURCE])

    def _add_route(self, route: RoutePlan, integration: apigwv2.HttpRouteIntegration) -> apigwv2.HttpRoute:
        if route.public:
            authorizer, scopes = apigwv2.HttpNoneAuthorizer(), None
        elif route.native:
            authorizer, scopes = self.jwt_authorizers[route.issuers[0]], list(route.scopes) or None
        elif route.token_source == "cookie":
            authorizer, scopes = self.cookie_authorizer, None
        else:
            authorizer, scopes = self.lambda_authorizer, None
        (http_route,) = self.api.add_routes(path=route.path, methods=[apigwv2.HttpMethod(route.method)],
                                            integration=integration, authorizer=authorizer,
                                            authorization_scopes=scopes)
        if route.public:
            acknowledge_nag(http_route, "AwsSolutions-APIG4",
                            f"route {route.route_key} is declared public: true in the auth policy")
        return http_route


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogSettings:
    """IAccessLogSettings is a jsii interface, not a struct, so Python must implement it to pass it."""

    def __init__(self, destination: apigwv2.IAccessLogDestination, log_format: apigw.AccessLogFormat) -> None:
        self._destination = destination
        self._format = log_format

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw.AccessLogFormat:
        return self._format


def _construct_id(name: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", name) if part) or "Issuer"


# One JSON object per request: who was let through by which authorizer, and why a request was refused.
_ACCESS_LOG_FORMAT = (
    '{"requestId":"$context.requestId","ip":"$context.identity.sourceIp","requestTime":"$context.requestTime",'
    '"routeKey":"$context.routeKey","status":"$context.status","protocol":"$context.protocol",'
    '"responseLength":"$context.responseLength","integrationError":"$context.integrationErrorMessage",'
    '"authorizerError":"$context.authorizer.error","sub":"$context.authorizer.claims.sub",'
    '"clientId":"$context.authorizer.claims.client_id"}')
