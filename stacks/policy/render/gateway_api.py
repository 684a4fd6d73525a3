"""The Gateway API renderer for Envoy Gateway: one API of the policy -> HTTPRoutes and SecurityPolicies.

- One HTTPRoute per route (path and method match, the backend as backendRef), so each route gets its own
  SecurityPolicy. A request no HTTPRoute matches gets the gateway's 404: unknown routes are refused.
- Routes Envoy Gateway can enforce itself (see in_cluster.native_blockers) get a SecurityPolicy with `jwt` (one
  provider per issuer: issuer, remoteJWKS, audiences, claimToHeaders) and `authorization` (default Deny; one Allow
  rule per accepted issuer and any-of scope, each rule's `scopes` all required). Every other protected route gets
  `extAuth` to the forward-auth service (HTTP, path prefix /ext-authz, failOpen false, identity headers back to the
  backend), which decides with the route table. On a refusal Envoy hands every header of the service's answer to
  the client (ext_authz's default when no allowed_client_headers are set, which Envoy Gateway leaves unset), so the
  DPoP challenge and a `dpop_nonce` route's DPoP-Nonce reach it. Public routes get no SecurityPolicy.
- A ClientTrafficPolicy on the Gateway removes client-sent identity headers before routing, so only the gateway's
  JWT filter or the forward-auth answer can set them, and sets X-Forwarded-Client-Cert itself (SanitizeSet, the
  client certificate as `Cert`), so a client's own never reaches the service; a ReferenceGrant lets the
  SecurityPolicies reach the forward-auth Service when it lives in another namespace.
- extAuth sends the service the token, the DPoP proof, X-Forwarded-Proto and X-Forwarded-Client-Cert (Host is
  always sent): the URL and certificate DPoP-bound and certificate-bound tokens are checked against. An API that
  receives certificate-bound tokens (a `proof: mtls` route, an issuer with `binding.mtls`) needs the client CA
  (`client_ca`: a ConfigMap or Secret with `ca.crt` in the Gateway's namespace): the ClientTrafficPolicy then asks
  for client certificates on the Gateway's HTTPS listeners (`tls.clientValidation`, optional, so routes that take
  unbound tokens stay reachable without one), and the renderer refuses such an API without it, since Envoy would
  otherwise pass no certificate and every such token would be refused.
Each resource is annotated with the route it serves, its enforcement and why (`authgate.dev/enforcement`,
`authgate.dev/reason`). The forward-auth service must read the `envoy` convention with this prefix.
"""
from __future__ import annotations

import re
from typing import Any

from lambdas.forward_auth.conventions import DEFAULT_ENVOY_PATH_PREFIX
from lambdas.forward_auth.identity_headers import DEFAULT_NAMES
from lambdas.forward_auth.proxy_facts import ENVOY_CHECK_HEADERS
from lambdas.validation.route_table import GREEDY, LITERAL, PathTemplate
from stacks.policy.model import AuthPolicy
from stacks.policy.render.in_cluster import (FORWARD_AUTH, NATIVE, RoutePlan, ServiceRef, certificate_binding_needs,
                                             check_dns_label, plan_routes, resource_name)

GATEWAY_API = "gateway.networking.k8s.io"
ENVOY_GATEWAY = "gateway.envoyproxy.io"
GATEWAY = "Envoy Gateway"
# Claims the JWT filter copies to identity headers on native routes (google and keycloak name the client in azp).
NATIVE_CLAIM_HEADERS = (("sub", DEFAULT_NAMES["subject"]), ("azp", DEFAULT_NAMES["client_id"]),
                        ("scope", DEFAULT_NAMES["scopes"]), ("iss", DEFAULT_NAMES["issuer"]))


_CA_REFERENCE = re.compile(r"(configmap|secret)/([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?)")


def _client_validation(policy: AuthPolicy, api: str, client_ca: str | None) -> dict[str, Any]:
    """The ClientTrafficPolicy's `tls` member asking for client certificates, when the API receives certificate-bound
    tokens; ValueError when it does and no CA is given, or a CA is given that no decision would read."""
    needs = certificate_binding_needs(policy, api)
    if client_ca is None:
        if needs:
            raise ValueError(f"API {api!r} receives certificate-bound tokens ({'; '.join(needs)}), and Envoy Gateway "
                             f"passes a client certificate only when its listener asks for one: give --client-ca "
                             f"configmap/NAME or secret/NAME (the CA bundle, key ca.crt, in the Gateway's namespace)")
        return {}
    found = _CA_REFERENCE.fullmatch(client_ca)
    if not found:
        raise ValueError(f"--client-ca {client_ca!r}: write configmap/NAME or secret/NAME (a lower-case Kubernetes "
                         f"name holding ca.crt in the Gateway's namespace)")
    if not needs:
        raise ValueError(f"--client-ca: API {api!r} has no route or issuer that binds tokens to certificates, so the "
                         f"Gateway would ask for client certificates no decision reads")
    kind = "ConfigMap" if found.group(1) == "configmap" else "Secret"
    # optional: routes that take unbound tokens stay reachable without a certificate; a bound token without the
    # certificate it names is refused by the forward-auth service.
    return {"tls": {"clientValidation": {"optional": True, "caCertificateRefs": [
        {"group": "", "kind": kind, "name": found.group(2)}]}}}


