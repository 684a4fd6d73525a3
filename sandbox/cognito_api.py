"""The demo's Cognito flow: a user pool in moto's emulator and an API whose policy (`cognito_policy.yaml`, profile
cognito) trusts it, enforced by the REST API Lambda authorizer (`lambdas/authorizers/rest.py`) running in-process.

What is real: the pool's tokens (moto's InitiateAuth / AdminInitiateAuth), the policy loader and compiler, the
rendered route table, the authorizer's handler with its key fetch from the pool's JWKS over loopback, and API
Gateway's evaluation of the returned policy (`gateways/iam_policy.py`). What is not: no API Gateway is synthesized or
served for this API (the emulated gateways serve `policies/local.yaml`'s single issuer); the authorizer receives
the TOKEN event API Gateway would send, and its answer is mapped to API Gateway's status as the REST emulator does.
Only the key location is redirected: the route table's jwks_uri, <issuer>/.well-known/jwks.json on
cognito-idp.<region>.amazonaws.com, becomes the emulator's loopback URL, allowed over http for that issuer only.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.cognito import MotoCognito, UserPool
from sandbox.gateways.iam_policy import policy_effect
from sandbox.gateways.lambda_runtime import InProcessLambda, LambdaInvocationError

REPO_ROOT = Path(__file__).resolve().parent.parent
COGNITO_POLICY = Path(__file__).with_name("cognito_policy.yaml")
API = "orders"
AUTHORIZER_HANDLER = "lambdas.authorizers.rest.handler"
# The method ARN's account, API id and stage are made up: only the method and path matter to the authorizer.
METHOD_ARN_PREFIX = "arn:aws:execute-api:eu-west-1:123456789012:cognitoapi/sandbox"
APP_CLIENT_NAME = "orders-web"          # the client the policy trusts
OTHER_CLIENT_NAME = "billing-web"       # another app of the same pool, whose tokens this API must refuse
USERNAME = "alice"
# A made-up password for a made-up user in a throwaway emulator.
PASSWORD = "Corr3ct-Horse-Battery!"


@dataclass(frozen=True)
class AuthorizerAnswer:
    """What API Gateway answers after the authorizer: 200 (forwarded), 401 (Unauthorized), 403 (Deny), 500."""

    status: int
    code: str = ""                                   # the authorizer's audit code; "" when allowed
    context: dict = field(default_factory=dict)      # the authorizer context passed to the backend when allowed


@dataclass
class CognitoApi:
    """The pool (two app clients, one user) and the authorizer enforcing the Cognito policy. Start, use, stop."""

    workdir: Path
    policy_path: Path = COGNITO_POLICY
    emulator: MotoCognito | None = None
    pool: UserPool | None = None
    app_client_id: str = ""
    other_client_id: str = ""
    user_sub: str = ""
    route_table: dict = field(default_factory=dict)
    route_table_path: Path | None = None
    authorizer: InProcessLambda | None = None

    def start(self) -> "CognitoApi":
        from stacks.policy import load_policy
        from stacks.policy.render import render_route_table

        # Assigned before starting, so stop() reaches the server even when a later step of start() fails.
        self.emulator = MotoCognito()
        self.emulator.start()
        self.pool = self.emulator.create_pool("orders-users")
        self.app_client_id = self.pool.create_app_client(APP_CLIENT_NAME)
        self.other_client_id = self.pool.create_app_client(OTHER_CLIENT_NAME)
        self.user_sub = self.pool.create_user(USERNAME, PASSWORD, email="alice@example.test")
        policy = load_policy(self.policy_path, variables={"COGNITO_ISSUER": self.pool.issuer,
                                                        "COGNITO_APP_CLIENT": self.app_client_id})
        self.route_table = keys_from_emulator(render_route_table(policy, apis=[API]), self.pool)
        self.route_table_path = self.workdir / "cognito-routes.json"
        self.route_table_path.write_text(json.dumps(self.route_table, indent=2))
        self.authorizer = InProcessLambda(AUTHORIZER_HANDLER, code_root=REPO_ROOT, function_name="cognito-authorizer",
                                          environment={"AUTHGATE_POLICY": str(self.route_table_path),
                                                       "AUTHGATE_API": API})
        return self

    def stop(self) -> None:
        if self.emulator is not None:
            self.emulator.stop()
            self.emulator = None

    def sign_in(self, client_id: str, *, admin: bool = False) -> dict:
        """The user's AuthenticationResult from InitiateAuth, or AdminInitiateAuth when `admin`."""
        assert self.pool is not None
        flow = self.pool.admin_sign_in if admin else self.pool.sign_in
        return flow(client_id, USERNAME, PASSWORD)

    def route(self, route_key: str) -> dict:
        """The rendered route table's entry for `route_key` (its enforcement and the compiler's reason)."""
        return next(r for r in self.route_table["apis"][API]["routes"] if r["route_key"] == route_key)

    def method_arn(self, method: str, path: str) -> str:
        return f"{METHOD_ARN_PREFIX}/{method}/{path.lstrip('/')}"

    def authorize(self, method: str, path: str, token: str) -> AuthorizerAnswer:
        """The authorizer invoked with a TOKEN event for this request, answered as API Gateway's REST API does."""
        assert self.authorizer is not None
        arn = self.method_arn(method, path)
        try:
            answer = self.authorizer.invoke({"type": "TOKEN", "authorizationToken": f"Bearer {token}",
                                             "methodArn": arn})
        except LambdaInvocationError as err:
            if str(err.cause) == "Unauthorized":
                return AuthorizerAnswer(401, self.authorizer.last_audit().get("code") or "lambda_unauthorized")
            return AuthorizerAnswer(500, "lambda_error")
        document = answer.get("policyDocument") if isinstance(answer, dict) else None
        if policy_effect(document, arn) == "Allow":
            return AuthorizerAnswer(200, "", dict(answer.get("context") or {}))
        return AuthorizerAnswer(403, self.authorizer.last_audit().get("code") or "policy_deny")


def keys_from_emulator(table: dict, pool: UserPool) -> dict:
    """The route table with the pool issuer's keys read from the emulator (loopback http, that issuer only)."""
    local = json.loads(json.dumps(table))
    matched = [spec for spec in local["issuers"].values() if spec["issuer"] == pool.issuer]
    if not matched:
        raise ValueError(f"no issuer of the route table is the pool {pool.pool_id}")
    for spec in matched:
        spec["jwks_uri"] = pool.jwks_url
        spec["allow_insecure_http"] = True
    return local
