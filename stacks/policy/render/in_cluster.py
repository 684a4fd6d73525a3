"""What the in-cluster renderers share: which routes an Envoy-based gateway (Envoy Gateway, Istio) can enforce with
its own JWT filter, and why not the others; the forward-auth service's address; manifests as YAML.

Envoy Gateway's SecurityPolicy and Istio's RequestAuthentication + AuthorizationPolicy both run Envoy's jwt_authn:
signature from a key URL, iss, aud, exp/nbf, and rules over claims (the `scope` claim split on spaces). A route is
enforced natively only when that gives the same answer as the validation module; every other route goes to the
forward-auth service (Envoy Gateway `extAuth`, Istio `CUSTOM`), which decides with the route table itself. The
choice is made per route and each route carries its reasons, as `authgate synth` does for the HTTP API.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import yaml

from lambdas.validation.route_table import GREEDY, LITERAL, PathTemplate
from stacks.policy.model import ApiSpec, AuthPolicy, IssuerSpec, RouteSpec

FORWARD_AUTH = "forward-auth"
NATIVE = "native"
# Profiles whose scopes live in the `scope` claim alone (what Envoy Gateway's `scopes` and Istio's
# request.auth.claims[scope] read). generic also reads scp, auth0 adds permissions, entra/okta use scp, cognito
# matches client_id instead of aud: their scope rules would be decided differently by the gateway.
SCOPE_CLAIM_PROFILES = frozenset({"google", "keycloak"})
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


@dataclass(frozen=True)
class ServiceRef:
    """A Kubernetes Service by name, namespace and port (`NAME.NAMESPACE:PORT`, or `NAME:PORT` in `namespace`)."""

    name: str
    namespace: str
    port: int

    @classmethod
    def parse(cls, value: str, *, option: str, namespace: str) -> "ServiceRef":
        host, sep, port = value.rpartition(":")
        name, _, ns = host.partition(".")
        ns = ns.split(".", 1)[0] or namespace
        if not sep or not port.isdigit() or not 0 < int(port) < 65536 or not _DNS_LABEL.fullmatch(name) \
                or not _DNS_LABEL.fullmatch(ns):
            raise ValueError(f"{option} {value!r}: write it as SERVICE:PORT or SERVICE.NAMESPACE:PORT (lower-case "
                             f"DNS labels, port 1-65535), e.g. authgate-forward-auth.authgate:9100")
        return cls(name, ns, int(port))

    @property
    def host(self) -> str:
        return f"{self.name}.{self.namespace}.svc.cluster.local"


def certificate_binding_needs(policy: AuthPolicy, api: str) -> list[str]:
    """What makes `api` receive certificate-bound tokens: its proof: mtls routes and its issuers that bind to
    certificates (a bound token is checked against its certificate on every route). The gateway must then ask
    clients for certificates and pass them on (NGINX and Envoy Gateway renderers)."""
    from stacks.policy.render.route_table import render_route_table

    routes = render_route_table(policy, apis=[api])["apis"][api]["routes"]
    needs = [f"route {route['route_key']} has proof: mtls" for route in routes if route.get("proof") == "mtls"]
    issuers = dict.fromkeys(name for route in routes for name in route["issuers"])
    needs += [f"issuer {name} binds tokens to certificates (binding.mtls)" for name in issuers
              if policy.issuers[name].binding.mtls]
    return needs


def check_dns_label(value: str, option: str) -> str:
    if not isinstance(value, str) or not _DNS_LABEL.fullmatch(value):
        raise ValueError(f"{option} {value!r}: a Kubernetes name is lower-case letters, digits and '-', at most 63")
    return value


@dataclass(frozen=True)
class RoutePlan:
    """One route of the API and how the in-cluster gateway enforces it."""

    route_key: str
    method: str
    template: PathTemplate
    spec: RouteSpec
    enforcement: str            # native | forward-auth | public
    reasons: tuple[str, ...]

    @property
    def reason(self) -> str:
        if self.enforcement == "public":
            return "public route: no token needed"
        if self.enforcement == NATIVE:
            return "the gateway's JWT filter checks everything this route requires"
        return "; ".join(self.reasons)


def _kinds(template: PathTemplate) -> list[tuple[int, str]]:
    return list(template.segments)


def may_overlap(a: PathTemplate, b: PathTemplate) -> bool:
    """Whether some request path matches both templates (the route table then picks the more specific; a gateway
    whose rules have no such precedence may not)."""
    sa, sb = _kinds(a), _kinds(b)
    for index in range(max(len(sa), len(sb))):
        if index >= len(sa) or index >= len(sb):
            shorter = sa if len(sa) < len(sb) else sb
            return bool(shorter) and shorter[-1][0] == GREEDY
        (ka, la), (kb, lb) = sa[index], sb[index]
        if ka == GREEDY or kb == GREEDY:
            return True
        if ka == LITERAL and kb == LITERAL and la != lb:
            return False
    return True


# Gateways whose claim conditions read '*' in a value as a wildcard (Istio AuthorizationPolicy `when.values`).
WILDCARD_VALUE_GATEWAYS = frozenset({"Istio"})


def native_blockers(route: RouteSpec, issuers: Mapping[str, IssuerSpec], *, gateway: str) -> list[str]:
    """Why an Envoy-based gateway's JWT filter cannot decide `route` as the validation module does."""
    reasons: list[str] = []
    if route.freshness != "none" or route.proof != "none":
        reasons.append("freshness or proof-of-possession checks need the forward-auth service")
    if getattr(route, "token_source", "header") != "header":
        reasons.append(f"token_source: {route.token_source} needs the forward-auth service (the JWT filter reads the "
                       f"Authorization header)")
    if route.roles or route.roles_all or route.groups or route.groups_all:
        reasons.append("roles and groups are read from each IdP's own claims (realm_access, cognito:groups, ...); "
                       "the forward-auth service normalises them")
    if route.token_use not in (None, "any"):
        reasons.append(f"token_use: {route.token_use} needs the forward-auth service (the JWT filter cannot tell ID "
                       f"tokens from access tokens)")
    if route.claims:
        reasons.append(f"claim rules ({', '.join(route.claims)}) match a string or any element of an array; the JWT "
                       f"filter's rules are typed one way, so the forward-auth service decides")
    starred = [scope for scope in (*route.scopes, *route.scopes_all) if "*" in scope]
    if starred and gateway in WILDCARD_VALUE_GATEWAYS:
        reasons.append(f"scope(s) {', '.join(starred)} contain '*', which {gateway} reads as a wildcard in a claim "
                       f"condition (a prefix, suffix or presence match), not as part of the scope's name")
    for name in route.issuers:
        issuer = issuers[name]
        if issuer.profile == "cognito":
            reasons.append(f"issuer {name} is Cognito: access tokens carry client_id, not aud, and token_use must be "
                           f"checked")
            continue
        if (route.scopes or route.scopes_all) and issuer.profile not in SCOPE_CLAIM_PROFILES:
            reasons.append(f"issuer {name} ({issuer.profile}) spells scopes in claims other than `scope` "
                           f"(scp, permissions), which {gateway} does not read as scopes")
        if issuer.local_development:
            reasons.append(f"issuer {name} is a loopback development issuer")
        if issuer.jwks is not None or issuer.jwks_file is not None:
            reasons.append(f"issuer {name}'s keys are bundled (jwks/jwks_file); the renderer gives {gateway} key URLs")
        elif issuer.effective_jwks_uri is None:
            reasons.append(f"issuer {name} has no jwks_uri (keys by OIDC discovery only); set jwks_uri for {gateway}")
        if issuer.max_token_age_seconds is not None:
            reasons.append(f"issuer {name} limits token age (max_token_age_seconds)")
        if issuer.token_use in ("access", "id") and not (route.scopes or route.scopes_all):
            reasons.append(f"issuer {name} accepts only {issuer.token_use} tokens and the route requires no scope: "
                           f"the JWT filter would accept either kind")
    return reasons


