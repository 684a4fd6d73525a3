"""Certificate-bound access tokens (RFC 8705 section 3): the client certificate's SHA-256 thumbprint and where a
gateway or a trusted proxy hands the certificate over.

API Gateway's mutual TLS passes the PEM to the authorizer (REST: requestContext.identity.clientCert.clientCertPem;
HTTP API: requestContext.authentication.clientCert.clientCertPem). A proxy in front of the forward-auth service
passes it in a header (Envoy's X-Forwarded-Client-Cert `Cert="..."`, NGINX's `$ssl_client_escaped_cert`), which
means something only when the request came from that proxy: the caller decides that, never this module.
"""
from __future__ import annotations

import hashlib
import re
from typing import Any, Mapping

from .errors import TokenRejected
from .jwk import b64url_encode

# A client certificate chain of a few certificates is a few KB; anything far larger is not one.
MAX_CERTIFICATE_PEM_CHARS = 32 * 1024
_PEM_CERTIFICATE = re.compile(r"-----BEGIN CERTIFICATE-----\s*([A-Za-z0-9+/=\s]+?)\s*-----END CERTIFICATE-----")
_XFCC_CERT = re.compile(r'(?:^|;)\s*Cert="([^"]*)"', re.IGNORECASE)


def certificate_thumbprint(pem: str) -> str:
    """base64url(SHA-256(DER)) of the first (leaf) certificate in `pem`: what cnf["x5t#S256"] holds. Raises
    ValueError when `pem` holds no parseable certificate."""
    if not isinstance(pem, str) or len(pem) > MAX_CERTIFICATE_PEM_CHARS:
        raise ValueError("the client certificate must be PEM text of a sensible size")
    match = _PEM_CERTIFICATE.search(pem)
    if match is None:
        raise ValueError("no PEM certificate (-----BEGIN CERTIFICATE-----) found")
    from cryptography import x509

    try:
        certificate = x509.load_pem_x509_certificate(match.group(0).encode("ascii"))
    except ValueError as exc:
        raise ValueError(f"the PEM certificate cannot be parsed: {exc}") from None
    from cryptography.hazmat.primitives.serialization import Encoding

    return b64url_encode(hashlib.sha256(certificate.public_bytes(Encoding.DER)).digest())


def api_gateway_client_certificate(event: Mapping[str, Any]) -> str | None:
    """The client certificate PEM of an API Gateway event with mutual TLS (REST v1 or HTTP API v2), else None."""
    context = event.get("requestContext")
    if not isinstance(context, Mapping):
        return None
    for holder in (context.get("authentication"), context.get("identity")):
        if isinstance(holder, Mapping):
            cert = holder.get("clientCert")
            if isinstance(cert, Mapping) and isinstance(cert.get("clientCertPem"), str):
                return cert["clientCertPem"]
    return None


def forwarded_client_certificate(value: str | None) -> str | None:
    """The client certificate PEM a trusted proxy forwarded: Envoy's X-Forwarded-Client-Cert (the `Cert="..."`
    element of the first entry, URL-encoded PEM) or NGINX's `$ssl_client_escaped_cert` (URL-encoded PEM)."""
    if not isinstance(value, str) or not value:
        return None
    first = value.split(",", 1)[0] if "Cert=" in value else value
    match = _XFCC_CERT.search(first)
    encoded = match.group(1) if match else value
    from urllib.parse import unquote  # only proxies forward certificates: a Lambda decision never gets here

    pem = unquote(encoded)
    return pem if "-----BEGIN CERTIFICATE-----" in pem else None


def check_certificate_binding(bound_thumbprint: str, client_certificate: str | None) -> None:
    """Raise TokenRejected unless the mutual TLS client certificate is the one the token is bound to."""
    if not client_certificate:
        raise TokenRejected("certificate_required", "the token is bound to a client certificate, and the request "
                            "came without one", hint="call over mutual TLS with the certificate the token was "
                            "issued to (the API's mTLS custom domain)")
    try:
        found = certificate_thumbprint(client_certificate)
    except ValueError as exc:
        raise TokenRejected("certificate_required", f"the client certificate cannot be read: {exc}") from None
    if found != bound_thumbprint:
        raise TokenRejected("certificate_mismatch", "the token is bound to another client certificate than the one "
                            "this connection presented (cnf x5t#S256)", expected=bound_thumbprint[:16],
                            found=found[:16], hint="use the token with the certificate it was issued to")


__all__ = ["api_gateway_client_certificate", "certificate_thumbprint", "check_certificate_binding",
           "forwarded_client_certificate"]
