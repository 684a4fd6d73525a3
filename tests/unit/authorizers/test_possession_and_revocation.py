"""DPoP, certificate-bound tokens and the denylist through the real REST and HTTP API authorizer handlers: the
request facts each reads from its event reach the one route decision, and every refusal fails as API Gateway
needs (401 / isAuthorized false; 500 uncached when a store cannot be reached)."""
from __future__ import annotations

import copy

import pytest

from lambdas.authorizers.runtime import AuthorizerMisconfigured, AuthorizerUnavailable
from lambdas.validation.denylist import Denylist, MemoryDenylistStore
from lambdas.validation.possession import RequestChecks
from lambdas.validation.replay import MemoryReplayStore
from tests.support.client_certs import client_certificate
from tests.support.dpop import make_proof, thumbprint
from tests.support.route_tables import route, table_document
from tests.support.tokens import ISSUER, SigningKey
from tests.unit.authorizers.conftest import API_ID, REGION, STAGE, http_api_event, rest_request_event

CLIENT_KEY = SigningKey.generate("ES256")
PEM, X5T, _ = client_certificate()
OTHER_PEM, _, _ = client_certificate("intruder")
HOST = f"{API_ID}.execute-api.{REGION}.amazonaws.com"
ROUTES = [route("GET /orders", scopes=["orders:read"]),
          route("POST /orders", scopes=["orders:write"], proof="dpop"),
          route("DELETE /orders/{id}", scopes=["orders:write"], proof="mtls"),
          route("GET /orders/{id}", scopes=["orders:read"], freshness="denylist")]


@pytest.fixture
def document(signing_key):
    doc = table_document(signing_key, ROUTES)
    doc["issuers"]["corp"]["binding"] = {"dpop": True, "mtls": True}
    doc["issuers"]["corp"]["revocation"] = {"cache_seconds": 0}
    return doc


@pytest.fixture(params=["rest", "http_api"])
def gateway(request, load_handler, document):
    """(call(event) -> "allow" | "deny" | "unauthorized" | "unavailable", event builder, the runtime)."""
    kind = request.param
    module = load_handler(kind, document, AUTHGATE_RESPONSE=None, AWS_LAMBDA_FUNCTION_NAME=None,
                          AUTHGATE_DENYLIST_TABLE=None)
    runtime = module._RUNTIME.get()

    def call(event):
        try:
            answer = module.handler(event)
        except AuthorizerUnavailable:
            return "unavailable"
        except Exception as exc:  # noqa: BLE001 - "Unauthorized" is the REST 401
            assert str(exc) == "Unauthorized"
            return "unauthorized"
        if kind == "http_api":
            return "allow" if answer["isAuthorized"] else "unauthorized"
        return "allow" if answer["policyDocument"]["Statement"][0]["Effect"] == "Allow" and any(
            s["Effect"] == "Allow" for s in answer["policyDocument"]["Statement"]) else "deny"

    def event(authorization, method, path, *, dpop=None, cert=None, route_key=None):
        if kind == "rest":
            made = rest_request_event(authorization, method, path,
                                      resource=route_key.split(" ", 1)[1] if route_key else None)
            if dpop is not None:
                made["headers"]["DPoP"] = dpop
                made["multiValueHeaders"]["DPoP"] = [dpop] if isinstance(dpop, str) else list(dpop)
            if cert is not None:
                made["requestContext"]["identity"]["clientCert"] = {"clientCertPem": cert}
        else:
            made = http_api_event(authorization, route_key or f"{method} {path}", path)
            if dpop is not None:
                made["headers"]["dpop"] = dpop if isinstance(dpop, str) else ",".join(dpop)
            if cert is not None:
                made["requestContext"]["authentication"] = {"clientCert": {"clientCertPem": cert}}
        return made

    return call, event, runtime, kind


def uri_for(kind, path):
    return f"https://{HOST}/{STAGE}{path}" if kind == "rest" else f"https://{HOST}{path}"


def test_dpop_route_allows_a_bound_token_with_its_proof_once(gateway, token_for):
    call, event, _, kind = gateway
    token = token_for("orders:write", cnf={"jkt": thumbprint(CLIENT_KEY)})
    proof = make_proof(CLIENT_KEY, "POST", uri_for(kind, "/orders"), token)
    assert call(event(f"DPoP {token}", "POST", "/orders", dpop=proof)) == "allow"
    assert call(event(f"DPoP {token}", "POST", "/orders", dpop=proof)) == "unauthorized"  # replayed


@pytest.mark.parametrize("case", ["bearer", "no proof", "other method", "other url", "other key", "two proofs",
                                  "unbound bearer"])
