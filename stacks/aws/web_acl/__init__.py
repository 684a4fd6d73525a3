"""A regional AWS WAF web ACL with a rate-based rule, for API Gateway REST stages and load balancers."""
