"""The Azure stack: APIM for one policy API (+ Entra registrations, App Service EasyAuth, AKS workload identity)."""
from __future__ import annotations

from typing import Any

import pulumi
import pulumi_azure_native as azure_native

from stacks.azure.aks import AksWorkloadIdentity, AksWorkloadIdentityArgs, WorkloadIdentityBinding
from stacks.azure.aks_forward_auth import AksForwardAuth, AksForwardAuthArgs
from stacks.azure.apim import ApimGateway, ApimGatewayArgs
from stacks.azure.audit_alerts import LOG_SOURCES, AuditLogAlerts, AuditLogAlertsArgs
from stacks.azure.easy_auth import AppServiceEasyAuth, AppServiceEasyAuthArgs, check_excluded_paths
from stacks.azure.entra import (EntraApi, EntraApiArgs, EntraDaemonClient, EntraDaemonClientArgs, EntraSpaClient,
                                EntraSpaClientArgs, check_redirect_uris)
from stacks.pulumi_program.settings import (THRESHOLD_FIELDS, ConfigSource, StackConfigError, alarm_thresholds,
                                            checked, field_of, unknown_fields)


def entra_permissions(policy, api_name: str) -> tuple[list[str], list[str]]:
    """The scopes and app roles the API's routes require from Entra issuers, in policy order, each once."""
    api = policy.api(api_name)
    scopes: dict[str, None] = {}
    roles: dict[str, None] = {}
    for route in api.routes.values():
        if not any(policy.issuers[name].profile == "entra" for name in route.issuers):
            continue
        for value in (*route.scopes, *route.scopes_all):
            scopes.setdefault(value, None)
        for value in (*route.roles, *route.roles_all):
            roles.setdefault(value, None)
    return list(scopes), list(roles)


def public_paths(policy, api_name: str) -> list[str]:
    """Literal paths of public routes (EasyAuth exclusions match exact paths only)."""
    paths: dict[str, None] = {}
    for key, route in policy.api(api_name).routes.items():
        path = key.split(" ", 1)[1]
        if route.public and "{" not in path:
            paths.setdefault(path, None)
    return list(paths)


def _apim(value: dict[str, Any], policy, api_name: str, resource_group, location: str, *,
          in_cluster: bool = False) -> ApimGatewayArgs:
    from stacks.policy.render.apim import render_apim, render_apim_operations

    key = "authgate:apim"
    unknown_fields(value, key, ("serviceName", "publisherEmail", "publisherName", "sku", "backendUrl", "path"))
    try:
        api_xml = render_apim(policy, api_name)
        operation_xml = render_apim_operations(policy, api_name)
    except ValueError as exc:
        if in_cluster:
            # authgate:aks.inCluster can serve it: then APIM is the part to drop, not the routes.
            raise StackConfigError("authgate:apim", f"API {api_name!r} cannot be served by APIM ({exc}); "
                                   f"authgate:aks.inCluster serves it, so remove authgate:apim from this stack",
                                   "", command="pulumi config rm authgate:apim") from None
        raise StackConfigError("authgate:api", f"API {api_name!r} cannot be served by APIM: {exc}", api_name) \
            from None
    return checked(key, lambda: ApimGatewayArgs(
        resource_group_name=resource_group,
        location=location,
        service_name=field_of(value, key, "serviceName", str, example="acme-apis"),
        publisher_email=field_of(value, key, "publisherEmail", str, example="platform@example.com"),
        publisher_name=field_of(value, key, "publisherName", str, example="'Acme platform team'"),
        sku_name=field_of(value, key, "sku", str, example="Consumption", required=False, default="Consumption"),
        backend_url=field_of(value, key, "backendUrl", str, example="https://orders.internal.example.com"),
        api_name=api_name,
        api_path=field_of(value, key, "path", str, example=api_name, required=False, default=api_name),
        display_name=policy.api(api_name).title,
        route_keys=list(policy.api(api_name).routes),
        api_policy_xml=api_xml,
        operation_policy_xml=operation_xml,
    ))


