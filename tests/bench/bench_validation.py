"""Throughput of lambdas.validation against the bare cryptography verify and PyJWT, on one pinned core.

    python tests/bench/bench_validation.py [--quick] [--json] [--rounds N]

For RS256-2048, ES256 and Ed25519 it times, in interleaved rounds so a noisy neighbour hurts all contenders alike
(throughputs: each one's best round; ratios: paired, the median over rounds of the two contenders' times in the same
round, steadier than a ratio of two best rounds when the host's speed drifts):
  bare      cryptography's verify of the same signatures (prebuilt key, padding and hash objects): the floor
  authgate  Verifier.verify of distinct tokens with every claim check and a scope requirement
  pyjwt     jwt.decode of the same tokens with a prebuilt key object, audience and issuer checks
  hit       Verifier.verify of one token again (the verified-token cache)
Times are the process's CPU time (time.process_time), not wall time: on a shared machine another process running on
the pinned core would otherwise be billed to whichever contender it interrupted, and the ratios would measure the
neighbours. Every contender runs the same way, so the ratios stay like for like. As in `timeit`, the garbage
collector is run before and paused during each timed block: a collection triggered by one contender's garbage would
otherwise land in whichever contender happened to run next, which made run-to-run ratios swing by 0.2x here.
ROUNDS rounds by default: with 7, the median of the paired ratios of unchanged code still moved by 0.1x between runs
minutes apart (0.59-0.69x RS256/bare); more rounds narrow the median's spread and change nothing else.
Targets (issue 14), enforced for RS256 and each printed beside its ratio: authgate >= 0.65x bare, >= 2.2x pyjwt;
hit >= 100x pyjwt (bench_reference_node.py holds the fourth, >= 1.0x npm aws-jwt-verify). Each verdict line also
prints the middle half of the rounds' paired ratios: a target inside it is within the round-to-round noise. ES256
and Ed25519 are reported the same way. Exits 1 when a target is missed.
"""
from __future__ import annotations

import argparse
import base64
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

# Issue 14 restated them: 0.8x of the bare verify is out of reach (the standard library's base64 and JSON calls alone
# take most of that budget, see --breakdown); these keep the ratios from slipping.
TARGETS = {"authgate/bare": 0.65, "authgate/pyjwt": 2.2, "hit/pyjwt": 100.0}
# The ratios reported for every alg: "a/b" is contender a's throughput over contender b's.
PAIRS = ("authgate/bare", "authgate/pyjwt", "hit/pyjwt")
ROUNDS = 21
QUICK_COUNT, QUICK_ROUNDS = 300, 3
CLOCK = time.process_time  # CPU time of this process: see the module docstring


def pin_to_one_core() -> int | None:
    try:
        cpu = sorted(os.sched_getaffinity(0))[-1]
        os.sched_setaffinity(0, {cpu})
        return cpu
    except (AttributeError, OSError):
        return None


