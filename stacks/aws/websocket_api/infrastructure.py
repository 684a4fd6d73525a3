"""WebSocket API guarded on $connect by authgate's Lambda REQUEST authorizer, built from one API of the route table.

API Gateway runs a WebSocket API's authorizer on $connect only: the connection is authorized once, and $disconnect,
$default and custom action routes carry messages over it with no authorizer of their own. Browsers cannot set
headers on the upgrade request, so the token travels where a browser can put it (query string or
Sec-WebSocket-Protocol); the authorizer's identity source names that place, so API Gateway answers 401 without
invoking the function when the token is absent.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aws_cdk import (CfnOutput, aws_apigateway as apigw, aws_apigatewayv2 as apigwv2,
                     aws_apigatewayv2_authorizers as authorizers, aws_lambda as lambda_, aws_logs as logs)
from constructs import Construct

from stacks.aws.authorizer_function.infrastructure import AuthorizerFunction
from stacks.aws.checkov import skip_checkov
from stacks.aws.echo_backend.infrastructure import EchoBackend
from stacks.aws.http_api.infrastructure import _AccessLogSettings
from stacks.aws.log_group import DEFAULT_RETENTION, retained_log_group
from stacks.aws.nag import acknowledge_nag
from stacks.aws.refusals import UnsupportedConfiguration
from stacks.aws.route_plan import IssuerPlan, api_of, issuer_plans, load_route_table
from stacks.policy.route_keys import WEBSOCKET_CONNECT, parse_websocket_route_key

# Where the $connect authorizer reads the token (lambdas/authorizers/websocket.py, AUTHGATE_WS_TOKEN_SOURCE).
TOKEN_SOURCES = ("query", "protocol", "header")
DEFAULT_QUERY_PARAM = "access_token"
PROTOCOL_MARKER = "authgate.bearer"
_QUERY_PARAM = re.compile(r"[A-Za-z0-9_.-]{1,64}")
RUNTIME_DIR = Path(__file__).resolve().parent / "runtime"
MESSAGE_ROUTE_REASON = ("API Gateway runs WebSocket authorizers on $connect only; this route carries messages over a "
                        "connection the $connect authorizer already admitted")


def websocket_identity_source(token_source: str, *, query_param: str = DEFAULT_QUERY_PARAM) -> str:
    """The $connect authorizer's identity source for where the token travels."""
    if token_source == "query":
        if not _QUERY_PARAM.fullmatch(query_param):
            raise UnsupportedConfiguration(f"query_param {query_param!r} must be 1-64 letters, digits or _.-")
        return f"route.request.querystring.{query_param}"
    if token_source == "protocol":
        return "route.request.header.Sec-WebSocket-Protocol"
    if token_source == "header":
        return "route.request.header.Authorization"
    raise UnsupportedConfiguration(f"token_source {token_source!r} is not one of {', '.join(TOKEN_SOURCES)}: query "
                                   f"(?{DEFAULT_QUERY_PARAM}=<jwt>, browsers), protocol (Sec-WebSocket-Protocol: "
                                   f"{PROTOCOL_MARKER}, <jwt>, browsers) or header (Authorization, other clients)")


@dataclass(frozen=True)
class WebSocketPlan:
    """One WebSocket API of a route table: its $connect route and the message routes that ride the connection."""

    name: str
    connect_public: bool
    connect_issuers: tuple[str, ...]
    message_routes: tuple[str, ...]
    issuers: Mapping[str, IssuerPlan]
    table: Mapping = field(compare=False, repr=False)   # the whole route table, as the authorizer will read it

    @classmethod
    def from_route_table(cls, table: Mapping, api: str) -> "WebSocketPlan":
        """Read one WebSocket API out of a route table (with the runtime's codec) and check it can be deployed."""
        loaded = load_route_table(table)
        routes_of = api_of(loaded, api)
        if routes_of.protocol != "websocket":
            raise UnsupportedConfiguration(
                f"API {api!r} is an HTTP API; the WebSocket API construct deploys APIs with protocol: websocket "
                "(set it in the policy, with a \"$connect\" route) and the HTTP or REST API constructs deploy the rest")
        keys = [route.route_key for route in routes_of.routes]
        if keys != [WEBSOCKET_CONNECT]:
            raise UnsupportedConfiguration(
                f"WebSocket API {api!r} must list exactly one authorized route, \"$connect\", found {keys!r}; "
                "re-render the route table with `authgate render routes`")
        connect = routes_of.routes[0]
        if not connect.public and connect.enforcement != "lambda":
            raise UnsupportedConfiguration(
                f"$connect of API {api!r} must be enforced by the Lambda authorizer (there is no native JWT "
                "authorizer for WebSocket APIs); re-render the route table with `authgate render routes`")
        message_routes = list(routes_of.connection_routes)
        for key in message_routes:
            try:
                parsed = parse_websocket_route_key(key)
            except ValueError as exc:
                raise UnsupportedConfiguration(f"connection_routes of API {api!r}: {exc}") from None
            if parsed.is_connect or message_routes.count(key) > 1:
                raise UnsupportedConfiguration(f"connection_routes of API {api!r} lists {key!r} twice or lists "
                                               "$connect, which is the authorized route")
        return cls(name=api, connect_public=connect.public, connect_issuers=connect.issuers,
                   message_routes=tuple(message_routes), issuers=issuer_plans(loaded), table=table)


