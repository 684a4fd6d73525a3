"""Hostile requests against proof of possession and revocation: every refusal of issue 13, each an entry of the
catalogue below, decided by the one route decision every entry point uses (lambdas.validation.route_decision) with
real tokens, real DPoP proofs and real client certificates. Each must be refused with its code, and no refusal may
echo the token or the proof.

Checklist (issue 13), entry names in brackets:
- DPoP-bound token as a Bearer token, on a DPoP route and on ordinary routes [bound-as-bearer-*]
- proof for another method, another URL or host, replayed, or signed by another key [proof-*]
- proof header missing, repeated, not a JWT, typ other than dpop+jwt, alg none/HS256/not allowed, no or private
  or symmetric jwk, iat outside the window, no jti, missing or wrong ath, altered after signing [proof-*]
- Bearer (unbound) token on a DPoP route; DPoP scheme with an unbound token [unbound-*]
- certificate-bound token with another certificate, without one, an unbound token on an mtls route [cert-*]
- revoked jti, Cognito origin_jti, logged-out session, subject revoked before issue [revoked-*]
- on a dpop_nonce route: proof without the server's nonce, with a stale one, a forged one, one made with another
  key, a nonce that is not a string [nonce-*]; each refusal carries a fresh nonce for the DPoP-Nonce header
- logout tokens: wrong typ, audience, stale, replayed, with nonce, without events, sid/sub, jti [logout-*]
- the forward-auth service's forwarded request facts: a client certificate (XFCC or X-Client-Cert) or a forwarded
  host from a peer that is not a trusted proxy, a spoofed forwarded host changing htu, two certificates, malformed
  or repeated headers [forwarded-*]
"""
from __future__ import annotations

import time
import uuid
from urllib.parse import quote
from typing import Any, Callable

import pytest

from lambdas.authorizers.runtime import AuthorizerRuntime
from lambdas.forward_auth.proxy_facts import parse_public_origin, parse_trusted_proxies
from lambdas.forward_auth.service import ForwardAuthService, ForwardAuthSettings
from lambdas.validation.denylist import Denylist, MemoryDenylistStore
from lambdas.validation.dpop_nonce import STEP_SECONDS, DpopNonces
from lambdas.validation.errors import TokenRejected
from lambdas.validation.logout_token import BACKCHANNEL_LOGOUT_EVENT, LogoutTokenValidator
from lambdas.validation.possession import RequestChecks, dpop_nonce_header
from lambdas.validation.replay import MemoryReplayStore
from lambdas.validation.route_decision import Outcome, decide_request
from lambdas.validation.route_table import RouteTable
from tests.support.client_certs import client_certificate
from tests.support.dpop import make_proof, public_jwk, thumbprint
from tests.support.keys import SIGNING_KEY as ISSUER_KEY  # the run's trusted key
from tests.support.route_tables import route, table_document
from tests.support.tokens import ISSUER, SigningKey, b64url, b64url_json, mint

CLIENT_KEY = SigningKey.generate("ES256")
HOST = "https://api.example.com"
PEM, X5T, _ = client_certificate()
OTHER_PEM, _, _ = client_certificate("intruder")
DOCUMENT = table_document(ISSUER_KEY, [route("GET /orders"), route("POST /orders", proof="dpop"),
                                       route("DELETE /orders/{id}", proof="mtls"),
                                       route("GET /orders/{id}", freshness="denylist"),
                                       route("PUT /orders/{id}", proof="dpop", dpop_nonce="required")])
DOCUMENT["issuers"]["corp"].update(binding={"dpop": True, "mtls": True},
                                   revocation={"cache_seconds": 0, "logout_audiences": ["orders-web"]})
TABLE = RouteTable.load(DOCUMENT)
NONCE_KEY = b"authgate attack corpus nonce key"
NONCES = DpopNonces(NONCE_KEY)


class Request:
    def __init__(self, method: str, path: str, authorization: str | None, **facts: Any) -> None:
        self.method, self.path, self.authorization, self.facts = method, path, authorization, facts


def bound(**claims) -> str:
    return mint(ISSUER_KEY, cnf={"jkt": thumbprint(CLIENT_KEY)}, **claims)


