"""The echo backend Lambda: what the gateways route to when no backend of your own is given."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from aws_cdk import Duration, aws_iam as iam, aws_lambda as lambda_, aws_logs as logs
from constructs import Construct

from stacks.aws.authorizer_function.infrastructure import LAMBDA_CHECKOV_SKIPS
from stacks.aws.checkov import skip_checkov
from stacks.aws.log_group import DEFAULT_RETENTION, retained_log_group

RUNTIME_DIR = Path(__file__).resolve().parent / "runtime"


class EchoBackend(Construct):
    """A small Lambda answering each request with what the gateway passed on (the identity it admitted).

    handler / code_dir / description / environment   which echo: by default the HTTP one in ./runtime; the WebSocket
    API's connection echo (stacks/aws/websocket_api) gives its own
    """

    def __init__(self, scope: Construct, id_: str, *,
                 log_retention: logs.RetentionDays = DEFAULT_RETENTION, handler: str = "echo.handler",
                 code_dir: Path = RUNTIME_DIR, description: str = "authgate echo backend",
                 environment: Mapping[str, str] | None = None) -> None:
        super().__init__(scope, id_)
        self.log_group = retained_log_group(self, "Logs", retention=log_retention)
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                             description=description)
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self, "Function", runtime=lambda_.Runtime.PYTHON_3_14, architecture=lambda_.Architecture.ARM_64,
            handler=handler, code=lambda_.Code.from_asset(str(code_dir)), role=self.role,
            memory_size=128, timeout=Duration.seconds(3), log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON, description=description,
            environment=dict(environment) if environment else None)
        for check_id in ("CKV_AWS_115", "CKV_AWS_116", "CKV_AWS_117"):
            skip_checkov(self.function, check_id, LAMBDA_CHECKOV_SKIPS[check_id])
