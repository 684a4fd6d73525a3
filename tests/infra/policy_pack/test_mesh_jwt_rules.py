"""The policy pack's in-cluster rules on what `authgate render istio` / `gateway-api` write, and on broken variants."""
from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest
from pulumi_policy import PolicyResource, ResourceValidationArgs, StackValidationArgs
from pulumi_policy.proxy import unknown_checking_proxy

PACK_DIR = Path(__file__).resolve().parents[3] / "policies" / "pulumi-pack"
sys.path.insert(0, str(PACK_DIR))

from authgate_guard.mesh_jwt import (validate_protected_routes_covered,  # noqa: E402
                                     validate_request_authentication_paired, validate_security_policy_enforces)
from authgate_guard.pack import POLICIES  # noqa: E402

from stacks.policy import load_policy  # noqa: E402
from stacks.policy.render.gateway_api import render_gateway_api  # noqa: E402
from stacks.policy.render.istio import render_istio  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[3] / "policies" / "example.yaml"


def resource(manifest: dict) -> PolicyResource:
    group_version, kind = manifest["apiVersion"], manifest["kind"]
    typ = f"kubernetes:{group_version}:{kind}"
    name = manifest["metadata"]["name"]
    return PolicyResource(typ, unknown_checking_proxy(manifest), f"urn:pulumi:dev::authgate::{typ}::{name}", name,
                          None, None, None, [], {})


def stack_violations(rule, manifests) -> list[str]:
    found: list[str] = []
    rule(StackValidationArgs([resource(m) for m in manifests]), lambda message, urn=None: found.append(message))
    return found


def resource_violations(rule, manifest) -> list[str]:
    found: list[str] = []
    typ = f"kubernetes:{manifest['apiVersion']}:{manifest['kind']}"
    args = ResourceValidationArgs(typ, unknown_checking_proxy(manifest), "urn", manifest["metadata"]["name"], None,
                                  None, {})
    rule(args, lambda message, urn=None: found.append(message))
    return found


@pytest.fixture(scope="module")
def istio():
    return render_istio(load_policy(EXAMPLE), "billing", selector={"app": "billing"}, namespace="shop")[0]


@pytest.fixture(scope="module")
def gateway_api():
    return render_gateway_api(load_policy(EXAMPLE), "billing", backend="billing:8080", namespace="shop")


def test_the_rules_are_in_the_pack():
    names = {p.name for p in POLICIES}
    assert {"istio-request-authentication-has-allow-policy", "envoy-gateway-security-policy-checks-tokens",
            "envoy-gateway-protected-routes-covered"} <= names


def test_rendered_istio_passes_and_a_lone_request_authentication_fails(istio):
    assert stack_violations(validate_request_authentication_paired, istio) == []
    lone = [m for m in istio if m["kind"] == "RequestAuthentication"]
    assert "lets requests without a token through" in stack_violations(validate_request_authentication_paired,
                                                                      lone)[0]
    other_selector = copy.deepcopy(istio)
    for m in other_selector:
        if m["kind"] == "AuthorizationPolicy":
            m["spec"]["selector"]["matchLabels"] = {"app": "other"}
    assert stack_violations(validate_request_authentication_paired, other_selector)
    custom_only = [m for m in istio if m["kind"] == "RequestAuthentication" or m["spec"].get("action") == "CUSTOM"]
    assert stack_violations(validate_request_authentication_paired, custom_only)


def test_rendered_gateway_api_passes(gateway_api):
    assert stack_violations(validate_protected_routes_covered, gateway_api) == []
    for manifest in gateway_api:
        if manifest["kind"] == "SecurityPolicy":
            assert resource_violations(validate_security_policy_enforces, manifest) == []


def test_a_security_policy_without_jwt_or_ext_auth_fails(gateway_api):
    policy = copy.deepcopy(next(m for m in gateway_api if m["kind"] == "SecurityPolicy"))
    policy["spec"].pop("extAuth", None)
    policy["spec"].pop("jwt", None)
    assert "neither jwt nor extAuth" in resource_violations(validate_security_policy_enforces, policy)[0]
    rest = [m for m in gateway_api if m["metadata"]["name"] != policy["metadata"]["name"] or m["kind"] != "SecurityPolicy"]
    assert any(policy["metadata"]["name"] in v for v in stack_violations(validate_protected_routes_covered,
                                                                         [*rest, policy]))


def test_a_protected_route_without_a_security_policy_fails_and_public_ones_pass(gateway_api):
    routes_only = [m for m in gateway_api if m["kind"] == "HTTPRoute"]
    violations = stack_violations(validate_protected_routes_covered, routes_only)
    protected = [m for m in routes_only if m["metadata"]["annotations"]["authgate.dev/enforcement"] != "public"]
    assert len(violations) == len(protected) and protected
    gateway_wide = {"apiVersion": "gateway.envoyproxy.io/v1alpha1", "kind": "SecurityPolicy",
                    "metadata": {"name": "all", "namespace": "shop"},
                    "spec": {"targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                             "name": "authgate"}], "extAuth": {"http": {}}}}
    assert stack_violations(validate_protected_routes_covered, [*routes_only, gateway_wide]) == []
