"""Hostile requests and policies where only a gateway checks the token: GCP API Gateway and Azure API Management
verify a JWT and nothing more, and the guards behind them (GCP's userinfo header, App Service's EasyAuth principal)
see only the claims they forward. So a bound token, whose proof or certificate never reaches them, is refused there,
and a policy route that asks for a proof or a revocation re-check cannot be rendered for those gateways at all.

Checklist (issue 13, "every authorizer, the backend guard and the forward-auth/gateway paths that exist"), entry
names in brackets:
- a DPoP-bound token's claims (cnf.jkt) through the GCP userinfo header / the EasyAuth principal [forwarded-dpop-*]
- a certificate-bound token's claims (cnf x5t#S256) through either [forwarded-cert-*]
- a cnf claim that is not an object, or (EasyAuth) not JSON [forwarded-cnf-*]
- an unbound token's forwarded claims on a route whose proof or freshness needs a check of the request
  (decide_for_forwarded_claims), for a gateway set up other than by the renderers [forwarded-route-*]
- `authgate render openapi` / `render apim` (API level, operations, one route) of an API with a freshness, proof or
  dpop_nonce route: refused with what cannot be enforced, why, and where to serve it instead [render-*]
"""
from __future__ import annotations

import base64
import json

import pytest

from lambdas.guards.easyauth import EasyAuthGuard
from lambdas.guards.gcp import GcpGatewayGuard
from lambdas.validation.errors import TokenRejected
from lambdas.validation.route_decision import Outcome, decide_for_forwarded_claims
from lambdas.validation.route_table import RouteTable
from stacks.cli import main
from stacks.policy import load_policy
from stacks.policy.render.apim import render_apim, render_apim_operations
from stacks.policy.render.openapi import render_openapi
from tests.support.client_certs import client_certificate
from tests.support.dpop import thumbprint
from tests.support.keys import SIGNING_KEY as ISSUER_KEY
from tests.support.route_tables import route, table_document
from tests.support.tokens import ISSUER, SigningKey, mint

CLIENT_KEY = SigningKey.generate("ES256")
_, X5T, _ = client_certificate()
TENANT = "0b7f1c52-4a0e-4a36-9d1f-6c3e2a8b5d10"
AUDIENCE = "api://orders"


def _payload(token: str) -> str:
    """What GCP API Gateway writes in X-Apigateway-Api-Userinfo: the verified token's payload, base64url."""
    return token.split(".")[1]


def _claims(token: str) -> dict:
    segment = _payload(token)
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def _easyauth_principal(claims: dict) -> str:
    """X-MS-CLIENT-PRINCIPAL as App Service writes it: every claim value a string (objects as their JSON text)."""
    entries = []
    for name, value in claims.items():
        for item in value if isinstance(value, list) else [value]:
            entries.append({"typ": name, "val": item if isinstance(item, str) else json.dumps(item)})
    document = {"auth_typ": "aad", "name_typ": "name", "role_typ": "roles", "claims": entries}
    return base64.b64encode(json.dumps(document).encode()).decode()


def _token(cnf=None) -> str:
    extra = {} if cnf is None else {"cnf": cnf}
    return mint(ISSUER_KEY, audience=AUDIENCE, tid=TENANT, oid="oid-7", **extra)


GCP_GUARD = GcpGatewayGuard(issuers=[ISSUER], private_ingress=True)
EASYAUTH_GUARD = EasyAuthGuard(expected_tenant=TENANT, expected_audiences=[AUDIENCE])

FORWARDED = [
    ("forwarded-dpop-gcp-userinfo", "gcp", {"jkt": thumbprint(CLIENT_KEY)}, "dpop_bound_token"),
    ("forwarded-dpop-easyauth-principal", "easyauth", {"jkt": thumbprint(CLIENT_KEY)}, "dpop_bound_token"),
    ("forwarded-cert-gcp-userinfo", "gcp", {"x5t#S256": X5T}, "certificate_required"),
    ("forwarded-cert-easyauth-principal", "easyauth", {"x5t#S256": X5T}, "certificate_required"),
    ("forwarded-dpop-and-cert-gcp", "gcp", {"jkt": thumbprint(CLIENT_KEY), "x5t#S256": X5T}, "dpop_bound_token"),
    ("forwarded-cnf-not-an-object-gcp", "gcp", "bound", "malformed"),
    ("forwarded-cnf-array-easyauth", "easyauth", ["jkt"], "malformed"),
]