def http_api(policy: AuthPolicy, api_name: str) -> ApiSpec:
    """The HTTP API named `api_name`: KeyError when the policy has none, ValueError for a WebSocket API (the
    forward-auth service and the in-cluster gateways decide HTTP requests)."""
    if api_name not in policy.apis:
        raise KeyError(f"the policy has no API named {api_name!r} (it has: {', '.join(policy.apis)})")
    api = policy.apis[api_name]
    if api.is_websocket:
        raise ValueError(f"API {api_name!r} is a WebSocket API; the in-cluster renderers write HTTP APIs")
    return api


def plan_routes(policy: AuthPolicy, api_name: str, *, gateway: str, greedy_native: bool = True) -> list[RoutePlan]:
    """Every route of an HTTP API with its enforcement, most specific path first."""
    api = http_api(policy, api_name)
    keys = api.route_keys()
    templates = {key: PathTemplate.parse(parsed.path, where=key) for key, parsed in keys.items()}
    plans = []
    for key, route in api.routes.items():
        template = templates[key]
        method = keys[key].method
        if route.public:
            plans.append(RoutePlan(key, method, template, route, "public", ()))
            continue
        reasons = native_blockers(route, policy.issuers, gateway=gateway)
        if not greedy_native and any(kind == GREEDY for kind, _ in template.segments):
            reasons.append(f"{gateway}'s path templates also match zero segments where {{name+}} needs one or more")
        overlapping = [other for other in keys if other != key and _methods_meet(keys[other].method, method)
                       and templates[other].path != template.path and may_overlap(templates[other], template)]
        if overlapping:
            reasons.append(f"its path overlaps {', '.join(overlapping)}; {gateway} has no route-table precedence "
                           f"between them, the forward-auth service routes by the table")
        plans.append(RoutePlan(key, method, template, route, FORWARD_AUTH if reasons else NATIVE, tuple(reasons)))
    return sorted(plans, key=lambda p: (p.template.specificity, p.method != "ANY", p.route_key), reverse=True)


