"""Envoy Gateway for an API that receives certificate-bound tokens: the ClientTrafficPolicy asks for client
certificates against the given CA (optional, so unbound routes stay reachable) and sets XFCC itself; without a CA the
renderer refuses (Envoy would pass no certificate and every bound token would be refused), and a CA for an API that
binds nothing is refused too."""
from __future__ import annotations

import pytest

from stacks.policy.render.gateway_api import render_gateway_api
from tests.unit.policy.policy_testing import load_text

POLICY = """
issuers:
  corp:
    issuer: https://idp.example.com
    audiences: [orders-api]
    %s
apis:
  shop:
    routes:
      "GET /orders": {issuers: [corp], scopes: [orders:read]}
      "PUT /orders": {issuers: [corp], scopes: [orders:write]%s}
"""
ROUTE_BINDS = POLICY % ("binding: {mtls: true}", ", proof: mtls")
ISSUER_BINDS = POLICY % ("binding: {mtls: true}", "")
NOTHING_BINDS = POLICY % ("", "")


def client_traffic(manifests) -> dict:
    [policy] = [m for m in manifests if m["kind"] == "ClientTrafficPolicy"]
    return policy["spec"]


@pytest.mark.parametrize("policy, kind", [(ROUTE_BINDS, "ConfigMap"), (ISSUER_BINDS, "Secret")])
def test_the_gateway_asks_for_client_certificates_against_the_ca(tmp_path, policy, kind):
    reference = f"{kind.lower()}/orders-client-ca"
    spec = client_traffic(render_gateway_api(load_text(tmp_path, policy), "shop", backend="orders:8080",
                                             client_ca=reference))
    assert spec["tls"] == {"clientValidation": {"optional": True, "caCertificateRefs": [
        {"group": "", "kind": kind, "name": "orders-client-ca"}]}}
    assert spec["headers"]["xForwardedClientCert"] == {"mode": "SanitizeSet", "certDetailsToAdd": ["Cert"]}


@pytest.mark.parametrize("policy, needs", [(ROUTE_BINDS, "route PUT /orders has proof: mtls; issuer corp"),
                                           (ISSUER_BINDS, "issuer corp binds tokens to certificates")])
def test_without_a_ca_an_api_that_receives_bound_tokens_is_refused(tmp_path, policy, needs):
    with pytest.raises(ValueError, match="--client-ca") as refused:
        render_gateway_api(load_text(tmp_path, policy), "shop", backend="orders:8080")
    assert needs in str(refused.value)


def test_an_api_that_binds_nothing_asks_for_no_certificate(tmp_path):
    spec = client_traffic(render_gateway_api(load_text(tmp_path, NOTHING_BINDS), "shop", backend="orders:8080"))
    assert "tls" not in spec
    with pytest.raises(ValueError, match="no route or issuer that binds tokens to certificates"):
        render_gateway_api(load_text(tmp_path, NOTHING_BINDS), "shop", backend="orders:8080",
                           client_ca="configmap/orders-client-ca")


@pytest.mark.parametrize("reference", ["orders-client-ca", "configmap/Orders", "pod/x", "secret/"])
def test_a_reference_that_is_not_a_configmap_or_secret_name_is_refused(tmp_path, reference):
    with pytest.raises(ValueError, match="configmap/NAME or secret/NAME"):
        render_gateway_api(load_text(tmp_path, ROUTE_BINDS), "shop", backend="orders:8080", client_ca=reference)


def test_cli_takes_the_ca(tmp_path):
    from stacks.cli import main
    policy = tmp_path / "p.yaml"
    policy.write_text(ROUTE_BINDS)
    argv = ["render", "gateway-api", "--api", "shop", "--backend", "orders:8080", "--policy", str(policy),
            "-o", str(tmp_path / "out.yaml")]
    assert main(argv) != 0
    assert main([*argv, "--client-ca", "configmap/orders-client-ca"]) == 0
    assert "caCertificateRefs" in (tmp_path / "out.yaml").read_text()


@pytest.mark.parametrize("cluster, where", [("eks", "ALB in front of the cluster terminates TLS"),
                                            ("aks", "does not set up the gateway's client-certificate TLS")])
def test_the_cloud_front_doors_say_why_they_cannot_serve_certificate_bound_tokens(tmp_path, cluster, where):
    from stacks.policy.render.in_cluster import render_front_door

    for gateway in ("nginx", "gateway-api"):
        with pytest.raises(ValueError, match=where):
            render_front_door(load_text(tmp_path, ROUTE_BINDS), "shop", gateway=gateway, cluster=cluster,
                              image="r.example.com/f@sha256:" + "0" * 64, backend="orders.shop:8080")
