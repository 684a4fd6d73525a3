"""Each IdP profile: realistic token shapes normalise into the same Principal fields, and ID tokens are told apart."""
from __future__ import annotations

import pytest

from lambdas.validation import IssuerConfig, TokenRejected, Verifier
from tests.support.tokens import mint

NOW = 1_800_000_000
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


def verifier(key, issuer, audiences, profile, **kw):
    return Verifier([IssuerConfig(issuer, audiences, jwks=key.jwks(), profile=profile, **kw)], clock=lambda: NOW)


def base(issuer, **claims):
    out = {"iss": issuer, "iat": NOW - 10, "exp": NOW + 3600}
    out.update(claims)
    return {k: v for k, v in out.items() if v is not None}


def test_cognito_access_token(key):
    iss = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Abc123XYZ"
    v = verifier(key, iss, ["7abc-client"], "cognito")
    token = mint(key, base(iss, sub="u-1", token_use="access", client_id="7abc-client",
                           scope="orders/read aws.cognito.signin.user.admin", **{"cognito:groups": ["admins"]},
                           username="alice"), typ=None)
    p = v.verify(token)
    assert (p.client_id, p.scopes, p.groups, p.token_use, p.audience) == (
        "7abc-client", ("orders/read", "aws.cognito.signin.user.admin"), ("admins",), "access", ("7abc-client",))
    wrong_client = mint(key, base(iss, sub="u-1", token_use="access", client_id="other"), typ=None)
    with pytest.raises(TokenRejected, match="client_id") as info:
        v.verify(wrong_client)
    assert info.value.code == "invalid_audience"


def test_cognito_both_issuer_formats_and_id_tokens(key):
    v = verifier(key, "us-east-1_Abc123XYZ", ["7abc-client"], "cognito", token_use="id")
    updated = "https://issuer-cognito-idp.us-east-1.amazonaws.com/us-east-1_Abc123XYZ"
    p = v.verify(mint(key, base(updated, sub="u-1", token_use="id", aud="7abc-client", email="a@b.c"), typ=None))
    assert p.token_use == "id" and p.client_id == "7abc-client" and p.issuer == updated
    other_pool = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other999"
    with pytest.raises(TokenRejected) as info:
        v.verify(mint(key, base(other_pool, sub="u", token_use="id", aud="7abc-client"), typ=None))
    assert info.value.code == "unknown_issuer"
    with pytest.raises(TokenRejected) as info:
        v.verify(mint(key, base(updated, sub="u", aud="7abc-client"), typ=None))
    assert info.value.code == "missing_claim"


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_entra_access_tokens(key, version):
    if version == "v2":
        iss = f"https://login.microsoftonline.com/{TENANT}/v2.0"
        extra = {"azp": "spa-client", "azpacr": "0", "ver": "2.0"}
    else:
        iss = f"https://sts.windows.net/{TENANT}/"
        extra = {"appid": "spa-client", "appidacr": "0", "ver": "1.0"}
    v = verifier(key, iss, ["api://orders"], "entra")
    token = mint(key, base(iss, sub="s", aud="api://orders", tid=TENANT, scp="Orders.Read Orders.Write",
                           roles=["Orders.Admin"], groups=["g-1"], oid="o-1", **extra), typ="JWT")
    p = v.verify(token)
    assert p.client_id == "spa-client" and p.tenant == TENANT
    assert p.scopes == ("Orders.Read", "Orders.Write") and p.roles == ("Orders.Admin",) and p.groups == ("g-1",)


def test_entra_app_only_token_has_roles_and_no_scopes(key):
    iss = f"https://login.microsoftonline.com/{TENANT}/v2.0"
    v = verifier(key, iss, ["api://orders"], "entra")
    p = v.verify(mint(key, base(iss, sub="app", aud="api://orders", tid=TENANT, azp="daemon", azpacr="1",
                                roles=["Orders.ReadAll"], idtyp="app"), typ="JWT"))
    assert p.scopes == () and p.roles == ("Orders.ReadAll",) and p.client_id == "daemon"


