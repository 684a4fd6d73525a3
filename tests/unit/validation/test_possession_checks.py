"""RequestChecks: what a route's proof and freshness, and a token's cnf, demand of one request. Real tokens, real
DPoP proofs and real X.509 client certificates."""
from __future__ import annotations

import hashlib
import time
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from lambdas.validation import IssuerConfig, Verifier
from lambdas.validation.cert_binding import (api_gateway_client_certificate, certificate_thumbprint,
                                             escaped_client_certificate, xfcc_client_certificate, xfcc_elements)
from lambdas.validation.config import BindingConfig
from lambdas.validation.denylist import Denylist, MemoryDenylistStore
from lambdas.validation.errors import TokenRejected
from lambdas.validation.possession import (RequestChecks, RequestFacts, authorization_credentials, confirmation,
                                           www_authenticate)
from lambdas.validation.replay import MemoryReplayStore
from tests.support.client_certs import client_certificate
from tests.support.dpop import make_proof, thumbprint
from tests.support.keys import SIGNING_KEY as ISSUER_KEY  # the run's trusted key
from tests.support.tokens import AUDIENCE, ISSUER, SigningKey, mint

URI = "https://api.example.com/orders"
CLIENT_KEY = SigningKey.generate("ES256")
CONFIG = IssuerConfig(ISSUER, [AUDIENCE], jwks=ISSUER_KEY.jwks(), name="corp",
                      binding=BindingConfig(dpop=True, mtls=True))
VERIFIER = Verifier([CONFIG])
PEM, X5T, _ = client_certificate()
OTHER_PEM, _, _ = client_certificate("intruder")
DER = x509.load_pem_x509_certificate(PEM.encode()).public_bytes(Encoding.DER)


def token(**claims) -> tuple[str, object]:
    raw = mint(ISSUER_KEY, **claims)
    return raw, VERIFIER.authenticate(raw)


def run(raw, principal, facts, *, proof="none", freshness="none", checks=None):
    checks = checks or RequestChecks(replay=MemoryReplayStore())
    checks.check(proof=proof, freshness=freshness, issuer=CONFIG, principal=principal, token=raw, facts=facts)


def dpop_facts(raw, key=CLIENT_KEY, method="GET", uri=URI, **proof_options):
    return RequestFacts(scheme="dpop", method=method, uri=uri,
                        dpop_proof=make_proof(key, method, uri, raw, **proof_options))


def refused(code, raw, principal, facts, **route):
    with pytest.raises(TokenRejected) as info:
        run(raw, principal, facts, **route)
    assert info.value.code == code, info.value.message
    return info.value


def test_bearer_token_without_binding_passes_on_ordinary_routes():
    raw, principal = token()
    run(raw, principal, RequestFacts())


def test_dpop_bound_token_with_its_proof_passes_on_any_route():
    raw, principal = token(cnf={"jkt": thumbprint(CLIENT_KEY)})
    run(raw, principal, dpop_facts(raw), proof="dpop")
    run(raw, principal, dpop_facts(raw), proof="none")


@pytest.mark.parametrize("proof", ["none", "dpop", "mtls"])
def test_dpop_bound_token_as_bearer_is_refused_on_every_route(proof):
    raw, principal = token(cnf={"jkt": thumbprint(CLIENT_KEY)})
    refused("dpop_bound_token", raw, principal, RequestFacts(method="GET", uri=URI), proof=proof)


def test_dpop_route_refuses_an_unbound_bearer_token():
    raw, principal = token()
    refused("dpop_required", raw, principal, RequestFacts(method="GET", uri=URI), proof="dpop")


def test_dpop_scheme_with_an_unbound_token_is_refused():
    raw, principal = token()
    refused("invalid_dpop_proof", raw, principal, dpop_facts(raw))


def test_proof_for_another_method_url_key_or_replayed():
    raw, principal = token(cnf={"jkt": thumbprint(CLIENT_KEY)})
    proof = make_proof(CLIENT_KEY, "GET", URI, raw)
    for facts in (RequestFacts("dpop", "DELETE", URI, proof), RequestFacts("dpop", "GET", URI + "/1", proof),
                  dpop_facts(raw, key=SigningKey.generate("ES256"))):
        refused("invalid_dpop_proof", raw, principal, facts, proof="dpop")
    checks = RequestChecks(replay=MemoryReplayStore())
    run(raw, principal, RequestFacts("dpop", "GET", URI, proof), proof="dpop", checks=checks)
    with pytest.raises(TokenRejected, match="already used"):
        run(raw, principal, RequestFacts("dpop", "GET", URI, proof), proof="dpop", checks=checks)


