"""The OpenID Connect Back-Channel Logout 1.0 endpoint: an HTTP API Lambda handler and an ASGI app over one core."""
