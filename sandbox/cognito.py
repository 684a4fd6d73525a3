"""A Cognito user pool on loopback: moto's server on 127.0.0.1 (ephemeral port), pools, app clients and users made
through boto3, and sign-in with InitiateAuth / AdminInitiateAuth. Used by the demo's Cognito flow and by
tests/e2e/test_cognito_moto.py.

Where moto differs from real Cognito (moto 5.2.5), and what it means for whoever verifies its tokens:
- Every pool of every moto server signs with the same static RSA key shipped inside moto (kid "dummy"); real pools
  each have their own pair of keys. Only `iss` (and the client id) separates moto pools: a token of another moto
  pool verifies against this pool's JWKS.
- The JWKS holds one key; real Cognito publishes two (current and next), so rotation cannot be shown with it.
- Access tokens lack `version` and `event_id`; ID tokens lack `event_id` and `email_verified`; both carry
  `origin_jti`. authgate and aws-jwt-verify read none of these.
- The token header is {"typ": "JWT", "kid", "alg"}; real Cognito sends {"kid", "alg"}. `typ: JWT` says nothing about
  token use, so, as with real tokens, `token_use` decides.
- Tokens carry `iss` https://cognito-idp.<region>.amazonaws.com/<pool id> although they are served from 127.0.0.1, as
  real tokens would be; `jwks_url` is the loopback URL the keys can actually be fetched from.
- moto keeps its pools in process-wide state, so two servers in one process see each other's pools; each caller
  makes its own pool and uses only that pool's id.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

REGION = "eu-west-1"
# The emulator accepts any credentials; explicit dummy ones mean no real account's credentials are ever looked up.
DUMMY_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing",
                     "aws_session_token": "testing"}
SIGN_IN_FLOWS = ("ALLOW_USER_PASSWORD_AUTH", "ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH")


@dataclass(frozen=True)
class UserPool:
    """One user pool of the emulator, and the calls a platform team (pool, clients, users) and an app (sign-in)
    make on it."""

    client: Any            # boto3 cognito-idp client pointed at the emulator
    endpoint: str
    pool_id: str
    region: str = REGION

    @property
    def issuer(self) -> str:
        return f"https://cognito-idp.{self.region}.amazonaws.com/{self.pool_id}"

    @property
    def jwks_url(self) -> str:
        return f"{self.endpoint}/{self.pool_id}/.well-known/jwks.json"

    @property
    def discovery_url(self) -> str:
        return f"{self.endpoint}/{self.pool_id}/.well-known/openid-configuration"

    def create_app_client(self, name: str) -> str:
        """A public app client allowed the password sign-in flows; returns its client id."""
        created = self.client.create_user_pool_client(UserPoolId=self.pool_id, ClientName=name,
                                                      ExplicitAuthFlows=list(SIGN_IN_FLOWS))
        return created["UserPoolClient"]["ClientId"]

    def create_group(self, name: str) -> None:
        self.client.create_group(UserPoolId=self.pool_id, GroupName=name)

    def create_user(self, username: str, password: str, *, email: str | None = None,
                    groups: tuple[str, ...] = ()) -> str:
        """A confirmed user with a permanent password, in `groups` (which must exist); returns the user's sub."""
        attributes = [{"Name": "email", "Value": email}] if email else []
        self.client.admin_create_user(UserPoolId=self.pool_id, Username=username, TemporaryPassword="Temp-Passw0rd!",
                                      MessageAction="SUPPRESS", UserAttributes=attributes)
        self.client.admin_set_user_password(UserPoolId=self.pool_id, Username=username, Password=password,
                                            Permanent=True)
        for group in groups:
            self.client.admin_add_user_to_group(UserPoolId=self.pool_id, Username=username, GroupName=group)
        user = self.client.admin_get_user(UserPoolId=self.pool_id, Username=username)
        return next(a["Value"] for a in user["UserAttributes"] if a["Name"] == "sub")

    def sign_in(self, client_id: str, username: str, password: str) -> dict:
        """InitiateAuth USER_PASSWORD_AUTH (what an app calls): the AuthenticationResult (AccessToken, IdToken, ...)."""
        answer = self.client.initiate_auth(ClientId=client_id, AuthFlow="USER_PASSWORD_AUTH",
                                           AuthParameters={"USERNAME": username, "PASSWORD": password})
        return answer["AuthenticationResult"]

    def admin_sign_in(self, client_id: str, username: str, password: str) -> dict:
        """AdminInitiateAuth ADMIN_USER_PASSWORD_AUTH (what a trusted back end calls with AWS credentials)."""
        answer = self.client.admin_initiate_auth(UserPoolId=self.pool_id, ClientId=client_id,
                                                 AuthFlow="ADMIN_USER_PASSWORD_AUTH",
                                                 AuthParameters={"USERNAME": username, "PASSWORD": password})
        return answer["AuthenticationResult"]


class MotoCognito:
    """moto's server on 127.0.0.1 with an ephemeral port; a context manager (stopped on leaving, also on errors)."""

    def __init__(self, region: str = REGION) -> None:
        self.region = region
        self._server: Any = None
        self._client: Any = None
        self.endpoint = ""

    def __enter__(self) -> "MotoCognito":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> "MotoCognito":
        import boto3
        from moto.server import ThreadedMotoServer

        # werkzeug logs every request to stderr at INFO; the demo narrates its own hops.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        session = boto3.session.Session(region_name=self.region, **DUMMY_CREDENTIALS)
        self._client = session.client("cognito-idp", endpoint_url=self.endpoint)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def create_pool(self, name: str) -> UserPool:
        if self._client is None:
            raise RuntimeError("the Cognito emulator is not running")
        pool_id = self._client.create_user_pool(PoolName=name)["UserPool"]["Id"]
        return UserPool(self._client, self.endpoint, pool_id, self.region)