def dpop_request(method="POST", path="/orders", *, token=None, key=CLIENT_KEY, proof_method=None, proof_uri=None,
                 **proof_options) -> Request:
    token = token or bound()
    proof = make_proof(key, proof_method or method, proof_uri or HOST + path, token, **proof_options)
    return Request(method, path, f"DPoP {token}", dpop_proof=proof, request_uri=HOST + path)


def _replayed(checks: RequestChecks) -> Request:
    request = dpop_request()
    decision = decide(request, checks)
    assert decision.outcome is Outcome.ALLOW, decision.message  # the first use passes
    return request


def _altered() -> Request:
    request = dpop_request()
    header, _, signature = request.facts["dpop_proof"].split(".")
    claims = b64url_json({"jti": "x", "htm": "DELETE", "htu": HOST + "/orders", "iat": int(time.time())})
    request.facts["dpop_proof"] = f"{header}.{claims}.{signature}"
    return request


def _hs256_proof() -> Request:
    token = bound()
    header = {"typ": "dpop+jwt", "alg": "HS256", "jwk": public_jwk(CLIENT_KEY)}
    body = {"jti": "j", "htm": "POST", "htu": HOST + "/orders", "iat": int(time.time())}
    import hashlib
    import hmac
    signing_input = f"{b64url_json(header)}.{b64url_json(body)}".encode()
    signature = hmac.new(b"public", signing_input, hashlib.sha256).digest()
    return Request("POST", "/orders", f"DPoP {token}", dpop_proof=f"{signing_input.decode()}.{b64url(signature)}",
                   request_uri=HOST + "/orders")


def _nonce_request(nonce: Any) -> Request:
    """A proof on the dpop_nonce route PUT /orders/{id} whose nonce claim is `nonce` (None: no nonce claim)."""
    return dpop_request("PUT", "/orders/7", claims={"nonce": nonce})


def _nonce_steps_ago(steps: int) -> str:
    then = time.time() - steps * STEP_SECONDS
    return DpopNonces(NONCE_KEY, clock=lambda: then).current()


def _checks() -> RequestChecks:
    return RequestChecks(replay=MemoryReplayStore(), denylist=Denylist(MemoryDenylistStore()), nonces=NONCES)


def _revoked(kind: str) -> Callable[[RequestChecks], Request]:
    """A request on a freshness: denylist route whose token's jti, origin_jti, sid or sub was revoked after issue."""
    def build(checks: RequestChecks) -> Request:
        value = uuid.uuid4().hex
        claims = {"jti": value} if kind == "jti" else {kind: value}
        token = mint(ISSUER_KEY, **claims, now=time.time() - 30)
        checks.denylist.revoke(ISSUER, "jti" if kind == "origin_jti" else kind, value, lifetime_seconds=600)
        return Request("GET", "/orders/1", f"Bearer {token}")
    return build


