"""The Kubernetes renderer: the forward-auth decision service for one API of the policy, as manifests.

ServiceAccount, ConfigMap (the rendered route table, `routes.json`), Deployment, Service, PodDisruptionBudget and a
NetworkPolicy that admits only the gateway's namespace. The Deployment runs two replicas (by default) spread across
zones and nodes, non-root (the image's UID 10001), read-only root filesystem, no capabilities, RuntimeDefault seccomp,
no service-account token unless a cloud identity needs one, requests and limits, `/healthz` liveness and `/readyz`
readiness (keys loaded), and a short preStop pause so endpoints are gone before uvicorn stops on SIGTERM. An API with
`dpop_nonce: required` routes reads AUTHGATE_DPOP_NONCE_KEY from the Secret `authgate-forward-auth-dpop-nonce` (key
`key`, base64url of 32 random bytes), which the operator creates: one key for every replica, never in a manifest.
Cloud identity, only when the keys need one (a private JWKS endpoint reached through the cloud's identity): EKS IRSA
(`eks.amazonaws.com/role-arn` on the ServiceAccount) or AKS workload identity (`azure.workload.identity/client-id`
on it, `azure.workload.identity/use: "true"` on the pods).

Replicas share no memory, so an API whose decisions need shared state (route_table.needs_shared_store: a denylist or
DPoP route, or an issuer that binds tokens) is rendered only with a shared store: the stage's revocation table
(AUTHGATE_DENYLIST_TABLE and AWS_REGION, read and written with the IRSA role, which must be given), or a Redis every
replica reaches (AUTHGATE_REDIS_URL, rediss://; its password, and an ACL user name if any, from the Secret
`authgate-forward-auth-redis`, keys `password` and `username`, which the operator creates). Without one the renderer
refuses, as the service itself refuses to start in a pod without one: each replica would accept a DPoP proof another
has seen, and no replica would ever see a logout.
"""
from __future__ import annotations

import re
from typing import Any

from lambdas.forward_auth.service import ENV_CONVENTION, ENV_PATH_PREFIX
from lambdas.forward_auth.conventions import CONVENTIONS, DEFAULT_ENVOY_PATH_PREFIX
from lambdas.validation.possession import ENV_DENYLIST_TABLE, ENV_DPOP_NONCE_KEY
from lambdas.forward_auth.proxy_facts import (ENV_PUBLIC_ORIGIN, ENV_TRUSTED_PROXIES, parse_public_origin,
                                              parse_trusted_proxies)
from stacks.policy.model import AuthPolicy
from stacks.policy.render.in_cluster import check_dns_label, http_api

NAME = "authgate-forward-auth"
DPOP_NONCE_SECRET = f"{NAME}-dpop-nonce"   # kubectl create secret generic ... --from-literal=key=<base64url 32 bytes>
REDIS_SECRET = f"{NAME}-redis"             # kubectl create secret generic ... --from-literal=password=<the password>
PORT = 9100
ROUTES_FILE = "routes.json"
CONFIG_DIR = "/etc/authgate"
_IMAGE = re.compile(r"[a-z0-9][a-z0-9._/:-]*(?::[A-Za-z0-9._-]+)?(?:@sha256:[0-9a-f]{64})?")
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+")
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}")
_AWS_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]")


