"""A minimal backend that echoes who the gateway let through, for smoke-testing a deployment."""
