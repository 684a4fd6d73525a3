"""End to end against a Cognito emulator: moto's server on 127.0.0.1 issues real user-pool tokens, and both our
Verifier and aws-jwt-verify's CognitoJwtVerifier verify them with the keys fetched from the emulator's JWKS URL.

Flow (sandbox/cognito.py, shared with the demo's Cognito flow): create a user pool, two app clients, a group and a
user with a permanent password (boto3 against the local endpoint, dummy credentials); sign in with InitiateAuth
USER_PASSWORD_AUTH and AdminInitiateAuth; fetch `/<pool_id>/.well-known/jwks.json` over loopback HTTP; verify.

Where moto differs from real Cognito, and what that means for these verdicts, is in sandbox/cognito.py's docstring.
In short: every moto pool signs with the same static key, so here only the `iss` check (and the client id) separates
pools, and our test of "another pool" is an issuer test; the JWKS holds one key, so rotation is not exercised here
(the unit tests cover it against a local JWKS server); the tokens are served from 127.0.0.1 but carry the real
`iss` https://cognito-idp.<region>.amazonaws.com/<pool_id>, so the JWKS is given to both verifiers as an explicit
loopback URL.
"""
from __future__ import annotations

import json
import os
import urllib.request

import pytest

from lambdas.validation import IssuerConfig, TokenRejected, Verifier
from sandbox.cognito import REGION, MotoCognito, isolated_environment
from tests.support.reference_node import ReferenceVerifier, reference_available

USERNAME = "alice"
PASSWORD = "Corr3ct-Horse-Battery!"

pytest.importorskip("boto3", reason="boto3 comes with moto[server] (dev extra)")
pytest.importorskip("moto.server", reason="moto[server] is in the dev extra")


# A platform engineer's laptop: a profile this machine lacks, a config file that is not one, an endpoint override
# and credentials that look real. The emulator and its client must use none of them.
HOSTILE_AWS_ENVIRONMENT = {"AWS_PROFILE": "authgate-no-such-profile", "AWS_DEFAULT_PROFILE": "authgate-no-such-profile",
                           "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "AKIAREALLOOKING00000",
                           "AWS_SECRET_ACCESS_KEY": "not-a-real-secret", "AWS_DEFAULT_REGION": "us-west-2"}


@pytest.fixture(scope="module")
def cognito(tmp_path_factory):
    """A running Cognito emulator with one pool, two clients, a group, a user, and tokens from two sign-in flows,
    all made while the environment holds the user's (bogus) AWS settings."""
    broken_config = tmp_path_factory.mktemp("aws") / "config"
    broken_config.write_text("[profile this is not\nregion = = =\n")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {**HOSTILE_AWS_ENVIRONMENT, "AWS_CONFIG_FILE": str(broken_config),
                            "AWS_SHARED_CREDENTIALS_FILE": str(broken_config)}.items():
            patch.setenv(name, value)
        yield from _running_pool()


def _running_pool():
    with MotoCognito() as emulator:
        pool = emulator.create_pool("orders-users")
        app_client = pool.create_app_client("orders-web")
        other_client = pool.create_app_client("billing-web")
        pool.create_group("admins")
        user_sub = pool.create_user(USERNAME, PASSWORD, email="alice@example.test", groups=("admins",))
        yield {"pool_id": pool.pool_id, "client_id": app_client,
               "other_client_id": other_client, "user_sub": user_sub, "jwks_url": pool.jwks_url,
               "discovery_url": pool.discovery_url, "issuer": pool.issuer,
               "password_auth": pool.sign_in(app_client, USERNAME, PASSWORD),
               "admin_auth": pool.admin_sign_in(app_client, USERNAME, PASSWORD),
               "other_auth": pool.sign_in(other_client, USERNAME, PASSWORD)}


def test_the_emulator_process_gets_no_aws_setting_of_the_user():
    env = isolated_environment({**HOSTILE_AWS_ENVIRONMENT, "PATH": "/usr/bin", "aws_profile": "lower"})
    assert env["PATH"] == "/usr/bin"
    assert "AWS_PROFILE" not in env and "AWS_DEFAULT_PROFILE" not in env and "AWS_ENDPOINT_URL" not in env
    assert "aws_profile" not in env
    assert env["AWS_ACCESS_KEY_ID"] == "testing" and env["AWS_DEFAULT_REGION"] == REGION
    assert env["AWS_CONFIG_FILE"] == env["AWS_SHARED_CREDENTIALS_FILE"] == os.devnull


def our_verifier(cognito, token_use: str | None) -> Verifier:
    verifier = Verifier([IssuerConfig(cognito["issuer"], [cognito["client_id"]], profile="cognito", name="users",
                                      jwks_uri=cognito["jwks_url"], token_use=token_use,
                                      allow_insecure_http=True)])  # loopback emulator: local development only
    verifier.hydrate()
    return verifier