def render_k8s(policy: AuthPolicy, api: str, *, image: str, namespace: str = "authgate",
               gateway_namespace: str = "ingress", convention: str = "nginx", replicas: int = 2,
               eks_role_arn: str | None = None, aks_client_id: str | None = None,
               ext_authz_prefix: str = DEFAULT_ENVOY_PATH_PREFIX, trusted_proxies: str | None = None,
               public_origin: str | None = None, denylist_table: str | None = None,
               aws_region: str | None = None, redis_url: str | None = None,
               redis_allow_plaintext: bool = False, cluster: str = "any") -> list[dict[str, Any]]:
    """The manifests that run the forward-auth service for `api` in `namespace`.

    image              the service image (`lambdas/forward_auth/Dockerfile`), pinned by digest: NAME@sha256:...
    gateway_namespace  the only namespace whose pods may call the service (the NGINX / Envoy Gateway / Istio one)
    convention         the proxy convention the service reads (nginx, traefik, envoy)
    trusted_proxies    the gateway pods' addresses or CIDR range (the pod network), whose forwarded URL and client
                       certificate the service reads (DPoP- and certificate-bound tokens); unset: none, and such
                       tokens are refused
    public_origin      the origin clients call (https://api.example.com), for DPoP htu instead of forwarded headers
    denylist_table     the stage's revocation table (DynamoDB), which every replica reads and writes through the
                       IRSA role `eks_role_arn`, in `aws_region`; or
    redis_url          a Redis every replica reaches (rediss://host:port/db; the password from the Secret REDIS_SECRET);
                       one of the two is required for APIs whose decisions need shared state
    redis_allow_plaintext  accept a redis:// URL to a non-loopback host (a network that encrypts already, a mesh)
    cluster            eks, aks or any: which shared stores a refusal offers (AKS has no DynamoDB table)
    """
    from stacks.policy.render.route_table import route_table

    http_api(policy, api)
    check_dns_label(namespace, "--namespace")
    check_dns_label(gateway_namespace, "--gateway-namespace")
    if not _IMAGE.fullmatch(image) or "@sha256:" not in image:
        raise ValueError(f"--image {image!r}: pin the image by digest, e.g. registry.example.com/authgate-forward-auth"
                         f"@sha256:<64 hex digits> (a tag can be moved to other contents)")
    if convention not in CONVENTIONS or convention == "auto":
        raise ValueError(f"--convention {convention!r}: name the proxy's convention: nginx, traefik or envoy")
    if cluster not in ("eks", "aks", "any"):
        raise ValueError(f"cluster {cluster!r}: eks, aks or any")
    if not 2 <= replicas <= 50:
        raise ValueError(f"--replicas {replicas}: at least 2 (a PodDisruptionBudget keeps one), at most 50")
    if eks_role_arn and aks_client_id:
        raise ValueError("give --eks-role-arn or --aks-client-id, not both: the service runs on one cloud")
    if eks_role_arn and not _ROLE_ARN.fullmatch(eks_role_arn):
        raise ValueError(f"--eks-role-arn {eks_role_arn!r} is not an IAM role ARN (arn:aws:iam::<account>:role/NAME)")
    if aks_client_id and not _GUID.fullmatch(aks_client_id):
        raise ValueError(f"--aks-client-id {aks_client_id!r} is not a client id (a lower-case GUID)")

    try:
        parse_trusted_proxies(trusted_proxies)
        parse_public_origin(public_origin)
    except ValueError as exc:
        raise ValueError(str(exc).replace(ENV_TRUSTED_PROXIES, "--trusted-proxies")
                         .replace(ENV_PUBLIC_ORIGIN, "--public-origin")) from None
    proxy_env = [{"name": name, "value": value} for name, value in ((ENV_TRUSTED_PROXIES, trusted_proxies),
                                                                    (ENV_PUBLIC_ORIGIN, public_origin)) if value]
    # One route table per render: the ConfigMap's content, and what decides whether the replicas need a shared store.
    table = route_table(policy, apis=[api])
    proxy_env += shared_store_env(table, api, denylist_table=denylist_table, aws_region=aws_region,
                                  eks_role_arn=eks_role_arn, redis_url=redis_url,
                                  redis_allow_plaintext=redis_allow_plaintext,
                                  cluster="aks" if aks_client_id else cluster)
    if any(route.dpop_nonce != "none" for route in http_api(policy, api).routes.values()):
        # Every replica must issue and accept the same nonces: one key for all, from a Secret the operator creates
        # (key material never goes into rendered manifests).
        proxy_env.append({"name": ENV_DPOP_NONCE_KEY, "valueFrom": {"secretKeyRef": {
            "name": DPOP_NONCE_SECRET, "key": "key"}}})

    labels = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/instance": f"{NAME}-{api}".lower()[:63],
              "app.kubernetes.io/part-of": "authgate"}
    selector = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/instance": labels["app.kubernetes.io/instance"]}
    cloud_identity = bool(eks_role_arn or aks_client_id)
    sa_annotations: dict[str, str] = {}
    pod_labels = dict(labels)
    if eks_role_arn:
        sa_annotations["eks.amazonaws.com/role-arn"] = eks_role_arn
    if aks_client_id:
        sa_annotations["azure.workload.identity/client-id"] = aks_client_id
        pod_labels["azure.workload.identity/use"] = "true"
    meta = {"namespace": namespace, "labels": labels}
    service_account: dict[str, Any] = {"apiVersion": "v1", "kind": "ServiceAccount",
                                       "metadata": {"name": NAME, **meta},
                                       "automountServiceAccountToken": cloud_identity}
    if sa_annotations:
        service_account["metadata"]["annotations"] = sa_annotations
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{NAME}-routes", **meta},
                  "data": {ROUTES_FILE: table.to_json()}}
    probe = {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10, "timeoutSeconds": 2,
             "failureThreshold": 3}
    container = {
        "name": "forward-auth", "image": image, "imagePullPolicy": "Always",
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "env": [{"name": "AUTHGATE_POLICY", "value": f"{CONFIG_DIR}/{ROUTES_FILE}"},
                {"name": "AUTHGATE_API", "value": api},
                {"name": ENV_CONVENTION, "value": convention},
                {"name": ENV_PATH_PREFIX, "value": ext_authz_prefix}, *proxy_env],
        "resources": {"requests": {"cpu": "100m", "memory": "96Mi"}, "limits": {"cpu": "1", "memory": "256Mi"}},
        "livenessProbe": probe,
        "readinessProbe": {**probe, "httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 5},
        "startupProbe": {**probe, "periodSeconds": 2, "failureThreshold": 30},
        # The Service's endpoints drop the pod before uvicorn closes its listener (SIGTERM after this pause).
        "lifecycle": {"preStop": {"exec": {"command": ["python", "-c", "import time; time.sleep(5)"]}}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001,
                            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
        "volumeMounts": [{"name": "routes", "mountPath": CONFIG_DIR, "readOnly": True}],
    }
    spread = [{"maxSkew": 1, "topologyKey": key, "whenUnsatisfiable": how, "labelSelector": {"matchLabels": selector}}
              for key, how in (("topology.kubernetes.io/zone", "ScheduleAnyway"),
                               ("kubernetes.io/hostname", "ScheduleAnyway"))]
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": NAME, **meta},
        "spec": {"replicas": replicas, "selector": {"matchLabels": selector},
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                 "template": {"metadata": {"labels": pod_labels},
                              "spec": {"serviceAccountName": NAME, "automountServiceAccountToken": cloud_identity,
                                       "terminationGracePeriodSeconds": 30,
                                       "securityContext": {"runAsNonRoot": True, "runAsUser": 10001,
                                                           "runAsGroup": 10001, "fsGroup": 10001,
                                                           "seccompProfile": {"type": "RuntimeDefault"}},
                                       "topologySpreadConstraints": spread, "containers": [container],
                                       "volumes": [{"name": "routes",
                                                    "configMap": {"name": f"{NAME}-routes"}}]}}},
    }
    if cloud_identity:
        # checkov reads skips from this annotation; the reason travels with the resource it concerns.
        deployment["metadata"]["annotations"] = {"checkov.io/skip1": (
            "CKV_K8S_38=the service account token is mounted because IRSA / AKS workload identity exchange it for "
            "the cloud credentials that fetch the issuer keys")}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": NAME, **meta},
               "spec": {"type": "ClusterIP", "selector": selector,
                        "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}]}}
    budget = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": NAME, **meta},
              "spec": {"minAvailable": 1, "selector": {"matchLabels": selector}}}
    network = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": NAME, **meta},
               "spec": {"podSelector": {"matchLabels": selector}, "policyTypes": ["Ingress"],
                        "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {
                            "kubernetes.io/metadata.name": gateway_namespace}}}],
                                     "ports": [{"port": PORT, "protocol": "TCP"}]}]}}
    return [service_account, config_map, deployment, service, budget, network]


