"""The authgate guard policies, each with what it protects against; __main__ turns this list into a PolicyPack."""
from __future__ import annotations

from pulumi_policy import (EnforcementLevel, PolicyConfigSchema, ResourceValidationPolicy, Severity,
                           StackValidationPolicy)

from authgate_guard.aks_identity import validate_aks_workload_identity
from authgate_guard.apim_jwt import (PUBLIC_OPERATIONS_KEY as APIM_PUBLIC_OPERATIONS, validate_api_policy,
                                     validate_every_api_has_jwt, validate_operation_policy)
from authgate_guard.cloud_run_public import validate_cloud_run_not_public
from authgate_guard.federation import validate_federated_credential, validate_no_pool_wide_grant, validate_wif_provider
from authgate_guard.gcp_gateway import PUBLIC_OPERATIONS_KEY, validate_api_config
from authgate_guard.mesh_jwt import (validate_protected_routes_covered, validate_request_authentication_paired,
                                     validate_security_policy_enforces)

MANDATORY = EnforcementLevel.MANDATORY

POLICIES = [
    ResourceValidationPolicy(
        name="apim-api-policy-validates-jwt",
        description="An APIM API policy must validate the caller's JWT (validate-jwt) in its inbound section.",
        validate=validate_api_policy, enforcement_level=MANDATORY, severity=Severity.CRITICAL),
    ResourceValidationPolicy(
        name="apim-operation-policy-keeps-jwt",
        description="An APIM operation policy must inherit the API's validate-jwt (<base />) or validate a token "
                    "itself, unless the operation is declared public.",
        validate=validate_operation_policy, enforcement_level=MANDATORY, severity=Severity.CRITICAL,
        config_schema=PolicyConfigSchema(properties={
            APIM_PUBLIC_OPERATIONS: {
                "type": "array", "items": {"type": "string"}, "default": [],
                "description": "APIM operation ids allowed without a token (e.g. 'get-health')",
            }})),
    StackValidationPolicy(
        name="apim-api-has-validate-jwt",
        description="Every APIM API must have a JWT-validating policy (on the API, or on each of its operations).",
        validate=validate_every_api_has_jwt, enforcement_level=MANDATORY, severity=Severity.CRITICAL),
    ResourceValidationPolicy(
        name="gcp-api-gateway-operations-require-jwt",
        description="Every operation of a GCP API Gateway config must require a JWT from an x-google-issuer.",
        validate=validate_api_config, enforcement_level=MANDATORY, severity=Severity.CRITICAL,
        config_schema=PolicyConfigSchema(properties={
            PUBLIC_OPERATIONS_KEY: {
                "type": "array", "items": {"type": "string", "pattern": "^[A-Z]+ /"}, "default": [],
                "description": "Operations allowed without a token, as 'METHOD /path' (e.g. 'GET /health')",
            }})),
    ResourceValidationPolicy(
        name="cloud-run-not-public",
        description="No Cloud Run service may be invokable by allUsers or allAuthenticatedUsers.",
        validate=validate_cloud_run_not_public, enforcement_level=MANDATORY, severity=Severity.CRITICAL),
    ResourceValidationPolicy(
        name="aks-oidc-issuer-and-workload-identity",
        description="AKS clusters must enable the OIDC issuer and workload identity.",
        validate=validate_aks_workload_identity, enforcement_level=MANDATORY, severity=Severity.HIGH),
    StackValidationPolicy(
        name="istio-request-authentication-has-allow-policy",
        description="Every Istio RequestAuthentication needs an ALLOW AuthorizationPolicy over the same workloads "
                    "(alone it lets requests without a token through).",
        validate=validate_request_authentication_paired, enforcement_level=MANDATORY, severity=Severity.CRITICAL),
    ResourceValidationPolicy(
        name="envoy-gateway-security-policy-checks-tokens",
        description="An Envoy Gateway SecurityPolicy must carry jwt or extAuth.",
        validate=validate_security_policy_enforces, enforcement_level=MANDATORY, severity=Severity.CRITICAL),
    StackValidationPolicy(
        name="envoy-gateway-protected-routes-covered",
        description="Every HTTPRoute not declared public must be covered by a SecurityPolicy with jwt or extAuth.",
        validate=validate_protected_routes_covered, enforcement_level=MANDATORY, severity=Severity.CRITICAL),
    ResourceValidationPolicy(
        name="federated-credential-exact-subject",
        description="Federated identity credentials must name one exact subject, never a wildcard.",
        validate=validate_federated_credential, enforcement_level=MANDATORY, severity=Severity.CRITICAL),
    ResourceValidationPolicy(
        name="wif-provider-has-exact-condition",
        description="Workload identity pool providers must have an attribute condition pinning exact identities.",
        validate=validate_wif_provider, enforcement_level=MANDATORY, severity=Severity.CRITICAL),
    ResourceValidationPolicy(
        name="wif-no-pool-wide-grant",
        description="No IAM grant may go to every identity in a workload identity pool (principalSet .../*).",
        validate=validate_no_pool_wide_grant, enforcement_level=MANDATORY, severity=Severity.HIGH),
]
