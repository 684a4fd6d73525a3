"""Runs a Lambda handler in-process the way the Lambda runtime would: its own module instance, its environment,
a context object, and a timeout budget.

Each emulated function gets a fresh module instance (module-level caches are per function, as in Lambda), and its
environment variables are set while it is imported and while it runs; a lock serialises invocations because the
process environment is shared (a Lambda execution environment also runs one invocation at a time).
"""
from __future__ import annotations

import importlib.util
import itertools
import os
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator, Mapping

REPO_ROOT = Path(__file__).resolve().parents[2]
_counter = itertools.count(1)
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
    """`handler_ref` is "path/to/module.py:function" relative to the repository (CloudFormation's Handler field
    names the same function as "module.function" inside the asset)."""

    def __init__(self, handler_ref: str, *, environment: Mapping[str, str], function_name: str,
                 timeout_seconds: float = 10.0) -> None:
        path_text, _, function = handler_ref.partition(":")
        path = (REPO_ROOT / path_text).resolve()
        if not path.is_file() or not function:
            raise ValueError(f"handler {handler_ref!r} is not <file.py>:<function> inside {REPO_ROOT}")
        self.function_name = function_name
        self.environment = dict(environment)
        self.timeout_seconds = timeout_seconds
        self.invocations = 0
        module_name = f"_authgate_sandbox_lambda_{next(_counter)}_{path.stem}"
        package = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts[:-1])
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec is not None and spec.loader is not None
        module: ModuleType = importlib.util.module_from_spec(spec)
        module.__package__ = package  # relative imports inside the handler resolve against its real package
        with _environment(self.environment):
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
        self.module = module
        self.handler = getattr(module, function)

    def invoke(self, event: Mapping[str, Any]) -> Any:
        with _environment(self.environment):
            self.invocations += 1
            context = LambdaContext(self.function_name, str(uuid.uuid4()), time.monotonic() + self.timeout_seconds)
            try:
                return self.handler(dict(event), context)
            except Exception as exc:
                raise LambdaInvocationError(exc) from exc
