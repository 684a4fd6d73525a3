"""Behind Google Cloud: API Gateway's `X-Apigateway-Api-Userinfo` and Identity-Aware Proxy's `x-goog-iap-jwt-assertion`.

API Gateway (x-google-issuer) verifies the caller's JWT and forwards its claims, base64url JSON, in
X-Apigateway-Api-Userinfo; it cannot check roles or most claims, so the backend enforces those here. It cannot
check a DPoP proof or a client certificate either, and neither reaches the backend, so claims with cnf.jkt or
cnf x5t#S256 (a bound token, presented without what binds it) are refused. The header is
only as trustworthy as the path it came by: anyone who can call the backend directly can write it. GcpGatewayGuard
therefore refuses it unless the request provably came through the gateway:
  gateway_verifier  (recommended) a Verifier for the Google-signed ID token the gateway sends as `Authorization`
                    when it calls the backend (backend jwt_audience): issuer https://accounts.google.com, audience
                    the backend URL; its `email` must be `gateway_service_account`. The caller's own token then
                    arrives in X-Forwarded-Authorization.
  private_ingress=True  the operator asserts the backend is a private Cloud Run service whose only invoker is the
                    gateway's service account (roles/run.invoker), so Cloud Run's IAM already refused everyone else.
One of the two must be chosen; there is no default trust.

IAP signs `x-goog-iap-jwt-assertion` with ES256 keys published at https://www.gstatic.com/iap/verify/public_key-jwk,
issuer https://cloud.google.com/iap, and an audience in one of three forms:
/projects/<number>/global/backendServices/<id> (global load balancer),
/projects/<number>/regions/<region>/backendServices/<id> (regional load balancer) or
/projects/<number>/apps/<project-id> (App Engine). The token's aud must equal the configured audience exactly.
iap_issuer_config() builds that IssuerConfig for the shared Verifier, so it is checked like any other token.
"""
from __future__ import annotations

import re
from typing import Any

from lambdas.validation.config import IssuerConfig
from lambdas.validation.errors import TokenRejected
from lambdas.validation.jwk import b64url_bytes
from lambdas.validation.names import name_set
from lambdas.validation.possession import refuse_bound_forwarded_claims
from lambdas.validation.principal import build_principal
from lambdas.validation.profiles import PROFILES
from lambdas.validation.route_decision import bearer_token

from .identity_header import identity_json, unpadded_b64url
from .require import header_value

USERINFO_HEADER = "x-apigateway-api-userinfo"
IAP_HEADER = "x-goog-iap-jwt-assertion"
IAP_ISSUER = "https://cloud.google.com/iap"
IAP_JWKS_URI = "https://www.gstatic.com/iap/verify/public_key-jwk"
GOOGLE_ISSUER = "https://accounts.google.com"
GOOGLE_JWKS_URI = "https://www.googleapis.com/oauth2/v3/certs"
MAX_USERINFO_BYTES = 16 * 1024
# The three audience forms IAP signs: global and regional backend services, App Engine. Matched whole (fullmatch:
# `$` would let a trailing newline through) and with ASCII digits only (`\d` is any Unicode digit).
_IAP_AUDIENCE = re.compile(r"/projects/[0-9]+/(?:global/backendServices/[0-9]+"
                           r"|regions/[a-z]+(?:-[a-z]+)+[0-9]+/backendServices/[0-9]+"
                           r"|apps/[a-z][a-z0-9-]{4,28}[a-z0-9])")
IAP_AUDIENCE_FORMS = ("/projects/<number>/global/backendServices/<id>",
                      "/projects/<number>/regions/<region>/backendServices/<id>",
                      "/projects/<number>/apps/<project-id>")


def iap_issuer_config(audience: str, *, jwks: dict | None = None, name: str = "iap") -> IssuerConfig:
    """The IssuerConfig for IAP assertions to `audience` (jwks: in-memory keys instead of Google's endpoint)."""
    if not isinstance(audience, str) or not _IAP_AUDIENCE.fullmatch(audience):
        raise ValueError(f"IAP audience must be one of {', '.join(IAP_AUDIENCE_FORMS)} exactly (the backend "
                         f"service's numeric id, not its name; see the IAP page or `gcloud compute backend-services "
                         f"describe`), got {audience!r}")
    return IssuerConfig(IAP_ISSUER, [audience], jwks=jwks, jwks_uri=None if jwks else IAP_JWKS_URI,
                        algorithms=("ES256",), profile="generic", name=name, token_use=None)


def gateway_issuer_config(backend_audience: str, *, jwks: dict | None = None, name: str = "gcp-gateway",
                          allow_insecure_http: bool = False) -> IssuerConfig:
    """The IssuerConfig for the ID token API Gateway presents to its backend (audience: the backend's URL)."""
    return IssuerConfig(GOOGLE_ISSUER, [backend_audience], jwks=jwks, jwks_uri=None if jwks else GOOGLE_JWKS_URI,
                        algorithms=("RS256",), profile="google", name=name, token_use="id",
                        allow_insecure_http=allow_insecure_http)


