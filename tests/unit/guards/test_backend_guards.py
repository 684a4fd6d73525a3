"""Backend guards: ALB (against a real local key endpoint), GCP API Gateway userinfo, IAP, EasyAuth, require() and
the ASGI middleware, with headers built the way each platform builds them."""
from __future__ import annotations

import asyncio
import base64
import json
import time

import pytest
from cryptography.hazmat.primitives import serialization

from lambdas.guards.alb import AlbOidcGuard, AlbPublicKeys
from lambdas.guards.asgi import AuthgateMiddleware
from lambdas.guards.easyauth import EasyAuthGuard
from lambdas.guards.gcp import GcpGatewayGuard, IapGuard, gateway_issuer_config, iap_issuer_config
from lambdas.guards.require import BearerGuard, require
from lambdas.validation import IssuerConfig, TokenRejected, Verifier
from tests.support.http_server import http_server  # noqa: F401  (fixture)
from tests.support.route_tables import route, table_document
from tests.support.tokens import AUDIENCE, ISSUER, SigningKey, mint

ALB_ARN = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/orders-alb/50dc6c495c0c9188"


def padded_b64url(obj) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode()  # keeps '=' padding, as the ALB does


def alb_data(key: SigningKey, *, signer=ALB_ARN, sub="user-123", exp=None, alg="ES256") -> str:
    header = {"alg": alg, "kid": key.kid, "signer": signer, "iss": ISSUER, "client": "orders-web",
              "exp": exp or int(time.time()) + 120}
    payload = {"sub": sub, "email": "ada@example.test", "exp": exp or int(time.time()) + 120, "iss": ISSUER}
    signing_input = f"{padded_b64url(header)}.{padded_b64url(payload)}"
    signature = base64.urlsafe_b64encode(key.sign(signing_input.encode(), "ES256")).decode()
    return f"{signing_input}.{signature}"


@pytest.fixture(scope="module")
def alb_key() -> SigningKey:
    return SigningKey.generate("ES256", kid="c2f4b8a0-1d3e-4f5a-9b6c-7d8e9f0a1b2c")


@pytest.fixture
def alb_guard(http_server, alb_key):
    pem = alb_key.private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    http_server.serve(f"/{alb_key.kid}", pem, headers={"Content-Type": "application/x-pem-file"})
    keys = AlbPublicKeys("eu-west-1", endpoint=http_server.url("/"), allow_insecure_http=True)
    return AlbOidcGuard(ALB_ARN, keys=keys)


def test_alb_header_verifies_against_fetched_key_once(alb_guard, alb_key, http_server):
    for _ in range(3):
        principal = alb_guard.authenticate({"X-Amzn-Oidc-Data": alb_data(alb_key), "x-amzn-oidc-identity": "user-123"})
        assert principal.subject == "user-123" and principal.client_id == "orders-web"
    assert http_server.count(f"/{alb_key.kid}") == 1


@pytest.mark.parametrize("mutate,code", [
    (lambda k: alb_data(k, signer=ALB_ARN.replace("orders-alb", "evil-alb")), "unknown_issuer"),
    (lambda k: alb_data(k, exp=int(time.time()) - 3600), "expired"),
    (lambda k: alb_data(k, alg="HS256"), "unsupported_alg"),  # refused by the token header rules
    (lambda k: alb_data(k, alg="ES384"), "alg_not_allowed"),
    (lambda k: alb_data(k)[:-8] + "AAAAAAA=", "bad_signature"),
    (lambda k: alb_data(SigningKey.generate("ES256", kid=k.kid)), "bad_signature"),
    (lambda k: "not-a-jwt", "malformed"),
])
def test_alb_header_rejections(alb_guard, alb_key, mutate, code):
    with pytest.raises(TokenRejected) as raised:
        alb_guard.authenticate({"x-amzn-oidc-data": mutate(alb_key)})
    assert raised.value.code == code


def test_alb_unknown_kid_and_endpoint_outage(http_server, alb_key):
    keys = AlbPublicKeys("eu-west-1", endpoint=http_server.url("/"), allow_insecure_http=True)
    guard = AlbOidcGuard(ALB_ARN, keys=keys)
    http_server.fail(f"/{alb_key.kid}", status=503)
    with pytest.raises(TokenRejected) as raised:
        guard.authenticate({"x-amzn-oidc-data": alb_data(alb_key)})
    assert raised.value.code == "jwks_unavailable"
    http_server.remove(f"/{alb_key.kid}")  # an outage is not remembered: the next request asks again
    with pytest.raises(TokenRejected) as raised:
        guard.authenticate({"x-amzn-oidc-data": alb_data(alb_key)})
    assert raised.value.code == "unknown_kid"