def _entra(value: dict[str, Any], policy, api_name: str) -> tuple[EntraApiArgs, list[str], list[str], list[str]]:
    """The API registration's args, and the SPA redirect URIs, SPA scopes and daemon roles (all checked)."""
    key = "authgate:entra"
    unknown_fields(value, key, ("displayName", "authority", "identifierUri", "extraScopes", "spaRedirectUris",
                                "spaScopes", "daemonRoles"))
    scopes, roles = entra_permissions(policy, api_name)
    scopes += [s for s in field_of(value, key, "extraScopes", list, example="orders.read", required=False,
                                   default=[]) if s not in scopes]
    api_args = checked(key, lambda: EntraApiArgs(
        api_name=api_name,
        display_name=field_of(value, key, "displayName", str, example=f"'{api_name} API'", required=False,
                              default=policy.api(api_name).title or f"{api_name} API"),
        scopes=scopes, app_roles=roles,
        identifier_uri=field_of(value, key, "identifierUri", str, example=f"api://{api_name}", required=False),
        authority=field_of(value, key, "authority", str, example="entra", required=False, default="entra"),
    ))
    redirect_uris = field_of(value, key, "spaRedirectUris", list, example="https://app.example.com/cb",
                             required=False, default=[])
    checked(f"{key}.spaRedirectUris", lambda: check_redirect_uris(redirect_uris, "spaRedirectUris"))
    spa_scopes = field_of(value, key, "spaScopes", list, example=scopes[0] if scopes else "orders.read",
                          required=False, default=scopes)
    daemon_roles = field_of(value, key, "daemonRoles", list, example=roles[0] if roles else "Orders.Sync",
                            required=False, default=[])
    for name, wanted, defined in (("spaScopes", spa_scopes, scopes), ("daemonRoles", daemon_roles, roles)):
        unknown = [v for v in wanted if v not in defined]
        if unknown:
            raise StackConfigError(f"{key}.{name}", f"{unknown} are not defined by the API registration (it "
                                   f"defines {defined}; add scopes with extraScopes)", defined[0] if defined else "...",
                                   set_key=f"{key}.{name}[0]")
    return api_args, redirect_uris, spa_scopes, daemon_roles


def _aks(value: dict[str, Any], resource_group_name: str, location: str) -> AksWorkloadIdentityArgs:
    key = "authgate:aks"
    unknown_fields(value, key, ("clusterName", "nodeCount", "nodeVmSize", "kubernetesVersion", "workloads",
                                "inCluster"))
    raw_workloads = value.get("workloads")
    if not isinstance(raw_workloads, list) or not raw_workloads:
        raise StackConfigError(f"{key}.workloads", "must list the service accounts to federate", "orders",
                               set_key=f"{key}.workloads[0].namespace")
    workloads = []
    for index, raw in enumerate(raw_workloads):
        item_key = f"{key}.workloads[{index}]"
        if not isinstance(raw, dict):
            raise StackConfigError(item_key, "must be a mapping", "orders", set_key=f"{item_key}.namespace")
        unknown_fields(raw, item_key, ("namespace", "serviceAccount", "identityName"))
        workloads.append(checked(item_key, lambda: WorkloadIdentityBinding(
            namespace=field_of(raw, item_key, "namespace", str, example="orders"),
            service_account=field_of(raw, item_key, "serviceAccount", str, example="orders-api"),
            identity_name=field_of(raw, item_key, "identityName", str, example="orders-api-identity"),
        )))
    return checked(key, lambda: AksWorkloadIdentityArgs(
        resource_group_name=resource_group_name, location=location,
        cluster_name=field_of(value, key, "clusterName", str, example="authgate-aks"),
        node_count=field_of(value, key, "nodeCount", int, example="2", required=False, default=2),
        node_vm_size=field_of(value, key, "nodeVmSize", str, example="Standard_D2s_v5", required=False,
                              default="Standard_D2s_v5"),
        kubernetes_version=field_of(value, key, "kubernetesVersion", str, example="1.31", required=False),
        workloads=workloads,
    ))


