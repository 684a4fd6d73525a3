"""The forward-auth service's forwarded request facts: the URL (DPoP htu) and client certificate a proxy vouches for,
read only from trusted proxies, per convention, and the settings that say who is trusted.

The hostile cases are catalogued in tests/security/test_attack_possession.py [forwarded-*]; here: what each
convention reads, configuration errors, the peer the ASGI app and `authgate serve` pass on."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from lambdas.authorizers.runtime import AuthorizerMisconfigured, AuthorizerRuntime
from lambdas.forward_auth.app import ForwardAuthApp
from lambdas.forward_auth.conventions import BadCheckRequest, original_request
from lambdas.forward_auth.proxy_facts import is_trusted, parse_public_origin, parse_trusted_proxies, proxy_facts
from lambdas.forward_auth.service import ForwardAuthService, ForwardAuthSettings
from lambdas.validation.route_table import RouteTable
from tests.support.client_certs import client_certificate
from tests.support.dpop import make_proof, thumbprint
from tests.support.http_server import LocalHttpServer
from tests.support.keys import SIGNING_KEY as ISSUER_KEY  # the run's trusted key
from tests.support.route_tables import route, table_document
from tests.support.tokens import SigningKey, mint

REPO = Path(__file__).resolve().parents[3]
PEM, X5T, _ = client_certificate()
CLIENT_KEY = SigningKey.generate("ES256")
TRUSTED = parse_trusted_proxies("127.0.0.1, 10.0.0.0/8, fd00::/8")


def facts(convention: str, headers: dict, peer: str | None = "10.1.2.3", public_origin: str | None = None):
    all_headers = {name: (value,) if isinstance(value, str) else value for name, value in headers.items()}
    original = original_request("GET", "/ext-authz/orders/7?q=1", all_headers, convention=convention)
    return proxy_facts(original, all_headers, peer=peer, trusted=TRUSTED, public_origin=public_origin)


def test_each_convention_reads_the_url_where_its_proxy_writes_it():
    nginx = facts("nginx", {"x-original-method": "GET", "x-original-uri": "/orders/7?q=1",
                            "x-forwarded-proto": "https", "x-forwarded-host": "api.example.com:8443",
                            "host": "forward-auth:9100"})
    assert nginx.request_uri == "https://api.example.com:8443/orders/7" and nginx.unread is None
    traefik = facts("traefik", {"x-forwarded-method": "GET", "x-forwarded-uri": "/orders/7",
                                "x-forwarded-proto": "HTTPS", "x-forwarded-host": "api.example.com"})
    assert traefik.request_uri == "https://api.example.com/orders/7"
    # Envoy's ext_authz keeps the client's authority as the check request's Host; X-Forwarded-Host is not read.
    envoy = facts("envoy", {"host": "api.example.com", "x-forwarded-proto": "https",
                            "x-forwarded-host": "evil.example"})
    assert envoy.request_uri == "https://api.example.com/orders/7"


def test_certificates_from_either_header_and_none_without_one():
    xfcc = f'By=spiffe://cluster/ns/edge;Cert="{quote(PEM, safe="")}"'
    assert facts("envoy", {"host": "h", "x-forwarded-client-cert": xfcc}).client_certificate == PEM
    assert facts("nginx", {"x-original-method": "GET", "x-original-uri": "/o",
                           "x-client-cert": quote(PEM, safe="")}).client_certificate == PEM
    # An Istio sidecar's own hop carries no Cert: no client certificate, not an error.
    assert facts("envoy", {"host": "h", "x-forwarded-client-cert": "By=spiffe://a;Hash=00;URI=spiffe://b"}) \
        .client_certificate is None


def test_an_untrusted_peer_gets_nothing_forwarded_read_and_is_told_so():
    headers = {"host": "api.example.com", "x-forwarded-proto": "https",
               "x-forwarded-client-cert": f'Cert="{quote(PEM, safe="")}"'}
    for peer in ("192.0.2.1", None, "not-an-address", "fe80::1%eth0"):
        got = facts("envoy", headers, peer=peer)
        assert (got.request_uri, got.client_certificate) == (None, None)
        assert "not a trusted proxy" in got.unread and "x-forwarded-client-cert" in got.unread
    # Garbage from an untrusted peer is not even parsed: it cannot break an unbound request.
    assert facts("envoy", {"host": "h", "x-forwarded-client-cert": 'Cert="'}, peer="192.0.2.1").client_certificate \
        is None
    # The public origin is configuration: it holds whoever asks.
    assert facts("envoy", headers, peer="192.0.2.1", public_origin="https://api.example.com").request_uri == \
        "https://api.example.com/orders/7"


def test_trust_by_address_and_range():
    assert is_trusted("127.0.0.1", TRUSTED) and is_trusted("10.200.0.1", TRUSTED) and is_trusted("fd00::5", TRUSTED)
    assert is_trusted("::ffff:10.0.0.1", TRUSTED)            # an IPv4 peer on a dual-stack listener
    assert not is_trusted("11.0.0.1", TRUSTED) and not is_trusted("127.0.0.1", ())


@pytest.mark.parametrize("value", ["10.0.0.0/33", "localhost", "10.0.0.1 10.0.0.2"])
def test_bad_trusted_proxies_are_refused_at_start(value):
    with pytest.raises(AuthorizerMisconfigured, match="AUTHGATE_FORWARD_AUTH_TRUSTED_PROXIES"):
        ForwardAuthSettings.from_env({"AUTHGATE_FORWARD_AUTH_TRUSTED_PROXIES": value})


@pytest.mark.parametrize("value", ["api.example.com", "https://api.example.com/base", "ftp://x", "https://a b"])
def test_bad_public_origins_are_refused_at_start(value):
    with pytest.raises(AuthorizerMisconfigured, match="AUTHGATE_FORWARD_AUTH_PUBLIC_ORIGIN"):
        ForwardAuthSettings.from_env({"AUTHGATE_FORWARD_AUTH_PUBLIC_ORIGIN": value})


def test_settings_from_the_environment():
    settings = ForwardAuthSettings.from_env({"AUTHGATE_FORWARD_AUTH_TRUSTED_PROXIES": "127.0.0.1,10.0.0.0/8",
                                             "AUTHGATE_FORWARD_AUTH_PUBLIC_ORIGIN": "https://api.example.com/"})
    assert [str(n) for n in settings.trusted_proxies] == ["127.0.0.1/32", "10.0.0.0/8"]
    assert settings.public_origin == "https://api.example.com" == parse_public_origin("https://api.example.com")
    assert ForwardAuthSettings.from_env({}).trusted_proxies == ()


def test_a_trusted_proxys_repeated_or_unreadable_facts_are_refused():
    with pytest.raises(BadCheckRequest, match="more than once"):
        facts("envoy", {"host": "h", "x-forwarded-proto": ("https", "http")})
    with pytest.raises(BadCheckRequest, match="HOST"):
        facts("envoy", {"host": "a/b", "x-forwarded-proto": "https"})


# --- through the service and the ASGI app ------------------------------------------------------------------------
DOCUMENT = table_document(ISSUER_KEY, [route("GET /orders"), route("POST /orders", proof="dpop"),
                                       route("DELETE /orders/{id}", proof="mtls")])
DOCUMENT["issuers"]["corp"]["binding"] = {"dpop": True, "mtls": True, "dpop_algorithms": ["ES256"]}


def service(**settings) -> ForwardAuthService:
    return ForwardAuthService(AuthorizerRuntime(RouteTable.load(DOCUMENT), "orders"),
                              ForwardAuthSettings(**settings))


def test_dpop_refusals_answer_with_the_dpop_challenge():
    token = mint(ISSUER_KEY, cnf={"jkt": thumbprint(CLIENT_KEY)})
    headers = {"authorization": (f"DPoP {token}",), "host": ("api.example.com",), "x-forwarded-proto": ("https",),
               "dpop": (make_proof(CLIENT_KEY, "POST", "https://api.example.com/orders", token),)}
    decider = service(convention="envoy", trusted_proxies=TRUSTED)
    assert decider.check("POST", "/ext-authz/orders", headers, peer="10.0.0.9").status == 200
    headers["dpop"] = (make_proof(CLIENT_KEY, "POST", "https://other.example/orders", token),)
    answer = decider.check("POST", "/ext-authz/orders", headers, peer="10.0.0.9")
    challenge = dict(answer.headers)["www-authenticate"]
    assert answer.status == 401 and challenge.startswith('DPoP error="invalid_dpop_proof", algs="ES256"'), challenge
    bearer = decider.check("GET", "/ext-authz/orders", {"authorization": (f"Bearer {token}",)}, peer="10.0.0.9")
    assert dict(bearer.headers)["www-authenticate"].startswith('DPoP error="invalid_token"')


def asgi_check(app: ForwardAuthApp, client: tuple | None, headers: dict) -> int:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "DELETE", "path": "/ext-authz/orders/1", "client": client,
             "headers": [(k.encode(), v.encode()) for k, v in headers.items()]}
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"]


def test_the_asgi_app_passes_the_tcp_peer():
    app = ForwardAuthApp(service(convention="envoy", trusted_proxies=parse_trusted_proxies("10.0.0.9")))
    headers = {"authorization": f"Bearer {mint(ISSUER_KEY, cnf={'x5t#S256': X5T})}", "host": "api.example.com",
               "x-forwarded-client-cert": f'Cert="{quote(PEM, safe="")}"'}
    assert asgi_check(app, ("10.0.0.9", 41000), headers) == 200
    assert asgi_check(app, ("10.0.0.10", 41000), headers) == 401
    assert asgi_check(app, None, headers) == 401


POLICY = """\
issuers:
  local:
    issuer: {issuer}
    local_development: true
    audiences: [orders-api]
    jwks_uri: {issuer}/jwks.json
    binding: {{mtls: true}}
