"""Every emulated gateway routes a request where the runtime's matcher (`ApiRoutes.match`) does.

Each emulator had its own route selection (regexes sorted by its own idea of specificity): for GET /a/b/c with the
routes /{y}/b/c and /a/{x}/c the runtime picked /a/{x}/c and the HTTP API emulator /{y}/b/c, so the demo could prove
a routing the deployed authorizers do not make. Route tables and requests are generated here; each gateway is built
from its own artefact shape (a CloudFormation template for the AWS emulators, the APIM operations and the OpenAPI
paths the renderers write) and must agree with the runtime on every request.
"""
from __future__ import annotations

import random

import pytest

from lambdas.validation.route_table import RouteTable
from sandbox.gateways.apim import ApimEmulator
from sandbox.gateways.cfn import Template
from sandbox.gateways.gcp_api_gateway import GcpApiGatewayEmulator
from sandbox.gateways.http_api import HttpApiEmulator
from sandbox.gateways.rest_api import RestApiEmulator
from stacks.azure.apim import operations_for_routes
from stacks.policy.render.openapi import _openapi_path
from stacks.policy.route_keys import parse_route_key
from tests.support.route_tables import route, table_document
from tests.support.tokens import SigningKey

LITERALS = ("a", "b", "c")
METHODS = ("GET", "POST", "ANY")
REQUEST_METHODS = ("GET", "POST", "DELETE")
API_POLICY = "<policies><inbound><base /></inbound><backend /><outbound /><on-error /></policies>"


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate("ES256")


def random_route_keys(rng: random.Random) -> list[str]:
    keys: set[str] = set()
    for _ in range(rng.randint(1, 7)):
        segments = []
        for index in range(rng.randint(0, 3)):
            roll = rng.random()
            segments.append(rng.choice(LITERALS) if roll < 0.55 else "{p%d}" % index if roll < 0.85 else None)
        if None in segments:      # a greedy parameter ends the path
            segments = segments[:segments.index(None)] + ["{rest+}"]
        keys.add(f"{rng.choice(METHODS)} /" + "/".join(segments))
    return sorted(keys)


def random_requests(rng: random.Random) -> list[tuple[str, str]]:
    requests = []
    for _ in range(25):
        segments = [rng.choice(LITERALS + ("x", "b")) for _ in range(rng.randint(0, 4))]
        path = "/" + "/".join(segments)
        roll = rng.random()
        if roll < 0.1:
            path += "/"                    # one trailing '/' is ignored everywhere
        elif roll < 0.15:
            path = path.replace("/", "//", 1)   # an empty segment matches nothing anywhere
        requests.append((rng.choice(REQUEST_METHODS), path))
    return requests


def runtime_api(key, route_keys, *, default=False):
    routes = [route(k, public=True) for k in route_keys] + ([route("$default", public=True)] if default else [])
    return RouteTable.load(table_document(key, routes)).api("orders")


def http_api(route_keys, *, default=False) -> HttpApiEmulator:
    resources = {"Api": {"Type": "AWS::ApiGatewayV2::Api", "Properties": {"ProtocolType": "HTTP"}}}
    for index, route_key in enumerate(route_keys + (["$default"] if default else [])):
        resources[f"Route{index}"] = {"Type": "AWS::ApiGatewayV2::Route", "Properties": {
            "ApiId": {"Ref": "Api"}, "RouteKey": route_key, "AuthorizationType": "NONE"}}
    return HttpApiEmulator(Template({"Resources": resources}), code_root_of=lambda _: None, route_table_path="-")


def rest_api(route_keys) -> RestApiEmulator:
    resources = {"Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {}},
                 "Stage": {"Type": "AWS::ApiGateway::Stage", "Properties": {"StageName": "v1"}}}
    ids = {"/": {"Fn::GetAtt": ["Api", "RootResourceId"]}}
    for index, route_key in enumerate(route_keys):
        method, path = route_key.split(" ", 1)
        prefix = ""
        for part in [p for p in path.split("/") if p]:
            parent, prefix = ids[prefix or "/"], prefix + "/" + part
            if prefix not in ids:
                logical_id = f"Resource{len(ids)}"
                resources[logical_id] = {"Type": "AWS::ApiGateway::Resource", "Properties": {
                    "ParentId": parent, "PathPart": part, "RestApiId": {"Ref": "Api"}}}
                ids[prefix] = {"Ref": logical_id}
        resources[f"Method{index}"] = {"Type": "AWS::ApiGateway::Method", "Properties": {
            "HttpMethod": method, "ResourceId": ids[path if path != "/" else "/"], "AuthorizationType": "NONE"}}
    return RestApiEmulator(Template({"Resources": resources}), code_root_of=lambda _: None, route_table_path="-")


