"""Fetching an issuer's public documents (JWKS, OIDC discovery): the Fetcher interface, URL rules and the default fetcher.

The key cache and discovery never touch sockets; they call `fetch(url, *, timeout, max_bytes) -> FetchResult` on a
fetcher. `HttpFetcher` is the default, built on the standard library only. Users pass their own object with the same
`fetch` method to go through a proxy, add request signing, or serve pre-loaded documents.

Rules every fetch follows, whichever fetcher is used (`check_key_url` and `fetch_json_document` enforce them):
- https only. Plain http is accepted only for a loopback host (127.0.0.0/8, ::1, localhost) and only when the caller
  passed `allow_insecure_http=True` (local development against a sandbox issuer). URLs with credentials or a fragment
  are refused.
- Redirects are NOT followed. A key URL comes from configuration or from the issuer's own discovery document, so a
  redirect means the configured URL is not the real one; following it would let whoever answers the first URL choose
  where keys come from (another host, or plain http). The error names the redirect target so the fix is one edit.
- One total deadline per fetch (default 1.0 s, inside API Gateway's 1.5 s budget for a JWKS fetch): connect, TLS,
  headers and body all count against it; a server that trickles bytes is cut off when it runs out.
  (Name resolution is not interruptible from the standard library; it is bounded by the system resolver.)
- The body is capped (default 512 KiB; real key sets are a few KiB), and must be exactly 200 OK, uncompressed, strict
  UTF-8 JSON: an object at the top, no duplicate member names, no NaN/Infinity.
- Cache-Control `max-age` (less `Age`), or else `Expires` minus `Date`, gives the freshness the server granted;
  `no-store`/`no-cache` are reported so the cache keeps the document only for its minimum TTL.
- A 429 or 503 answer's `Retry-After` (seconds, or an HTTP date) is read into FetchError.retry_after, so the cache can
  wait as long as the server asked (within its own bounds) instead of coming back after its usual error backoff.

`http.client` and `ssl` are imported inside `HttpFetcher`, so a Lambda that verifies against an in-memory JWKS never
loads them.
"""
from __future__ import annotations

import json
import re
import time
from typing import Any, Mapping, Protocol, runtime_checkable
from urllib.parse import urlsplit

from .records import Record, set_field

DEFAULT_TIMEOUT_SECONDS = 1.0
DEFAULT_MAX_BYTES = 512 * 1024
MAX_URL_LENGTH = 2048
USER_AGENT = "authgate-key-fetcher"

_MAX_AGE = re.compile(r'max-age\s*=\s*"?(\d+)"?')
_DELTA_SECONDS = re.compile(r"[0-9]+")


class FetchError(Exception):
    """A document could not be fetched or was not acceptable. The message names the URL (never credentials).

    retry_after  seconds the server asked us to wait before asking again (Retry-After on a 429 or 503), or None
    kind         which way it failed, for metrics: timeout, http_error, over_cap, malformed or transport_error (the
                 failure outcomes of lambdas.validation.key_metrics.FETCH_OUTCOMES)
    """

    def __init__(self, url: str, reason: str, *, retry_after: float | None = None,
                 kind: str = "transport_error") -> None:
        super().__init__(f"{display_url(url)}: {reason}")
        self.url = display_url(url)
        self.reason = reason
        self.retry_after = retry_after
        self.kind = kind


class InsecureUrlError(ValueError):
    """A key or discovery URL that authgate will not fetch from (not https, or http to a non-loopback host...)."""


class FetchResult(Record):
    """What a fetcher got back.

    status        the HTTP status code
    body          the response body (empty for redirects and errors, which are not read)
    max_age       seconds the server said the body stays fresh (Cache-Control max-age less Age, or Expires less
                  Date); None when it said nothing, and the cache uses its default TTL
    no_cache      the server sent no-store or no-cache
    location      the Location header of a redirect, so the error can name it
    headers       response headers, names lower-cased
    """

    __slots__ = ("url", "status", "body", "max_age", "no_cache", "location", "headers")

    def __init__(self, url: str, status: int, body: bytes = b"", max_age: int | None = None, no_cache: bool = False,
                 location: str | None = None, headers: Mapping[str, str] | None = None) -> None:
        set_field(self, "url", url)
        set_field(self, "status", status)
        set_field(self, "body", body)
        set_field(self, "max_age", max_age)
        set_field(self, "no_cache", no_cache)
        set_field(self, "location", location)
        set_field(self, "headers", {} if headers is None else headers)


@runtime_checkable
class Fetcher(Protocol):
    """Anything that can GET a URL within a deadline and a size cap."""

    def fetch(self, url: str, *, timeout: float, max_bytes: int) -> FetchResult:
        """GET `url`. Raise FetchError (or any exception) when no HTTP response arrived within `timeout` seconds in
        total or the body exceeds `max_bytes`; return a FetchResult for any HTTP response, whatever its status."""
        ...


