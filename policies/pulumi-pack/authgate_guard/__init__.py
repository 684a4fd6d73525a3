"""authgate guard: CrossGuard rules failing a stack whose gateways or federation let unverified callers in."""
