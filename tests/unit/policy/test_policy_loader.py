"""Loading policy files: the example policies, defaults per profile, and errors that name file, line and field."""
from __future__ import annotations

import json

import pytest

from stacks.policy import PolicyError, load_policy, load_policy_text
from tests.support.tokens import SigningKey
from tests.unit.policy.policy_testing import ISSUER_BLOCK, REPO, load_text, policy_error, write_policy


def test_example_policy_loads_with_profile_defaults():
    policy = load_policy(REPO / "policies/example.yaml")
    assert set(policy.issuers) == {"corp", "partners", "workforce"}
    corp = policy.issuer("corp")
    assert corp.profile == "cognito" and corp.algorithms == ["RS256"] and corp.token_use == "access"
    assert corp.effective_jwks_uri == "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Ex4mpLe01/.well-known/jwks.json"
    assert policy.issuer("partners").effective_jwks_uri.endswith("/discovery/v2.0/keys")
    assert policy.issuer("workforce").effective_jwks_uri == "https://example.okta.com/oauth2/aus1billing2exmpl3/v1/keys"
    assert policy.api("orders").routes["GET /health"].public
    assert policy.source_path == (REPO / "policies/example.yaml").resolve()
    assert {c.kind for c in policy.clients.values()} == {"spa", "service"}


def test_scope_and_role_helpers_collect_what_routes_need():
    policy = load_policy(REPO / "policies/example.yaml")
    assert policy.issuer_scopes("corp") == ("orders-api/orders.admin", "orders-api/orders.read",
                                            "orders-api/orders.write")
    assert policy.scopes_by_issuer()["workforce"] == ("billing.read",)
    assert policy.issuer_roles("partners") == ("Billing.Approve", "Billing.Export", "Billing.Refund")
    assert set(policy.clients_of("corp")) == {"orders-web", "fulfilment-worker"}
    with pytest.raises(KeyError, match="no issuer named 'nope'"):
        policy.issuer_scopes("nope")


def test_local_policy_needs_its_issuer_variable():
    with pytest.raises(PolicyError) as info:
        load_policy(REPO / "policies/local.yaml")
    assert "${LOCAL_ISSUER_URL} has no value" in str(info.value)
    assert "--var LOCAL_ISSUER_URL=VALUE" in str(info.value)
    assert info.value.line == 15 and info.value.field == "issuers.local.issuer"
    policy = load_policy(REPO / "policies/local.yaml", variables={"LOCAL_ISSUER_URL": "http://127.0.0.1:41234"})
    local = policy.issuer("local")
    assert local.issuer == "http://127.0.0.1:41234" and local.local_development


VARIABLE_POLICY = """
    issuers:
      corp:
        issuer: ${URL}
        audiences: ["$${NOT_A_VARIABLE}"]
    apis:
      a:
        routes:
          "GET /x": {issuers: [corp]}
"""


def test_variables_fill_string_values_and_double_dollar_escapes(tmp_path):
    policy = load_text(tmp_path, VARIABLE_POLICY, variables={"URL": "https://idp.example.com"})
    assert policy.issuer("corp").issuer == "https://idp.example.com"
    assert policy.issuer("corp").audiences == ["${NOT_A_VARIABLE}"]


def test_a_variable_value_is_one_string_never_yaml(tmp_path):
    err = policy_error(tmp_path, VARIABLE_POLICY, variables={"URL": "https://idp.example.com\nextra: [1]"})
    assert "contains whitespace or control characters" in str(err) and err.field == "issuers.corp.issuer"


def test_error_names_file_line_and_field_path(tmp_path):
    err = policy_error(tmp_path, ISSUER_BLOCK + """
apis:
  orders:
    routes:
      "GET /orders":
        issuers: [corp]
        scopes: ["orders read"]
""")
    [problem] = err.problems
    assert problem.line == 11 and problem.file.endswith("policy.yaml")
    assert str(err).endswith('policy.yaml:11: apis.orders.routes."GET /orders".scopes[0]: \'orders read\' is not a '
                             'scope: a scope is one token of printable ASCII without spaces, quotes or backslashes '
                             '(RFC 6749 §3.3), e.g. orders:read or orders-api/orders.read')


