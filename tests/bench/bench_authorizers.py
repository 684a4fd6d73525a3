"""Authorizer benchmark: warm invocation latency and cold start (fresh interpreter: import + first decision) of the
REST, HTTP API and WebSocket handlers, plus the REST policy size for a large route table.

    .venv/bin/python tests/bench/bench_authorizers.py [--quick]

Keys are in-memory (no network), so the figures are the handlers' own cost: token verification, route matching,
the route-wide policy and the audit line (written to /dev/null here). "cold import" includes everything done at init
(loading the route table and, for REST, the route reach analysis); "cold first" is the first decision after it.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.tokens import AUDIENCE, ISSUER, SigningKey, mint  # noqa: E402

PREFIX = "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/prod"


def _route(key, **fields):
    entry = {"route_key": key, "issuers": ["corp"], **fields}
    if not key.startswith("$"):
        entry["method"], entry["path"] = key.split(" ", 1)
    return entry


def table(key, services):
    routes = [_route("$connect", scopes=["chat:connect"])]
    for i in range(services):
        routes += [_route(f"GET /svc{i}/items", scopes=["read"]), _route(f"GET /svc{i}/items/{{id}}", scopes=["read"]),
                   _route(f"POST /svc{i}/items", scopes=["write"]),
                   _route(f"DELETE /svc{i}/items/{{id}}", scopes=["write"], roles=["admin"])]
    return {"format": "authgate.routes/v1",
            "issuers": {"corp": {"issuer": ISSUER, "audiences": [AUDIENCE], "jwks": key.jwks()}},
            "apis": {"orders": {"routes": routes}}}


def events(token):
    return {
        "rest": {"type": "TOKEN", "authorizationToken": f"Bearer {token}", "methodArn": f"{PREFIX}/GET/svc0/items/7"},
        "http_api": {"version": "2.0", "type": "REQUEST", "routeArn": f"{PREFIX}/GET/svc0/items/7",
                     "routeKey": "GET /svc0/items/{id}", "rawPath": "/svc0/items/7",
                     "headers": {"authorization": f"Bearer {token}"},
                     "requestContext": {"http": {"method": "GET", "path": "/svc0/items/7"}, "requestId": "r"}},
        "websocket": {"type": "REQUEST", "methodArn": f"{PREFIX}/$connect",
                      "queryStringParameters": {"access_token": token}, "headers": {},
                      "requestContext": {"routeKey": "$connect", "requestId": "r"}},
    }


def warm(kind, event, iterations):
    module = importlib.reload(importlib.import_module(f"lambdas.authorizers.{kind}"))
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink):
        module.handler(event)  # the first call builds per-principal state (the REST policy encodings)
        samples = []
        for _ in range(iterations):
            started = time.perf_counter_ns()
            module.handler(event)
            samples.append((time.perf_counter_ns() - started) / 1000)
            sink.seek(0)
            sink.truncate()
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


COLD = """
import io, json, sys, time, contextlib
started = time.perf_counter()
import importlib
module = importlib.import_module("lambdas.authorizers." + sys.argv[1])
imported = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()):
    module.handler(json.loads(sys.argv[2]))
done = time.perf_counter()
print(json.dumps({"import_ms": (imported - started) * 1000, "first_ms": (done - imported) * 1000}))
"""


def cold(kind, event, env, runs):
    results = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", COLD, kind, json.dumps(event)], capture_output=True, text=True,
                             env={**env, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "0"}, cwd=ROOT,
                             check=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return (statistics.median(r["import_ms"] for r in results), statistics.median(r["first_ms"] for r in results))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    args = parser.parse_args()
    iterations, cold_runs, services = (200, 3, 25) if args.quick else (3000, 10, 25)
    key = SigningKey.generate("RS256")
    token = mint(key, scope="read", roles=[], client_id="bench")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "routes.json"
        path.write_text(json.dumps(table(key, services)))
        env = {**os.environ, "AUTHGATE_POLICY": str(path), "AUTHGATE_API": "orders"}
        os.environ.update(AUTHGATE_POLICY=str(path), AUTHGATE_API="orders")
        print(f"route table: {4 * services + 1} routes; RS256 keys in memory; python {sys.version.split()[0]}")
        print(f"{'handler':<10} {'warm p50 us':>12} {'warm p99 us':>12} {'cold import ms':>15} {'cold first ms':>14}")
        for kind, event in events(token).items():
            p50, p99 = warm(kind, event, iterations)
            import_ms, first_ms = cold(kind, event, env, cold_runs)
            print(f"{kind:<10} {p50:>12.1f} {p99:>12.1f} {import_ms:>15.1f} {first_ms:>14.1f}")
        rest = importlib.reload(importlib.import_module("lambdas.authorizers.rest"))
        with contextlib.redirect_stdout(io.StringIO()):
            policy = rest.handler(events(token)["rest"])["policyDocument"]
        size = len(json.dumps(policy, separators=(",", ":")))
        print(f"REST policy for a reader over {4 * services} routes: {size} bytes, "
              f"{sum(len(s['Resource']) for s in policy['Statement'])} resources")
    return 0


if __name__ == "__main__":
    sys.exit(main())
