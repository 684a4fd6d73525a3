"""The policy model takes what the file says: no silent coercions, every problem of a file in one report, a warning
for an issuer no route uses, and a file:line error for a file that is not UTF-8 text."""
from __future__ import annotations

import textwrap

import pytest

from stacks.policy import PolicyError, load_policy
from tests.unit.policy.policy_testing import load_text, policy_error, write_policy

def with_routes(issuers: str) -> str:
    return textwrap.dedent(issuers) + ROUTES


ROUTES = """
apis:
  a:
    routes:
      "GET /x": {issuers: [corp], scopes: [x:read]}
"""


@pytest.mark.parametrize("issuer_extra, route_extra, field, expected", [
    ("", "public: \"yes\"", "apis.a.routes.\"GET /y\".public", "expected true or false, found str 'yes'"),
    ("", "public: 1", "apis.a.routes.\"GET /y\".public", "expected true or false, found int 1"),
    ("leeway_seconds: \"30\"", "public: true", "issuers.corp.leeway_seconds", "expected a whole number, found str '30'"),
    ("leeway_seconds: 30.0", "public: true", "issuers.corp.leeway_seconds", "expected a whole number, found float"),
    ("local_development: \"false\"", "public: true", "issuers.corp.local_development", "expected true or false"),
    ("", "{issuers: [corp], claims: {tenant: acme}}", "apis.a.routes.\"GET /y\".claims.tenant",
     "expected a list (e.g. [a, b]), found str 'acme'"),
    ("", "{issuers: [corp], scopes: [123]}", "apis.a.routes.\"GET /y\".scopes[0]", "expected a string, found int 123"),
    ("", "{issuers: [corp], roles: [true]}", "apis.a.routes.\"GET /y\".roles[0]", "expected a string, found bool"),
])
def test_values_of_the_wrong_type_are_refused_not_coerced(tmp_path, issuer_extra, route_extra, field, expected):
    route = route_extra if route_extra.startswith("{") else "{" + route_extra + "}"
    error = policy_error(tmp_path, f"""
        issuers:
          corp:
            issuer: https://idp.example.com
            audiences: [orders-api]
            {issuer_extra}
        apis:
          a:
            routes:
              "GET /x": {{issuers: [corp], scopes: [x:read]}}
              "GET /y": {route}
    """)
    fields = [p.field for p in error.problems]
    assert field in fields, str(error)
    assert expected in str(error)


def test_a_profile_that_is_not_a_string_is_an_error_not_a_crash(tmp_path):
    error = policy_error(tmp_path, with_routes("""
        issuers:
          corp: {issuer: https://idp.example.com, audiences: [orders-api], profile: [cognito]}
    """))
    assert [p.field for p in error.problems] == ["issuers.corp.profile"]


def test_every_problem_of_a_file_is_reported_in_one_pass(tmp_path):
    error = policy_error(tmp_path, """
        issuers:
          corp:
            issuer: https://idp.example.com
            audiences: [orders-api]
          other:
            issuer: https://other.example.com
            audiences: [orders-api]
            leeway_seconds: "30"
        apis:
          a:
            routes:
              "GET /x": {issuers: [corp], scopes: [x:read]}
              "GET /v": {issuers: [other], scopes: [x:read]}
              "GET /y": {issuers: [nobody], scopes: [x:read]}
              "GET /z": {issuers: [corp], scopes: [123]}
              "FETCH /w": {issuers: [corp]}
        clients:
          svc: {kind: service, issuer: corp, scopes: [x:read], audience: billing-api}
    """)
    fields = [p.field for p in error.problems]
    # Field errors (wrong types) and cross-reference errors (unknown issuer, bad route key, wrong audience) together;
    # the route naming the invalid issuer `other` is not told that `other` does not exist.
    assert sorted(fields) == sorted(["issuers.other.leeway_seconds", 'apis.a.routes."GET /z".scopes[0]',
                                     'apis.a.routes."GET /y".issuers[0]', 'apis.a.routes."FETCH /w"',
                                     "clients.svc.audience"]), str(error)
    assert [p.line for p in error.problems] == sorted(p.line for p in error.problems)
    assert all(p.line for p in error.problems), str(error)


def test_a_route_naming_an_invalid_issuer_is_not_also_told_the_issuer_does_not_exist(tmp_path):
    error = policy_error(tmp_path, with_routes("""
        issuers:
          corp: {issuer: "http://idp.example.com", audiences: [orders-api]}
    """))
    assert [p.field for p in error.problems] == ["issuers.corp.issuer"], str(error)


def test_yaml_level_and_model_problems_come_together(tmp_path):
    error = policy_error(tmp_path, """
        issuers:
          corp: {issuer: https://idp.example.com, audiences: [orders-api], leeway_seconds: "5"}
        apis:
          a:
            routes:
              "GET /x": {issuers: [corp]}
              "GET /x": {public: true}
    """)
    fields = [p.field for p in error.problems]
    assert 'apis.a.routes."GET /x"' in fields and "issuers.corp.leeway_seconds" in fields, str(error)


def test_an_issuer_no_route_uses_is_a_warning_with_its_line(tmp_path):
    policy = load_text(tmp_path, with_routes("""
        issuers:
          corp: {issuer: https://idp.example.com, audiences: [orders-api]}
          spare: {issuer: https://other.example.com, audiences: [orders-api]}
    """))
    assert [(w.field, w.line) for w in policy.warnings] == [("issuers.spare", 3)]
    assert "no route accepts its tokens" in policy.warnings[0].message
    assert str(policy.warnings[0]).startswith(f"{tmp_path / 'policy.yaml'}:3: issuers.spare: ")


def test_the_shipped_policies_have_no_warnings():
    from tests.unit.policy.policy_testing import REPO
    assert load_policy(REPO / "policies/example.yaml").warnings == ()
    local = load_policy(REPO / "policies/local.yaml", variables={"LOCAL_ISSUER_URL": "http://127.0.0.1:4000"})
    assert local.warnings == ()


@pytest.mark.parametrize("content", [
    "issuers:\n  corp:\n    description: caf\xe9\n".encode("latin-1"),
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
])
def test_a_file_that_is_not_utf8_text_is_a_located_error(tmp_path, content):
    path = tmp_path / "policy.yaml"
    path.write_bytes(content)
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    message = str(info.value)
    assert message.startswith(f"{path}:") and "UTF-8" in message
    assert info.value.line is not None


def test_a_non_utf8_byte_is_located_on_its_line(tmp_path):
    path = write_policy(tmp_path, "issuers:\n  corp:\n")
    path.write_bytes(b"issuers:\n  corp:\n    description: caf\xe9\n")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert info.value.line == 3 and "byte 0xe9" in str(info.value)
