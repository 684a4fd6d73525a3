"""REST API guarded by authgate's Lambda authorizer (TOKEN or REQUEST), with access and execution logging,
request validation, throttling and a WAF web ACL with a rate-based rule in front of the stage."""
from __future__ import annotations

import re
from dataclasses import dataclass

from aws_cdk import (Annotations, CfnOutput, Duration, aws_apigateway as apigw, aws_certificatemanager as acm,
                     aws_lambda as lambda_, aws_logs as logs, aws_s3 as s3)
from constructs import Construct

from lambdas.authorizers.iam_policy import policy_coverage
from lambdas.validation.route_table import RouteTable

from stacks.aws.authorizer_function.infrastructure import AuthorizerFunction
from stacks.aws.log_group import DEFAULT_RETENTION, retained_log_group
from stacks.aws.checkov import skip_checkov
from stacks.aws.nag import acknowledge_nag
from stacks.aws.refusals import (UnsupportedConfiguration, authorizer_cache_for_api, refuse_dpop_nonce_routes,
                                 require_cache_within_token_lifetime)
from stacks.aws.mtls_domain.infrastructure import MtlsDomainSettings, require_mtls_domain
from stacks.aws.revocation_table.infrastructure import RevocationTable, needs_revocation_table
from stacks.aws.route_plan import ApiPlan, RoutePlan
from stacks.aws.web_acl.infrastructure import DEFAULT_RATE_LIMIT, RateLimitedWebAcl

AUTHORIZER_TYPES = ("request", "token")
DEFAULT_CACHE_SECONDS = 300
PATH_PARAMETER = re.compile(r"\{([A-Za-z0-9_.-]+?)\+?\}")
TOKEN_SOURCE = "Authorization"
# The request's method and path join the token in the cache key when a policy may name only the current request:
# a cached entry is then reused only for that same request, which is what such a policy is right for.
ROUTE_IDENTITY_CONTEXT = ("httpMethod", "path")


@dataclass(frozen=True)
class AuthorizerCache:
    """How API Gateway caches the REST authorizer's answers, and why.

    mode     "token"        keyed on the token alone: every principal gets a route-wide policy
             "token+route"  REQUEST authorizer keyed on the token, method and path (some policies name only the
                            current request)
             "off"          TTL 0: a TOKEN authorizer can key on the token only, and some policies are not route-wide
    """

    mode: str
    ttl_seconds: int
    identity_sources: tuple[str, ...]
    reason: str

    @property
    def summary(self) -> str:
        keyed = {"token": "cached per token", "token+route": "cached per token, method and path",
                 "off": "caching off"}[self.mode]
        return f"REST authorizer {keyed} ({', '.join(self.identity_sources)}; TTL {self.ttl_seconds} s): {self.reason}"


def choose_authorizer_cache(plan: ApiPlan, *, authorizer_type: str, cache_seconds: int,
                            stage_name: str) -> AuthorizerCache:
    """A cache that stays right for every route: keyed on the token when every principal's policy is route-wide
    (checked over every combination of the API's permissions), else keyed on the request too or off."""
    header = apigw.IdentitySource.header(TOKEN_SOURCE)
    if cache_seconds == 0:
        return AuthorizerCache("off", 0, (header,), "the results cache TTL is 0")
    coverage = policy_coverage(RouteTable.load(plan.table).api(plan.name), stage=stage_name)
    if coverage.route_wide:
        return AuthorizerCache("token", cache_seconds, (header,), coverage.reason)
    if authorizer_type == "request":
        sources = (header, *(apigw.IdentitySource.context(name) for name in ROUTE_IDENTITY_CONTEXT))
        return AuthorizerCache("token+route", cache_seconds, sources,
                               f"{coverage.reason}, so a policy cached per token alone could deny the principal's "
                               "other routes")
    return AuthorizerCache("off", 0, (header,), f"{coverage.reason}; a TOKEN authorizer keys its cache on the token "
                                                 "only, so caching is turned off (authorizer_type='request' keys it on "
                                                 "the request too)")


