"""The identity headers an allowed answer carries to the proxy (and the proxy passes on to the backend).

Names are configurable (`AUTHGATE_IDENTITY_HEADERS="subject=X-User,scopes=X-Scopes"` overrides some of the
defaults), values are header-safe: a claim is whatever the issuer wrote (names with accents, a role "Global Admin",
in principle a CR LF), so every value is UTF-8 and then percent-encoded outside visible ASCII, with '%' itself
encoded so the backend can decode unambiguously. Lists (scopes, roles, groups) are space-separated, each item
encoded so a space inside a role stays inside it.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

# field -> default header name. The backend reads these; the proxy must clear client-sent copies (the renderers do).
DEFAULT_NAMES: dict[str, str] = {
    "subject": "X-Authgate-Subject",
    "client_id": "X-Authgate-Client-Id",
    "scopes": "X-Authgate-Scopes",
    "roles": "X-Authgate-Roles",
    "groups": "X-Authgate-Groups",
    "tenant": "X-Authgate-Tenant",
    "issuer": "X-Authgate-Issuer",
}
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")   # RFC 9110 5.6.2 field-name
_SAFE = frozenset(range(0x21, 0x7F)) - {ord("%")}


def parse_header_names(spec: str | None) -> dict[str, str]:
    """The header name for each identity field: the defaults, overridden by `field=Header-Name,...`."""
    names = dict(DEFAULT_NAMES)
    if not spec or not spec.strip():
        return names
    for part in spec.split(","):
        field, sep, header = part.strip().partition("=")
        field, header = field.strip(), header.strip()
        if not sep or field not in DEFAULT_NAMES:
            raise ValueError(f"AUTHGATE_IDENTITY_HEADERS entry {part.strip()!r}: write FIELD=Header-Name with FIELD "
                             f"one of {', '.join(DEFAULT_NAMES)}")
        if not _TOKEN.fullmatch(header):
            raise ValueError(f"AUTHGATE_IDENTITY_HEADERS entry {part.strip()!r}: {header!r} is not a valid header name")
        names[field] = header
    lowered = [name.lower() for name in names.values()]
    if len(set(lowered)) != len(lowered):
        raise ValueError("AUTHGATE_IDENTITY_HEADERS gives two identity fields the same header name")
    if "authorization" in lowered:
        raise ValueError("AUTHGATE_IDENTITY_HEADERS may not name the Authorization header")
    return names


def header_safe(value: str) -> str:
    """`value` as visible ASCII: every other byte of its UTF-8 form (space and '%' included) percent-encoded."""
    raw = value.encode("utf-8")
    if all(b in _SAFE for b in raw):
        return value
    return "".join(chr(b) if b in _SAFE else f"%{b:02X}" for b in raw)


def _joined(items: Any) -> str:
    return " ".join(header_safe(str(item)) for item in items)


def identity_headers(principal: Any, names: Mapping[str, str]) -> list[tuple[str, str]]:
    """The (name, value) pairs for a verified principal; a field the token does not carry is sent empty, so a
    proxy that copies every configured header overwrites rather than keeps whatever the client sent."""
    values = {
        "subject": header_safe(principal.subject or ""),
        "client_id": header_safe(principal.client_id or ""),
        "scopes": _joined(principal.scopes),
        "roles": _joined(principal.roles),
        "groups": _joined(principal.groups),
        "tenant": header_safe(principal.tenant or ""),
        "issuer": header_safe(principal.issuer or ""),
    }
    return [(names[field], values[field]) for field in DEFAULT_NAMES]
