"""Mutual TLS for APIs with `proof: mtls` routes: a custom domain whose truststore (a PEM bundle in S3) API Gateway
checks client certificates against, and the default execute-api endpoint switched off, because only the custom
domain passes the client certificate (requestContext ... clientCert) the authorizer compares with the token's
cnf x5t#S256. A request through execute-api would carry no certificate and every bound token would be refused."""
from __future__ import annotations

from dataclasses import dataclass

from stacks.aws.refusals import UnsupportedConfiguration

S3_SCHEME = "s3://"


@dataclass(frozen=True)
class MtlsDomainSettings:
    """domain_name        the API's custom domain, e.g. orders.api.example.com
    certificate_arn      an ACM certificate for it, in the API's region
    truststore_uri       s3://bucket/key of the PEM bundle of CAs that issue client certificates
    truststore_version   the S3 object version (recommended: a new bundle then needs a deliberate deploy)"""

    domain_name: str
    certificate_arn: str
    truststore_uri: str
    truststore_version: str | None = None

    def __post_init__(self) -> None:
        bucket, _, key = self.truststore_uri.removeprefix(S3_SCHEME).partition("/")
        if not self.truststore_uri.startswith(S3_SCHEME) or not bucket or not key:
            raise UnsupportedConfiguration(f"truststore_uri {self.truststore_uri!r} must be s3://bucket/key of a PEM "
                                           f"bundle")
        if not self.certificate_arn.startswith("arn:"):
            raise UnsupportedConfiguration(f"certificate_arn {self.certificate_arn!r} must be an ACM certificate ARN")

    @property
    def truststore_location(self) -> tuple[str, str]:
        """The truststore's S3 bucket name and object key, as the API Gateway constructs' MTLSConfig takes them."""
        bucket, _, key = self.truststore_uri.removeprefix(S3_SCHEME).partition("/")
        return bucket, key


def mtls_route_keys(api_routes) -> list[str]:
    """The API's routes with `proof: mtls`: they need the mutual TLS domain."""
    return [route.route_key for route in api_routes.routes if route.proof == "mtls"]


def require_mtls_domain(api_routes, settings: MtlsDomainSettings | None, *, api_name: str) -> bool:
    """Whether the API needs the mutual TLS domain; refuses an API with mtls routes and no settings."""
    needed = mtls_route_keys(api_routes)
    if needed and settings is None:
        raise UnsupportedConfiguration(
            f"API {api_name}: route(s) {', '.join(needed)} have proof: mtls, which needs a custom domain with mutual "
            f"TLS (API Gateway passes the client certificate only there); pass mtls_domain=MtlsDomainSettings("
            f"domain_name=..., certificate_arn=..., truststore_uri='s3://bucket/key')")
    return bool(needed)
