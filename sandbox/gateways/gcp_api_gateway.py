"""GCP API Gateway, emulated from the rendered OpenAPI 2.0 document (the same document the ApiConfig is built from).

What is read from the document: each securityDefinition's x-google-issuer, x-google-jwks_uri and x-google-audiences;
each operation's `security` (or the document-level default); path templates; x-google-backend's jwt_audience.
What the gateway checks (and therefore this emulator): signature, issuer, audience, expiry. Not scopes, not roles:
GCP's gateway cannot, which is why the backend guard enforces them from X-Apigateway-Api-Userinfo.
"""
from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urlsplit

from lambdas.validation import IssuerConfig, TokenRejected, Verifier
from sandbox.gateways.routing import GATEWAYS, GCP_API_GATEWAY
from sandbox.gateways.server import Decision

NAME = GCP_API_GATEWAY
USERINFO_HEADER = "X-Apigateway-Api-Userinfo"
# ESPv2 (the proxy behind API Gateway) verifies these JWS algorithms; HMAC is never configured for x-google-issuer.
GCP_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch")


GOOGLE_ISSUER = "https://accounts.google.com"
ID_TOKEN_LIFETIME_SECONDS = 3600


class GatewayServiceAccount:
    """The gateway's own Google identity: with x-google-backend.jwt_audience the real gateway calls the backend with
    a Google-signed ID token for its service account (iss accounts.google.com, aud the jwt_audience). The sandbox
    cannot have Google sign, so this stands in for Google's key: the backend's guard is given `jwks()` instead of
    Google's certificate URL, and verifies the token exactly as it would verify Google's."""

    def __init__(self, email: str = "authgate-gateway@sandbox-project.iam.gserviceaccount.com") -> None:
        from cryptography.hazmat.primitives.asymmetric import rsa
        self.email = email
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "sandbox-google-" + base64.urlsafe_b64encode(os.urandom(6)).decode().rstrip("=")

    def jwks(self) -> dict:
        numbers = self._key.public_key().public_numbers()
        return {"keys": [{"kty": "RSA", "kid": self.kid, "alg": "RS256", "use": "sig", "n": _b64_int(numbers.n),
                          "e": _b64_int(numbers.e)}]}

    def id_token(self, audience: str) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding
        now = int(time.time())
        header = {"alg": "RS256", "kid": self.kid, "typ": "JWT"}
        claims = {"iss": GOOGLE_ISSUER, "aud": audience, "sub": self.email,
                  "email": self.email, "email_verified": True, "iat": now, "exp": now + ID_TOKEN_LIFETIME_SECONDS}
        signing_input = f"{_b64_json(header)}.{_b64_json(claims)}".encode()
        signature = self._key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return signing_input.decode() + "." + base64.urlsafe_b64encode(signature).decode().rstrip("=")


