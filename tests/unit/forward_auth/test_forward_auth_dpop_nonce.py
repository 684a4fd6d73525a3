"""The forward-auth service on a route with dpop_nonce: required, behind a trusted proxy (Envoy convention), with
real tokens and real DPoP proofs: the first proof gets 401 `DPoP error="use_dpop_nonce"` with a DPoP-Nonce header,
the client's retry with that nonce is allowed, another replica with the same key accepts it, and a service whose
routes ask for nonces refuses to start without the key."""
from __future__ import annotations

import base64
import time

import pytest

from lambdas.authorizers.runtime import AuthorizerMisconfigured, AuthorizerRuntime
from lambdas.forward_auth.proxy_facts import parse_trusted_proxies
from lambdas.forward_auth.service import ForwardAuthService, ForwardAuthSettings
from lambdas.validation.dpop_nonce import DpopNonces
from lambdas.validation.route_table import RouteTable
from tests.support.dpop import dpop_request, make_proof, thumbprint
from tests.support.keys import SIGNING_KEY as ISSUER_KEY  # the run's trusted key
from tests.support.route_tables import route, table_document
from tests.support.tokens import SigningKey, mint

KEY = b"forward-auth nonce key, 32 bytes"
URL = "https://api.example.com/orders"
CLIENT_KEY = SigningKey.generate("ES256")
DOCUMENT = table_document(ISSUER_KEY, [route("POST /orders", proof="dpop", dpop_nonce="required")])
DOCUMENT["issuers"]["corp"]["binding"] = {"dpop": True, "dpop_algorithms": ["ES256"]}


@pytest.fixture
def nonce_key(monkeypatch):
    monkeypatch.setenv("AUTHGATE_DPOP_NONCE_KEY", base64.urlsafe_b64encode(KEY).rstrip(b"=").decode())
    monkeypatch.delenv("AUTHGATE_DENYLIST_TABLE", raising=False)


def replica() -> ForwardAuthService:
    return ForwardAuthService(AuthorizerRuntime(RouteTable.load(DOCUMENT), "orders"),
                              ForwardAuthSettings(convention="envoy",
                                                  trusted_proxies=parse_trusted_proxies("10.0.0.9")))


def sender(service: ForwardAuthService, token: str):
    def send(proof: str) -> tuple[int, dict]:
        headers = {"authorization": (f"DPoP {token}",), "host": ("api.example.com",),
                   "x-forwarded-proto": ("https",), "dpop": (proof,)}
        answer = service.check("POST", "/ext-authz/orders", headers, peer="10.0.0.9")
        return answer.status, dict(answer.headers)
    return send


def test_use_dpop_nonce_then_the_retry_with_the_nonce_is_allowed(nonce_key):
    token = mint(ISSUER_KEY, cnf={"jkt": thumbprint(CLIENT_KEY)})
    send = sender(replica(), token)
    status, headers = send(make_proof(CLIENT_KEY, "POST", URL, token))
    assert status == 401 and headers["X-Authgate-Decision"] == "use_dpop_nonce"
    assert headers["www-authenticate"].startswith('DPoP error="use_dpop_nonce", algs="ES256"')
    assert headers["dpop-nonce"] == DpopNonces(KEY).current()
    status, headers, nonce = dpop_request(send, CLIENT_KEY, "POST", URL, token)
    assert status == 200 and headers["X-Authgate-Decision"] == "allow" and nonce == DpopNonces(KEY).current()
    # Another replica holding the same key accepts the nonce the first one gave, with nothing shared but the key.
    status, _ = sender(replica(), token)(make_proof(CLIENT_KEY, "POST", URL, token, claims={"nonce": nonce}))
    assert status == 200


def test_an_allowed_answer_hands_out_a_fresh_nonce(nonce_key):
    # RFC 9449 8.2: a proof with the previous step's nonce is still allowed, and the answer carries the current one,
    # so the client's next proof does not run into use_dpop_nonce when that nonce ages out.
    token = mint(ISSUER_KEY, cnf={"jkt": thumbprint(CLIENT_KEY)})
    previous = DpopNonces(KEY, clock=lambda: time.time() - 60).current()
    status, headers = sender(replica(), token)(make_proof(CLIENT_KEY, "POST", URL, token,
                                                          claims={"nonce": previous}))
    assert status == 200 and DpopNonces(KEY).accepts(headers["dpop-nonce"]) and headers["dpop-nonce"] != previous


def test_routes_without_nonces_hand_out_none(nonce_key):
    document = table_document(ISSUER_KEY, [route("POST /orders", proof="dpop")])
    document["issuers"]["corp"]["binding"] = {"dpop": True, "dpop_algorithms": ["ES256"]}
    service = ForwardAuthService(AuthorizerRuntime(RouteTable.load(document), "orders"),
                                 ForwardAuthSettings(convention="envoy",
                                                     trusted_proxies=parse_trusted_proxies("10.0.0.9")))
    token = mint(ISSUER_KEY, cnf={"jkt": thumbprint(CLIENT_KEY)})
    status, headers = sender(service, token)(make_proof(CLIENT_KEY, "POST", URL, token))
    assert status == 200 and "dpop-nonce" not in headers


def test_other_refusals_carry_no_nonce(nonce_key):
    token = mint(ISSUER_KEY, cnf={"jkt": thumbprint(CLIENT_KEY)})
    status, headers = sender(replica(), token)(make_proof(CLIENT_KEY, "POST", "https://evil.example/orders", token,
                                                          claims={"nonce": DpopNonces(KEY).current()}))
    assert status == 401 and headers["X-Authgate-Decision"] == "invalid_dpop_proof" and "dpop-nonce" not in headers


def test_no_key_no_start(monkeypatch):
    monkeypatch.delenv("AUTHGATE_DPOP_NONCE_KEY", raising=False)
    monkeypatch.delenv("AUTHGATE_DPOP_NONCE_KEY_ARN", raising=False)
    with pytest.raises(AuthorizerMisconfigured, match="AUTHGATE_DPOP_NONCE_KEY"):
        replica()
