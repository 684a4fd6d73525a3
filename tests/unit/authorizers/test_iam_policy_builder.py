"""The policy builder against a brute-force oracle: over random route tables and random satisfied sets, a policy may
never allow a request that lands on a route the principal does not satisfy, and it is exact when it reports no
conflicts. Route matching follows API Gateway precedence."""
from __future__ import annotations

import itertools
import json
import random

import pytest

from lambdas.authorizers.iam_policy import MethodArn, PolicyBuilder, policy_allows
from lambdas.validation.route_table import RouteTable, RouteTableError, split_request_path
from tests.support.route_tables import keyless_api

PREFIX = "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/prod"
LITERALS = ["a", "b", "me", "items"]




def _random_route_keys(rng):
    keys = set()
    for _ in range(rng.randint(2, 7)):
        segments = []
        for position in range(rng.randint(0, 3)):
            roll = rng.random()
            segments.append(rng.choice(LITERALS) if roll < 0.55 else f"{{p{position}}}")
        if segments and rng.random() < 0.2:
            segments[-1] = f"{{rest{len(segments)}+}}"
        method = rng.choice(["GET", "GET", "POST", "ANY"])
        keys.add(f"{method} /" + "/".join(segments))
    # drop keys API Gateway would see as the same route (same method and same shape)
    seen, out = set(), []
    for key in sorted(keys):
        method, path = key.split(" ", 1)
        shape = (method, tuple("{}" if s.startswith("{") and not s.endswith("+}") else "{+}" if s.endswith("+}")
                               else s for s in path.strip("/").split("/")))
        if shape not in seen:
            seen.add(shape)
            out.append(key)
    return out


def _requests():
    values = LITERALS + ["zz"]
    for length in range(0, 5):
        for segments in itertools.product(values, repeat=length):
            for method in ("GET", "POST", "DELETE"):
                yield method, "/" + "/".join(segments)


ALL_REQUESTS = list(_requests())


@pytest.mark.parametrize("seed", range(60))
def test_policy_never_allows_an_unsatisfied_route(seed):
    rng = random.Random(seed)
    api = keyless_api(_random_route_keys(rng))
    builder = PolicyBuilder(api)
    satisfied = [r for r in api.routes if rng.random() < 0.5]
    sat_keys = {r.route_key for r in satisfied}
    for current_method, current_path in rng.sample(ALL_REQUESTS, 5):
        current = api.match(current_method, current_path)
        if current is None:
            continue
        arn = MethodArn.parse(f"{PREFIX}/{current_method}{current_path}")
        result = builder.build(arn, satisfied, current_allowed=current.route_key in sat_keys)
        assert policy_allows(result.document, arn.arn) == (current.route_key in sat_keys)
        for method, path in ALL_REQUESTS:
            route = api.match(method, path)
            if route is None:
                continue
            allowed = policy_allows(result.document, f"{PREFIX}/{method}{path}")
            if route.route_key not in sat_keys:
                assert not allowed, (result.strategy, method, path, route.route_key, json.dumps(result.document))
            elif result.strategy != "current_route" and not result.conflicts:
                assert allowed, (result.strategy, method, path, route.route_key, json.dumps(result.document))


def test_route_matching_prefers_literal_then_parameter_then_greedy_then_exact_method():
    api = keyless_api(["GET /users/me", "GET /users/{id}", "ANY /users/{id}", "GET /files/{path+}", "GET /files/a/{id}",
                  "GET /"])
    assert api.match("GET", "/users/me").route_key == "GET /users/me"
    assert api.match("GET", "/users/7").route_key == "GET /users/{id}"
    assert api.match("POST", "/users/7").route_key == "ANY /users/{id}"
    assert api.match("GET", "/files/a/b/c").route_key == "GET /files/{path+}"
    assert api.match("GET", "/files/a/1").route_key == "GET /files/a/{id}"
    assert api.match("GET", "/").route_key == "GET /"
    assert api.match("GET", "/users/7/").route_key == "GET /users/{id}"
    assert api.match("GET", "/nothing/here") is None