def _aks_in_cluster(value: dict[str, Any], policy, api_name: str):
    """authgate:aks.inCluster: the forward-auth service and the gateway's configuration for the cluster."""
    from stacks.policy.render.in_cluster import render_front_door

    key = "authgate:aks.inCluster"
    unknown_fields(value, key, ("image", "backend", "gateway", "namespace", "gatewayNamespace", "gatewayName",
                                "gatewayPort", "selector", "clientId", "trustedProxies", "publicOrigin",
                                "redisUrl"))
    selector = field_of(value, key, "selector", dict, example='{"app": "orders"}', required=False)
    return checked(key, lambda: _in_cluster_names(lambda: render_front_door(
        policy, api_name,
        image=field_of(value, key, "image", str, example="acme.azurecr.io/authgate-forward-auth@sha256:<digest>"),
        backend=field_of(value, key, "backend", str, example="orders.shop:8080"),
        gateway=field_of(value, key, "gateway", str, example="nginx", required=False, default="nginx"),
        namespace=field_of(value, key, "namespace", str, example="authgate", required=False, default="authgate"),
        gateway_namespace=field_of(value, key, "gatewayNamespace", str, example="ingress", required=False,
                                   default="ingress"),
        gateway_name=field_of(value, key, "gatewayName", str, example="authgate", required=False,
                              default="authgate"),
        gateway_port=field_of(value, key, "gatewayPort", int, example="8080", required=False, default=8080),
        selector=selector, aks_client_id=field_of(value, key, "clientId", str, example="<managed identity client "
                                                  "id>", required=False),
        trusted_proxies=field_of(value, key, "trustedProxies", str, example="10.244.0.0/16", required=False),
        public_origin=field_of(value, key, "publicOrigin", str, example="https://api.example.com",
                               required=False),
        # The replicas' shared store (denylist, DPoP replay records), for APIs that need one: Azure Managed Redis
        # or any Redis the pods reach over TLS; its password in the Secret authgate-forward-auth-redis.
        redis_url=field_of(value, key, "redisUrl", str, example="rediss://orders.westeurope.redis.azure.net:10000/0",
                           required=False), cluster="aks")))


def _in_cluster_names(render):
    """The renderer's refusals speak of its command-line options; here they are this section's fields."""
    try:
        return render()
    except ValueError as exc:
        text = str(exc)
        for option, name in (("--redis-url", "redisUrl"), ("--trusted-proxies", "trustedProxies"),
                             ("--public-origin", "publicOrigin"), ("--aks-client-id", "clientId")):
            text = text.replace(option, f"authgate:aks.inCluster.{name}")
        raise ValueError(text) from None


def _monitoring(value: dict[str, Any], api_name: str, resource_group_name: str, location: str) -> AuditLogAlertsArgs:
    key = "authgate:monitoring"
    unknown_fields(value, key, ("workspaceId", "source", "actionGroups", *THRESHOLD_FIELDS))
    thresholds = alarm_thresholds(value, key)
    return checked(key, lambda: AuditLogAlertsArgs(
        api_name=api_name, resource_group_name=resource_group_name, location=location, thresholds=thresholds,
        workspace_id=field_of(value, key, "workspaceId", str, example=(
            "/subscriptions/<id>/resourceGroups/rg-logs/providers/Microsoft.OperationalInsights/workspaces/logs")),
        source=field_of(value, key, "source", str, example=" | ".join(LOG_SOURCES), required=False,
                        default="ContainerLogV2"),
        action_groups=field_of(value, key, "actionGroups", list, example=(
            "/subscriptions/<id>/resourceGroups/rg-ops/providers/Microsoft.Insights/actionGroups/oncall"),
            required=False, default=[])))


