"""Forward-auth benchmark: decisions per second per core of the decision service on loopback under concurrent load,
with client-side p50/p99 latency, against the same decision made by the HTTP API Lambda authorizer in-process.

    .venv/bin/python tests/bench/bench_forward_auth.py [--quick] [--connections 32] [--seconds 10] [--tokens 2000]

The service runs as `authgate serve forward-auth` (uvicorn, one process) pinned to one CPU; the load generator (an
asyncio HTTP/1.1 client with keep-alive connections, NGINX auth_request headers) runs in this process on the other
CPU when there is one. "per core" is requests answered divided by the server process's own CPU seconds (utime +
stime from /proc), so a client competing for the machine does not flatter or penalise it; the wall-clock rate is
printed beside it. Tokens are RS256 with keys in the route table (no network). By default the client cycles through
more distinct tokens than the verified-token cache holds (1024), so every decision verifies a signature; --tokens 100
measures the cached path. The in-process figures time the same route decision for the same tokens: the HTTP API
authorizer's `authorize()` on a payload 2.0 event, and the forward-auth core (`ForwardAuthService.check`), which
together show what the HTTP serving costs. Audit lines go to /dev/null in both.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
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

ROUTE_KEY, PATH = "GET /svc0/items/{id}", "/svc0/items/7"


def route_table(key: SigningKey, services: int = 25) -> dict:
    routes = []
    for i in range(services):
        for method, path, scopes in (("GET", f"/svc{i}/items", ["read"]), ("GET", f"/svc{i}/items/{{id}}", ["read"]),
                                     ("POST", f"/svc{i}/items", ["write"])):
            routes.append({"route_key": f"{method} {path}", "method": method, "path": path, "issuers": ["corp"],
                           "scopes": scopes})
    return {"format": "authgate.routes/v1",
            "issuers": {"corp": {"issuer": ISSUER, "audiences": [AUDIENCE], "jwks": key.jwks()}},
            "apis": {"orders": {"routes": routes}}}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def load(port: int, tokens: list[str], *, connections: int, seconds: float) -> tuple[int, list[float], dict]:
    """Keep `connections` requests in flight for `seconds`; returns (answers, latencies in us, status counts)."""
    requests = [(f"GET /auth HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Original-Method: GET\r\nX-Original-URI: {PATH}\r\n"
                 f"Authorization: Bearer {token}\r\n\r\n").encode() for token in tokens]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + seconds
    counter = iter(range(10 ** 12))

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < deadline:
                request = requests[next(counter) % len(requests)]
                started = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                if length:
                    await reader.readexactly(length)
                latencies.append((time.perf_counter() - started) * 1e6)
                status = int(head[9:12])
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return len(latencies), latencies, statuses


def serve(table_path: str) -> tuple[subprocess.Popen, int]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AUTHGATE_FORWARD_AUTH_CONVENTION": "nginx"}
    proc = subprocess.Popen([sys.executable, "-m", "stacks.cli", "serve", "forward-auth", "--routes", table_path,
                             "--api", "orders", "--listen", "127.0.0.1:0"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    if "listening on" not in line:
        proc.kill()
        raise SystemExit(f"the service did not start: {line}{proc.stderr.read()}")
    return proc, int(line.split("listening on http://", 1)[1].split()[0].rsplit(":", 1)[1])


def bench_service(table_path: str, tokens: list[str], *, connections: int, seconds: float) -> dict:
    proc, port = serve(table_path)
    cpus = sorted(os.sched_getaffinity(0))
    try:
        if len(cpus) > 1:
            os.sched_setaffinity(proc.pid, {cpus[0]})
            os.sched_setaffinity(0, set(cpus[1:]))
        asyncio.run(load(port, tokens, connections=connections, seconds=min(2.0, seconds / 3)))   # warm up
        cpu_before, wall_before = cpu_seconds(proc.pid), time.perf_counter()
        answered, latencies, statuses = asyncio.run(load(port, tokens, connections=connections, seconds=seconds))
        cpu, wall = cpu_seconds(proc.pid) - cpu_before, time.perf_counter() - wall_before
    finally:
        os.sched_setaffinity(0, set(cpus))
        proc.terminate()
        proc.wait(timeout=15)
    if set(statuses) != {200}:
        raise SystemExit(f"the service answered {statuses}; every benchmark request should be allowed")
    return {"answered": answered, "per_cpu_second": answered / cpu if cpu else float("nan"),
            "per_wall_second": answered / wall, "server_cpu_share": cpu / wall,
            "p50_us": percentile(latencies, 0.50), "p99_us": percentile(latencies, 0.99)}


def timed(decide, tokens: list[str], seconds: float) -> dict:
    """Call decide(token) round-robin for `seconds` of CPU in this process; per-call latency percentiles."""
    latencies = []
    index = 0
    sink = io.StringIO()
    cpu_started = time.process_time()
    with contextlib.redirect_stdout(sink):
        while time.process_time() - cpu_started < seconds:
            for _ in range(200):
                token = tokens[index % len(tokens)]
                index += 1
                started = time.perf_counter_ns()
                decide(token)
                latencies.append((time.perf_counter_ns() - started) / 1000)
            sink.seek(0)
            sink.truncate()
    cpu = time.process_time() - cpu_started
    return {"per_cpu_second": len(latencies) / cpu, "p50_us": percentile(latencies, 0.5),
            "p99_us": percentile(latencies, 0.99)}


def bench_in_process(table_path: str, tokens: list[str], seconds: float) -> tuple[dict, dict]:
    os.environ.update(AUTHGATE_POLICY=table_path, AUTHGATE_API="orders")
    with contextlib.redirect_stderr(io.StringIO()):
        from lambdas.authorizers import http_api
    from lambdas.authorizers.runtime import AuthorizerRuntime
    from lambdas.forward_auth.service import ForwardAuthService, ForwardAuthSettings
    from lambdas.validation.route_table import RouteTable

    runtime = http_api._RUNTIME.get()
    settings = http_api.HttpApiSettings({})

    def authorizer(token: str) -> None:
        event = {"version": "2.0", "type": "REQUEST", "routeKey": ROUTE_KEY, "rawPath": PATH,
                 "routeArn": f"arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/prod/GET{PATH}",
                 "headers": {"authorization": f"Bearer {token}"},
                 "requestContext": {"http": {"method": "GET", "path": PATH}, "requestId": "r"}}
        if not http_api.authorize(runtime, event, settings)["isAuthorized"]:
            raise SystemExit("the authorizer refused a benchmark token")

    service = ForwardAuthService(AuthorizerRuntime(RouteTable.load(table_path), "orders"),
                                 ForwardAuthSettings(convention="nginx"))

    def core(token: str) -> None:
        headers = {"x-original-method": ("GET",), "x-original-uri": (PATH,), "authorization": (f"Bearer {token}",)}
        if service.check("GET", "/auth", headers).status != 200:
            raise SystemExit("the forward-auth core refused a benchmark token")

    return timed(authorizer, tokens, seconds), timed(core, tokens, seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test, not a measurement)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent keep-alive connections (32)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per run (10)")
    parser.add_argument("--tokens", type=int, default=2000,
                        help="distinct tokens cycled (2000: more than the verified-token cache, every one verified)")
    args = parser.parse_args(argv)
    seconds = 2.0 if args.quick else args.seconds
    key = SigningKey.generate("RS256")
    tokens = [mint(key, scope="read", client_id="bench", lifetime=3600) for _ in range(args.tokens)]
    with tempfile.TemporaryDirectory() as tmp:
        table_path = str(Path(tmp) / "routes.json")
        Path(table_path).write_text(json.dumps(route_table(key)))
        served = bench_service(table_path, tokens, connections=args.connections, seconds=seconds)
        authorizer, core = bench_in_process(table_path, tokens, seconds)
    print(f"forward-auth decisions, RS256, {args.tokens} distinct tokens cycled, 75-route table, "
          f"{args.connections} connections, {seconds:g} s")
    print(f"{'':44} {'decisions/s per core':>21} {'p50 us':>9} {'p99 us':>9}")
    print(f"{'forward-auth service (uvicorn, loopback HTTP)':44} {served['per_cpu_second']:>21,.0f} "
          f"{served['p50_us']:>9,.0f} {served['p99_us']:>9,.0f}")
    print(f"{'  its core in-process (ForwardAuthService)':44} {core['per_cpu_second']:>21,.0f} "
          f"{core['p50_us']:>9,.1f} {core['p99_us']:>9,.1f}")
    print(f"{'HTTP API authorizer in-process (authorize)':44} {authorizer['per_cpu_second']:>21,.0f} "
          f"{authorizer['p50_us']:>9,.1f} {authorizer['p99_us']:>9,.1f}")
    print(f"service wall clock: {served['per_wall_second']:,.0f} decisions/s using {served['server_cpu_share']:.2f} "
          f"of a CPU; {served['answered']:,} answered, all 200. Service latency is the client's, queueing included.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
