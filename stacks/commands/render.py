"""`authgate render {routes,openapi,apim,nginx,token-handler,gateway-api,istio,k8s}`: write what a gateway or
service needs from a policy file (stdout or -o FILE)."""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from stacks.commands.policy_file import EXIT_USAGE, UsageError, load_policy_file, parse_variables


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", required=True, metavar="FILE", help="the auth policy YAML file")
    parser.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                        help="fill a ${NAME} placeholder in the policy (e.g. LOCAL_ISSUER_URL=http://127.0.0.1:4000)")
    parser.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout (replaced atomically)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    kinds = parser.add_subparsers(dest="artefact", metavar="ARTEFACT", required=True)
    routes = kinds.add_parser("routes", help="the route table JSON the Lambda authorizers read (AUTHGATE_POLICY)")
    _common(routes)
    routes.add_argument("--api", action="append", metavar="NAME",
                        help="only this API (repeatable); default: every API in the policy")
    openapi = kinds.add_parser("openapi", help="an OpenAPI 2.0 document for GCP API Gateway (x-google-issuer ...)")
    _common(openapi)
    openapi.add_argument("--api", required=True, metavar="NAME", help="the API of the policy to render")
    openapi.add_argument("--backend-url", required=True, metavar="URL",
                         help="the private Cloud Run service URL the gateway forwards to")
    openapi.add_argument("--jwt-audience", metavar="AUDIENCE",
                         help="audience of the gateway's identity token for the backend (default: the backend URL)")
    openapi.add_argument("--title", help="info.title (default: the API's title in the policy)")
    apim = kinds.add_parser("apim", help="Azure API Management policy XML with validate-jwt")
    _common(apim)
    apim.add_argument("--api", required=True, metavar="NAME", help="the API of the policy to render")
    apim.add_argument("--route", metavar="ROUTE_KEY",
                      help='an operation policy for one route, e.g. "GET /orders/{id}" (default: the API-level policy)')
    nginx = kinds.add_parser("nginx", help="an NGINX configuration: auth_request to the forward-auth service")
    _common(nginx)
    nginx.add_argument("--api", required=True, metavar="NAME", help="the API of the policy to render")
    nginx.add_argument("--backend", required=True, metavar="HOST:PORT", help="the service NGINX proxies to")
    nginx.add_argument("--forward-auth", default="authgate-forward-auth:9100", metavar="HOST:PORT",
                       help="the forward-auth decision service (default authgate-forward-auth:9100)")
    nginx.add_argument("--listen", default="8080", help="the server's listen value (default 8080)")
    nginx.add_argument("--server-name", default="_", help="the server_name (default _)")
    nginx.add_argument("--tls-certificate", metavar="FILE", help="the server certificate (PEM): NGINX terminates TLS "
                       "(needed when the API receives certificate-bound tokens)")
    nginx.add_argument("--tls-key", metavar="FILE", help="the server certificate's key (PEM)")
    nginx.add_argument("--client-ca", metavar="FILE", help="CA certificates (PEM) client certificates must chain "
                       "to (default: any certificate; the token binds to its thumbprint)")
    token_handler = kinds.add_parser("token-handler", help="the browser sign-in token handler's config "
                                                           "(AUTHGATE_TOKEN_HANDLER_CONFIG) for a web client")
    _common(token_handler)
    token_handler.add_argument("--client", required=True, metavar="NAME", help="the policy's kind: web client")
    token_handler.add_argument("--client-id", metavar="ID",
                               help="the issuer's id for that client, when it is not the client's name")
    gateway_api = kinds.add_parser("gateway-api", help="Envoy Gateway HTTPRoutes and SecurityPolicies (JWT or "
                                   "extAuth to the forward-auth service, per route)")
    istio = kinds.add_parser("istio", help="Istio RequestAuthentication + AuthorizationPolicies (CUSTOM to the "
                             "forward-auth service where needed) and the mesh extensionProviders entry")
    k8s = kinds.add_parser("k8s", help="the forward-auth service's Deployment, Service, ConfigMap, ServiceAccount, "
                           "PodDisruptionBudget and NetworkPolicy")
    for sub in (gateway_api, istio, k8s):
        _common(sub)
        sub.add_argument("--api", required=True, metavar="NAME", help="the API of the policy to render")
    for sub in (gateway_api, istio):
        sub.add_argument("--namespace", default="default", help="the API's namespace (default: default)")
        sub.add_argument("--forward-auth", default="authgate-forward-auth.authgate:9100",
                         metavar="SERVICE.NAMESPACE:PORT", help="the forward-auth Service")
    gateway_api.add_argument("--backend", required=True, metavar="SERVICE:PORT", help="the API's Service")
    gateway_api.add_argument("--gateway", default="authgate", metavar="[NAMESPACE/]NAME",
                             help="the Gateway the HTTPRoutes attach to (default: authgate)")
    gateway_api.add_argument("--client-ca", metavar="configmap/NAME|secret/NAME", help="the CA bundle (key ca.crt, "
                             "in the Gateway's namespace) client certificates chain to; required for APIs that "
                             "receive certificate-bound tokens")
    istio.add_argument("--selector", required=True, action="append", metavar="KEY=VALUE",
                       help="a pod label of the API's workloads (repeatable), e.g. app=orders")
    k8s.add_argument("--image", required=True, help="the forward-auth image pinned by digest (NAME@sha256:...)")
    k8s.add_argument("--namespace", default="authgate", help="where the service runs (default: authgate)")
    k8s.add_argument("--gateway-namespace", default="ingress",
                     help="the only namespace allowed to call the service (default: ingress)")
    k8s.add_argument("--convention", default="nginx", choices=("nginx", "traefik", "envoy"),
                     help="the proxy's forward-auth convention (default: nginx)")
    k8s.add_argument("--replicas", type=int, default=2, help="replicas, spread across zones (default: 2)")
    k8s.add_argument("--eks-role-arn", help="IRSA role for the service account (EKS): when keys need it, and with "
                     "--denylist-table (the role that may read and write the table)")
    k8s.add_argument("--aks-client-id", help="workload identity client id (AKS), when keys need it")
    k8s.add_argument("--trusted-proxies", metavar="CIDRS", help="the gateway pods' addresses or CIDR range, whose "
                     "forwarded URL and client certificate the service reads (DPoP- and certificate-bound tokens)")
    k8s.add_argument("--public-origin", metavar="URL", help="the origin clients call (https://api.example.com), "
                     "for DPoP proofs' htu")
    k8s.add_argument("--denylist-table", metavar="NAME", help="the stage's revocation table (DynamoDB), shared by "
                     "every replica; required for APIs with denylist or DPoP routes or token-binding issuers, "
                     "with --aws-region and --eks-role-arn")
    k8s.add_argument("--aws-region", metavar="REGION", help="the revocation table's region (with --denylist-table)")
    k8s.add_argument("--redis-url", metavar="URL", help="instead of the table: a Redis every replica reaches "
                     "(rediss://HOST:PORT/0); its password from the Secret authgate-forward-auth-redis (key password)")
    k8s.add_argument("--redis-allow-plaintext", action="store_true", help="accept a redis:// URL to a non-loopback "
                     "host (a network that encrypts already, e.g. a service mesh)")


