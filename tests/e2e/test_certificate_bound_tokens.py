"""Certificate-bound and DPoP-bound tokens against real peers, through a real NGINX and the API Gateway handlers.

The sandbox's oidc-provider gets a TLS listener on 127.0.0.1 that asks for client certificates (features.mTLS,
certificate-bound access tokens); a service client calling its token endpoint there with a client certificate gets
an access token whose cnf["x5t#S256"] is that certificate's thumbprint. Every certificate and key is made for this
run by a throwaway CA in the test's temporary directory.

Through Debian's nginx (TLS, `ssl_verify_client optional` against that CA, the configuration `render_nginx` writes)
and the forward-auth service, which trusts NGINX's address only: the bound token with its own certificate is
allowed; with another client certificate, without one, or with a client-written X-Client-Cert it is refused; a
certificate from another CA never passes NGINX. The DPoP proof's htu is the URL the client called, as NGINX forwards
it; a client's own X-Forwarded-Host does not change it. The same token through the real HTTP API and REST
authorizer handlers, with the certificate where API Gateway's mutual TLS puts it (clientCert.clientCertPem), and
through the emulated HTTP API and REST API of the stacks `authgate synth` writes with authgate:mtls_domain, served
over TLS that asks for client certificates: its own certificate passes, another is refused, one outside the
truststore ends the handshake.
"""
from __future__ import annotations

import base64
import importlib
import json
import os
import shutil
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any
from urllib.parse import quote

import pytest

from lambdas.authorizers.runtime import AuthorizerRuntime
from lambdas.forward_auth.app import ForwardAuthApp
from lambdas.forward_auth.proxy_facts import parse_trusted_proxies
from lambdas.forward_auth.service import ForwardAuthService, ForwardAuthSettings
from lambdas.validation.possession import RequestChecks
from lambdas.validation.replay import MemoryReplayStore
from lambdas.validation.route_table import RouteTable
from sandbox.gateways.nginx import INSTALL_HINT, ForwardAuthThread, NginxGateway, free_loopback_port, nginx_binary
from sandbox.idp.config import build_idp_setup, resource_indicator
from sandbox.idp.launcher import IdpProcess
from stacks.policy import load_policy
from stacks.policy.render import route_table_json
from stacks.policy.render.nginx import render_nginx
from sandbox.tls_material import ThrowawayCa
from tests.support.dpop import make_proof
from tests.support.http_server import LocalHttpServer
from tests.support.tokens import SigningKey

if nginx_binary() is None and os.environ.get("CI") == "true":
    pytest.fail(f"nginx is missing under CI; .ci/run installs it ({INSTALL_HINT})", pytrace=False)
pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="the sandbox provider needs Node.js")
needs_nginx = pytest.mark.skipif(nginx_binary() is None, reason=f"nginx is not installed; {INSTALL_HINT}")

HOST = "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com"
POLICY = """
issuers:
  local:
    issuer: ${LOCAL_ISSUER_URL}
    local_development: true
    audiences: [orders-api]
    jwks_uri: ${LOCAL_ISSUER_URL}/jwks
    leeway_seconds: 5
    binding: {dpop: true, mtls: true, dpop_algorithms: [ES256]}
apis:
  orders:
    routes:
      "GET /orders": {issuers: [local], scopes: [orders:read]}
      "POST /orders": {issuers: [local], scopes: [orders:read], proof: dpop}
      "DELETE /orders/{id}": {issuers: [local], scopes: [orders:read], proof: mtls}
clients:
  bound-worker:
    kind: service
    issuer: local
    audience: orders-api
    scopes: [orders:read]
  dpop-worker:
    kind: service
    issuer: local
    audience: orders-api
    scopes: [orders:read]
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The provider with its TLS listener, the certificates, and the rendered route table."""
    workdir = tmp_path_factory.mktemp("bound")
    ca = ThrowawayCa(workdir / "tls")
    certs = {"server": ca.issue("127.0.0.1", server=True), "client": ca.issue("orders-client"),
             "intruder": ca.issue("intruder"), "stranger": ThrowawayCa(workdir / "other-ca").issue("orders-client")}
    policy_path = workdir / "policy.yaml"
    policy_path.write_text(POLICY)
    setup = build_idp_setup(load_policy(policy_path, variables={"LOCAL_ISSUER_URL": "http://127.0.0.1:1"}), "local")
    setup.document["tls"] = {"cert_file": str(certs["server"].path), "key_file": str(certs["server"].key_path)}
    for client in setup.document["clients"]:
        if client["client_id"] == "bound-worker":
            client["certificate_bound"] = True
    with IdpProcess(setup.document) as idp:
        assert idp.tls_origin.startswith("https://127.0.0.1:")
        table_path = workdir / "routes.json"
        table_path.write_text(route_table_json(load_policy(policy_path, variables={"LOCAL_ISSUER_URL": idp.issuer})))
        yield {"idp": idp, "setup": setup, "ca": ca, "certs": certs, "table": table_path, "workdir": workdir,
               "policy": load_policy(policy_path, variables={"LOCAL_ISSUER_URL": idp.issuer})}


