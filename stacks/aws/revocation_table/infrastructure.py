"""The shared revocation table: the denylist every authorizer instance reads and the DPoP replay records every
instance writes (lambdas/validation/dynamodb_store.py is the code that reads and writes it).

On-demand capacity (a revocation storm must not be throttled into "cannot tell", which fails closed), TTL on
`expires_at` (entries outlive no token they could refuse), point-in-time recovery, and encryption with a customer
managed key that rotates. Grants are by role and by key prefix (dynamodb:LeadingKeys): an authorizer reads any entry
and writes only DPoP replay records ("dpop:..."); the back-channel logout endpoint writes denylist entries and its
own logout-token records; neither may delete, update or scan.
"""
from __future__ import annotations

from aws_cdk import RemovalPolicy, aws_dynamodb as dynamodb, aws_iam as iam, aws_kms as kms
from constructs import Construct

from lambdas.validation.dynamodb_store import PARTITION_KEY, TTL_ATTRIBUTE
from lambdas.validation.possession import ENV_DENYLIST_TABLE
from stacks.aws.nag import acknowledge_nag

# Key prefixes as lambdas/validation writes them (denylist.entry_key, dpop.py, logout_token.py).
AUTHORIZER_WRITES = ("dpop:*",)
LOGOUT_WRITES = ("sid|*", "sub|*", "jti|*", "logout:*")


def needs_revocation_table(plan) -> bool:
    """Whether an API's authorizer needs the shared table: DPoP replay records or denylist reads (an ApiPlan)."""
    return plan.needs_shared_store


class RevocationTable(Construct):
    def __init__(self, scope: Construct, id_: str, *, removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
                 table_name: str | None = None) -> None:
        """table_name  a fixed physical name, for readers configured outside CloudFormation (the in-cluster
                    forward-auth manifests, written at synth, must name the table literally); else generated."""
        super().__init__(scope, id_)
        self.physical_name = table_name
        self.key = kms.Key(self, "Key", enable_key_rotation=True, removal_policy=removal_policy,
                           description="authgate revocation table (denylist and DPoP replay records)")
        self.table = dynamodb.Table(
            self, "Table", partition_key=dynamodb.Attribute(name=PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST, time_to_live_attribute=TTL_ATTRIBUTE,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED, encryption_key=self.key,
            removal_policy=removal_policy, table_name=table_name)

    @property
    def environment(self) -> dict[str, str]:
        """What a function reading the table needs in its environment."""
        return {ENV_DENYLIST_TABLE: self.table.table_name}

    def grant_authorizer(self, role: iam.IRole) -> None:
        """Read any entry (BatchGetItem), write DPoP replay records only."""
        self._grant(role, "Read", ["dynamodb:BatchGetItem"], None)
        self._grant(role, "WriteReplay", ["dynamodb:PutItem"], AUTHORIZER_WRITES)
        self._grant_key(role)

    def grant_logout_endpoint(self, role: iam.IRole) -> None:
        """Write denylist entries and logout-token replay records."""
        self._grant(role, "WriteDenylist", ["dynamodb:PutItem"], LOGOUT_WRITES)
        self._grant_key(role)

    def _grant_key(self, role: iam.IRole) -> None:
        """Use of the table's key, which DynamoDB needs to read and write its items. With the role in another stack
        (the stage's shared table) CDK writes the grant into the role's policy, where cdk-nag sees the action
        wildcards of KMS's own grant set; they are on this one key's ARN only."""
        self.key.grant_encrypt_decrypt(role)
        for action in ("kms:ReEncrypt*", "kms:GenerateDataKey*"):
            acknowledge_nag(role, f"AwsSolutions-IAM5[Action::{action}]",
                            f"{action} is KMS's encrypt/decrypt grant set for the revocation table's own key (its ARN "
                            "is the only resource); DynamoDB uses it to encrypt and decrypt the table's items")

    def _grant(self, role: iam.IRole, sid: str, actions: list[str], prefixes: tuple[str, ...] | None) -> None:
        conditions = None
        if prefixes is not None:
            conditions = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": list(prefixes)}}
        role.add_to_principal_policy(iam.PolicyStatement(
            sid=f"Revocation{sid}", actions=actions, resources=[self.table.table_arn], conditions=conditions))
