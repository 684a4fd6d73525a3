"""The backend guard on a route with dpop_nonce: required, through the ASGI middleware with real tokens and real
DPoP proofs: a proof without the server's nonce gets 401 `DPoP error="use_dpop_nonce"` and a DPoP-Nonce header
(RFC 9449 9); the client's retry with it passes; a second replica with the same key accepts the first one's nonce
(nothing is shared but the key); a stale or foreign nonce is refused; no key, no start."""
from __future__ import annotations

import asyncio
import base64
import time

import pytest

from lambdas.guards.asgi import AuthgateMiddleware
from lambdas.guards.require import BearerGuard
from lambdas.validation.dpop_nonce import STEP_SECONDS, DpopNonces
from lambdas.validation.route_table import RouteTable
from tests.support.dpop import dpop_request, make_proof, thumbprint
from tests.support.keys import SIGNING_KEY as ISSUER_KEY  # the run's trusted key
from tests.support.route_tables import route, table_document
from tests.support.tokens import SigningKey, mint

ORIGIN = "https://api.example.com"
KEY = b"guard test nonce key, 32 bytes.."
CLIENT_KEY = SigningKey.generate("ES256")


def table() -> RouteTable:
    document = table_document(ISSUER_KEY, [route("POST /orders", proof="dpop", dpop_nonce="required"),
                                           route("GET /orders", proof="dpop")])
    document["issuers"]["corp"]["binding"] = {"dpop": True}
    return RouteTable.load(document)


@pytest.fixture
def nonce_key(monkeypatch):
    monkeypatch.setenv("AUTHGATE_DPOP_NONCE_KEY", base64.urlsafe_b64encode(KEY).rstrip(b"=").decode())
    monkeypatch.delenv("AUTHGATE_DENYLIST_TABLE", raising=False)


def app_behind_guard(*, fresh_nonces: bool = False, app_headers: tuple = ()):
    guard = BearerGuard.from_route_table(table(), "orders", public_origin=ORIGIN)

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": list(app_headers)})
        await send({"type": "http.response.body", "body": b"ok"})

    return AuthgateMiddleware(app, check=guard.check,
                              success_headers=guard.success_headers if fresh_nonces else None)


def sender(app, method: str, path: str, token: str):
    def send(proof: str) -> tuple[int, dict]:
        sent = []

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def record(message):
            sent.append(message)

        headers = [(b"authorization", f"DPoP {token}".encode()), (b"dpop", proof.encode()), (b"host", b"x")]
        asyncio.run(app({"type": "http", "method": method, "path": path, "headers": headers}, receive, record))
        start = sent[0]
        return start["status"], {k.decode(): v.decode() for k, v in start.get("headers", [])}
    return send


def bound_token() -> str:
    return mint(ISSUER_KEY, cnf={"jkt": thumbprint(CLIENT_KEY)})


def test_the_first_proof_is_asked_for_the_nonce_and_the_retry_passes(nonce_key):
    app, token = app_behind_guard(), bound_token()
    send = sender(app, "POST", "/orders", token)
    status, headers = send(make_proof(CLIENT_KEY, "POST", ORIGIN + "/orders", token))
    assert status == 401
    assert headers["www-authenticate"].startswith('DPoP error="use_dpop_nonce", algs="')
    assert headers["dpop-nonce"] == DpopNonces(KEY).current()
    status, _, nonce = dpop_request(send, CLIENT_KEY, "POST", ORIGIN + "/orders", token)
    assert status == 200 and nonce == DpopNonces(KEY).current()


def test_another_replica_with_the_same_key_accepts_the_nonce(nonce_key):
    token = bound_token()
    _, _, nonce = dpop_request(sender(app_behind_guard(), "POST", "/orders", token), CLIENT_KEY, "POST",
                               ORIGIN + "/orders", token)
    other = sender(app_behind_guard(), "POST", "/orders", token)
    status, headers = other(make_proof(CLIENT_KEY, "POST", ORIGIN + "/orders", token, claims={"nonce": nonce}))
    assert status == 200 and "dpop-nonce" not in headers


@pytest.mark.parametrize("nonce", [DpopNonces(b"\x02" * 32).current(), "made-up"])
def test_a_foreign_or_made_up_nonce_is_refused_with_a_fresh_one(nonce_key, nonce):
    token = bound_token()
    status, headers = sender(app_behind_guard(), "POST", "/orders", token)(
        make_proof(CLIENT_KEY, "POST", ORIGIN + "/orders", token, claims={"nonce": nonce}))
    assert status == 401 and headers["dpop-nonce"] == DpopNonces(KEY).current() != nonce


def test_a_stale_nonce_is_refused(nonce_key):
    then = time.time() - 2 * STEP_SECONDS
    stale = DpopNonces(KEY, clock=lambda: then).current()
    token = bound_token()
    status, headers = sender(app_behind_guard(), "POST", "/orders", token)(
        make_proof(CLIENT_KEY, "POST", ORIGIN + "/orders", token, claims={"nonce": stale}))
    assert status == 401 and 'error="use_dpop_nonce"' in headers["www-authenticate"]


def test_routes_without_the_setting_take_proofs_without_a_nonce(nonce_key):
    token = bound_token()
    status, headers = sender(app_behind_guard(), "GET", "/orders", token)(
        make_proof(CLIENT_KEY, "GET", ORIGIN + "/orders", token))
    assert status == 200 and "dpop-nonce" not in headers


def test_a_guard_with_nonce_routes_refuses_to_start_without_the_key(monkeypatch):
    monkeypatch.delenv("AUTHGATE_DPOP_NONCE_KEY", raising=False)
    monkeypatch.delenv("AUTHGATE_DPOP_NONCE_KEY_ARN", raising=False)
    with pytest.raises(ValueError, match="dpop_nonce: required, and neither AUTHGATE_DPOP_NONCE_KEY"):
        BearerGuard.from_route_table(table(), "orders", public_origin=ORIGIN)


def test_an_allowed_response_hands_out_a_fresh_nonce_on_nonce_routes_only(nonce_key):
    # RFC 9449 8.2: with success_headers the allowed answer carries the current nonce, so the client's next proof
    # does not run into use_dpop_nonce when the one it has ages out.
    # The app's own DPoP-Nonce (stale, say) must not reach the client beside the guard's on a nonce route.
    app, token = app_behind_guard(fresh_nonces=True, app_headers=((b"dpop-nonce", b"app's own"),)), bound_token()
    previous = DpopNonces(KEY, clock=lambda: time.time() - STEP_SECONDS).current()
    status, headers = sender(app, "POST", "/orders", token)(
        make_proof(CLIENT_KEY, "POST", f"{ORIGIN}/orders", token, claims={"nonce": previous}))
    assert status == 200 and headers["dpop-nonce"] != previous and DpopNonces(KEY).accepts(headers["dpop-nonce"])
    status, headers = sender(app, "GET", "/orders", token)(make_proof(CLIENT_KEY, "GET", f"{ORIGIN}/orders", token))
    assert status == 200 and headers["dpop-nonce"] == "app's own"   # no nonce route: the app's answer untouched
