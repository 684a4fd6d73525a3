"""Test support shared by every test kind: key pairs, token minting, local servers."""
