"""What a cloud gateway's own JWT check can verify: where authgate may rely on it instead of its Lambda authorizer.

The policy compiler, the CDK refusals and the sandbox's emulated HTTP API all read these, so the rule a route is
compiled under is the rule it is deployed and emulated under.
"""
from __future__ import annotations

# API Gateway's HTTP API JWT authorizer verifies RSA PKCS#1 v1.5 signatures only.
NATIVE_JWT_ALGORITHMS = frozenset({"RS256", "RS384", "RS512"})
# Authorization scopes on one HTTP API route: the figure the product brief sets for a native route.
NATIVE_MAX_SCOPES = 10