CATALOGUE: dict[str, tuple[str, Callable[..., Request]]] = {
    "bound-as-bearer-dpop-route": ("dpop_bound_token", lambda: Request("POST", "/orders", f"Bearer {bound()}")),
    "bound-as-bearer-ordinary-route": ("dpop_bound_token", lambda: Request("GET", "/orders", f"Bearer {bound()}")),
    "bound-as-bare-token": ("dpop_bound_token", lambda: Request("GET", "/orders", bound())),
    "proof-other-method": ("invalid_dpop_proof", lambda: dpop_request(proof_method="GET")),
    "proof-other-url": ("invalid_dpop_proof", lambda: dpop_request(proof_uri=HOST + "/admin")),
    "proof-other-host": ("invalid_dpop_proof", lambda: dpop_request(proof_uri="https://evil.example.com/orders")),
    "proof-replayed": ("invalid_dpop_proof", _replayed),
    "proof-other-key": ("invalid_dpop_proof", lambda: dpop_request(key=SigningKey.generate("ES256"))),
    "proof-missing": ("invalid_dpop_proof",
                      lambda: Request("POST", "/orders", f"DPoP {bound()}", request_uri=HOST + "/orders")),
    "proof-repeated": ("invalid_dpop_proof", lambda: (lambda r: (r.facts.update(
        dpop_proof=[r.facts["dpop_proof"]] * 2), r)[1])(dpop_request())),
    "proof-not-a-jwt": ("invalid_dpop_proof", lambda: (lambda r: (r.facts.update(dpop_proof="not.a-jwt"), r)[1])(
        dpop_request())),
    "proof-typ-jwt": ("invalid_dpop_proof", lambda: dpop_request(header={"typ": "JWT"})),
    "proof-alg-none": ("invalid_dpop_proof", lambda: dpop_request(header={"alg": "none"})),
    "proof-alg-hs256": ("invalid_dpop_proof", _hs256_proof),
    "proof-alg-not-allowed": ("invalid_dpop_proof", lambda: dpop_request(key=SigningKey.generate("ES512"))),
    "proof-no-jwk": ("invalid_dpop_proof", lambda: dpop_request(header={"jwk": None})),
    "proof-private-jwk": ("invalid_dpop_proof", lambda: dpop_request(
        header={"jwk": dict(public_jwk(CLIENT_KEY), d=b64url(b"\x07" * 32))})),
    "proof-symmetric-jwk": ("invalid_dpop_proof", lambda: dpop_request(header={"jwk": {"kty": "oct", "k": "AAAA"}})),
    "proof-iat-old": ("invalid_dpop_proof", lambda: dpop_request(now=time.time() - 3600)),
    "proof-iat-future": ("invalid_dpop_proof", lambda: dpop_request(now=time.time() + 3600)),
    "proof-no-jti": ("invalid_dpop_proof", lambda: dpop_request(claims={"jti": None})),
    "proof-no-ath": ("invalid_dpop_proof", lambda: dpop_request(claims={"ath": None})),
    "proof-ath-of-another-token": ("invalid_dpop_proof", lambda: dpop_request(claims={"ath": "A" * 43})),
    "proof-altered": ("invalid_dpop_proof", _altered),
    "unbound-bearer-on-dpop-route": ("dpop_required", lambda: Request("POST", "/orders",
                                                                      f"Bearer {mint(ISSUER_KEY)}")),
    "unbound-with-dpop-scheme": ("invalid_dpop_proof", lambda: dpop_request(token=mint(ISSUER_KEY))),
    "cert-other-certificate": ("certificate_mismatch", lambda: Request(
        "DELETE", "/orders/1", f"Bearer {mint(ISSUER_KEY, cnf={'x5t#S256': X5T})}", client_certificate=OTHER_PEM)),
    "cert-none": ("certificate_required", lambda: Request(
        "DELETE", "/orders/1", f"Bearer {mint(ISSUER_KEY, cnf={'x5t#S256': X5T})}")),
    "cert-bound-on-ordinary-route-without-certificate": ("certificate_required", lambda: Request(
        "GET", "/orders", f"Bearer {mint(ISSUER_KEY, cnf={'x5t#S256': X5T})}")),
    "cert-garbage": ("certificate_required", lambda: Request(
        "DELETE", "/orders/1", f"Bearer {mint(ISSUER_KEY, cnf={'x5t#S256': X5T})}",
        client_certificate="-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----")),
    "cert-unbound-token-on-mtls-route": ("certificate_required", lambda: Request(
        "DELETE", "/orders/1", f"Bearer {mint(ISSUER_KEY)}", client_certificate=PEM)),
    "revoked-jti": ("revoked", _revoked("jti")),
    "revoked-origin-jti": ("revoked", _revoked("origin_jti")),
    "revoked-session": ("revoked", _revoked("sid")),
    "revoked-subject": ("revoked", _revoked("sub")),
    "nonce-missing": ("use_dpop_nonce", lambda: _nonce_request(None)),
    "nonce-stale": ("use_dpop_nonce", lambda: _nonce_request(_nonce_steps_ago(2))),
    "nonce-forged": ("use_dpop_nonce", lambda: _nonce_request(NONCES.current()[:-2] + "AA")),
    "nonce-from-another-key": ("use_dpop_nonce", lambda: _nonce_request(DpopNonces(b"\x00" * 32).current())),
    "nonce-not-a-string": ("use_dpop_nonce", lambda: _nonce_request(["n"])),
}