def test_alb_access_token_goes_through_the_shared_verifier(http_server, alb_key, signing_key):
    idp = signing_key
    verifier = Verifier([IssuerConfig(ISSUER, [AUDIENCE], jwks=idp.jwks(), name="corp")])
    pem = alb_key.private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    http_server.serve(f"/{alb_key.kid}", pem)
    guard = AlbOidcGuard(ALB_ARN, verifier=verifier,
                         keys=AlbPublicKeys("eu-west-1", endpoint=http_server.url("/"), allow_insecure_http=True))
    headers = {"x-amzn-oidc-data": alb_data(alb_key), "x-amzn-oidc-accesstoken": mint(idp, scope="orders:read")}
    assert guard.authenticate(headers).scopes == ("orders:read",)
    headers["x-amzn-oidc-accesstoken"] = mint(idp, scope="orders:read", subject="someone-else")
    with pytest.raises(TokenRejected, match="different users"):
        guard.authenticate(headers)


def test_alb_guard_refuses_a_bad_arn_and_plain_http_endpoints():
    with pytest.raises(ValueError, match="application load balancer ARN"):
        AlbOidcGuard("arn:aws:iam::123456789012:role/x")
    with pytest.raises(ValueError):
        AlbPublicKeys("eu-west-1", endpoint="http://keys.example.test")


def _b64url_json(obj, pad=False) -> str:
    text = base64.urlsafe_b64encode(json.dumps(obj).encode()).decode()
    return text if pad else text.rstrip("=")


GATEWAY_SA = "orders-gateway@my-project.iam.gserviceaccount.com"
BACKEND = "https://orders-backend-abc123-ew.a.run.app"


def _gateway_token(key, email=GATEWAY_SA):
    return mint(key, typ="JWT", issuer="https://accounts.google.com", audience=BACKEND, email=email,
                email_verified=True, azp=email)


def test_gcp_userinfo_with_verified_gateway_token(signing_key):
    guard = GcpGatewayGuard(issuers=[ISSUER], gateway_service_account=GATEWAY_SA,
                            gateway_verifier=Verifier([gateway_issuer_config(BACKEND, jwks=signing_key.jwks())]))
    userinfo = {"iss": ISSUER, "sub": "user-9", "aud": AUDIENCE, "scope": "orders:read", "roles": ["auditor"],
                "exp": int(time.time()) + 60}
    for padded in (False, True):
        principal = guard.authenticate({"Authorization": f"Bearer {_gateway_token(signing_key)}",
                                        "X-Apigateway-Api-Userinfo": _b64url_json(userinfo, padded)})
        assert principal.subject == "user-9" and principal.roles == ("auditor",)
        require(principal, roles=["auditor"])
        with pytest.raises(TokenRejected) as raised:
            require(principal, roles=["admin"])
        assert raised.value.status == 403
    # written by someone calling the backend directly: no gateway token, or another service account's
    for auth in (None, f"Bearer {_gateway_token(signing_key, email='attacker@evil.iam.gserviceaccount.com')}"):
        headers = {"X-Apigateway-Api-Userinfo": _b64url_json(userinfo)}
        if auth:
            headers["Authorization"] = auth
        with pytest.raises(TokenRejected):
            guard.authenticate(headers)
    with pytest.raises(TokenRejected) as raised:
        guard.authenticate({"Authorization": f"Bearer {_gateway_token(signing_key)}",
                            "X-Apigateway-Api-Userinfo": _b64url_json({**userinfo, "iss": "https://evil.test"})})
    assert raised.value.code == "unknown_issuer"


def test_gcp_guard_requires_an_explicit_trust_choice():
    with pytest.raises(ValueError, match="private_ingress"):
        GcpGatewayGuard(issuers=[ISSUER])
    guard = GcpGatewayGuard(issuers=[ISSUER], private_ingress=True)
    principal = guard.authenticate({"x-apigateway-api-userinfo": _b64url_json({"iss": ISSUER, "sub": "s"})})
    assert principal.subject == "s"
    with pytest.raises(TokenRejected, match="not base64url"):
        guard.authenticate({"x-apigateway-api-userinfo": "%%%"})


