"""`authgate serve token-handler` under uvicorn: configured from the policy's web client (secrets from the
environment), it answers /auth/login with the redirect to the sandbox provider, and stops cleanly on SIGTERM."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from lambdas.token_handler import CookieKeys
from sandbox.idp.config import build_idp_setup
from sandbox.idp.launcher import IdpProcess
from sandbox.web_app import CLIENT, PLACEHOLDER_ISSUER, WEB_POLICY
from stacks.policy import load_policy

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="the sandbox provider needs Node.js")
REPO = Path(__file__).resolve().parents[3]
ORIGIN = "http://127.0.0.1:8767"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[override]
        return None


def test_serve_token_handler_redirects_to_the_issuer_and_stops_on_sigterm():
    setup = build_idp_setup(load_policy(WEB_POLICY, variables={"LOCAL_ISSUER_URL": PLACEHOLDER_ISSUER,
                                                              "WEB_ORIGIN": ORIGIN}), "local")
    with IdpProcess(setup.document) as idp:
        env = {**os.environ, "PYTHONPATH": str(REPO), "AUTHGATE_CLIENT_SECRET": setup.clients[CLIENT].client_secret,
               "AUTHGATE_COOKIE_KEYS": CookieKeys.generate().to_json()}
        proc = subprocess.Popen(
            [sys.executable, "-m", "stacks.cli", "serve", "token-handler", "--policy", str(WEB_POLICY), "--client",
             CLIENT, "--var", f"LOCAL_ISSUER_URL={idp.issuer}", "--var", f"WEB_ORIGIN={ORIGIN}", "--listen",
             "127.0.0.1:0"], env=env, stderr=subprocess.PIPE, text=True, cwd=REPO)
        try:
            line = proc.stderr.readline()
            assert "authgate token-handler listening on http://127.0.0.1:" in line, line
            base = line.split(" on ", 1)[1].split()[0]
            opener = urllib.request.build_opener(_NoRedirect())
            try:
                opener.open(base + "/auth/login?return_to=/orders", timeout=10)
                raise AssertionError("expected a redirect")
            except urllib.error.HTTPError as answer:
                assert answer.code == 302 and answer.headers["location"].startswith(idp.issuer)
                assert answer.headers["set-cookie"].startswith("__Host-authgate-login=")
            assert _session_status(base) == 401
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=20) == 0
            assert "stopped (SIGTERM)" in proc.stderr.read()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _session_status(base: str) -> int:
    try:
        urllib.request.urlopen(base + "/auth/session", timeout=10)
        return 200
    except urllib.error.HTTPError as err:
        assert json.loads(err.read()) == {"authenticated": False}
        return err.code


def test_serve_token_handler_without_configuration_is_a_usage_error():
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHGATE_")}
    result = subprocess.run([sys.executable, "-m", "stacks.cli", "serve", "token-handler"], env=env,
                            capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 2 and "AUTHGATE_TOKEN_HANDLER_CONFIG" in result.stderr