def test_google_and_firebase_tokens_are_id_tokens(key):
    v = verifier(key, "https://accounts.google.com", ["1234.apps.googleusercontent.com"], "google")
    p = v.verify(mint(key, base("https://accounts.google.com", sub="10769", aud="1234.apps.googleusercontent.com",
                                azp="1234.apps.googleusercontent.com", email="a@example.com"), typ="JWT"))
    assert p.token_use == "id" and p.client_id == "1234.apps.googleusercontent.com"
    project = "my-project"
    fb_iss = f"https://securetoken.google.com/{project}"
    fb = verifier(key, fb_iss, [project], "firebase")
    p = fb.verify(mint(key, base(fb_iss, sub="uid-1", aud=project, user_id="uid-1",
                                 firebase={"sign_in_provider": "password", "tenant": "tenant-a"}), typ="JWT"))
    assert p.tenant == "tenant-a" and p.client_id == project


def test_okta_access_and_id_tokens(key):
    iss = "https://dev-1.okta.com/oauth2/default"
    v = verifier(key, iss, ["api://default"], "okta")
    p = v.verify(mint(key, base(iss, sub="a@b.c", aud="api://default", cid="0oa1", scp=["orders.read", "openid"],
                                groups=["Everyone"], uid="00u1", ver=1), typ=None))
    assert p.client_id == "0oa1" and p.scopes == ("orders.read", "openid") and p.groups == ("Everyone",)
    with pytest.raises(TokenRejected) as info:
        v.verify(mint(key, base(iss, sub="a@b.c", aud="api://default", amr=["pwd"]), typ=None))
    assert info.value.code == "wrong_token_use"


def test_auth0_permissions_count_as_scopes(key):
    iss = "https://tenant.eu.auth0.com/"
    v = verifier(key, iss, ["https://orders.example"], "auth0")
    p = v.verify(mint(key, base(iss, sub="auth0|1", aud=["https://orders.example", f"{iss}userinfo"], azp="cli",
                                scope="openid profile", permissions=["read:orders"], org_id="org_1"), typ="JWT"))
    assert p.scopes == ("openid", "profile", "read:orders") and p.client_id == "cli" and p.tenant == "org_1"


def test_keycloak_roles_are_realm_and_client_namespaced(key):
    iss = "https://kc.example/realms/acme"
    v = verifier(key, iss, ["orders-api"], "keycloak")
    p = v.verify(mint(key, base(iss, sub="u", aud="orders-api", azp="web", typ="Bearer", scope="profile email",
                                realm_access={"roles": ["offline_access", "admin"]},
                                resource_access={"orders-api": {"roles": ["writer"]}, "other": {"roles": ["x"]}},
                                groups=["/staff"]), typ="JWT"))
    assert p.roles == ("offline_access", "admin", "orders-api:writer", "other:x")
    assert p.client_id == "web" and p.groups == ("/staff",)


def test_kubernetes_service_account_tokens(key):
    iss = "https://oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF"
    v = verifier(key, iss, ["sts.amazonaws.com"], "kubernetes")
    p = v.verify(mint(key, base(iss, sub="system:serviceaccount:payments:api", aud=["sts.amazonaws.com"],
                                **{"kubernetes.io": {"namespace": "payments",
                                                     "serviceaccount": {"name": "api", "uid": "u"}}}), typ=None))
    assert p.tenant == "payments" and p.token_use == "access"
    assert p.groups == ("system:serviceaccounts", "system:serviceaccounts:payments")
    legacy = v.verify(mint(key, base(iss, sub="system:serviceaccount:ops:bot", aud="sts.amazonaws.com"), typ=None))
    assert legacy.tenant == "ops"


