"""Cloud Run: no service may be invokable by allUsers or allAuthenticatedUsers, by IAM grant or by switching IAM off."""
from __future__ import annotations

import json
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs

from authgate_guard.props import as_list, get_path, is_type

PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")
_MEMBER_TYPES = (("gcp:cloudrun/iamMember", "IamMember"), ("gcp:cloudrunv2/serviceIamMember", "ServiceIamMember"))
_BINDING_TYPES = (("gcp:cloudrun/iamBinding", "IamBinding"), ("gcp:cloudrunv2/serviceIamBinding", "ServiceIamBinding"))
_POLICY_TYPES = (("gcp:cloudrun/iamPolicy", "IamPolicy"), ("gcp:cloudrunv2/serviceIamPolicy", "ServiceIamPolicy"))
_INVOKER_IAM_ANNOTATION = "run.googleapis.com/invoker-iam-disabled"
_FIX = ("a gateway-fronted backend must be invokable only by the gateway's service account (or IAP's service "
        "agent); remove the grant")


def _any_type(resource_type: str, types) -> bool:
    return any(is_type(resource_type, module, name) for module, name in types)


def _public(members: Any) -> list[str]:
    return [m for m in as_list(members) if m in PUBLIC_MEMBERS]


def validate_cloud_run_not_public(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props, typ = args.props, args.resource_type
    found: list[str] = []
    if _any_type(typ, _MEMBER_TYPES):
        found = _public(props.get("member"))
    elif _any_type(typ, _BINDING_TYPES):
        found = _public(props.get("members"))
    elif _any_type(typ, _POLICY_TYPES):
        policy_data = props.get("policyData")
        try:
            bindings = json.loads(policy_data).get("bindings", []) if isinstance(policy_data, str) else []
        except (json.JSONDecodeError, AttributeError):
            report_violation(f"Cloud Run IAM policy {args.name}: policyData is not a JSON IAM policy", None)
            return
        for binding in bindings:
            found.extend(_public(binding.get("members")))
    elif is_type(typ, "gcp:cloudrunv2/service", "Service"):
        if props.get("invokerIamDisabled") is True:
            report_violation(f"Cloud Run service {args.name} sets invokerIamDisabled, so anyone who can reach it "
                             f"may invoke it; {_FIX}", None)
        return
    elif is_type(typ, "gcp:cloudrun/service", "Service"):
        annotations = get_path(props, "metadata", "annotations") or {}
        if str(annotations.get(_INVOKER_IAM_ANNOTATION, "")).lower() == "true":
            report_violation(f"Cloud Run service {args.name} disables the invoker IAM check "
                             f"({_INVOKER_IAM_ANNOTATION}); {_FIX}", None)
        return
    else:
        return
    for member in found:
        report_violation(f"Cloud Run IAM resource {args.name} grants {props.get('role') or 'a role'} to {member}; "
                         f"{_FIX}", None)
