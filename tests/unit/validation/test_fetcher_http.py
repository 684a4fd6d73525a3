"""The key fetcher against a real HTTP(S) server on 127.0.0.1: URL rules, deadline, body cap, redirects, strict JSON."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lambdas.validation.fetcher import (FetchError, FetchResult, HttpFetcher, InsecureUrlError, check_key_url,
                                        fetch_json_document, freshness_from_headers, parse_json_object,
                                        retry_after_from_headers)
from tests.support.http_server import LocalHttpServer, Reply, http_server, https_server  # noqa: F401 (fixtures)

JWKS = {"keys": [{"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "BBBB", "kid": "k1"}]}


@pytest.fixture
def fetcher() -> HttpFetcher:
    return HttpFetcher(allow_insecure_http=True)


def test_fetches_json_over_loopback_http_and_reports_freshness(http_server, fetcher):
    http_server.serve_json("/jwks", JWKS, headers={"Cache-Control": "public, max-age=300", "Age": "100"})
    doc, result = fetch_json_document(fetcher, http_server.url("/jwks"), what="JWKS")
    assert doc == JWKS
    assert (result.status, result.max_age, result.no_cache) == (200, 200, False)
    request = http_server.requests("/jwks")[0]
    assert request.method == "GET"
    assert request.headers["Accept-Encoding"] == "identity"
    assert "authgate" in request.headers["User-Agent"]


def test_plain_http_needs_explicit_permission(http_server):
    http_server.serve_json("/jwks", JWKS)
    with pytest.raises(FetchError, match="allow_insecure_http"):
        HttpFetcher().fetch(http_server.url("/jwks"), timeout=1.0, max_bytes=4096)
    assert http_server.count("/jwks") == 0


@pytest.mark.parametrize("url", [
    "http://example.com/jwks",            # plain http off loopback, even when insecure http is allowed
    "http://127.0.0.1.example.com/jwks",  # looks like loopback, is not
    "http://0.0.0.0:8080/jwks",
    "http://10.0.0.1/jwks",
    "ftp://127.0.0.1/jwks",
    "file:///etc/passwd",
    "https:///jwks",
    "https://idp.example.com/jwks#frag",
    "https://idp.example.com/ jwks",
    "https://idp.example.com:99999/jwks",
])
def test_refuses_urls_keys_must_not_come_from(url):
    with pytest.raises(InsecureUrlError):
        check_key_url(url, allow_insecure_http=True)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/jwks", "http://127.9.8.7/jwks", "http://[::1]:9000/jwks",
                                 "http://localhost:3000/jwks", "https://idp.example.com/jwks?appid=1"])
def test_accepts_https_anywhere_and_http_only_to_loopback_when_allowed(url):
    assert check_key_url(url, allow_insecure_http=True) == url
    if url.startswith("http:"):
        with pytest.raises(InsecureUrlError, match="allow_insecure_http"):
            check_key_url(url)


def test_refuses_credentials_in_url_without_echoing_them():
    with pytest.raises(InsecureUrlError) as info:
        check_key_url("https://admin:hunter2@idp.example.com/jwks")
    assert "hunter2" not in str(info.value)
    assert "remove the user:password@ part" in str(info.value)


def test_https_with_a_trusted_certificate(https_server):
    https_server.serve_json("/jwks", JWKS, headers={"Cache-Control": "no-store"})
    fetcher = HttpFetcher(ssl_context=https_server.client_ssl_context())
    doc, result = fetch_json_document(fetcher, https_server.url("/jwks"), what="JWKS")
    assert doc == JWKS and result.no_cache is True


def test_https_with_an_untrusted_certificate_fails_closed(https_server):
    https_server.serve_json("/jwks", JWKS)
    with pytest.raises(FetchError, match="TLS certificate not trusted"):
        HttpFetcher().fetch(https_server.url("/jwks"), timeout=2.0, max_bytes=4096)
    assert https_server.count("/jwks") == 0


def test_https_hostname_must_match_the_certificate(https_server):
    https_server.serve_json("/jwks", JWKS)
    ctx = https_server.client_ssl_context()
    # The certificate names localhost/127.0.0.1/::1; reach it under a name it does not carry.
    url = https_server.url("/jwks").replace("127.0.0.1", "127.0.0.2")
    with pytest.raises(FetchError):
        HttpFetcher(ssl_context=ctx).fetch(url, timeout=2.0, max_bytes=4096)


def test_redirects_are_not_followed(http_server, fetcher):
    target = http_server.url("/elsewhere")
    http_server.serve("/jwks", "", status=302, headers={"Location": target})
    http_server.serve_json("/elsewhere", JWKS)
    result = fetcher.fetch(http_server.url("/jwks"), timeout=1.0, max_bytes=4096)
    assert (result.status, result.location) == (302, target)
    with pytest.raises(FetchError, match="redirects are not followed") as info:
        fetch_json_document(fetcher, http_server.url("/jwks"), what="JWKS")
    assert target in str(info.value)
    assert http_server.count("/elsewhere") == 0


def test_error_status_is_reported(http_server, fetcher):
    http_server.fail("/jwks", status=503)
    with pytest.raises(FetchError, match="HTTP 503, expected 200"):
        fetch_json_document(fetcher, http_server.url("/jwks"), what="JWKS")


@pytest.mark.parametrize("status, retry_after, expected", [
    (503, "120", 120.0),
    (429, "7", 7.0),
    (503, "Wed, 01 Jan 2025 00:02:00 GMT", 120.0),     # an HTTP date, measured against the response's Date
    (503, "Wed, 01 Jan 2025 00:00:00 GMT", 0.0),       # already past
    (500, "120", None),                                # only 429 and 503 say when to come back
    (503, "soon", None),
])
def test_retry_after_is_read_from_a_429_or_503(http_server, fetcher, status, retry_after, expected):
    http_server.serve("/jwks", "busy", status=status,
                      headers={"Retry-After": retry_after, "Date": "Wed, 01 Jan 2025 00:00:00 GMT"})
    with pytest.raises(FetchError, match=f"HTTP {status}, expected 200") as info:
        fetch_json_document(fetcher, http_server.url("/jwks"), what="JWKS")
    assert info.value.retry_after == expected
    assert ("Retry-After" in info.value.reason) == (expected is not None)


@pytest.mark.parametrize("headers, expected", [
    ({}, None),
    ({"retry-after": ""}, None),
    ({"retry-after": "0"}, 0.0),
    ({"retry-after": " 30 "}, 30.0),
    ({"retry-after": "-5"}, None),                     # not delta-seconds, not a date
    ({"retry-after": "1.5"}, None),                    # delta-seconds is a non-negative integer (RFC 9110 10.2.3)
    ({"retry-after": "\u0661\u0662"}, None),         # digits of another script are not delta-seconds
    ({"retry-after": "9" * 40}, float("inf")),         # "a very long time": the cache bounds it
    ({"retry-after": "Wed, 01 Jan 2025 00:00:30 GMT", "date": "Wed, 01 Jan 2025 00:00:00 GMT"}, 30.0),
])
def test_retry_after_from_headers(headers, expected):
    assert retry_after_from_headers(headers) == expected


def test_slow_server_hits_the_timeout(http_server, fetcher):
    http_server.serve_json("/jwks", JWKS, delay=5)
    started = time.monotonic()
    with pytest.raises(FetchError, match="timed out after 0.3 s"):
        fetcher.fetch(http_server.url("/jwks"), timeout=0.3, max_bytes=4096)
    assert time.monotonic() - started < 1.0


def test_trickling_server_is_cut_off_at_the_total_deadline(http_server, fetcher):
    # One byte every 0.1 s never trips a per-read socket timeout; only a total deadline stops it.
    http_server.serve("/jwks", json.dumps(JWKS), chunk_size=1, chunk_delay=0.1)
    started = time.monotonic()
    with pytest.raises(FetchError, match="timed out"):
        fetcher.fetch(http_server.url("/jwks"), timeout=0.5, max_bytes=4096)
    assert time.monotonic() - started < 1.5


def test_declared_oversized_body_is_refused(http_server, fetcher):
    http_server.serve("/jwks", b"x" * 5000)
    with pytest.raises(FetchError, match="5000 bytes, more than the 4096-byte cap"):
        fetcher.fetch(http_server.url("/jwks"), timeout=1.0, max_bytes=4096)


def test_undeclared_oversized_body_is_cut_off(http_server, fetcher):
    http_server.serve("/jwks", b"x" * 100_000, declare_length=False)
    with pytest.raises(FetchError, match="exceeds the 4096-byte cap"):
        fetcher.fetch(http_server.url("/jwks"), timeout=1.0, max_bytes=4096)


def test_body_at_the_cap_is_accepted(http_server, fetcher):
    body = json.dumps({"keys": [], "pad": "x" * 4000}).encode()
    http_server.serve("/jwks", body, declare_length=False)
    assert fetcher.fetch(http_server.url("/jwks"), timeout=1.0, max_bytes=len(body)).body == body


def test_compressed_body_is_refused(http_server, fetcher):
    http_server.serve("/jwks", b"\x1f\x8b...", headers={"Content-Encoding": "gzip"})
    with pytest.raises(FetchError, match="gzip"):
        fetcher.fetch(http_server.url("/jwks"), timeout=1.0, max_bytes=4096)


def test_connection_closed_without_answer(http_server, fetcher):
    http_server.drop("/jwks")
    with pytest.raises(FetchError, match="closed the connection"):
        fetcher.fetch(http_server.url("/jwks"), timeout=1.0, max_bytes=4096)


def test_nothing_listening(fetcher):
    with LocalHttpServer() as server:
        url = server.url("/jwks")
    with pytest.raises(FetchError, match="connection refused"):
        fetcher.fetch(url, timeout=1.0, max_bytes=4096)


@pytest.mark.parametrize("body, reason", [
    (b"<html>login</html>", "not valid JSON"),
    (b'{"keys": [], "keys": []}', "duplicate member name 'keys'"),
    (b'{"exp": NaN}', "NaN is not a JSON number"),
    (b'[{"kty": "RSA"}]', "must be a JSON object, got a JSON list"),
    (b'{"k": "\xff"}', "not UTF-8"),
    (b"\xef\xbb\xbf{}", "not valid JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
])
def test_body_must_be_a_strict_json_object(http_server, fetcher, body, reason):
    http_server.serve("/jwks", body)
    with pytest.raises(FetchError, match=reason):
        fetch_json_document(fetcher, http_server.url("/jwks"), what="JWKS", max_bytes=len(body) + 10)


@pytest.mark.parametrize("headers, expected", [
    ({}, (None, False)),
    ({"cache-control": "max-age=120"}, (120, False)),
    ({"cache-control": 'public, max-age="90", must-revalidate'}, (90, False)),
    ({"cache-control": "max-age=120", "age": "200"}, (0, False)),
    ({"cache-control": "no-store"}, (None, True)),
    ({"cache-control": "no-cache, max-age=600"}, (600, True)),
    ({"cache-control": "max-age=abc"}, (None, False)),
    ({"expires": "Wed, 01 Jan 2025 00:10:00 GMT", "date": "Wed, 01 Jan 2025 00:00:00 GMT"}, (600, False)),
    ({"expires": "0"}, (0, False)),
    ({"cache-control": "max-age=30", "expires": "Wed, 01 Jan 2025 00:10:00 GMT"}, (30, False)),
])
def test_freshness_from_headers(headers, expected):
    assert freshness_from_headers(headers) == expected


class ExplodingFetcher:
    def fetch(self, url, *, timeout, max_bytes):
        raise RuntimeError("proxy said no")


class WrongTypeFetcher:
    def fetch(self, url, *, timeout, max_bytes):
        return {"status": 200}


class IgnoresCapFetcher:
    def fetch(self, url, *, timeout, max_bytes):
        return FetchResult(url=url, status=200, body=b" " * (max_bytes + 1))


@pytest.mark.parametrize("custom, reason", [
    (ExplodingFetcher(), "RuntimeError: proxy said no"),
    (WrongTypeFetcher(), "returned dict, not a FetchResult"),
    (IgnoresCapFetcher(), "more than the 2048-byte cap"),
])
def test_custom_fetcher_failures_fail_closed(custom, reason):
    with pytest.raises(FetchError, match=reason):
        fetch_json_document(custom, "https://idp.example.com/jwks", what="JWKS", max_bytes=2048)


def test_parse_json_object_names_the_source():
    with pytest.raises(ValueError, match="^JWKS at X is not valid JSON"):
        parse_json_object(b"{", source="JWKS at X")


def test_module_import_does_not_load_http_or_ssl():
    code = ("import sys; import lambdas.validation.fetcher, lambdas.validation.jwks_cache, "
            "lambdas.validation.discovery; print(sorted(m for m in ('http.client', 'ssl', 'socket', 'urllib.request')"
            " if m in sys.modules))")
    repo_root = Path(__file__).resolve().parents[3]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo_root)
    assert out.stdout.strip() == "[]"


def test_trickling_tls_server_is_cut_off_at_the_total_deadline(https_server):
    https_server.serve("/jwks", json.dumps(JWKS), chunk_size=1, chunk_delay=0.1)
    fetcher = HttpFetcher(ssl_context=https_server.client_ssl_context())
    started = time.monotonic()
    with pytest.raises(FetchError, match="timed out"):
        fetcher.fetch(https_server.url("/jwks"), timeout=0.5, max_bytes=4096)
    assert time.monotonic() - started < 1.5


def test_loopback_http_over_ipv6():
    server = LocalHttpServer(host="::1")
    try:
        server.start()
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    try:
        server.serve_json("/jwks", JWKS)
        doc, _ = fetch_json_document(HttpFetcher(allow_insecure_http=True), server.url("/jwks"), what="JWKS")
        assert doc == JWKS and server.url("/jwks").startswith("http://[::1]:")
    finally:
        server.stop()
