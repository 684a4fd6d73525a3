"""Throughput of lambdas.validation next to npm aws-jwt-verify (Node), on the same distinct RS256-2048 tokens, one core.

    python tests/bench/bench_reference_node.py [--quick] [--json]

The tokens are the kind tests/bench/bench_validation.py uses (distinct, RS256 with a 2048-bit key, iss/aud/exp/nbf/
iat and a scope claim). Both verifiers check signature, issuer, audience, expiry, not-before and one required
scope (`orders:read`):
  authgate          Verifier.verify, a fresh Verifier each round so every token is a verified-cache miss
  aws-jwt-verify    JwtRsaVerifier with the JWKS loaded by cacheJwks: verifySync, and the async verify() most
                    applications call (aws-jwt-verify has no verified-token cache, so reusing tokens is fair)
  bare              cryptography's RSA verify of the same signatures: the floor, for scale
This process pins itself to one core before it starts Node, so the Node child (every thread of it) inherits the
same single core. Rounds are interleaved (authgate, bare, node sync, node async, repeat); throughputs are the best
round of each, and each ratio is paired: the median over rounds of the two contenders' times in the same round, so a
noisy neighbour or a drifting host hurts both sides of every pair alike. Each side reports its own CPU time (Python: time.process_time;
Node: process.cpuUsage), so time another process takes on the shared core is billed to nobody. The Node side warms
V8 up before the first timed round. Target (issue 14): authgate >= 1.0x the faster of aws-jwt-verify's two calls,
printed beside the ratio, with the middle half of the rounds' paired ratios (when the target lies inside it, the
verdict is within the round-to-round noise). Exit 0 when met, 1 when missed, 2 when Node or aws-jwt-verify is
missing.
"""
from __future__ import annotations

import argparse
import base64
import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.bench.bench_validation import (CLOCK, QUICK_COUNT, QUICK_ROUNDS, ROUNDS, bare_verifier,  # noqa: E402
                                          paired_ratio, paired_spread, pin_to_one_core,
                                          rounds_of)

NODE_SIDE = Path(__file__).with_suffix(".mjs")
MODULE = REPO / "sandbox" / "node_modules" / "aws-jwt-verify" / "package.json"
SCOPE = "orders:read"
TARGET = 1.0   # authgate / aws-jwt-verify, distinct RS256 tokens


class NodeContender:
    """The Node process: set up once, then one timed round per request."""

    def __init__(self, setup: dict) -> None:
        self.process = subprocess.Popen(["node", str(NODE_SIDE)], cwd=REPO, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, bufsize=1)
        self.process.stdin.write(json.dumps(setup) + "\n")
        self.process.stdin.flush()
        ready = self.process.stdout.readline().strip()
        if ready != "ready":
            self.close()
            raise RuntimeError(f"aws-jwt-verify side did not start (said {ready!r}); see its stderr above")

    def round(self, mode: str) -> float:
        self.process.stdin.write(mode + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            raise RuntimeError(f"aws-jwt-verify side stopped during a {mode} round")
        return float(answer)

    def close(self) -> None:
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process.stdout.close()


def run(count: int, rounds: int) -> dict:
    from lambdas.validation import IssuerConfig, Verifier
    from tests.support.tokens import AUDIENCE, ISSUER, SigningKey, mint

    key = SigningKey.generate("RS256")
    tokens = [mint(key, scope="orders:read orders:write", lifetime=3600) for _ in range(count)]
    split = []
    for token in tokens:
        signing_input, _, sig = token.rpartition(".")
        split.append((signing_input.encode(), base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))))
    bare = bare_verifier(key, "RS256")
    scopes = (SCOPE,)

    def time_authgate() -> float:
        verifier = Verifier([IssuerConfig(ISSUER, [AUDIENCE], jwks=key.jwks(), algorithms=["RS256"])],
                            verified_cache_size=count + 1)
        verify = verifier.verify
        start = CLOCK()
        for token in tokens:
            verify(token, scopes)
        return CLOCK() - start

    def time_bare() -> float:
        start = CLOCK()
        for data, sig in split:
            bare(data, sig)
        return CLOCK() - start

    node = NodeContender({"issuer": ISSUER, "audience": AUDIENCE, "scope": [SCOPE], "jwks": key.jwks(),
                          "tokens": tokens})
    try:
        contenders = {"authgate": time_authgate, "bare": time_bare,
                      "aws-jwt-verify sync": lambda: node.round("sync"),
                      "aws-jwt-verify async": lambda: node.round("async")}
        seconds = rounds_of(contenders, rounds)
    finally:
        node.close()
    per_second = {name: count / min(values) for name, values in seconds.items()}
    # The reference in each round: the faster of aws-jwt-verify's two APIs.
    reference = [min(pair) for pair in zip(seconds["aws-jwt-verify sync"], seconds["aws-jwt-verify async"])]
    return {"alg": "RS256", "key_bits": 2048, "tokens": count, "rounds": rounds, "per_second": per_second,
            "ratios": {"authgate/aws-jwt-verify": paired_ratio(seconds["authgate"], reference),
                       "authgate/bare": paired_ratio(seconds["authgate"], seconds["bare"]),
                       "aws-jwt-verify/bare": paired_ratio(reference, seconds["bare"])},
            "spreads": {"authgate/aws-jwt-verify": paired_spread(seconds["authgate"], reference)}}


def node_version() -> str:
    return subprocess.run(["node", "--version"], capture_output=True, text=True, check=True).stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer tokens and rounds (a smoke run, noisier)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--rounds", type=int, help=f"interleaved rounds (default {ROUNDS}; --quick {QUICK_ROUNDS})")
    args = parser.parse_args(argv)
    if shutil.which("node") is None or not MODULE.exists():
        print("cannot compare: needs `node` on PATH and aws-jwt-verify in sandbox/node_modules "
              "(run `npm install` in sandbox/)", file=sys.stderr)
        return 2
    cpu = pin_to_one_core()  # before Node starts: the child inherits this affinity
    count, rounds = (QUICK_COUNT, QUICK_ROUNDS) if args.quick else (2000, ROUNDS)
    result = run(count, args.rounds or rounds)
    rounds = args.rounds or rounds
    ratio = result["ratios"]["authgate/aws-jwt-verify"]
    met = ratio >= TARGET
    low, high = result["spreads"]["authgate/aws-jwt-verify"]
    verdict = (f"authgate/aws-jwt-verify {ratio:.3f}x (middle half of rounds {low:.3f}-{high:.3f}x)  "
               f"target >= {TARGET}x: {'met' if met else 'MISSED'}")
    if args.json:
        print(json.dumps({"cpu": cpu, "node": node_version(), "result": result, "target": TARGET, "met": met},
                         indent=2))
    else:
        ps, ra = result["per_second"], result["ratios"]
        print(f"pinned to cpu {cpu} (Node {node_version()} inherits it); {count} distinct RS256-2048 tokens, "
              f"best of {rounds} interleaved rounds (tokens per CPU second; ratios paired per round)")
        for name in ("bare", "authgate", "aws-jwt-verify sync", "aws-jwt-verify async"):
            print(f"  {name:<22}{ps[name]:>10.0f}")
        print(f"  authgate/bare {ra['authgate/bare']:.2f}x   aws-jwt-verify/bare {ra['aws-jwt-verify/bare']:.2f}x")
        print(verdict)
    return 0 if met else 1

if __name__ == "__main__":
    sys.exit(main())
