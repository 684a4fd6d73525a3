"""What the forward-auth service takes from its proxy beyond the method and path: the URL the client called (a DPoP
proof's `htu`) and the client's TLS certificate (a certificate-bound token's), read only from a trusted proxy.

A proxy that terminates the client's connection knows both; the service only hears what the proxy writes into the
check request. Those headers mean something only when the proxy wrote them: the rendered NGINX configuration
overwrites `X-Forwarded-Proto`, `X-Forwarded-Host` and `X-Client-Cert` on every check, and Envoy sets
`X-Forwarded-Proto` and (SANITIZE_SET) `X-Forwarded-Client-Cert` itself, but anyone else who reaches the service
can write them too. So they are read only when the check request's TCP peer is one of
`AUTHGATE_FORWARD_AUTH_TRUSTED_PROXIES` (addresses or CIDR ranges; none by default). From any other peer they are
not read at all: the request is decided without a client certificate and, unless a public origin is configured,
without a URL, so certificate-bound and DPoP-bound tokens are refused (fail closed) while unbound tokens are decided
as before. The refusal says why.

Where the URL comes from, per convention:
  nginx, traefik  X-Forwarded-Proto and X-Forwarded-Host (the rendered NGINX block sets them from $scheme and
                  $http_host; Traefik's ForwardAuth sends them)
  envoy           X-Forwarded-Proto and the check request's own Host (Envoy's ext_authz keeps the client's authority)
`AUTHGATE_FORWARD_AUTH_PUBLIC_ORIGIN` (https://api.example.com) replaces both for every request, from any peer: it is
configuration, not a header, and the strongest choice when the service fronts one public origin.

The certificate, per convention: envoy `X-Forwarded-Client-Cert` (Envoy, Envoy Gateway, Istio), nginx
`X-Client-Cert` (the NGINX renderer's `$ssl_client_escaped_cert`), traefik none; parsed by
lambdas.validation.cert_binding. From a trusted proxy, a header sent twice, a malformed value or two certificates
are refused (400): the proxy is misconfigured, and which certificate counts must never be a guess.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Mapping, Sequence

from lambdas.validation.cert_binding import escaped_client_certificate, xfcc_client_certificate

from .conventions import BadCheckRequest, OriginalRequest, single_header

ENV_TRUSTED_PROXIES = "AUTHGATE_FORWARD_AUTH_TRUSTED_PROXIES"
ENV_PUBLIC_ORIGIN = "AUTHGATE_FORWARD_AUTH_PUBLIC_ORIGIN"
XFCC_HEADER = "x-forwarded-client-cert"
ESCAPED_CERT_HEADER = "x-client-cert"        # what the NGINX renderer sets from $ssl_client_escaped_cert
FORWARDED_HEADERS = ("x-forwarded-proto", "x-forwarded-host", XFCC_HEADER, ESCAPED_CERT_HEADER)
# The one header each convention's proxy writes the certificate into. The other is never read: NGINX passes a
# client's own X-Forwarded-Client-Cert on to auth_request unless told otherwise, and Traefik's ForwardAuth passes
# every client header (its passTLSClientCert header is not read: certificate-bound tokens are refused there).
CERTIFICATE_HEADERS = {"nginx": ESCAPED_CERT_HEADER, "envoy": XFCC_HEADER}
# The client request headers an Envoy-based gateway must include in its ext_authz check (Envoy always adds Host,
# method and path): the token, its DPoP proof, and the facts above. The renderers write this list.
ENVOY_CHECK_HEADERS = ("authorization", "dpop", "x-forwarded-proto", XFCC_HEADER)
_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
_ORIGIN = re.compile(r"(https?)://(" + _HOST.pattern + r")/?")

TrustedProxies = tuple  # of ipaddress.IPv4Network / IPv6Network


def parse_trusted_proxies(value: str | None) -> TrustedProxies:
    """`10.0.0.0/8, 127.0.0.1, fd00::/8` -> networks. Raises ValueError naming the entry that is not an address or
    a CIDR range."""
    networks = []
    for entry in (value or "").split(","):
        entry = entry.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{ENV_TRUSTED_PROXIES}: {entry!r} is not an IP address or CIDR range (write e.g. "
                             f"127.0.0.1, 10.0.0.0/8)") from None
    return tuple(networks)


def parse_public_origin(value: str | None) -> str | None:
    """`https://api.example.com[:port]` (no path) -> itself without a trailing '/'; None when unset. Raises
    ValueError otherwise."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if not _ORIGIN.fullmatch(value):
        raise ValueError(f"{ENV_PUBLIC_ORIGIN} must be an origin such as https://api.example.com (scheme, host, "
                         f"optional port, no path), found {value[:80]!r}")
    return value.rstrip("/")