def reference_spec(cognito, token_use: str | None) -> dict:
    return {"kind": "cognito", "userPoolId": cognito["pool_id"], "clientId": cognito["client_id"],
            "tokenUse": token_use, "jwksUrl": cognito["jwks_url"]}


@pytest.fixture(scope="module")
def reference():
    reference_available()
    with ReferenceVerifier() as verifier:
        yield verifier


def unverified_claims(token: str) -> dict:
    import base64
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_emulator_publishes_keys_and_discovery_for_the_token_issuer(cognito):
    with urllib.request.urlopen(cognito["jwks_url"], timeout=5) as response:
        jwks = json.load(response)
    assert [k["kty"] for k in jwks["keys"]] == ["RSA"] and all(k["use"] == "sig" for k in jwks["keys"])
    with urllib.request.urlopen(cognito["discovery_url"], timeout=5) as response:
        discovery = json.load(response)
    access_claims = unverified_claims(cognito["password_auth"]["AccessToken"])
    assert discovery["issuer"] == access_claims["iss"] == cognito["issuer"]
    assert discovery["jwks_uri"] == cognito["jwks_url"]


@pytest.mark.parametrize("flow", ["password_auth", "admin_auth"])
def test_access_token_principal(cognito, flow):
    principal = our_verifier(cognito, "access").verify(cognito[flow]["AccessToken"], groups=("admins",),
                                                       scopes=("aws.cognito.signin.user.admin",))
    assert principal.token_use == "access"
    assert principal.client_id == cognito["client_id"]
    assert principal.subject == cognito["user_sub"]
    assert principal.issuer == cognito["issuer"] and principal.issuer_name == "users"
    assert principal.groups == ("admins",)
    assert principal.scopes == ("aws.cognito.signin.user.admin",)
    assert principal.claims["username"] == USERNAME


def test_id_token_principal(cognito):
    principal = our_verifier(cognito, "id").verify(cognito["password_auth"]["IdToken"])
    assert principal.token_use == "id"
    assert principal.audience == (cognito["client_id"],)
    assert principal.client_id == cognito["client_id"]
    assert principal.subject == cognito["user_sub"]
    assert principal.groups == ("admins",)
    assert principal.claims["cognito:username"] == USERNAME


def test_id_token_refused_where_an_access_token_is_required(cognito):
    with pytest.raises(TokenRejected) as refused:
        our_verifier(cognito, "access").verify(cognito["password_auth"]["IdToken"])
    assert refused.value.code == "wrong_token_use" and refused.value.status == 401


def test_access_token_refused_where_an_id_token_is_required(cognito):
    with pytest.raises(TokenRejected) as refused:
        our_verifier(cognito, "id").verify(cognito["password_auth"]["AccessToken"])
    assert refused.value.code == "wrong_token_use"


def test_other_app_client_refused(cognito):
    with pytest.raises(TokenRejected) as refused:
        our_verifier(cognito, "access").verify(cognito["other_auth"]["AccessToken"])
    assert refused.value.code == "invalid_audience"
    assert refused.value.found == [cognito["other_client_id"]]


def test_group_requirement_enforced(cognito):
    verifier = our_verifier(cognito, "access")
    with pytest.raises(TokenRejected) as refused:
        verifier.verify(cognito["password_auth"]["AccessToken"], groups=("billing-admins",))
    assert refused.value.code == "insufficient_group" and refused.value.status == 403


def test_token_of_another_pool_refused(cognito):
    # moto signs every pool with one key (see the module docstring), so this is the issuer check at work.
    other = dict(cognito, issuer=f"https://cognito-idp.{REGION}.amazonaws.com/{REGION}_0therPool")
    with pytest.raises(TokenRejected) as refused:
        our_verifier(other, "access").verify(cognito["password_auth"]["AccessToken"])
    assert refused.value.code == "unknown_issuer"


@pytest.mark.parametrize("token_name, token_use, other, expected", [
    ("AccessToken", "access", False, "accept"),
    ("IdToken", "id", False, "accept"),
    ("IdToken", "access", False, ("wrong_token_use", "CognitoJwtInvalidTokenUseError")),
    ("AccessToken", "id", False, ("wrong_token_use", "CognitoJwtInvalidTokenUseError")),
    ("AccessToken", "access", True, ("invalid_audience", "CognitoJwtInvalidClientIdError")),
    ("IdToken", "id", True, ("invalid_audience", "CognitoJwtInvalidClientIdError")),
])
def test_same_verdict_as_aws_jwt_verify(cognito, reference, token_name, token_use, other, expected):
    token = cognito["other_auth" if other else "password_auth"][token_name]
    theirs = reference.verify(reference_spec(cognito, token_use), token)
    try:
        principal = our_verifier(cognito, token_use).verify(token)
        ours = "accept"
    except TokenRejected as exc:
        ours, principal = exc.code, None
    if expected == "accept":
        assert ours == "accept" and theirs["valid"], theirs.get("message")
        assert theirs["payload"] == dict(principal.claims)
    else:
        assert (ours, theirs.get("error")) == expected, theirs.get("message")