def decide(request: Request, checks: RequestChecks):
    return decide_request(TABLE.api("orders"), VERIFIER, request.method, request.path, request.authorization,
                          checks=checks, **request.facts)


VERIFIER = TABLE.verifier()


@pytest.mark.parametrize("name", CATALOGUE)
def test_catalogued_request_is_refused_with_its_code(name):
    code, build = CATALOGUE[name]
    checks = _checks()
    request = build(checks) if build.__code__.co_argcount == 1 else build()
    decision = decide(request, checks)
    assert decision.outcome is Outcome.UNAUTHORIZED and decision.code == code, (decision.code, decision.message)
    shown = f"{decision.rejection.message} {decision.rejection.found} {decision.rejection.hint}"
    for secret in (request.authorization or "").split(" ")[-1:] + [request.facts.get("dpop_proof") or ""]:
        if isinstance(secret, str) and len(secret) > 20:
            assert secret not in shown and secret.split(".")[-1] not in shown
    # RFC 9449 section 9: a use_dpop_nonce refusal hands out the nonce to retry with, and no other refusal does.
    header = dpop_nonce_header(decision.rejection)
    assert (header == ("DPoP-Nonce", NONCES.current())) if code == "use_dpop_nonce" else header is None


def test_a_nonce_route_without_a_nonce_key_fails_closed():
    checks = RequestChecks(replay=MemoryReplayStore())
    decision = decide(_nonce_request(NONCES.current()), checks)
    assert decision.outcome is Outcome.UNAVAILABLE and decision.code == "dpop_nonce_unavailable"


def test_the_same_requests_done_right_are_allowed():
    checks = _checks()
    for request in (dpop_request(), _nonce_request(NONCES.current()), _nonce_request(_nonce_steps_ago(1)),
                    Request("GET", "/orders", f"Bearer {mint(ISSUER_KEY)}"),
                    Request("DELETE", "/orders/1", f"Bearer {mint(ISSUER_KEY, cnf={'x5t#S256': X5T})}",
                            client_certificate=PEM),
                    Request("GET", "/orders/1", f"Bearer {mint(ISSUER_KEY)}")):
        decision = decide(request, checks)
        assert decision.outcome is Outcome.ALLOW, decision.message


def _logout(**overrides) -> str:
    claims = {"iss": ISSUER, "aud": "orders-web", "iat": int(time.time()), "jti": uuid.uuid4().hex, "sid": "s",
              "events": {BACKCHANNEL_LOGOUT_EVENT: {}}}
    typ = overrides.pop("typ", "logout+jwt")
    claims.update(overrides)
    return mint(ISSUER_KEY, {k: v for k, v in claims.items() if v is not None}, typ=typ)


LOGOUT_CATALOGUE = {
    "logout-access-token-typ": lambda: _logout(typ="at+jwt"),
    "logout-other-audience": lambda: _logout(aud="billing-web"),
    "logout-stale": lambda: _logout(iat=int(time.time()) - 3600),
    "logout-nonce": lambda: _logout(nonce="n"),
    "logout-no-events": lambda: _logout(events=None),
    "logout-no-sid-or-sub": lambda: _logout(sid=None),
    "logout-no-jti": lambda: _logout(jti=None),
    "logout-id-token": lambda: mint(ISSUER_KEY, typ="JWT", audience="orders-web", nonce="n"),
    "logout-other-key": lambda: mint(SigningKey.generate("RS256", kid=ISSUER_KEY.kid), {
        "iss": ISSUER, "aud": "orders-web", "iat": int(time.time()), "jti": "j", "sid": "s",
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}}}, typ="logout+jwt"),
}


@pytest.mark.parametrize("name", LOGOUT_CATALOGUE)
def test_catalogued_logout_token_is_refused(name):
    validator = LogoutTokenValidator(VERIFIER, MemoryReplayStore())
    token = LOGOUT_CATALOGUE[name]()
    with pytest.raises(TokenRejected) as info:
        validator.validate(token)
    assert info.value.code == "invalid_logout_token"
    assert token.split(".")[2] not in f"{info.value.message} {info.value.found}"