@pytest.mark.parametrize("route, expected", [
    ('"GET /x": {issuers: [corp], scope: [a]}', "unknown field 'scope'"),
    ('"GET /x": {issuers: [nope]}', "no issuer named 'nope'; the policy defines: corp"),
    ('"get /x": {issuers: [corp]}', "unknown method 'get' (write it in upper case: 'GET')"),
    ('"GET x": {issuers: [corp]}', "the path must start with '/'"),
    ('"GET /x/": {issuers: [corp]}', "remove the trailing '/'"),
    ('"GET /{p+}/x": {issuers: [corp]}', "must be the last segment"),
    ('"GET /a{id}": {issuers: [corp]}', "mixes text and a parameter"),
    ('"GET /x": {public: true, scopes: [a]}', "a public route takes no token, so scopes cannot apply"),
    ('"GET /x": {scopes: [a]}', "a protected route names the issuers"),
    ('"GET /x": {issuers: [corp], claims: {aud: [x]}}', "claim 'aud' is checked by the verifier"),
    ('"GET /x": {issuers: [corp], roles: [admin, admin]}', "roles lists 'admin' twice"),
    ('"GET /x": {issuers: [corp], enforcement: sometimes}', "'sometimes' is not allowed; use one of 'auto', "
                                                            "'native' or 'lambda'"),
    ('"GET /x": {issuers: [corp], token_use: id}', "the route accepts only id tokens but issuer corp accepts only "
                                                   "access tokens"),
])
def test_route_problems_are_explained(tmp_path, route, expected):
    err = policy_error(tmp_path, ISSUER_BLOCK + f"apis:\n  a:\n    routes:\n      {route}\n")
    assert expected in str(err)
    assert err.problems[0].line == 8


def test_same_route_twice_with_different_parameter_names(tmp_path):
    err = policy_error(tmp_path, ISSUER_BLOCK + """
apis:
  a:
    routes:
      "GET /orders/{id}": {issuers: [corp]}
      "GET /orders/{orderId}": {issuers: [corp]}
""")
    assert "'GET /orders/{orderId}' is the same route as 'GET /orders/{id}'" in str(err)
    assert err.line == 10


def test_duplicate_yaml_keys_are_refused_not_silently_overwritten(tmp_path):
    err = policy_error(tmp_path, ISSUER_BLOCK + """
apis:
  a:
    routes:
      "GET /x": {issuers: [corp], scopes: [a]}
      "GET /x": {public: true}
""")
    assert "duplicate key 'GET /x' (first given on line 9)" in str(err) and err.line == 10


def test_not_yaml_and_empty_file(tmp_path):
    assert "not valid YAML" in str(policy_error(tmp_path, "issuers: [unclosed\n"))
    assert "the policy file is empty" in str(policy_error(tmp_path, "# nothing\n"))
    assert "policy file not found" in str(pytest.raises(PolicyError, load_policy, tmp_path / "missing.yaml").value)


@pytest.mark.parametrize("issuer_yaml, expected", [
    ("issuer: http://idp.example.com", "uses http://; issuers must use https://"),
    ("issuer: http://idp.example.com\n    local_development: true", "allows http:// only for loopback hosts"),
    ("issuer: https://idp.example.com\n    local_development: true", "local_development is only for loopback"),
    ("issuer: https://idp.example.com?x=1", "no query, fragment or credentials"),
    ("issuer: https://idp.example.com\n    profile: cognito", "a cognito issuer is https://cognito-idp.<region>"),
    ("issuer: https://cognito-idp.eu-west-1.amazonaws.com/us-east-1_Abc\n    profile: cognito",
     "the pool id starts with its region"),
    ("issuer: https://sts.windows.net/tid/\n    profile: entra", "the v1.0 token issuer"),
    ("issuer: https://tenant.eu.auth0.com\n    profile: auth0", "use https://tenant.eu.auth0.com/"),
    ("issuer: https://sso.example.com/auth\n    profile: keycloak", "names its realm"),
    ("issuer: https://example.com\n    profile: google", "a google issuer is https://accounts.google.com"),
    ("issuer: https://idp.example.com\n    profile: azur", "'azur' is not allowed; use one of 'generic'"),
    ("issuer: https://idp.example.com\n    algorithms: [HS256]", "'HS256' is not allowed"),
    ("issuer: https://idp.example.com\n    algorithms: [none]", "'none' is not allowed"),
    ("issuer: https://idp.example.com\n    jwks_uri: http://idp.example.com/keys", "jwks_uri 'http://idp.example.com"
                                                                                 "/keys' uses plain http to a non-"
                                                                                 "loopback host"),
    ("issuer: http://127.0.0.1:9\n    local_development: true\n    jwks_uri: http://127.0.0.1:9/keys#x",
     "has a #fragment"),
    ("issuer: https://idp.example.com\n    leeway_seconds: 3600", "less than or equal to 300"),
])
def test_issuer_problems_are_explained(tmp_path, issuer_yaml, expected):
    text = f"""
issuers:
  corp:
    {issuer_yaml}
    audiences: [orders-api]
apis:
  a:
    routes:
      "GET /x": {{issuers: [corp]}}
"""
    err = policy_error(tmp_path, text)
    assert expected in str(err)
    assert err.field.startswith("issuers.corp")


