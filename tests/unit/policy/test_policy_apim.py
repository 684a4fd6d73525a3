"""The APIM renderer: golden XML, well-formedness, escaping of hostile values, stable output, claim mapping."""
from __future__ import annotations

import json
import re

import defusedxml.ElementTree as SafeET
import pytest

from stacks.policy import load_policy
from stacks.policy.render import render_apim, render_apim_operations
from stacks.policy.render.apim import SPOOFABLE_HEADERS
from tests.support.tokens import SigningKey
from tests.unit.policy.policy_testing import REPO, assert_golden, load_text

HOSTILE = 'x"y\'<z>&]]><!--'


def example():
    return load_policy(REPO / "policies/example.yaml")


def golden_name(api: str, route_key: str | None) -> str:
    suffix = "api" if route_key is None else re.sub(r"[^A-Za-z0-9]+", "_", route_key).strip("_")
    return f"example.{api}.apim.{suffix}.xml"


@pytest.mark.parametrize("api", ["orders", "billing"])
def test_api_and_operation_policies_match_golden_and_parse(api):
    policy = example()
    documents = {None: render_apim(policy, api), **render_apim_operations(policy, api)}
    for route_key, xml in documents.items():
        SafeET.fromstring(xml)
        assert_golden(golden_name(api, route_key), xml)


def issuer_dispatch(inbound):
    """The per-issuer <choose> (its branches hold validate-jwt), or None for a single issuer's one validate-jwt."""
    found = [choose for choose in inbound.findall("choose") if choose.find("when/validate-jwt") is not None]
    assert len(found) <= 1
    return found[0] if found else None


def bound_token_refusal(inbound):
    """The <choose> after token validation that refuses tokens carrying a cnf claim."""
    [choose] = [c for c in inbound.findall("choose") if "ContainsKey" in (c.find("when").attrib["condition"])]
    return choose


def dispatched_checks(inbound) -> dict[str, object]:
    """issuer URL -> the validate-jwt APIM runs for a token with that iss, read from a per-issuer <choose>."""
    choose = issuer_dispatch(inbound)
    checks = {}
    for when in choose.findall("when"):
        found = re.fullmatch(r'@\(context\.Request\.Headers\.GetValueOrDefault\("Authorization", ""\)\.AsJwt\(\)'
                             r'\?\.Issuer == "((?:[^"\\]|\\.)*)"\)', when.attrib["condition"])
        assert found, when.attrib["condition"]
        [check] = when.findall("validate-jwt")
        checks[re.sub(r"\\(.)", r"\1", found.group(1))] = check
    return checks


def statically_admits(xml: str, iss: str, aud: str) -> bool:
    """Whether the document's token checks (signature aside) let a token with this iss and aud through: the
    validate-jwt that applies to the token must list iss among its issuers and aud among its audiences."""
    inbound = SafeET.fromstring(xml).find("inbound")
    if issuer_dispatch(inbound) is not None:
        check = dispatched_checks(inbound).get(iss)
        if check is None:
            return False
    else:
        check = inbound.find("validate-jwt")
    return (iss in [i.text for i in check.findall("issuers/issuer")]
            and aud in [a.text for a in check.findall("audiences/audience")])


OKTA = "https://example.okta.com/oauth2/aus1billing2exmpl3"
ENTRA = "https://login.microsoftonline.com/8c1a5f3e-2b4d-4e6f-9a0b-1c2d3e4f5a6b/v2.0"
ENTRA_AUDIENCE = "0d9e8f7a-6b5c-4d3e-8f1a-2b3c4d5e6f7a"


def test_each_issuer_is_bound_to_its_own_audiences():
    """Issue 5: one validate-jwt listing both issuers and both audiences admitted an Okta token carrying the Entra
    API's audience. Each issuer's audiences must bind to that issuer alone, at API and at operation level."""
    policy = example()
    documents = [render_apim(policy, "billing"), render_apim(policy, "billing", route_key="ANY /exports/{path+}")]
    for xml in documents:
        assert statically_admits(xml, OKTA, "api://billing") and statically_admits(xml, ENTRA, ENTRA_AUDIENCE)
        assert not statically_admits(xml, OKTA, ENTRA_AUDIENCE)
        assert not statically_admits(xml, ENTRA, "api://billing")
        assert not statically_admits(xml, "https://attacker.example.com", "api://billing")