def build_azure_stack(source: ConfigSource, policy, api_name: str) -> None:
    location = source.text("authgate:location", example="westeurope")
    resource_group_name = source.text("authgate:resourceGroup", example="rg-authgate-dev")
    apim_example = ('{"serviceName": "acme-apis", "publisherEmail": "platform@example.com", "publisherName": "Acme", '
                    '"backendUrl": "https://orders.internal.example.com"}')
    apim_value = source.object("authgate:apim", example=apim_example)
    entra_value = source.object("authgate:entra", example='{"spaRedirectUris": ["https://app.example.com/cb"]}')
    app_service_value = source.object("authgate:appService", example='{"name": "orders-app"}')
    aks_value = source.object("authgate:aks", example=(
        '{"clusterName": "authgate-aks", "workloads": [{"namespace": "orders", "serviceAccount": "orders-api", '
        '"identityName": "orders-api"}]}'))
    monitoring_value = source.object("authgate:monitoring", example=(
        '{"workspaceId": "/subscriptions/<id>/resourceGroups/rg-logs/providers/Microsoft.OperationalInsights/'
        'workspaces/logs"}'))

    # Check every section before registering any resource: a bad key must not leave a half-built stack.
    served_in_cluster = isinstance(aks_value, dict) and aks_value.get("inCluster") is not None
    if apim_value is None and not served_in_cluster:
        # The API needs a gateway: APIM, or the AKS cluster's own (the forward-auth service decides every request,
        # which is also where routes APIM cannot enforce, freshness and proof, are served).
        raise StackConfigError("authgate:apim", "is required unless authgate:aks.inCluster serves the API",
                               f"'{apim_example}'")
    apim_args = (_apim(apim_value, policy, api_name, resource_group_name, location, in_cluster=served_in_cluster)
                 if apim_value is not None else None)
    entra = _entra(entra_value, policy, api_name) if entra_value is not None else None
    app_service = None
    if app_service_value is not None:
        key = "authgate:appService"
        if entra is None:
            raise StackConfigError(key, "EasyAuth needs the API's Entra registration; configure authgate:entra too",
                                   "'Orders API'", set_key="authgate:entra.displayName")
        unknown_fields(app_service_value, key, ("name", "resourceGroup"))
        app_service = (
            field_of(app_service_value, key, "name", str, example="orders-app"),
            field_of(app_service_value, key, "resourceGroup", str, example="rg-apps", required=False,
                     default=resource_group_name),
        )
        checked(key, lambda: check_excluded_paths(public_paths(policy, api_name)))
    aks_args = _aks(aks_value, resource_group_name, location) if aks_value is not None else None
    in_cluster = None
    if aks_value is not None and aks_value.get("inCluster") is not None:
        if not isinstance(aks_value["inCluster"], dict):
            raise StackConfigError("authgate:aks.inCluster", "must be a mapping", "nginx",
                                   set_key="authgate:aks.inCluster.gateway")
        in_cluster = _aks_in_cluster(aks_value["inCluster"], policy, api_name)
    monitoring_args = (_monitoring(monitoring_value, api_name, resource_group_name, location)
                       if monitoring_value is not None else None)

    resource_group = azure_native.resources.ResourceGroup(
        "resource-group", resource_group_name=resource_group_name, location=location)
    after_group = pulumi.ResourceOptions(depends_on=[resource_group])
    if apim_args is not None:
        apim = ApimGateway(api_name, apim_args, opts=after_group)
        pulumi.export("apimGatewayUrl", apim.gateway_url)
    if monitoring_args is not None:
        AuditLogAlerts(f"{api_name}-alerts", monitoring_args, opts=after_group)

    if entra is not None:
        api_args, redirect_uris, spa_scopes, daemon_roles = entra
        entra_api = EntraApi(f"{api_name}-entra", api_args)
        # The policy's Entra issuer must name these: put them in the policy file (issuer, audiences).
        pulumi.export("entraIssuer", entra_api.issuer)
        pulumi.export("entraAudience", entra_api.client_id)
        if redirect_uris:
            spa = EntraSpaClient(f"{api_name}-spa", EntraSpaClientArgs(
                display_name=f"{api_name} web", api=entra_api, redirect_uris=redirect_uris, scopes=spa_scopes))
            pulumi.export("entraSpaClientId", spa.client_id)
        if daemon_roles:
            daemon = EntraDaemonClient(f"{api_name}-daemon", EntraDaemonClientArgs(
                display_name=f"{api_name} daemon", api=entra_api, app_roles=daemon_roles))
            pulumi.export("entraDaemonClientId", daemon.client_id)
        if app_service is not None:
            web_app_name, web_app_group = app_service
            AppServiceEasyAuth(f"{api_name}-easyauth", AppServiceEasyAuthArgs(
                resource_group_name=web_app_group, web_app_name=web_app_name,
                client_id=entra_api.client_id, open_id_issuer=entra_api.issuer,
                allowed_audiences=[entra_api.client_id, entra_api.identifier_uri],
                excluded_paths=public_paths(policy, api_name)))
            pulumi.export("appServiceUnauthenticatedAction", "Return401")

    if aks_args is not None:
        aks = AksWorkloadIdentity("aks", aks_args, opts=after_group)
        pulumi.export("aksOidcIssuerUrl", aks.oidc_issuer_url)
        pulumi.export("aksWorkloadClientIds", {name: identity.client_id for name, identity in aks.identities.items()})
        if in_cluster is not None:
            AksForwardAuth("aks-front-door", AksForwardAuthArgs(
                resource_group_name=resource_group_name, cluster_name=aks.cluster.name, manifests=in_cluster.all),
                opts=pulumi.ResourceOptions(depends_on=[aks]))
            if in_cluster.mesh_config is not None:
                pulumi.export("istioMeshConfig", in_cluster.mesh_config)
