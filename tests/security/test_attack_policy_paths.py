"""Attacks on the REST authorizer's IAM policies through the request path the caller chooses.

Issue 18 item 2: checking a candidate policy against the method ARN once compiled each IAM glob to a backtracking
regular expression, so `/files` + `/a` x 400 against `*/*/*/*/status` took seconds of CPU for one decision (a
1,606-character path, minutes). Glob matching is now linear in the ARN: the figures below are bounds far above the
linear cost (about a millisecond here), and far below what the backtracking matcher took.
"""
from __future__ import annotations

import random
import time

import pytest
from hypothesis import given, strategies as st

from lambdas.authorizers.iam_policy import MethodArn, PolicyBuilder, glob_matches, policy_allows
from sandbox.gateways.iam_policy import policy_effect
from tests.security.property_budget import property_settings
from tests.support.route_tables import keyless_api

PREFIX = "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/prod"
# Seconds one decision may take, whatever the path: linear matching needs about 1 ms for the 64 KiB path here.
DECISION_BOUND_S = 0.5


@pytest.mark.parametrize("repeats", [400, 32_768])
def test_a_long_caller_chosen_path_costs_linear_time_per_decision(repeats):
    api = keyless_api(["GET /files/{path+}", "ANY /{org}/{repo}/{ref}/status"])
    builder = PolicyBuilder(api)
    builder.reach.analyse_all()
    arn = MethodArn.parse(f"{PREFIX}/GET/files" + "/a" * repeats)
    started = time.perf_counter()
    result = builder.build(arn, list(api.routes), current_allowed=True)
    elapsed = time.perf_counter() - started
    assert policy_allows(result.document, arn.arn)
    assert elapsed < DECISION_BOUND_S, f"one decision over a {len(arn.path)}-character path took {elapsed:.2f} s"


def test_the_sandbox_gateway_evaluates_policies_in_linear_time_too():
    document = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": f"{PREFIX}/*/*/*/*/*/status"}]}
    arn = f"{PREFIX}/GET/files" + "/a" * 4000
    started = time.perf_counter()
    assert policy_effect(document, arn) == "NoMatch"
    assert time.perf_counter() - started < DECISION_BOUND_S


def _reference_glob(pattern: str, text: str) -> bool:
    """IAM's `*` (any run, '/' included) and `?` (one character) by dynamic programming: slow, obviously right."""
    reachable = [True] + [False] * len(text)
    for symbol in pattern:
        if symbol == "*":
            for index in range(1, len(text) + 1):
                reachable[index] = reachable[index] or reachable[index - 1]
        else:
            reachable = [False] + [reachable[index] and (symbol == "?" or symbol == text[index])
                                   for index in range(len(text))]
    return reachable[len(text)]


@pytest.mark.parametrize("seed", range(40))
def test_glob_matching_agrees_with_the_reference_on_random_and_long_inputs(seed):
    rng = random.Random(seed)
    alphabet = "ab/"
    for _ in range(150):
        pattern = "".join(rng.choice(alphabet + "*?") for _ in range(rng.randint(0, 9)))
        length = rng.choice([rng.randint(0, 12), rng.randint(200, 2000)])
        text = "".join(rng.choice(alphabet) for _ in range(length))
        assert glob_matches(pattern, text) == _reference_glob(pattern, text), (pattern, text[:80], len(text))


# Property: whatever long path a caller picks, against any small route table, one REST decision stays within the
# bound, its policy allows the request exactly when the router's route is one the principal satisfies, and a path
# with an empty segment is never allowed.

_SEGMENT = st.sampled_from(["a", "files", "status", "x1", "", "{", "*", "%2F", "admin"])
_ROUTE_KEYS = st.lists(st.sampled_from([
    "GET /files/{path+}", "ANY /{org}/{repo}/{ref}/status", "GET /{proxy+}", "GET /admin", "POST /files/{id}",
    "GET /a/{b}/c", "DELETE /{x}"]), min_size=1, max_size=5, unique=True)


@property_settings(40)
@given(route_keys=_ROUTE_KEYS, segments=st.lists(_SEGMENT, min_size=50, max_size=3000),
       method=st.sampled_from(["GET", "POST", "DELETE"]), satisfied_mask=st.integers(0, 31))
def test_long_paths_decide_in_bounded_time_and_agree_with_the_router(route_keys, segments, method, satisfied_mask):
    api = keyless_api(route_keys)
    builder = PolicyBuilder(api)
    builder.reach.analyse_all()
    satisfied = [route for index, route in enumerate(api.routes) if satisfied_mask >> index & 1]
    path = "/" + "/".join(segments)
    arn = MethodArn.parse(f"{PREFIX}/{method}{path}")
    route = api.match(method, path)
    started = time.perf_counter()
    result = builder.build(arn, satisfied, current_allowed=route is not None and route in satisfied)
    allowed = policy_allows(result.document, arn.arn)
    assert time.perf_counter() - started < DECISION_BOUND_S, f"{len(path)}-character path"
    assert allowed == (route is not None and route in satisfied), (route, [r.route_key for r in satisfied])
    if "" in segments[:-1]:
        assert not allowed, "a path with an empty segment must never be allowed"
