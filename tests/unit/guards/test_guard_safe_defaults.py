"""Safe defaults of the backend guards: EasyAuth requires the expected tenant and audience (or a loudly named
opt-out), and IAP accepts the regional backend-service audience exactly, never by prefix or suffix."""
from __future__ import annotations

import base64
import json

import pytest

from lambdas.guards.easyauth import EasyAuthGuard
from lambdas.guards.gcp import IAP_ISSUER, IapGuard, iap_issuer_config
from lambdas.validation import TokenRejected, Verifier
from tests.support.tokens import SigningKey, mint

TENANT = "0b7f1c52-4a0e-4a36-9d1f-6c3e2a8b5d10"
OTHER_TENANT = "5e2d8a91-7c4b-4f03-8e6a-1d9b3c7f2a44"
API_CLIENT_ID = "6f1d2c3b-9a8e-4d7c-b6a5-0e1f2a3b4c5d"
TID = "http://schemas.microsoft.com/identity/claims/tenantid"
OID = "http://schemas.microsoft.com/identity/claims/objectidentifier"


def client_principal(*claims) -> str:
    document = {"auth_typ": "aad", "name_typ": "name", "role_typ": "roles",
                "claims": [{"typ": t, "val": v} for t, v in claims]}
    return base64.b64encode(json.dumps(document).encode()).decode()


