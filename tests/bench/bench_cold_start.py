"""Cold start: a fresh interpreter imports the validator and verifies one token against an in-memory JWKS.

    python tests/bench/bench_cold_start.py [--quick] [--json]

authgate (lambdas.validation) and PyJWT (jwt.PyJWKSet + jwt.decode) do the same job in alternating fresh
interpreters pinned to one core; the median wall time of each is compared. Target (issue 2): authgate <= 0.7x
PyJWT. Exits 1 when missed. Interpreter start-up is part of both timings, as it is of a Lambda cold start.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
TARGET = 0.7

AUTHGATE_JOB = """
import json, sys
from lambdas.validation import IssuerConfig, Verifier
job = json.load(open(sys.argv[1]))
verifier = Verifier([IssuerConfig(job["iss"], [job["aud"]], jwks=job["jwks"])])
assert verifier.verify(job["token"]).subject == "user-123"
"""

PYJWT_JOB = """
import json, sys
import jwt
job = json.load(open(sys.argv[1]))
keys = jwt.PyJWKSet.from_dict(job["jwks"])
kid = jwt.get_unverified_header(job["token"])["kid"]
key = next(k for k in keys.keys if k.key_id == kid)
claims = jwt.decode(job["token"], key, algorithms=["RS256"], audience=job["aud"], issuer=job["iss"])
assert claims["sub"] == "user-123"
"""


def pin_to_one_core() -> int | None:
    try:
        cpu = sorted(os.sched_getaffinity(0))[-1]
        os.sched_setaffinity(0, {cpu})  # inherited by the child interpreters
        return cpu
    except (AttributeError, OSError):
        return None


def run_once(code: str, job_path: str, *, write_bytecode: bool = False) -> float:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if not write_bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, job_path], cwd=REPO, check=True, env=env)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer interpreter launches (noisier)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    cpu = pin_to_one_core()
    from tests.support.tokens import AUDIENCE, ISSUER, SigningKey, mint

    key = SigningKey.generate("RS256")
    job = {"iss": ISSUER, "aud": AUDIENCE, "jwks": key.jwks(), "token": mint(key, lifetime=3600)}
    runs = 6 if args.quick else 25
    with tempfile.TemporaryDirectory() as tmp:
        job_path = str(Path(tmp) / "job.json")
        Path(job_path).write_text(json.dumps(job))
        # Warm the OS file cache and write both libraries' byte-code caches, so both sides load compiled modules
        # (pip already compiled PyJWT's at install time; an editable checkout of authgate has none until this run,
        # and some machines set PYTHONDONTWRITEBYTECODE globally).
        run_once(AUTHGATE_JOB, job_path, write_bytecode=True)
        run_once(PYJWT_JOB, job_path, write_bytecode=True)
        times: dict[str, list[float]] = {"authgate": [], "pyjwt": []}
        for _ in range(runs):
            times["authgate"].append(run_once(AUTHGATE_JOB, job_path))
            times["pyjwt"].append(run_once(PYJWT_JOB, job_path))
    median = {name: statistics.median(values) for name, values in times.items()}
    ratio = median["authgate"] / median["pyjwt"]
    result = {"cpu": cpu, "runs": runs, "median_ms": {k: round(v * 1000, 1) for k, v in median.items()},
              "min_ms": {k: round(min(v) * 1000, 1) for k, v in times.items()}, "ratio": round(ratio, 3),
              "target": TARGET, "met": ratio <= TARGET}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"pinned to cpu {cpu}; {runs} fresh interpreters each, alternating (import + verify one RS256 token)")
        print(f"{'':10}{'median ms':>10}{'min ms':>9}")
        for name in ("authgate", "pyjwt"):
            print(f"{name:10}{result['median_ms'][name]:>10.1f}{result['min_ms'][name]:>9.1f}")
        print(f"authgate/pyjwt = {ratio:.2f}x (target <= {TARGET}x): {'met' if result['met'] else 'MISSED'}")
    return 0 if result["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
