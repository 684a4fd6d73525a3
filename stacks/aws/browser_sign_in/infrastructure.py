"""Browser sign-in on an HTTP API: authgate's token handler Lambda under the web client's auth path, the cookie-key
secret it seals sessions with (also read by the API's authorizer on cookie routes), and the confidential client's
secret, both read at init through the Parameters and Secrets extension (never in the function configuration)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import Duration, Stack, aws_apigatewayv2 as apigwv2, aws_apigatewayv2_integrations as integ
from aws_cdk import aws_lambda as lambda_, aws_logs as logs, aws_secretsmanager as secretsmanager
from constructs import Construct

from stacks.aws.authorizer_function.infrastructure import asset_function
from stacks.aws.checkov import skip_checkov
from stacks.aws.log_group import DEFAULT_RETENTION
from stacks.aws.nag import acknowledge_nag

TOKEN_HANDLER_HANDLER = "lambdas.token_handler.http_api.handler"
COOKIE_KEY_LENGTH = 43   # characters of [A-Za-z0-9]: base64url of 32 bytes, an AES-256 key
SECRET_CHECKOV_SKIPS = {
    "CKV_AWS_149": "encrypted with the account's aws/secretsmanager key; a customer-managed key adds cost and a key "
                   "policy to keep in step without changing who may read the secret (the function roles only)",
}


class CookieKeys(Construct):
    """The secret the token handler seals session cookies with: {"current": "k1", "k1": <43 random characters>}.

    Rotation is adding a key: write {"current": "k2", "k1": ..., "k2": <new>} and keep k1 until the longest session
    (the web client's session_seconds) has passed, then remove it. New sessions use k2 at once; old ones still open."""

    def __init__(self, scope: Construct, id_: str, *, description: str) -> None:
        super().__init__(scope, id_)
        self.secret = secretsmanager.Secret(
            self, "Secret", description=description,
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template='{"current": "k1"}', generate_string_key="k1",
                password_length=COOKIE_KEY_LENGTH, exclude_punctuation=True, include_space=False))
        acknowledge_nag(self.secret, "AwsSolutions-SMG4",
                        "cookie keys rotate by adding a key id (see CookieKeys): a replacing rotation Lambda would "
                        "sign every user out at once")
        for check_id, reason in SECRET_CHECKOV_SKIPS.items():
            skip_checkov(self.secret, check_id, reason)

    def grant_read(self, function: lambda_.Function) -> None:
        self.secret.grant_read(function)
        function.add_environment("AUTHGATE_COOKIE_KEYS_ARN", self.secret.secret_arn)


class BrowserSignIn(Construct):
    """The token handler on `http_api`, answering `{auth_path}/*`.

    code            the authorizer asset (it holds all of lambdas/, the token handler included)
    config          the web client's token handler configuration (`render_token_handler`), without secrets; its
                    client_id is replaced by `client_id` (Cognito generates it)
    client_secret   the secret holding the confidential client's secret (a plain string secret)
    cookie_keys     the session cookie keys, shared with the API's authorizer for cookie routes
    """

    def __init__(self, scope: Construct, id_: str, *, http_api: apigwv2.HttpApi, code: lambda_.Code,
                 config: Mapping[str, Any], client_id: str, client_secret: secretsmanager.ISecret,
                 cookie_keys: CookieKeys, architecture: lambda_.Architecture = lambda_.Architecture.ARM_64,
                 log_retention: logs.RetentionDays = DEFAULT_RETENTION) -> None:
        super().__init__(scope, id_)
        prefix = config["prefix"]
        handler_config = Stack.of(self).to_json_string({**config, "client_id": client_id})
        self.log_group, self.role, self.function = asset_function(
            self, handler=TOKEN_HANDLER_HANDLER, code=code, architecture=architecture, memory_size=512,
            # Inside the HTTP API's 30 s integration timeout, with room for the issuer's token endpoint.
            timeout=Duration.seconds(10), log_retention=log_retention, reads_secrets=True,
            role_description=f"authgate token handler for {config['origin']}",
            description=f"authgate token handler (browser sign-in) for {config['origin']}",
            environment={"AUTHGATE_TOKEN_HANDLER_CONFIG": handler_config,
                         "AUTHGATE_CLIENT_SECRET_ARN": client_secret.secret_arn},
            checkov_reasons={"CKV_AWS_173": "the environment holds the handler's configuration and the ARNs of its "
                                            "secrets, never a secret value"})
        client_secret.grant_read(self.function)
        cookie_keys.grant_read(self.function)
        integration = integ.HttpLambdaIntegration("TokenHandler", self.function)
        self.routes = http_api.add_routes(path=f"{prefix}/{{proxy+}}",
                                          methods=[apigwv2.HttpMethod.GET, apigwv2.HttpMethod.POST],
                                          integration=integration)
        for route in self.routes:
            acknowledge_nag(route, "AwsSolutions-APIG4",
                            f"the token handler's own endpoints ({prefix}/login, callback, session, refresh, logout) "
                            "are how a browser gets a session; they check state, PKCE and CSRF themselves")
