"""The app's settings, read from CDK context (cdk.json, cdk.context.json or `-c key=value`), checked once.

Stages and options come from here, never from code edits; stacks are environment-agnostic unless both an
account and a region are pinned.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stacks.aws.mtls_domain.infrastructure import MtlsDomainSettings
from stacks.aws.refusals import UnsupportedConfiguration
from stacks.policy.render.in_cluster import IN_CLUSTER_GATEWAYS

PREFIX = "authgate:"
STAGE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,30}")
ACM_CERTIFICATE_ARN = re.compile(r"arn:aws(-[a-z]+)*:acm:[a-z]{2}(-[a-z]+)+-[0-9]:[0-9]{12}:certificate/[A-Za-z0-9-]+")
DOMAIN_NAME = re.compile(r"(?=.{1,253}\Z)([a-z0-9{}]([a-z0-9{}-]{0,61}[a-z0-9{}])?\.)+[a-z]{2,63}")
SNS_TOPIC_ARN = re.compile(r"arn:aws(-[a-z]+)*:sns:[a-z]{2}(-[a-z]+)+-[0-9]:[0-9]{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?")
FRONT_DOOR_SHAPES = ("http-api-vpc-link", "alb-oidc", "in-cluster")


@dataclass(frozen=True)
class InClusterSettings:
    """front_door in-cluster: an internet-facing ALB in front of an in-cluster gateway that asks the forward-auth
    service (the manifests are written to the cloud assembly for GitOps)."""
    certificate_arn: str            # ACM certificate of the ALB's HTTPS listener
    image: str                      # the forward-auth image pinned by digest (NAME@sha256:...)
    backend: str                    # SERVICE.NAMESPACE:PORT the gateway forwards to
    gateway: str = "nginx"          # nginx | gateway-api | istio
    namespace: str = "authgate"     # where the forward-auth service runs
    gateway_namespace: str = "ingress"
    gateway_port: int = 8080        # the gateway pods' port, the ALB's IP targets
    gateway_name: str = "authgate"  # gateway-api: the Gateway the HTTPRoutes attach to
    selector: Any = None            # istio: the API's pod labels, e.g. {"app": "orders"}
    # DPoP- and certificate-bound tokens: the gateway pods' CIDR range (whose forwarded URL and client certificate
    # the service reads) and the origin clients call (a DPoP proof's htu); unset, such tokens are refused.
    trusted_proxies: str | None = None
    public_origin: str | None = None


@dataclass(frozen=True)
class AlbSettings:
    certificate_arn: str
    issuer: str                     # a policy issuer name
    client_id: str
    client_secret_name: str         # Secrets Manager secret holding the client secret
    client_secret_json_field: str | None = None
    hosted_domain_url: str | None = None    # Cognito: the user pool domain serving the OAuth endpoints
    authorization_endpoint: str | None = None
    token_endpoint: str | None = None
    user_info_endpoint: str | None = None
    scope: str = "openid"
    machine_paths: tuple[str, ...] = ()     # paths where the ALB verifies bearer JWTs of the same issuer
    machine_scopes: tuple[str, ...] = ()


@dataclass(frozen=True)
class EksSettings:
    cluster_name: str
    oidc_issuer: str
    oidc_provider_arn: str | None = None
    irsa: tuple[tuple[str, str], ...] = ()
    pod_identity: tuple[tuple[str, str], ...] = ()
    front_door: str | None = None
    in_cluster: InClusterSettings | None = None


@dataclass(frozen=True)
class GithubSettings:
    repository: str
    ref: str | None = None
    environment: str | None = None
    provider_arn: str | None = None
    managed_policy_arns: tuple[str, ...] = ()


@dataclass(frozen=True)
class CognitoSettings:
    issuer: str                     # the policy issuer this pool stands for (its routes' scopes, its clients)
    domain_prefix: str              # "{stage}" is replaced by the stage name


@dataclass(frozen=True)
class WebSettings:
    client: str                     # the policy's kind: web client whose token handler the HTTP API serves


@dataclass(frozen=True)
class WebSocketApiSettings:
    api: str                        # a policy API with protocol: websocket
    token_source: str = "query"     # query | protocol | header: where clients put the token on the upgrade
    query_param: str = "access_token"


@dataclass(frozen=True)
class MtlsDomainContext:
    """authgate:mtls_domain: the custom domains with mutual TLS an API with `proof: mtls` routes is served on, one
    per stack that serves it (a custom domain maps to one API). "{stage}" in a domain is replaced by the stage name."""
    certificate_arn: str                    # ACM certificate covering every domain below, in the stacks' region
    truststore_uri: str                     # s3://bucket/key of the PEM bundle of the CAs of client certificates
    http_api_domain: str                    # the HttpApi stack's domain
    rest_api_domain: str | None = None      # the RestApi stack's domain (needed unless the API has cookie routes)
    eks_front_door_domain: str | None = None    # the EksFrontDoor stack's domain (front_door http-api-vpc-link)
    truststore_version: str | None = None   # the S3 object version: a new bundle then needs a deliberate deploy

    def for_stack(self, stack_id: str, stage: str) -> MtlsDomainSettings:
        """The construct's settings for one stack of one stage; refuses a stack whose domain is not given."""
        field_name = MTLS_DOMAIN_FIELDS[stack_id]
        domain = getattr(self, field_name)
        if not domain:
            raise UnsupportedConfiguration(
                f"context {PREFIX}mtls_domain.{field_name} is not set: the {stack_id} stack serves the API's proof: "
                f"mtls routes and needs a custom domain of its own (one domain maps to one API); add e.g. "
                f'"{field_name}": "{stack_id.lower()}-{{stage}}.api.example.com"')
        return MtlsDomainSettings(domain_name=domain.replace("{stage}", stage), certificate_arn=self.certificate_arn,
                                  truststore_uri=self.truststore_uri, truststore_version=self.truststore_version)