def test_api_level_policy_validates_tokens_and_passes_identity_on():
    root = SafeET.fromstring(render_apim(example(), "billing"))
    inbound = root.find("inbound")
    assert inbound.find("validate-jwt") is None
    choose = issuer_dispatch(inbound)
    checks = dispatched_checks(inbound)
    assert list(checks) == [OKTA, ENTRA]
    for url, jwt in checks.items():
        assert jwt.attrib == {
            "header-name": "Authorization", "require-scheme": "Bearer", "failed-validation-httpcode": "401",
            "failed-validation-error-message": "Unauthorized: send a valid bearer token (Authorization: Bearer) from "
                                               "an issuer this API trusts",
            "require-expiration-time": "true", "require-signed-tokens": "true",
            "clock-skew": "30" if url == OKTA else "60",   # each issuer's own leeway
            "output-token-variable-name": "jwt"}
        assert [e.attrib["url"] for e in jwt.findall("openid-config")] == [f"{url}/.well-known/openid-configuration"]
        assert [i.text for i in jwt.findall("issuers/issuer")] == [url]
    assert [a.text for a in checks[OKTA].find("audiences")] == ["api://billing"]
    assert [a.text for a in checks[ENTRA].find("audiences")] == [ENTRA_AUDIENCE]
    refusal = choose.find("otherwise/return-response")
    assert refusal.find("set-status").attrib == {"code": "401", "reason": "Unauthorized"}
    body = json.loads(refusal.find("set-body").text)
    assert body["statusCode"] == 401 and "issuer is not one of them" in body["message"]
    limit = inbound.find("rate-limit-by-key")
    assert limit.attrib["calls"] == "60" and limit.attrib["renewal-period"] == "60"
    assert 'context.Variables["jwt"]' in limit.attrib["counter-key"] and '"azp"' in limit.attrib["counter-key"]
    headers = inbound.findall("set-header")
    deleted = [h.attrib["name"] for h in headers if h.attrib["exists-action"] == "delete"]
    assert deleted == list(SPOOFABLE_HEADERS)
    children = list(inbound)
    # Spoofable headers go before validation; verified identity is set after it.
    assert children.index(choose) > max(children.index(h) for h in headers if h.attrib["exists-action"] == "delete")
    overridden = [h for h in headers if h.attrib["exists-action"] == "override"]
    assert [h.attrib["name"] for h in overridden] == ["X-Authgate-Subject", "X-Authgate-Issuer",
                                                      "X-Authgate-Client-Id", "X-Authgate-Scopes"]
    assert all(children.index(h) > children.index(choose) for h in overridden)


def test_single_issuer_apis_keep_one_validate_jwt():
    inbound = SafeET.fromstring(render_apim(example(), "orders")).find("inbound")
    assert issuer_dispatch(inbound) is None and len(inbound.findall("validate-jwt")) == 1


@pytest.mark.parametrize("api", ["orders", "billing"])
def test_a_bound_token_is_refused_after_validation_before_identity_is_passed_on(api):
    inbound = SafeET.fromstring(render_apim(example(), api)).find("inbound")
    refusal = bound_token_refusal(inbound)
    children = list(inbound)
    validation = issuer_dispatch(inbound) if api == "billing" else inbound.find("validate-jwt")
    limit = inbound.find("rate-limit-by-key")
    assert children.index(validation) < children.index(refusal) < children.index(limit)
    assert refusal.find("when").attrib["condition"] == '@(((Jwt)context.Variables["jwt"]).Claims.ContainsKey("cnf"))'
    response = refusal.find("when/return-response")
    assert response.find("set-status").attrib == {"code": "401", "reason": "Unauthorized"}
    [challenge] = [h for h in response.findall("set-header") if h.attrib["name"] == "WWW-Authenticate"]
    assert challenge.find("value").text.startswith('Bearer error="invalid_token"')
    assert json.loads(response.find("set-body").text)["statusCode"] == 401


def test_operation_policies_carry_route_requirements():
    operations = render_apim_operations(example(), "billing")
    assert list(operations) == ["GET /health", "GET /invoices", "GET /invoices/{id}", "POST /invoices/{id}/refunds",
                                "ANY /exports/{path+}"]
    public = SafeET.fromstring(operations["GET /health"]).find("inbound")
    assert public.find("base") is None and public.find("validate-jwt") is None
    assert public.find("rate-limit-by-key").attrib["counter-key"].startswith('@("ip:"')
    claims = SafeET.fromstring(operations["GET /invoices/{id}"]).find("inbound/validate-jwt/required-claims")
    scope, tenant = claims
    assert scope.attrib == {"name": "scope", "match": "any", "separator": " "}
    assert [v.text for v in scope] == ["billing.read"]
    assert tenant.attrib == {"name": "tenant", "match": "any"} and [v.text for v in tenant] == ["acme", "globex"]
    refund = SafeET.fromstring(operations["POST /invoices/{id}/refunds"]).find("inbound/validate-jwt")
    assert refund.attrib["failed-validation-httpcode"] == "403"
    [roles] = refund.find("required-claims")
    assert roles.attrib == {"name": "roles", "match": "all"}


