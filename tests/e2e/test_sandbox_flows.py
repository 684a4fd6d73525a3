"""End to end through the local sandbox: a real OpenID provider (oidc-provider under Node), the gateways emulated
from the rendered artifacts, and the counting backend. The sandbox starts once for the module and is stopped after."""
from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import urllib.error
import urllib.request

from pathlib import Path

import pytest

from lambdas.validation import IssuerConfig, TokenRejected, Verifier
from sandbox.demo import call_through, stopped_at, tamper
from sandbox.environment import FOREIGN_AUDIENCE, Sandbox
from sandbox.idp.config import resource_indicator
from sandbox.oidc_client import OidcFlowError, client_credentials, login_with_pkce

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="the sandbox provider needs Node.js")


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox() as running:
        yield running


@pytest.fixture(scope="module")
def worker(sandbox):
    return next(c for c in sandbox.idp_setup.clients.values() if c.kind == "service")


@pytest.fixture(scope="module")
def spa(sandbox):
    return next(c for c in sandbox.idp_setup.clients.values() if c.kind == "spa")


def service_token(sandbox, worker, audience="orders-api"):
    return client_credentials(sandbox.discovery["token_endpoint"], worker.client_id, worker.client_secret,
                              scope=" ".join(worker.scopes), resource=resource_indicator(audience)).access_token


def gateways(sandbox):
    running = sandbox.running_gateways()
    assert running, "no gateway could be built: " + "; ".join(f"{g.name}: {g.error}" for g in sandbox.gateways.values())
    return running


def test_service_token_is_an_rfc9068_access_token_for_the_requested_audience(sandbox, worker):
    token = service_token(sandbox, worker)
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    verifier = Verifier([IssuerConfig(sandbox.idp.issuer, ["orders-api"], name="local", allow_insecure_http=True)])
    principal = verifier.verify(token, scopes=("orders:read",))
    assert header["typ"] == "at+jwt"
    assert principal.client_id == worker.client_id
    assert principal.audience == ("orders-api",)
    assert principal.scopes == tuple(worker.scopes)
    with pytest.raises(TokenRejected) as refused:
        verifier.verify(service_token(sandbox, worker, FOREIGN_AUDIENCE))
    assert refused.value.code == "invalid_audience"


def test_login_with_pkce_gives_an_id_token_bound_to_the_nonce_and_user_claims_in_the_access_token(sandbox, spa):
    user = sandbox.idp_setup.users["alice"]
    tokens, nonce = login_with_pkce(sandbox.discovery, client_id=spa.client_id, redirect_uri=spa.redirect_uris[0],
                                    username=user.username, password=user.password, scope="openid email orders:read",
                                    resource=resource_indicator("orders-api"))
    id_verifier = Verifier([IssuerConfig(sandbox.idp.issuer, [spa.client_id], token_use="id", name="id",
                                         allow_insecure_http=True)])
    assert id_verifier.verify_id_token(tokens.id_token, client_id=spa.client_id, nonce=nonce).subject == "alice"
    with pytest.raises(TokenRejected):
        id_verifier.verify_id_token(tokens.id_token, client_id=spa.client_id, nonce="another-nonce")
    claims = json.loads(base64.urlsafe_b64decode(tokens.access_token.split(".")[1] + "=="))
    assert claims["roles"] == ["admin"] and claims["tenant"] == "acme" and claims["aud"] == "orders-api"
    for gateway in gateways(sandbox):
        assert call_through(sandbox, gateway, "GET", "/orders/42", tokens.access_token).status == 200, gateway.name


def test_wrong_password_is_refused_at_the_login_page(sandbox, spa):
    with pytest.raises(OidcFlowError, match="401"):
        login_with_pkce(sandbox.discovery, client_id=spa.client_id, redirect_uri=spa.redirect_uris[0],
                        username="alice", password="not-her-password", scope="openid",
                        resource=resource_indicator("orders-api"))


@pytest.mark.parametrize("case", ["no token", "wrong audience", "expired", "tampered"])
def test_bad_tokens_get_401_at_every_gateway_and_never_reach_the_backend(sandbox, worker, case):
    good = service_token(sandbox, worker)
    token = {"no token": None, "wrong audience": service_token(sandbox, worker, FOREIGN_AUDIENCE),
             "expired": sandbox.idp.expired_token(client_id=worker.client_id, resource=resource_indicator("orders-api"),
                                                  scope="orders:read"),
             "tampered": tamper(good)}[case]
    for gateway in gateways(sandbox):
        result = call_through(sandbox, gateway, "GET", "/orders", token)
        assert (result.status, result.arrived) == (401, 0), (gateway.name, result)


def test_missing_scope_is_403_and_gcp_leaves_it_to_the_backend_guard(sandbox, worker):
    token = service_token(sandbox, worker)  # orders:read only; POST /orders needs orders:read and orders:write
    for gateway in gateways(sandbox):
        result = call_through(sandbox, gateway, "POST", "/orders", token)
        expected = "backend guard" if gateway.name == "gcp-api-gateway" else "gateway"
        assert (result.status, stopped_at(result)) == (403, expected), (gateway.name, result)


