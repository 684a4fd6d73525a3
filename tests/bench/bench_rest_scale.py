"""REST authorizer at scale: init + first decision, warm decision and the reader's policy over 100, 1,000 and 5,000
routes (issue 14's curve), with the issue's targets checked.

    .venv/bin/python tests/bench/bench_rest_scale.py [--quick]

The tables have the shape of bench_authorizers.py (four routes per service: GET /svcN/items, GET /svcN/items/{id},
POST /svcN/items, DELETE /svcN/items/{id}, plus $connect). "init + first" is a fresh interpreter importing the REST
handler (route table load, verifier, route reach analysis) and answering one TOKEN event, as CPU time from the
interpreter's start (what a dedicated Lambda core spends; nothing here waits on I/O) and as wall time from the
import (which, on a shared machine, also counts the time other work held the core). The targets are checked on the
CPU time. "warm p50" is the median of decisions with the same reader token in one warm process. The reader has scope
`read`, which every GET route asks for. Keys are in memory, so nothing waits on a network. Exits 1 when a target is
missed.
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
sys.path.insert(0, str(ROOT / "tests" / "bench"))

from bench_authorizers import events, table, warm  # noqa: E402
from tests.support.tokens import SigningKey, mint  # noqa: E402

SIZES = (100, 1000, 5000)
# Issue 14's figures: init + first decision per size (seconds), the warm p50 ratio 5,000 : 100 routes, and the
# encodings the reader's policy may use.
INIT_TARGET_S = {1000: 0.3, 5000: 2.0}
WARM_RATIO_TARGET = 2.0
ROUTE_WIDE = ("exact", "deny_list")


COLD = """
import contextlib, importlib, io, json, sys, time
started = time.perf_counter()
module = importlib.import_module("lambdas.authorizers.rest")
with contextlib.redirect_stdout(io.StringIO()):
    module.handler(json.loads(sys.argv[1]))
print(json.dumps({"cpu_ms": time.process_time() * 1000, "wall_ms": (time.perf_counter() - started) * 1000}))
"""


def cold_ms(event: dict, env: dict, runs: int) -> tuple[float, float]:
    """Median CPU and wall milliseconds of `runs` fresh interpreters importing the handler and deciding once."""
    results = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", COLD, json.dumps(event)], capture_output=True, text=True,
                             env={**env, "PYTHONPATH": str(ROOT)}, cwd=ROOT, check=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return (statistics.median(r["cpu_ms"] for r in results), statistics.median(r["wall_ms"] for r in results))


def any_heavy_analysis_s(size: int) -> float:
    """CPU seconds of the init-time reach analysis for a table where half the routes are ANY (whose `*/path`
    patterns can place their literals at any depth): the case a literal-prefix index alone does not help."""
    from lambdas.authorizers.iam_policy import PolicyBuilder
    from tests.support.route_tables import keyless_api
    api = keyless_api([key for i in range(size // 4) for key in (f"ANY /svc{i}/items/{{id}}", f"GET /svc{i}/items",
                                                                 f"POST /svc{i}/items", f"ANY /svc{i}/status")])
    started = time.process_time()
    PolicyBuilder(api).reach.analyse_all()
    return time.process_time() - started


def reader_policy(event: dict) -> tuple[str, int]:
    module = importlib.import_module("lambdas.authorizers.rest")
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink):
        module.handler(event)
    line = json.loads(sink.getvalue().strip().splitlines()[-1])
    return line["policy"], line["policy_bytes"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs (a smoke run)")
    args = parser.parse_args()
    iterations, cold_runs = (300, 1) if args.quick else (3000, 5)
    key = SigningKey.generate("RS256")
    token = mint(key, scope="read", roles=[], client_id="bench")
    print(f"REST authorizer, reader token (scope read); python {sys.version.split()[0]}; median of {cold_runs} fresh "
          f"interpreters, warm p50 of {iterations} decisions")
    print(f"{'routes':>7} {'init+first CPU ms':>18} {'(wall ms)':>10} {'warm p50 us':>12} {'reader policy':>14} "
          f"{'bytes':>6}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in SIZES:
            path = Path(tmp) / f"routes-{size}.json"
            path.write_text(json.dumps(table(key, size // 4)))
            env = {**os.environ, "AUTHGATE_POLICY": str(path), "AUTHGATE_API": "orders"}
            os.environ.update(AUTHGATE_POLICY=str(path), AUTHGATE_API="orders")
            event = events(token)["rest"]
            cpu_ms, wall_ms = cold_ms(event, env, cold_runs)
            p50, _ = warm("rest", event, iterations)
            strategy, size_bytes = reader_policy(event)
            results[size] = (cpu_ms, p50, strategy)
            print(f"{size:>7} {cpu_ms:>18.1f} {wall_ms:>10.1f} {p50:>12.1f} {strategy:>14} {size_bytes:>6}", flush=True)
    print("reach analysis, half the routes ANY: " + ", ".join(
        f"{size} routes {any_heavy_analysis_s(size):.2f} s CPU" for size in SIZES))
    missed = [f"init + first decision at {size} routes {results[size][0] / 1000:.2f} s CPU > {limit} s"
              for size, limit in INIT_TARGET_S.items() if results[size][0] / 1000 > limit]
    ratio = results[5000][1] / results[100][1]
    print(f"warm p50 5,000 : 100 routes = {ratio:.2f}x (target <= {WARM_RATIO_TARGET}x)")
    if ratio > WARM_RATIO_TARGET:
        missed.append(f"warm p50 ratio {ratio:.2f}x > {WARM_RATIO_TARGET}x")
    missed += [f"reader policy at {size} routes is {results[size][2]}" for size in (1000, 5000)
               if results[size][2] not in ROUTE_WIDE]
    print("targets: " + ("all met" if not missed else "MISSED: " + "; ".join(missed)))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