def test_a_replayed_logout_token_is_refused():
    validator = LogoutTokenValidator(VERIFIER, MemoryReplayStore())
    token = _logout()
    validator.validate(token)
    with pytest.raises(TokenRejected, match="already received"):
        validator.validate(token)


# --- the forward-auth service: request facts forwarded by a proxy ----------------------------------------------
PROXY, STRANGER = "10.0.0.7", "10.9.9.9"
FORWARD_HOST = "api.example.com"


def forward_auth(public_origin: str | None = None) -> ForwardAuthService:
    checks = RequestChecks(replay=MemoryReplayStore(), denylist=Denylist(MemoryDenylistStore()))
    settings = ForwardAuthSettings(convention="auto", trusted_proxies=parse_trusted_proxies(f"{PROXY}/32"),
                                   public_origin=parse_public_origin(public_origin))
    return ForwardAuthService(AuthorizerRuntime(TABLE, "orders", request_checks=checks), settings)


def _headers(authorization: str, base: dict, extra: dict) -> dict:
    out = {**base, "authorization": (authorization,)}
    out.update({name.replace("_", "-"): value if isinstance(value, tuple) else (value,)
                for name, value in extra.items()})
    return out


def nginx_check(method: str, path: str, authorization: str, **headers: str | tuple) -> tuple[str, str, dict]:
    """A check request as the rendered NGINX block sends it (auth_request)."""
    return "GET", "/nginx-auth-request", _headers(authorization, {
        "x-original-method": (method,), "x-original-uri": (path,), "x-forwarded-proto": ("https",),
        "x-forwarded-host": (FORWARD_HOST,)}, headers)


def envoy_check(method: str, path: str, authorization: str, **headers: str | tuple) -> tuple[str, str, dict]:
    """A check request as Envoy's HTTP ext_authz sends it (Envoy Gateway extAuth, Istio CUSTOM)."""
    return method, "/ext-authz" + path, _headers(authorization, {"host": (FORWARD_HOST,),
                                                                 "x-forwarded-proto": ("https",)}, headers)


def xfcc(*pems: str) -> str:
    return ",".join(f'By=spiffe://cluster/ns/edge;Cert="{quote(pem, safe="")}"' for pem in pems)


def cert_bound() -> str:
    return f"Bearer {mint(ISSUER_KEY, cnf={'x5t#S256': X5T})}"


def dpop_check(proof_host: str = FORWARD_HOST, **headers: str) -> tuple[str, str, dict]:
    token = bound()
    proof = make_proof(CLIENT_KEY, "POST", f"https://{proof_host}/orders", token)
    return nginx_check("POST", "/orders", f"DPoP {token}", dpop=proof, **headers)


def _without(check: tuple[str, str, dict], name: str) -> tuple[str, str, dict]:
    method, path, headers = check
    return method, path, {key: value for key, value in headers.items() if key != name}