def test_profile_aliases_load_as_the_cli_reads_them(tmp_path):
    """`--profile azure` was accepted by the CLI and `profile: azure` refused by the policy: one list now."""
    from lambdas.validation.config import PROFILE_ALIASES
    from stacks.commands.token_options import _profile
    for alias, profile in PROFILE_ALIASES.items():
        issuer = ("https://login.microsoftonline.com/7f1c2d3e-0000-4000-8000-000000000001/v2.0"
                  if profile == "entra" else "https://securetoken.google.com/my-project")
        path = tmp_path / f"{alias}.yaml"
        path.write_text(f"""
issuers:
  corp: {{issuer: "{issuer}", audiences: [orders-api], profile: {alias}}}
apis:
  a:
    routes:
      "GET /x": {{issuers: [corp]}}
""")
        assert load_policy(path).issuers["corp"].profile == profile == _profile(alias)


def test_policy_issuer_rules_are_the_runtimes(tmp_path):
    """The policy refused the UPDATED Cognito issuer spelling the runtime accepts, and read a loopback host with a
    trailing dot ("localhost.") as remote while the key fetcher read it as loopback."""
    from lambdas.validation import IssuerConfig
    updated = "https://issuer-cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Ex4mpLe01"
    for issuer, extra in ((updated, "profile: cognito"), ("http://localhost.:9000", "local_development: true")):
        path = tmp_path / "p.yaml"
        path.write_text(f"""
issuers:
  corp:
    issuer: "{issuer}"
    audiences: [orders-api]
    {extra}
apis:
  a:
    routes:
      "GET /x": {{issuers: [corp]}}
""")
        assert load_policy(path).issuers["corp"].issuer == issuer
    assert IssuerConfig(updated, ["a"], profile="cognito").issuer == updated
    with pytest.raises(ValueError, match="the pool id starts with its region"):
        IssuerConfig("https://cognito-idp.eu-west-1.amazonaws.com/us-east-1_Abc", ["a"], profile="cognito")


def test_loopback_issuer_with_local_development(tmp_path):
    for url in ("http://127.0.0.1:8080", "http://localhost:9000/realm", "http://[::1]:4000"):
        policy = load_text(tmp_path, f"""
            issuers:
              dev: {{issuer: "{url}", local_development: true, audiences: [a]}}
            apis:
              a: {{routes: {{"GET /x": {{issuers: [dev]}}}}}}
        """)
        assert policy.issuer("dev").issuer == url


def test_the_same_issuer_url_twice_is_refused(tmp_path):
    err = policy_error(tmp_path, """
issuers:
  one: {issuer: https://idp.example.com, audiences: [a]}
  two: {issuer: https://idp.example.com, audiences: [b]}
apis:
  a: {routes: {"GET /x": {issuers: [one, two]}}}
""")
    assert "issuer one already has https://idp.example.com" in str(err) and err.line == 3


def test_jwks_file_is_read_relative_to_the_policy_file(tmp_path):
    key = SigningKey.generate("ES256", kid="k1")
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "corp.json").write_text(json.dumps(key.jwks()))
    path = write_policy(tmp_path, """
        issuers:
          corp:
            issuer: https://idp.example.com
            audiences: [a]
            algorithms: [ES256]
            jwks_file: keys/corp.json
        apis:
          a: {routes: {"GET /x": {issuers: [corp]}}}
    """)
    policy = load_policy(path)
    assert policy.issuer("corp").jwks == key.jwks()
    assert policy.issuer("corp").effective_jwks_uri is None


@pytest.mark.parametrize("content, expected", [
    (None, "jwks_file 'keys.json' not found"),
    ("{not json", "is not JSON"),
    ('{"keys": []}', "with at least one key"),
    ('{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}', "symmetric 'oct' keys are refused"),
])
def test_bad_jwks_files(tmp_path, content, expected):
    if content is not None:
        (tmp_path / "keys.json").write_text(content)
    err = policy_error(tmp_path, """
issuers:
  corp:
    issuer: https://idp.example.com
    audiences: [a]
    jwks_file: keys.json
apis:
  a: {routes: {"GET /x": {issuers: [corp]}}}
""")
    assert expected in str(err)
    assert err.line in (2, 5)  # the issuer (file unreadable) or its jwks_file line (content refused)


