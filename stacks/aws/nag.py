"""The one way authgate acknowledges a cdk-nag AwsSolutions finding: on the resource, for one rule, with a reason."""
from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct

NAG_PACK = "AwsSolutions"


def acknowledge_nag(construct: IConstruct, rule: str, reason: str) -> None:
    """rule is the bare rule id ("AwsSolutions-APIG4", or "AwsSolutions-IAM5[Resource::*]" for one finding)."""
    if not rule.startswith(f"{NAG_PACK}-"):
        raise ValueError(f"nag rule {rule!r} is not an {NAG_PACK} rule")
    if len(reason.strip()) < 20:
        raise ValueError(f"acknowledging {rule} needs a real reason, got {reason!r}")
    Validations.of(construct).acknowledge(Acknowledgment(id=f"{NAG_PACK}::{rule}", reason=reason))