def _through(door: str, token: str, *, raw_cnf: str | None = None):
    if door == "gcp":
        return GCP_GUARD.authenticate({"X-Apigateway-Api-Userinfo": _payload(token)})
    claims = _claims(token)
    if raw_cnf is not None:
        claims["cnf"] = raw_cnf
    return EASYAUTH_GUARD.authenticate({"X-MS-CLIENT-PRINCIPAL": _easyauth_principal(claims)})


@pytest.mark.parametrize("name, door, cnf, code", FORWARDED, ids=[entry[0] for entry in FORWARDED])
def test_a_bound_tokens_forwarded_claims_are_refused(name, door, cnf, code):
    token = _token(cnf)
    with pytest.raises(TokenRejected) as raised:
        _through(door, token)
    assert raised.value.code == code
    assert raised.value.status == 401
    assert token not in str(raised.value) and _payload(token) not in str(raised.value)


def test_forwarded_cnf_that_is_not_json_is_refused_by_the_easyauth_guard():
    with pytest.raises(TokenRejected) as raised:
        _through("easyauth", _token(), raw_cnf='{"jkt": ')
    assert raised.value.code == "malformed"


@pytest.mark.parametrize("door", ["gcp", "easyauth"])
def test_the_same_tokens_unbound_still_pass(door):
    """The control: without cnf (or with a cnf naming no key or certificate) the same path accepts the caller."""
    assert _through(door, _token()).subject in ("oid-7", "user-123")
    assert _through(door, _token({})).subject in ("oid-7", "user-123")


def test_the_refusal_names_the_gateway_and_what_to_do():
    with pytest.raises(TokenRejected) as raised:
        _through("gcp", _token({"jkt": thumbprint(CLIENT_KEY)}))
    assert "GCP API Gateway" in raised.value.message and "DPoP proof cannot be checked" in raised.value.message
    assert "DPoP proofs are checked" in raised.value.hint
    with pytest.raises(TokenRejected) as raised:
        _through("easyauth", _token({"x5t#S256": X5T}))
    assert "x-ms-client-principal" in raised.value.message and "mutual TLS" in raised.value.hint


ROUTES = table_document(ISSUER_KEY, [route("GET /orders"), route("POST /orders", proof="dpop"),
                                     route("PUT /orders", proof="dpop", dpop_nonce="required"),
                                     route("DELETE /orders/{id}", proof="mtls"),
                                     route("GET /orders/{id}", freshness="denylist"),
                                     route("GET /audit", freshness="introspect")])
ROUTES["issuers"]["corp"].update(binding={"dpop": True, "mtls": True})
ROUTES["issuers"]["corp"]["introspection"] = {"endpoint": "https://idp.example.com/introspect",
                                              "client_id": "orders-gateway", "client_secret_env": "UNUSED"}
API = RouteTable.load(ROUTES).api("orders")
ROUTE_REFUSALS = [
    ("forwarded-route-proof-dpop", "POST", "/orders", "dpop_required", Outcome.UNAUTHORIZED),
    ("forwarded-route-dpop-nonce", "PUT", "/orders", "dpop_required", Outcome.UNAUTHORIZED),
    ("forwarded-route-proof-mtls", "DELETE", "/orders/7", "certificate_required", Outcome.UNAUTHORIZED),
    ("forwarded-route-freshness-denylist", "GET", "/orders/7", "denylist_unavailable", Outcome.UNAVAILABLE),
    ("forwarded-route-freshness-introspect", "GET", "/audit", "introspection_unavailable", Outcome.UNAVAILABLE),
]


