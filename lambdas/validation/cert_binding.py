"""Certificate-bound access tokens (RFC 8705 section 3): the client certificate's SHA-256 thumbprint and where a
gateway or a trusted proxy hands the certificate over.

API Gateway's mutual TLS passes the PEM to the authorizer (REST: requestContext.identity.clientCert.clientCertPem;
HTTP API: requestContext.authentication.clientCert.clientCertPem). A proxy in front of the forward-auth service
passes it in a header (Envoy's X-Forwarded-Client-Cert `Cert="..."`, NGINX's `$ssl_client_escaped_cert`), which
means something only when the request came from that proxy: the caller decides that (the forward-auth service's
trusted proxies, lambdas/forward_auth/proxy_facts.py), never this module. The headers are read strictly: one reading
only, or a ValueError.
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


# An XFCC header holds one element per proxy hop; a few hops of a few KB each.
MAX_XFCC_CHARS = 64 * 1024


def xfcc_elements(value: str) -> list[dict[str, list[str]]]:
    """Envoy's X-Forwarded-Client-Cert as elements (one per proxy hop, in order: the first is the hop nearest the
    client): each a dict of lower-case key -> every value (URI and DNS may repeat). The grammar is Envoy's: elements
    separated by ',', key=value pairs by ';', a value holding ',', ';' or '=' double-quoted with '\\"' for a quote.
    Raises ValueError for anything else (an unterminated quote, a pair without '=', text after a closing quote):
    a header that cannot be read one way only is refused, never guessed at."""
    if not isinstance(value, str) or len(value) > MAX_XFCC_CHARS:
        raise ValueError(f"X-Forwarded-Client-Cert must be text of at most {MAX_XFCC_CHARS} characters")
    elements: list[dict[str, list[str]]] = []
    element: dict[str, list[str]] = {}
    index, length = 0, len(value)
    while True:
        equals = value.find("=", index)
        key = value[index:equals].strip().lower() if equals >= 0 else ""
        if equals < 0 or not key or any(c in key for c in ',;"'):
            raise ValueError(f"X-Forwarded-Client-Cert: expected KEY=VALUE at character {index}")
        index = equals + 1
        if index < length and value[index] == '"':
            chars, index = [], index + 1
            while index < length and value[index] != '"':
                if value[index] == "\\" and index + 1 < length:
                    index += 1
                chars.append(value[index])
                index += 1
            if index >= length:
                raise ValueError(f"X-Forwarded-Client-Cert: the quoted value of {key} is not closed")
            text, index = "".join(chars), index + 1
            end = index
            while end < length and value[end] not in ",;":
                end += 1
            if value[index:end].strip():
                raise ValueError(f"X-Forwarded-Client-Cert: text after the quoted value of {key}")
            index = end
        else:
            end = index
            while end < length and value[end] not in ",;":
                end += 1
            text, index = value[index:end].strip(), end
            if '"' in text or "=" in text:
                raise ValueError(f"X-Forwarded-Client-Cert: the value of {key} holds a quote or '=' unquoted")
        element.setdefault(key, []).append(text)
        if index >= length or value[index] == ",":
            elements.append(element)
            element = {}
        if index >= length:
            return elements
        index += 1


def xfcc_client_certificate(value: str | None) -> str | None:
    """The client certificate PEM in a trusted proxy's X-Forwarded-Client-Cert (Envoy, Envoy Gateway, Istio:
    `Cert="<URL-encoded PEM>"`), or None when no hop recorded one (an Istio sidecar's own hop carries only Hash,
    URI and By).

    The certificate must be the edge proxy's: in the first element, and in no other. A second certificate means the
    header names two clients, and which one is "the" client would be a guess (a client's own XFCC that a
    misconfigured edge appended to, say): refused. So is a Cert that is not one PEM certificate, or one whose
    element's Hash (hex SHA-256 of the DER, which Envoy writes beside it) names another certificate."""
    if value is None or not value.strip():
        return None
    elements = xfcc_elements(value)
    holding = [number for number, element in enumerate(elements) if "cert" in element]
    if not holding:
        return None
    if holding != [0] or len(elements[0]["cert"]) != 1:
        raise ValueError("X-Forwarded-Client-Cert names more than one client certificate (or not in its first "
                         "element); the edge proxy must set the header (Envoy SANITIZE_SET), not append to a "
                         "client's")
    pem = _one_pem_certificate(elements[0]["cert"][0], "X-Forwarded-Client-Cert Cert")
    hashes = elements[0].get("hash") or []
    if hashes:
        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import Encoding

        der = x509.load_pem_x509_certificate(pem.encode("ascii")).public_bytes(Encoding.DER)
        if [h.lower() for h in hashes] != [hashlib.sha256(der).hexdigest()]:
            raise ValueError("X-Forwarded-Client-Cert: the element's Hash is not the SHA-256 of its Cert")
    return pem


def escaped_client_certificate(value: str | None) -> str | None:
    """The client certificate PEM in NGINX's `$ssl_client_escaped_cert` (URL-encoded PEM, the leaf only), as the
    rendered NGINX configuration forwards it (X-Client-Cert), or None when the connection presented none."""
    if value is None or not value.strip():
        return None
    return _one_pem_certificate(value, "X-Client-Cert")


def _one_pem_certificate(encoded: str, where: str) -> str:
    from urllib.parse import unquote  # only proxies forward certificates: a Lambda decision never gets here

    pem = unquote(encoded, errors="strict")
    blocks = _PEM_CERTIFICATE.findall(pem)
    if len(blocks) != 1 or pem.count("-----BEGIN") != 1:
        raise ValueError(f"{where} must hold exactly one URL-encoded PEM certificate, found {len(blocks)}")
    certificate_thumbprint(pem)  # raises ValueError when it does not parse
    return pem


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
           "escaped_client_certificate", "xfcc_client_certificate", "xfcc_elements"]