def shared_store_env(table: Any, api: str, *, denylist_table: str | None, aws_region: str | None,
                     eks_role_arn: str | None, redis_url: str | None = None, redis_allow_plaintext: bool = False,
                     cluster: str = "any") -> list[dict[str, Any]]:
    """The container's environment for the store every replica shares (`table`: the rendered RouteTable); ValueError
    when the API needs one and none is given, or when the one given cannot be reached."""
    from lambdas.validation.route_table import shared_store_reasons

    if denylist_table is not None and redis_url is not None:
        raise ValueError("give --denylist-table or --redis-url, not both: the replicas share one store")
    if redis_url is not None:
        return _redis_env(redis_url, allow_plaintext=redis_allow_plaintext)
    if redis_allow_plaintext:
        raise ValueError("--redis-allow-plaintext goes with --redis-url")
    if denylist_table is not None:
        if not _TABLE_NAME.fullmatch(denylist_table):
            raise ValueError(f"--denylist-table {denylist_table!r} is not a DynamoDB table name (3-255 of A-Z a-z 0-9 "
                             f"_ . -); give the stage's revocation table (stack Revocation, output TableName)")
        if not aws_region or not _AWS_REGION.fullmatch(aws_region):
            raise ValueError(f"--aws-region {aws_region!r}: give the region of the revocation table, e.g. eu-west-1")
        if not eks_role_arn:
            raise ValueError("--denylist-table needs --eks-role-arn: the pods reach the table with that IRSA role's "
                             "credentials (it may BatchGetItem, and PutItem dpop:* items, on the table)")
        return [{"name": ENV_DENYLIST_TABLE, "value": denylist_table}, {"name": "AWS_REGION", "value": aws_region}]
    if aws_region is not None:
        raise ValueError("--aws-region goes with --denylist-table (the region of the revocation table)")
    reasons = shared_store_reasons(table.api(api), table.issuers.values())
    if reasons:
        redis = "--redis-url rediss://HOST:PORT/0 (a Redis every replica reaches; its password in the Secret " \
                f"{REDIS_SECRET}, key password)"
        where = (f"give {redis}" if cluster == "aks" else f"give --denylist-table (the stage's revocation table), "
                 f"--aws-region and --eks-role-arn, or {redis}")
        raise ValueError(f"API {api!r} needs state every forward-auth replica shares ({'; '.join(reasons)}"
                         f"), and replicas share no memory: a DPoP proof could be replayed at another replica and no "
                         f"replica would see a logout; {where}")
    return []