@pytest.mark.parametrize("name, method, path, code, outcome", ROUTE_REFUSALS, ids=[e[0] for e in ROUTE_REFUSALS])
def test_forwarded_claims_never_pass_a_route_that_checks_each_request(name, method, path, code, outcome):
    guard = GcpGatewayGuard(issuers=[ISSUER], private_ingress=True, issuer_name="corp")  # as the table names it
    principal = guard.authenticate({"X-Apigateway-Api-Userinfo": _payload(mint(ISSUER_KEY))})
    allowed = decide_for_forwarded_claims(API, API.match("GET", "/orders"), principal, forwarded_by="GCP API Gateway")
    assert allowed.outcome is Outcome.ALLOW   # the control: the same caller on a plain route
    decision = decide_for_forwarded_claims(API, API.match(method, path), principal, forwarded_by="GCP API Gateway")
    assert (decision.outcome, decision.code) == (outcome, code)
    assert "cannot be enforced by GCP API Gateway" in decision.message


POLICY = """\
issuers:
  corp:
    issuer: https://idp.example.com
    audiences: [orders-api]
    jwks_uri: https://idp.example.com/jwks
    introspection: {client_id: orders-gateway, client_secret_env: ORDERS_INTROSPECTION_SECRET}
    binding: {dpop: true, mtls: true}
apis:
  orders:
    routes:
      "GET /health": {public: true}
      "GET /orders": {issuers: [corp], scopes: [orders:read]}
      "POST /orders": {issuers: [corp], scopes: [orders:write]%s}
"""
SETTINGS = [
    ("render-freshness-denylist", ", freshness: denylist", "freshness: denylist", "consult a denylist"),
    ("render-freshness-introspect", ", freshness: introspect", "freshness: introspect", "introspection endpoint"),
    ("render-proof-dpop", ", proof: dpop", "proof: dpop", "check a DPoP proof"),
    ("render-proof-mtls", ", proof: mtls", "proof: mtls", "check a client certificate binding"),
    ("render-dpop-nonce", ", proof: dpop, dpop_nonce: required", "dpop_nonce: required", "DPoP nonces"),
]
RENDERERS = {
    "openapi": ("GCP API Gateway", lambda policy: render_openapi(policy, "orders", backend_url="https://b.a.run.app")),
    "apim": ("Azure API Management", lambda policy: render_apim(policy, "orders")),
    "apim-operations": ("Azure API Management", lambda policy: render_apim_operations(policy, "orders")),
    "apim-route": ("Azure API Management", lambda policy: render_apim(policy, "orders", route_key="GET /orders")),
}


def _policy(tmp_path, setting: str):
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY % setting)
    return load_policy(path)


@pytest.mark.parametrize("renderer", list(RENDERERS))
@pytest.mark.parametrize("name, setting, field, what", SETTINGS, ids=[entry[0] for entry in SETTINGS])
def test_renderers_refuse_routes_their_gateway_cannot_enforce(tmp_path, renderer, name, setting, field, what):
    gateway, render = RENDERERS[renderer]
    assert render(_policy(tmp_path, ""))  # the control: the same API without the setting renders
    with pytest.raises(ValueError) as raised:
        render(_policy(tmp_path, setting))
    message = str(raised.value)
    assert f"route 'POST /orders': {field} cannot be enforced by {gateway}" in message
    assert what in message
    assert "Serve this API where every request is checked" in message   # what to do instead
    assert "'GET /orders'" not in message                                 # only the routes at fault are named


@pytest.mark.parametrize("artefact, extra", [("openapi", ["--backend-url", "https://b.a.run.app"]), ("apim", [])])
def test_render_command_refuses_and_writes_nothing(tmp_path, capsys, artefact, extra):
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY % ", proof: dpop")
    out = tmp_path / "out.txt"
    code = main(["render", artefact, "--policy", str(path), "--api", "orders", "--output", str(out), *extra])
    assert code == 2
    assert "proof: dpop cannot be enforced by" in capsys.readouterr().err
    assert not out.exists()
