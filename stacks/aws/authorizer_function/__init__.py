"""The Lambda function that runs one of authgate's authorizer handlers."""
