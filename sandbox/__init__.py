"""The local sandbox: a real OIDC provider and the gateways emulated from the rendered artifacts, on loopback."""
