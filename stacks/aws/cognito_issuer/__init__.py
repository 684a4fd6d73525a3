"""A Cognito user pool set up as an OIDC issuer for authgate's policy."""