def test_iap_assertion_through_the_shared_verifier():
    key = SigningKey.generate("ES256")
    audience = "/projects/123456789/global/backendServices/987654321"
    guard = IapGuard(Verifier([iap_issuer_config(audience, jwks=key.jwks())]))
    token = mint(key, typ="JWT", issuer="https://cloud.google.com/iap", audience=audience,
                 email="ada@example.test", hd="example.test")
    assert guard.authenticate({"X-Goog-IAP-JWT-Assertion": token}).claims["email"] == "ada@example.test"
    other = mint(key, typ="JWT", issuer="https://cloud.google.com/iap", audience="/projects/1/apps/other-app")
    with pytest.raises(TokenRejected) as raised:
        guard.authenticate({"x-goog-iap-jwt-assertion": other})
    assert raised.value.code == "invalid_audience"
    with pytest.raises(ValueError, match="backendServices"):
        iap_issuer_config("orders")


TENANT_A, TENANT_B = "0b7f1c52-4a0e-4a36-9d1f-6c3e2a8b5d10", "5e2d8a91-7c4b-4f03-8e6a-1d9b3c7f2a44"


def _easyauth_header(claims, role_typ="http://schemas.microsoft.com/ws/2008/06/identity/claims/role"):
    document = {"auth_typ": "aad", "name_typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
                "role_typ": role_typ, "claims": [{"typ": t, "val": v} for t, v in claims]}
    return base64.b64encode(json.dumps(document).encode()).decode()


def test_easyauth_client_principal():
    header = _easyauth_header([
        ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid-1"),
        ("http://schemas.microsoft.com/identity/claims/tenantid", TENANT_A),
        ("http://schemas.microsoft.com/ws/2008/06/identity/claims/role", "Orders.Admin"),
        ("http://schemas.microsoft.com/ws/2008/06/identity/claims/role", "Orders.Read"),
        ("groups", "g1"), ("azp", "client-app"), ("aud", "api://orders"),
        ("http://schemas.microsoft.com/identity/claims/scope", "orders.read orders.write")])
    guard = EasyAuthGuard(expected_tenant=TENANT_A, expected_audiences=("api://orders",))
    principal = guard.authenticate({"X-MS-CLIENT-PRINCIPAL": header, "X-MS-CLIENT-PRINCIPAL-ID": "oid-1"})
    assert principal.subject == "oid-1" and principal.tenant == TENANT_A and principal.client_id == "client-app"
    assert principal.roles == ("Orders.Admin", "Orders.Read") and principal.scopes == ("orders.read", "orders.write")
    assert principal.groups == ("g1",)
    for bad, code in (({"X-MS-CLIENT-PRINCIPAL": header, "X-MS-CLIENT-PRINCIPAL-ID": "oid-2"}, "claim_mismatch"),
                      ({}, "malformed"), ({"X-MS-CLIENT-PRINCIPAL": "e30="}, "malformed")):
        with pytest.raises(TokenRejected) as raised:
            guard.authenticate(bad)
        assert raised.value.code == code
    with pytest.raises(TokenRejected) as raised:
        EasyAuthGuard(expected_tenant=TENANT_B, expected_audiences=("api://orders",)).authenticate(
            {"X-MS-CLIENT-PRINCIPAL": header})
    assert raised.value.code == "unknown_issuer"


def _route_table(key):
    return table_document(key, [route("GET /orders/{id}", scopes=["orders:read"]), route("GET /health", public=True)])


async def _call(app, path, headers):
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": path,
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    await app(scope, receive, send)
    return sent


def test_asgi_middleware_guards_a_plain_asgi_app(key):
    guard = BearerGuard.from_route_table(_route_table(key), "orders")

    async def app(scope, receive, send):
        principal = scope["state"]["principal"]
        body = json.dumps({"sub": principal.subject if principal else None}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    wrapped = AuthgateMiddleware(app, check=guard.check)
    good = mint(key, scope="orders:read")
    ok = asyncio.run(_call(wrapped, "/orders/1", {"Authorization": f"Bearer {good}"}))
    assert ok[0]["status"] == 200 and json.loads(ok[1]["body"]) == {"sub": "user-123"}
    assert asyncio.run(_call(wrapped, "/health", {}))[0]["status"] == 200
    missing = asyncio.run(_call(wrapped, "/orders/1", {}))
    assert missing[0]["status"] == 401 and (b"www-authenticate", b'Bearer error="invalid_token", '
                                            b'error_description="malformed"') in missing[0]["headers"]
    weak = asyncio.run(_call(wrapped, "/orders/1", {"Authorization": f"Bearer {mint(key, scope='other')}"}))
    assert weak[0]["status"] == 403 and json.loads(weak[1]["body"])["error"] == "insufficient_scope"
    assert good not in weak[1]["body"].decode()
    assert asyncio.run(_call(wrapped, "/nope", {"Authorization": f"Bearer {good}"}))[0]["status"] == 404
