"""GCP API Gateway in front of a private Cloud Run backend that only the gateway's own service account may invoke."""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import pulumi
import pulumi_gcp as gcp

from stacks.gcp.cloud_run import INGRESS_BEHIND_API_GATEWAY, PrivateCloudRunService, PrivateCloudRunServiceArgs
from stacks.gcp.naming import require_id, require_region

# Builds the gateway's OpenAPI 2.0 document once the backend's URL is known (the document's x-google-backend
# address and jwt_audience are that URL). In the program this is stacks.policy.render.render_openapi bound to a
# policy and an API name.
OpenApiForBackend = Callable[[str], "Mapping[str, Any] | str"]
# A stand-in for the backend URL (known only once Cloud Run has created the service) to build the document with early.
PLACEHOLDER_BACKEND_URL = "https://backend-placeholder.a.run.app"


def openapi_document_text(document: "Mapping[str, Any] | str") -> str:
    """The document as JSON text, keys sorted so an unchanged policy never produces a new (immutable) config."""
    if isinstance(document, str):
        return document
    return json.dumps(document, sort_keys=True, indent=2)


@dataclass(frozen=True, kw_only=True)
class ApiGatewayArgs:
    """An API Gateway for one API of the policy and the Cloud Run backend behind it."""

    api_id: str
    region: str
    backend_image: pulumi.Input[str]
    openapi_for_backend: OpenApiForBackend
    backend_runtime_service_account: pulumi.Input[str] | None = None
    backend_port: int = 8080
    deletion_protection: bool = True
    project: pulumi.Input[str] | None = None

    def __post_init__(self) -> None:
        # The api id also names the gateway's service account (6-30 chars, "gw-" prefix) and the config prefix.
        require_id(self.api_id, field="api_id", min_len=3, max_len=27, example="orders")
        require_region(self.region, field="region", service="API Gateway")
        if not callable(self.openapi_for_backend):
            raise ValueError("openapi_for_backend must be a function from the backend URL to an OpenAPI 2.0 document")
        # Built once now, so a policy API the gateway cannot enforce (render_openapi refuses it: a freshness or proof
        # route, a Cognito access-token issuer, ...) is refused when the component is declared, not in the middle of
        # `pulumi up` after the backend exists (during preview the real URL is unknown and the document is not built).
        self.openapi_for_backend(PLACEHOLDER_BACKEND_URL)


class ApiGateway(pulumi.ComponentResource):
    """Api + ApiConfig (immutable, replaced on change) + Gateway, and the backend only the gateway may call."""

    service_account: gcp.serviceaccount.Account
    backend: PrivateCloudRunService
    api: gcp.apigateway.Api
    api_config: gcp.apigateway.ApiConfig
    gateway: gcp.apigateway.Gateway
    openapi_document: pulumi.Output[str]
    gateway_url: pulumi.Output[str]

    def __init__(self, name: str, args: ApiGatewayArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("authgate:gcp:ApiGateway", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.service_account = gcp.serviceaccount.Account(
            f"{name}-gateway-sa",
            account_id=f"gw-{args.api_id}",
            display_name=f"API Gateway {args.api_id}: the only identity allowed to invoke its backend",
            project=args.project,
            opts=child,
        )
        gateway_member = self.service_account.email.apply(lambda email: f"serviceAccount:{email}")
        self.backend = PrivateCloudRunService(
            f"{name}-backend",
            PrivateCloudRunServiceArgs(
                service_name=f"{args.api_id}-backend",
                location=args.region,
                image=args.backend_image,
                invokers=[gateway_member],
                ingress=INGRESS_BEHIND_API_GATEWAY,
                runtime_service_account=args.backend_runtime_service_account,
                container_port=args.backend_port,
                deletion_protection=args.deletion_protection,
                project=args.project,
            ),
            opts=child,
        )
        self.openapi_document = self.backend.uri.apply(
            lambda uri: openapi_document_text(args.openapi_for_backend(uri)))

        self.api = gcp.apigateway.Api(f"{name}-api", api_id=args.api_id, project=args.project, opts=child)
        # Configs cannot be edited in place. A generated id (from the prefix) lets Pulumi create the new config,
        # point the gateway at it, and only then delete the old one, so a policy change never drops traffic.
        self.api_config = gcp.apigateway.ApiConfig(
            f"{name}-config",
            api=self.api.api_id,
            api_config_id_prefix=f"{args.api_id}-",
            project=args.project,
            openapi_documents=[gcp.apigateway.ApiConfigOpenapiDocumentArgs(
                document=gcp.apigateway.ApiConfigOpenapiDocumentDocumentArgs(
                    path="openapi.json",
                    contents=self.openapi_document.apply(lambda text: base64.b64encode(text.encode()).decode()),
                ),
            )],
            gateway_config=gcp.apigateway.ApiConfigGatewayConfigArgs(
                backend_config=gcp.apigateway.ApiConfigGatewayConfigBackendConfigArgs(
                    google_service_account=self.service_account.email,
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self, replace_on_changes=["*"], delete_before_replace=False),
        )
        self.gateway = gcp.apigateway.Gateway(
            f"{name}-gateway",
            gateway_id=f"{args.api_id}-gateway",
            api_config=self.api_config.id,
            region=args.region,
            project=args.project,
            opts=child,
        )
        self.gateway_url = self.gateway.default_hostname.apply(lambda host: f"https://{host}")
        self.register_outputs({
            "gateway_url": self.gateway_url,
            "gateway_service_account": self.service_account.email,
            "backend_url": self.backend.uri,
            "api_config_id": self.api_config.api_config_id,
        })