# stack id -> the authgate:mtls_domain field naming its domain
MTLS_DOMAIN_FIELDS = {"HttpApi": "http_api_domain", "RestApi": "rest_api_domain",
                      "EksFrontDoor": "eks_front_door_domain"}
MTLS_DOMAIN_EXAMPLE = ('{"certificate_arn": "arn:aws:acm:<region>:<account>:certificate/<id>", "truststore_uri": '
                       '"s3://<bucket>/<key>.pem", "http_api_domain": "orders-{stage}.api.example.com", '
                       '"rest_api_domain": "orders-rest-{stage}.api.example.com"}')


@dataclass(frozen=True)
class AppSettings:
    policy: str
    api: str
    stages: tuple[str, ...]
    account: str | None = None
    region: str | None = None
    shortest_token_lifetime_minutes: int = 15
    backend_url: str | None = None
    rest_authorizer_type: str = "request"
    authorizer_asset_dir: str | None = None
    cognito: CognitoSettings | None = None
    alb: AlbSettings | None = None
    eks: EksSettings | None = None
    github: GithubSettings | None = None
    websocket: WebSocketApiSettings | None = None
    alarm_topic_arn: str | None = None    # an existing SNS topic every API's alarms notify
    web: WebSettings | None = None        # browser sign-in: the token handler on the HTTP API (needs cognito)
    mtls_domain: MtlsDomainContext | None = None    # custom domains with mutual TLS, for APIs with proof: mtls routes

    @classmethod
    def from_context(cls, get: Any) -> "AppSettings":
        """get is node.try_get_context; a section with an unknown field is refused so a typo cannot do nothing."""
        def value(key: str, default: Any = None) -> Any:
            raw = get(PREFIX + key)
            # raw[:1] is "" for an empty value, and "" is in every string: test the first character explicitly.
            if isinstance(raw, str) and raw.startswith(("[", "{")) and key != "policy":
                try:   # `-c authgate:stages='["dev","prod"]'` arrives as a string
                    raw = json.loads(raw)
                except json.JSONDecodeError as exc:
                    raise UnsupportedConfiguration(f"context {PREFIX}{key} is not valid JSON: {exc}") from None
            return default if raw in (None, "") else raw

        policy = value("policy")
        api = value("api")
        if not policy or not api:
            raise UnsupportedConfiguration(f"set context {PREFIX}policy (a policy file) and {PREFIX}api (an API "
                                           "of it), in cdk.json or with -c")
        stages = value("stages", ["dev"])
        if isinstance(stages, str):
            stages = [s.strip() for s in stages.split(",") if s.strip()]
        if not stages or not all(isinstance(s, str) and STAGE_NAME.fullmatch(s) for s in stages):
            raise UnsupportedConfiguration(f"{PREFIX}stages must be a list of names (letters, digits, hyphens; "
                                           f"starting with a letter), got {stages!r}")
        account, region = value("account"), value("region")
        if bool(account) != bool(region):
            raise UnsupportedConfiguration(f"pin both {PREFIX}account and {PREFIX}region, or neither "
                                           "(environment-agnostic stacks)")
        if account and not re.fullmatch(r"\d{12}", str(account)):
            raise UnsupportedConfiguration(f"{PREFIX}account {account!r} is not a 12-digit AWS account id")
        lifetime = value("shortest_token_lifetime_minutes", 15)
        if not isinstance(lifetime, int) or isinstance(lifetime, bool) or not 1 <= lifetime <= 1440:
            try:
                lifetime = int(lifetime)
            except (TypeError, ValueError):
                lifetime = 0
            if not 1 <= lifetime <= 1440:
                raise UnsupportedConfiguration(f"{PREFIX}shortest_token_lifetime_minutes must be 1..1440")
        topic = value("alarm_topic_arn")
        if topic is not None and not (isinstance(topic, str) and SNS_TOPIC_ARN.fullmatch(topic)):
            raise UnsupportedConfiguration(f"{PREFIX}alarm_topic_arn must be an SNS topic ARN "
                                           f"(arn:aws:sns:<region>:<account>:<name>), got {topic!r}")
        return cls(
            policy=str(policy), alarm_topic_arn=topic, api=str(api), stages=tuple(stages), account=account and str(account),
            region=region and str(region), shortest_token_lifetime_minutes=lifetime,
            backend_url=value("backend_url"), rest_authorizer_type=value("rest_authorizer_type", "request"),
            authorizer_asset_dir=value("authorizer_asset_dir"),
            cognito=_section(value("cognito"), CognitoSettings, "cognito"),
            alb=_section(value("alb"), AlbSettings, "alb"),
            eks=_eks(value("eks")), github=_section(value("github"), GithubSettings, "github"),
            websocket=_section(value("websocket"), WebSocketApiSettings, "websocket"),
            web=_section(value("web"), WebSettings, "web"),
            mtls_domain=_mtls_domain(value("mtls_domain"), stages=tuple(stages)))


