"""End to end through a real NGINX: Debian's nginx with the configuration `render_nginx` writes, `auth_request` to
the forward-auth service, in front of the counting backend; tokens from the sandbox's OpenID provider."""
from __future__ import annotations

import http.client
import json
import os
import shutil
import urllib.error
import urllib.request

import pytest

from sandbox.environment import FOREIGN_AUDIENCE, Sandbox
from sandbox.gateways.nginx import INSTALL_HINT, nginx_binary
from sandbox.idp.config import resource_indicator
from sandbox.oidc_client import client_credentials

if nginx_binary() is None and os.environ.get("CI") == "true":
    pytest.fail(f"nginx is missing under CI; .ci/run installs it ({INSTALL_HINT})", pytrace=False)
pytestmark = [pytest.mark.skipif(shutil.which("node") is None, reason="the sandbox provider needs Node.js"),
              pytest.mark.skipif(nginx_binary() is None, reason=f"nginx is not installed; {INSTALL_HINT}")]


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(gateways_wanted=("nginx",), cognito_wanted=False) as running:
        handle = running.gateways["nginx"]
        assert handle.server is not None, handle.error
        yield running


@pytest.fixture(scope="module")
def nginx(sandbox):
    return sandbox.gateways["nginx"].server


@pytest.fixture(scope="module")
def worker(sandbox):
    return next(c for c in sandbox.idp_setup.clients.values() if c.kind == "service")


def token(sandbox, worker, audience="orders-api", scope=None) -> str:
    return client_credentials(sandbox.discovery["token_endpoint"], worker.client_id, worker.client_secret,
                              scope=scope or " ".join(worker.scopes),
                              resource=resource_indicator(audience)).access_token


def call(sandbox, nginx, method, path, *, bearer=None, headers=None):
    """(status, response headers, body, backend arrivals caused by this call)."""
    sent = dict(headers or {})
    if bearer:
        sent["Authorization"] = f"Bearer {bearer}"
    before = sandbox.backend.total_arrivals
    seen = len(nginx.events)
    request = urllib.request.Request(nginx.url + path, method=method, headers=sent,
                                     data=b"{}" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=15) as resp:
            status, got, raw = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        status, got, raw = err.code, err.headers, err.read()
    nginx.wait_for_events(seen + 1)
    try:
        body = json.loads(raw)
    except ValueError:
        body = {"raw": raw.decode(errors="replace")}
    return status, got, body, sandbox.backend.total_arrivals - before


def test_allowed_request_reaches_the_backend_with_identity_headers(sandbox, nginx, worker):
    status, _, body, arrived = call(sandbox, nginx, "GET", "/orders", bearer=token(sandbox, worker))
    assert (status, arrived) == (200, 1)
    assert body["identity_headers"]["x-authgate-client-id"] == worker.client_id
    assert body["identity_headers"]["x-authgate-scopes"] == "orders:read"
    assert nginx.events[-1].decision.allowed


def test_wrong_audience_is_401_at_the_gateway(sandbox, nginx, worker):
    status, headers, _, arrived = call(sandbox, nginx, "GET", "/orders",
                                       bearer=token(sandbox, worker, FOREIGN_AUDIENCE))
    assert (status, arrived) == (401, 0)
    assert 'error="invalid_token"' in headers["WWW-Authenticate"]
    assert "invalid_audience" in headers["WWW-Authenticate"]
    assert nginx.events[-1].decision.code == "invalid_audience"


def test_missing_scope_is_403_at_the_gateway_naming_the_scope(sandbox, nginx, worker):
    status, headers, _, arrived = call(sandbox, nginx, "POST", "/orders", bearer=token(sandbox, worker))
    assert (status, arrived) == (403, 0)
    assert headers.get_all("WWW-Authenticate") == [
        headers["WWW-Authenticate"]] and 'error="insufficient_scope"' in headers["WWW-Authenticate"]
    assert 'scope="orders:read orders:write"' in headers["WWW-Authenticate"]


def test_no_token_is_401_and_an_unknown_path_never_reaches_the_backend(sandbox, nginx):
    status, headers, _, arrived = call(sandbox, nginx, "GET", "/orders")
    assert (status, arrived) == (401, 0) and headers["WWW-Authenticate"] == 'Bearer realm="authgate"'
    assert call(sandbox, nginx, "GET", "/admin")[::3] == (404, 0)


def test_forged_identity_headers_are_not_what_the_backend_sees(sandbox, nginx, worker):
    forged = {"X-Authgate-Subject": "admin", "X-Authgate-Scopes": "orders:read orders:write orders:admin",
              "X-Authgate-Roles": "admin"}
    status, _, body, arrived = call(sandbox, nginx, "GET", "/orders", bearer=token(sandbox, worker), headers=forged)
    assert (status, arrived) == (200, 1)
    seen = body["identity_headers"]
    assert seen["x-authgate-subject"] != "admin" and seen["x-authgate-scopes"] == "orders:read"
    assert "x-authgate-roles" not in seen   # the token has no roles: the forged header was dropped, not passed
    status, _, body, _ = call(sandbox, nginx, "GET", "/health", headers=forged)
    assert status == 200 and body["identity_headers"] == {}


def test_conventions_a_client_adds_do_not_change_the_decision(sandbox, nginx, worker):
    # A client describing another request (a public one) in the headers other proxies use is ignored.
    status, _, _, arrived = call(sandbox, nginx, "POST", "/orders", bearer=token(sandbox, worker),
                                 headers={"X-Original-URI": "/health", "X-Original-Method": "GET",
                                          "X-Forwarded-Uri": "/health", "X-Forwarded-Method": "GET"})
    assert (status, arrived) == (403, 0)


def test_a_repeated_authorization_header_never_reaches_the_backend(sandbox, nginx, worker):
    """NGINX itself refuses a request with two Authorization lines (400, before auth_request); the service's own
    answer to a repeated header (401) is in tests/unit/forward_auth."""
    good = token(sandbox, worker)
    before, seen = sandbox.backend.total_arrivals, len(nginx.events)
    connection = http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=15)
    try:
        connection.putrequest("GET", "/orders")
        connection.putheader("Authorization", f"Bearer {good}")
        connection.putheader("Authorization", f"Bearer {good}")
        connection.endheaders()
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()
    event = nginx.wait_for_events(seen + 1)[-1]
    assert (response.status, sandbox.backend.total_arrivals - before) == (400, 0)
    assert not event.decision.allowed and event.decision.code == ""


def test_backend_arrivals_equal_forwarded_requests(sandbox, nginx, worker):
    call(sandbox, nginx, "GET", "/orders/42", bearer=token(sandbox, worker))   # no tenant claim: 403
    events = nginx.wait_for_events(len(nginx.events))
    forwarded = sum(1 for e in events if e.decision.allowed)
    assert forwarded >= 3
    assert sandbox.backend.total_arrivals == forwarded
