"""authgate's one JWT/OIDC validation module: keys, token parsing, claim rules, IdP profiles and authorization.

    from lambdas.validation import Verifier, IssuerConfig
    verifier = Verifier([IssuerConfig("https://idp.example.com", ["orders-api"], jwks=jwks)])
    principal = verifier.verify(token, scopes=("orders:read",))      # or raises TokenRejected

Importing this package loads only the standard library pieces the decision needs and cryptography's RSA support;
the HTTP key fetcher, OIDC discovery, the EC/Ed25519 modules and `explain` (Check) load when first needed: every
module imported is paid for on each Lambda cold start.
"""
from .config import IssuerConfig
from .errors import TokenRejected
from .jwk import JsonWebKey, KeySet, parse_jwk
from .jws import verify_jws
from .key_source import KeySource, StaticKeySource
from .principal import Principal
from .requirement import Requirement
from .verifier import Verifier


def __getattr__(name: str):
    if name == "Check":   # PEP 562: `from lambdas.validation import Check` still works, loading explain on demand
        from .explain import Check
        return Check
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Verifier", "IssuerConfig", "TokenRejected", "Principal", "Requirement", "Check", "JsonWebKey", "KeySet",
           "parse_jwk", "KeySource", "StaticKeySource", "verify_jws"]
