"""Property tests of the backend guards' identity headers (issue 18): whatever a client writes into
x-amzn-oidc-data, X-Apigateway-Api-Userinfo or X-MS-CLIENT-PRINCIPAL (any text, base64 of any JSON, JSON nested
hundreds of levels deep, with escapes and lone surrogates), the guard raises nothing but TokenRejected, and an ALB
header whose signature does not verify is never read past the signature check. (The first run found a GCP userinfo
whose iss was a JSON array: TypeError from the set lookup, not a refusal.)

The ALB guard's key endpoint is a real local server holding the one ALB key; a kid naming it reaches the signature
check, any other kid is refused before or at the endpoint.
"""
from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given
from hypothesis import strategies as st

from lambdas.guards.alb import AlbOidcGuard, AlbPublicKeys
from lambdas.guards.easyauth import EasyAuthGuard
from lambdas.guards.gcp import GcpGatewayGuard
from lambdas.validation import TokenRejected
from tests.security.property_budget import property_settings
from tests.support.http_server import LocalHttpServer
from tests.support.tokens import ISSUER, SigningKey

ALB_ARN = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/orders-alb/50dc6c495c0c9188"
ALB_KEY = SigningKey.generate("ES256", kid="c2f4b8a0-1d3e-4f5a-9b6c-7d8e9f0a1b2c")


BEFORE_THE_CLAIMS = {"malformed", "token_too_large", "unsupported_alg", "alg_not_allowed", "unknown_issuer",
                     "unknown_kid", "bad_signature", "jwks_unavailable"}


@pytest.fixture(scope="module")
def alb_guard():
    with LocalHttpServer() as server:
        pem = ALB_KEY.private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                            serialization.PublicFormat.SubjectPublicKeyInfo)
        server.serve(f"/{ALB_KEY.kid}", pem)
        yield AlbOidcGuard(ALB_ARN, keys=AlbPublicKeys("eu-west-1", endpoint=server.url("/"),
                                                       allow_insecure_http=True))


json_leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                        st.text(max_size=8), st.sampled_from([ISSUER, "user-1", ALB_ARN, ALB_KEY.kid]))
json_values = st.recursive(json_leaves, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.sampled_from(["iss", "sub", "exp", "claims", "typ", "val", "kid",
                                                              "alg", "signer", "x"]), inner, max_size=4),
                           max_leaves=8)


@st.composite
def json_texts(draw) -> str:
    """JSON object text: ordinary, or with a member nested 1..1200 levels deep (an escape or a lone surrogate
    at the bottom), or raw text that is JSON only by accident."""
    kind = draw(st.sampled_from(["object", "deep", "raw"]))
    if kind == "raw":
        return draw(st.text(max_size=60))
    base = json.dumps(draw(st.dictionaries(st.sampled_from(["iss", "sub", "exp", "claims", "alg", "kid", "signer"]),
                                           json_values, max_size=5)))
    if kind == "object":
        return base
    depth = draw(st.integers(1, 1200))
    leaf = draw(st.sampled_from(['"\\u0041"', '"\\ud800"', "1", "{}", '{"b":1,"b":2}']))
    opener = draw(st.sampled_from(["[", '{"a":']))
    nested = opener * depth + leaf + ("]" if opener == "[" else "}") * depth
    return base[:-1] + (", " if base != "{}" else "") + f'"x": {nested}}}'


def encoded(text: str, *, padded: bool) -> str:
    raw = base64.urlsafe_b64encode(text.encode("utf-8", "surrogatepass")).decode()
    return raw if padded else raw.rstrip("=")


header_values = st.one_of(json_texts().map(lambda t: encoded(t, padded=False)),
                          json_texts().map(lambda t: encoded(t, padded=True)),
                          json_texts().map(lambda t: base64.b64encode(t.encode("utf-8", "surrogatepass")).decode()),
                          st.text(max_size=80))


@property_settings(100)
@given(header_values)
def test_gcp_userinfo_raises_only_token_rejected(value):
    guard = GcpGatewayGuard(issuers=[ISSUER], private_ingress=True)
    try:
        guard.authenticate({"x-apigateway-api-userinfo": value})
    except TokenRejected as exc:
        assert exc.code and exc.message


@property_settings(100)
@given(header_values)
def test_easyauth_principal_raises_only_token_rejected(value):
    guard = EasyAuthGuard(insecure_accept_any_tenant=True, insecure_accept_any_audience=True)
    try:
        guard.authenticate({"x-ms-client-principal": value})
    except TokenRejected as exc:
        assert exc.code and exc.message


@property_settings(100)
@given(header=json_texts(), payload=json_texts(), signature=st.binary(max_size=70),
       padded=st.booleans(), kid=st.sampled_from([ALB_KEY.kid, None]))
def test_alb_data_raises_only_token_rejected_and_never_accepts_a_bad_signature(alb_guard, header, payload, signature,
                                                                              padded, kid):
    if kid is not None and header.startswith("{") and header.endswith("}") and '"kid"' not in header:
        header = header[:-1] + ("," if header != "{}" else "") + \
            f' "kid": "{kid}", "alg": "ES256", "signer": "{ALB_ARN}"}}'
    data = ".".join([encoded(header, padded=padded), encoded(payload, padded=padded),
                     base64.urlsafe_b64encode(signature).decode()])
    with pytest.raises(TokenRejected) as raised:
        alb_guard.authenticate({"x-amzn-oidc-data": data})
    # The signature is random bytes, so every outcome is one decided at or before the signature check.
    assert raised.value.code in BEFORE_THE_CLAIMS, raised.value.as_dict()