def test_cognito_tokens_are_matched_on_client_id_and_token_use():
    xml = render_apim(example(), "orders", route_key="GET /orders/{id}")
    jwt = SafeET.fromstring(xml).find("inbound/validate-jwt")
    assert jwt.find("audiences") is None
    claims = {c.attrib["name"]: (c.attrib["match"], [v.text for v in c]) for c in jwt.find("required-claims")}
    assert claims == {"client_id": ("any", ["4f2c6b1a9d8e7f0a1b2c3d4e5f", "7h3k9m2n4p6q8r1s3t5v7w9x2z"]),
                      "token_use": ("any", ["access"]),
                      "scope": ("any", ["orders-api/orders.admin", "orders-api/orders.read"])}
    groups = SafeET.fromstring(render_apim(example(), "orders", route_key="DELETE /orders/{id}"))
    names = [c.attrib["name"] for c in groups.find("inbound/validate-jwt/required-claims")]
    assert "cognito:groups" in names


def test_hostile_values_are_escaped_and_come_back_intact(tmp_path):
    hostile_yaml = json.dumps(HOSTILE)
    policy = load_text(tmp_path, f"""
        issuers:
          corp: {{issuer: "https://idp.example.com/a&b", audiences: [{hostile_yaml}]}}
        apis:
          a:
            routes:
              "GET /x":
                issuers: [corp]
                roles: [{hostile_yaml}]
                claims: {{{hostile_yaml}: [{hostile_yaml}]}}
    """)
    for xml in (render_apim(policy, "a"), render_apim(policy, "a", route_key="GET /x")):
        assert "]]><" not in xml and "<z>" not in xml
        jwt = SafeET.fromstring(xml).find("inbound/validate-jwt")
        assert [a.text for a in jwt.find("audiences")] == [HOSTILE]
        assert jwt.find("issuers/issuer").text == "https://idp.example.com/a&b"
        assert jwt.find("openid-config").attrib["url"] == "https://idp.example.com/a&b/.well-known/openid-configuration"
    claims = SafeET.fromstring(render_apim(policy, "a", route_key="GET /x")).find("inbound/validate-jwt/required-claims")
    by_name = {c.attrib["name"]: [v.text for v in c] for c in claims}
    assert by_name == {"roles": [HOSTILE], HOSTILE: [HOSTILE]}


def test_output_is_stable_across_runs_and_policy_order(tmp_path):
    first = render_apim(example(), "billing") + "".join(render_apim_operations(example(), "billing").values())
    second = render_apim(example(), "billing") + "".join(render_apim_operations(example(), "billing").values())
    assert first == second
    one = load_text(tmp_path, """
        issuers:
          corp: {issuer: https://idp.example.com, audiences: [b, a]}
        apis:
          a: {routes: {"GET /x": {issuers: [corp], roles: [z, y]}}}
    """)
    two = load_text(tmp_path, """
        issuers:
          corp: {issuer: https://idp.example.com, audiences: [a, b]}
        apis:
          a: {routes: {"GET /x": {issuers: [corp], roles: [y, z]}}}
    """)
    assert render_apim(one, "a", route_key="GET /x") == render_apim(two, "a", route_key="GET /x")


def test_bundled_rsa_keys_become_issuer_signing_keys(tmp_path):
    key = SigningKey.generate("RS256", kid="k1")
    (tmp_path / "keys.json").write_text(json.dumps(key.jwks()))
    policy = load_text(tmp_path, """
        issuers:
          corp: {issuer: https://idp.example.com, audiences: [a], jwks_file: keys.json}
        apis:
          a: {routes: {"GET /x": {issuers: [corp]}}}
    """)
    jwt = SafeET.fromstring(render_apim(policy, "a")).find("inbound/validate-jwt")
    assert jwt.find("openid-config") is None
    assert jwt.find("issuer-signing-keys/key").attrib == {"n": key.jwk()["n"], "e": key.jwk()["e"]}


