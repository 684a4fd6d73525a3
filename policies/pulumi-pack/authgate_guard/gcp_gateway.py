"""GCP API Gateway: every operation in an ApiConfig's OpenAPI document must require a JWT from a declared issuer."""
from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

import yaml
from pulumi_policy import ReportViolation, ResourceValidationArgs

from authgate_guard.props import as_list, get_path, is_type

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch")
# Policy config: operations the platform team has decided may be called without a token, as "METHOD /path".
PUBLIC_OPERATIONS_KEY = "publicOperations"


def parse_openapi_contents(contents: str) -> Mapping[str, Any]:
    """Decode the base64 `contents` of an ApiConfig document (JSON or YAML); ValueError when it is neither."""
    try:
        text = base64.b64decode(contents, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError(f"contents is not base64-encoded UTF-8 ({exc})") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"contents is neither JSON nor YAML ({exc})") from None
    if not isinstance(document, Mapping):
        raise ValueError("contents is not an OpenAPI document (expected an object at the top level)")
    return document


def _scheme_problem(name: str, definitions: Mapping[str, Any]) -> str | None:
    scheme = definitions.get(name)
    if not isinstance(scheme, Mapping):
        return f"security requirement {name!r} names no securityDefinitions entry"
    if scheme.get("type") == "apiKey":
        return f"security definition {name!r} is an API key, which identifies a project, not a caller"
    if not scheme.get("x-google-issuer") or not (scheme.get("x-google-jwks_uri") or scheme.get("x-google-audiences")):
        return (f"security definition {name!r} is not a JWT issuer: it needs x-google-issuer and "
                f"x-google-jwks_uri (and x-google-audiences)")
    return None


def operation_security_problems(document: Mapping[str, Any], public_operations=()) -> list[str]:
    """One message per operation that a caller could reach without a JWT the gateway verifies."""
    allowed_public = {str(op).strip() for op in public_operations}
    definitions = document.get("securityDefinitions") or {}
    default_security = document.get("security")
    problems: list[str] = []
    paths = document.get("paths") or {}
    for path, item in paths.items():
        if not isinstance(item, Mapping):
            continue
        for method in HTTP_METHODS:
            operation = item.get(method)
            if not isinstance(operation, Mapping):
                continue
            label = f"{method.upper()} {path}"
            security = operation.get("security", default_security)
            alternatives = as_list(security)
            if not alternatives:
                if label not in allowed_public:
                    problems.append(f"{label} has no security requirement, so the gateway lets anonymous callers "
                                    f"through; require an issuer, or list it in the policy pack's "
                                    f"{PUBLIC_OPERATIONS_KEY} if it is meant to be public")
                continue
            for alternative in alternatives:
                if not isinstance(alternative, Mapping) or not alternative:
                    problems.append(f"{label} lists an empty security alternative ({{}}), which allows anonymous "
                                    f"callers")
                    continue
                for name in alternative:
                    problem = _scheme_problem(name, definitions)
                    if problem:
                        problems.append(f"{label}: {problem}")
    return problems


def validate_api_config(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Resource rule for gcp:apigateway/apiConfig:ApiConfig."""
    if not is_type(args.resource_type, "gcp:apigateway/apiConfig", "ApiConfig"):
        return
    public_operations = as_list(args.get_config().get(PUBLIC_OPERATIONS_KEY))
    documents = as_list(args.props.get("openapiDocuments"))
    if not documents:
        report_violation(f"API Gateway config {args.name} has no OpenAPI document to check (gRPC configs are not "
                         f"supported by authgate)", None)
        return
    for index, entry in enumerate(documents):
        contents = get_path(entry, "document", "contents")
        path = get_path(entry, "document", "path") or f"openapiDocuments[{index}]"
        if not isinstance(contents, str):
            report_violation(f"API Gateway config {args.name}: {path} has no contents", None)
            continue
        try:
            document = parse_openapi_contents(contents)
        except ValueError as exc:
            report_violation(f"API Gateway config {args.name}: {path}: {exc}", None)
            continue
        for problem in operation_security_problems(document, public_operations):
            report_violation(f"API Gateway config {args.name} ({path}): {problem}", None)