class IapGuard:
    """Verifies x-goog-iap-jwt-assertion with a Verifier built over iap_issuer_config()."""

    def __init__(self, verifier: Any) -> None:
        self.verifier = verifier

    def authenticate(self, headers: Any) -> Any:
        assertion = header_value(headers, IAP_HEADER)
        if not assertion:
            raise TokenRejected("malformed", f"the request has no {IAP_HEADER} header",
                                hint="the backend must only be reachable through IAP")
        return self.verifier.authenticate(assertion)


def decode_userinfo(value: str) -> dict:
    """X-Apigateway-Api-Userinfo: base64url (padding optional) of the verified claims as a JSON object."""
    if len(value) > MAX_USERINFO_BYTES:
        raise TokenRejected("token_too_large", f"{USERINFO_HEADER} exceeds {MAX_USERINFO_BYTES} bytes")
    raw = b64url_bytes(unpadded_b64url(value, USERINFO_HEADER)) if value else None
    if raw is None:
        raise TokenRejected("malformed", f"{USERINFO_HEADER} is not base64url")
    return identity_json(raw, USERINFO_HEADER)


class GcpGatewayGuard:
    """Reads X-Apigateway-Api-Userinfo after proving the request came through the gateway (see module docstring).

    issuers                  the iss values the gateway is configured to accept (x-google-issuer); others refused
    gateway_verifier         Verifier over gateway_issuer_config(); with gateway_service_account
    private_ingress          True to rely on Cloud Run IAM instead (explicit)
    profile                  how to read scopes/roles/tenant from the claims (generic, entra, google, ...)
    """

    def __init__(self, *, issuers: list[str], gateway_verifier: Any = None, gateway_service_account: str | None = None,
                 private_ingress: bool = False, profile: str = "generic", issuer_name: str = "gcp-gateway") -> None:
        if gateway_verifier is None and not private_ingress:
            raise ValueError("GcpGatewayGuard needs gateway_verifier (verify the gateway's ID token) or "
                             "private_ingress=True (Cloud Run allows only the gateway's service account to invoke)")
        if gateway_verifier is not None and not gateway_service_account:
            raise ValueError("gateway_service_account is required with gateway_verifier: the ID token must be the "
                             "gateway's, not any Google identity's")
        self.issuers = name_set(issuers, "issuers")
        if not self.issuers:
            raise ValueError("issuers must list the iss values the gateway accepts")
        self.gateway_verifier = gateway_verifier
        self.gateway_service_account = gateway_service_account
        self.profile = PROFILES[profile]
        self.issuer_name = issuer_name

    def _check_gateway(self, headers: Any) -> None:
        if self.gateway_verifier is None:
            return
        gateway = self.gateway_verifier.authenticate(bearer_token(header_value(headers, "authorization")))
        if gateway.claims.get("email") != self.gateway_service_account or \
                gateway.claims.get("email_verified") is False:
            raise TokenRejected("unknown_issuer", "the request was not sent by the API Gateway's service account",
                                expected=self.gateway_service_account, found=str(gateway.claims.get("email"))[:100])

    def authenticate(self, headers: Any) -> Any:
        self._check_gateway(headers)
        value = header_value(headers, USERINFO_HEADER)
        if not value:
            raise TokenRejected("malformed", f"the request has no {USERINFO_HEADER} header",
                                hint="the route must have a security requirement in the gateway's OpenAPI document")
        claims = decode_userinfo(value)
        iss = claims.get("iss")
        if type(iss) is not str or iss not in self.issuers:  # an array or object is unhashable: refuse, not raise
            raise TokenRejected("unknown_issuer", f"{USERINFO_HEADER} names an issuer this backend does not accept",
                                expected=sorted(self.issuers), found=str(iss)[:200])
        # The gateway forwards a DPoP-bound or certificate-bound token's claims like any other's, without the
        # proof or certificate that makes it usable: refused here, as the route decision refuses it as Bearer.
        refuse_bound_forwarded_claims(claims, forwarded_by=f"GCP API Gateway ({USERINFO_HEADER})")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise TokenRejected("missing_claim", f"{USERINFO_HEADER} has no sub")
        client, scopes, roles, groups, tenant = self.profile.identity(claims, "access")
        aud = claims.get("aud")
        audience = tuple(aud) if isinstance(aud, list) else ((aud,) if isinstance(aud, str) else ())
        exp = claims.get("exp") if isinstance(claims.get("exp"), int) else 0
        return build_principal(sub, iss, self.issuer_name, client, audience, scopes, roles, groups, tenant, "access",
                               claims.get("jti") if isinstance(claims.get("jti"), str) else None, exp, claims)