def _brute_force_match(api, method, path):
    """API Gateway's precedence over every route, the slow way: the most specific template, then exact over ANY."""
    segments = split_request_path(path)
    if segments is None:
        return None
    matching = [r for r in api.routes if r.matches(method, segments)]
    if not matching:
        return api.route("$default")
    return max(matching, key=lambda r: (r.template.specificity, r.method != "ANY"))


@pytest.mark.parametrize("seed", range(30))
def test_the_route_tree_matches_as_the_precedence_rules_say(seed):
    rng = random.Random(seed)
    api = keyless_api(list(dict.fromkeys(_random_route_keys(rng) + _random_route_keys(rng))))
    for method, path in ALL_REQUESTS:
        assert api.match(method, path) is _brute_force_match(api, method, path), (method, path)


# Tables of services (a literal first segment each) with routes below: the shape where a wildcard over a service, a
# method or a whole subtree can stand for many satisfied (or, in a deny-list, unsatisfied) routes.
SERVICE_LITERALS = ["a", "b", "me"]


def _service_route_keys(rng):
    keys = set()
    for service in ("s1", "s2", "s3"):
        for _ in range(rng.randint(1, 5)):
            tail = [rng.choice(SERVICE_LITERALS) if rng.random() < 0.5 else "{p}" for _ in range(rng.randint(0, 2))]
            if tail and rng.random() < 0.2:
                tail[-1] = "{rest+}"
            keys.add(f"{rng.choice(['GET', 'GET', 'POST', 'DELETE', 'ANY'])} /" + "/".join([service, *tail]))
    if rng.random() < 0.3:
        keys.add(f"GET /{{tenant}}/{rng.choice(SERVICE_LITERALS)}")
    seen, out = set(), []
    for key in sorted(keys):
        method, path = key.split(" ", 1)
        shape = (method, tuple("{}" if s == "{p}" or s == "{tenant}" else s for s in path.strip("/").split("/")))
        if shape not in seen:
            seen.add(shape)
            out.append(key)
    return out


def _service_requests():
    values = ["s1", "s2", "s3", *SERVICE_LITERALS, "zz"]
    for length in range(0, 4):
        for segments in itertools.product(values, repeat=length):
            for method in ("GET", "POST", "DELETE", "PUT"):
                yield method, "/" + "/".join(segments)
                if segments:
                    yield method, "/" + "/".join(segments) + "/"
                    yield method, "/" + "/".join(segments) + "//x"


SERVICE_REQUESTS = list(_service_requests())


@pytest.mark.parametrize("max_bytes", [8192, 900])
@pytest.mark.parametrize("seed", range(40))
def test_wildcard_encodings_never_allow_an_unsatisfied_route(seed, max_bytes):
    rng = random.Random(seed * 31 + max_bytes)
    api = keyless_api(_service_route_keys(rng))
    builder = PolicyBuilder(api, max_bytes=max_bytes)
    builder.reach.analyse_all()
    # whole services and whole methods satisfied or not, so that wildcards apply, with a few exceptions
    granted_services = {s for s in ("s1", "s2", "s3") if rng.random() < 0.5}
    granted_methods = {m for m in ("GET", "POST") if rng.random() < 0.6}
    satisfied = [r for r in api.routes
                 if (r.path.split("/")[1] in granted_services or r.method in granted_methods) != (rng.random() < 0.1)]
    sat_keys = {r.route_key for r in satisfied}
    routed = [(m, p, api.match(m, p)) for m, p in SERVICE_REQUESTS]
    for current_method, current_path, current in rng.sample([x for x in routed if x[2] is not None], 4):
        arn = MethodArn.parse(f"{PREFIX}/{current_method}{current_path}")
        result = builder.build(arn, satisfied, current_allowed=current.route_key in sat_keys)
        WILDCARD_STRATEGIES.add((result.strategy, _uses_node_wildcards(api, result.document)))
        assert policy_allows(result.document, arn.arn) == (current.route_key in sat_keys)
        for method, path, route in routed:
            allowed = policy_allows(result.document, f"{PREFIX}/{method}{path}")
            if route is None or route.route_key not in sat_keys:
                if route is not None or "//" in path:
                    assert not allowed, (result.strategy, method, path, route, result.document)
            elif result.strategy != "current_route" and not result.conflicts and not path.endswith("/"):
                # (the trailing-slash form of a literal route is allowed only under a wildcard: fails closed)
                assert allowed, (result.strategy, method, path, route.route_key, result.document)