# --- EasyAuth -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,message", [
    ({}, "needs expected_tenant"),
    ({"expected_tenant": TENANT}, "needs expected_audiences"),
    ({"expected_audiences": [API_CLIENT_ID]}, "needs expected_tenant"),
    ({"insecure_accept_any_tenant": True}, "needs expected_audiences"),
    ({"expected_tenant": "common", "expected_audiences": [API_CLIENT_ID]}, "not a domain name or an authority alias"),
    ({"expected_tenant": "contoso.onmicrosoft.com", "expected_audiences": [API_CLIENT_ID]}, "must be the tenant id"),
    ({"expected_tenant": TENANT, "expected_audiences": API_CLIENT_ID}, r"not one string.*write expected_audiences=\["),
    ({"expected_tenant": TENANT, "expected_audiences": [""]}, "non-empty string"),
    ({"expected_tenant": TENANT, "expected_audiences": [" api://orders"]}, "without surrounding whitespace"),
    ({"expected_tenant": TENANT, "insecure_accept_any_tenant": True, "expected_audiences": [API_CLIENT_ID]},
     "not both"),
    ({"expected_tenant": TENANT, "expected_audiences": [API_CLIENT_ID], "insecure_accept_any_audience": True},
     "not both"),
    ({"expected_tenant": TENANT, "expected_audiences": [API_CLIENT_ID], "insecure_accept_any_tenant": "yes"},
     "must be True or False"),
])
def test_easyauth_guard_refuses_to_start_without_a_tenant_and_audience(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EasyAuthGuard(**kwargs)


def test_easyauth_error_says_what_to_pass():
    with pytest.raises(ValueError) as raised:
        EasyAuthGuard()
    text = str(raised.value)
    assert "expected_tenant" in text and "tid" in text and "insecure_accept_any_tenant=True" in text


def test_easyauth_default_refuses_other_tenants_audiences_and_missing_claims():
    guard = EasyAuthGuard(expected_tenant=TENANT.upper(), expected_audiences=[API_CLIENT_ID, "api://orders"])
    good = client_principal((OID, "oid-1"), (TID, TENANT), ("aud", API_CLIENT_ID))
    assert guard.authenticate({"X-MS-CLIENT-PRINCIPAL": good}).subject == "oid-1"
    v1 = client_principal((OID, "oid-1"), (TID, TENANT), ("aud", "api://orders"))
    assert guard.authenticate({"X-MS-CLIENT-PRINCIPAL": v1}).audience == ("api://orders",)
    cases = [
        (client_principal((OID, "oid-1"), (TID, OTHER_TENANT), ("aud", API_CLIENT_ID)), "unknown_issuer"),
        (client_principal((OID, "oid-1"), ("aud", API_CLIENT_ID)), "unknown_issuer"),             # no tid at all
        (client_principal((OID, "oid-1"), (TID, TENANT), ("aud", "api://billing")), "invalid_audience"),
        (client_principal((OID, "oid-1"), (TID, TENANT)), "invalid_audience"),                     # no aud at all
        (client_principal((OID, "oid-1"), (TID, TENANT), ("aud", API_CLIENT_ID + "x")), "invalid_audience"),
    ]
    for header, code in cases:
        with pytest.raises(TokenRejected) as raised:
            guard.authenticate({"X-MS-CLIENT-PRINCIPAL": header})
        assert raised.value.code == code and raised.value.status == 401


def test_easyauth_explicit_opt_out_accepts_any_tenant_and_audience():
    guard = EasyAuthGuard(insecure_accept_any_tenant=True, insecure_accept_any_audience=True)
    for tenant, aud in ((TENANT, API_CLIENT_ID), (OTHER_TENANT, "api://anything")):
        header = client_principal((OID, "oid-1"), (TID, tenant), ("aud", aud))
        principal = guard.authenticate({"X-MS-CLIENT-PRINCIPAL": header})
        assert principal.tenant == tenant and principal.audience == (aud,)
    # opting out of one check keeps the other
    tenant_only = EasyAuthGuard(expected_tenant=TENANT, insecure_accept_any_audience=True)
    with pytest.raises(TokenRejected) as raised:
        tenant_only.authenticate({"X-MS-CLIENT-PRINCIPAL": client_principal((OID, "o"), (TID, OTHER_TENANT))})
    assert raised.value.code == "unknown_issuer"


# --- IAP regional backend services ---------------------------------------------------------------------------------

REGIONAL = "/projects/123456789012/regions/europe-west4/backendServices/4567890123456789"


@pytest.fixture(scope="module")
def iap_key() -> SigningKey:
    return SigningKey.generate("ES256")


def iap_token(key, audience):
    return mint(key, typ="JWT", issuer=IAP_ISSUER, audience=audience, email="ada@example.test")


def test_iap_accepts_the_regional_backend_service_audience(iap_key):
    guard = IapGuard(Verifier([iap_issuer_config(REGIONAL, jwks=iap_key.jwks())]))
    principal = guard.authenticate({"x-goog-iap-jwt-assertion": iap_token(iap_key, REGIONAL)})
    assert principal.audience == (REGIONAL,) and principal.claims["email"] == "ada@example.test"


@pytest.mark.parametrize("audience", [
    "/projects/123456789012/global/backendServices/4567890123456789",      # same ids, global form
    "/projects/123456789012/regions/europe-west1/backendServices/4567890123456789",
    REGIONAL + "0", REGIONAL[:-1], REGIONAL + "/", "/x" + REGIONAL, REGIONAL.replace("/projects/", "/projects/0"),
])
def test_iap_regional_audience_must_match_exactly(iap_key, audience):
    guard = IapGuard(Verifier([iap_issuer_config(REGIONAL, jwks=iap_key.jwks())]))
    with pytest.raises(TokenRejected) as raised:
        guard.authenticate({"x-goog-iap-jwt-assertion": iap_token(iap_key, audience)})
    assert raised.value.code == "invalid_audience"


@pytest.mark.parametrize("audience", [
    "/projects/123456789012/regions/us-central1/backendServices/42",
    "/projects/1/regions/northamerica-northeast2/backendServices/9",
    "/projects/1/global/backendServices/2", "/projects/1/apps/my-project-1",
])
def test_iap_audience_forms_accepted(audience):
    assert iap_issuer_config(audience).audiences


@pytest.mark.parametrize("audience", [
    REGIONAL + "/", REGIONAL + "\n", " " + REGIONAL, REGIONAL + "x", "x" + REGIONAL,
    "/projects/123/regions/europe-west4/backendServices/orders-backend",   # the name, not the numeric id
    "/projects/123/regions/EUROPE-WEST4/backendServices/1", "/projects/123/regions/europe/backendServices/1",
    "/projects/123/regions//backendServices/1", "/projects/123/regions/europe-west4/backendServices/",
    "/projects/123/regions/europe-west4/global/backendServices/1",
    "/projects/\u0661\u0662\u0663/regions/europe-west4/backendServices/1",  # Arabic-Indic digits
    "/projects/my-project/regions/europe-west4/backendServices/1", "projects/123/regions/europe-west4/backendServices/1",
])
def test_iap_audience_near_misses_refused_at_configuration(audience):
    with pytest.raises(ValueError, match="regions/<region>/backendServices/<id>"):
        iap_issuer_config(audience)
