"""Secrets through the AWS Parameters and Secrets Lambda Extension's loopback interface: the documented request
(GET /secretsmanager/get?secretId=..., X-Aws-Parameters-Secrets-Token = the session token) against a server on
127.0.0.1 that answers as the extension does, and every failure named without the secret's value."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from lambdas.validation.secrets import SecretUnavailable, read_secret, secret_value

ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:authgate-cookie-keys-AbCdEf"


@pytest.fixture
def extension():
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            seen.append({"path": parts.path, "query": parse_qs(parts.query),
                         "token": self.headers.get("X-Aws-Parameters-Secrets-Token")})
            if self.headers.get("X-Aws-Parameters-Secrets-Token") != "session-token":
                status, body = 401, b"unauthorized"
            elif parse_qs(parts.query).get("secretId") == [ARN]:
                status, body = 200, json.dumps({"ARN": ARN, "SecretString": "the-secret"}).encode()
            else:
                status, body = 400, b"ResourceNotFoundException"
            self.send_response(status)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield {"PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": str(server.server_address[1]),
           "AWS_SESSION_TOKEN": "session-token"}, seen
    server.shutdown()
    server.server_close()


def test_reads_the_secret_string_with_the_session_token(extension):
    environ, seen = extension
    assert read_secret(ARN, environ) == "the-secret"
    assert seen == [{"path": "/secretsmanager/get", "query": {"secretId": [ARN]}, "token": "session-token"}]


def test_a_value_in_the_environment_wins_and_the_arn_is_read_otherwise(extension):
    environ, seen = extension
    assert secret_value({**environ, "AUTHGATE_COOKIE_KEYS": "inline"}, "AUTHGATE_COOKIE_KEYS") == "inline"
    assert secret_value({**environ, "AUTHGATE_COOKIE_KEYS_ARN": ARN}, "AUTHGATE_COOKIE_KEYS") == "the-secret"
    assert secret_value(environ, "AUTHGATE_COOKIE_KEYS") is None and len(seen) == 1


def test_failures_say_what_to_fix_and_never_the_value(extension):
    environ, _ = extension
    with pytest.raises(SecretUnavailable, match="HTTP 400.*GetSecretValue"):
        read_secret(ARN + "-other", environ)
    with pytest.raises(SecretUnavailable, match="AWS_SESSION_TOKEN"):
        read_secret(ARN, {})
    with pytest.raises(SecretUnavailable, match="not reachable.*add its layer"):
        read_secret(ARN, {**environ, "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": "9"})
