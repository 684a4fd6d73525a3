"""Runs a Lambda handler in-process the way the Lambda runtime would: its own module instance, its environment,
a context object, and a timeout budget.

Each emulated function gets a fresh module instance (module-level caches are per function, as in Lambda), and its
environment variables are set while it is imported and while it runs; a lock serialises invocations because the
process environment is shared (a Lambda execution environment also runs one invocation at a time). That lock also
makes capturing the handler's stdout safe: nothing else in the sandbox prints while a handler runs.
"""
from __future__ import annotations

import importlib.util
import io
import itertools
import json
import os
import sys
import threading
import time
import uuid
from collections import deque
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator, Mapping

_counter = itertools.count(1)
LOG_LINES_KEPT = 500
_env_lock = threading.RLock()


class LambdaInvocationError(RuntimeError):
    """The handler raised; `.cause` is what it raised (API Gateway turns it into 401 or 500)."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.cause = cause


@dataclass
class LambdaContext:
    function_name: str
    aws_request_id: str
    deadline: float
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = ""
    log_group_name: str = ""
    log_stream_name: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


@contextmanager
def _environment(variables: Mapping[str, str]) -> Iterator[None]:
    with _env_lock:
        saved = {k: os.environ.get(k) for k in variables}
        os.environ.update(variables)
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


class InProcessLambda:
    """A function whose code is the directory `code_root` (what Lambda unpacks to /var/task) and whose Handler is
    CloudFormation's "package.module.function" string, e.g. "lambdas.authorizers.rest.handler".

    The handler module is loaded from its file under code_root as a fresh module of its real package, so relative
    imports inside it resolve to that package as installed in this process (for the authorizer asset: the same
    lambdas/ the asset was copied from; the synth cache key covers it)."""

    def __init__(self, handler: str, *, code_root: str | Path, environment: Mapping[str, str], function_name: str,
                 timeout_seconds: float = 10.0) -> None:
        module_path, _, function = handler.rpartition(".")
        root = Path(code_root).resolve()
        path = root.joinpath(*module_path.split(".")).with_suffix(".py") if module_path else None
        if not function or path is None or not path.is_file():
            raise ValueError(f"handler {handler!r} names no <module>.<function> whose file exists under {root}")
        self.function_name = function_name
        self.handler_name = handler
        self.environment = dict(environment)
        self.timeout_seconds = timeout_seconds
        self.invocations = 0
        self.log: deque[str] = deque(maxlen=LOG_LINES_KEPT)
        module_name = f"_authgate_sandbox_lambda_{next(_counter)}_{path.stem}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec is not None and spec.loader is not None
        module: ModuleType = importlib.util.module_from_spec(spec)
        module.__package__ = module_path.rpartition(".")[0]
        with _environment(self.environment):
            sys.modules[module_name] = module
            try:
                spec.loader.exec_module(module)
            finally:
                sys.modules.pop(module_name, None)
        self.module = module
        self.handler = getattr(module, function, None)
        if not callable(self.handler):
            raise ValueError(f"handler {handler!r}: {path} defines no function {function!r}")

    def invoke(self, event: Mapping[str, Any]) -> Any:
        """Run the handler once. What it prints (stdout and stderr) goes to `log` (Lambda sends both to CloudWatch),
        not to the terminal."""
        with _environment(self.environment):
            self.invocations += 1
            context = LambdaContext(self.function_name, str(uuid.uuid4()), time.monotonic() + self.timeout_seconds)
            captured = io.StringIO()
            try:
                with redirect_stdout(captured), redirect_stderr(captured):
                    return self.handler(dict(event), context)
            except Exception as exc:
                raise LambdaInvocationError(exc) from exc
            finally:
                self.log.extend(line for line in captured.getvalue().splitlines() if line.strip())

    def last_audit(self) -> dict:
        """The authorizer's last audit line (decision, code, route), or {} when it printed none."""
        for line in reversed(self.log):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and "decision" in record:
                return record
        return {}
