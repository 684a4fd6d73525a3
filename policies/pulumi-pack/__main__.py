"""The authgate guard policy pack: `pulumi preview --policy-pack policies/pulumi-pack` runs it against a stack."""
from pulumi_policy import EnforcementLevel, PolicyPack

from authgate_guard.pack import POLICIES

PolicyPack(name="authgate-guard", enforcement_level=EnforcementLevel.MANDATORY, policies=POLICIES)