def _write(text: str, output: str | None) -> None:
    if not output:
        sys.stdout.write(text)
        return
    target = Path(output)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        # mkstemp creates the file 0600; give it the mode any tool would (0666 less the umask): a route table
        # bundled into a Lambda zip by hand must be world-readable for the function to read it.
        os.fchmod(fd, 0o666 & ~_current_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def run(args: argparse.Namespace) -> int:
    try:
        policy = load_policy_file(args.policy, args.var, command="authgate render")
        text = _render(args, policy)
    except UsageError as exc:
        print(f"authgate render: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyError as exc:
        print(f"authgate render: {exc.args[0]}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as exc:
        print(f"authgate render: {exc}", file=sys.stderr)
        return EXIT_USAGE
    _write(text, args.output)
    return 0


def _render(args: argparse.Namespace, policy) -> str:
    if args.artefact == "routes":
        from stacks.policy.render import route_table_json
        return route_table_json(policy, apis=args.api)
    if args.artefact == "openapi":
        from stacks.policy.render import render_openapi
        document = render_openapi(policy, args.api, backend_url=args.backend_url, jwt_audience=args.jwt_audience,
                                  title=args.title)
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if args.artefact == "apim":
        from stacks.policy.render import render_apim
        return render_apim(policy, args.api, route_key=args.route)
    if args.artefact == "nginx":
        from stacks.policy.render.nginx import render_nginx
        return render_nginx(policy, args.api, backend=args.backend, forward_auth=args.forward_auth,
                            listen=args.listen, server_name=args.server_name, tls_certificate=args.tls_certificate,
                            tls_key=args.tls_key, client_ca=args.client_ca)
    if args.artefact == "token-handler":
        from stacks.policy.render.token_handler import token_handler_json
        return token_handler_json(policy, args.client, client_id=args.client_id)
    if args.artefact in ("gateway-api", "istio", "k8s"):
        return _render_in_cluster(args, policy)
    raise ValueError(f"unknown artefact {args.artefact!r}")


def _render_in_cluster(args: argparse.Namespace, policy) -> str:
    from stacks.policy.render.in_cluster import manifests_yaml

    header = f"# authgate render {args.artefact} --api {args.api}: rendered from {args.policy}; re-render, do not edit.\n"
    if args.artefact == "gateway-api":
        from stacks.policy.render.gateway_api import render_gateway_api
        return manifests_yaml(render_gateway_api(policy, args.api, backend=args.backend, namespace=args.namespace,
                                                 gateway=args.gateway, forward_auth=args.forward_auth,
                                                 client_ca=args.client_ca), header=header)
    if args.artefact == "istio":
        from stacks.policy.render.istio import render_istio
        selector = dict(parse_variables(args.selector))
        manifests, mesh = render_istio(policy, args.api, selector=selector, namespace=args.namespace,
                                       forward_auth=args.forward_auth)
        snippet = manifests_yaml([{"meshConfig": mesh}]).rstrip("\n").splitlines()
        return manifests_yaml(manifests, header=header) + (
            "# The CUSTOM action's provider, for istiod's mesh config (IstioOperator spec / the istio ConfigMap):\n"
            + "".join(f"#   {line}\n" for line in snippet))
    from stacks.policy.render.k8s import render_k8s
    return manifests_yaml(render_k8s(policy, args.api, image=args.image, namespace=args.namespace,
                                     gateway_namespace=args.gateway_namespace, convention=args.convention,
                                     replicas=args.replicas, eks_role_arn=args.eks_role_arn,
                                     aks_client_id=args.aks_client_id, trusted_proxies=args.trusted_proxies,
                                     public_origin=args.public_origin, denylist_table=args.denylist_table,
                                     aws_region=args.aws_region, redis_url=args.redis_url,
                                     redis_allow_plaintext=args.redis_allow_plaintext), header=header)