def test_key_rotation_keeps_old_and_new_tokens_valid(sandbox, worker):
    before = service_token(sandbox, worker)
    rotated = sandbox.idp.rotate_key()
    after = service_token(sandbox, worker)
    kid = lambda t: json.loads(base64.urlsafe_b64decode(t.split(".")[0] + "=="))["kid"]  # noqa: E731
    assert kid(after) == rotated["signing_kid"] != kid(before)
    assert kid(before) in rotated["published_kids"]
    for gateway in gateways(sandbox):
        for token in (before, after):
            assert call_through(sandbox, gateway, "GET", "/orders", token).status == 200, gateway.name


def test_backend_behind_gcp_refuses_a_userinfo_header_that_did_not_come_from_the_gateway(sandbox):
    forged = base64.urlsafe_b64encode(json.dumps({"sub": "mallory", "scope": "orders:read orders:write",
                                                  "iss": sandbox.idp.issuer, "aud": "orders-api"}).encode())
    request = urllib.request.Request(sandbox.backend.url("gcp-userinfo") + "/orders",
                                     headers={"X-Apigateway-Api-Userinfo": forged.decode().rstrip("=")})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 401


def test_every_gateway_is_emulated_from_its_artifact(sandbox):
    assert {g.name: g.error for g in sandbox.gateways.values() if g.server is None} == {}
    assert {g.name for g in sandbox.running_gateways()} == {"aws-http-api", "aws-rest-api", "gcp-api-gateway",
                                                            "azure-apim"}
    http_api = sandbox.gateways["aws-http-api"].server.emulator
    # The synthesized template's shape: the scope-only route on the native JWT authorizer, the rest on Lambda.
    kinds = {route.route_key: route.authorization for route in http_api.routes}
    assert kinds == {"GET /health": "NONE", "GET /orders": "JWT", "GET /orders/{id}": "CUSTOM",
                     "POST /orders": "CUSTOM", "DELETE /orders/{id}": "CUSTOM"}


def test_rest_api_reuses_the_cached_policy_for_other_routes_without_invoking(sandbox, worker):
    rest = sandbox.gateways["aws-rest-api"]
    token = service_token(sandbox, worker)
    before = rest.server.emulator.invocations
    assert call_through(sandbox, rest, "GET", "/orders", token).status == 200
    other = call_through(sandbox, rest, "GET", "/orders/42", token)   # needs tenant=acme: the worker has none
    assert (other.status, other.arrived) == (403, 0)
    assert "cached policy" in other.checked
    assert rest.server.emulator.invocations - before == 1


def test_a_role_only_alice_has_is_enforced_at_every_gateway_that_can(sandbox, spa):
    """DELETE /orders/{id} needs orders:write and the admin role: alice has it, bob (viewer) does not. AWS and APIM
    refuse bob at the gateway; GCP's gateway cannot check roles, so its backend guard does."""
    def user_token(name):
        user = sandbox.idp_setup.users[name]
        tokens, _ = login_with_pkce(sandbox.discovery, client_id=spa.client_id, redirect_uri=spa.redirect_uris[0],
                                    username=user.username, password=user.password,
                                    scope="openid orders:read orders:write", resource=resource_indicator("orders-api"))
        return tokens.access_token

    alice, bob = user_token("alice"), user_token("bob")
    for gateway in gateways(sandbox):
        assert call_through(sandbox, gateway, "DELETE", "/orders/42", alice).status == 200, gateway.name
        refused = call_through(sandbox, gateway, "DELETE", "/orders/42", bob)
        expected = "backend guard" if gateway.name == "gcp-api-gateway" else "gateway"
        assert (refused.status, stopped_at(refused)) == (403, expected), (gateway.name, refused)


def test_apim_replaces_identity_headers_a_client_sent(sandbox, worker):
    token = service_token(sandbox, worker)
    request = urllib.request.Request(sandbox.gateways["azure-apim"].url + "/orders",
                                     headers={"Authorization": f"Bearer {token}", "X-Authgate-Subject": "admin"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        body = json.load(resp)
    assert body["caller"] == worker.client_id
    decision = sandbox.gateways["azure-apim"].server.events[-1].decision
    assert decision.set_headers["x-authgate-subject"] == worker.client_id


def test_backend_behind_gcp_refuses_userinfo_without_the_gateway_identity_token(sandbox, worker):
    token = service_token(sandbox, worker)
    userinfo = token.split(".")[1]
    request = urllib.request.Request(sandbox.backend.url("gcp-userinfo") + "/orders",
                                     headers={"X-Apigateway-Api-Userinfo": userinfo,
                                              "Authorization": f"Bearer {token}",   # the caller's, not Google's
                                              "X-Forwarded-Authorization": f"Bearer {token}"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 401


def test_authgate_demo_through_the_cli_exits_0(sandbox):
    # After the module's sandbox the AWS templates are in the synth cache, so this run is quick.
    done = subprocess.run([str(Path(sys.executable).with_name("authgate")), "demo", "--no-color"],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "expectations met" in done.stdout and "FAILED" not in done.stdout
