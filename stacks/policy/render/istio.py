"""The Istio renderer: one API of the policy -> RequestAuthentication, AuthorizationPolicies and the mesh's
extensionProviders entry for the forward-auth service.

A RequestAuthentication alone lets a request without a token through (it only rejects bad tokens), so this renderer
never writes one without the ALLOW AuthorizationPolicy over the same workloads; `pairing_problems` is the check
(tests, the policy pack and the CDK refusals use it).
- RequestAuthentication: one jwtRule per issuer the API's routes accept (issuer, jwksUri, audiences,
  forwardOriginalToken so the backend can check again, outputClaimToHeaders for sub, azp, scope, iss).
- AuthorizationPolicy ALLOW: public routes for anyone; natively enforced routes for a principal of an accepted
  issuer (`requestPrincipals: ["<iss>/*"]`) whose `request.auth.claims[scope]` holds an any-of scope and each all-of
  scope; routes decided by the forward-auth service for anyone (the CUSTOM policy has decided by then). Requests no
  rule allows are denied: unknown routes are refused.
- AuthorizationPolicy CUSTOM with the forward-auth provider on the routes Istio cannot express (in_cluster.
  native_blockers, plus greedy paths: Istio's `{**}` also matches zero segments).
- The `extensionProviders` entry (envoyExtAuthzHttp: service, port, pathPrefix, the headers the check needs:
  the token, the DPoP proof, X-Forwarded-Proto and X-Forwarded-Client-Cert; identity headers to the upstream,
  failOpen false) for istiod's mesh config: returned separately.
Certificate-bound tokens need the client's certificate in XFCC's first element, which only an ingress gateway that
terminates the client's TLS can write (gateway topology forwardClientCertDetails SANITIZE_SET, with the certificate
in the details); this renderer does not configure the ingress gateway. Without it they are refused.
headersToDownstreamOnDeny stays unset, so a refusal's headers (the DPoP challenge, a dpop_nonce route's DPoP-Nonce)
all reach the client; headersToDownstreamOnAllow passes the fresh DPoP-Nonce of an allowed dpop_nonce route.
Not covered: removing client-sent identity headers on public and native routes needs an EnvoyFilter; on those
routes only the outputClaimToHeaders headers (subject, client id, scopes, issuer) are set by Istio.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from lambdas.forward_auth.conventions import DEFAULT_ENVOY_PATH_PREFIX
from lambdas.forward_auth.identity_headers import DEFAULT_NAMES
from lambdas.forward_auth.proxy_facts import ENVOY_CHECK_HEADERS
from lambdas.validation.route_table import GREEDY, LITERAL, PathTemplate
from stacks.policy.model import AuthPolicy
from stacks.policy.render.gateway_api import NATIVE_CLAIM_HEADERS
from stacks.policy.render.in_cluster import FORWARD_AUTH, NATIVE, RoutePlan, ServiceRef, check_dns_label, plan_routes

SECURITY = "security.istio.io/v1"
GATEWAY = "Istio"
PROVIDER = "authgate-forward-auth"


def istio_paths(template: PathTemplate) -> list[str]:
    """Istio operation paths: the path and its trailing-slash form; `{*}` for one segment (greedy paths are never
    native, see plan_routes)."""
    path = "/" + "/".join(_literal(literal, template) if kind == LITERAL else "{*}"
                          for kind, literal in template.segments)
    return [path] if path == "/" else [path, path + "/"]


def _literal(segment: str, template: PathTemplate) -> str:
    """A literal path segment for an Istio path, where '*' is a wildcard: an ALLOW rule for a path holding one would
    allow other paths as well, so such a segment is refused."""
    if "*" in segment:
        raise ValueError(f"path {template.path!r}: segment {segment!r} contains '*', which Istio reads as a wildcard "
                         f"in AuthorizationPolicy paths, so the rule would match other paths too; rename the segment")
    return segment


def _operation(plan: RoutePlan) -> dict[str, Any]:
    operation: dict[str, Any] = {"paths": istio_paths(plan.template)}
    if plan.method != "ANY":
        operation["methods"] = [plan.method]
    return operation


def _operation_any_path(plan: RoutePlan) -> dict[str, Any]:
    """For routes the forward-auth service decides: a greedy tail becomes `{**}` (the service routes exactly)."""
    segments = plan.template.segments
    if segments and segments[-1][0] == GREEDY:
        head = "".join("/" + (_literal(literal, plan.template) if kind == LITERAL else "{*}")
                       for kind, literal in segments[:-1])
        operation: dict[str, Any] = {"paths": [head + "/{**}"]}
    else:
        operation = {"paths": istio_paths(plan.template)}
    if plan.method != "ANY":
        operation["methods"] = [plan.method]
    return operation


def _native_rules(policy: AuthPolicy, plan: RoutePlan) -> list[dict[str, Any]]:
    rules = []
    for name in plan.spec.issuers:
        conditions = []
        if plan.spec.scopes:
            conditions.append({"key": "request.auth.claims[scope]", "values": list(plan.spec.scopes)})
        conditions.extend({"key": "request.auth.claims[scope]", "values": [scope]} for scope in plan.spec.scopes_all)
        rule: dict[str, Any] = {"from": [{"source": {"requestPrincipals": [f"{policy.issuers[name].issuer}/*"]}}],
                                "to": [{"operation": _operation(plan)}]}
        if conditions:
            rule["when"] = conditions
        rules.append(rule)
    return rules


def render_istio(policy: AuthPolicy, api: str, *, selector: Mapping[str, str], namespace: str = "default",
                 forward_auth: str = "authgate-forward-auth.authgate:9100",
                 ext_authz_prefix: str = DEFAULT_ENVOY_PATH_PREFIX) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(manifests, mesh config snippet) for `api`'s workloads (`selector`: their pod labels) in `namespace`."""
    check_dns_label(namespace, "--namespace")
    if not selector or not all(isinstance(k, str) and k and isinstance(v, str) for k, v in selector.items()):
        raise ValueError("--selector: give the API's pod labels as KEY=VALUE, e.g. app=orders")
    auth_ref = ServiceRef.parse(forward_auth, option="--forward-auth", namespace=namespace)
    plans = plan_routes(policy, api, gateway=GATEWAY, greedy_native=False)
    issuer_names = list(dict.fromkeys(name for plan in plans for name in plan.spec.issuers))
    base = f"{api}-authgate".lower().replace("_", "-")
    jwt_rules = []
    for name in issuer_names:
        issuer = policy.issuers[name]
        rule: dict[str, Any] = {"issuer": issuer.issuer, "audiences": list(issuer.audiences),
                                "forwardOriginalToken": True,
                                "outputClaimToHeaders": [{"header": header, "claim": claim}
                                                         for claim, header in NATIVE_CLAIM_HEADERS]}
        if issuer.effective_jwks_uri:
            rule["jwksUri"] = issuer.effective_jwks_uri
        jwt_rules.append(rule)
    allow_rules: list[dict[str, Any]] = []
    custom_rules: list[dict[str, Any]] = []
    for plan in plans:
        if plan.enforcement == "public":
            allow_rules.append({"to": [{"operation": _operation(plan)}]})
        elif plan.enforcement == NATIVE:
            allow_rules.extend(_native_rules(policy, plan))
        else:
            allow_rules.append({"to": [{"operation": _operation_any_path(plan)}]})
            custom_rules.append({"to": [{"operation": _operation_any_path(plan)}]})
    decided = {plan.route_key: f"{plan.enforcement}: {plan.reason}" for plan in plans}
    annotations = {"authgate.dev/routes": "; ".join(f"{key} -> {why}" for key, why in decided.items())}
    manifests: list[dict[str, Any]] = []
    if jwt_rules:
        manifests.append({"apiVersion": SECURITY, "kind": "RequestAuthentication",
                          "metadata": {"name": base, "namespace": namespace},
                          "spec": {"selector": {"matchLabels": dict(selector)}, "jwtRules": jwt_rules}})
    if custom_rules:
        manifests.append({"apiVersion": SECURITY, "kind": "AuthorizationPolicy",
                          "metadata": {"name": f"{base}-forward-auth", "namespace": namespace},
                          "spec": {"selector": {"matchLabels": dict(selector)}, "action": "CUSTOM", "provider": {"name": PROVIDER},
                                   "rules": custom_rules}})
    manifests.append({"apiVersion": SECURITY, "kind": "AuthorizationPolicy",
                      "metadata": {"name": f"{base}-allow", "namespace": namespace, "annotations": annotations},
                      "spec": {"selector": {"matchLabels": dict(selector)}, "action": "ALLOW", "rules": allow_rules}})
    mesh = {"extensionProviders": [{"name": PROVIDER, "envoyExtAuthzHttp": {
        "service": auth_ref.host, "port": auth_ref.port, "pathPrefix": ext_authz_prefix,
        "includeRequestHeadersInCheck": list(ENVOY_CHECK_HEADERS),
        "headersToUpstreamOnAllow": list(DEFAULT_NAMES.values()),
        # RFC 9449 8.2: the service's fresh DPoP-Nonce on an allowed dpop_nonce route goes to the client (the
        # provider is shared by the mesh's APIs; the header is only there when the service sent one).
        "headersToDownstreamOnAllow": ["dpop-nonce"], "failOpen": False}}]}
    problems = pairing_problems(manifests)
    if problems:
        raise ValueError("; ".join(problems))
    return manifests, mesh


def _selector(doc: Mapping[str, Any]) -> tuple:
    labels = ((doc.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return (doc.get("metadata", {}).get("namespace"), tuple(sorted(labels.items())))


def pairing_problems(manifests: Iterable[Mapping[str, Any]]) -> list[str]:
    """What lets tokenless requests through a set of Istio manifests: a RequestAuthentication with no ALLOW
    AuthorizationPolicy over the same workloads (namespace and selector). Empty when sound."""
    docs = [d for d in manifests if isinstance(d, Mapping)]
    allows = {_selector(d) for d in docs if d.get("kind") == "AuthorizationPolicy"
              and (d.get("spec") or {}).get("action", "ALLOW") == "ALLOW"}
    return [f"RequestAuthentication {(d.get('metadata') or {}).get('name')} has no ALLOW AuthorizationPolicy over "
            f"the same workloads: requests without a token would pass"
            for d in docs if d.get("kind") == "RequestAuthentication" and _selector(d) not in allows]


__all__ = ["render_istio", "pairing_problems", "istio_paths", "PROVIDER", "FORWARD_AUTH"]