WILDCARD_STRATEGIES: set = set()


def _uses_node_wildcards(api, document):
    """Whether the policy holds a wildcard no single route's own pattern has ("GET/s1/*" over several routes)."""
    own = {f"{r.method if r.method != 'ANY' else '*'}/{r.template.iam_resource_glob()}" for r in api.routes}
    resources = [r.split("/", 2)[2] for statement in document["Statement"] for r in statement["Resource"]
                 if r.count("/") >= 2]
    return any(r.endswith("/*") and r not in own and r != "*//*" for r in resources)


def test_the_randomized_runs_exercised_every_wildcard_encoding():
    # Runs after the parametrized test above (file order): both route-wide encodings appeared with wildcards.
    assert ("exact", True) in WILDCARD_STRATEGIES
    assert ("deny_list", True) in WILDCARD_STRATEGIES


def test_a_reader_over_thousands_of_routes_gets_one_wildcard_not_a_current_route_policy():
    keys = [f"{m} /svc{i}/items{tail}" for i in range(1250) for m, tail in
            (("GET", ""), ("GET", "/{id}"), ("POST", ""), ("DELETE", "/{id}"))]
    api = keyless_api(keys)
    builder = PolicyBuilder(api)
    builder.reach.analyse_all()
    readers = frozenset(r for r in api.routes if r.method == "GET")
    arn = MethodArn.parse(f"{PREFIX}/GET/svc3/items/1")
    result = builder.build(arn, readers, current_allowed=True)
    assert result.strategy == "exact"
    assert result.document["Statement"][0]["Resource"] == [f"{PREFIX}/GET/*"]
    writers = frozenset(r for r in api.routes if r.method != "DELETE")
    result = builder.build(MethodArn.parse(f"{PREFIX}/POST/svc3/items"), writers, current_allowed=True)
    assert result.strategy == "exact"
    assert policy_allows(result.document, f"{PREFIX}/POST/svc9/items")
    assert not policy_allows(result.document, f"{PREFIX}/DELETE/svc9/items/1")


def test_large_table_policy_stays_within_budget():
    keys = [f"{m} /svc{i}/items/{{id}}" for i in range(150) for m in ("GET", "POST")]
    api = keyless_api(keys)
    builder = PolicyBuilder(api)
    readers = [r for r in api.routes if r.method == "GET"]
    arn = MethodArn.parse(f"{PREFIX}/GET/svc3/items/1")
    result = builder.build(arn, readers, current_allowed=True)
    assert result.size <= 8192
    assert policy_allows(result.document, arn.arn)
    assert not policy_allows(result.document, f"{PREFIX}/POST/svc3/items/1")


@pytest.mark.parametrize("document,message", [
    ({"format": "authgate.routes/v0", "issuers": {}, "apis": {}}, "format is 'authgate.routes/v0'"),
    ({"format": "authgate.routes/v1", "issuers": {}, "apis": {"a": {"routes": [
        {"route_key": "GET /x", "method": "GET", "path": "/x", "issuers": ["ghost"]}]}}}, "ghost"),
    ({"format": "authgate.routes/v1", "issuers": {}, "apis": {"a": {"routes": [
        {"route_key": "GET /x", "method": "GET", "path": "/x", "issuers": []}]}}}, "at least one issuer"),
    ({"format": "authgate.routes/v1", "issuers": {}, "apis": {"a": {"routes": [
        {"route_key": "GET /x/{a+}/y", "method": "GET", "path": "/x/{a+}/y", "public": True}]}}}, "last segment"),
])
def test_route_table_errors_say_what_is_wrong(document, message):
    with pytest.raises(RouteTableError, match=message.replace("(", r"\(").replace(")", r"\)")):
        RouteTable.load(document)


def test_route_table_file_errors(tmp_path):
    with pytest.raises(RouteTableError, match="does not exist"):
        RouteTable.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(RouteTableError, match="not valid JSON"):
        RouteTable.load(bad)
