"""The Lambda authorizer function: one of lambdas/authorizers/* with the rendered route table inside its asset."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aws_cdk import Annotations, Duration, Stage, aws_iam as iam, aws_lambda as lambda_, aws_logs as logs
from constructs import Construct

from lambdas.observability.emf import DEFAULT_NAMESPACE, check_namespace
from stacks.aws.authorizer_asset import lambda_runtime_name
from stacks.aws.checkov import skip_checkov
from stacks.aws.nag import acknowledge_nag
from stacks.aws.log_group import DEFAULT_RETENTION, retained_log_group

# handler kind -> the module:function API Gateway invokes (contract in DESIGN.md).
AUTHORIZER_HANDLERS = {
    "rest": "lambdas.authorizers.rest.handler",
    "http_api": "lambdas.authorizers.http_api.handler",
    "websocket": "lambdas.authorizers.websocket.handler",
}
LATEST_PYTHON_RUNTIME = lambda_.Runtime.PYTHON_3_14


def authorizer_runtime() -> lambda_.Runtime:
    """The runtime the authorizer asset is built for: the interpreter running the build, which compiled its bytecode
    and chose its wheels (stacks/aws/authorizer_asset.py). Any other runtime would ignore that bytecode at best."""
    return lambda_.Runtime(lambda_runtime_name(), lambda_.RuntimeFamily.PYTHON)

def secrets_extension() -> lambda_.ParamsAndSecretsLayerVersion:
    """The AWS Parameters and Secrets Lambda Extension, how the runtime reads secrets (lambdas/validation/secrets.py).
    Its cache is off: a rotated cookie key must be picked up by a new execution environment, not after a TTL."""
    return lambda_.ParamsAndSecretsLayerVersion.from_version(lambda_.ParamsAndSecretsVersions.V1_0_103,
                                                             cache_enabled=False)


def acknowledge_asset_runtime(function: lambda_.Function) -> None:
    """A function running the authorizer asset runs the runtime the asset was built for, which is the latest only
    when the build ran on it; cdk-nag's latest-runtime rule is acknowledged with that reason."""
    runtime = function.runtime
    if runtime.name != LATEST_PYTHON_RUNTIME.name:
        acknowledge_nag(function, "AwsSolutions-L1",
                        f"{runtime.name} is the runtime the authorizer asset is built for: its bytecode is "
                        "compiled by, and its binary wheels (cryptography) chosen for, the interpreter that "
                        "builds it (stacks/aws/authorizer_asset.py); build with python3.14 to deploy python3.14")


LAMBDA_CHECKOV_SKIPS = {
    "CKV_AWS_115": "reserved concurrency would cap the API at the function and take capacity from accounts with "
                   "low limits; requests are throttled at the API Gateway stage instead",
    "CKV_AWS_116": "invoked synchronously by API Gateway; a dead-letter queue applies to asynchronous "
                   "invocations only",
    "CKV_AWS_117": "reaches no VPC resource (only the issuer's public key endpoint); a VPC would add NAT cost and "
                   "cold-start latency for nothing",
    "CKV_AWS_173": "the environment holds the route table path, the API name and cache settings; no secret",
}


def asset_function(scope: Construct, *, handler: str, code: lambda_.Code, description: str,
                   environment: Mapping[str, str], architecture: lambda_.Architecture, memory_size: int,
                   timeout: Duration, log_retention: logs.RetentionDays, role_description: str | None = None,
                   reads_secrets: bool = False, grant: Callable[[iam.Role], None] | None = None,
                   checkov_reasons: Mapping[str, str] | None = None,
                   ) -> tuple[logs.LogGroup, iam.Role, lambda_.Function]:
    """A function running the authorizer asset (all of lambdas/), made as `scope`'s children Logs, Role and Function:
    a role of its own that may write only its own log group (plus what `grant` adds before the function exists), JSON
    logs, the runtime the asset was built for (acknowledged to cdk-nag), and the Lambda checkov skips, any of them
    re-worded by `checkov_reasons` for what this function's environment holds and where it connects. The
    authorizers, the token handler and the back-channel logout endpoint are all this shape."""
    log_group = retained_log_group(scope, "Logs", retention=log_retention)
    role = iam.Role(scope, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                    description=role_description or description)
    log_group.grant_write(role)
    if grant is not None:
        grant(role)
    function = lambda_.Function(
        scope, "Function", runtime=authorizer_runtime(), architecture=architecture, handler=handler, code=code,
        role=role, memory_size=memory_size, timeout=timeout, log_group=log_group,
        logging_format=lambda_.LoggingFormat.JSON,
        # The secrets (cookie keys, a client secret) come from Secrets Manager through the extension at init.
        params_and_secrets=secrets_extension() if reads_secrets else None,
        description=description, environment=dict(environment))
    for check_id, reason in {**LAMBDA_CHECKOV_SKIPS, **(checkov_reasons or {})}.items():
        skip_checkov(function, check_id, reason)
    acknowledge_asset_runtime(function)
    return log_group, role, function


