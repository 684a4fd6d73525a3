"""End to end through the local sandbox: a real OpenID provider (oidc-provider under Node), the gateways emulated
from the rendered artifacts, the counting backend, and the Cognito flow (a moto user pool and the REST authorizer under
sandbox/cognito_policy.yaml). The sandbox starts once for the module and is stopped after."""
from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from lambdas.validation import IssuerConfig, TokenRejected, Verifier
from sandbox.cognito import MotoCognito
from sandbox.demo import COGNITO_AUTHORIZER, Demo, call_through, stopped_at, tamper
from sandbox.environment import FOREIGN_AUDIENCE, Sandbox
from sandbox.idp.config import resource_indicator
from sandbox.oidc_client import OidcFlowError, client_credentials, login_with_pkce
from sandbox.report import Narrator

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
    # The fifth, a real NGINX, runs when Debian's nginx is installed (.ci/run installs it).
    expected = {"aws-http-api", "aws-rest-api", "gcp-api-gateway", "azure-apim"} | (
        set() if "nginx" in sandbox.not_started else {"nginx"})
    assert {g.name for g in sandbox.running_gateways()} == expected
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
    assert "cognito: ID token on an access route" in done.stdout
    # It ends with decisions by code per gateway, counted from the EMF members of the authorizers' audit lines.
    metrics = done.stdout.split("== Metrics from the authorizers' audit lines", 1)[1]
    assert "AWS REST API" in metrics and "unauthorized bad_signature" in metrics and "WITHOUT metrics" not in metrics


def unverified_claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def refused_connection(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2).close()
    except urllib.error.HTTPError:
        return False
    except OSError:
        return True
    return False


def test_cognito_access_token_passes_the_rest_authorizer_as_the_app_client_with_token_use_access(sandbox):
    api = sandbox.cognito
    assert api is not None, sandbox.cognito_error
    tokens = api.sign_in(api.app_client_id)
    claims = unverified_claims(tokens["AccessToken"])
    # Cognito-shaped: no aud, the app client in client_id, and the issuer is the pool's real URL, not the emulator's.
    assert "aud" not in claims and claims["client_id"] == api.app_client_id and claims["token_use"] == "access"
    assert claims["iss"] == api.pool.issuer and claims["iss"].startswith("https://cognito-idp.")
    answer = api.authorize("GET", "/orders", tokens["AccessToken"])
    assert answer.status == 200, answer
    assert (answer.context["client_id"], answer.context["token_use"]) == (api.app_client_id, "access")
    assert answer.context["sub"] == api.user_sub and answer.context["issuer_name"] == "users"
    # The authorizer's policy covers only the API's routes: an undefined one is refused even for this token.
    assert api.authorize("GET", "/invoices", tokens["AccessToken"]).status == 403


@pytest.mark.parametrize("case, code", [("ID token", "wrong_token_use"), ("other app client", "invalid_audience"),
                                        ("AdminInitiateAuth, other app client", "invalid_audience"),
                                        ("altered", "bad_signature"), ("not a JWT", "malformed")])
def test_cognito_tokens_the_policy_does_not_accept_are_401_with_the_reason(sandbox, case, code):
    api = sandbox.cognito
    assert api is not None, sandbox.cognito_error
    token = {"ID token": lambda: api.sign_in(api.app_client_id)["IdToken"],
             "other app client": lambda: api.sign_in(api.other_client_id)["AccessToken"],
             "AdminInitiateAuth, other app client": lambda: api.sign_in(api.other_client_id, admin=True)["AccessToken"],
             "altered": lambda: tamper(api.sign_in(api.app_client_id)["AccessToken"]),
             "not a JWT": lambda: "opaque-token"}[case]()
    answer = api.authorize("GET", "/orders", token)
    assert (answer.status, answer.code) == (401, code)


