"""Pulumi components for Azure: Entra app registrations, API Management, App Service EasyAuth, AKS workload identity."""
from stacks.azure.aks import AksWorkloadIdentity, AksWorkloadIdentityArgs, WorkloadIdentityBinding
from stacks.azure.apim import ApimGateway, ApimGatewayArgs, operations_for_routes
from stacks.azure.easy_auth import AppServiceEasyAuth, AppServiceEasyAuthArgs
from stacks.azure.token_handler import TokenHandlerWebApp, TokenHandlerWebAppArgs
from stacks.azure.entra import (EntraApi, EntraApiArgs, EntraDaemonClient, EntraDaemonClientArgs, EntraSpaClient,
                                EntraSpaClientArgs)

__all__ = [
    "TokenHandlerWebApp", "TokenHandlerWebAppArgs",
    "AksWorkloadIdentity", "AksWorkloadIdentityArgs", "WorkloadIdentityBinding",
    "ApimGateway", "ApimGatewayArgs", "operations_for_routes",
    "AppServiceEasyAuth", "AppServiceEasyAuthArgs",
    "EntraApi", "EntraApiArgs", "EntraDaemonClient", "EntraDaemonClientArgs", "EntraSpaClient", "EntraSpaClientArgs",
]