def apim(route_keys) -> ApimEmulator:
    operations = [(op.route_key, op.method, op.url_template) for op in operations_for_routes(route_keys)]
    return ApimEmulator(API_POLICY, operations, {})


def gcp(route_keys) -> GcpApiGatewayEmulator:
    """The paths and methods render_openapi writes: one path per shape, ANY fanned out except where a route names
    the method itself on that shape."""
    keys = {text: parse_route_key(text) for text in route_keys}
    explicit = {(k.method, k.shape) for k in keys.values() if k.method != "ANY"}
    paths: dict = {}
    first_of_shape: dict = {}
    for text, own in keys.items():
        shape_key = first_of_shape.setdefault(own.shape, own)
        item = paths.setdefault(_openapi_path(shape_key), {})
        methods = ("get", "post", "put", "patch", "delete", "head", "options") if own.method == "ANY" \
            else (own.method.lower(),)
        for method in methods:
            if own.method == "ANY" and (method.upper(), own.shape) in explicit:
                continue
            item[method] = {"operationId": text, "security": []}   # the route key, to compare with
    return GcpApiGatewayEmulator({"swagger": "2.0", "paths": paths})


def routed_key(emulator_name: str, found) -> str | None:
    """The route key an emulator's match names, in the route table's spelling."""
    if found is None:
        return None
    if emulator_name == "http":
        return found[0].route_key
    if emulator_name == "rest":
        return f"{found[0].http_method} {found[0].resource_path}"
    if emulator_name == "apim":
        return found.route_key
    return found.operation_id


def test_the_demonstrated_disagreement(key):
    keys = ["GET /{y}/b/c", "GET /a/{x}/c"]
    assert runtime_api(key, keys).match("GET", "/a/b/c").route_key == "GET /a/{x}/c"
    assert http_api(keys).match("GET", "/a/b/c")[0].route_key == "GET /a/{x}/c"
    assert rest_api(keys).match("GET", "/a/b/c")[0].resource_path == "/a/{x}/c"
    assert apim(keys).match("GET", "/a/b/c").route_key == "GET /a/{x}/c"
    assert gcp(keys).match("GET", "/a/b/c").template == "/a/{x}/c"


def test_path_parameters_come_from_the_selected_template(key):
    found = http_api(["GET /files/{name}", "ANY /files/{rest+}"]).match("GET", "/files/a/b")
    assert (found[0].route_key, found[1]) == ("ANY /files/{rest+}", {"rest": "a/b"})
    assert rest_api(["GET /orders/{id}"]).match("GET", "/orders/7/")[1] == {"id": "7"}


@pytest.mark.parametrize("seed", range(60))
def test_every_emulator_routes_as_the_runtime(key, seed):
    rng = random.Random(seed)
    route_keys = random_route_keys(rng)
    default = rng.random() < 0.3
    runtime = runtime_api(key, route_keys)
    with_default = runtime_api(key, route_keys, default=True) if default else runtime
    try:
        apim_emulator = apim(route_keys)
    except ValueError:          # the APIM renderer refuses GET and ANY on one path: nothing would deploy
        apim_emulator = None
    emulators = {"http": (http_api(route_keys, default=default), with_default), "rest": (rest_api(route_keys), runtime),
                 "gcp": (gcp(route_keys), runtime)}
    if apim_emulator is not None:
        emulators["apim"] = (apim_emulator, runtime)
    for method, path in random_requests(rng):
        for name, (emulator, reference) in emulators.items():
            expected = reference.match(method, path)
            expected_key = expected.route_key if expected is not None else None
            got = routed_key(name, emulator.match(method, path))
            assert got == expected_key, (name, route_keys, method, path)