def is_trusted(peer: str | None, trusted: TrustedProxies) -> bool:
    """Whether the check request's TCP peer address is one of the trusted proxies."""
    if not peer or not trusted:
        return False
    try:
        address = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in trusted)


@dataclass(frozen=True)
class ProxyFacts:
    """The request facts the proxy vouched for (None: not known), and why forwarded headers went unread."""

    request_uri: str | None
    client_certificate: str | None
    unread: str | None = None


def _single(headers: Mapping[str, Sequence[str]], name: str) -> str | None:
    value = single_header(headers, name)
    return (value.strip() or None) if value is not None else None


def _origin(original: OriginalRequest, headers: Mapping[str, Sequence[str]]) -> str | None:
    proto = _single(headers, "x-forwarded-proto")
    host = _single(headers, "host" if original.convention == "envoy" else "x-forwarded-host")
    if proto is None or host is None:
        return None
    proto = proto.lower()
    if proto not in ("http", "https"):
        raise BadCheckRequest(f"X-Forwarded-Proto must be http or https, found {proto[:20]!r}")
    if not _HOST.fullmatch(host):
        raise BadCheckRequest(f"the forwarded host {host[:80]!r} is not one HOST[:PORT]; the proxy must send the "
                              f"client's Host alone")
    return f"{proto}://{host}"


def _certificate(convention: str, headers: Mapping[str, Sequence[str]]) -> str | None:
    header = CERTIFICATE_HEADERS.get(convention)
    if header is None:
        return None
    read = xfcc_client_certificate if header == XFCC_HEADER else escaped_client_certificate
    try:
        return read(_single(headers, header))
    except ValueError as exc:
        raise BadCheckRequest(f"the forwarded client certificate cannot be read: {exc}") from None


def proxy_facts(original: OriginalRequest, headers: Mapping[str, Sequence[str]], *, peer: str | None,
                trusted: TrustedProxies, public_origin: str | None = None) -> ProxyFacts:
    """The URL and client certificate of the request `original` describes, from `headers` (lower-case name -> every
    value) when `peer` is a trusted proxy. Raises BadCheckRequest when a trusted proxy's headers cannot be read one
    way only."""
    fixed_uri = public_origin + original.path if public_origin else None
    if not is_trusted(peer, trusted):
        sent = [name for name in FORWARDED_HEADERS if headers.get(name)]
        unread = None
        if sent or fixed_uri is None:
            unread = (f"the check request came from {peer or 'an unknown peer'}, not a trusted proxy "
                      f"({ENV_TRUSTED_PROXIES}), so {', '.join(sent) or 'forwarded headers'} went unread")
        return ProxyFacts(fixed_uri, None, unread)
    origin = public_origin or _origin(original, headers)
    certificate = _certificate(original.convention, headers)
    unread = None if origin else ("the trusted proxy sent no X-Forwarded-Proto and forwarded host, so the request "
                                  "URL is unknown")
    return ProxyFacts(origin + original.path if origin else None, certificate, unread)


__all__ = ["ENVOY_CHECK_HEADERS", "ENV_PUBLIC_ORIGIN", "ENV_TRUSTED_PROXIES", "ESCAPED_CERT_HEADER", "ProxyFacts", "XFCC_HEADER",
           "is_trusted", "parse_public_origin", "parse_trusted_proxies", "proxy_facts"]