def test_dpop_without_a_replay_store_fails_closed():
    raw, principal = token(cnf={"jkt": thumbprint(CLIENT_KEY)})
    with pytest.raises(TokenRejected) as info:
        run(raw, principal, dpop_facts(raw), proof="dpop", checks=RequestChecks())
    assert info.value.code == "replay_store_unavailable"


def test_certificate_bound_token_with_its_certificate_passes():
    raw, principal = token(cnf={"x5t#S256": X5T})
    run(raw, principal, RequestFacts(client_certificate=PEM), proof="mtls")
    run(raw, principal, RequestFacts(client_certificate=PEM))


def test_certificate_bound_token_with_another_certificate_or_none_is_refused():
    raw, principal = token(cnf={"x5t#S256": X5T})
    refused("certificate_mismatch", raw, principal, RequestFacts(client_certificate=OTHER_PEM), proof="mtls")
    refused("certificate_required", raw, principal, RequestFacts(), proof="mtls")
    # Bound tokens are checked on every route: a thief without the certificate gets nowhere.
    refused("certificate_required", raw, principal, RequestFacts(), proof="none")


def test_mtls_route_refuses_an_unbound_token_even_with_a_certificate():
    raw, principal = token()
    refused("certificate_required", raw, principal, RequestFacts(client_certificate=PEM), proof="mtls")


def test_token_bound_both_ways_needs_both_proofs():
    raw, principal = token(cnf={"jkt": thumbprint(CLIENT_KEY), "x5t#S256": X5T})
    refused("certificate_required", raw, principal, dpop_facts(raw), proof="dpop")
    facts = dpop_facts(raw)
    run(raw, principal, RequestFacts(facts.scheme, facts.method, facts.uri, facts.dpop_proof, PEM), proof="dpop")


@pytest.mark.parametrize("cnf", ["jkt", {"jkt": 5}, {"x5t#S256": ""}])
def test_malformed_cnf_is_refused(cnf):
    with pytest.raises(TokenRejected) as info:
        confirmation({"cnf": cnf})
    assert info.value.code == "malformed"


def test_freshness_denylist_refuses_revoked_tokens_within_the_cache_staleness():
    raw, principal = token()
    now = [time.time()]
    denylist = Denylist(MemoryDenylistStore(clock=lambda: now[0]), clock=lambda: now[0])
    checks = RequestChecks(denylist=denylist)
    run(raw, principal, RequestFacts(), freshness="denylist", checks=checks)
    denylist.revoke(ISSUER, "jti", principal.jti, lifetime_seconds=600)
    # The lookup before the revocation is reused for revocation.cache_seconds (5): the stated staleness bound.
    assert CONFIG.revocation.cache_seconds == 5
    now[0] += 4
    run(raw, principal, RequestFacts(), freshness="denylist", checks=checks)
    now[0] += 1.5
    with pytest.raises(TokenRejected) as info:
        run(raw, principal, RequestFacts(), freshness="denylist", checks=checks)
    assert info.value.code == "revoked"
    run(raw, principal, RequestFacts(), freshness="none", checks=checks)  # a freshness: none route still accepts it


def test_freshness_denylist_without_a_store_fails_closed():
    raw, principal = token()
    with pytest.raises(TokenRejected) as info:
        run(raw, principal, RequestFacts(), freshness="denylist", checks=RequestChecks())
    assert info.value.code == "denylist_unavailable"


