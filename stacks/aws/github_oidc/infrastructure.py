"""GitHub Actions OIDC federation: the token.actions.githubusercontent.com provider and a role whose trust names
one repository and one ref (or one deployment environment) exactly."""
from __future__ import annotations

import re
from collections.abc import Sequence

from aws_cdk import Duration, aws_iam as iam
from constructs import Construct

from stacks.aws.refusals import UnsupportedConfiguration

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
GITHUB_ISSUER_HOST = "token.actions.githubusercontent.com"
STS_AUDIENCE = "sts.amazonaws.com"
REPOSITORY = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}")
REF = re.compile(r"refs/(heads|tags)/[^\s*?\[\]~^:\\]+")
ENVIRONMENT = re.compile(r"[^\s*?:]{1,255}")


def github_subject(repository: str, *, ref: str | None = None, environment: str | None = None) -> str:
    """The `sub` GitHub puts in the job's token for a ref or a deployment environment; wildcards refused."""
    if not REPOSITORY.fullmatch(repository or ""):
        raise UnsupportedConfiguration(f"repository {repository!r} must be OWNER/NAME (no wildcards)")
    if (ref is None) == (environment is None):
        raise UnsupportedConfiguration("give exactly one of ref (e.g. refs/heads/main) or environment "
                                       "(a GitHub deployment environment name)")
    if ref is not None:
        if not REF.fullmatch(ref):
            raise UnsupportedConfiguration(f"ref {ref!r} must be a full ref like refs/heads/main or refs/tags/v1 "
                                           "(no wildcards: any branch could then assume the role)")
        return f"repo:{repository}:ref:{ref}"
    if not ENVIRONMENT.fullmatch(environment):
        raise UnsupportedConfiguration(f"environment {environment!r} is not a usable environment name")
    return f"repo:{repository}:environment:{environment}"


class GithubActionsRole(Construct):
    """A role GitHub Actions jobs of one repository and ref assume with AssumeRoleWithWebIdentity.

    provider_arn  the account's existing GitHub OIDC provider (an account holds one per issuer URL); omitted,
                  the provider is created here
    """

    def __init__(self, scope: Construct, id_: str, *, repository: str, ref: str | None = "refs/heads/main",
                 environment: str | None = None, provider_arn: str | None = None,
                 managed_policies: Sequence[iam.IManagedPolicy] = (),
                 max_session_duration: Duration = Duration.hours(1)) -> None:
        super().__init__(scope, id_)
        self.subject = github_subject(repository, ref=None if environment else ref, environment=environment)
        if provider_arn:
            self.provider = iam.OidcProviderNative.from_oidc_provider_arn(self, "Provider", provider_arn)
        else:
            self.provider = iam.OidcProviderNative(self, "Provider", url=GITHUB_ISSUER, client_ids=[STS_AUDIENCE])
        self.role = iam.Role(
            self, "Role", max_session_duration=max_session_duration, managed_policies=list(managed_policies),
            description=f"GitHub Actions: {self.subject}",
            assumed_by=iam.WebIdentityPrincipal(self.provider.oidc_provider_arn, conditions={"StringEquals": {
                f"{GITHUB_ISSUER_HOST}:aud": STS_AUDIENCE, f"{GITHUB_ISSUER_HOST}:sub": self.subject}}))
