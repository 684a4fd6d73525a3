"""Pulumi components for GCP: Identity Platform issuer, API Gateway with a private backend, IAP, GitHub federation."""
from stacks.gcp.api_gateway import ApiGateway, ApiGatewayArgs
from stacks.gcp.cloud_run import PrivateCloudRunService, PrivateCloudRunServiceArgs
from stacks.gcp.github_federation import GithubActionsFederation, GithubActionsFederationArgs
from stacks.gcp.iap import IapWebBackend, IapWebBackendArgs
from stacks.gcp.identity_platform import IdentityPlatformIssuer, IdentityPlatformIssuerArgs, OidcFederationProvider
from stacks.gcp.token_handler import TokenHandlerService, TokenHandlerServiceArgs

__all__ = [
    "ApiGateway", "ApiGatewayArgs",
    "GithubActionsFederation", "GithubActionsFederationArgs",
    "IapWebBackend", "IapWebBackendArgs",
    "IdentityPlatformIssuer", "IdentityPlatformIssuerArgs", "OidcFederationProvider",
    "PrivateCloudRunService", "PrivateCloudRunServiceArgs",
    "TokenHandlerService", "TokenHandlerServiceArgs",
]
