"""authgate's one JWT/OIDC validation module: keys, token parsing, claim rules, IdP profiles and authorization."""
from .errors import TokenRejected
from .jwk import JsonWebKey, KeySet, parse_jwk
from .key_source import KeySource, StaticKeySource

__all__ = ["TokenRejected", "JsonWebKey", "KeySet", "parse_jwk", "KeySource", "StaticKeySource"]