def display_url(url: object) -> str:
    """A URL safe to put in an error or a log line: credentials removed, length bounded."""
    text = str(url)
    try:
        parts = urlsplit(text)
        if parts.username is not None or parts.password is not None:
            host = parts.hostname or ""
            if ":" in host:
                host = f"[{host}]"
            netloc = "***@" + host + (f":{parts.port}" if parts.port else "")
            text = parts._replace(netloc=netloc).geturl()
    except ValueError:
        text = "<unparseable URL>"
    return text if len(text) <= 200 else text[:200] + "..."


def is_loopback_host(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1: the only hosts plain http may ever reach."""
    host = host.lower().rstrip(".")
    if host == "localhost":
        return True
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_key_url(url: object, *, allow_insecure_http: bool = False, what: str = "jwks_uri") -> str:
    """Return `url` when authgate may fetch keys or metadata from it; raise InsecureUrlError saying why not and how to
    fix it. `what` names the setting in the message (jwks_uri, the discovery URL...)."""
    if not isinstance(url, str) or not url:
        raise InsecureUrlError(f"{what} must be a non-empty URL string, got {type(url).__name__}")
    if len(url) > MAX_URL_LENGTH:
        raise InsecureUrlError(f"{what} is {len(url)} characters long; at most {MAX_URL_LENGTH} are accepted")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise InsecureUrlError(f"{what} {display_url(url)!r} contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError as exc:
        raise InsecureUrlError(f"{what} {display_url(url)!r} is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if not host:
        raise InsecureUrlError(f"{what} {display_url(url)!r} has no host; expected https://host/path")
    if parts.username is not None or parts.password is not None:
        raise InsecureUrlError(f"{what} {display_url(url)!r} carries credentials; key and discovery URLs are public, "
                               "remove the user:password@ part (use a custom fetcher if a proxy needs credentials)")
    if parts.fragment:
        raise InsecureUrlError(f"{what} {display_url(url)!r} has a #fragment; remove it")
    if scheme == "https":
        return url
    if scheme == "http":
        if not is_loopback_host(host):
            raise InsecureUrlError(
                f"{what} {display_url(url)!r} uses plain http to a non-loopback host; keys must be fetched over "
                "https (http is allowed only for 127.0.0.1, ::1 or localhost in local development)")
        if not allow_insecure_http:
            raise InsecureUrlError(
                f"{what} {display_url(url)!r} uses plain http; set allow_insecure_http=True to allow loopback http "
                "for local development, or serve the document over https")
        return url
    raise InsecureUrlError(f"{what} {display_url(url)!r} has scheme {parts.scheme!r}; only https is fetched")


def freshness_from_headers(headers: Mapping[str, str]) -> tuple[int | None, bool]:
    """(max_age, no_cache) from response headers whose names are lower-case. See FetchResult."""
    no_cache = False
    max_age: int | None = None
    for directive in headers.get("cache-control", "").split(","):
        directive = directive.strip().lower()
        if directive in ("no-store", "no-cache") or directive.startswith("no-cache="):
            no_cache = True
        else:
            match = _MAX_AGE.fullmatch(directive)
            if match:
                max_age = int(match.group(1)) if max_age is None else min(max_age, int(match.group(1)))
    if max_age is not None:
        age = headers.get("age", "").strip()
        if age.isdigit():
            max_age = max(0, max_age - int(age))
        return max_age, no_cache
    expires = headers.get("expires")
    if expires:
        try:
            max_age = max(0, int(_seconds_until(expires, headers)))
        except _UNREADABLE_DATE:
            # RFC 9111 5.3: an invalid Expires means "already expired".
            max_age = 0
    return max_age, no_cache


# What email.utils.parsedate_to_datetime raises, across Python versions, for a value that is not an HTTP date.
_UNREADABLE_DATE = (TypeError, ValueError, IndexError, OverflowError)


def _seconds_until(http_date: str, headers: Mapping[str, str]) -> float:
    """Seconds from the response's Date (or from now when it has none) to `http_date`; raises one of _UNREADABLE_DATE
    for a date that cannot be read. Measuring against Date keeps a skewed server clock from shifting the result."""
    from email.utils import parsedate_to_datetime

    at = parsedate_to_datetime(http_date).timestamp()
    date = headers.get("date")
    now = parsedate_to_datetime(date).timestamp() if date else time.time()
    return at - now


# RFC 9110 15.5.20 / 15.6.4: the statuses whose Retry-After says when the same request may succeed.
RETRY_AFTER_STATUSES = frozenset({429, 503})


def retry_after_from_headers(headers: Mapping[str, str]) -> float | None:
    """Seconds from now that a Retry-After header (RFC 9110 10.2.3: delta-seconds or an HTTP date, measured against
    the response's Date when it has one) asks for; None when it is absent or unreadable, since an unreadable value
    says nothing the caller could honour."""
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    if _DELTA_SECONDS.fullmatch(value):
        # More digits than any clock needs is "a very long time"; the caller bounds it anyway.
        return float(value) if len(value) <= 15 else float("inf")
    try:
        return max(0.0, _seconds_until(value, headers))
    except _UNREADABLE_DATE:
        return None


def parse_json_object(body: bytes, *, source: str) -> dict[str, Any]:
    """Strictly parse a JSON document whose top level must be an object. Raises ValueError naming `source`."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{source} is not UTF-8 text") from None
    try:
        value = json.loads(text, object_pairs_hook=_reject_duplicate_members, parse_constant=_reject_constant)
    except _StrictJsonError as exc:
        raise ValueError(f"{source} is not strict JSON: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise ValueError(f"{source} is nested too deeply to be a JSON key or metadata document") from None
    if not isinstance(value, dict):
        raise ValueError(f"{source} must be a JSON object, got a JSON {type(value).__name__}")
    return value


class _StrictJsonError(ValueError):
    """JSON that the standard parser accepts but a key or metadata document must not contain."""


def _reject_duplicate_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in pairs:
        if name in out:
            raise _StrictJsonError(f"duplicate member name {name[:64]!r}")
        out[name] = value
    return out


def _reject_constant(name: str) -> Any:
    raise _StrictJsonError(f"{name} is not a JSON number")


def fetch_json_document(fetcher: Fetcher, url: str, *, what: str, timeout: float = DEFAULT_TIMEOUT_SECONDS,
                        max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[dict[str, Any], FetchResult]:
    """GET `url` with `fetcher` and return (the JSON object, the FetchResult). Raises FetchError, whose message says
    what went wrong with the `what` (e.g. "JWKS") at that URL, for a transport failure, a redirect, a status other than
    200, an oversized body or a body that is not a strict JSON object. Whatever a custom fetcher raises becomes a
    FetchError too, so a broken fetcher fails closed instead of escaping as an unexpected exception."""
    try:
        result = fetcher.fetch(url, timeout=timeout, max_bytes=max_bytes)
    except FetchError:
        raise
    except Exception as exc:  # a custom fetcher's failure must still fail closed with a clear reason
        raise FetchError(url, f"{what} fetch failed: {type(exc).__name__}: {exc}",
                         kind="timeout" if isinstance(exc, TimeoutError) else "transport_error") from None
    if not isinstance(result, FetchResult):
        raise FetchError(url, f"the fetcher returned {type(result).__name__}, not a FetchResult")
    if 300 <= result.status < 400:
        target = display_url(result.location) if result.location else "no Location header"
        raise FetchError(url, f"{what} answered HTTP {result.status} redirect to {target}; redirects are not "
                              "followed, configure the final https URL instead", kind="http_error")
    if result.status != 200:
        retry_after = (retry_after_from_headers(result.headers) if result.status in RETRY_AFTER_STATUSES else None)
        asked = "" if retry_after is None else f" (Retry-After: {retry_after:g} s)"
        raise FetchError(url, f"{what} answered HTTP {result.status}, expected 200{asked}", retry_after=retry_after,
                         kind="http_error")
    if len(result.body) > max_bytes:
        raise FetchError(url, f"{what} body is {len(result.body)} bytes, more than the {max_bytes}-byte cap",
                         kind="over_cap")
    try:
        return parse_json_object(result.body, source=what), result
    except ValueError as exc:
        raise FetchError(url, str(exc), kind="malformed") from None


class HttpFetcher:
    """The default fetcher: one GET per call on the standard library's http.client, with a total deadline.

    ssl_context          the TLS context for https (default: the system trust store, hostname checking on); tests
                         pass one that trusts a local self-signed certificate
    allow_insecure_http  permit plain http to loopback hosts (never to anything else)
    """

    def __init__(self, *, ssl_context: Any = None, allow_insecure_http: bool = False,
                 user_agent: str = USER_AGENT) -> None:
        self.allow_insecure_http = allow_insecure_http
        self.user_agent = user_agent
        self._ssl_context = ssl_context

    def __repr__(self) -> str:
        return f"HttpFetcher(allow_insecure_http={self.allow_insecure_http})"

    def _context(self) -> Any:
        if self._ssl_context is None:
            import ssl

            # Built on first https use: loading the trust store is the slow part, and an http-only test never needs it.
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    def fetch(self, url: str, *, timeout: float = DEFAULT_TIMEOUT_SECONDS,
              max_bytes: int = DEFAULT_MAX_BYTES) -> FetchResult:
        return self._exchange("GET", url, None, {"Accept": "application/jwk-set+json, application/json"},
                              timeout=timeout, max_bytes=max_bytes)

    def post_form(self, url: str, form: Mapping[str, str], *, headers: Mapping[str, str] | None = None,
                  timeout: float = DEFAULT_TIMEOUT_SECONDS, max_bytes: int = DEFAULT_MAX_BYTES) -> FetchResult:
        """POST `form` as application/x-www-form-urlencoded (token introspection, RFC 7662 2.1), under the same
        URL rules, deadline and body cap as `fetch`. `headers` add to the request (e.g. Authorization); they are
        never logged."""
        from urllib.parse import urlencode

        request_headers = {"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"}
        request_headers.update(headers or {})
        return self._exchange("POST", url, urlencode(form).encode("ascii"), request_headers, timeout=timeout,
                              max_bytes=max_bytes)

    def _exchange(self, method: str, url: str, body: bytes | None, request_headers: Mapping[str, str], *,
                  timeout: float, max_bytes: int) -> FetchResult:
        try:
            check_key_url(url, allow_insecure_http=self.allow_insecure_http, what="URL")
        except InsecureUrlError as exc:
            raise FetchError(url, str(exc)) from None
        if timeout <= 0:
            raise ValueError(f"timeout must be positive seconds, got {timeout!r}")
        import http.client
        import socket
        import threading

        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if parts.scheme.lower() == "https":
            conn: Any = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout,
                                                    context=self._context())
        else:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)

        deadline_passed = threading.Event()
        # The connected socket, kept here because http.client drops conn.sock once a "Connection: close" response
        # has been handed over (the response keeps reading from it).
        connected: list[Any] = []

        def cut_off() -> None:
            # Per-operation socket timeouts cannot stop a server that sends one byte just before each one expires;
            # shutting the socket down at the deadline can. The plain-socket shutdown leaves the TLS layer intact
            # for the thread that is reading.
            deadline_passed.set()
            for sock in connected:
                try:
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)
                except OSError:
                    pass

        watchdog = threading.Timer(timeout, cut_off)
        watchdog.daemon = True
        watchdog.start()
        response: Any = None
        try:
            conn.connect()
            connected.append(conn.sock)
            if deadline_passed.is_set():
                raise FetchError(url, f"timed out after {timeout:g} s", kind="timeout")
            conn.request(method, target, body=body, headers={
                **request_headers,
                "Accept-Encoding": "identity",
                "User-Agent": self.user_agent,
                "Connection": "close",
            })
            response = conn.getresponse()
            headers = {name.lower(): value for name, value in response.getheaders()}
            if response.status != 200:
                # A POST's error body says why (RFC 6749 5.2 "error": invalid_grant ends a session, others do not);
                # a GET's is never used.
                error_body = response.read(min(max_bytes, 65536)) if method == "POST" and response.status < 500 \
                    else b""
                return FetchResult(url=url, status=response.status, location=headers.get("location"),
                                   headers=headers, body=error_body)
            encoding = headers.get("content-encoding", "identity").strip().lower()
            if encoding not in ("", "identity"):
                raise FetchError(url, f"the server sent a {encoding!r}-encoded body although identity was requested",
                                 kind="malformed")
            declared = headers.get("content-length", "").strip()
            if declared.isdigit() and int(declared) > max_bytes:
                raise FetchError(url, f"the body is {declared} bytes, more than the {max_bytes}-byte cap",
                                 kind="over_cap")
            chunks: list[bytes] = []
            size = 0
            while True:
                chunk = response.read1(min(65536, max_bytes + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
                if size > max_bytes:
                    raise FetchError(url, f"the body exceeds the {max_bytes}-byte cap", kind="over_cap")
            if deadline_passed.is_set():
                raise FetchError(url, f"timed out after {timeout:g} s", kind="timeout")
            max_age, no_cache = freshness_from_headers(headers)
            return FetchResult(url=url, status=200, body=b"".join(chunks), max_age=max_age, no_cache=no_cache,
                               headers=headers)
        except FetchError:
            raise
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if deadline_passed.is_set() or isinstance(exc, TimeoutError):
                raise FetchError(url, f"timed out after {timeout:g} s", kind="timeout") from None
            raise FetchError(url, f"request failed: {_describe(exc)}") from None
        finally:
            watchdog.cancel()
            if response is not None:
                response.close()
            conn.close()


def client_secret_basic(client_id: str, client_secret: str) -> str:
    """The Authorization value for client_secret_basic: RFC 6749 2.3.1 form-encodes id and secret before HTTP Basic
    joins them (a secret holding ':' or '%' otherwise breaks)."""
    import base64
    from urllib.parse import quote

    pair = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")


def _describe(exc: BaseException) -> str:
    import ssl

    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({exc.verify_message})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error ({exc.reason or exc})"
    import http.client

    if isinstance(exc, http.client.RemoteDisconnected):
        return "the server closed the connection without answering"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset by the server"
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text