def test_dpop_route_refusals(gateway, token_for, case):
    call, event, _, kind = gateway
    bound = token_for("orders:write", cnf={"jkt": thumbprint(CLIENT_KEY)})
    uri = uri_for(kind, "/orders")
    proof = make_proof(CLIENT_KEY, "POST", uri, bound)
    made = {
        "bearer": lambda: event(f"Bearer {bound}", "POST", "/orders", dpop=proof),
        "no proof": lambda: event(f"DPoP {bound}", "POST", "/orders"),
        "other method": lambda: event(f"DPoP {bound}", "POST", "/orders",
                                      dpop=make_proof(CLIENT_KEY, "GET", uri, bound)),
        "other url": lambda: event(f"DPoP {bound}", "POST", "/orders",
                                   dpop=make_proof(CLIENT_KEY, "POST", uri.replace(HOST, "evil.example.com"), bound)),
        "other key": lambda: event(f"DPoP {bound}", "POST", "/orders",
                                   dpop=make_proof(SigningKey.generate("ES256"), "POST", uri, bound)),
        "two proofs": lambda: event(f"DPoP {bound}", "POST", "/orders", dpop=(proof, proof)),
        "unbound bearer": lambda: event(f"Bearer {token_for('orders:write')}", "POST", "/orders"),
    }[case]()
    assert call(made) == "unauthorized"


def test_a_bound_token_as_bearer_is_refused_on_an_ordinary_route_too(gateway, token_for):
    call, event, _, _ = gateway
    assert call(event(f"Bearer {token_for('orders:read')}", "GET", "/orders")) == "allow"
    bound = token_for("orders:read", cnf={"jkt": thumbprint(CLIENT_KEY)})
    assert call(event(f"Bearer {bound}", "GET", "/orders")) == "unauthorized"


def test_mtls_route_needs_the_bound_certificate(gateway, token_for):
    call, event, _, _ = gateway
    bound = token_for("orders:write", cnf={"x5t#S256": X5T})
    kwargs = {"route_key": "DELETE /orders/{id}"}
    assert call(event(f"Bearer {bound}", "DELETE", "/orders/1", cert=PEM, **kwargs)) == "allow"
    assert call(event(f"Bearer {bound}", "DELETE", "/orders/1", cert=OTHER_PEM, **kwargs)) == "unauthorized"
    assert call(event(f"Bearer {bound}", "DELETE", "/orders/1", **kwargs)) == "unauthorized"
    unbound = token_for("orders:write")
    assert call(event(f"Bearer {unbound}", "DELETE", "/orders/1", cert=PEM, **kwargs)) == "unauthorized"


def test_denylist_route_refuses_a_revoked_token_and_others_still_accept_it(gateway, token_for):
    call, event, runtime, _ = gateway
    token = token_for("orders:read")
    kwargs = {"route_key": "GET /orders/{id}"}
    assert call(event(f"Bearer {token}", "GET", "/orders/1", **kwargs)) == "allow"
    jti = runtime.verifier.authenticate(token).jti
    runtime.request_checks.denylist.revoke(ISSUER, "jti", jti, lifetime_seconds=600)
    assert call(event(f"Bearer {token}", "GET", "/orders/1", **kwargs)) == "unauthorized"
    assert call(event(f"Bearer {token}", "GET", "/orders")) == "allow"  # freshness: none


def test_unreachable_denylist_fails_closed_uncached(gateway, token_for):
    call, event, runtime, _ = gateway

    class Down:
        def put(self, *a, **k):
            raise OSError("down")

        def get_many(self, keys):
            raise OSError("down")

    runtime.request_checks = RequestChecks(replay=MemoryReplayStore(), denylist=Denylist(Down()))
    assert call(event(f"Bearer {token_for('orders:read')}", "GET", "/orders/1",
                      route_key="GET /orders/{id}")) == "unavailable"


def test_rest_policy_never_covers_routes_checked_per_request(load_handler, document, token_for):
    module = load_handler("rest", document, AWS_LAMBDA_FUNCTION_NAME=None, AUTHGATE_DENYLIST_TABLE=None)
    answer = module.handler(rest_request_event(f"Bearer {token_for('orders:read orders:write')}", "GET", "/orders"))
    allowed = " ".join(r for s in answer["policyDocument"]["Statement"] if s["Effect"] == "Allow"
                       for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]))
    assert "/GET/orders" in allowed
    assert "/POST/orders" not in allowed and "DELETE" not in allowed and "/GET/orders/" not in allowed


def test_lambda_without_the_shared_table_refuses_to_start(load_handler, document, token_for):
    module = load_handler("http_api", copy.deepcopy(document), AWS_LAMBDA_FUNCTION_NAME="authz",
                          AUTHGATE_DENYLIST_TABLE=None, AUTHGATE_RESPONSE=None)
    with pytest.raises(AuthorizerMisconfigured, match="AUTHGATE_DENYLIST_TABLE is not set"):
        module.handler(http_api_event(f"Bearer {token_for('orders:read')}", "GET /orders", "/orders"))