def test_generic_profile_reads_scp_and_client_id(key):
    iss = "https://idp.example"
    v = verifier(key, iss, ["api"], "generic")
    p = v.verify(mint(key, base(iss, sub="s", aud="api", scp=["a", "b"], client_id="c", tid="t")))
    assert p.scopes == ("a", "b") and p.client_id == "c" and p.tenant == "t"


@pytest.mark.parametrize("profile,claim", [("generic", "scope"), ("generic", "scp"), ("entra", "scp"),
                                           ("cognito", "cognito:groups"), ("generic", "roles")])
@pytest.mark.parametrize("separator", ["\t", "\n", "\r", "\x0b", "\x0c", "\x1f", "\u00a0", "\u2003", "\u3000"])
def test_names_in_a_string_are_separated_by_spaces_only(key, profile, claim, separator):
    # RFC 6749 3.3: scope = scope-token *( SP scope-token ). Splitting on any whitespace read "a<TAB>orders:read" as
    # granting orders:read, a scope the issuer never put in the token as a scope-token of its own.
    iss = {"generic": "https://idp.example.test", "entra": f"https://login.microsoftonline.com/{TENANT}/v2.0",
           "cognito": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Abc123XYZ"}[profile]
    claims = {"generic": dict(aud="api"), "entra": dict(aud="api", tid=TENANT, azp="app", azpacr="0"),
              "cognito": dict(token_use="access", client_id="api")}[profile]
    joined = f"orders:write{separator}orders:read"
    p = verifier(key, iss, ["api"], profile).verify(mint(key, base(iss, sub="u", **claims, **{claim: joined}),
                                                         typ="JWT" if profile == "entra" else None))
    names = {"scope": p.scopes, "scp": p.scopes, "cognito:groups": p.groups, "roles": p.roles}[claim]
    assert names == (joined,)
    spaced = verifier(key, iss, ["api"], profile).verify(mint(key, base(
        iss, sub="u", **claims, **{claim: " orders:write  orders:read "}), typ="JWT" if profile == "entra" else None))
    assert {"scope": spaced.scopes, "scp": spaced.scopes, "cognito:groups": spaced.groups,
            "roles": spaced.roles}[claim] == ("orders:write", "orders:read")


def test_generic_client_id_is_the_first_present_claim_and_must_be_a_string(key):
    iss = "https://idp.example"
    v = verifier(key, iss, ["api"], "generic")
    assert v.verify(mint(key, base(iss, sub="s", aud="api", azp="from-azp", appid="from-appid"))).client_id == "from-azp"
    assert v.verify(mint(key, base(iss, sub="s", aud="api", appid="from-appid"))).client_id == "from-appid"
    assert v.verify(mint(key, base(iss, sub="s", aud="api"))).client_id is None
    with pytest.raises(TokenRejected) as refused:
        v.verify(mint(key, base(iss, sub="s", aud="api", cid=["not", "a", "string"], appid="app")))
    assert refused.value.code == "malformed" and "'cid'" in refused.value.message


def test_split_scope_strings_are_shared_and_the_memo_stays_bounded(monkeypatch):
    from lambdas.validation import profiles

    monkeypatch.setattr(profiles, "_SPLIT_SCOPES", {})
    first = profiles._space_separated("orders:read  orders:write")
    assert first == ("orders:read", "orders:write")
    assert profiles._space_separated("orders:read  orders:write") is first  # the second token reuses the tuple
    for n in range(3 * profiles._SPLIT_SCOPES_MAX):
        assert profiles._space_separated(f"s{n} t{n}") == (f"s{n}", f"t{n}")
        assert len(profiles._SPLIT_SCOPES) <= profiles._SPLIT_SCOPES_MAX
    long_scope = " ".join(f"scope{n}" for n in range(200))
    assert len(long_scope) > profiles._SPLIT_SCOPES_MAX_CHARS
    assert profiles._space_separated(long_scope) == tuple(f"scope{n}" for n in range(200))
    assert long_scope not in profiles._SPLIT_SCOPES  # long strings are split every time, never kept
