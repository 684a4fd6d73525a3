"""The reference verifier (npm aws-jwt-verify) as a Python object: one Node process, JSON lines in and out.

The Node side is tests/security/reference_verify.mjs (its header documents the verifier specs). Differential
tests compare its verdicts with lambdas.validation's. Where Node or aws-jwt-verify is missing, tests skip with the
reason, except under CI (CI=true), where a missing reference is a failure: CI must not pass by comparing nothing.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.support.required import unavailable

REPO = Path(__file__).resolve().parents[2]
HELPER = REPO / "tests" / "security" / "reference_verify.mjs"
MODULE = REPO / "sandbox" / "node_modules" / "aws-jwt-verify" / "package.json"
ANSWER_TIMEOUT_SECONDS = 20


def reference_available() -> None:
    """Skip (or, under CI, fail) the calling test when the reference verifier cannot run here."""
    missing = []
    if shutil.which("node") is None:
        missing.append("`node` is not on PATH")
    if not MODULE.exists():
        missing.append(f"aws-jwt-verify is not installed in {MODULE.parent.parent} (run `npm install` in sandbox/)")
    if missing:
        unavailable("reference verifier unavailable: " + "; ".join(missing))


class ReferenceVerifier:
    """aws-jwt-verify in one long-lived Node process. Use as a context manager so the process is always stopped."""

    def __init__(self) -> None:
        self._process: subprocess.Popen | None = None
        self._next_id = 0

    def __enter__(self) -> "ReferenceVerifier":
        self._process = subprocess.Popen(["node", str(HELPER)], cwd=REPO, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        try:
            process.stdin.close()
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        finally:
            process.stdout.close()
            process.stderr.close()

    def verify(self, spec: dict, token: str) -> dict:
        """{"valid": True, "payload": {...}} or {"valid": False, "error": <aws-jwt-verify error class>, ...}."""
        return self._exchange({"verifier": spec, "token": token})

    def verify_batch(self, specs: dict[str, dict], items: list[tuple[str, str]]) -> list[dict]:
        """Many (spec name, token) pairs in one exchange; answers in order, each {"valid": True, "payload_json":
        "<the payload as JSON text>"} or {"valid": False, "error": ..., "message": ...}."""
        answer = self._exchange({"verifiers": specs, "batch": [{"verifier": name, "token": token}
                                                               for name, token in items]})
        if "answers" not in answer:
            raise RuntimeError(f"the reference verifier refused the batch: {answer.get('message', answer)}")
        if len(answer["answers"]) != len(items):
            raise RuntimeError(f"the reference verifier answered {len(answer['answers'])} of {len(items)} tokens")
        return answer["answers"]

    def _exchange(self, request: dict) -> dict:
        process = self._process
        if process is None or process.poll() is not None:
            raise RuntimeError(f"the reference verifier is not running: {self._stderr_tail()}")
        self._next_id += 1
        request_id = self._next_id
        process.stdin.write(json.dumps({"id": request_id, **request}) + "\n")
        process.stdin.flush()
        line = _readline_with_timeout(process, ANSWER_TIMEOUT_SECONDS)
        if not line:
            raise RuntimeError(f"the reference verifier stopped answering: {self._stderr_tail()}")
        answer = json.loads(line)
        if answer.get("id") != request_id:
            raise RuntimeError(f"the reference verifier answered request {answer.get('id')}, not {request_id}")
        return answer

    def _stderr_tail(self) -> str:
        process = self._process
        if process is None or process.poll() is None:
            return "(still running)"
        return process.stderr.read()[-2000:] or f"(exit code {process.returncode})"


def _readline_with_timeout(process: subprocess.Popen, timeout: float) -> str:
    import selectors

    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            process.kill()
            raise RuntimeError(f"the reference verifier gave no answer within {timeout} s")
    return process.stdout.readline()
