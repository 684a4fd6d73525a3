"""The bucket an application load balancer writes its access logs to: private, TLS-only, SSE-S3, expiring."""
from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, aws_s3 as s3
from constructs import Construct

from stacks.aws.checkov import skip_checkov
from stacks.aws.nag import acknowledge_nag


def load_balancer_log_bucket(scope: Construct, id_: str, *, retention: Duration = Duration.days(365)) -> s3.Bucket:
    bucket = s3.Bucket(
        scope, id_, encryption=s3.BucketEncryption.S3_MANAGED,  # ALB log delivery supports SSE-S3 only
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL, enforce_ssl=True, versioned=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED, removal_policy=RemovalPolicy.RETAIN,
        lifecycle_rules=[s3.LifecycleRule(expiration=retention, noncurrent_version_expiration=Duration.days(30))])
    reason = ("this bucket receives a load balancer's access logs; logging access to it would need another "
              "bucket, and that one another")
    acknowledge_nag(bucket, "AwsSolutions-S1", reason)
    skip_checkov(bucket, "CKV_AWS_18", reason)
    return bucket
