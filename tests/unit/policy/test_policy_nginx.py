"""The NGINX renderer: golden files, `nginx -t` on the output, location order equal to the router's, refusals."""
from __future__ import annotations

import re
import subprocess

import pytest

from lambdas.validation.route_table import RouteTable
from sandbox.gateways.nginx import main_config, nginx_binary
from stacks.policy import load_policy
from stacks.policy.render import render_route_table
from stacks.policy.render.nginx import render_nginx
from tests.unit.policy.policy_testing import ISSUER_BLOCK, REPO, assert_golden, load_text
from tests.support.required import unavailable

K8S = {"backend": "orders.shop.svc.cluster.local:8080",
       "forward_auth": "authgate-forward-auth.authgate.svc.cluster.local:9100"}


def example():
    return load_policy(REPO / "policies/example.yaml")


@pytest.mark.parametrize("api", ["orders", "billing"])
def test_matches_golden(api):
    assert_golden(f"example.{api}.nginx.conf", render_nginx(example(), api, **K8S))


@pytest.mark.parametrize("api", ["orders", "billing"])
def test_nginx_accepts_the_rendered_configuration(tmp_path, api):
    if nginx_binary() is None:
        unavailable("nginx is not installed; install it with: apt-get install -y nginx (.ci/run does, as root)")
    config = render_nginx(example(), api, backend="127.0.0.1:8080", forward_auth="127.0.0.1:9100",
                          listen="127.0.0.1:18080")
    conf = tmp_path / "nginx.conf"
    conf.write_text(main_config(config, tmp_path))
    result = subprocess.run([nginx_binary(), "-t", "-e", "stderr", "-p", str(tmp_path), "-c", str(conf)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


def locations(config: str) -> list[tuple[str, str]]:
    """(regex, the block's text) for each regex location, in file order."""
    found = re.findall(r"location ~ (\S+) \{\n(.*?)\n    \}", config, re.DOTALL)
    assert found
    return found


def shop(tmp_path, routes: str):
    """A policy with one API, shop, whose routes are `routes` (YAML lines)."""
    lines = "\n".join("      " + line.strip() for line in routes.strip().splitlines())
    return load_text(tmp_path, ISSUER_BLOCK + "apis:\n  shop:\n    routes:\n" + lines + "\n")


def test_first_matching_location_is_the_route_the_table_selects(tmp_path):
    policy = shop(tmp_path, """
              "GET /{y}/b/c": {issuers: [corp], scopes: [y]}
              "GET /a/{x}/c": {issuers: [corp], scopes: [x]}
              "GET /a/b/{z}": {issuers: [corp], scopes: [z]}
              "GET /a/{rest+}": {issuers: [corp], scopes: [rest]}
              "GET /a": {public: true}
              "ANY /{proxy+}": {issuers: [corp], scopes: [any]}
        """)
    config = render_nginx(policy, "shop", backend="b:1", forward_auth="f:2")
    api = RouteTable.load(render_route_table(policy)).api("shop")
    order = locations(config)
    comments = re.findall(r"    # (\S+ \S+):", config)
    paths_in_order = []
    for key in comments:
        path = key.split(" ", 1)[1]
        if path not in paths_in_order:
            paths_in_order.append(path)
    for request in ("/a/b/c", "/x/b/c", "/a/x/c", "/a/b/z", "/a/q/r/s", "/a", "/a/", "/q", "/a/b/c/"):
        first = next(i for i, (regex, _) in enumerate(order) if re.match(regex, request))
        assert paths_in_order[first] == api.match("GET", request).path, request


def test_public_paths_skip_auth_request_but_clear_identity_headers(tmp_path):
    policy = shop(tmp_path, """
              "GET /status": {public: true}
              "GET /mixed": {public: true}
              "POST /mixed": {issuers: [corp], scopes: [write]}
        """)
    blocks = dict(locations(render_nginx(policy, "shop", backend="b:1", forward_auth="f:2")))
    status, mixed = blocks[r"^/status/?$"], blocks[r"^/mixed/?$"]
    assert "auth_request" not in status and "limit_except GET { deny all; }" in status
    assert 'proxy_set_header X-Authgate-Subject "";' in status
    # A path with a protected method goes to the service, which admits the public GET without a token.
    assert "auth_request /_authgate/auth;" in mixed and "limit_except" not in mixed
    assert "proxy_set_header X-Authgate-Subject $authgate_subject;" in mixed


def test_the_subrequest_describes_the_request_once():
    config = render_nginx(example(), "orders", **K8S)
    auth = config[config.index("location = /_authgate/auth {"):config.index("}", config.index("_authgate/auth {"))]
    assert "proxy_set_header X-Original-URI $request_uri;" in auth
    assert 'proxy_set_header X-Forwarded-Uri "";' in auth and "internal;" in auth
    assert "proxy_pass_request_body off;" in auth
    assert config.rstrip().endswith("location / {\n        return 404;\n    }\n}")


@pytest.mark.parametrize("options, message", [
    ({"backend": "orders"}, "--backend"),
    ({"backend": "orders:99999"}, "--backend"),
    ({"forward_auth": "x; evil:1"}, "--forward-auth"),
    ({"listen": "8080; include /etc/passwd"}, "--listen"),
    ({"server_name": "a;b"}, "--server-name"),
])
def test_bad_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        render_nginx(example(), "orders", **{**K8S, **options})


def test_websocket_and_unknown_apis_are_refused():
    with pytest.raises(ValueError, match="WebSocket"):
        render_nginx(example(), "notifications", **K8S)
    with pytest.raises(KeyError, match="no API named"):
        render_nginx(example(), "nope", **K8S)


MTLS_POLICY = ISSUER_BLOCK + """    binding: {mtls: true}
apis:
  shop:
    routes:
      "GET /orders": {issuers: [corp]}
      "DELETE /orders/{id}": {issuers: [corp], proof: mtls}
"""


def test_the_subrequest_carries_the_request_facts_and_clears_client_copies():
    config = render_nginx(example(), "orders", **K8S)
    auth = config[config.index("location = /_authgate/auth {"):config.index("}", config.index("_authgate/auth {"))]
    for line in ("proxy_set_header X-Forwarded-Proto $scheme;", "proxy_set_header X-Forwarded-Host $http_host;",
                 "proxy_set_header X-Client-Cert $ssl_client_escaped_cert;",
                 'proxy_set_header X-Forwarded-Client-Cert "";'):
        assert line in auth
    assert "ssl" not in config.split("location")[0].replace("$ssl_client", "")   # no TLS asked for: none written


def test_certificate_bound_apis_terminate_tls_and_ask_for_client_certificates(tmp_path):
    policy = load_text(tmp_path, MTLS_POLICY)
    with pytest.raises(ValueError, match=r"proof: mtls.*binding.mtls.*--tls-certificate"):
        render_nginx(policy, "shop", backend="b:1", forward_auth="f:2")
    tls = {"tls_certificate": "/etc/nginx/tls/server.pem", "tls_key": "/etc/nginx/tls/server.key"}
    server = render_nginx(policy, "shop", backend="b:1", forward_auth="f:2", **tls).split("location")[0]
    assert "listen 8080 ssl;" in server and "ssl_verify_client optional_no_ca;" in server
    server = render_nginx(policy, "shop", backend="b:1", forward_auth="f:2", client_ca="/etc/nginx/tls/ca.pem",
                          **tls).split("location")[0]
    assert "ssl_client_certificate /etc/nginx/tls/ca.pem;" in server and "ssl_verify_client optional;" in server
    # TLS for an API without certificate binding: no client certificates asked for.
    plain = render_nginx(example(), "orders", **K8S, **tls).split("location")[0]
    assert "listen 8080 ssl;" in plain and "ssl_verify_client" not in plain


@pytest.mark.parametrize("options, message", [
    ({"tls_certificate": "/a.pem"}, "go together"),
    ({"client_ca": "/ca.pem"}, "needs --tls-certificate"),
    ({"tls_certificate": "/a.pem", "tls_key": "/a.key", "client_ca": "/ca.pem"}, "no route or issuer"),
    ({"tls_certificate": "/a.pem; include /x", "tls_key": "/a.key"}, "--tls-certificate"),
    ({"tls_certificate": "relative.pem", "tls_key": "/a.key"}, "absolute"),
])
def test_bad_tls_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        render_nginx(example(), "orders", **{**K8S, **options})


def test_nginx_accepts_the_tls_configuration(tmp_path):
    if nginx_binary() is None:
        unavailable("nginx is not installed; install it with: apt-get install -y nginx (.ci/run does, as root)")
    from sandbox.tls_material import ThrowawayCa

    ca = ThrowawayCa(tmp_path / "tls")
    server = ca.issue("nginx", server=True)
    config = render_nginx(load_text(tmp_path, MTLS_POLICY), "shop", backend="127.0.0.1:8080",
                          forward_auth="127.0.0.1:9100", listen="127.0.0.1:18443", tls_certificate=str(server.path),
                          tls_key=str(server.key_path), client_ca=str(ca.path))
    conf = tmp_path / "nginx.conf"
    conf.write_text(main_config(config, tmp_path))
    result = subprocess.run([nginx_binary(), "-t", "-e", "stderr", "-p", str(tmp_path), "-c", str(conf)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