def default_metrics_namespace(scope: Construct, gateway: str | None = None) -> str:
    """authgate/<stage name> (plain authgate outside a stage), and /<gateway> for a second gateway of the same API in
    the stage (the EKS front door beside the HttpApi stack), so no two share a metric."""
    stage = Stage.of(scope)
    namespace = f"{DEFAULT_NAMESPACE}/{stage.stage_name}" if stage is not None and stage.stage_name \
        else DEFAULT_NAMESPACE
    return f"{namespace}/{gateway}" if gateway else namespace


class AuthorizerFunction(Construct):
    """A Lambda authorizer with its own role and log group; the only AWS API it may call is the revocation table,
    when its API has routes that need it.

    code              the authorizer asset (lambdas/ + its runtime dependencies + the rendered route table), built
                      by stacks/aws/authorizer_asset.py; the function runs on the runtime it was built for
                      (`authorizer_runtime()`, also in `self.runtime`)
    route_table_path  where the route table sits inside the asset (becomes AUTHGATE_POLICY)
    api_name          which API of the route table this function guards (becomes AUTHGATE_API)
    settings          further AUTHGATE_* variables the handler reads (e.g. the HTTP API cache settings it checks)
    revocation_table  the RevocationTable (stacks/aws/revocation_table) when the API has DPoP or denylist routes:
                      the function gets its name and the narrow grants it needs
    metrics_namespace the CloudWatch namespace of the metrics in its audit lines; default authgate/<stage name>
                      (plain authgate outside a stage), so two stages in one account never share a metric
    """

    def __init__(self, scope: Construct, id_: str, *, kind: str, code: lambda_.Code, route_table_path: str,
                 api_name: str, architecture: lambda_.Architecture = lambda_.Architecture.ARM_64,
                 memory_size: int = 512, timeout: Duration = Duration.seconds(5),
                 log_retention: logs.RetentionDays = DEFAULT_RETENTION,
                 settings: Mapping[str, str] | None = None, metrics_namespace: str | None = None,
                 reads_secrets: bool = False, revocation_table: Any = None) -> None:
        super().__init__(scope, id_)
        if kind not in AUTHORIZER_HANDLERS:
            raise ValueError(f"authorizer kind {kind!r} is not one of {', '.join(AUTHORIZER_HANDLERS)}")
        if any(not key.startswith("AUTHGATE_") for key in settings or {}):
            raise ValueError(f"authorizer settings must be AUTHGATE_* variables, got {sorted(settings)}")
        if not route_table_path or route_table_path.startswith("/"):
            raise ValueError(f"route_table_path {route_table_path!r} must be a path relative to the asset root")
        self.metrics_namespace = check_namespace(metrics_namespace or default_metrics_namespace(self))
        # The one AWS API it may call: the shared revocation table (read entries, write DPoP replay records).
        grant = revocation_table.grant_authorizer if revocation_table is not None else None
        if revocation_table is not None:
            settings = {**(settings or {}), **revocation_table.environment}
        self.log_group, self.role, self.function = asset_function(
            self, handler=AUTHORIZER_HANDLERS[kind], code=code, architecture=architecture, memory_size=memory_size,
            timeout=timeout, log_retention=log_retention, description=f"authgate {kind} authorizer for API {api_name}",
            # Cookie routes: the session cookie keys come from Secrets Manager through the extension at init.
            reads_secrets=reads_secrets, grant=grant,
            environment={"AUTHGATE_POLICY": f"/var/task/{route_table_path}", "AUTHGATE_API": api_name,
                         "AUTHGATE_METRICS_NAMESPACE": self.metrics_namespace, **(settings or {})})
        runtime = self.runtime = self.function.runtime
        # `cdk synth` shows this; `authgate synth` prints the same choice.
        Annotations.of(self.function).add_info(
            f"authgate: {kind} authorizer runtime {runtime.name}: the interpreter that builds the asset compiles its "
            "bytecode, which only that Python version can use")