def _b64_int(value: int) -> str:
    return base64.urlsafe_b64encode(value.to_bytes((value.bit_length() + 7) // 8, "big")).decode().rstrip("=")


def _b64_json(value: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).decode().rstrip("=")


class OpenApiEmulationError(ValueError):
    """The document cannot drive the emulator (and would not deploy as intended either)."""


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    operation_id: str
    security: tuple[tuple[str, ...], ...]  # any-of alternatives, each an all-of set of definition names


def _audiences(definition: Mapping[str, Any], name: str) -> tuple[str, ...]:
    raw = definition.get("x-google-audiences")
    if not raw:
        # The real gateway then expects aud == the service name; the renderer always sets audiences explicitly.
        raise OpenApiEmulationError(f"securityDefinitions.{name} has no x-google-audiences; the sandbox needs the "
                                    "accepted audiences spelled out")
    return tuple(a.strip() for a in str(raw).split(",") if a.strip())


class GcpApiGatewayEmulator:
    """Decides requests the way the gateway configured by `openapi` would."""

    name = NAME

    def __init__(self, openapi: Mapping[str, Any], *, service_account: GatewayServiceAccount | None = None,
                 verifier_options: Mapping[str, Any] | None = None) -> None:
        self.service_account = service_account
        if openapi.get("swagger") != "2.0":
            raise OpenApiEmulationError("GCP API Gateway takes OpenAPI 2.0 (swagger: '2.0') documents")
        definitions = openapi.get("securityDefinitions") or {}
        issuers = []
        for name, definition in definitions.items():
            if "x-google-issuer" not in definition:
                continue
            issuer = definition["x-google-issuer"]
            jwks_uri = definition.get("x-google-jwks_uri")
            loopback = any(urlsplit(u or "").hostname in ("127.0.0.1", "localhost", "::1") for u in (issuer, jwks_uri))
            issuers.append(IssuerConfig(issuer=issuer, audiences=_audiences(definition, name), jwks_uri=jwks_uri,
                                        algorithms=GCP_ALGORITHMS, name=name, token_use=None,
                                        allow_insecure_http=loopback))
        self.issuer_names = tuple(c.name for c in issuers)
        self.verifier = Verifier(issuers, **dict(verifier_options or {})) if issuers else None
        default_security = openapi.get("security")
        backend = openapi.get("x-google-backend") or {}
        self.backend_jwt_audience = backend.get("jwt_audience")
        self.backend_address = backend.get("address")
        if self.backend_jwt_audience and service_account is None:
            raise OpenApiEmulationError("x-google-backend.jwt_audience is set: the gateway calls the backend with "
                                        "its service account's ID token; pass service_account")
        self.operations: list[Operation] = []
        for template, item in (openapi.get("paths") or {}).items():
            for method in HTTP_METHODS:
                operation = item.get(method)
                if operation is None:
                    continue
                security = operation.get("security", default_security) or []
                alternatives = tuple(tuple(req) for req in security)
                unknown = {n for alt in alternatives for n in alt} - set(self.issuer_names)
                if unknown:
                    raise OpenApiEmulationError(f"{method.upper()} {template} requires security definitions "
                                                f"{sorted(unknown)} that have no x-google-issuer")
                self.operations.append(Operation(method.upper(), template, operation.get("operationId", ""),
                                                 alternatives))
        self.router = GATEWAYS[GCP_API_GATEWAY].router((op.method, op.template, op) for op in self.operations)

    def match(self, method: str, path: str) -> Operation | None:
        """The operation, selected as the runtime selects routes (sandbox/gateways/routing.py)."""
        return self.router.match(method, path)

    def decide(self, method: str, path: str, headers: Mapping[str, str], *,
               client_ip: str = "127.0.0.1") -> Decision:
        path_only = path.split("?", 1)[0]
        operation = self.match(method, path_only)
        if operation is None:
            return Decision.refuse(404, "The current request is not defined by this API.", code="no_route",
                                   checked="route lookup")
        if not operation.security:
            return Decision(allowed=True, checked=f"{operation.operation_id or operation.template}: no security")
        token = _bearer(headers.get("authorization", ""))
        if not token:
            return Decision.refuse(401, "Jwt is missing", code="malformed", checked="Authorization: Bearer")
        names = sorted({n for alt in operation.security for n in alt})
        checked = (f"signature, iss, aud, exp against {', '.join(names)} (no scopes: GCP cannot check them); "
                   "backend called with the gateway's ID token, caller's token in X-Forwarded-Authorization")
        last: TokenRejected | None = None
        for alternative in operation.security:
            try:
                for name in alternative:
                    self.verifier.authenticate(token, issuers=[name])
            except TokenRejected as err:
                last = err
                continue
            forward = {USERINFO_HEADER: _userinfo(token)}
            drop: frozenset[str] = frozenset()
            if self.backend_jwt_audience:
                # The gateway calls a private backend with its own identity token; the caller's moves aside.
                forward["X-Forwarded-Authorization"] = headers.get("authorization", "")
                forward["Authorization"] = "Bearer " + self.service_account.id_token(self.backend_jwt_audience)
            return Decision(allowed=True, checked=checked, set_headers=forward, drop_headers=drop)
        assert last is not None
        return Decision.refuse(401, f"Jwt verification fails: {last.message}", code=last.code, checked=checked)


def _bearer(authorization: str) -> str:
    scheme, _, value = authorization.strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def _userinfo(token: str) -> str:
    """GCP forwards the verified JWT payload, base64url-encoded (no padding), as X-Apigateway-Api-Userinfo."""
    payload = token.split(".")[1]
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