# name -> (status, code, peer, public origin, check request)
FORWARDED_CATALOGUE: dict[str, tuple[int, str, str, str | None, Callable[[], tuple]]] = {
    "forwarded-xfcc-from-an-untrusted-peer": (401, "certificate_required", STRANGER, None, lambda: envoy_check(
        "DELETE", "/orders/1", cert_bound(), x_forwarded_client_cert=xfcc(PEM))),
    "forwarded-escaped-cert-from-an-untrusted-peer": (401, "certificate_required", STRANGER, None, lambda: nginx_check(
        "DELETE", "/orders/1", cert_bound(), x_client_cert=quote(PEM, safe=""))),
    "forwarded-host-from-an-untrusted-peer": (401, "invalid_dpop_proof", STRANGER, None, lambda: dpop_check()),
    # A proof made for another host; the client (or an untrusted peer) names that host to match it.
    "forwarded-spoofed-host-changing-htu-untrusted": (401, "invalid_dpop_proof", STRANGER, "https://api.example.com",
                                                      lambda: dpop_check("evil.example",
                                                                         x_forwarded_host="evil.example")),
    "forwarded-spoofed-host-against-the-public-origin": (401, "invalid_dpop_proof", PROXY, "https://api.example.com",
                                                         lambda: dpop_check("evil.example",
                                                                            x_forwarded_host="evil.example")),
    "forwarded-two-certificates-in-xfcc": (400, "bad_check_request", PROXY, None, lambda: envoy_check(
        "DELETE", "/orders/1", cert_bound(), x_forwarded_client_cert=xfcc(PEM, OTHER_PEM))),
    "forwarded-client-xfcc-appended-to": (400, "bad_check_request", PROXY, None, lambda: envoy_check(
        "DELETE", "/orders/1", cert_bound(), x_forwarded_client_cert="By=client;Hash=00," + xfcc(PEM))),
    "forwarded-malformed-xfcc": (400, "bad_check_request", PROXY, None, lambda: envoy_check(
        "DELETE", "/orders/1", cert_bound(), x_forwarded_client_cert=xfcc(PEM)[:-1])),
    "forwarded-xfcc-with-garbage-cert": (400, "bad_check_request", PROXY, None, lambda: envoy_check(
        "DELETE", "/orders/1", cert_bound(), x_forwarded_client_cert='Cert="not-a-certificate"')),
    "forwarded-xfcc-sent-twice": (400, "bad_check_request", PROXY, None, lambda: envoy_check(
        "DELETE", "/orders/1", cert_bound(), x_forwarded_client_cert=(xfcc(PEM), xfcc(PEM)))),
    "forwarded-escaped-cert-sent-twice": (400, "bad_check_request", PROXY, None, lambda: nginx_check(
        "DELETE", "/orders/1", cert_bound(), x_client_cert=(quote(PEM, safe=""), quote(OTHER_PEM, safe="")))),
    # NGINX passes a client's own XFCC on to auth_request: under the nginx convention it is never read.
    "forwarded-client-xfcc-through-nginx": (401, "certificate_required", PROXY, None, lambda: nginx_check(
        "DELETE", "/orders/1", cert_bound(), x_forwarded_client_cert=xfcc(PEM))),
    "forwarded-other-certificate": (401, "certificate_mismatch", PROXY, None, lambda: envoy_check(
        "DELETE", "/orders/1", cert_bound(), x_forwarded_client_cert=xfcc(OTHER_PEM))),
    "forwarded-host-list": (400, "bad_check_request", PROXY, None, lambda: dpop_check(
        x_forwarded_host=f"{FORWARD_HOST}, evil.example")),
    "forwarded-host-sent-twice": (400, "bad_check_request", PROXY, None, lambda: dpop_check(
        x_forwarded_host=(FORWARD_HOST, "evil.example"))),
    "forwarded-proto-not-http": (400, "bad_check_request", PROXY, None, lambda: dpop_check(x_forwarded_proto="ftp")),
    "forwarded-no-host-from-the-proxy": (401, "invalid_dpop_proof", PROXY, None,
                                         lambda: _without(dpop_check(), "x-forwarded-host")),
}


@pytest.mark.parametrize("name", FORWARDED_CATALOGUE)
def test_catalogued_forwarded_facts_are_refused(name):
    status, code, peer, public_origin, build = FORWARDED_CATALOGUE[name]
    method, path, headers = build()
    answer = forward_auth(public_origin).check(method, path, headers, peer=peer)
    assert (answer.status, answer.code) == (status, code), answer.body
    if peer == STRANGER and status == 401:
        assert b"not a trusted proxy" in answer.body   # the refusal says why the proxy's headers went unread


def test_forwarded_facts_done_right_are_allowed():
    service = forward_auth()
    for method, path, headers in (
            envoy_check("DELETE", "/orders/1", cert_bound(), x_forwarded_client_cert=xfcc(PEM)),
            nginx_check("DELETE", "/orders/1", cert_bound(), x_client_cert=quote(PEM, safe="")),
            dpop_check()):
        answer = service.check(method, path, headers, peer=PROXY)
        assert answer.status == 200, answer.body
    # A public origin needs no forwarded host: the proof for it passes from any peer, the proxy's host is not read.
    answer = forward_auth("https://api.example.com").check(*dpop_check(x_forwarded_host="evil.example"),
                                                         peer=STRANGER)
    assert answer.status == 200, answer.body
