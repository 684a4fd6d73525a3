"""GitHub Actions OIDC federation to AWS: the provider and a role one repository and ref can assume."""
