"""Workload Identity Federation for GitHub Actions: one repository (optionally one ref) acts as one service account."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Sequence

import pulumi
import pulumi_gcp as gcp

from stacks.gcp.naming import require_id

GITHUB_ACTIONS_ISSUER = "https://token.actions.githubusercontent.com"
WORKLOAD_IDENTITY_USER_ROLE = "roles/iam.workloadIdentityUser"

# GitHub owner and repository names: letters, digits, '-', '_' and '.'; no wildcards, no slashes inside a part.
_REPOSITORY = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}")
_REF = re.compile(r"refs/(heads|tags)/[A-Za-z0-9._/-]+")


def _cel_string(value: str) -> str:
    # JSON string syntax is valid CEL string syntax; it quotes whatever the caller passed.
    return json.dumps(value)


def github_attribute_condition(repository: str, ref: str | None = None, repository_id: str | None = None) -> str:
    """The CEL condition every GitHub token must satisfy before Google will exchange it."""
    clauses = [f"assertion.repository == {_cel_string(repository)}"]
    if repository_id is not None:
        clauses.append(f"assertion.repository_id == {_cel_string(repository_id)}")
    if ref is not None:
        clauses.append(f"assertion.ref == {_cel_string(ref)}")
    return " && ".join(clauses)


@dataclass(frozen=True, kw_only=True)
class GithubActionsFederationArgs:
    """Which repository (and ref) may deploy, and what the service account it becomes may do."""

    repository: str  # "owner/name", exactly
    ref: str | None = None  # e.g. "refs/heads/main"; None allows every branch and tag of the repository
    # The numeric id survives renames and deletion, so a new repository reusing the name is not trusted.
    repository_id: str | None = None
    pool_id: str = "github-actions"
    provider_id: str = "github"
    service_account_id: str = "github-deployer"
    project_roles: Sequence[str] = field(default_factory=tuple)  # roles granted to the deployer on the project
    project: pulumi.Input[str] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.repository, str) or not _REPOSITORY.fullmatch(self.repository):
            raise ValueError(
                f"repository must be exactly 'owner/name' with no wildcards (for example 'acme/orders-api'); "
                f"got {self.repository!r}"
            )
        if self.ref is not None and (not _REF.fullmatch(self.ref) or "*" in self.ref):
            raise ValueError(f"ref must be a full ref such as 'refs/heads/main' or 'refs/tags/v1.0'; got {self.ref!r}")
        if self.repository_id is not None and not str(self.repository_id).isdigit():
            raise ValueError(f"repository_id must be GitHub's numeric repository id; got {self.repository_id!r}")
        # Pool and provider ids are 4-32 characters; "gcp-" is a reserved prefix.
        require_id(self.pool_id, field="pool_id", min_len=4, max_len=32, example="github-actions")
        require_id(self.provider_id, field="provider_id", min_len=4, max_len=32, example="github")
        if self.pool_id.startswith("gcp-"):
            raise ValueError("pool_id may not start with 'gcp-' (reserved by Google)")
        require_id(self.service_account_id, field="service_account_id", min_len=6, max_len=30,
                   example="github-deployer")
        if self.project_roles and self.project is None:
            raise ValueError("project_roles needs project: the project the deployer's roles are granted on")
        for role in self.project_roles:
            if not role.startswith(("roles/", "projects/", "organizations/")):
                raise ValueError(f"project_roles entry {role!r} is not a role name such as 'roles/run.developer'")
            if role in ("roles/owner", "roles/editor"):
                raise ValueError(f"project_roles entry {role!r} is a basic role; grant the narrow roles the "
                                 "workflow needs instead (for example 'roles/run.developer')")


class GithubActionsFederation(pulumi.ComponentResource):
    """Pool + OIDC provider conditioned on the repository, and a service account only that repository may use."""

    pool: gcp.iam.WorkloadIdentityPool
    provider: gcp.iam.WorkloadIdentityPoolProvider
    service_account: gcp.serviceaccount.Account
    attribute_condition: str

    def __init__(self, name: str, args: GithubActionsFederationArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("authgate:gcp:GithubActionsFederation", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.pool = gcp.iam.WorkloadIdentityPool(
            f"{name}-pool",
            workload_identity_pool_id=args.pool_id,
            display_name="GitHub Actions",
            description=f"GitHub Actions workflows of {args.repository}",
            project=args.project,
            opts=child,
        )
        self.attribute_condition = github_attribute_condition(args.repository, args.ref, args.repository_id)
        self.provider = gcp.iam.WorkloadIdentityPoolProvider(
            f"{name}-provider",
            workload_identity_pool_id=self.pool.workload_identity_pool_id,
            workload_identity_pool_provider_id=args.provider_id,
            display_name="GitHub Actions OIDC",
            attribute_mapping={
                "google.subject": "assertion.sub",
                "attribute.repository": "assertion.repository",
                "attribute.repository_id": "assertion.repository_id",
                "attribute.ref": "assertion.ref",
            },
            # Without a condition any repository on github.com could exchange its token in this pool.
            attribute_condition=self.attribute_condition,
            oidc=gcp.iam.WorkloadIdentityPoolProviderOidcArgs(issuer_uri=GITHUB_ACTIONS_ISSUER),
            project=args.project,
            opts=child,
        )
        self.service_account = gcp.serviceaccount.Account(
            f"{name}-deployer",
            account_id=args.service_account_id,
            display_name=f"Deployer for {args.repository}",
            project=args.project,
            opts=child,
        )
        repository_principals = self.pool.name.apply(
            lambda pool: f"principalSet://iam.googleapis.com/{pool}/attribute.repository/{args.repository}")
        gcp.serviceaccount.IAMMember(
            f"{name}-wif-user",
            service_account_id=self.service_account.name,
            role=WORKLOAD_IDENTITY_USER_ROLE,
            member=repository_principals,
            opts=child,
        )
        for role in args.project_roles:
            gcp.projects.IAMMember(
                f"{name}-{role.rsplit('/', 1)[-1].replace('.', '-')}",
                project=args.project,
                role=role,
                member=self.service_account.email.apply(lambda email: f"serviceAccount:{email}"),
                opts=child,
            )
        self.register_outputs({
            # The two values google-github-actions/auth needs.
            "workload_identity_provider": self.provider.name,
            "service_account": self.service_account.email,
            "attribute_condition": self.attribute_condition,
        })