def _redis_env(url: str, *, allow_plaintext: bool) -> list[dict[str, Any]]:
    """AUTHGATE_REDIS_URL as given (checked by the store's own URL rules), the password and an optional ACL user
    name from the Secret (never in a manifest)."""
    from urllib.parse import urlsplit

    from lambdas.validation.possession import (ENV_REDIS_ALLOW_PLAINTEXT, ENV_REDIS_PASSWORD, ENV_REDIS_URL,
                                               ENV_REDIS_USERNAME)
    from lambdas.validation.redis_store import RedisEndpoint

    try:
        parts = urlsplit(url)
        has_secret = parts.password is not None or bool(parts.username)
    except ValueError:
        has_secret = False
    if has_secret:
        raise ValueError(f"--redis-url holds a user name or password, which would be written into the manifest; give "
                         f"rediss://HOST:PORT/0 and put them in the Secret {REDIS_SECRET} (keys password, username)")
    try:
        RedisEndpoint(url, allow_plaintext=allow_plaintext, plaintext_opt_in="--redis-allow-plaintext")
    except ValueError as exc:
        raise ValueError(f"--redis-url: {exc}") from None
    secret = {"name": REDIS_SECRET}
    env: list[dict[str, Any]] = [
        {"name": ENV_REDIS_URL, "value": url},
        {"name": ENV_REDIS_PASSWORD, "valueFrom": {"secretKeyRef": {**secret, "key": "password"}}},
        {"name": ENV_REDIS_USERNAME, "valueFrom": {"secretKeyRef": {**secret, "key": "username", "optional": True}}}]
    if allow_plaintext:
        env.append({"name": ENV_REDIS_ALLOW_PLAINTEXT, "value": "true"})
    return env