def test_cognito_route_table_is_the_rendered_policy_with_only_the_key_location_moved_to_the_emulator(sandbox):
    from stacks.policy import load_policy
    from stacks.policy.render import render_route_table

    api = sandbox.cognito
    rendered = render_route_table(load_policy(api.policy_path, variables={
        "COGNITO_ISSUER": api.pool.issuer, "COGNITO_APP_CLIENT": api.app_client_id}), apis=["orders"])
    running = json.loads(api.route_table_path.read_text())
    moved = running["issuers"]["users"]
    assert rendered["issuers"]["users"]["jwks_uri"] == api.pool.issuer + "/.well-known/jwks.json"
    assert (moved["jwks_uri"], moved["allow_insecure_http"]) == (api.pool.jwks_url, True)
    assert moved["jwks_uri"].startswith("http://127.0.0.1:")
    assert {**running["issuers"]["users"], "jwks_uri": None, "allow_insecure_http": None} == \
        {**rendered["issuers"]["users"], "jwks_uri": None, "allow_insecure_http": None}
    assert running["apis"] == rendered["apis"]
    assert (moved["profile"], moved["audiences"], moved["token_use"]) == ("cognito", [api.app_client_id], "access")
    assert api.route("GET /orders")["enforcement"] == "lambda"


def test_demo_cognito_section_meets_its_four_expectations_and_prints_no_token(sandbox, monkeypatch):
    api = sandbox.cognito
    issued: list[dict] = []
    real_sign_in = api.sign_in

    def recording_sign_in(*args, **kwargs):
        issued.append(real_sign_in(*args, **kwargs))
        return issued[-1]

    monkeypatch.setattr(api, "sign_in", recording_sign_in)
    narrator = Narrator(out=io.StringIO())
    Demo(sandbox, narrator).cognito()
    assert [(o.step, o.gateway, o.actual) for o in narrator.outcomes] == [
        ("cognito: access token", COGNITO_AUTHORIZER, "200 client_id matched, token_use access"),
        ("cognito: ID token on an access route", COGNITO_AUTHORIZER, "401 wrong_token_use"),
        ("cognito: another app client's token", COGNITO_AUTHORIZER, "401 invalid_audience"),
        ("cognito: altered token", COGNITO_AUTHORIZER, "401 bad_signature")]
    assert narrator.failures == []
    printed = narrator.out.getvalue()
    assert api.pool.pool_id in printed and "emulated" in printed
    assert len(issued) == 2
    # Names, not values, in the assertion: a failure message must not carry a token either.
    shown = [f"{kind} {index}" for index, result in enumerate(issued) for kind in ("AccessToken", "IdToken")
             for part in (result[kind], result[kind].split(".")[2]) if part in printed]
    assert shown == []


def test_sandbox_stops_the_cognito_emulator_with_everything_else():
    with Sandbox(gateways_wanted=()) as running:
        jwks_url = running.cognito.pool.jwks_url
        with urllib.request.urlopen(jwks_url, timeout=5) as response:
            assert json.load(response)["keys"]
    assert running.cognito is None
    assert refused_connection(jwks_url)


def test_a_cognito_flow_that_cannot_start_is_reported_and_its_emulator_stopped(monkeypatch):
    import stacks.policy

    started: list[MotoCognito] = []
    real_start, real_load = MotoCognito.start, stacks.policy.load_policy

    def recording_start(self):
        started.append(self)
        return real_start(self)

    def load_refusing_the_cognito_policy(path, **kwargs):
        if Path(path).name == "cognito_policy.yaml":
            raise ValueError("policy refused for this test")
        return real_load(path, **kwargs)

    monkeypatch.setattr(MotoCognito, "start", recording_start)
    monkeypatch.setattr(stacks.policy, "load_policy", load_refusing_the_cognito_policy)
    with Sandbox(gateways_wanted=()) as running:
        assert running.cognito is None and "policy refused for this test" in running.cognito_error
        assert len(started) == 1 and refused_connection(started[0].endpoint + "/")
        narrator = Narrator(out=io.StringIO())
        Demo(running, narrator).cognito()
        assert [(o.step, o.passed) for o in narrator.outcomes] == [("cognito: emulator available", False)]


def test_the_cognito_commands_make_local_prints_work_when_pasted(sandbox):
    from sandbox.demo import cognito_commands

    assert sandbox.cognito is not None, sandbox.cognito_error
    script = "set -e\n" + "\n".join(cognito_commands(sandbox.cognito)) + "\n"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "AWS_PROFILE": "authgate-no-such-profile"}
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120, cwd=REPO, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert done.stdout.startswith("VALID access token for subject")