class AuthgateWebSocketApi(Construct):
    """A WebSocket API whose $connect runs authgate's Lambda REQUEST authorizer, with a throttled, logged stage.

    integration               where $connect, $disconnect, $default and custom action messages go
    authorizer_code           the authorizer asset (lambdas/ + dependencies + the rendered route table)
    token_source              query (default), protocol or header: where clients put the token on the upgrade
    two_way_messages          send the integration's answer to $default and custom actions back to the client
    """

    def __init__(self, scope: Construct, id_: str, *, plan: WebSocketPlan,
                 integration: apigwv2.WebSocketRouteIntegration, authorizer_code: lambda_.Code | None = None,
                 route_table_path: str = "authgate_routes.json", token_source: str = "query",
                 query_param: str = DEFAULT_QUERY_PARAM, stage_name: str = "v1",
                 route_selection_expression: str = "$request.body.action", two_way_messages: bool = False,
                 throttle_rate_limit: float = 100, throttle_burst_limit: int = 200,
                 log_retention: logs.RetentionDays = DEFAULT_RETENTION) -> None:
        super().__init__(scope, id_)
        self.plan = plan
        self.identity_source = websocket_identity_source(token_source, query_param=query_param)
        self.api = apigwv2.WebSocketApi(self, "Api", api_name=f"authgate-{plan.name}",
                                        description=f"authgate WebSocket API {plan.name}",
                                        route_selection_expression=route_selection_expression)
        self.access_logs = retained_log_group(self, "AccessLogs", retention=log_retention)
        self.stage = apigwv2.WebSocketStage(
            self, "Stage", web_socket_api=self.api, stage_name=stage_name, auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(rate_limit=throttle_rate_limit, burst_limit=throttle_burst_limit),
            access_log_settings=_AccessLogSettings(apigwv2.LogGroupLogDestination(self.access_logs),
                                                   apigw.AccessLogFormat.custom(_ACCESS_LOG_FORMAT)))

        self.authorizer_function: AuthorizerFunction | None = None
        self.authorizer: authorizers.WebSocketLambdaAuthorizer | None = None
        if not plan.connect_public:
            if authorizer_code is None:
                raise ValueError(f"WebSocket API {plan.name!r} authorizes $connect with the Lambda authorizer; "
                                 "pass authorizer_code")
            settings = {"AUTHGATE_WS_TOKEN_SOURCE": token_source}
            if token_source == "query":
                settings["AUTHGATE_WS_QUERY_PARAM"] = query_param
            elif token_source == "protocol":
                settings["AUTHGATE_WS_PROTOCOL_MARKER"] = PROTOCOL_MARKER
            self.authorizer_function = AuthorizerFunction(
                self, "Authorizer", kind="websocket", code=authorizer_code, route_table_path=route_table_path,
                api_name=plan.name, log_retention=log_retention, settings=settings)
            # No result cache: API Gateway does not cache WebSocket authorizer results, so each connection is
            # decided afresh.
            self.authorizer = authorizers.WebSocketLambdaAuthorizer(
                "AuthgateConnect", self.authorizer_function.function, authorizer_name=f"authgate-{plan.name}",
                identity_source=[self.identity_source])

        self.routes: dict[str, apigwv2.WebSocketRoute] = {
            WEBSOCKET_CONNECT: self.api.add_route(WEBSOCKET_CONNECT, integration=integration,
                                                  authorizer=self.authorizer)}
        if plan.connect_public:
            acknowledge_nag(self.routes[WEBSOCKET_CONNECT], "AwsSolutions-APIG4",
                            f"$connect of API {plan.name} is declared public: true in the auth policy")
        for key in plan.message_routes:
            two_way = two_way_messages and key != "$disconnect"   # $disconnect has no client left to answer
            route = self.api.add_route(key, integration=integration, return_response=two_way or None)
            acknowledge_nag(route, "AwsSolutions-APIG4", f"route {key}: {MESSAGE_ROUTE_REASON}")
            skip_checkov(route, "CKV_AWS_309", f"route {key}: {MESSAGE_ROUTE_REASON}")
            self.routes[key] = route
        CfnOutput(self, "Url", value=self.stage.url, description=f"wss:// URL of WebSocket API {plan.name}")
        CfnOutput(self, "TokenSource", value=self.identity_source,
                  description="where clients put the access token when connecting")


class WebSocketEchoBackend(EchoBackend):
    """A Lambda answering each message with the identity $connect admitted (and the subprotocol handshake)."""

    def __init__(self, scope: Construct, id_: str, *,
                 log_retention: logs.RetentionDays = DEFAULT_RETENTION) -> None:
        super().__init__(scope, id_, log_retention=log_retention, handler="connection_echo.handler",
                         code_dir=RUNTIME_DIR, description="authgate WebSocket echo backend",
                         environment={"AUTHGATE_WS_PROTOCOL_MARKER": PROTOCOL_MARKER})
        skip_checkov(self.function, "CKV_AWS_173", "the environment holds only the subprotocol marker's name; no "
                                                   "secret")


# One JSON object per connection event; never the query string (it may hold the token).
_ACCESS_LOG_FORMAT = (
    '{"requestId":"$context.requestId","connectionId":"$context.connectionId","eventType":"$context.eventType",'
    '"routeKey":"$context.routeKey","status":"$context.status","ip":"$context.identity.sourceIp",'
    '"requestTime":"$context.requestTime","integrationError":"$context.integrationErrorMessage",'
    '"authorizerError":"$context.authorizer.error","principalId":"$context.authorizer.principalId"}')
