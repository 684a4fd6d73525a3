"""One HTTP POST of an application/x-www-form-urlencoded body to an issuer endpoint (token, revocation,
introspection), on the standard library, under the same URL rules and size cap as key fetching.

Why not urllib.request: it follows redirects (a token endpoint that redirects is misconfigured or hostile, and the
client secret would follow the redirect) and reads unbounded bodies. Here nothing is followed, the body is capped,
and the whole exchange has one deadline.
"""
from __future__ import annotations

import base64
import json
import urllib.parse
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urlsplit

from .fetcher import DEFAULT_MAX_BYTES, FetchError, InsecureUrlError, check_key_url, display_url

DEFAULT_POST_TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True)
class FormResponse:
    """What an endpoint answered: its status and its body parsed as a JSON object (empty when it sent none)."""

    status: int
    document: Mapping[str, Any]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def basic_credentials(client_id: str, client_secret: str) -> str:
    """The Authorization header value for client_secret_basic: RFC 6749 2.3.1 form-encodes id and secret before
    joining them, which many clients forget (a secret holding ':' or '%' then fails)."""
    user, password = (urllib.parse.quote(part, safe="") for part in (client_id, client_secret))
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def post_form(url: str, form: Mapping[str, str], *, authorization: str | None = None,
              allow_insecure_http: bool = False, timeout: float = DEFAULT_POST_TIMEOUT_SECONDS,
              max_bytes: int = DEFAULT_MAX_BYTES, what: str = "token endpoint",
              ssl_context: Any = None) -> FormResponse:
    """POST `form` to `url` and return the status and JSON body. Raises FetchError for a transport failure, a
    redirect, an oversized body or a body that is not JSON; InsecureUrlError (a ValueError) for a URL that may not be
    used (plain http to a non-loopback host, credentials in the URL, ...)."""
    check_key_url(url, allow_insecure_http=allow_insecure_http, what=what)
    import http.client
    import socket

    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    body = urllib.parse.urlencode(form).encode("ascii")
    if parts.scheme.lower() == "https":
        import ssl
        conn: Any = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout,
                                                context=ssl_context or ssl.create_default_context())
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json",
               "Accept-Encoding": "identity", "Connection": "close"}
    if authorization is not None:
        headers["Authorization"] = authorization
    try:
        conn.request("POST", target, body=body, headers=headers)
        response = conn.getresponse()
        if 300 <= response.status < 400:
            raise FetchError(url, f"the {what} answered HTTP {response.status} (a redirect); redirects are not "
                                  "followed, configure the final URL")
        raw = response.read(max_bytes + 1)
        if len(raw) > max_bytes:
            raise FetchError(url, f"the {what} answered more than {max_bytes} bytes")
    except FetchError:
        raise
    except (OSError, http.client.HTTPException, socket.timeout) as exc:
        raise FetchError(url, f"the {what} at {display_url(url)} could not be reached: {type(exc).__name__}") \
            from None
    finally:
        conn.close()
    if not raw.strip():
        return FormResponse(response.status, {})
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise FetchError(url, f"the {what} answered HTTP {response.status} with a body that is not JSON") from None
    if not isinstance(document, dict):
        raise FetchError(url, f"the {what} answered a JSON {type(document).__name__}, not an object")
    return FormResponse(response.status, document)


__all__ = ["FormResponse", "post_form", "basic_credentials", "InsecureUrlError", "DEFAULT_POST_TIMEOUT_SECONDS"]
