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
- moto keeps its pools in process-wide state; each MotoCognito runs its own server process, so its pools are its own.

Isolation from the user's AWS set-up: moto's server runs in a child process whose environment has no AWS_* setting
of the user's (no profile, no config or credentials file, no endpoint override), only dummy credentials; the boto3
client talking to it is built on a botocore session that reads no environment variable and no file. An `AWS_PROFILE`
naming a profile this machine lacks (or one with real credentials) therefore changes nothing. Run as
`python -m sandbox.cognito`, this module is that child: it prints its port and serves until its stdin closes.
"""
from __future__ import annotations

import logging
import os
import selectors
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from sandbox.lifecycle import StoppedOnExit

REGION = "eu-west-1"
REPO_ROOT = Path(__file__).resolve().parent.parent
# The emulator accepts any credentials; explicit dummy ones mean no real account's credentials are ever looked up.
DUMMY_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing",
                     "aws_session_token": "testing"}
STARTUP_TIMEOUT_SECONDS = 60
# Every environment variable the AWS SDKs (and moto) read starts with one of these.
_AWS_SETTING_PREFIXES = ("AWS_", "BOTO_", "BOTOCORE_", "MOTO_")


def isolated_environment(base: Mapping[str, str], region: str = REGION) -> dict[str, str]:
    """`base` (the caller's environment) without any AWS setting, plus dummy credentials and the region: what moto's
    server process runs with. Shared config and credentials files are pointed at the null device."""
    env = {name: value for name, value in base.items() if not name.upper().startswith(_AWS_SETTING_PREFIXES)}
    env.update(AWS_ACCESS_KEY_ID=DUMMY_CREDENTIALS["aws_access_key_id"],
               AWS_SECRET_ACCESS_KEY=DUMMY_CREDENTIALS["aws_secret_access_key"],
               AWS_SESSION_TOKEN=DUMMY_CREDENTIALS["aws_session_token"], AWS_DEFAULT_REGION=region,
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_EC2_METADATA_DISABLED="true")
    return env


def isolated_boto3_session(region: str = REGION) -> Any:
    """A boto3 session with dummy credentials on a botocore session that reads no AWS_* variable and no file (so
    neither AWS_PROFILE nor ~/.aws/config can reach it)."""
    import boto3
    import botocore.session
    from botocore.configprovider import BOTOCORE_DEFAUT_SESSION_VARIABLES

    # Each setting keeps its default, but no environment variable or config-file key is consulted for it.
    no_outside_sources = {name: (None, None, os.devnull if name in ("config_file", "credentials_file") else default,
                                 convert)
                          for name, (_, _, default, convert) in BOTOCORE_DEFAUT_SESSION_VARIABLES.items()}
    core = botocore.session.Session(session_vars=no_outside_sources)
    return boto3.session.Session(botocore_session=core, region_name=region, **DUMMY_CREDENTIALS)
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


class MotoServer(StoppedOnExit):
    """moto's server (every AWS service it emulates) in a child process on 127.0.0.1 with an ephemeral port; a
    context manager (stopped on leaving, also on errors). `client(service)` talks to it with dummy credentials."""

    def __init__(self, region: str = REGION) -> None:
        self.region = region
        self._process: subprocess.Popen | None = None
        self.endpoint = ""

    def start(self):
        errors = tempfile.TemporaryFile()
        self._process = subprocess.Popen([sys.executable, "-m", "sandbox.cognito"], cwd=REPO_ROOT,
                                         env=isolated_environment(os.environ, self.region), stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=errors)
        port = _read_port(self._process, errors)
        self.endpoint = f"http://127.0.0.1:{port}"
        return self

    def client(self, service: str) -> Any:
        if not self.endpoint:
            raise RuntimeError("moto's server is not running")
        return isolated_boto3_session(self.region).client(service, endpoint_url=self.endpoint)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin:
            process.stdin.close()      # the child's signal to stop its server and exit
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()


class MotoCognito(MotoServer):
    """moto's server used for Cognito user pools."""

    def __init__(self, region: str = REGION) -> None:
        super().__init__(region)
        self._client: Any = None

    def start(self) -> "MotoCognito":
        super().start()
        self._client = self.client("cognito-idp")
        return self

    def create_pool(self, name: str) -> UserPool:
        if self._client is None:
            raise RuntimeError("the Cognito emulator is not running")
        pool_id = self._client.create_user_pool(PoolName=name)["UserPool"]["Id"]
        return UserPool(self._client, self.endpoint, pool_id, self.region)


def _read_port(process: subprocess.Popen, errors: Any) -> int:
    """The port the child prints once its server listens; RuntimeError with its stderr if it does not."""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        ready = selector.select(timeout=STARTUP_TIMEOUT_SECONDS)
    line = process.stdout.readline().decode().strip() if ready else ""
    if not line.isdigit():
        process.kill()
        process.wait()
        errors.seek(0)
        tail = errors.read().decode(errors="replace").strip().splitlines()[-5:]
        raise RuntimeError("moto's server did not start" + (": " + " | ".join(tail) if tail else
                                                                     f" within {STARTUP_TIMEOUT_SECONDS}s"))
    errors.close()
    return int(line)


def _serve_until_stdin_closes() -> None:
    from moto.server import ThreadedMotoServer

    # werkzeug logs every request to stderr at INFO; the demo narrates its own hops.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    print(server.get_host_and_port()[1], flush=True)
    try:
        sys.stdin.buffer.read()        # EOF when the parent stops us, or when it dies
    finally:
        server.stop()


if __name__ == "__main__":
    _serve_until_stdin_closes()