class AuthgateRestApi(Construct):
    """A REST API whose methods come from one API of the route table; every non-public method runs the authorizer.

    The REST authorizer answers with a policy covering every route of the API (API Gateway caches it per token and
    reuses it for all methods), so caching on the token alone is safe when every principal's policy is route-wide;
    when a check at synth cannot show that, the cache is keyed on the request too (REQUEST) or off (TOKEN), see
    `choose_authorizer_cache`. The cache never outlives the shortest token lifetime.
    authorizer_type  "request" (Authorization header, the default) or "token" (TOKEN authorizer on the same header)
    authorizer_cache_ttl  default 5 minutes; 0 (and nothing else) for an API with routes checked per request
    revocation_table the shared RevocationTable; made here when the API has DPoP or denylist routes and none is given
    """

    def __init__(self, scope: Construct, id_: str, *, plan: ApiPlan, integration: apigw.Integration,
                 authorizer_code: lambda_.Code, shortest_token_lifetime: Duration,
                 route_table_path: str = "authgate_routes.json", authorizer_type: str = "request",
                 authorizer_cache_ttl: Duration | None = None, stage_name: str = "v1",
                 revocation_table: RevocationTable | None = None,
                 mtls_domain: MtlsDomainSettings | None = None,
                 throttle_rate_limit: float = 100, throttle_burst_limit: int = 200,
                 waf_rate_limit: int = DEFAULT_RATE_LIMIT,
                 log_retention: logs.RetentionDays = DEFAULT_RETENTION) -> None:
        super().__init__(scope, id_)
        if authorizer_type not in AUTHORIZER_TYPES:
            raise UnsupportedConfiguration(f"authorizer_type {authorizer_type!r} is not one of "
                                           f"{', '.join(AUTHORIZER_TYPES)}")
        cookie_routes = [r.route_key for r in plan.routes if r.token_source == "cookie"]
        if cookie_routes:
            raise UnsupportedConfiguration(
                f"API {plan.name!r} has routes that take the token handler's session cookie ({', '.join(cookie_routes)}); "
                "a REST API authorizer's identity source and cache are keyed on the Authorization header, so deploy "
                "them on the HTTP API with browser sign-in (context authgate:web)")
        api_routes = plan.api
        refuse_dpop_nonce_routes(api_routes, what=f"API {plan.name} (REST API)")
        cache_seconds = authorizer_cache_for_api(
            plan, None if authorizer_cache_ttl is None else int(authorizer_cache_ttl.to_seconds()),
            DEFAULT_CACHE_SECONDS, what="REST API Lambda authorizer")
        if authorizer_type == "token" and any(r.proof != "none" for r in api_routes.routes):
            raise UnsupportedConfiguration(
                f"API {plan.name}: a TOKEN authorizer sees only the token, not the DPoP header, the request URI or "
                f"the client certificate its proof routes need; use authorizer_type \"request\"")
        self.revocation_table = revocation_table
        if self.revocation_table is None and needs_revocation_table(plan):
            self.revocation_table = RevocationTable(self, "RevocationTable")
        require_cache_within_token_lifetime(cache_seconds, int(shortest_token_lifetime.to_seconds()),
                                            what="REST API Lambda authorizer")
        uses_mtls = require_mtls_domain(api_routes, mtls_domain, api_name=plan.name)
        self.plan = plan
        self.access_logs = retained_log_group(self, "AccessLogs", retention=log_retention)
        self.api = apigw.RestApi(
            self, "Api", rest_api_name=f"authgate-{plan.name}", description=f"authgate API {plan.name}",
            endpoint_types=[apigw.EndpointType.REGIONAL], cloud_watch_role=True,
            disable_execute_api_endpoint=True if uses_mtls else None,
            deploy_options=apigw.StageOptions(
                stage_name=stage_name, throttling_rate_limit=throttle_rate_limit,
                throttling_burst_limit=throttle_burst_limit, logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # full request logging would write bearer tokens to CloudWatch
                tracing_enabled=True,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=False, http_method=True, ip=True, protocol=True, request_time=True, resource_path=True,
                    response_length=True, status=True, user=True)))
        acknowledge_nag(self.api.node.find_child("CloudWatchRole"), "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                                  "AmazonAPIGatewayPushToCloudWatchLogs]",
                        "the account-level role API Gateway needs to write execution logs; AWS maintains the "
                        "managed policy and it grants log writing only")
        skip_checkov(self.api.deployment_stage, "CKV_AWS_120",
                     "responses are per caller; a stage cache keyed without the caller's identity would serve one "
                     "caller's data to another")
        self.request_validator = self.api.add_request_validator(
            "Validator", request_validator_name=f"authgate-{plan.name}", validate_request_parameters=True,
            validate_request_body=True)

        self.authorizer_function: AuthorizerFunction | None = None
        self.authorizer: apigw.IAuthorizer | None = None
        self.cache: AuthorizerCache | None = None
        if plan.routes != plan.public_routes:
            self.authorizer_function = AuthorizerFunction(
                self, "Authorizer", kind="rest", code=authorizer_code, route_table_path=route_table_path,
                api_name=plan.name, log_retention=log_retention, revocation_table=self.revocation_table)
            self.cache = choose_authorizer_cache(plan, authorizer_type=authorizer_type, cache_seconds=cache_seconds,
                                                 stage_name=stage_name)
            # `cdk synth` shows this; `authgate synth` prints the same choice.
            Annotations.of(self).add_info(f"authgate: {self.cache.summary}")
            common = dict(handler=self.authorizer_function.function, authorizer_name=f"authgate-{plan.name}",
                          results_cache_ttl=Duration.seconds(self.cache.ttl_seconds))
            self.authorizer = (apigw.TokenAuthorizer(self, "TokenAuthorizer", **common) if authorizer_type == "token"
                               else apigw.RequestAuthorizer(
                                   self, "RequestAuthorizer", identity_sources=list(self.cache.identity_sources),
                                   **common))

        self.methods: dict[str, apigw.Method] = {}
        for route in plan.routes:
            self.methods[route.route_key] = self._add_method(route, integration)

        self.domain: apigw.DomainName | None = None
        if uses_mtls:
            bucket_name, key = mtls_domain.truststore_location
            self.domain = apigw.DomainName(
                self, "MtlsDomain", domain_name=mtls_domain.domain_name,
                certificate=acm.Certificate.from_certificate_arn(self, "MtlsCertificate", mtls_domain.certificate_arn),
                endpoint_type=apigw.EndpointType.REGIONAL, security_policy=apigw.SecurityPolicy.TLS_1_2,
                mtls=apigw.MTLSConfig(bucket=s3.Bucket.from_bucket_name(self, "Truststore", bucket_name), key=key,
                                      version=mtls_domain.truststore_version))
            self.domain.add_base_path_mapping(self.api, stage=self.api.deployment_stage)

        self.web_acl = RateLimitedWebAcl(self, "WebAcl", name=f"authgate-{plan.name}-rest",
                                         rate_limit=waf_rate_limit, log_retention=log_retention)
        self.web_acl.associate("StageAssociation", self.api.deployment_stage.stage_arn)
        # With mutual TLS only the custom domain answers (execute-api is off).
        url = f"https://{mtls_domain.domain_name}/" if uses_mtls else self.api.url
        CfnOutput(self, "Url", value=url, description=f"base URL of API {plan.name}")

    def _add_method(self, route: RoutePlan, integration: apigw.Integration) -> apigw.Method:
        resource = self.api.root.resource_for_path(route.path)
        parameters = {f"method.request.path.{name}": True for name in PATH_PARAMETER.findall(route.path)}
        method = resource.add_method(
            route.method, integration, request_validator=self.request_validator,
            request_parameters=parameters or None,
            authorization_type=apigw.AuthorizationType.NONE if route.public else apigw.AuthorizationType.CUSTOM,
            authorizer=None if route.public else self.authorizer)
        if route.public:
            acknowledge_nag(method, "AwsSolutions-APIG4",
                            f"route {route.route_key} is declared public: true in the auth policy")
            skip_checkov(method, "CKV_AWS_59", f"route {route.route_key} is declared public: true in the auth policy")
        acknowledge_nag(method, "AwsSolutions-COG4",
                        "authorization is authgate's Lambda authorizer, which verifies tokens of any OIDC issuer "
                        "in the policy (Cognito included), not a Cognito-only user pool authorizer"
                        if not route.public else f"route {route.route_key} is public by policy")
        return method
