"""Attacks on the backend guards: repeated identity headers and unknown ALB key ids used to make the guard work."""
from __future__ import annotations

import base64
import json
import time

import pytest

from lambdas.guards.alb import AlbOidcGuard, AlbPublicKeys
from lambdas.guards.easyauth import EasyAuthGuard
from lambdas.guards.gcp import GcpGatewayGuard
from lambdas.guards.require import BearerGuard, header_value
from lambdas.validation import IssuerConfig, TokenRejected, Verifier
from tests.support.http_server import http_server  # noqa: F401  (fixture)
from tests.support.tokens import AUDIENCE, ISSUER, mint

ALB_ARN = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/orders-alb/50dc6c495c0c9188"


def _b64url_json(obj) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


def test_a_repeated_identity_header_is_refused_not_read_first_come():
    # A client writes its own userinfo first; whatever sits in front appends the real one. Reading either is wrong.
    forged = _b64url_json({"iss": ISSUER, "sub": "attacker", "roles": ["admin"]})
    real = _b64url_json({"iss": ISSUER, "sub": "user-9", "roles": []})
    guard = GcpGatewayGuard(issuers=[ISSUER], private_ingress=True)
    headers = [(b"x-apigateway-api-userinfo", forged.encode()), (b"x-apigateway-api-userinfo", real.encode())]
    with pytest.raises(TokenRejected) as raised:
        guard.authenticate(headers)
    assert raised.value.code == "malformed" and "more than once" in raised.value.message


def test_repeated_easyauth_and_authorization_headers_are_refused(key):
    principal = base64.b64encode(json.dumps({"claims": [{"typ": "oid", "val": "u"}]}).encode()).decode()
    with pytest.raises(TokenRejected, match="more than once"):
        EasyAuthGuard(insecure_accept_any_tenant=True, insecure_accept_any_audience=True).authenticate(
            [("X-MS-CLIENT-PRINCIPAL", principal), ("x-ms-client-principal", principal)])
    guard = BearerGuard(Verifier([IssuerConfig(ISSUER, [AUDIENCE], jwks=key.jwks(), name="corp")]))
    token = mint(key, scope="orders:read")
    assert guard.authenticate([(b"authorization", f"Bearer {token}".encode())]).subject
    with pytest.raises(TokenRejected, match="more than once"):
        guard.authenticate([(b"authorization", f"Bearer {token}".encode()), (b"Authorization", b"Bearer x")])


def test_header_value_reads_one_header_from_every_shape():
    assert header_value({"X-Test": "1"}, "x-test") == "1"
    assert header_value([(b"x-test", b"1"), (b"other", b"2")], "X-Test") == "1"
    assert header_value([], "x-test") is None


def test_alb_unknown_kid_is_not_fetched_again_on_every_request(http_server):
    # Any client that can reach the target can name a fresh kid per request; each must not cost a key fetch.
    keys = AlbPublicKeys("eu-west-1", endpoint=http_server.url("/"), allow_insecure_http=True)
    guard = AlbOidcGuard(ALB_ARN, keys=keys)
    kid = "0b9a5c1e-0000-4000-8000-000000000000"
    header = base64.urlsafe_b64encode(json.dumps({"alg": "ES256", "kid": kid, "signer": ALB_ARN}).encode()).decode()
    payload = base64.urlsafe_b64encode(json.dumps({"sub": "x", "exp": int(time.time()) + 60}).encode()).decode()
    data = f"{header}.{payload}.{base64.urlsafe_b64encode(b'0' * 64).decode()}"
    for _ in range(5):
        with pytest.raises(TokenRejected) as raised:
            guard.authenticate({"x-amzn-oidc-data": data})
        assert raised.value.code == "unknown_kid"
    assert http_server.count(f"/{kid}") == 1
