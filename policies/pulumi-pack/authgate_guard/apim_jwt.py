"""APIM: every API must validate a JWT in its inbound policy (validate-jwt, or validate-azure-ad-token for Entra)."""
from __future__ import annotations

import re
from typing import Any, Callable, Iterable

from pulumi_policy import ReportViolation, ResourceValidationArgs, StackValidationArgs

from authgate_guard.props import get_path, is_type

JWT_ELEMENTS = ("validate-jwt", "validate-azure-ad-token")
INLINE_FORMATS = ("xml", "rawxml")
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_INBOUND = re.compile(r"<inbound(?:\s[^>]*)?>(.*?)</inbound\s*>", re.S)
_JWT_ELEMENT = re.compile(r"<(validate-jwt|validate-azure-ad-token)(?=[\s/>])")


def jwt_validation_problem(value: Any, policy_format: Any) -> str | None:
    """Why a policy document does not validate JWTs on the way in, or None when it does.

    rawxml policies may hold C# expressions that are not well-formed XML, so the check reads the text: comments are
    dropped (a commented-out validate-jwt protects nothing), then a validate-jwt element must sit inside <inbound>.
    """
    fmt = (policy_format or "xml")
    if fmt not in INLINE_FORMATS:
        return (f"the policy is given as {fmt!r}, so its content cannot be checked before deployment; attach it "
                f"inline with format 'rawxml' (as authgate's ApimGateway does)")
    if not isinstance(value, str) or not value.strip():
        return "the policy document is empty"
    text = _COMMENT.sub("", value)
    inbound = _INBOUND.search(text)
    if inbound is None:
        return "the policy has no <inbound> section, so requests reach the backend unchecked"
    if not _JWT_ELEMENT.search(inbound.group(1)):
        return ("the <inbound> section has no <validate-jwt> (or <validate-azure-ad-token>); render the policy with "
                "`authgate render apim` or add validate-jwt with the issuer's openid-config and audiences")
    return None


def validate_api_policy(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Resource rule: an API-level policy that does not validate JWTs fails the stack at preview."""
    if not is_type(args.resource_type, "azure-native:apimanagement", "ApiPolicy"):
        return
    problem = jwt_validation_problem(args.props.get("value"), args.props.get("format"))
    if problem:
        report_violation(f"APIM API policy {args.name}: {problem}", None)


def _api_key(resource) -> str | None:
    """The APIM API a policy or operation belongs to, from its id (".../apis/<api>/...")."""
    for source in (get_path(resource.props, "id"), resource.urn):
        if isinstance(source, str):
            match = re.search(r"/apis/([^/;]+)", source)
            if match:
                return match.group(1).split(";")[0]
    return None


def _belongs_to(candidate, api) -> bool:
    if api in candidate.dependencies or api in candidate.property_dependencies.get("apiId", []):
        return True
    api_name = get_path(api.props, "name")
    return api_name is not None and _api_key(candidate) == api_name


def validate_every_api_has_jwt(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """Stack rule: each APIM Api needs a JWT-validating API policy, or one on every one of its operations."""
    resources = list(args.resources)

    def of(name: str) -> Iterable:
        return [r for r in resources if is_type(r.resource_type, "azure-native:apimanagement", name)]

    api_policies, operations, operation_policies = of("ApiPolicy"), of("ApiOperation"), of("ApiOperationPolicy")
    for api in of("Api"):
        mine: Callable = lambda items: [r for r in items if _belongs_to(r, api)]
        if any(jwt_validation_problem(p.props.get("value"), p.props.get("format")) is None
               for p in mine(api_policies)):
            continue
        ops = mine(operations)
        covered = {id(op) for op in ops if any(
            (op in p.dependencies or op in p.property_dependencies.get("operationId", []))
            and jwt_validation_problem(p.props.get("value"), p.props.get("format")) is None
            for p in mine(operation_policies))}
        if ops and len(covered) == len(ops):
            continue
        report_violation(
            f"APIM API {api.name} has no validate-jwt: neither an API policy nor a policy on each operation "
            f"validates the caller's token, so any request reaches the backend. Attach the XML from "
            f"`authgate render apim` as an ApiPolicy (format rawxml).", api.urn)


# Policy config: APIM operation ids the platform team has decided may be called without a token.
PUBLIC_OPERATIONS_KEY = "publicOperations"
_BASE = re.compile(r"<base(?=[\s/>])")


def operation_bypass_problem(value: Any, policy_format: Any) -> str | None:
    """Why an operation policy lets a request past the API's token check, or None.

    An operation policy runs instead of the API policy; only a <base /> in its <inbound> brings the API's validate-jwt
    back. Without one, the operation must validate a token itself.
    """
    fmt = policy_format or "xml"
    if fmt not in INLINE_FORMATS:
        return f"the policy is given as {fmt!r}, so its content cannot be checked before deployment"
    text = _COMMENT.sub("", value) if isinstance(value, str) else ""
    inbound = _INBOUND.search(text)
    if inbound is None:
        return None if text.strip() == "" else "the policy has no <inbound> section"
    if _JWT_ELEMENT.search(inbound.group(1)) or _BASE.search(inbound.group(1)):
        return None
    return ("its <inbound> neither inherits the API policy (<base />) nor validates a token, so callers reach "
            "the backend without one")


def validate_operation_policy(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Resource rule: an operation policy may drop the API's validate-jwt only for an operation declared public."""
    if not is_type(args.resource_type, "azure-native:apimanagement", "ApiOperationPolicy"):
        return
    problem = operation_bypass_problem(args.props.get("value"), args.props.get("format"))
    if problem is None:
        return
    operation = args.props.get("operationId")
    if operation in set(args.get_config().get(PUBLIC_OPERATIONS_KEY) or ()):
        return
    report_violation(f"APIM operation policy {args.name} (operation {operation}): {problem}; if the operation is "
                     f"meant to be public, list {operation!r} in this policy's {PUBLIC_OPERATIONS_KEY}", None)
