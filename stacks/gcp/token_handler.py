"""Browser sign-in on GCP: authgate's token handler (its ASGI app under `authgate serve token-handler`) as a Cloud Run
service behind the HTTPS load balancer that serves the SPA's origin, reading its two secrets from Secret Manager."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

import pulumi
import pulumi_gcp as gcp

from stacks.gcp.cloud_run import INGRESS_BEHIND_LOAD_BALANCER, INVOKER_ROLE
from stacks.gcp.naming import require_id, require_region

SECRET_ACCESSOR_ROLE = "roles/secretmanager.secretAccessor"
# Browsers call it through the load balancer without a Google identity; ingress keeps the run.app URL closed.
PUBLIC_INVOKER = "allUsers"


@dataclass(frozen=True, kw_only=True)
class TokenHandlerServiceArgs:
    """service_name / location / project   where it runs
    image            the authgate image (Dockerfile; started as `authgate serve token-handler`)
    config           the web client's token handler configuration (`render_token_handler`), no secret in it
    client_secret_id / cookie_keys_id   Secret Manager secret ids holding the client secret and the cookie keys
    """

    service_name: str
    location: str
    image: pulumi.Input[str]
    config: Mapping[str, Any]
    client_secret_id: pulumi.Input[str]
    cookie_keys_id: pulumi.Input[str]
    project: pulumi.Input[str] | None = None

    def __post_init__(self) -> None:
        require_id(self.service_name, field="service_name", min_len=1, max_len=49, example="shop-auth")
        require_region(self.location, field="location", service="Cloud Run")
        if self.config.get("format") != "authgate.token-handler/v1":
            raise ValueError("config must be the token handler configuration `authgate render token-handler` writes")
        if not str(self.config.get("origin", "")).startswith("https://"):
            raise ValueError(f"config origin {self.config.get('origin')!r} must be https:// outside the sandbox")


class TokenHandlerService(pulumi.ComponentResource):
    """A Cloud Run v2 service running the token handler with its own service account, which may read exactly its two
    secrets; ingress only from the load balancer."""

    service: gcp.cloudrunv2.Service
    service_account: gcp.serviceaccount.Account
    uri: pulumi.Output[str]

    def __init__(self, name: str, args: TokenHandlerServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("authgate:gcp:TokenHandlerService", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.service_account = gcp.serviceaccount.Account(
            f"{name}-sa", account_id=f"th-{args.service_name}"[:30], project=args.project,
            display_name=f"authgate token handler {args.service_name}", opts=child)
        member = self.service_account.email.apply(lambda email: f"serviceAccount:{email}")
        self.secret_grants = [
            gcp.secretmanager.SecretIamMember(f"{name}-{label}-reader", secret_id=secret_id, project=args.project,
                                              role=SECRET_ACCESSOR_ROLE, member=member, opts=child)
            for label, secret_id in (("client-secret", args.client_secret_id), ("cookie-keys", args.cookie_keys_id))]

        def from_secret(variable: str, secret_id: pulumi.Input[str]) -> gcp.cloudrunv2.ServiceTemplateContainerEnvArgs:
            return gcp.cloudrunv2.ServiceTemplateContainerEnvArgs(
                name=variable, value_source=gcp.cloudrunv2.ServiceTemplateContainerEnvValueSourceArgs(
                    secret_key_ref=gcp.cloudrunv2.ServiceTemplateContainerEnvValueSourceSecretKeyRefArgs(
                        secret=secret_id, version="latest")))

        container = gcp.cloudrunv2.ServiceTemplateContainerArgs(
            image=args.image, args=["serve", "token-handler", "--listen", "0.0.0.0:8080"],
            ports=gcp.cloudrunv2.ServiceTemplateContainerPortsArgs(container_port=8080),
            envs=[gcp.cloudrunv2.ServiceTemplateContainerEnvArgs(
                      name="AUTHGATE_TOKEN_HANDLER_CONFIG", value=json.dumps(dict(args.config), sort_keys=True)),
                  from_secret("AUTHGATE_CLIENT_SECRET", args.client_secret_id),
                  from_secret("AUTHGATE_COOKIE_KEYS", args.cookie_keys_id)])
        self.service = gcp.cloudrunv2.Service(
            f"{name}-service", name=args.service_name, location=args.location, project=args.project,
            ingress=INGRESS_BEHIND_LOAD_BALANCER, invoker_iam_disabled=False, deletion_protection=True,
            template=gcp.cloudrunv2.ServiceTemplateArgs(containers=[container],
                                                        service_account=self.service_account.email),
            opts=pulumi.ResourceOptions(parent=self, depends_on=self.secret_grants))
        self.invoker = gcp.cloudrunv2.ServiceIamBinding(
            f"{name}-invokers", name=self.service.name, location=args.location, project=args.project,
            role=INVOKER_ROLE, members=[PUBLIC_INVOKER], opts=child)
        self.uri = self.service.uri
        self.register_outputs({"uri": self.uri, "service_account": self.service_account.email})