def test_private_key_material_and_wrong_alg_in_a_key_set_are_refused(tmp_path):
    key = SigningKey.generate("RS256", kid="k1")
    private = dict(key.jwk(), d="AQAB")
    (tmp_path / "private.json").write_text(json.dumps({"keys": [private]}))
    err = policy_error(tmp_path, """
issuers:
  corp: {issuer: https://idp.example.com, audiences: [a], jwks_file: private.json}
apis:
  a: {routes: {"GET /x": {issuers: [corp]}}}
""")
    assert "holds private key material (d)" in str(err)
    (tmp_path / "es.json").write_text(json.dumps(SigningKey.generate("ES256").jwks()))
    err = policy_error(tmp_path, """
issuers:
  corp: {issuer: https://idp.example.com, audiences: [a], jwks_file: es.json}
apis:
  a: {routes: {"GET /x": {issuers: [corp]}}}
""")
    assert "is for ES256, which algorithms (RS256) does not allow" in str(err)


CLIENTS_BASE = ISSUER_BLOCK + """
apis:
  a:
    routes:
      "GET /x": {issuers: [corp], scopes: [orders:read]}
clients:
"""


@pytest.mark.parametrize("client, expected", [
    ("{kind: spa, issuer: corp, audience: orders-api, redirect_uris: ['https://app.example.com/*']}", "wildcard"),
    ("{kind: spa, issuer: corp, audience: orders-api, redirect_uris: ['http://app.example.com/cb']}",
     "must be https://"),
    ("{kind: spa, issuer: corp, audience: orders-api}", "a spa client needs redirect_uris"),
    ("{kind: service, issuer: corp, audience: orders-api, scopes: [orders:read], redirect_uris: ['https://a/cb']}",
     "has no browser redirects"),
    ("{kind: service, issuer: corp, audience: orders-api}", "lists the scopes it requests"),
    ("{kind: service, issuer: corp, audience: orders-api, scopes: [orders:write]}",
     "scope 'orders:write' is not defined by issuer corp (defined: orders:read)"),
    ("{kind: service, issuer: corp, audience: billing, scopes: [orders:read]}",
     "audience 'billing' is not one of issuer corp's audiences"),
    ("{kind: service, issuer: corp, scopes: [orders:read]}", "name the audience this client calls"),
    ("{kind: service, issuer: nope, scopes: [orders:read]}", "no issuer named 'nope'"),
    ("{kind: daemon, issuer: corp}", "'daemon' is not allowed; use one of 'spa', 'web' or 'service'"),
])
def test_client_problems_are_explained(tmp_path, client, expected):
    err = policy_error(tmp_path, CLIENTS_BASE + f"  c1: {client}\n")
    assert expected in str(err)
    assert err.line == 11 and err.field.startswith("clients.c1")


def test_declared_issuer_scopes_and_standard_scopes_are_requestable(tmp_path):
    policy = load_text(tmp_path, """
        issuers:
          corp: {issuer: https://idp.example.com, audiences: [orders-api], scopes: [orders:export]}
        apis:
          a: {routes: {"GET /x": {issuers: [corp], scopes: [orders:read]}}}
        clients:
          web: {kind: spa, issuer: corp, audience: orders-api, scopes: [openid, offline_access, orders:export],
                redirect_uris: ["http://localhost:5173/cb"]}
    """)
    assert policy.issuer_scopes("corp") == ("orders:export", "orders:read")


def test_load_policy_text_and_dict_paths_report_without_a_file():
    with pytest.raises(PolicyError) as info:
        load_policy_text("issuers: {}\napis: {}\n", file="inline.yaml")
    assert "inline.yaml:1: issuers" in str(info.value)


def test_bundled_keys_the_runtime_would_refuse_are_refused_at_load(tmp_path):
    """A 1024-bit RSA key in jwks_file loaded, and the verifier then dropped it: every token of that issuer failed
    as unknown_kid in production. The policy now applies the runtime's own key checks."""
    import json

    from tests.support.tokens import SigningKey
    weak = SigningKey.generate("RS256", kid="weak", rsa_bits=1024)
    (tmp_path / "keys.json").write_text(json.dumps(weak.jwks()))
    path = tmp_path / "policy.yaml"
    path.write_text("""
issuers:
  corp: {issuer: "https://idp.example.com", audiences: [orders-api], jwks_file: keys.json}
apis:
  a:
    routes:
      "GET /x": {issuers: [corp]}
""")
    with pytest.raises(PolicyError, match="keys\\[0\\] would be refused when tokens are verified: .*2048"):
        load_policy(path)