def test_certificate_thumbprint_and_where_certificates_come_from():
    assert certificate_thumbprint(PEM) == X5T
    rest = {"requestContext": {"identity": {"clientCert": {"clientCertPem": PEM}}}}
    http = {"requestContext": {"authentication": {"clientCert": {"clientCertPem": PEM}}}}
    assert api_gateway_client_certificate(rest) == PEM == api_gateway_client_certificate(http)
    assert api_gateway_client_certificate({"requestContext": {}}) is None
    # Envoy's XFCC: the edge's element first (Cert, its Hash), then an Istio sidecar's own hop (no Cert).
    xfcc = (f'By=spiffe://cluster/ns/a;Hash={hashlib.sha256(DER).hexdigest()};Cert="{quote(PEM, safe="")}";'
            f'Subject="CN=x",By=spiffe://cluster/ns/b;Hash=00;URI=spiffe://cluster/ns/gateway')
    assert xfcc_client_certificate(xfcc) == PEM
    assert escaped_client_certificate(quote(PEM, safe="")) == PEM  # NGINX $ssl_client_escaped_cert
    assert xfcc_client_certificate("Hash=abc;URI=spiffe://x") is None
    assert xfcc_client_certificate(None) is None and escaped_client_certificate("") is None
    with pytest.raises(ValueError, match="no PEM certificate"):
        certificate_thumbprint("-----BEGIN CERTIFICATE-----garbage")


@pytest.mark.parametrize("value, expected", [("Bearer abc", ("bearer", "abc")), ("DPoP abc", ("dpop", "abc")),
                                             ("dpop  abc ", ("dpop", "abc")), ("abc", ("bearer", "abc"))])
def test_authorization_schemes(value, expected):
    assert authorization_credentials(value) == expected


@pytest.mark.parametrize("value", ["Basic abc", ("Bearer a", "Bearer b"), ["a", "b"], (), "", None, "DPoP a b",
                                   # whitespace of every kind inside the token, and control characters
                                   "Bearer a\tb", "Bearer a\nb", "Bearer a\x0bb", "Bearer a\x1fb", "Bearer a\x85b",
                                   "Bearer a\xa0b", "Bearer a\u2003b", "Bearer a\u2028b", "Bearer a\u3000b",
                                   "Bearer a\x00b", "Bearer a\x7fb"])
def test_authorization_refusals(value):
    with pytest.raises(TokenRejected) as info:
        authorization_credentials(value)
    assert info.value.code == "malformed"


def test_www_authenticate_per_route_kind():
    assert www_authenticate(None, proof="dpop", issuer=CONFIG) == 'DPoP algs="ES256 PS256 RS256 EdDSA"'
    assert www_authenticate(TokenRejected("dpop_bound_token", "x"), proof="none", issuer=CONFIG).startswith(
        'DPoP error="invalid_token"')
    assert www_authenticate(TokenRejected("expired", "x"), proof="none") == 'Bearer error="invalid_token"'


def test_proof_time_window_comes_from_the_issuer():
    raw, principal = token(cnf={"jkt": thumbprint(CLIENT_KEY)})
    refused("invalid_dpop_proof", raw, principal, dpop_facts(raw, now=time.time() - 120), proof="dpop")


def test_xfcc_grammar_quotes_escapes_and_repeated_keys():
    assert xfcc_elements('By=a;Subject="CN=x, O=\\"q\\"";URI=u1;URI=u2, Hash=h') == [
        {"by": ["a"], "subject": ['CN=x, O="q"'], "uri": ["u1", "u2"]}, {"hash": ["h"]}]


@pytest.mark.parametrize("value, message", [
    ("Cert", "KEY=VALUE"),
    ('Cert="%s', "not closed"),
    ('Cert="%s"x', "text after"),
    ('Cert="%s";', "KEY=VALUE"),
    ('Hash=a"b', "unquoted"),
    ('By=edge,Cert="%s"', "more than one client certificate"),
    ('Cert="%s",Cert="%s"', "more than one client certificate"),
    ('Cert="%s";Cert="%s"', "more than one client certificate"),
    ('Hash=00;Cert="%s"', "Hash is not the SHA-256"),
    ('Cert="-----BEGIN%20CERTIFICATE-----%0AAAAA%0A-----END%20CERTIFICATE-----"', "cannot be parsed"),
    ('Cert="hello"', "exactly one"),
    ('Cert="%s%s"', "exactly one"),
])
def test_xfcc_refusals(value, message):
    filled = value.replace("%s", quote(PEM, safe=""))
    with pytest.raises(ValueError, match=message):
        xfcc_client_certificate(filled)


def test_escaped_certificate_refusals():
    with pytest.raises(ValueError, match="exactly one"):
        escaped_client_certificate("garbage")
    with pytest.raises(ValueError, match="exactly one"):
        escaped_client_certificate(quote(PEM + PEM, safe=""))
