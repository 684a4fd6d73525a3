"""API Gateway HTTP API guarded by native JWT authorizers and authgate's Lambda authorizer."""