def bare_verifier(key, alg):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    public = key.private_key.public_key()
    if alg == "RS256":
        pad, h = padding.PKCS1v15(), hashes.SHA256()
        return lambda data, sig: public.verify(sig, data, pad, h)
    if alg == "ES256":
        ecdsa = ec.ECDSA(hashes.SHA256())
        return lambda data, sig: public.verify(
            encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")), data, ecdsa)
    return lambda data, sig: public.verify(sig, data)


def rounds_of(timers: dict, rounds: int) -> dict[str, list[float]]:
    """The seconds each timer reported in each of `rounds` interleaved rounds. A timer times only its own loop (setup
    stays outside its clock); the garbage collector runs before each timer and is paused during it."""
    seconds: dict[str, list[float]] = {name: [] for name in timers}
    for _ in range(rounds):
        for name, timer in timers.items():
            gc.collect()
            gc.disable()
            try:
                seconds[name].append(timer())
            finally:
                gc.enable()
    return seconds


def best_of(timers: dict, rounds: int) -> dict:
    """The least seconds each timer reported over `rounds` interleaved rounds (see rounds_of)."""
    return {name: min(values) for name, values in rounds_of(timers, rounds).items()}


def paired_ratio(faster: list[float], slower: list[float]) -> float:
    """How many times `faster`'s throughput is `slower`'s: the median over rounds of slower's seconds over faster's
    in the same round. Contenders of one round ran back to back, on the machine in one state, so a host whose speed
    drifts during the run moves both sides of each pair alike; best-of for each contender alone can pair one's fast
    moment with the other's slow one."""
    return statistics.median(round_ratios(faster, slower))


def paired_spread(faster: list[float], slower: list[float]) -> tuple[float, float]:
    """The middle half of the rounds' paired ratios (first and third quartile), printed beside a verdict: when a
    target lies inside it, the verdict is within the round-to-round noise and may flip on the next run."""
    ratios = round_ratios(faster, slower)
    if len(ratios) < 2:
        return ratios[0], ratios[0]
    q1, _, q3 = statistics.quantiles(ratios, n=4)
    return q1, q3


def round_ratios(faster: list[float], slower: list[float]) -> list[float]:
    """Each round's ratio: slower's seconds over faster's in that round."""
    return [s / f for f, s in zip(faster, slower)]


def timed(step) -> float:
    start = CLOCK()
    step()
    return CLOCK() - start


def run(alg: str, count: int, rounds: int) -> dict:
    import jwt

    from lambdas.validation import IssuerConfig, Verifier
    from tests.support.tokens import AUDIENCE, ISSUER, SigningKey, mint

    key = SigningKey.generate(alg)
    tokens = [mint(key, scope="orders:read orders:write", lifetime=3600) for _ in range(count)]
    split = []
    for token in tokens:
        signing_input, _, sig = token.rpartition(".")
        split.append((signing_input.encode(), base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))))
    bare = bare_verifier(key, alg)
    pyjwt_key = key.private_key.public_key()
    scopes = ("orders:read",)

    def time_bare() -> float:
        start = CLOCK()
        for data, sig in split:
            bare(data, sig)
        return CLOCK() - start

    def time_authgate() -> float:
        # A fresh Verifier per round so every token is a cache miss, as distinct tokens are in production.
        verifier = Verifier([IssuerConfig(ISSUER, [AUDIENCE], jwks=key.jwks(), algorithms=[alg])],
                            verified_cache_size=count + 1)
        verify = verifier.verify
        start = CLOCK()
        for token in tokens:
            verify(token, scopes)
        return CLOCK() - start

    def time_pyjwt() -> float:
        decode = jwt.decode
        start = CLOCK()
        for token in tokens:
            decode(token, pyjwt_key, algorithms=[alg], audience=AUDIENCE, issuer=ISSUER,
                   options={"require": ["exp", "iat", "iss", "aud", "sub"]})
        return CLOCK() - start

    hit_verifier = Verifier([IssuerConfig(ISSUER, [AUDIENCE], jwks=key.jwks(), algorithms=[alg])])
    hit_token = tokens[0]
    hit_verifier.verify(hit_token, scopes)

    def time_hit() -> float:
        verify = hit_verifier.verify
        start = CLOCK()
        for _ in range(count):
            verify(hit_token, scopes)
        return CLOCK() - start

    seconds = rounds_of({"bare": time_bare, "authgate": time_authgate, "pyjwt": time_pyjwt, "hit": time_hit},
                        rounds)
    per_second = {name: count / min(values) for name, values in seconds.items()}
    pairs = {name: [seconds[side] for side in name.split("/")] for name in PAIRS}
    return {"alg": alg, "tokens": count, "rounds": rounds, "per_second": per_second,
            "ratios": {name: paired_ratio(*sides) for name, sides in pairs.items()},
            "spreads": {name: paired_spread(*sides) for name, sides in pairs.items()}}