def _section(raw: Any, kind: type, key: str) -> Any:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise UnsupportedConfiguration(f"context {PREFIX}{key} must be an object, got {type(raw).__name__}")
    allowed = set(kind.__dataclass_fields__)
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise UnsupportedConfiguration(f"context {PREFIX}{key} has unknown field(s) {', '.join(unknown)}; "
                                       f"allowed: {', '.join(sorted(allowed))}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
    try:
        return kind(**values)
    except TypeError as exc:
        raise UnsupportedConfiguration(f"context {PREFIX}{key}: {exc}") from None


def _service_accounts(raw: Sequence, *, key: str) -> tuple[tuple[str, str], ...]:
    out = []
    for item in raw or ():
        if not isinstance(item, str) or item.count("/") != 1:
            raise UnsupportedConfiguration(f"{PREFIX}eks.{key} entries are 'namespace/service-account', got {item!r}")
        namespace, name = item.split("/")
        out.append((namespace, name))
    return tuple(out)


def _eks(raw: Any) -> EksSettings | None:
    section = _section(raw, EksSettings, "eks")
    if section is None:
        return None
    if section.front_door not in (None, *FRONT_DOOR_SHAPES):
        raise UnsupportedConfiguration(f"{PREFIX}eks.front_door must be one of {', '.join(FRONT_DOOR_SHAPES)}")
    in_cluster = _section(section.in_cluster, InClusterSettings, "eks.in_cluster")
    if (section.front_door == "in-cluster") != (in_cluster is not None):
        raise UnsupportedConfiguration(f"{PREFIX}eks.in_cluster goes with front_door in-cluster, and front_door "
                                       f"in-cluster needs it (certificate_arn, image, backend)")
    if in_cluster is not None and in_cluster.gateway not in IN_CLUSTER_GATEWAYS:
        raise UnsupportedConfiguration(f"{PREFIX}eks.in_cluster.gateway must be one of "
                                       f"{', '.join(IN_CLUSTER_GATEWAYS)}, got {in_cluster.gateway!r}")
    return EksSettings(cluster_name=section.cluster_name, oidc_issuer=section.oidc_issuer,
                       oidc_provider_arn=section.oidc_provider_arn, front_door=section.front_door,
                       in_cluster=in_cluster,
                       irsa=_service_accounts(section.irsa, key="irsa"),
                       pod_identity=_service_accounts(section.pod_identity, key="pod_identity"))


def _mtls_domain(raw: Any, *, stages: tuple[str, ...]) -> MtlsDomainContext | None:
    key = f"{PREFIX}mtls_domain"
    section = _section(raw, MtlsDomainContext, "mtls_domain")
    if section is None:
        return None
    for name in ("certificate_arn", "truststore_uri", "http_api_domain", "rest_api_domain", "eks_front_door_domain",
                 "truststore_version"):
        found = getattr(section, name)
        if found is not None and not (isinstance(found, str) and found):
            raise UnsupportedConfiguration(f"context {key}.{name} must be a non-empty string, got {found!r}")
    if not ACM_CERTIFICATE_ARN.fullmatch(section.certificate_arn):
        raise UnsupportedConfiguration(f"context {key}.certificate_arn must be an ACM certificate ARN "
                                       f"(arn:aws:acm:<region>:<account>:certificate/<id>), got "
                                       f"{section.certificate_arn!r}")
    domains = {name: getattr(section, name) for name in MTLS_DOMAIN_FIELDS.values() if getattr(section, name)}
    for name, domain in domains.items():
        if not DOMAIN_NAME.fullmatch(domain) or ("{" in domain.replace("{stage}", "")) or \
                ("}" in domain.replace("{stage}", "")):
            raise UnsupportedConfiguration(f"context {key}.{name} {domain!r} is not a domain name (lower-case "
                                           f"labels, optionally with {{stage}}), e.g. orders-{{stage}}.api.example.com")
        if len(stages) > 1 and "{stage}" not in domain:
            raise UnsupportedConfiguration(f"context {key}.{name} {domain!r} would be the same custom domain in every "
                                           f"stage ({', '.join(stages)}); put {{stage}} in it, e.g. "
                                           f"orders-{{stage}}.api.example.com")
    if len(set(domains.values())) != len(domains):
        raise UnsupportedConfiguration(f"context {key}: each stack needs its own domain (one custom domain maps to "
                                       f"one API), got {domains}")
    try:   # the construct's own checks (truststore s3://bucket/key), reported against the context key
        section.for_stack("HttpApi", stages[0])
    except UnsupportedConfiguration as exc:
        raise UnsupportedConfiguration(f"context {key}: {exc}") from None
    return section
