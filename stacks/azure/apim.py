"""Azure API Management: the service, one API with an operation per policy route, and the rendered policy XML."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import pulumi
import pulumi_azure_native as azure_native

from stacks.policy.route_keys import PathParameter, parse_route_key

# APIM has no "any method" operation; a route key with ANY becomes one operation per method.
ANY_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_SKUS = {"Consumption": 0, "Developer": 1, "Basic": 1, "Standard": 1, "Premium": 1, "BasicV2": 1, "StandardV2": 1}
_SERVICE_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9-]{0,48}[a-zA-Z0-9]")
_API_PATH = re.compile(r"[A-Za-z0-9._~-]+(/[A-Za-z0-9._~-]+)*")
# What may precede the root element of a policy document: an XML declaration, comments, whitespace.
_PROLOG = re.compile(r"^(\s|<\?xml[^>]*\?>|<!--.*?-->)*", re.S)


@dataclass(frozen=True)
class ApimOperation:
    """One APIM operation: its id, HTTP method, URL template and the path parameters the template declares."""

    operation_id: str
    route_key: str
    method: str
    url_template: str
    parameters: tuple[str, ...]


def _operation_id(method: str, path: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", f"{method} {path}".lower()).strip("-")
    if len(slug) <= 80:
        return slug
    # Operation ids are at most 80 characters; keep them unique and stable with a digest of the full route.
    return f"{slug[:71]}-{hashlib.sha256(f'{method} {path}'.encode()).hexdigest()[:8]}"


def operations_for_routes(route_keys: Sequence[str]) -> list[ApimOperation]:
    """Translate policy route keys (API Gateway syntax) into APIM operations.

    `{name}` stays a template parameter; a greedy `{name+}` becomes APIM's trailing `*` wildcard, and ANY fans out
    to one operation per method.
    """
    operations: list[ApimOperation] = []
    seen: dict[str, str] = {}
    for text in route_keys:
        key = parse_route_key(text)
        parts: list[str] = []
        names: list[str] = []
        for segment in key.segments:
            if isinstance(segment, PathParameter):
                if segment.greedy:
                    parts.append("*")
                else:
                    parts.append("{" + segment.name + "}")
                    names.append(segment.name)
            else:
                parts.append(segment)
        template = "/" + "/".join(parts)
        for method in (ANY_METHODS if key.method == "ANY" else (key.method,)):
            operation_id = _operation_id(method, key.path)
            if operation_id in seen:
                raise ValueError(f"routes {seen[operation_id]!r} and {text!r} map to the same APIM operation "
                                 f"{operation_id!r}; rename one path")
            seen[operation_id] = text
            operations.append(ApimOperation(operation_id, text, method, template, tuple(names)))
    return operations


@dataclass(frozen=True, kw_only=True)
class ApimGatewayArgs:
    """The APIM service and the one API (from the policy) it fronts, with the rendered validate-jwt policy."""

    resource_group_name: pulumi.Input[str]
    location: pulumi.Input[str]
    service_name: str
    publisher_email: str
    publisher_name: str
    api_name: str
    api_path: str
    backend_url: pulumi.Input[str]
    route_keys: Sequence[str]
    api_policy_xml: pulumi.Input[str]
    operation_policy_xml: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)  # route key -> XML
    display_name: str | None = None
    sku_name: str = "Consumption"

    def __post_init__(self) -> None:
        if not _SERVICE_NAME.fullmatch(self.service_name):
            raise ValueError(f"service_name must be 2-50 letters, digits and hyphens, starting with a letter "
                             f"(it becomes <name>.azure-api.net), e.g. 'acme-apis'; got {self.service_name!r}")
        if "@" not in self.publisher_email or not self.publisher_name:
            raise ValueError("publisher_email (an address) and publisher_name are required by APIM")
        if self.sku_name not in _SKUS:
            raise ValueError(f"sku_name must be one of {', '.join(_SKUS)}; got {self.sku_name!r}")
        if not _API_PATH.fullmatch(self.api_path):
            raise ValueError(f"api_path is the URL suffix of the API, e.g. 'orders' or 'v1/orders' (no leading or "
                             f"trailing '/'); got {self.api_path!r}")
        if not self.route_keys:
            raise ValueError(f"API {self.api_name!r} has no routes; APIM would expose nothing")
        if isinstance(self.backend_url, str) and not self.backend_url.startswith("https://"):
            raise ValueError(f"backend_url must be an https:// URL; got {self.backend_url!r}")
        if isinstance(self.api_policy_xml, str) and not _PROLOG.sub("", self.api_policy_xml).startswith("<policies"):
            raise ValueError("api_policy_xml must be an APIM policy document (<policies>...</policies>), as "
                             "`authgate render apim` writes it")
        unknown = sorted(set(self.operation_policy_xml) - set(self.route_keys))
        if unknown:
            raise ValueError(f"operation_policy_xml names routes that are not in route_keys: {unknown}")


class ApimGateway(pulumi.ComponentResource):
    """ApiManagementService + Api + one ApiOperation per route (method) + the API's validate-jwt policy as raw XML."""

    service: azure_native.apimanagement.ApiManagementService
    api: azure_native.apimanagement.Api
    operations: dict[str, azure_native.apimanagement.ApiOperation]
    api_policy: azure_native.apimanagement.ApiPolicy
    gateway_url: pulumi.Output[str]

    def __init__(self, name: str, args: ApimGatewayArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("authgate:azure:ApimGateway", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        operations = operations_for_routes(args.route_keys)

        self.service = azure_native.apimanagement.ApiManagementService(
            f"{name}-service",
            service_name=args.service_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            publisher_email=args.publisher_email,
            publisher_name=args.publisher_name,
            sku=azure_native.apimanagement.ApiManagementServiceSkuPropertiesArgs(
                name=args.sku_name, capacity=_SKUS[args.sku_name]),
            opts=child,
        )
        self.api = azure_native.apimanagement.Api(
            f"{name}-api",
            api_id=args.api_name,
            service_name=self.service.name,
            resource_group_name=args.resource_group_name,
            display_name=args.display_name or args.api_name,
            path=args.api_path,
            protocols=["https"],
            service_url=args.backend_url,
            # Callers are identified by their JWT; a subscription key is a shared secret, not an identity.
            subscription_required=False,
            opts=child,
        )
        self.operations = {}
        for operation in operations:
            self.operations[operation.operation_id] = azure_native.apimanagement.ApiOperation(
                f"{name}-op-{operation.operation_id}",
                operation_id=operation.operation_id,
                api_id=self.api.name,
                service_name=self.service.name,
                resource_group_name=args.resource_group_name,
                display_name=f"{operation.method} {operation.url_template}",
                method=operation.method,
                url_template=operation.url_template,
                template_parameters=[azure_native.apimanagement.ParameterContractArgs(
                    name=p, type="string", required=True) for p in operation.parameters],
                opts=child,
            )
        # rawxml: the renderer's output goes in byte for byte (policy expressions such as @(...) are not
        # re-escaped), so what was reviewed and golden-tested is what APIM runs.
        self.api_policy = azure_native.apimanagement.ApiPolicy(
            f"{name}-policy",
            api_id=self.api.name,
            policy_id="policy",
            service_name=self.service.name,
            resource_group_name=args.resource_group_name,
            format="rawxml",
            value=args.api_policy_xml,
            opts=child,
        )
        for operation in operations:
            xml = args.operation_policy_xml.get(operation.route_key)
            if xml is None:
                continue
            azure_native.apimanagement.ApiOperationPolicy(
                f"{name}-op-policy-{operation.operation_id}",
                api_id=self.api.name,
                operation_id=self.operations[operation.operation_id].name,
                policy_id="policy",
                service_name=self.service.name,
                resource_group_name=args.resource_group_name,
                format="rawxml",
                value=xml,
                opts=child,
            )
        self.gateway_url = pulumi.Output.concat(self.service.gateway_url, "/", args.api_path)
        self.register_outputs({"gateway_url": self.gateway_url, "api_id": self.api.name})
