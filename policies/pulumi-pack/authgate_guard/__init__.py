"""authgate guard: CrossGuard rules that fail a stack whose gateways or identity federation let unverified callers in."""
