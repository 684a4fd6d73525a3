"""Workload federation: every federated credential and WIF provider must pin an exact subject with a condition."""
from __future__ import annotations

import re
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs

from authgate_guard.props import as_list, is_type

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
# A Kubernetes service account subject, exactly: system:serviceaccount:<namespace>:<name>.
_K8S_SUBJECT = re.compile(r"^system:serviceaccount:[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?:"
                          r"[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")
# CEL functions that match by pattern or prefix: each turns one subject into many.
_PATTERN_FUNCTIONS = re.compile(r"\.\s*(matches|startsWith|endsWith|contains)\s*\(|\bmatches\s*\(")
_STRING_LITERAL = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_GITHUB_IDENTITY_CLAIMS = re.compile(
    r"assertion\.(repository|repository_id|repository_owner|repository_owner_id|sub|job_workflow_ref)\b"
    r"|assertion\[['\"](repository|repository_id|repository_owner|repository_owner_id|sub)['\"]\]")
_POOL_WIDE_PRINCIPAL = re.compile(r"^principalSet://iam\.googleapis\.com/.+/workloadIdentityPools/[^/]+/\*$")


def subject_problem(subject: Any, issuer: Any) -> str | None:
    """Why a federated credential's subject does not name exactly one workload, or None."""
    if not isinstance(subject, str) or not subject.strip():
        return "has no subject, so it names no workload"
    if "*" in subject or "?" in subject:
        return f"subject {subject!r} contains a wildcard; name one exact workload"
    kubernetes = subject.startswith("system:serviceaccount:") or (
        isinstance(issuer, str) and ("oic.prod-aks.azure.com" in issuer or "container.googleapis.com" in issuer))
    if kubernetes and not _K8S_SUBJECT.match(subject):
        return (f"subject {subject!r} is not exactly system:serviceaccount:<namespace>:<service account>; "
                f"a partial subject matches more service accounts than intended")
    return None


def condition_problem(condition: Any, issuer_uri: Any) -> str | None:
    """Why a WIF provider's attribute condition lets more than the intended identities in, or None."""
    if not isinstance(condition, str) or not condition.strip():
        return ("has no attribute condition, so every identity the upstream issuer can mint a token for may "
                "exchange it (for GitHub: every repository on github.com)")
    if condition.strip().lower() in ("true", "1 == 1"):
        return f"attribute condition {condition!r} is always true"
    if "==" not in condition and " in [" not in condition and " in[" not in condition:
        return f"attribute condition {condition!r} pins no claim to an exact value (use ==)"
    if _PATTERN_FUNCTIONS.search(condition):
        return f"attribute condition {condition!r} matches by pattern or prefix; compare exact values with =="
    if any("*" in literal for literal in _STRING_LITERAL.findall(condition)):
        return f"attribute condition {condition!r} compares against a wildcard"
    if issuer_uri == GITHUB_ISSUER and not _GITHUB_IDENTITY_CLAIMS.search(condition):
        return (f"attribute condition {condition!r} does not name a repository or owner, so any GitHub repository "
                f"satisfying it (e.g. any repository's main branch) may exchange tokens; add "
                f"assertion.repository == 'owner/name'")
    return None


def validate_federated_credential(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    props, typ = args.props, args.resource_type
    if is_type(typ, "azure-native:managedidentity", "FederatedIdentityCredential") or is_type(
            typ, "azuread:index/applicationFederatedIdentityCredential", "ApplicationFederatedIdentityCredential"):
        if not props.get("issuer"):
            report_violation(f"federated credential {args.name} has no issuer", None)
        problem = subject_problem(props.get("subject"), props.get("issuer"))
        if problem:
            report_violation(f"federated credential {args.name} {problem}", None)
    elif is_type(typ, "azuread:index/applicationFlexibleFederatedIdentityCredential",
                 "ApplicationFlexibleFederatedIdentityCredential"):
        expression = props.get("claimsMatchingExpression")
        if not isinstance(expression, str) or not expression.strip():
            report_violation(f"flexible federated credential {args.name} has no claims matching expression", None)
        elif "*" in expression:
            report_violation(f"flexible federated credential {args.name} matches subjects by wildcard "
                             f"({expression!r}); use a federated credential with one exact subject", None)


def validate_wif_provider(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if not is_type(args.resource_type, "gcp:iam/workloadIdentityPoolProvider", "WorkloadIdentityPoolProvider"):
        return
    oidc = args.props.get("oidc")
    issuer_uri = oidc.get("issuerUri") if oidc is not None else None
    problem = condition_problem(args.props.get("attributeCondition"), issuer_uri)
    if problem:
        report_violation(f"workload identity provider {args.name} {problem}", None)


def validate_no_pool_wide_grant(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """A grant to principalSet://.../workloadIdentityPools/<pool>/* trusts every identity the pool admits."""
    typ = args.resource_type
    if is_type(typ, "gcp:serviceaccount/iAMMember", "IAMMember") or is_type(typ, "gcp:projects/iAMMember",
                                                                           "IAMMember"):
        members = as_list(args.props.get("member"))
    elif is_type(typ, "gcp:serviceaccount/iAMBinding", "IAMBinding") or is_type(typ, "gcp:projects/iAMBinding",
                                                                               "IAMBinding"):
        members = as_list(args.props.get("members"))
    else:
        return
    for member in members:
        if isinstance(member, str) and _POOL_WIDE_PRINCIPAL.match(member):
            report_violation(f"IAM grant {args.name} gives {args.props.get('role')} to every identity in a workload "
                             f"identity pool ({member}); grant it to one attribute instead, e.g. "
                             f".../attribute.repository/owner/name", None)
