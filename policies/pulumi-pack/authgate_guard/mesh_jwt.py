"""In-cluster gateways (Pulumi Kubernetes resources): no route left open by a half-configured JWT setup.

- Istio: a RequestAuthentication only rejects bad tokens; a request with no token passes unless an ALLOW
  AuthorizationPolicy over the same workloads requires a principal. Every RequestAuthentication needs one.
- Envoy Gateway: an HTTPRoute that is not declared public (`authgate.dev/enforcement: public`, as `authgate render
  gateway-api` writes) must be covered by a SecurityPolicy with `jwt` or `extAuth` (on the route or its Gateway);
  a SecurityPolicy with neither enforces no token at all.
Custom resources arrive as `kubernetes:<group>/<version>:<Kind>` with their fields (apiVersion, kind, metadata, spec).
"""
from __future__ import annotations

from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs, StackValidationArgs

from authgate_guard.props import as_list, get_path

ISTIO = "security.istio.io"
GATEWAY_API = "gateway.networking.k8s.io"
ENVOY_GATEWAY = "gateway.envoyproxy.io"
PUBLIC_ANNOTATION = "authgate.dev/enforcement"


def _kind(resource_type: str, group: str, kind: str) -> bool:
    module, _, name = resource_type.rpartition(":")
    return name == kind and module.startswith(f"kubernetes:{group}/")


def _namespace(props: Any) -> str:
    return get_path(props, "metadata", "namespace") or "default"


def _workloads(props: Any) -> tuple:
    """What an Istio policy applies to: its namespace and selector labels, or its targetRefs."""
    labels = get_path(props, "spec", "selector", "matchLabels") or {}
    targets = [(get_path(t, "kind"), get_path(t, "name")) for t in as_list(get_path(props, "spec", "targetRefs"))]
    return _namespace(props), tuple(sorted(dict(labels).items())), tuple(sorted(targets))


def validate_request_authentication_paired(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    resources = list(args.resources)
    allows = {_workloads(r.props) for r in resources if _kind(r.resource_type, ISTIO, "AuthorizationPolicy")
              and (get_path(r.props, "spec", "action") or "ALLOW") == "ALLOW"}
    for resource in resources:
        if _kind(resource.resource_type, ISTIO, "RequestAuthentication") and _workloads(resource.props) not in allows:
            report_violation(
                f"Istio RequestAuthentication {resource.name} has no ALLOW AuthorizationPolicy over the same "
                f"workloads: it rejects bad tokens but lets requests without a token through. Deploy it with the "
                f"AuthorizationPolicy `authgate render istio` writes beside it.", resource.urn)


def _enforces(props: Any) -> bool:
    return get_path(props, "spec", "jwt") is not None or get_path(props, "spec", "extAuth") is not None


def validate_security_policy_enforces(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if _kind(args.resource_type, ENVOY_GATEWAY, "SecurityPolicy") and not _enforces(args.props):
        report_violation(f"Envoy Gateway SecurityPolicy {args.name} has neither jwt nor extAuth: the routes it "
                         f"targets check no token. Use the SecurityPolicy `authgate render gateway-api` writes.", None)


def validate_protected_routes_covered(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    resources = list(args.resources)
    covered = set()
    for policy in resources:
        if _kind(policy.resource_type, ENVOY_GATEWAY, "SecurityPolicy") and _enforces(policy.props):
            for target in as_list(get_path(policy.props, "spec", "targetRefs")):
                covered.add((_namespace(policy.props), get_path(target, "kind"), get_path(target, "name")))
    for route in resources:
        if not _kind(route.resource_type, GATEWAY_API, "HTTPRoute"):
            continue
        if get_path(route.props, "metadata", "annotations", PUBLIC_ANNOTATION) == "public":
            continue
        namespace = _namespace(route.props)
        gateways = [(get_path(p, "namespace") or namespace, "Gateway", get_path(p, "name"))
                    for p in as_list(get_path(route.props, "spec", "parentRefs"))]
        name = get_path(route.props, "metadata", "name") or route.name
        if (namespace, "HTTPRoute", name) in covered or any(g in covered for g in gateways):
            continue
        report_violation(f"HTTPRoute {route.name} is not declared public ({PUBLIC_ANNOTATION}: public) and no "
                         f"SecurityPolicy with jwt or extAuth covers it or its Gateway: any request reaches the "
                         f"backend. Deploy the SecurityPolicies `authgate render gateway-api` writes.", route.urn)
