"""Pulumi unit-test support shared by the GCP and Azure tests: recording mocks and stack config as Pulumi passes it."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import yaml

from stacks.pulumi_program.settings import ConfigSource

ROOT = Path(__file__).resolve().parents[2]


class RecordingMocks(pulumi.runtime.Mocks):
    """Records every resource a program registers; a cloud's subclass fills in the outputs its provider computes."""

    def __init__(self) -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def provider_outputs(self, args: pulumi.runtime.MockResourceArgs, state: dict[str, Any]) -> str | None:
        """Add what the provider would compute to `state`; return a resource id when the default will not do."""
        return None

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self.resources.append(args)
        state: dict[str, Any] = dict(args.inputs)
        resource_id = self.provider_outputs(args, state)
        return [resource_id or f"{args.name}-id", state]

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}

    def of_type(self, typ: str) -> list[pulumi.runtime.MockResourceArgs]:
        return [r for r in self.resources if r.typ == typ]

    def one(self, typ: str) -> dict[str, Any]:
        found = self.of_type(typ)
        assert len(found) == 1, f"expected one {typ}, found {[r.name for r in found]}"
        return found[0].inputs

    def install(self, stack: str) -> "RecordingMocks":
        _ensure_event_loop()
        pulumi.runtime.set_mocks(self, project="authgate", stack=stack, preview=False)
        return self


def _ensure_event_loop() -> None:
    """Pulumi's mocks run on the main thread's current event loop. A test earlier in the same process that used
    asyncio.run() (an ASGI lifespan, say) leaves that thread without one, and every later Pulumi test would then fail
    with "There is no current event loop", whatever the order the files run in."""
    import asyncio
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            loop = asyncio.get_event_loop()
        except RuntimeError:
            loop = None
    if loop is None or loop.is_closed():
        asyncio.set_event_loop(asyncio.new_event_loop())


def stack_config(file_name: str, **overrides: Any) -> ConfigSource:
    """A stack file's config as Pulumi hands it to the program (see stack_config_values)."""
    return ConfigSource(stack_config_values(file_name, **overrides).get)


def stack_config_values(file_name: str, **overrides: Any) -> dict[str, str]:
    """A stack file's config values as Pulumi passes them: structured values arrive as JSON text.
    Overrides use `__` for `:` (authgate__api="x"); None removes a key."""
    raw = yaml.safe_load((ROOT / file_name).read_text())["config"]
    values = {key: json.dumps(value) if isinstance(value, (dict, list)) else str(value) for key, value in raw.items()}
    for key, value in overrides.items():
        key = key.replace("__", ":")
        if value is None:
            values.pop(key, None)
        else:
            values[key] = json.dumps(value) if isinstance(value, (dict, list)) else value
    return values
