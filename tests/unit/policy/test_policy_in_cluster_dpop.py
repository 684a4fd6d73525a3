"""In-cluster gateways in front of DPoP routes. NGINX passes the decision service's DPoP-Nonce header (beside its
DPoP challenge) back to the client on a 401 for a path with a dpop_nonce: required route, as RFC 9449 9 needs, and
paths without the setting render as before; the real-NGINX case runs Debian's nginx with the rendered configuration
against a decision service on 127.0.0.1 that answers use_dpop_nonce. Envoy Gateway and Istio send the DPoP proof
header in the check request, and nothing narrows the refusal headers handed to the client, so the DPoP challenge and
DPoP-Nonce reach it (ext_authz passes every header of a denial when no client-header list is set). The forward-auth
Deployment of such an API reads its one nonce key from a Secret."""
from __future__ import annotations

import contextlib
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sandbox.gateways.nginx import free_loopback_port, main_config, nginx_binary
from stacks.policy.render.gateway_api import render_gateway_api
from stacks.policy.render.istio import render_istio
from stacks.policy.render.k8s import render_k8s
from stacks.policy.render.nginx import render_nginx
from tests.unit.policy.policy_testing import load_text
from tests.support.required import unavailable

POLICY = """
issuers:
  corp:
    issuer: https://idp.example.com
    audiences: [orders-api]
    binding: {dpop: true}
apis:
  shop:
    routes:
      "POST /orders": {issuers: [corp], proof: dpop, dpop_nonce: required}
      "GET /orders": {issuers: [corp], proof: dpop}
      "GET /items": {issuers: [corp]}
"""
NONCE = "eyJ7S_zG.yH6t8kKtw2gdYx2lZ4UuQ-NONCE"
CHALLENGE = 'DPoP error="use_dpop_nonce", algs="ES256"'


def blocks(config: str) -> dict[str, str]:
    return dict(re.findall(r"location ~ (\S+) \{\n(.*?)\n    \}", config, re.DOTALL))


def test_only_a_path_with_a_nonce_route_passes_the_header(tmp_path):
    config = render_nginx(load_text(tmp_path, POLICY), "shop", backend="b:1", forward_auth="f:2")
    found = blocks(config)
    orders, items = found[r"^/orders/?$"], found[r"^/items/?$"]
    assert "auth_request_set $authgate_dpop_nonce $upstream_http_dpop_nonce;" in orders
    assert "add_header DPoP-Nonce $authgate_dpop_nonce always;" in orders
    assert "dpop_nonce" not in items and "DPoP-Nonce" not in items


@contextlib.contextmanager
def real_nginx(tmp_path, config: str):
    """Debian's nginx running `config` (a rendered server block) under tmp_path, stopped afterwards; the process."""
    if nginx_binary() is None:
        unavailable("nginx is not installed; install it with: apt-get install -y nginx (.ci/run does, as root)")
    workdir = tmp_path / "nginx"
    workdir.mkdir()
    (workdir / "nginx.conf").write_text(main_config(config, workdir))
    process = subprocess.Popen([nginx_binary(), "-e", "stderr", "-p", str(workdir), "-c", str(workdir / "nginx.conf")],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=10)


class _Decisions(BaseHTTPRequestHandler):
    """The decision service's side of auth_request: 401 use_dpop_nonce with a nonce, whatever is asked."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(401)
        self.send_header("WWW-Authenticate", CHALLENGE)
        self.send_header("DPoP-Nonce", NONCE)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_a_real_nginx_hands_the_nonce_and_challenge_to_the_client(tmp_path):
    decisions = ThreadingHTTPServer(("127.0.0.1", 0), _Decisions)
    threading.Thread(target=decisions.serve_forever, daemon=True).start()
    port = free_loopback_port()
    config = render_nginx(load_text(tmp_path, POLICY), "shop", backend="127.0.0.1:9",
                          forward_auth=f"127.0.0.1:{decisions.server_address[1]}", listen=f"127.0.0.1:{port}")
    try:
        with real_nginx(tmp_path, config) as process:
            answers = {}
            deadline = time.monotonic() + 15
            for method, path in (("POST", "/orders"), ("GET", "/items")):
                while True:
                    try:
                        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                                         data=b"" if method == "POST" else None)
                        urllib.request.urlopen(request, timeout=5)
                        pytest.fail("the decision service refused; nginx must not answer 2xx")
                    except urllib.error.HTTPError as err:
                        answers[path] = (err.code, err.headers)
                        break
                    except OSError:
                        assert process.poll() is None and time.monotonic() < deadline, "nginx did not start"
                        time.sleep(0.05)
            status, headers = answers["/orders"]
            assert status == 401 and headers["DPoP-Nonce"] == NONCE and headers["WWW-Authenticate"] == CHALLENGE
            status, headers = answers["/items"]
            assert status == 401 and headers["DPoP-Nonce"] is None and headers["WWW-Authenticate"] == CHALLENGE
    finally:
        decisions.shutdown()
        decisions.server_close()


class _Allowing(BaseHTTPRequestHandler):
    """Both peers of an allowed request: the decision service's 200 with a fresh DPoP-Nonce (RFC 9449 8.2) on the
    auth_request subrequest, and the backend's 200 for the request itself."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(200)
        self.send_header("DPoP-Nonce", NONCE)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:
        pass


