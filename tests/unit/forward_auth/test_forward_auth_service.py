"""The forward-auth decision on real signed tokens, through every header convention proxies use."""
from __future__ import annotations

import json

import pytest

from lambdas.forward_auth.conventions import BadCheckRequest, original_request
from lambdas.forward_auth.identity_headers import DEFAULT_NAMES, header_safe, parse_header_names
from lambdas.forward_auth.service import ForwardAuthSettings
from tests.support.http_server import LocalHttpServer
from tests.support.tokens import mint


def nginx(method: str, uri: str, token: str | None = None, **extra) -> dict:
    headers = {"x-original-method": (method,), "x-original-uri": (uri,)}
    if token is not None:
        headers["authorization"] = (f"Bearer {token}",)
    headers.update({k.replace("_", "-"): (v if isinstance(v, tuple) else (v,)) for k, v in extra.items()})
    return headers


def traefik(method: str, uri: str, token: str | None = None) -> dict:
    headers = {"x-forwarded-method": (method,), "x-forwarded-uri": (uri,), "x-forwarded-proto": ("https",),
               "x-forwarded-host": ("api.example.test",)}
    if token is not None:
        headers["authorization"] = (f"Bearer {token}",)
    return headers


def header(answer, name: str) -> str | None:
    values = [v for k, v in answer.headers if k.lower() == name.lower()]
    assert len(values) <= 1, f"{name} answered more than once"
    return values[0] if values else None


def audit_lines(captured: str) -> list[dict]:
    return [json.loads(line) for line in captured.splitlines() if line.startswith('{"authgate"')]


# --- the three conventions ---------------------------------------------------------------------------------------

def test_nginx_auth_request_allowed_with_identity_headers(service, token_for):
    token = token_for("orders:read", roles=["auditor"], groups=["eu"], tenant="acme")
    answer = service.check("GET", "/auth", nginx("GET", "/orders?page=2", token))
    assert answer.status == 200 and answer.outcome == "allow"
    assert header(answer, "X-Authgate-Subject") == "user-123"
    assert header(answer, "X-Authgate-Client-Id") == "orders-web"
    assert header(answer, "X-Authgate-Scopes") == "orders:read"
    assert header(answer, "X-Authgate-Issuer") == "https://idp.example.test"
    assert header(answer, "X-Authgate-Decision") == "allow"


def test_traefik_forward_auth_convention(service, token_for):
    answer = service.check("GET", "/", traefik("POST", "/orders", token_for("orders:read")))
    assert answer.status == 403 and answer.code == "insufficient_scope"
    answer = service.check("GET", "/", traefik("POST", "/orders", token_for("orders:read orders:write")))
    assert answer.status == 200


def test_envoy_ext_authz_path_appended_to_prefix(service, token_for):
    headers = {"authorization": (f"Bearer {token_for('orders:read', tenant='acme')}",)}
    assert service.check("GET", "/ext-authz/orders/42", headers).status == 200
    # The check request's own method is the client's method under ext_authz.
    assert service.check("DELETE", "/ext-authz/orders/42", headers).code == "insufficient_scope"
    assert service.check("GET", "/ext-authz", headers).code == "route_not_found"


def test_envoy_prefix_is_configurable(make_service, token_for):
    service = make_service(settings=ForwardAuthSettings(envoy_path_prefix="/check"))
    headers = {"authorization": (f"Bearer {token_for()}",)}
    assert service.check("GET", "/check/orders", headers).status == 200
    assert service.check("GET", "/ext-authz/orders", headers).status == 400


def test_a_fixed_convention_ignores_the_others(make_service, token_for):
    service = make_service(settings=ForwardAuthSettings(convention="nginx"))
    token = token_for()
    assert service.check("GET", "/auth", traefik("GET", "/orders", token)).status == 400
    assert service.check("GET", "/ext-authz/orders", {"authorization": (f"Bearer {token}",)}).status == 400
    assert service.check("GET", "/auth", nginx("GET", "/orders", token)).status == 200


# --- the answers -------------------------------------------------------------------------------------------------

def test_missing_token_is_401_with_a_bare_challenge(service):
    answer = service.check("GET", "/auth", nginx("GET", "/orders"))
    assert answer.status == 401
    # RFC 6750 3.1: a request with no authentication information gets no error code.
    assert header(answer, "WWW-Authenticate") == 'Bearer realm="authgate"'


@pytest.mark.parametrize("kind", ["expired", "bad_signature", "invalid_audience"])
def test_bad_tokens_are_401_invalid_token(service, signing_key, kind):
    if kind == "expired":
        token = mint(signing_key, scope="orders:read", lifetime=-600)
    elif kind == "invalid_audience":
        token = mint(signing_key, scope="orders:read", audience="billing-api")
    else:
        head, body, sig = mint(signing_key, scope="orders:read").split(".")
        token = f"{head}.{body}.{sig[:-4]}AAAA"
    answer = service.check("GET", "/auth", nginx("GET", "/orders", token))
    assert answer.status == 401 and answer.code == kind
    challenge = header(answer, "WWW-Authenticate")
    assert challenge.startswith('Bearer realm="authgate", error="invalid_token", error_description="')
    assert kind in challenge and token not in challenge