def path_match(template: PathTemplate) -> dict[str, str]:
    """An HTTPRoute path match: Exact for a literal path, else a regular expression (one trailing '/' allowed)."""
    if all(kind == LITERAL for kind, _ in template.segments):
        return {"type": "Exact", "value": template.path}
    parts = ["/" + (re.escape(literal) if kind == LITERAL else ".+" if kind == GREEDY else "[^/]+")
             for kind, literal in template.segments]
    return {"type": "RegularExpression", "value": "^" + "".join(parts) + "/?$"}


def _annotations(plan: RoutePlan) -> dict[str, str]:
    return {"authgate.dev/route": plan.route_key, "authgate.dev/enforcement": plan.enforcement,
            "authgate.dev/reason": plan.reason}


def _jwt_providers(policy: AuthPolicy, plan: RoutePlan) -> list[dict[str, Any]]:
    providers = []
    for name in plan.spec.issuers:
        issuer = policy.issuers[name]
        providers.append({"name": name, "issuer": issuer.issuer, "audiences": list(issuer.audiences),
                          "remoteJWKS": {"uri": issuer.effective_jwks_uri},
                          "claimToHeaders": [{"claim": claim, "header": header}
                                             for claim, header in NATIVE_CLAIM_HEADERS]})
    return providers


def _authorization(plan: RoutePlan) -> dict[str, Any]:
    route = plan.spec
    rules = []
    for provider in route.issuers:
        for scope in (route.scopes or [None]):
            scopes = sorted(set(route.scopes_all) | ({scope} if scope else set()))
            principal: dict[str, Any] = {"jwt": {"provider": provider}}
            if scopes:
                principal["jwt"]["scopes"] = scopes
            rules.append({"name": resource_name(provider, scope or "all"), "action": "Allow",
                          "principal": principal})
    return {"defaultAction": "Deny", "rules": rules}


