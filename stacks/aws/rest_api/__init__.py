"""API Gateway REST API guarded by authgate's Lambda TOKEN or REQUEST authorizer."""