def breakdown(count: int, rounds: int) -> dict:
    """Where a new RS256 token's time goes (microseconds per token, best of rounds): the whole Verifier.verify, the
    signature step alone (the issuer's JsonWebKey.verify: hash + RSA), the decoding alone (decode_token_fast on a
    warm header cache), and within decoding the C-level work (base64 of payload and signature, the JSON scan)."""
    from binascii import a2b_base64

    from lambdas.validation import IssuerConfig, Verifier
    from lambdas.validation.compact import HeaderCache, decode_token, decode_token_fast
    from tests.support.tokens import AUDIENCE, ISSUER, SigningKey, mint

    key = SigningKey.generate("RS256")
    tokens = [mint(key, scope="orders:read orders:write", lifetime=3600) for _ in range(count)]
    config = IssuerConfig(ISSUER, [AUDIENCE], jwks=key.jwks())
    jwk = Verifier([config]).key_source(config.name or ISSUER).get_key(key.kid, "RS256")
    headers = HeaderCache()
    decoded = [decode_token(token, headers) for token in tokens]
    translate = bytes.maketrans(b"-_", b"+/")
    segments = [token.encode().split(b".") for token in tokens]
    texts = [json.dumps(claims, separators=(",", ":")) for _, claims, _, _ in decoded]
    scan = json.JSONDecoder().scan_once

    def verify_all() -> float:
        verifier = Verifier([config], verified_cache_size=count + 1)   # every token a cache miss
        return timed(lambda: [verifier.verify(token, ("orders:read",)) for token in tokens])

    best = best_of({
        "Verifier.verify (new token)": verify_all,
        "  signature: hash + RSA": lambda: timed(lambda: [jwk.verify("RS256", d[2], d[3]) for d in decoded]),
        "  decode_token_fast": lambda: timed(lambda: [decode_token_fast(token, headers) for token in tokens]),
        "    base64 of payload + signature": lambda: timed(lambda: [
            (a2b_base64(p.translate(translate) + b"=="), a2b_base64(g.translate(translate) + b"=="))
            for _, p, g in segments]),
        "    JSON scan of the claims": lambda: timed(lambda: [scan(text, 0) for text in texts]),
    }, rounds)
    micros = {name: seconds / count * 1e6 for name, seconds in best.items()}
    micros["  everything but the signature"] = (micros["Verifier.verify (new token)"]
                                                - micros["  signature: hash + RSA"])
    return micros


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer tokens and rounds (a smoke run, noisier)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--breakdown", action="store_true",
                        help="where an RS256 token's time goes, in microseconds per token (no targets checked)")
    parser.add_argument("--rounds", type=int, help=f"interleaved rounds (default {ROUNDS}; --quick {QUICK_ROUNDS})")
    args = parser.parse_args(argv)
    cpu = pin_to_one_core()
    count, rounds = (QUICK_COUNT, QUICK_ROUNDS) if args.quick else (2000, ROUNDS)
    rounds = args.rounds or rounds
    if args.breakdown:
        micros = breakdown(count, rounds)
        print(f"pinned to cpu {cpu}; RS256-2048, {count} distinct tokens, best of {rounds} rounds (us per token)")
        for name, value in micros.items():
            print(f"{name:<38}{value:>8.2f}")
        return 0
    results = [run(alg, count, rounds) for alg in ("RS256", "ES256", "EdDSA")]
    failures = [f"{r['alg']} {name} = {r['ratios'][name]:.2f}x < {target}x"
                for r in results if r["alg"] == "RS256" for name, target in TARGETS.items()
                if r["ratios"][name] < target]
    if args.json:
        print(json.dumps({"cpu": cpu, "results": results, "failures": failures}, indent=2))
    else:
        print(f"pinned to cpu {cpu}; {count} distinct tokens per alg, best of {rounds} rounds (tokens per CPU second; "
              f"ratios paired per round)")
        print(f"{'alg':<7}{'bare':>10}{'authgate':>10}{'pyjwt':>10}{'hit':>11}   "
              f"{'ag/bare':>8}{'ag/pyjwt':>9}{'hit/pyjwt':>10}")
        for r in results:
            ps, ra = r["per_second"], r["ratios"]
            print(f"{r['alg']:<7}{ps['bare']:>10.0f}{ps['authgate']:>10.0f}{ps['pyjwt']:>10.0f}{ps['hit']:>11.0f}   "
                  f"{ra['authgate/bare']:>7.2f}x{ra['authgate/pyjwt']:>8.2f}x{ra['hit/pyjwt']:>9.1f}x")
        [rs256] = [r for r in results if r["alg"] == "RS256"]
        for name, target in TARGETS.items():
            ratio = rs256["ratios"][name]
            low, high = rs256["spreads"][name]
            print(f"RS256 {name:<15}{ratio:>8.3f}x (middle half of rounds {low:.3f}-{high:.3f}x)  target >= {target}x: "
                  f"{'met' if ratio >= target else 'MISSED'}")
        print("result: " + ("all targets met" if not failures else "MISSED: " + "; ".join(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