@pytest.mark.parametrize("policy_yaml, call, expected", [
    ("""
        issuers:
          dev: {issuer: "http://127.0.0.1:9000", local_development: true, audiences: [a]}
        apis:
          a: {routes: {"GET /x": {issuers: [dev]}}}
     """, ("a", None), "Azure API Management cannot reach it"),
    ("""
        issuers:
          corp: {issuer: https://idp.example.com, audiences: [a]}
        apis:
          a: {routes: {"GET /x": {public: true}}}
     """, ("a", None), "has only public routes"),
])
def test_combinations_apim_cannot_express_are_refused(tmp_path, policy_yaml, call, expected):
    policy = load_text(tmp_path, policy_yaml)
    api, route_key = call
    with pytest.raises(ValueError, match=re.escape(expected)):
        render_apim(policy, api, route_key=route_key)


def test_issuers_with_different_claim_shapes_share_a_route(tmp_path):
    """Per-issuer checks let each issuer's token be read its own way: Entra scopes in scp, Okta's in scope, Cognito
    matched on client_id and token_use instead of aud (these once had to be split into separate routes)."""
    policy = load_text(tmp_path, """
        issuers:
          ent: {issuer: "https://login.microsoftonline.com/t/v2.0", profile: entra, audiences: [api-e]}
          okt: {issuer: https://example.okta.com/oauth2/default, profile: okta, audiences: [api-o]}
          cog: {issuer: "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc", profile: cognito, audiences: [c1]}
        apis:
          a: {routes: {"GET /x": {issuers: [ent, okt, cog], scopes: [read], groups: [g]}}}
    """)
    api = dispatched_checks(SafeET.fromstring(render_apim(policy, "a")).find("inbound"))
    op = dispatched_checks(SafeET.fromstring(render_apim(policy, "a", route_key="GET /x")).find("inbound"))
    cognito, entra, okta = ("https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc",
                            "https://login.microsoftonline.com/t/v2.0", "https://example.okta.com/oauth2/default")
    assert [a.text for a in api[entra].findall("audiences/audience")] == ["api-e"]
    assert [a.text for a in api[okta].findall("audiences/audience")] == ["api-o"]
    assert api[cognito].find("audiences") is None

    def claims(check):
        return {c.attrib["name"]: [v.text for v in c] for c in check.findall("required-claims/claim")}
    assert claims(api[cognito]) == {"client_id": ["c1"], "token_use": ["access"]}
    assert claims(op[entra]) == {"scp": ["read"], "groups": ["g"]}
    assert claims(op[okta]) == {"scope": ["read"], "groups": ["g"]}
    assert claims(op[cognito]) == {"client_id": ["c1"], "token_use": ["access"], "scope": ["read"],
                                   "cognito:groups": ["g"]}
    refusal = SafeET.fromstring(render_apim(policy, "a", route_key="GET /x")).find("inbound/choose/otherwise")
    assert refusal.find("return-response/set-status").attrib["code"] == "403"


def test_hostile_issuer_urls_stay_inside_the_dispatch_literal(tmp_path):
    """The iss in each <when> is a C# string inside an XML attribute: quote, backslash and ampersand are escaped
    twice over and read back exactly, so an issuer URL can neither end the literal nor the attribute."""
    hostile = 'https://idp.example.com/a"b\\c&d<e>'
    policy = load_text(tmp_path, f"""
        issuers:
          h: {{issuer: {json.dumps(hostile)}, audiences: [a]}}
          k: {{issuer: https://other.example.com, audiences: [b]}}
        apis:
          a: {{routes: {{"GET /x": {{issuers: [h, k]}}}}}}
    """)
    xml = render_apim(policy, "a")
    assert "<e>" not in xml
    checks = dispatched_checks(SafeET.fromstring(xml).find("inbound"))
    assert set(checks) == {hostile, "https://other.example.com"}
    assert [i.text for i in checks[hostile].findall("issuers/issuer")] == [hostile]


def test_unknown_route_and_inherited_operation(tmp_path):
    with pytest.raises(KeyError, match="has no route 'GET /nope'"):
        render_apim(example(), "billing", route_key="GET /nope")
    policy = load_text(tmp_path, """
        issuers:
          corp: {issuer: https://idp.example.com, audiences: [a], token_use: any}
        apis:
          a: {routes: {"GET /x": {issuers: [corp]}, "GET /y": {issuers: [corp], scopes: [s]}}}
    """)
    assert list(render_apim_operations(policy, "a")) == ["GET /y"]
    inherited = SafeET.fromstring(render_apim(policy, "a", route_key="GET /x")).find("inbound")
    assert [child.tag for child in inherited] == ["base"]