def test_missing_scope_is_403_naming_the_scope(service, token_for):
    answer = service.check("GET", "/auth", nginx("POST", "/orders", token_for("orders:read")))
    assert answer.status == 403 and answer.code == "insufficient_scope"
    challenge = header(answer, "WWW-Authenticate")
    assert 'error="insufficient_scope"' in challenge
    assert challenge.endswith('scope="orders:read orders:write"')
    answer = service.check("GET", "/auth", nginx("GET", "/orders", token_for("billing:read")))
    assert header(answer, "WWW-Authenticate").endswith('scope="orders:read"')


def test_role_and_claim_refusals_are_403_without_scope_attribute(service, token_for):
    answer = service.check("GET", "/auth", nginx("DELETE", "/orders/1", token_for("orders:write", roles=["viewer"])))
    assert answer.status == 403 and answer.code == "insufficient_role" and answer.outcome == "forbidden"
    assert "scope=" not in header(answer, "WWW-Authenticate")
    answer = service.check("GET", "/auth", nginx("GET", "/orders/1", token_for("orders:read", tenant="globex")))
    assert answer.status == 403 and answer.code == "claim_mismatch"


def test_unknown_route_is_refused_never_allowed(service, token_for):
    answer = service.check("GET", "/auth", nginx("GET", "/admin", token_for()))
    assert answer.status == 403 and answer.code == "route_not_found"
    assert service.check("GET", "/auth", nginx("GET", "/admin")).status == 401


def test_public_routes_need_no_token(service, signing_key):
    assert service.check("GET", "/auth", nginx("GET", "/health")).status == 200
    assert service.check("GET", "/auth", nginx("GET", "/public/a/b")).status == 200
    # A public route sends no identity headers for a bad token.
    expired = mint(signing_key, lifetime=-600)
    answer = service.check("GET", "/auth", nginx("GET", "/health", expired))
    assert answer.status == 200 and header(answer, "X-Authgate-Subject") is None


def test_repeated_authorization_header_is_401(service, token_for):
    headers = nginx("GET", "/orders")
    headers["authorization"] = (f"Bearer {token_for()}", f"Bearer {token_for()}")
    answer = service.check("GET", "/auth", headers)
    assert answer.status == 401 and answer.code == "malformed"


def test_keys_unavailable_is_503_never_200(make_service, table_for, token_for):
    with LocalHttpServer() as keys:
        keys.fail("/jwks.json", status=503)
        service = make_service(table_for(jwks=None, jwks_uri=keys.url("/jwks.json"), allow_insecure_http=True))
        answer = service.check("GET", "/auth", nginx("GET", "/orders", token_for()))
    assert answer.status == 503 and answer.code == "jwks_unavailable"
    assert header(answer, "Retry-After") == "5"


def test_an_unexpected_failure_answers_503(make_service, token_for, capsys):
    service = make_service()

    class Broken:
        def authenticate(self, token):
            raise KeyError("boom")

    service.runtime.verifier = Broken()
    answer = service.check("GET", "/auth", nginx("GET", "/orders", token_for()))
    assert answer.status == 503 and answer.code == "internal_error"
    assert "KeyError" in capsys.readouterr().err


# --- check requests that do not say which request to decide --------------------------------------------------------

@pytest.mark.parametrize("headers", [
    {"x-original-method": ("GET",), "x-original-uri": ("/orders",), "x-forwarded-method": ("GET",),
     "x-forwarded-uri": ("/health",)},
    {"x-original-method": ("GET",), "x-original-uri": ("/health", "/orders")},
    {"x-original-uri": ("/orders",)},
    {"x-original-method": ("BREW",), "x-original-uri": ("/orders",)},
    {"x-original-method": ("GET",), "x-original-uri": ("orders",)},
    {"x-original-method": ("GET",), "x-original-uri": ("/public/..%2Forders",)},
    {"x-original-method": ("GET",), "x-original-uri": ("/public/../orders",)},
    {"x-original-method": ("GET",), "x-original-uri": ("/public/%2e%2E/orders",)},
    {"x-original-method": ("GET",), "x-original-uri": ("/public/a%5Cb",)},
    {"x-original-method": ("GET",), "x-original-uri": ("/public/a\tb",)},
    {},
], ids=["conventions-disagree", "uri-twice", "method-missing", "not-a-method", "relative", "encoded-slash",
        "dot-dot", "encoded-dot-dot", "encoded-backslash", "control-char", "nothing"])
def test_ambiguous_check_requests_are_400(service, headers):
    answer = service.check("GET", "/auth", headers)
    assert answer.status == 400 and answer.outcome == "bad_request"


