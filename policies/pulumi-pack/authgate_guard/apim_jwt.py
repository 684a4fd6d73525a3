"""APIM: every API must validate a JWT on every path through its inbound policy (validate-jwt / validate-azure-ad-token)."""
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
# The elements that decide whether a request can reach the backend without a token check. Attribute values are
# skipped whole (quoted), since rawxml conditions may hold C# with '<' and '>' in them; other elements are ignored.
_FLOW_TAG = re.compile(r"<(/?)(choose|when|otherwise|validate-jwt|validate-azure-ad-token|return-response|set-status"
                       r"|base)(?=[\s/>])((?:[^>\"']|\"[^\"]*\"|'[^']*')*?)(/?)>")
_STATUS_CODE = re.compile(r"""\bcode\s*=\s*["']\s*(\d{3})\s*["']""")
REFUSING_STATUSES = ("401", "403")


class _Node:
    def __init__(self, tag: str, attributes: str) -> None:
        self.tag, self.attributes, self.children = tag, attributes, []


def _flow_tree(inbound: str) -> list[_Node] | None:
    """The inbound section as a tree of the flow elements only; None when their tags do not nest."""
    root = _Node("inbound", "")
    stack = [root]
    for closing, tag, attributes, self_closing in _FLOW_TAG.findall(inbound):
        if closing:
            if len(stack) == 1 or stack[-1].tag != tag:
                return None
            stack.pop()
            continue
        node = _Node(tag, attributes)
        stack[-1].children.append(node)
        if not self_closing:
            stack.append(node)
    return root.children if len(stack) == 1 else None


def _unguarded(nodes: list[_Node], *, base_counts: bool) -> str | None:
    """Why a request can get through this sequence of policy elements with no token check, or None when one of them
    validates a token (or, in an operation, inherits the API's check) or refuses the request outright."""
    reasons = []
    for node in nodes:
        if node.tag in JWT_ELEMENTS or (base_counts and node.tag == "base"):
            return None
        if node.tag == "return-response":
            codes = [_STATUS_CODE.search(c.attributes) for c in node.children if c.tag == "set-status"]
            if any(c and c.group(1) in REFUSING_STATUSES for c in codes):
                return None
            reasons.append("a <return-response> answers without a 401 or 403 <set-status>")
        elif node.tag == "choose":
            reason = _unguarded_choose(node, base_counts=base_counts)
            if reason is None:
                return None
            reasons.append(reason)
    return reasons[0] if reasons else "no element checks a token"


def _unguarded_choose(choose: _Node, *, base_counts: bool) -> str | None:
    branches = [b for b in choose.children if b.tag in ("when", "otherwise")]
    for index, branch in enumerate(branches):
        reason = _unguarded(branch.children, base_counts=base_counts)
        if reason is not None:
            which = "its <otherwise>" if branch.tag == "otherwise" else f"its <when> number {index + 1}"
            return f"in a <choose>, {which} lets requests through unchecked ({reason})"
    if not any(b.tag == "otherwise" for b in branches):
        return ("a <choose> validates tokens only in its <when> branches and has no <otherwise>, so a request whose "
                "token matches no condition reaches the backend unchecked; add <otherwise> with <return-response> "
                "and <set-status code=\"401\" />")
    return None


def _inbound_problem(inbound: str, *, base_counts: bool) -> str | None:
    """Why the inbound section lets a request reach the backend without a token check, or None."""
    tree = _flow_tree(inbound)
    if tree is None:
        return "its <choose>/<when>/<otherwise> elements do not nest, so the token check cannot be followed"
    reason = _unguarded(tree, base_counts=base_counts)
    if reason is None:
        return None
    return (f"the token check in <inbound> can be bypassed: {reason}. `authgate render apim` renders an <otherwise> "
            f"that returns 401")


def jwt_validation_problem(value: Any, policy_format: Any) -> str | None:
    """Why a policy document does not validate JWTs on the way in, or None when it does.

    rawxml policies may hold C# expressions that are not well-formed XML, so the check reads the text: comments are
    dropped (a commented-out validate-jwt protects nothing), then a validate-jwt element must sit inside <inbound>,
    unconditionally or in a <choose> whose every branch validates a token or refuses the request (an <otherwise>
    returning 401/403): a <choose> with no <otherwise>, or one that falls through, passes tokens it does not match.
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
    return _inbound_problem(inbound.group(1), base_counts=False)


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
    if not (_JWT_ELEMENT.search(inbound.group(1)) or _BASE.search(inbound.group(1))):
        return ("its <inbound> neither inherits the API policy (<base />) nor validates a token, so callers reach "
                "the backend without one")
    return _inbound_problem(inbound.group(1), base_counts=True)


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
