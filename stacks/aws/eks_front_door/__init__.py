"""Front doors for an EKS cluster: HTTP API + JWT authorizer over a VPC link, or an OIDC-login ALB."""