def test_agreeing_conventions_are_accepted():
    headers = {"x-original-method": ("GET",), "x-original-uri": ("/orders?a=1",), "x-forwarded-method": ("get",),
               "x-forwarded-uri": ("/orders",)}
    assert original_request("GET", "/auth", headers).path == "/orders"
    with pytest.raises(ValueError):
        original_request("GET", "/auth", headers, convention="haproxy")
    with pytest.raises(BadCheckRequest):
        original_request("GET", "/somewhere", {}, convention="envoy")


# --- identity headers --------------------------------------------------------------------------------------------

def test_identity_header_values_are_header_safe(service, token_for):
    token = token_for("orders:read", roles=["Global Admin", "café"], sub="evil\r\nX-Injected: 1")
    answer = service.check("GET", "/auth", nginx("GET", "/orders", token))
    assert answer.status == 200
    assert header(answer, "X-Authgate-Subject") == "evil%0D%0AX-Injected:%201"
    assert header(answer, "X-Authgate-Roles") == "Global%20Admin caf%C3%A9"
    for name, value in answer.headers:
        assert all(0x21 <= ord(c) < 0x7F or c == " " for c in value), (name, value)


def test_percent_is_encoded_so_values_decode_unambiguously():
    assert header_safe("100%") == "100%25"
    assert header_safe("plain") == "plain"


def test_header_names_are_configurable(make_service, token_for):
    names = parse_header_names("subject=X-User, scopes=X-Scopes")
    service = make_service(settings=ForwardAuthSettings(header_names=names))
    answer = service.check("GET", "/auth", nginx("GET", "/orders", token_for()))
    assert header(answer, "X-User") == "user-123" and header(answer, "X-Scopes") == "orders:read"
    assert header(answer, "X-Authgate-Subject") is None
    assert header(answer, DEFAULT_NAMES["tenant"]) == ""


@pytest.mark.parametrize("spec", ["nickname=X-Nick", "subject", "subject=Bad Name", "subject=X-A,scopes=x-a",
                                  "subject=Authorization"])
def test_bad_header_name_settings_are_refused(spec):
    with pytest.raises(ValueError):
        parse_header_names(spec)


@pytest.mark.parametrize("env", [{"AUTHGATE_FORWARD_AUTH_CONVENTION": "haproxy"},
                                 {"AUTHGATE_FORWARD_AUTH_PATH_PREFIX": "/"},
                                 {"AUTHGATE_FORWARD_AUTH_PATH_PREFIX": "ext"},
                                 {"AUTHGATE_IDENTITY_HEADERS": "subject=X Y"},
                                 {"AUTHGATE_REALM": 'a"b'}])
def test_bad_settings_name_the_variable(env):
    from lambdas.authorizers.runtime import AuthorizerMisconfigured
    with pytest.raises(AuthorizerMisconfigured, match=next(iter(env)).replace("AUTHGATE_", "")):
        ForwardAuthSettings.from_env(env)


# --- audit -------------------------------------------------------------------------------------------------------

def test_one_audit_line_per_decision_without_the_token(service, token_for, capsys):
    token = token_for()
    service.check("GET", "/auth", nginx("GET", "/orders", token, x_request_id="r-1"), request_id="r-1")
    service.check("GET", "/auth", nginx("POST", "/orders", token))
    service.check("GET", "/auth", nginx("GET", "/orders"))
    service.check("GET", "/auth", {})
    out = capsys.readouterr().out
    lines = audit_lines(out)
    assert [(l["decision"], l["code"], l["status"]) for l in lines] == [
        ("allow", None, 200), ("forbidden", "insufficient_scope", 403), ("unauthorized", "malformed", 401),
        ("bad_request", "bad_check_request", 400)]
    assert lines[0]["authorizer"] == "forward_auth" and lines[0]["route"] == "GET /orders"
    assert lines[0]["sub"] == "user-123" and lines[0]["request_id"] == "r-1"
    assert token not in out and token.split(".")[2] not in out


def test_observers_see_every_decision(make_service, token_for):
    seen: list[dict] = []
    service = make_service(observers=[seen.append])
    service.check("GET", "/auth", nginx("GET", "/orders", token_for()))
    service.check("GET", "/auth", nginx("GET", "/nowhere"))
    assert [r["decision"] for r in seen] == ["allow", "unauthorized"]


def test_a_client_chosen_request_id_is_bounded_in_the_audit_line(service, token_for, capsys):
    # The proxy passes the client's X-Request-Id on: it is logged only as a short, visible-ASCII token.
    service.check("GET", "/auth", nginx("GET", "/orders", token_for()), request_id="r-" + "x" * 5000)
    service.check("GET", "/auth", nginx("GET", "/orders", token_for()), request_id="evil\n{\"decision\":\"allow\"}")
    service.check("GET", "/auth", nginx("GET", "/orders", token_for()), request_id="abc-123")
    lines = audit_lines(capsys.readouterr().out)
    assert "request_id" not in lines[0] and "request_id" not in lines[1]
    assert lines[2]["request_id"] == "abc-123"
