"""An internet-facing application load balancer that signs users in with OIDC before forwarding."""
