"""The in-cluster forward-auth decision service (NGINX auth_request, Traefik ForwardAuth, Envoy ext_authz HTTP)."""
