"""Issue 18: values from the policy file that a gateway would read as more than a value, and whole-string patterns
that let a final newline through.

- Azure API Management evaluates an attribute or element value that starts with `@(` or `@{` as a C# policy
  expression. A claim value, audience, scope, role or group written into validate-jwt as is would run as code in the
  gateway (and, compared against a token, match whatever the expression returns), so the renderer refuses it.
- `re.match(r"^...$")` accepts a string with one trailing newline (`$` matches before it): a scope, an issuer name
  or a route path ending in a newline passed the policy checks and reached the route table, NGINX's configuration and
  the APIM XML. Every whole-string check uses fullmatch; a test keeps `$` out of every pattern in the code.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from lambdas.validation import IssuerConfig
from stacks.policy.render import render_apim, render_apim_operations
from tests.unit.policy.policy_testing import load_text, policy_error

REPO = Path(__file__).resolve().parents[2]

POLICY = """
issuers:
  corp:
    issuer: https://idp.example.com
    audiences: [{audience}]
apis:
  orders:
    routes:
      "GET /orders": {{issuers: [corp], {rule}}}
"""


def apim_documents(tmp_path, *, audience='"orders-api"', rule="scopes: [orders:read]") -> list[str]:
    policy = load_text(tmp_path, POLICY.format(audience=audience, rule=rule))
    return [render_apim(policy, "orders"), *render_apim_operations(policy, "orders").values()]


@pytest.mark.parametrize("field,audience,rule", [
    ("claim value", '"orders-api"', 'claims: {tenant: ["@(context.Request.Url.Host)"]}'),
    ("claim value, multi-statement", '"orders-api"', 'claims: {tenant: ["@{ return \\"acme\\"; }"]}'),
    ("audience", '"@(context.Request.Headers.GetValueOrDefault(\\"X-Aud\\", \\"\\"))"', "scopes: [orders:read]"),
    ("scope", '"orders-api"', 'scopes: ["@(true)"]'),
    ("role", '"orders-api"', 'roles: ["@(\\"admin\\")"]'),
    ("group", '"orders-api"', 'groups: ["@{return \\"g\\";}"]'),
])
def test_apim_refuses_policy_values_it_would_evaluate_as_expressions(tmp_path, field, audience, rule):
    with pytest.raises(ValueError, match="policy expression") as raised:
        apim_documents(tmp_path, audience=audience, rule=rule)
    assert "@" in str(raised.value), field


def test_apim_still_writes_values_with_an_at_sign_elsewhere(tmp_path):
    documents = apim_documents(tmp_path, rule='claims: {email: ["ops@example.com", "@team"]}')
    assert any("<value>ops@example.com</value>" in xml and "<value>@team</value>" in xml for xml in documents)


@pytest.mark.parametrize("rule", ['scopes: ["orders:read\\n"]', 'roles: ["admin\\n"]'])
def test_a_scope_or_role_ending_in_a_newline_is_refused(tmp_path, rule):
    error = policy_error(tmp_path, POLICY.format(audience='"orders-api"', rule=rule))
    assert "\\n" in str(error) or "control" in str(error) or "scope" in str(error)


def test_a_route_path_ending_in_a_newline_is_refused(tmp_path):
    text = POLICY.format(audience='"orders-api"', rule="scopes: [orders:read]").replace('"GET /orders"',
                                                                                       '"GET /orders\\n"')
    policy_error(tmp_path, text)


def test_an_issuer_name_ending_in_a_newline_is_refused(tmp_path):
    text = POLICY.format(audience='"orders-api"', rule="scopes: [orders:read]")
    text = text.replace("  corp:", '  "corp\\n":').replace("issuers: [corp]", 'issuers: ["corp\\n"]')
    policy_error(tmp_path, text)


def test_a_cognito_issuer_ending_in_a_newline_is_refused():
    with pytest.raises(ValueError, match="cognito"):
        IssuerConfig("https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123\n", ["client"], profile="cognito")
    with pytest.raises(ValueError, match="cognito"):
        IssuerConfig("eu-west-1_AbC123\n", ["client"], profile="cognito")


def whole_string_patterns_ending_in_dollar() -> list[str]:
    """Every regular expression literal in lambdas/, stacks/ and sandbox/ whose pattern uses `$` (end of string or
    before a final newline), found by compiling it: `\\Z` and fullmatch are the whole-string forms."""
    from re import _parser  # the standard library's own pattern parser: `$` is the AT_END opcode

    def uses_at_end(parsed) -> bool:
        for op, value in parsed:
            if op is _parser.AT and value is _parser.AT_END:
                return True
            children = value if isinstance(value, (list, tuple)) else ()
            for child in children:
                if isinstance(child, _parser.SubPattern) and uses_at_end(child):
                    return True
                if isinstance(child, (list, tuple)) and any(isinstance(c, _parser.SubPattern) and uses_at_end(c)
                                                           for c in child):
                    return True
            if isinstance(value, _parser.SubPattern) and uses_at_end(value):
                return True
        return False

    found = []
    for root in ("lambdas", "stacks", "sandbox"):
        for path in sorted((REPO / root).rglob("*.py")):
            if "node_modules" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
                        and isinstance(node.args[0].value, str)):
                    continue
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
                owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else None
                if owner != "re" or name not in ("compile", "match", "fullmatch", "search", "sub", "split", "findall"):
                    continue
                if uses_at_end(_parser.parse(node.args[0].value)):
                    found.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.args[0].value!r}")
    return found


def test_no_pattern_in_the_code_uses_dollar_as_the_end_of_the_string():
    assert whole_string_patterns_ending_in_dollar() == [], (
        "`$` also matches before a final newline: use re.fullmatch (or \\Z) for whole-string checks")


def test_the_dollar_scan_finds_what_it_looks_for(tmp_path, monkeypatch):
    # The scan itself must see a `$`, in a group or a lookahead too, or the test above could never fail.
    from re import _parser
    for pattern, expected in ((r"^a$", True), (r"(?=.{1,3}$)a", True), (r"(a|b$)", True), (r"a\Z", False),
                              (r"[$]", False), (r"a\$", False)):
        assert any(op is _parser.AT and value is _parser.AT_END for op, value in _walk(_parser.parse(pattern))) \
            == expected, pattern


def _walk(parsed):
    from re import _parser
    for op, value in parsed:
        yield op, value
        for child in (value if isinstance(value, (list, tuple)) else (value,)):
            if isinstance(child, _parser.SubPattern):
                yield from _walk(child)
            elif isinstance(child, (list, tuple)):
                for grand in child:
                    if isinstance(grand, _parser.SubPattern):
                        yield from _walk(grand)


@pytest.mark.parametrize("path", ["/files/a;b", "/files/it's"])
def test_nginx_refuses_a_path_segment_that_would_end_or_quote_a_directive(tmp_path, path):
    # ';' ends an NGINX directive and "'" opens a quoted string: written unquoted into `location ~ ...`, either one
    # broke the configuration (or, followed by the right text, wrote directives of its own).
    from stacks.policy.render.nginx import render_nginx
    text = POLICY.format(audience='"orders-api"', rule="scopes: [orders:read]").replace('"GET /orders"',
                                                                                       f'"GET {path}"')
    policy = load_text(tmp_path, text)
    with pytest.raises(ValueError, match="NGINX"):
        render_nginx(policy, "orders", backend="b:1", forward_auth="f:2")


def test_openapi_refuses_an_audience_the_gateway_would_split_at_its_comma(tmp_path):
    # x-google-audiences is one comma-separated string: the single audience "orders-api,billing-api" would make GCP
    # API Gateway accept tokens for billing-api too.
    from stacks.policy.render import render_openapi
    policy = load_text(tmp_path, POLICY.format(audience='"orders-api,billing-api"', rule="scopes: [orders:read]")
                       .replace("issuer: https://idp.example.com",
                                "issuer: https://idp.example.com\n    jwks_uri: https://idp.example.com/jwks"))
    with pytest.raises(ValueError, match="comma"):
        render_openapi(policy, "orders", backend_url="https://orders-abc.a.run.app")




def istio_rules(tmp_path, routes: str) -> list[dict]:
    from stacks.policy.render.istio import render_istio
    text = POLICY.format(audience='"orders-api"', rule="scopes: [orders:read]").replace(
        "issuer: https://idp.example.com", "issuer: https://sso.example.com/realms/shop\n    profile: keycloak\n"
        "    jwks_uri: https://sso.example.com/realms/shop/protocol/openid-connect/certs")
    policy = load_text(tmp_path, text + routes.replace("[realm]", "[corp]").replace("catalog:", "orders:"))
    manifests, _ = render_istio(policy, "orders", selector={"app": "orders"}, namespace="shop")
    return [rule for m in manifests if m["kind"] == "AuthorizationPolicy" and m["spec"].get("action", "ALLOW") == "ALLOW"
            for rule in m["spec"].get("rules", [])]


def test_istio_never_writes_a_scope_with_a_star_as_a_native_condition(tmp_path):
    # Istio reads '*' in a condition value as a prefix, suffix or presence match: a scope named "catalog:*" would
    # admit any catalog: scope, and "*" any token at all. Such routes go to the forward-auth service instead.
    rules = istio_rules(tmp_path, '      "GET /items": {issuers: [realm], scopes: ["catalog:*"]}\n'
                                  '      "GET /all": {issuers: [realm], scopes: ["*"]}')
    values = [value for rule in rules for condition in rule.get("when", []) for value in condition["values"]]
    assert values == ["orders:read"], values  # only GET /orders (no star) is enforced natively


def test_istio_refuses_a_path_with_a_literal_star(tmp_path):
    # A public "GET /docs/*" written as an Istio path is a wildcard: anyone could reach every /docs/... route.
    with pytest.raises(ValueError, match="Istio"):
        istio_rules(tmp_path, '      "GET /docs/*": {public: true}\n'
                              '      "GET /docs/{id}": {issuers: [realm], scopes: [catalog:read]}')
