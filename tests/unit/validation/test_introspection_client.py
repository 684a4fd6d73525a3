"""The RFC 7662 client against a real https endpoint on 127.0.0.1: client authentication, the checks on the answer,
the cache (keyed by a hash of the token, bounded by exp), discovery of the endpoint, and failing closed."""
from __future__ import annotations

import base64
import time
from urllib.parse import parse_qs

import pytest

from lambdas.validation import IssuerConfig
from lambdas.validation.config import IntrospectionConfig
from lambdas.validation.errors import TokenRejected
from lambdas.validation.fetcher import HttpFetcher
from lambdas.validation.introspection import IntrospectionClient
from tests.support.http_server import LocalHttpServer, Reply, https_server  # noqa: F401  (fixture)

SECRET = "s3cr:t/+"
ENV = {"CORP_INTROSPECTION_SECRET": SECRET}


class Endpoint:
    """An introspection endpoint: tokens it knows, with their answers; checks the caller's credentials."""

    def __init__(self, server, issuer: str) -> None:
        self.server, self.issuer, self.known = server, issuer, {}
        server.handle("/introspect", self.answer)

    def answer(self, request) -> Reply:
        auth = {k.lower(): v for k, v in request.headers.items()}.get("authorization", "")
        if auth != "Basic " + base64.b64encode(f"gateway:{SECRET.replace(':', '%3A').replace('/', '%2F').replace('+', '%2B')}".encode()).decode():
            return Reply({"error": "invalid_client"}, status=401)
        form = parse_qs(request.body.decode())
        if request.method != "POST" or form.get("token_type_hint") != ["access_token"]:
            return Reply({"error": "invalid_request"}, status=400)
        return Reply(self.known.get(form["token"][0], {"active": False}))


def client_for(server, *, endpoint=True, clock=time.time, **settings):
    issuer = server.base_url
    config = IssuerConfig(issuer, ["orders-api"], jwks={"keys": []}, allow_insecure_http=False, name="corp",
                          introspection=IntrospectionConfig(
                              client_id="gateway", client_secret_env="CORP_INTROSPECTION_SECRET",
                              endpoint=server.url("/introspect") if endpoint else None, **settings))
    return IntrospectionClient(config, fetcher=HttpFetcher(ssl_context=server.client_ssl_context()), environ=ENV,
                               clock=clock)


def active(server, **extra):
    answer = {"active": True, "iss": server.base_url, "aud": "orders-api", "sub": "alice", "client_id": "web",
              "scope": "orders:read orders:write", "exp": int(time.time()) + 300}
    answer.update(extra)
    return answer


def test_active_opaque_token_becomes_a_principal(https_server):
    endpoint = Endpoint(https_server, https_server.base_url)
    endpoint.known["opaque-1"] = active(https_server)
    principal = client_for(https_server).principal("opaque-1")
    assert (principal.subject, principal.client_id, principal.scopes) == ("alice", "web", ("orders:read",
                                                                                            "orders:write"))
    assert principal.issuer_name == "corp" and principal.audience == ("orders-api",)


def test_inactive_wrong_audience_wrong_issuer_expired_are_refused(https_server):
    endpoint = Endpoint(https_server, https_server.base_url)
    endpoint.known.update({"aud": active(https_server, aud=["billing-api"]),
                           "iss": active(https_server, iss="https://other.example.com"),
                           "exp": active(https_server, exp=int(time.time()) - 120),
                           "noaud": active(https_server, aud=None)})
    client = client_for(https_server)
    for token, code in (("unknown", "inactive_token"), ("aud", "invalid_audience"), ("iss", "unknown_issuer"),
                        ("exp", "expired"), ("noaud", "invalid_audience")):
        with pytest.raises(TokenRejected) as info:
            client.introspect(token)
        assert info.value.code == code, token


def test_answers_are_cached_by_token_hash_and_never_beyond_exp(https_server):
    endpoint = Endpoint(https_server, https_server.base_url)
    now = [time.time()]
    client = client_for(https_server, clock=lambda: now[0], cache_seconds=30, negative_cache_seconds=5)
    endpoint.known["t"] = active(https_server, exp=int(now[0]) + 10)
    client.introspect("t")
    client.introspect("t")
    assert https_server.count("/introspect") == 1
    assert "t" not in client._cache and len(next(iter(client._cache))) == 64  # sha-256 hex, not the token
    del endpoint.known["t"]                       # revoked at the issuer
    now[0] += 9
    client.introspect("t")                        # still within the cached answer's life
    now[0] += 2                                   # past exp: the answer is not reused
    with pytest.raises(TokenRejected, match="not active"):
        client.introspect("t")
    with pytest.raises(TokenRejected, match="cached answer"):
        client.introspect("t")
    assert https_server.count("/introspect") == 2
    now[0] += 6
    with pytest.raises(TokenRejected):
        client.introspect("t")
    assert https_server.count("/introspect") == 3


def test_endpoint_from_discovery(https_server):
    endpoint = Endpoint(https_server, https_server.base_url)
    endpoint.known["t"] = active(https_server)
    https_server.serve_json("/.well-known/openid-configuration", {
        "issuer": https_server.base_url, "jwks_uri": https_server.url("/jwks"),
        "introspection_endpoint": https_server.url("/introspect")})
    assert client_for(https_server, endpoint=False).introspect("t")["sub"] == "alice"


def test_discovered_http_endpoint_is_refused(https_server):
    https_server.serve_json("/.well-known/openid-configuration", {
        "issuer": https_server.base_url, "jwks_uri": https_server.url("/jwks"),
        "introspection_endpoint": "http://127.0.0.1:1/introspect"})
    with pytest.raises(TokenRejected, match="https") as info:
        client_for(https_server, endpoint=False).introspect("t")
    assert info.value.code == "introspection_unavailable"


@pytest.mark.parametrize("fault", ["status", "drop", "slow", "not json", "bad secret", "no secret"])
def test_endpoint_trouble_fails_closed(https_server, fault):
    Endpoint(https_server, https_server.base_url)
    environ = dict(ENV)
    if fault == "status":
        https_server.fail("/introspect", 503)
    elif fault == "drop":
        https_server.drop("/introspect")
    elif fault == "slow":
        https_server.serve("/introspect", {"active": True}, delay=2.0)
    elif fault == "not json":
        https_server.serve("/introspect", "<html>")
    elif fault == "bad secret":
        environ["CORP_INTROSPECTION_SECRET"] = "wrong"
    else:
        environ.clear()
    client = client_for(https_server, timeout_seconds=0.5)
    client._environ = environ
    started = time.monotonic()
    with pytest.raises(TokenRejected) as info:
        client.introspect("t")
    assert info.value.code == "introspection_unavailable"
    assert time.monotonic() - started < 1.5
    assert "wrong" not in info.value.message and SECRET not in info.value.message


def test_plain_http_endpoint_is_refused_at_configuration():
    config = IssuerConfig("https://idp.example.com", ["a"], jwks={"keys": []}, introspection={
        "client_id": "gw", "client_secret_env": "X", "endpoint": "http://idp.example.com/introspect"})
    with pytest.raises(ValueError, match="https"):
        IntrospectionClient(config, environ={})


def test_confirm_needs_the_same_subject(https_server):
    endpoint = Endpoint(https_server, https_server.base_url)
    endpoint.known["t"] = active(https_server, sub="mallory")
    principal = client_for(https_server).principal("t")
    other = type(principal).__new__(type(principal))
    object.__setattr__(other, "__dict__", dict(principal.__dict__, subject="alice"))
    with pytest.raises(TokenRejected, match="sub is not the token's"):
        client_for(https_server).confirm("t", other)