def render_gateway_api(policy: AuthPolicy, api: str, *, backend: str, namespace: str = "default",
                       gateway: str = "authgate", forward_auth: str = "authgate-forward-auth.authgate:9100",
                       ext_authz_prefix: str = DEFAULT_ENVOY_PATH_PREFIX,
                       client_ca: str | None = None) -> list[dict[str, Any]]:
    """The manifests for `api` behind Envoy Gateway.

    backend       SERVICE:PORT of the API's Service (in `namespace`, where the HTTPRoutes go)
    gateway       the Gateway the HTTPRoutes attach to: NAME (in `namespace`) or NAMESPACE/NAME
    forward_auth  SERVICE.NAMESPACE:PORT of the forward-auth Service (`authgate render k8s`)
    client_ca     configmap/NAME or secret/NAME (key ca.crt, in the Gateway's namespace): the CA client certificates
                  chain to, for APIs that receive certificate-bound tokens
    """
    check_dns_label(namespace, "--namespace")
    backend_ref = ServiceRef.parse(backend, option="--backend", namespace=namespace)
    if backend_ref.namespace != namespace:
        raise ValueError(f"--backend {backend!r}: the backend must be in --namespace {namespace!r}, where the "
                         f"HTTPRoutes are (cross-namespace backends need a ReferenceGrant this renderer does not write)")
    auth_ref = ServiceRef.parse(forward_auth, option="--forward-auth", namespace=namespace)
    gateway_namespace, _, gateway_name = gateway.rpartition("/")
    gateway_namespace = check_dns_label(gateway_namespace or namespace, "--gateway namespace")
    check_dns_label(gateway_name, "--gateway")
    plans = plan_routes(policy, api, gateway=GATEWAY)
    client_tls = _client_validation(policy, api, client_ca)
    out: list[dict[str, Any]] = [{
        "apiVersion": f"{ENVOY_GATEWAY}/v1alpha1", "kind": "ClientTrafficPolicy",
        # Named after the Gateway, not the API: every API on one Gateway writes this same object.
        "metadata": {"name": resource_name(gateway_name, "authgate-identity-headers"), "namespace": gateway_namespace,
                     "annotations": {"authgate.dev/reason": "identity headers are set only by the gateway's JWT "
                                                            "filter or the forward-auth answer; client copies go"}},
        "spec": {"targetRefs": [{"group": GATEWAY_API, "kind": "Gateway", "name": gateway_name}],
                 "headers": {"earlyRequestHeaders": {"remove": list(DEFAULT_NAMES.values())},
                             # The gateway writes XFCC itself (a client's own is dropped), with the client's
                             # certificate when its listener asked for one: what certificate binding reads.
                             "xForwardedClientCert": {"mode": "SanitizeSet", "certDetailsToAdd": ["Cert"]}},
                 **client_tls},
    }]
    uses_forward_auth = False
    for plan in plans:
        name = resource_name(api, plan.method, plan.template.path)
        match: dict[str, Any] = {"path": path_match(plan.template)}
        if plan.method != "ANY":
            match["method"] = plan.method
        parent: dict[str, Any] = {"group": GATEWAY_API, "kind": "Gateway", "name": gateway_name}
        if gateway_namespace != namespace:
            parent["namespace"] = gateway_namespace
        out.append({"apiVersion": f"{GATEWAY_API}/v1", "kind": "HTTPRoute",
                    "metadata": {"name": name, "namespace": namespace, "annotations": _annotations(plan)},
                    "spec": {"parentRefs": [parent],
                             "rules": [{"matches": [match],
                                        "backendRefs": [{"name": backend_ref.name, "port": backend_ref.port}]}]}})
        if plan.enforcement not in (NATIVE, FORWARD_AUTH):
            continue
        spec: dict[str, Any] = {"targetRefs": [{"group": GATEWAY_API, "kind": "HTTPRoute", "name": name}]}
        if plan.enforcement == NATIVE:
            spec["jwt"] = {"providers": _jwt_providers(policy, plan)}
            spec["authorization"] = _authorization(plan)
        else:
            uses_forward_auth = True
            ref: dict[str, Any] = {"name": auth_ref.name, "port": auth_ref.port}
            if auth_ref.namespace != namespace:
                ref["namespace"] = auth_ref.namespace
            spec["extAuth"] = {"http": {"backendRefs": [ref], "path": ext_authz_prefix,
                                        "headersToBackend": list(DEFAULT_NAMES.values())},
                               "headersToExtAuth": list(ENVOY_CHECK_HEADERS), "failOpen": False}
        out.append({"apiVersion": f"{ENVOY_GATEWAY}/v1alpha1", "kind": "SecurityPolicy",
                    "metadata": {"name": name, "namespace": namespace, "annotations": _annotations(plan)},
                    "spec": spec})
    if uses_forward_auth and auth_ref.namespace != namespace:
        out.append({"apiVersion": f"{GATEWAY_API}/v1beta1", "kind": "ReferenceGrant",
                    "metadata": {"name": resource_name(namespace, api, "to-forward-auth"),
                                 "namespace": auth_ref.namespace},
                    "spec": {"from": [{"group": ENVOY_GATEWAY, "kind": "SecurityPolicy", "namespace": namespace}],
                             "to": [{"group": "", "kind": "Service", "name": auth_ref.name}]}})
    return out


def coverage_problems(manifests: list[dict[str, Any]]) -> list[str]:
    """What leaves a route open in a set of Gateway API manifests: a SecurityPolicy with neither jwt nor extAuth,
    or an HTTPRoute not annotated public that no such SecurityPolicy targets (directly or through its Gateway)."""
    problems, covered = [], set()
    for doc in manifests:
        if doc.get("kind") != "SecurityPolicy":
            continue
        spec, name = doc.get("spec") or {}, (doc.get("metadata") or {}).get("name")
        if "jwt" not in spec and "extAuth" not in spec:
            problems.append(f"SecurityPolicy {name} has neither jwt nor extAuth: its routes check no token")
            continue
        namespace = (doc.get("metadata") or {}).get("namespace", "default")
        covered.update((namespace, t.get("kind"), t.get("name")) for t in spec.get("targetRefs") or [])
    for doc in manifests:
        if doc.get("kind") != "HTTPRoute":
            continue
        meta = doc.get("metadata") or {}
        if (meta.get("annotations") or {}).get("authgate.dev/enforcement") == "public":
            continue
        namespace = meta.get("namespace", "default")
        parents = {(p.get("namespace", namespace), "Gateway", p.get("name"))
                   for p in (doc.get("spec") or {}).get("parentRefs") or []}
        if (namespace, "HTTPRoute", meta.get("name")) not in covered and not parents & covered:
            problems.append(f"HTTPRoute {meta.get('name')} is not public and no SecurityPolicy with jwt or extAuth "
                            f"covers it: any request reaches the backend")
    return problems
