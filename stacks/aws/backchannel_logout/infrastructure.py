"""The OpenID Connect Back-Channel Logout endpoint on an HTTP API: lambdas/backchannel_logout/http_api.py run from the
authorizer asset (the same code and rendered route table the authorizers run), on `POST /backchannel-logout`.

The route has no authorizer: the logout token is its own credential (the handler checks its signature against the
issuer's keys, its audience, freshness, events member and single use), and an issuer posting it holds no access token.
The function may write to the shared revocation table only: PutItem on the key prefixes of denylist entries and
logout-token records (RevocationTable.grant_logout_endpoint), never read, update, delete or scan.
"""
from __future__ import annotations

from aws_cdk import Duration, aws_apigatewayv2 as apigwv2, aws_apigatewayv2_integrations as integ
from aws_cdk import aws_lambda as lambda_, aws_logs as logs
from constructs import Construct

from lambdas.backchannel_logout.http_api import LOGOUT_PATH
from stacks.aws.authorizer_function.infrastructure import asset_function, default_metrics_namespace
from stacks.aws.log_group import DEFAULT_RETENTION
from stacks.aws.nag import acknowledge_nag
from stacks.aws.refusals import UnsupportedConfiguration
from stacks.aws.revocation_table.infrastructure import RevocationTable

LOGOUT_HANDLER = "lambdas.backchannel_logout.http_api.handler"
# What the core writes on stderr for a logout it could not record now (issuer keys or the table unreachable).
UNAVAILABLE_FILTER = '{ $.authgate = "backchannel_logout" && $.outcome = "unavailable" }'


class BackchannelLogoutEndpoint(Construct):
    """`POST {path}` on `http_api`, answered by the back-channel logout function.

    code              the authorizer asset (it holds all of lambdas/ and the rendered route table)
    route_table_path  where that table sits inside the asset (AUTHGATE_POLICY); its issuers with
                      revocation.logout_audiences are the ones whose logout tokens are accepted
    revocation_table  the table the API's authorizers read (the stage's shared RevocationTable)
    route_keys        the API's own route keys: a policy route on the same path is refused, not shadowed
    """

    def __init__(self, scope: Construct, id_: str, *, http_api: apigwv2.HttpApi, code: lambda_.Code,
                 route_table_path: str, api_name: str, revocation_table: RevocationTable,
                 route_keys: tuple[str, ...] = (), path: str = LOGOUT_PATH,
                 architecture: lambda_.Architecture = lambda_.Architecture.ARM_64,
                 log_retention: logs.RetentionDays = DEFAULT_RETENTION) -> None:
        super().__init__(scope, id_)
        taken = [key for key in route_keys if key.partition(" ")[2] == path]
        if taken:
            raise UnsupportedConfiguration(
                f"API {api_name}: route(s) {', '.join(taken)} of the policy use {path}, where the back-channel logout "
                f"endpoint is deployed; rename the route in the policy")
        self.path = path
        # A role of its own: its log group, and PutItem on denylist keys of the revocation table.
        self.log_group, self.role, self.function = asset_function(
            self, handler=LOGOUT_HANDLER, code=code, architecture=architecture, memory_size=512,
            # Room for a key fetch from the issuer and a table write; the issuer waits for the answer.
            timeout=Duration.seconds(10), log_retention=log_retention,
            description=f"authgate back-channel logout endpoint for API {api_name}",
            grant=revocation_table.grant_logout_endpoint,
            environment={"AUTHGATE_POLICY": f"/var/task/{route_table_path}", "AUTHGATE_API": api_name,
                         **revocation_table.environment},
            checkov_reasons={
                "CKV_AWS_117": "reaches only the issuer's public key endpoint and DynamoDB's public endpoint; a VPC "
                               "would add NAT cost for nothing",
                "CKV_AWS_173": "the environment holds the route table path, the API name and the revocation table's "
                               "name; no secret"})
        self.unavailable_metric = logs.MetricFilter(
            self, "Unavailable", log_group=self.log_group, metric_namespace=default_metrics_namespace(self),
            metric_name="BackchannelLogoutUnavailable", filter_pattern=logs.FilterPattern.literal(UNAVAILABLE_FILTER),
            metric_value="1", default_value=0).metric(statistic="Sum", period=Duration.minutes(5))
        integration = integ.HttpLambdaIntegration("BackchannelLogout", self.function)
        (self.route,) = http_api.add_routes(path=path, methods=[apigwv2.HttpMethod.POST], integration=integration)
        acknowledge_nag(self.route, "AwsSolutions-APIG4",
                        "the back-channel logout endpoint is called by the issuer with a signed logout token, which "
                        "is its credential: the handler checks signature, audience, freshness and single use")
