"""A request through an emulated gateway, as the demo makes it: the answer, whether the backend saw it, what the
gateway checked, and the narration line and expectation for it."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from sandbox.report import Narrator, describe_token


@dataclass(frozen=True)
class CallResult:
    status: int
    body: dict
    arrived: int            # how many requests reached the backend because of this call (0 or 1)
    checked: str
    code: str


def call_through(sandbox, gateway, method: str, path: str, token: str | None, *, context: Any = None) -> CallResult:
    """`sandbox` is anything with the running `backend` (its arrival counter), `gateway` a GatewayHandle; `context`
    an ssl.SSLContext for a gateway served over (mutual) TLS."""
    headers = {"authorization": f"Bearer {token}"} if token else {}
    before = sandbox.backend.total_arrivals
    seen_events = len(gateway.server.events)
    request = urllib.request.Request(gateway.url + path, method=method, headers=headers,
                                     data=b"{}" if method in ("POST", "PUT", "PATCH") else None)
    try:
        with urllib.request.urlopen(request, timeout=15, context=context) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        body = {"raw": raw[:200].decode(errors="replace")}
    if hasattr(gateway.server, "wait_for_events"):  # a real proxy logs the request after answering it
        gateway.server.wait_for_events(seen_events + 1)
    events = gateway.server.events[seen_events:]
    decision = events[-1].decision if events else None
    return CallResult(status, body, sandbox.backend.total_arrivals - before,
                      decision.checked if decision else "", decision.code if decision else "")


def stopped_at(result: CallResult) -> str:
    if result.status < 400:
        return "backend"
    return "backend guard" if result.arrived else "gateway"


def expect_call(narrator: Narrator, sandbox, step: str, caller: str, gateway, route: tuple[str, str],
                token: str | None, status: int, where: str, *, context: Any = None) -> CallResult:
    """Call `route` through `gateway`, narrate the hop, and expect `status` answered at `where` (gateway, backend
    guard, backend)."""
    method, path = route
    result = call_through(sandbox, gateway, method, path, token, context=context)
    answer = f"{result.status}" + (f" {result.code}" if result.code else "") + f", stopped at: {stopped_at(result)}"
    shown = describe_token(token) if token else "no token"
    narrator.hop(f"{caller} -> {gateway.title}", f"{method} {path} with {shown}", answer)
    if result.checked:
        narrator.note(f"    checked: {result.checked}")
    narrator.expect(step, gateway.title, f"{status} at {where}", f"{result.status} at {stopped_at(result)}")
    return result
