"""The auth policy: one YAML file saying which issuers to trust and what each route needs, loaded into a typed model."""
from stacks.policy.errors import PolicyError, Problem
from stacks.policy.loader import load_policy, load_policy_text, validate_policy_data
from stacks.policy.model import (ApiSpec, AuthPolicy, ClientSpec, IssuerSpec, RateLimitSpec, RouteSpec,
                                 STANDARD_SCOPES)
from stacks.policy.profiles import PROFILES
from stacks.policy.route_keys import PathParameter, RouteKey, parse_route_key

__all__ = [
    "ApiSpec", "AuthPolicy", "ClientSpec", "IssuerSpec", "PROFILES", "PathParameter", "PolicyError", "Problem",
    "RateLimitSpec", "RouteKey", "RouteSpec", "STANDARD_SCOPES", "load_policy", "load_policy_text", "parse_route_key",
    "validate_policy_data",
]
