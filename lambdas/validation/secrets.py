"""Secrets the runtime is configured with by name (the token handler's client secret and cookie keys, the DPoP nonce
key of authorizers, guards and the forward-auth service): a value from the environment, or a Secrets Manager secret
read once at init through the AWS Parameters and Secrets Lambda Extension.

    secret_value(environ, "AUTHGATE_COOKIE_KEYS")   # AUTHGATE_COOKIE_KEYS itself, else AUTHGATE_COOKIE_KEYS_ARN read

Why the extension and not boto3: the runtime code imports only the standard library and cryptography, and the
extension is AWS's documented way to read a secret over loopback HTTP (GET localhost:2773/secretsmanager/get with the
function's session token as X-Aws-Parameters-Secrets-Token). The value never goes into the function's configuration,
where anyone allowed lambda:GetFunctionConfiguration could read it.
"""
from __future__ import annotations

import json
import os
import urllib.parse
from typing import Mapping

EXTENSION_PORT_VARIABLE = "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"
DEFAULT_EXTENSION_PORT = "2773"
TIMEOUT_SECONDS = 2.0


class SecretUnavailable(ValueError):
    """A secret named by the configuration could not be read; the message says which and why, never its value."""


def secret_value(environ: Mapping[str, str], name: str) -> str | None:
    """The secret `name`: the variable itself, else the Secrets Manager secret whose ARN is in `name`_ARN, else None."""
    value = environ.get(name)
    if value:
        return value
    arn = environ.get(f"{name}_ARN")
    if not arn:
        return None
    return read_secret(arn, environ)


def read_secret(secret_id: str, environ: Mapping[str, str] = os.environ) -> str:
    """SecretString of `secret_id` from the Parameters and Secrets extension on loopback."""
    import http.client

    token = environ.get("AWS_SESSION_TOKEN")
    if not token:
        raise SecretUnavailable(f"cannot read {secret_id}: AWS_SESSION_TOKEN is not set (the extension needs it; "
                                "this runs only inside Lambda)")
    port = environ.get(EXTENSION_PORT_VARIABLE, DEFAULT_EXTENSION_PORT)
    connection = http.client.HTTPConnection("localhost", int(port), timeout=TIMEOUT_SECONDS)
    try:
        connection.request("GET", "/secretsmanager/get?" + urllib.parse.urlencode({"secretId": secret_id}),
                           headers={"X-Aws-Parameters-Secrets-Token": token})
        response = connection.getresponse()
        body = response.read(1 << 20)
    except OSError as exc:
        raise SecretUnavailable(f"cannot read {secret_id}: the Parameters and Secrets extension is not reachable on "
                                f"localhost:{port} ({type(exc).__name__}); add its layer to the function") from None
    finally:
        connection.close()
    if response.status != 200:
        raise SecretUnavailable(f"cannot read {secret_id}: the extension answered HTTP {response.status} (does the "
                                "function's role allow secretsmanager:GetSecretValue on it?)")
    try:
        secret = json.loads(body).get("SecretString")
    except (ValueError, AttributeError):
        secret = None
    if not isinstance(secret, str) or not secret:
        raise SecretUnavailable(f"cannot read {secret_id}: the answer holds no SecretString")
    return secret
