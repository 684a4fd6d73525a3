"""Starts the sandbox's OpenID provider (sandbox/idp/server.mjs under Node) as a child process and stops it again."""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from sandbox.lifecycle import StoppedOnExit

SANDBOX_DIR = Path(__file__).resolve().parent.parent
SERVER_SCRIPT = SANDBOX_DIR / "idp" / "server.mjs"
NODE_MODULES = SANDBOX_DIR / "node_modules"
READY_TIMEOUT_SECONDS = 15.0
# Node 20 running server.mjs starts in well under a second, but on a loaded machine about one start in twenty stalls
# before it listens: the process sleeps on a lock with no socket open and prints nothing, and it stays so. A second
# process started then comes up as usual, so one stalled start is retried once.
START_ATTEMPTS = 2


class IdpError(RuntimeError):
    """The provider could not be started or refused an admin request."""


class _StartStalled(IdpError):
    """The provider is still running but said nothing within READY_TIMEOUT_SECONDS."""


class IdpProcess(StoppedOnExit):
    """A running oidc-provider on 127.0.0.1 with an ephemeral port.

    Use as a context manager. `config` is the JSON document server.mjs reads (clients, resources, users); see
    sandbox/idp/config.py for how it is built from the auth policy.
    """

    def __init__(self, config: dict[str, Any], *, log_path: Path | None = None) -> None:
        self.config = config
        self.log_path = log_path
        self.issuer: str = ""
        self.signing_kid: str = ""
        self.tls_origin: str = ""   # https://127.0.0.1:PORT when the config has `tls` (certificate-bound tokens)
        self._admin_token = secrets.token_urlsafe(24)
        self._process: subprocess.Popen | None = None
        self._workdir: tempfile.TemporaryDirectory | None = None
        self._stderr_thread: threading.Thread | None = None
        self._stderr_tail: list[str] = []

    def start(self) -> "IdpProcess":
        if self._process is not None and self._process.poll() is None:
            # Started already (`with IdpProcess(...).start() as idp:` enters, which starts again): a second provider
            # would replace this one's handle and outlive the test or demo that started it.
            return self
        node = shutil.which("node")
        if node is None:
            raise IdpError("node is not on PATH; the sandbox's OpenID provider needs Node.js 20 or later")
        if not (NODE_MODULES / "oidc-provider").is_dir():
            raise IdpError(f"{NODE_MODULES}/oidc-provider is missing; run `make demo` (or `npm ci` in sandbox/) "
                           "to install the sandbox's Node packages")
        for attempt in range(1, START_ATTEMPTS + 1):
            self._spawn(node)
            try:
                ready = self._wait_for_ready()
                break
            except _StartStalled as stalled:
                if attempt == START_ATTEMPTS:
                    raise IdpError(f"{stalled} (in each of {START_ATTEMPTS} attempts)") from None
        self.issuer = ready["issuer"]
        self.signing_kid = ready["signing_kid"]
        self.tls_origin = ready.get("tls_origin", "")
        return self

    def _spawn(self, node: str) -> None:
        self._workdir = tempfile.TemporaryDirectory(prefix="authgate-idp-")
        config_path = Path(self._workdir.name) / "idp-config.json"
        config_path.write_text(json.dumps(self.config))
        env = dict(os.environ, AUTHGATE_IDP_ADMIN_TOKEN=self._admin_token, NODE_ENV="development")
        self._stderr_tail = []
        self._process = subprocess.Popen(
            [node, str(SERVER_SCRIPT), str(config_path)], cwd=SANDBOX_DIR, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._stderr_thread = threading.Thread(target=self._drain_stderr, daemon=True)
        self._stderr_thread.start()

    def _drain_stderr(self) -> None:
        assert self._process is not None and self._process.stderr is not None
        log = self.log_path.open("a") if self.log_path else None
        try:
            for line in self._process.stderr:
                if log:
                    log.write(line)
                    log.flush()
                # oidc-provider's start-up warnings about its development defaults are expected here.
                if "WARNING" not in line:
                    self._stderr_tail = (self._stderr_tail + [line.rstrip()])[-20:]
        finally:
            if log:
                log.close()

    def _wait_for_ready(self) -> dict:
        assert self._process is not None and self._process.stdout is not None
        result: dict = {}

        def read_first_line() -> None:
            line = self._process.stdout.readline()
            if line:
                try:
                    result.update(json.loads(line))
                except ValueError:
                    result["garbage"] = line[:200]

        reader = threading.Thread(target=read_first_line, daemon=True)
        reader.start()
        reader.join(READY_TIMEOUT_SECONDS)
        if result.get("event") != "ready":
            exit_status = self._process.poll()
            if exit_status is not None and self._stderr_thread is not None:
                self._stderr_thread.join(5)   # what it wrote before exiting is the reason; read all of it first
            self.stop()
            detail = "; ".join(self._stderr_tail) or result.get("garbage") or "no output"
            if exit_status is not None:
                raise IdpError(f"the OpenID provider exited with status {exit_status} before it was ready: {detail}")
            raise _StartStalled(f"the OpenID provider did not become ready within {READY_TIMEOUT_SECONDS:.0f}s: "
                                f"{detail}")
        return result

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)
            for stream in (process.stdin, process.stdout, process.stderr):
                if stream:
                    stream.close()
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # Endpoints, from the provider's own discovery document so nothing here hard-codes its routes.
    def discovery(self) -> dict:
        with urllib.request.urlopen(f"{self.issuer}/.well-known/openid-configuration", timeout=5) as resp:
            return json.load(resp)

    def _admin(self, path: str, body: dict | None = None) -> dict:
        request = urllib.request.Request(
            f"{self.issuer}/__sandbox/{path}", method="POST", data=json.dumps(body or {}).encode(),
            headers={"x-authgate-admin": self._admin_token, "content-type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                return json.load(resp)
        except urllib.error.HTTPError as err:
            raise IdpError(f"admin {path} failed: {err.code} {err.read()[:300].decode(errors='replace')}") from None

    def rotate_key(self) -> dict:
        """A new signing key; earlier keys stay published. Returns {"signing_kid", "published_kids"}."""
        answer = self._admin("rotate-key")
        self.signing_kid = answer["signing_kid"]
        return answer

    def expired_token(self, *, client_id: str, resource: str, scope: str, age_seconds: int = 3600) -> str:
        """A token the provider signs as if issued `age_seconds` ago to a service client, so already expired."""
        answer = self._admin("expired-token", {"client_id": client_id, "resource": resource, "scope": scope,
                                               "age_seconds": age_seconds})
        return answer["access_token"]