def test_a_real_nginx_hands_an_allowed_requests_fresh_nonce_to_the_client(tmp_path):
    peers = ThreadingHTTPServer(("127.0.0.1", 0), _Allowing)
    threading.Thread(target=peers.serve_forever, daemon=True).start()
    address = f"127.0.0.1:{peers.server_address[1]}"
    port = free_loopback_port()
    config = render_nginx(load_text(tmp_path, POLICY), "shop", backend=address, forward_auth=address,
                          listen=f"127.0.0.1:{port}")
    try:
        with real_nginx(tmp_path, config) as process:
            deadline = time.monotonic() + 15
            while True:
                try:
                    with urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/orders", method="POST",
                                                                       data=b"{}"), timeout=5) as response:
                        status, headers = response.status, response.headers
                    break
                except urllib.error.HTTPError as err:
                    pytest.fail(f"nginx answered {err.code}; the decision service allowed the request")
                except OSError:
                    assert process.poll() is None and time.monotonic() < deadline, "nginx did not start"
                    time.sleep(0.05)
            assert status == 200 and headers["DPoP-Nonce"] == NONCE
    finally:
        peers.shutdown()
        peers.server_close()


def test_envoy_gateway_sends_the_proof_and_filters_no_denial_header(tmp_path):
    manifests = render_gateway_api(load_text(tmp_path, POLICY), "shop", backend="shop:8080")
    ext_auth = {doc["metadata"]["annotations"]["authgate.dev/route"]: doc["spec"]["extAuth"] for doc in manifests
                if doc["kind"] == "SecurityPolicy"}
    assert "dpop" in ext_auth["POST /orders"]["headersToExtAuth"]
    assert set(ext_auth["POST /orders"]["http"]) == {"backendRefs", "path", "headersToBackend"}  # no client filter


def test_istio_sends_the_proof_and_passes_every_denial_header(tmp_path):
    _, mesh = render_istio(load_text(tmp_path, POLICY), "shop", selector={"app": "shop"})
    provider = mesh["extensionProviders"][0]["envoyExtAuthzHttp"]
    assert "dpop" in provider["includeRequestHeadersInCheck"]
    assert "headersToDownstreamOnDeny" not in provider
    assert provider["headersToDownstreamOnAllow"] == ["dpop-nonce"]   # RFC 9449 8.2: the fresh nonce of a 200


def test_the_forward_auth_deployment_reads_one_nonce_key_from_a_secret(tmp_path):
    image = "registry.example.com/authgate/forward-auth@sha256:" + "0" * 64
    # DPoP routes need the replicas' shared table (replay records), which the pods reach with their IRSA role.
    store = {"denylist_table": "authgate-prod-shop-revocation", "aws_region": "eu-west-1",
             "eks_role_arn": "arn:aws:iam::111122223333:role/authgate-prod-shop-forward-auth"}
    manifests = render_k8s(load_text(tmp_path, POLICY), "shop", image=image, **store)
    deployment = next(doc for doc in manifests if doc["kind"] == "Deployment")
    env = {item["name"]: item for item in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["AUTHGATE_DPOP_NONCE_KEY"] == {"name": "AUTHGATE_DPOP_NONCE_KEY", "valueFrom": {"secretKeyRef": {
        "name": "authgate-forward-auth-dpop-nonce", "key": "key"}}}
    assert not any(doc["kind"] == "Secret" for doc in manifests)   # the operator creates it; no key in manifests
    without = POLICY.replace(", dpop_nonce: required", "")
    deployment = next(doc for doc in render_k8s(load_text(tmp_path, without), "shop", image=image, **store)
                      if doc["kind"] == "Deployment")
    assert "AUTHGATE_DPOP_NONCE_KEY" not in {item["name"] for item in
                                             deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