apis:
  orders:
    routes:
      "DELETE /orders/{{id}}": {{issuers: [local], proof: mtls}}
"""


def test_serve_trusts_the_tcp_peer_never_a_clients_x_forwarded_for(tmp_path, signing_key):
    """uvicorn's proxy_headers would take the peer from X-Forwarded-For when the TCP peer is loopback: a client's
    X-Forwarded-For, which a proxy passes on, would then decide whom the service trusts. `authgate serve` turns it
    off, so only the TCP peer counts."""
    pytest.importorskip("uvicorn")
    from tests.unit.forward_auth.test_forward_auth_server import get, wait_ready

    with LocalHttpServer() as idp:
        idp.serve_json("/jwks.json", signing_key.jwks())
        policy = tmp_path / "policy.yaml"
        policy.write_text(POLICY.format(issuer=idp.base_url))
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        for trusted, expected in (("127.0.0.1", 200), ("10.0.0.0/8", 401)):
            proc = subprocess.Popen([sys.executable, "-m", "stacks.cli", "serve", "forward-auth", "--policy",
                                     str(policy), "--api", "orders", "--listen", "127.0.0.1:0", "--convention",
                                     "nginx", "--trusted-proxies", trusted], cwd=REPO, env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            try:
                line = proc.stderr.readline()
                base = line.split("listening on ", 1)[1].split()[0]
                wait_ready(base)
                token = mint(signing_key, issuer=idp.base_url, cnf={"x5t#S256": X5T})
                status, headers, body = get(base + "/auth", {
                    "X-Original-Method": "DELETE", "X-Original-URI": "/orders/1", "Authorization": f"Bearer {token}",
                    "X-Client-Cert": quote(PEM, safe=""),
                    # With proxy_headers on, uvicorn would make 10.0.0.1 the peer: trusted by the second server.
                    "X-Forwarded-For": "10.0.0.1"})
                assert status == expected, (trusted, body)
            finally:
                proc.terminate()
                proc.wait(timeout=15)


def test_a_service_that_can_check_no_bound_token_says_so_at_start(capsys):
    service()
    said = capsys.readouterr().err
    assert "certificate-bound and DPoP-bound tokens will be refused" in said
    assert "AUTHGATE_FORWARD_AUTH_TRUSTED_PROXIES" in said
    service(public_origin="https://api.example.com")
    said = capsys.readouterr().err
    assert "certificate-bound tokens will be refused" in said and "DPoP-bound" not in said
    service(trusted_proxies=TRUSTED)
    assert capsys.readouterr().err == ""
    unbound = table_document(ISSUER_KEY, [route("GET /orders")])
    ForwardAuthService(AuthorizerRuntime(RouteTable.load(unbound), "orders"), ForwardAuthSettings())
    assert capsys.readouterr().err == ""
