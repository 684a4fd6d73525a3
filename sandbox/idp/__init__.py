"""The sandbox's OpenID provider: a Node oidc-provider process and its Python launcher."""