def _methods_meet(a: str, b: str) -> bool:
    return a == b or "ANY" in (a, b)


def resource_name(*parts: str) -> str:
    """A DNS-1123 name from route parts: lower case, '-' for anything else, at most 63 characters."""
    raw = "-".join(p for p in parts if p)
    name = re.sub(r"[^a-z0-9]+", "-", raw.lower()).strip("-") or "root"
    if len(name) > 63:
        import hashlib
        name = name[:54].rstrip("-") + "-" + hashlib.sha256(raw.encode()).hexdigest()[:8]
    return name


def manifests_yaml(documents: Iterable[Mapping[str, Any]], *, header: str = "") -> str:
    """Multi-document YAML, keys in the order written, no aliases: what `kubectl apply -f` reads."""
    class NoAliases(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    body = "---\n".join(yaml.dump(dict(doc), Dumper=NoAliases, sort_keys=False, default_flow_style=False,
                                  allow_unicode=True, width=120) for doc in documents)
    return (header + body) if body else header


def open_route_problems(manifests: list[Mapping[str, Any]]) -> list[str]:
    """What in a set of in-cluster manifests would leave a route open: an Istio RequestAuthentication without its
    ALLOW AuthorizationPolicy, a SecurityPolicy without jwt or extAuth, a protected HTTPRoute no such policy covers."""
    from stacks.policy.render.gateway_api import coverage_problems
    from stacks.policy.render.istio import pairing_problems
    return pairing_problems(manifests) + coverage_problems(list(manifests))


@dataclass(frozen=True)
class FrontDoorManifests:
    """Everything a cluster applies for one API behind an in-cluster gateway."""

    forward_auth: list[dict[str, Any]]      # the decision service (render k8s)
    gateway: list[dict[str, Any]]           # the gateway's configuration (HTTPRoutes..., Istio policies, or NGINX's)
    mesh_config: dict[str, Any] | None      # Istio only: the extensionProviders entry for istiod's mesh config

    @property
    def all(self) -> list[dict[str, Any]]:
        return self.forward_auth + self.gateway


IN_CLUSTER_GATEWAYS = ("nginx", "gateway-api", "istio")


def render_front_door(policy: AuthPolicy, api: str, *, gateway: str, image: str, backend: str,
                      namespace: str = "authgate", gateway_namespace: str = "ingress", gateway_name: str = "authgate",
                      gateway_port: int = 8080, selector: Mapping[str, str] | None = None,
                      eks_role_arn: str | None = None, aks_client_id: str | None = None,
                      denylist_table: str | None = None, aws_region: str | None = None,
                      trusted_proxies: str | None = None, public_origin: str | None = None,
                      redis_url: str | None = None, cluster: str = "any") -> FrontDoorManifests:
    """The forward-auth service and the chosen gateway's configuration for `api`; ValueError (KeyError for an unknown
    API) when an input is refused or the result would leave a route open.

    backend  SERVICE.NAMESPACE:PORT of the API's Service; nginx gets its configuration as a ConfigMap in
             `gateway_namespace` (key authgate.conf, for the NGINX deployment to include)"""
    from stacks.policy.render.k8s import NAME, PORT, render_k8s

    if gateway not in IN_CLUSTER_GATEWAYS:
        raise ValueError(f"gateway {gateway!r}: one of {', '.join(IN_CLUSTER_GATEWAYS)}")
    needs = certificate_binding_needs(policy, api)
    if needs and cluster in ("eks", "aks"):
        # The client's certificate must reach the gateway: on EKS the ALB in front terminates TLS, and neither front
        # door sets up the gateway's own client-certificate listener.
        where = ("the ALB in front of the cluster terminates TLS, so no client certificate reaches its gateway; "
                 "serve this API through the AWS API stacks (authgate:mtls_domain)" if cluster == "eks" else
                 "this front door does not set up the gateway's client-certificate TLS; render the gateway with "
                 "`authgate render nginx --tls-certificate --tls-key --client-ca` or `render gateway-api --client-ca` "
                 "and apply it yourself")
        raise ValueError(f"API {api!r} receives certificate-bound tokens ({'; '.join(needs)}): {where}")
    check_dns_label(gateway_namespace, "gateway_namespace")
    service = render_k8s(policy, api, image=image, namespace=namespace, gateway_namespace=gateway_namespace,
                         convention="nginx" if gateway == "nginx" else "envoy", eks_role_arn=eks_role_arn,
                         aks_client_id=aks_client_id, denylist_table=denylist_table, aws_region=aws_region,
                         trusted_proxies=trusted_proxies, public_origin=public_origin, redis_url=redis_url,
                         cluster=cluster)
    forward_auth = f"{NAME}.{namespace}:{PORT}"
    target = ServiceRef.parse(backend, option="backend", namespace="default")
    mesh = None
    if gateway == "nginx":
        from stacks.policy.render.nginx import render_nginx
        auth = ServiceRef.parse(forward_auth, option="forward-auth", namespace=namespace)
        conf = render_nginx(policy, api, backend=f"{target.host}:{target.port}", forward_auth=f"{auth.host}:{auth.port}",
                            listen=str(gateway_port))
        routes = [{"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": resource_name("authgate-nginx", api), "namespace": gateway_namespace,
                                "labels": {"app.kubernetes.io/part-of": "authgate"}},
                   "data": {"authgate.conf": conf}}]
    elif gateway == "gateway-api":
        from stacks.policy.render.gateway_api import render_gateway_api
        routes = render_gateway_api(policy, api, backend=f"{target.name}:{target.port}", namespace=target.namespace,
                                    forward_auth=forward_auth, gateway=f"{gateway_namespace}/{gateway_name}")
    else:
        from stacks.policy.render.istio import render_istio
        if not selector:
            raise ValueError("selector: give the API's pod labels, e.g. {\"app\": \"orders\"}")
        routes, mesh = render_istio(policy, api, selector={str(k): str(v) for k, v in selector.items()},
                                    namespace=target.namespace, forward_auth=forward_auth)
    problems = open_route_problems(service + routes)
    if problems:
        raise ValueError("the in-cluster manifests would leave routes open: " + "; ".join(problems))
    return FrontDoorManifests(service, routes, mesh)