def _token_request(url: str, client_id: str, secret: str, *, context=None, dpop: str | None = None) -> dict:
    form = {"grant_type": "client_credentials", "scope": "orders:read", "resource": resource_indicator("orders-api")}
    basic = base64.b64encode(f"{client_id}:{quote(secret, safe='')}".encode()).decode()
    headers = {"authorization": f"Basic {basic}", "content-type": "application/x-www-form-urlencoded"}
    if dpop:
        headers["dpop"] = dpop
    request = urllib.request.Request(url, data=urllib.parse.urlencode(form).encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return json.load(response)
    except urllib.error.HTTPError as err:
        return {"status": err.code, **json.loads(err.read() or b"{}")}


def bound_token(world, cert: str = "client") -> str:
    """A certificate-bound access token from the provider's TLS listener, for the certificate `cert`."""
    token_path = urllib.parse.urlsplit(world["idp"].discovery()["token_endpoint"]).path
    context = world["certs"][cert].client_context(world["ca"])
    answer = _token_request(world["idp"].tls_origin + token_path, "bound-worker",
                            world["setup"].clients["bound-worker"].client_secret, context=context)
    return answer["access_token"]


def claims_of(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_the_provider_binds_the_token_to_the_tls_client_certificate(world):
    token = bound_token(world)
    assert claims_of(token)["cnf"]["x5t#S256"] == world["certs"]["client"].thumbprint
    assert claims_of(bound_token(world, "intruder"))["cnf"]["x5t#S256"] == world["certs"]["intruder"].thumbprint
    # The plain listener has no client certificate: the provider refuses to issue this client a token there
    # (invalid_grant, "mutual TLS client certificate not provided", which it does not spell out to the client).
    refused = _token_request(world["idp"].discovery()["token_endpoint"], "bound-worker",
                             world["setup"].clients["bound-worker"].client_secret)
    assert (refused["status"], refused["error"]) == (400, "invalid_grant")


# --- through a real NGINX and the forward-auth service -----------------------------------------------------------
@pytest.fixture(scope="module")
def nginx(world):
    backend = LocalHttpServer().start()   # the service behind NGINX; its recorded requests are the arrivals
    for path in ("/orders", "/orders/1"):
        backend.serve_json(path, {"ok": True})
    backend_address = f"127.0.0.1:{backend.port}"
    checks = RequestChecks(replay=MemoryReplayStore())
    service = ForwardAuthService(AuthorizerRuntime(RouteTable.load(world["table"]), "orders", request_checks=checks),
                                 ForwardAuthSettings(convention="nginx", trusted_proxies=parse_trusted_proxies(
                                     "127.0.0.1")))
    forward_auth = ForwardAuthThread(ForwardAuthApp(service)).start()
    port = free_loopback_port()
    server = world["certs"]["server"]
    config = render_nginx(world["policy"], "orders", backend=backend_address, forward_auth=forward_auth.address,
                          listen=f"127.0.0.1:{port}", tls_certificate=str(server.path), tls_key=str(server.key_path),
                          client_ca=str(world["ca"].path))
    gateway = NginxGateway(config, world["workdir"] / "nginx", port, backend_address, forward_auth)
    try:
        gateway.start()
        yield {"url": f"https://127.0.0.1:{port}", "backend": backend, "gateway": gateway}
    finally:
        gateway.stop()
        backend.stop()


def call(world, nginx, method: str, path: str, authorization: str | None, *, cert: str | None = None,
         headers: dict | None = None) -> tuple[int, Any, int]:
    """(status, response headers, backend arrivals caused) of one request through NGINX over TLS."""
    context = (world["certs"][cert].client_context(world["ca"]) if cert
               else ssl.create_default_context(cafile=str(world["ca"].path)))
    sent = dict(headers or {})
    if authorization:
        sent["Authorization"] = authorization
    before = len(nginx["backend"].requests())
    request = urllib.request.Request(nginx["url"] + path, method=method, headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=15, context=context) as response:
            status, got = response.status, response.headers
            response.read()
    except urllib.error.HTTPError as err:
        status, got = err.code, err.headers
        err.read()
    return status, got, len(nginx["backend"].requests()) - before


@needs_nginx
def test_a_bound_token_passes_nginx_only_with_its_own_certificate(world, nginx):
    token = bound_token(world)
    assert call(world, nginx, "DELETE", "/orders/1", f"Bearer {token}", cert="client")[::2] == (200, 1)
    # The binding holds on every route, not only proof: mtls ones.
    assert call(world, nginx, "GET", "/orders", f"Bearer {token}", cert="client")[::2] == (200, 1)
    status, headers, arrived = call(world, nginx, "DELETE", "/orders/1", f"Bearer {token}", cert="intruder")
    assert (status, arrived) == (401, 0) and "certificate_mismatch" in headers["WWW-Authenticate"]
    status, headers, arrived = call(world, nginx, "DELETE", "/orders/1", f"Bearer {token}")
    assert (status, arrived) == (401, 0) and "certificate_required" in headers["WWW-Authenticate"]
    assert call(world, nginx, "GET", "/orders", f"Bearer {token}")[::2] == (401, 0)


@needs_nginx
def test_client_written_certificate_headers_do_not_count(world, nginx):
    token = bound_token(world)
    escaped = quote(world["certs"]["client"].pem, safe="")
    forged = {"X-Client-Cert": escaped, "X-Forwarded-Client-Cert": f'Cert="{escaped}"'}
    for cert in (None, "intruder"):
        status, _, arrived = call(world, nginx, "DELETE", "/orders/1", f"Bearer {token}", cert=cert, headers=forged)
        assert (status, arrived) == (401, 0), cert


@needs_nginx
def test_a_certificate_from_another_ca_never_passes_nginx(world, nginx):
    token = bound_token(world)
    # ssl_verify_client optional with the CA: NGINX answers 400 itself, before any decision.
    assert call(world, nginx, "DELETE", "/orders/1", f"Bearer {token}", cert="stranger")[::2] == (400, 0)


def dpop_token(world, key: SigningKey) -> str:
    endpoint = world["idp"].discovery()["token_endpoint"]
    answer = _token_request(endpoint, "dpop-worker", world["setup"].clients["dpop-worker"].client_secret,
                            dpop=make_proof(key, "POST", endpoint, None))
    assert answer["token_type"] == "DPoP", answer
    return answer["access_token"]


@needs_nginx
def test_dpop_htu_is_the_url_the_client_called_through_nginx(world, nginx):
    key = SigningKey.generate("ES256")
    token = dpop_token(world, key)
    url = nginx["url"] + "/orders"
    proof = make_proof(key, "POST", url, token)
    assert call(world, nginx, "POST", "/orders", f"DPoP {token}", headers={"DPoP": proof})[::2] == (200, 1)
    # A proof for another host, and the client naming that host: NGINX forwards the Host it was called with.
    spoofed = make_proof(key, "POST", "https://evil.example/orders", token)
    status, headers, arrived = call(world, nginx, "POST", "/orders", f"DPoP {token}",
                                    headers={"DPoP": spoofed, "X-Forwarded-Host": "evil.example",
                                             "X-Forwarded-Proto": "https"})
    assert (status, arrived) == (401, 0)
    assert headers["WWW-Authenticate"].startswith('DPoP error="invalid_dpop_proof"')


# --- the same token through the API Gateway authorizer handlers --------------------------------------------------
@pytest.fixture
def handler(world, monkeypatch):
    """The real authorizer module `kind`, loaded as Lambda would load it."""
    monkeypatch.setenv("AUTHGATE_POLICY", str(world["table"]))
    monkeypatch.setenv("AUTHGATE_API", "orders")
    for name in ("AUTHGATE_RESPONSE", "AUTHGATE_DENYLIST_TABLE", "AWS_LAMBDA_FUNCTION_NAME"):
        monkeypatch.delenv(name, raising=False)
    return lambda kind: importlib.reload(importlib.import_module(f"lambdas.authorizers.{kind}")).handler


def http_api_event(token: str, pem: str | None) -> dict:
    context = {"domainName": HOST, "http": {"method": "DELETE", "path": "/orders/1"},
               "routeKey": "DELETE /orders/{id}", "requestId": "r-1"}
    if pem is not None:
        context["authentication"] = {"clientCert": {"clientCertPem": pem, "subjectDN": "CN=orders-client"}}
    return {"version": "2.0", "type": "REQUEST", "routeKey": "DELETE /orders/{id}", "rawPath": "/orders/1",
            "rawQueryString": "", "headers": {"host": HOST, "authorization": f"Bearer {token}"},
            "routeArn": "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/$default/DELETE/orders/1",
            "identitySource": [f"Bearer {token}"], "requestContext": context}


def rest_event(token: str, pem: str | None) -> dict:
    identity = {"sourceIp": "192.0.2.1"}
    if pem is not None:
        identity["clientCert"] = {"clientCertPem": pem, "subjectDN": "CN=orders-client"}
    return {"type": "REQUEST", "resource": "/orders/{id}", "path": "/orders/1", "httpMethod": "DELETE",
            "methodArn": "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/prod/DELETE/orders/1",
            "headers": {"Host": HOST, "Authorization": f"Bearer {token}"},
            "multiValueHeaders": {"Host": [HOST], "Authorization": [f"Bearer {token}"]},
            "pathParameters": {"id": "1"}, "requestContext": {
                "path": "/prod/orders/1", "stage": "prod", "domainName": HOST, "httpMethod": "DELETE",
                "resourcePath": "/orders/{id}", "requestId": "r-1", "identity": identity}}


def test_the_http_api_handler_checks_the_api_gateway_client_certificate(world, handler):
    token, certs = bound_token(world), world["certs"]
    authorize = handler("http_api")
    assert authorize(http_api_event(token, certs["client"].pem))["isAuthorized"] is True
    assert authorize(http_api_event(token, certs["intruder"].pem))["isAuthorized"] is False
    assert authorize(http_api_event(token, None))["isAuthorized"] is False


def test_the_rest_handler_checks_the_api_gateway_client_certificate(world, handler):
    token, certs = bound_token(world), world["certs"]
    authorize = handler("rest")
    allowed = authorize(rest_event(token, certs["client"].pem))
    assert allowed["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    for pem in (certs["intruder"].pem, None):
        with pytest.raises(Exception, match="Unauthorized"):
            authorize(rest_event(token, pem))


# --- the same token through the emulated API Gateways, on their mutual TLS custom domains ------------------------
@pytest.fixture(scope="module")
def emulated(world):
    """The HttpApi and RestApi stacks of the demo's mutual TLS policy (sandbox/mtls_policy.yaml: the same API,
    route and binding as here, so one synth serves both) synthesized with authgate:mtls_domain (cached), emulated
    behind TLS servers that ask for client certificates from the test CA: the truststore's part, which API Gateway
    checks in the handshake."""
    from types import SimpleNamespace

    from sandbox.artifacts import _aws_stack
    from sandbox.environment import ISSUER_VARIABLE
    from sandbox.gateways.http_api import HttpApiEmulator
    from sandbox.gateways.rest_api import RestApiEmulator
    from sandbox.gateways.server import GatewayServer
    from sandbox.mtls_demo import MTLS_CONTEXT
    from sandbox.mtls_demo import POLICY as MTLS_POLICY
    from sandbox.synth_cache import synthesize

    synthesized = synthesize(MTLS_POLICY, "orders", variable=ISSUER_VARIABLE,
                             context={"authgate:mtls_domain": MTLS_CONTEXT})
    holder = SimpleNamespace(synthesized=synthesized, idp=world["idp"], workdir=world["workdir"])
    backend = LocalHttpServer().start()
    for path in ("/orders", "/orders/1"):
        backend.serve_json(path, {"ok": True})
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(str(world["certs"]["server"].path), str(world["certs"]["server"].key_path))
    tls.load_verify_locations(cafile=str(world["ca"].path))
    tls.verify_mode = ssl.CERT_REQUIRED
    servers = {}
    try:
        for name, stack, emulator in (("http", "HttpApi", HttpApiEmulator), ("rest", "RestApi", RestApiEmulator)):
            template, code_root_of, route_table, _ = _aws_stack(holder, stack)
            gateway = emulator(template, code_root_of=code_root_of, route_table_path=route_table)
            assert gateway.mtls_domain == MTLS_CONTEXT[f"{name}_api_domain"]
            servers[name] = GatewayServer(gateway, backend.url(), tls=tls).start()
        yield {"servers": servers, "backend": backend}
    finally:
        for server in servers.values():
            server.stop()
        backend.stop()


def through(world, emulated, api: str, token: str, cert: str) -> tuple[int, int]:
    """(status, backend arrivals) of DELETE /orders/1 through the emulated gateway `api` with client cert `cert`."""
    base = emulated["servers"][api].url
    before = len(emulated["backend"].requests())
    request = urllib.request.Request(base + "/orders/1", method="DELETE", headers={"Authorization": f"Bearer {token}"})
    context = world["certs"][cert].client_context(world["ca"])
    try:
        with urllib.request.urlopen(request, timeout=30, context=context) as response:
            status = response.status
            response.read()
    except urllib.error.HTTPError as err:
        status = err.code
        err.read()
    return status, len(emulated["backend"].requests()) - before


@pytest.mark.parametrize("api, refused", [("http", 403), ("rest", 401)])
def test_emulated_api_gateways_pass_the_client_certificate_to_the_authorizer(world, emulated, api, refused):
    token = bound_token(world)
    assert through(world, emulated, api, token, "client") == (200, 1)
    assert through(world, emulated, api, token, "intruder") == (refused, 0)
    # A certificate outside the truststore ends the handshake, as API Gateway's mutual TLS does (under TLS 1.3 the
    # client hears the alert on its first read: an SSLError rather than urllib's URLError, both OSErrors).
    with pytest.raises(OSError):
        through(world, emulated, api, token, "stranger")
    event = emulated["servers"][api].events[-1]
    assert event.decision.code == "certificate_mismatch", event.decision


def test_the_demo_section_meets_its_expectations():
    """`make demo`'s section 7 (sandbox/mtls_demo.py), as it runs there."""
    import io

    from sandbox.mtls_demo import certificate_bound
    from sandbox.report import Narrator

    narrator = Narrator(out=io.StringIO())
    certificate_bound(narrator)
    assert [o.step for o in narrator.outcomes] == [
        "mtls: token bound to the client certificate", "mtls: bound token with its own certificate",
        "mtls: bound token with another client certificate",
        "mtls: a token bound to another certificate, on robot's connection"], narrator.out.getvalue()
    assert not narrator.failures, narrator.out.getvalue()
