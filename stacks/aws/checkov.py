"""The one way authgate skips a checkov check: in the resource's template Metadata, for one check, with a reason.

checkov reads `Metadata.checkov.skip` on a CloudFormation resource, so the reason travels with the template and
sits next to the resource it concerns.
"""
from __future__ import annotations

import jsii
from aws_cdk import CfnResource, IAspect, Stack
from constructs import IConstruct

CDK_PROVIDER_FUNCTION_SKIPS = {
    "CKV_AWS_115": "CDK-internal custom-resource provider, run only during deployment; a concurrency reservation "
                   "would take capacity from the account for nothing",
    "CKV_AWS_116": "CDK-internal custom-resource provider invoked synchronously by CloudFormation; a DLQ applies "
                   "to asynchronous invocations only",
    "CKV_AWS_117": "CDK-internal custom-resource provider that calls only AWS APIs during deployment",
}


def skip_checkov(construct: IConstruct, check_id: str, reason: str) -> None:
    resource = construct if isinstance(construct, CfnResource) else construct.node.default_child
    if not isinstance(resource, CfnResource):
        raise ValueError(f"{construct.node.path} has no CloudFormation resource to attach a checkov skip to")
    if not check_id.startswith("CKV") or len(reason.strip()) < 20:
        raise ValueError(f"skipping {check_id!r} needs a checkov id and a real reason")
    existing = resource.get_metadata("checkov") or {"skip": []}
    skips = [s for s in existing.get("skip", []) if s.get("id") != check_id]
    resource.add_metadata("checkov", {"skip": [*skips, {"id": check_id, "comment": reason}]})


# Where CDK puts its own functions: custom-resource providers, and the singleton behind every AwsCustomResource (its
# fixed construct id), e.g. the one that reads a Cognito app client's generated secret at deploy time.
CDK_PROVIDER_PATH_MARKERS = ("CustomResourceProvider", "AWS679f53fac002430cb0da5b7982bd2287")


@jsii.implements(IAspect)
class CdkProviderFunctionSkips:
    """Adds the skips above to the Lambda functions CDK itself adds to a stack (custom-resource providers)."""

    def visit(self, node: IConstruct) -> None:
        if (isinstance(node, CfnResource) and node.cfn_resource_type == "AWS::Lambda::Function"
                and any(marker in node.node.path for marker in CDK_PROVIDER_PATH_MARKERS)):
            for check_id, reason in CDK_PROVIDER_FUNCTION_SKIPS.items():
                skip_checkov(node, check_id, reason)


def add_provider_function_skips(stack: Stack) -> None:
    from aws_cdk import Aspects
    Aspects.of(stack).add(CdkProviderFunctionSkips())
