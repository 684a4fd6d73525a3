"""Revocation and proof of possession against real peers: the sandbox's oidc-provider (introspection, revocation,
back-channel logout and DPoP enabled) issues the tokens, moto's DynamoDB server on 127.0.0.1 holds the shared
denylist and DPoP replay records, and the real HTTP API authorizer handler decides, configured from a policy file
through the loader and the route table renderer.

Shown: a revoked token refused on `freshness: introspect` routes and still accepted on `none` routes; a logout at the
provider delivers a logout token to the back-channel endpoint and the session's tokens are then refused on
`freshness: denylist` routes; a DPoP-bound token used as a Bearer token, with a proof for another method or URL,
with a replayed proof or with another key's proof is refused; on a `dpop_nonce: required` route served by two
backend-guard replicas over real HTTP (sharing only the nonce key), the provider's DPoP-bound token is first answered `use_dpop_nonce` with a
DPoP-Nonce header, the client retries with it (as RFC 9449 clients do) and is allowed, the other replica accepts the
same nonce, and a stale one is refused; two in-cluster forward-auth replicas configured as `render k8s
--denylist-table` configures them (over real HTTP) share the table: a DPoP proof used at one is refused at the other,
and one logout record refuses the subject's token at both; and the same over a real redis-server (AUTHGATE_REDIS_URL).
"""
from __future__ import annotations

import base64
import importlib
import json
import logging
import shutil
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lambdas.backchannel_logout.core import BackchannelLogout
from sandbox.idp.config import build_idp_setup, resource_indicator
from sandbox.idp.launcher import IdpProcess
from sandbox.oidc_client import BrowserSession, LoginTrace, _FormParser, _redeem, client_credentials, pkce_pair, \
    sign_in
from stacks.policy import load_policy
from stacks.policy.render import route_table_json
from lambdas.validation.dpop_nonce import STEP_SECONDS, DpopNonces
from tests.support.dpop import dpop_request, make_proof, thumbprint
from tests.support.tokens import SigningKey

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="the sandbox provider needs Node.js")

DUMMY_AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
             "AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1"}
TABLE = "authgate-denylist"
REDIRECT = "http://127.0.0.1:8765/callback"
HOST = "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com"
OPAQUE_RESOURCE = "urn:authgate:opaque:orders-api"
POLICY = """
issuers:
  local:
    issuer: ${LOCAL_ISSUER_URL}
    local_development: true
    audiences: [orders-api]
    jwks_uri: ${LOCAL_ISSUER_URL}/jwks
    leeway_seconds: 5
    introspection: {client_id: demo-worker, client_secret_env: E2E_INTROSPECTION_SECRET, cache_seconds: 0,
                    negative_cache_seconds: 0}
    revocation: {cache_seconds: 0, logout_audiences: [demo-web]}
    binding: {dpop: true, dpop_algorithms: [ES256]}
apis:
  orders:
    routes:
      "GET /orders": {issuers: [local], scopes: [orders:read]}
      "GET /orders/{id}": {issuers: [local], scopes: [orders:read], freshness: introspect}
      "GET /reports": {issuers: [local], freshness: denylist}
      "POST /orders": {issuers: [local], scopes: [orders:read], proof: dpop}
  orders-cluster:
    routes:
      "POST /orders": {issuers: [local], scopes: [orders:read], proof: dpop, dpop_nonce: required}
clients:
  demo-web:
    kind: spa
    issuer: local
    audience: orders-api
    scopes: [openid, profile, email, orders:read]
    redirect_uris: [http://127.0.0.1:8765/callback]
    logout_uris: [http://127.0.0.1:8765/]
  demo-worker:
    kind: service
    issuer: local
    audience: orders-api
    scopes: [orders:read]
"""


class LogoutReceiver:
    """The back-channel logout core behind a plain HTTP listener on 127.0.0.1 (the adapters have unit tests)."""

    def __init__(self) -> None:
        self.endpoint: BackchannelLogout | None = None
        self.answers: list[int] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                answer = outer.endpoint.handle("POST", self.headers.get("content-type"), body)
                outer.answers.append(answer.status)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/backchannel-logout"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def dynamodb():
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="eu-west-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        client.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
        yield endpoint
        # moto keeps its backends in this process, not in the server: a table left behind is there for the next
        # module's server too (tests/unit/validation/test_denylist_stores.py creates the same one).
        client.delete_table(TableName=TABLE)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def world(tmp_path_factory, dynamodb):
    """The provider, the logout receiver, the rendered route table and the environment the handler reads."""
    receiver = LogoutReceiver()
    placeholder = "http://127.0.0.1:1"
    policy_path = tmp_path_factory.mktemp("policy") / "policy.yaml"
    policy_path.write_text(POLICY)
    setup = build_idp_setup(load_policy(policy_path, variables={"LOCAL_ISSUER_URL": placeholder}), "local")
    for client in setup.document["clients"]:
        if client["client_id"] == "demo-web":
            client["backchannel_logout_uri"] = receiver.url
    # oidc-provider introspects only opaque access tokens, so the same API is also served with those.
    setup.document["resources"].append({"indicator": OPAQUE_RESOURCE, "audience": "orders-api",
                                        "scopes": ["orders:read"], "access_token_format": "opaque"})
    try:
        with IdpProcess(setup.document) as idp:
            table_path = policy_path.parent / "routes.json"
            table_path.write_text(route_table_json(load_policy(policy_path,
                                                               variables={"LOCAL_ISSUER_URL": idp.issuer})))
            env = {**DUMMY_AWS, "AUTHGATE_POLICY": str(table_path), "AUTHGATE_API": "orders",
                   "AUTHGATE_DENYLIST_TABLE": TABLE, "AUTHGATE_DYNAMODB_ENDPOINT": dynamodb,
                   "E2E_INTROSPECTION_SECRET": setup.clients["demo-worker"].client_secret,
                   "AWS_LAMBDA_FUNCTION_NAME": "authgate-e2e"}
            receiver.endpoint = BackchannelLogout.from_env(env)
            yield idp, setup, env, receiver
    finally:
        receiver.stop()


@pytest.fixture
def authorize(world, monkeypatch):
    """The real HTTP API authorizer, loaded as Lambda would load it; returns True/False per event."""
    _, _, env, _ = world
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AUTHGATE_RESPONSE", raising=False)
    module = importlib.reload(importlib.import_module("lambdas.authorizers.http_api"))
    return lambda event: module.handler(event)["isAuthorized"]


def event(authorization: str, method: str, route_key: str, path: str, dpop: str | None = None) -> dict:
    headers = {"host": HOST, "authorization": authorization}
    if dpop is not None:
        headers["dpop"] = dpop
    return {"version": "2.0", "type": "REQUEST", "routeKey": route_key, "rawPath": path, "rawQueryString": "",
            "routeArn": f"arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/$default/{method}{path}",
            "headers": headers, "identitySource": [authorization],
            "requestContext": {"domainName": HOST, "http": {"method": method, "path": path}, "routeKey": route_key,
                               "requestId": "r-1"}}


def worker_token(world, *, dpop_key: SigningKey | None = None, resource: str | None = None) -> tuple[str, str]:
    idp, setup, _, _ = world
    discovery = idp.discovery()
    secret = setup.clients["demo-worker"].client_secret
    if dpop_key is None:
        tokens = client_credentials(discovery["token_endpoint"], "demo-worker", secret, scope="orders:read",
                                    resource=resource or resource_indicator("orders-api"))
        return tokens.access_token, tokens.token_type
    proof = make_proof(dpop_key, "POST", discovery["token_endpoint"], None)
    form = {"grant_type": "client_credentials", "scope": "orders:read", "resource": resource_indicator("orders-api")}
    basic = base64.b64encode(f"demo-worker:{urllib.parse.quote(secret, safe='')}".encode()).decode()
    request = urllib.request.Request(discovery["token_endpoint"], data=urllib.parse.urlencode(form).encode(),
                                     headers={"authorization": f"Basic {basic}", "dpop": proof,
                                              "content-type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(request, timeout=10) as response:
        answer = json.load(response)
    return answer["access_token"], answer["token_type"]


def claims_of(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_revoked_opaque_token_is_refused_on_an_introspect_route(world, authorize):
    idp, setup, _, _ = world
    token, _ = worker_token(world, resource=OPAQUE_RESOURCE)
    assert token.count(".") != 2, "an opaque access token"
    assert authorize(event(f"Bearer {token}", "GET", "GET /orders/{id}", "/orders/1"))
    discovery = idp.discovery()
    secret = setup.clients["demo-worker"].client_secret
    basic = base64.b64encode(f"demo-worker:{urllib.parse.quote(secret, safe='')}".encode()).decode()
    request = urllib.request.Request(discovery["revocation_endpoint"],
                                     data=urllib.parse.urlencode({"token": token}).encode(),
                                     headers={"authorization": f"Basic {basic}",
                                              "content-type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    # introspection.cache_seconds is 0 here, so the staleness is one request.
    assert not authorize(event(f"Bearer {token}", "GET", "GET /orders/{id}", "/orders/1"))
    # A route that does not introspect cannot read an opaque token at all (it is not a JWT): refused too.
    assert not authorize(event(f"Bearer {token}", "GET", "GET /orders", "/orders"))


def test_jwt_routes_without_freshness_keep_accepting_until_expiry(world, authorize):
    token, _ = worker_token(world)
    assert authorize(event(f"Bearer {token}", "GET", "GET /orders", "/orders"))


def test_logout_at_the_provider_refuses_the_sessions_tokens(world, authorize):
    idp, setup, _, receiver = world
    discovery = idp.discovery()
    browser = BrowserSession()
    verifier, challenge = pkce_pair()
    params = {"client_id": "demo-web", "response_type": "code", "redirect_uri": REDIRECT,
              "scope": "openid orders:read", "state": "s-1", "nonce": "n-1", "code_challenge": challenge,
              "code_challenge_method": "S256", "prompt": "consent", "resource": resource_indicator("orders-api")}
    trace = LoginTrace()
    callback = sign_in(browser, discovery["authorization_endpoint"] + "?" + urllib.parse.urlencode(params),
                       username="alice", password=setup.users["alice"].password,
                       until=lambda u: u.startswith(REDIRECT), trace=trace)
    tokens = _redeem(discovery, browser, callback, client_id="demo-web", redirect_uri=REDIRECT, verifier=verifier,
                     state="s-1", resource=resource_indicator("orders-api"), trace=trace)
    access = tokens.access_token
    assert claims_of(access).get("sid"), "the provider puts the session id in access tokens"
    assert authorize(event(f"Bearer {access}", "GET", "GET /reports", "/reports"))

    # RP-initiated logout in the browser: the provider ends the session and POSTs the logout token to the receiver.
    status, _, page = browser.request(discovery["end_session_endpoint"] + "?client_id=demo-web")
    assert status == 200, page[:300]
    parser = _FormParser()
    parser.feed(page)
    form = next(f for f in parser.forms if "xsrf" in f["inputs"])
    values = dict(form["inputs"], logout="yes")
    status, location, page = browser.request(urllib.parse.urljoin(discovery["end_session_endpoint"], form["action"]),
                                             values)
    assert status in (200, 302, 303), page[:300]
    deadline = time.monotonic() + 10
    while not receiver.answers and time.monotonic() < deadline:
        time.sleep(0.05)
    assert receiver.answers == [200], idp._stderr_tail[-5:]
    assert not authorize(event(f"Bearer {access}", "GET", "GET /reports", "/reports"))
    assert authorize(event(f"Bearer {access}", "GET", "GET /orders", "/orders"))  # freshness: none


def test_dpop_bound_token_from_the_provider(world, authorize):
    key = SigningKey.generate("ES256")
    token, token_type = worker_token(world, dpop_key=key)
    assert token_type == "DPoP" and claims_of(token)["cnf"]["jkt"] == thumbprint(key)
    uri = f"https://{HOST}/orders"

    def call(proof: str | None, scheme: str = "DPoP", method: str = "POST") -> bool:
        return authorize(event(f"{scheme} {token}", method, f"{method} /orders", "/orders", dpop=proof))

    good = make_proof(key, "POST", uri, token)
    assert call(good)
    assert not call(good)                                                            # replayed
    assert not call(make_proof(key, "POST", uri, token), scheme="Bearer")            # as a Bearer token
    assert not call(None, scheme="Bearer", method="GET")                             # Bearer on a none route
    assert not call(make_proof(key, "GET", uri, token))                              # another method
    assert not call(make_proof(key, "POST", uri + "/1", token))                      # another URL
    assert not call(make_proof(SigningKey.generate("ES256"), "POST", uri, token))    # another key
    assert call(make_proof(key, "POST", uri, token))                                 # a fresh proof passes


NONCE_KEY = b"e2e DPoP nonce key, one per replica set"


class ServedApp:
    """An ASGI app under uvicorn on 127.0.0.1 (an ephemeral port), in a thread, for the length of a with block."""

    def __init__(self, app) -> None:
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                                    access_log=False, lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, f"{type(self).__name__} did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    @property
    def port(self) -> int:
        return self.server.servers[0].sockets[0].getsockname()[1]


class GuardedBackend(ServedApp):
    """A backend behind the ASGI guard for API orders-cluster."""

    def __init__(self, table_path: str) -> None:
        from lambdas.guards.asgi import AuthgateMiddleware
        from lambdas.guards.require import BearerGuard

        guard = BearerGuard.from_route_table(table_path, "orders-cluster", public_origin=f"https://{HOST}")

        async def backend(scope, receive, send):
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"order created"})

        super().__init__(AuthgateMiddleware(backend, check=guard.check, success_headers=guard.success_headers))

    def sender(self, token: str):
        port = self.port

        def send(proof: str) -> tuple[int, dict]:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/orders", data=b"{}", method="POST",
                                             headers={"authorization": f"DPoP {token}", "dpop": proof})
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return response.status, {k.lower(): v for k, v in response.headers.items()}
            except urllib.error.HTTPError as error:
                return error.code, {k.lower(): v for k, v in error.headers.items()}
        return send


def test_dpop_nonce_route_behind_guard_replicas(world, monkeypatch):
    pytest.importorskip("uvicorn")
    _, _, env, _ = world
    # Each replica keeps its own in-memory jti store: the replicas share nothing but the nonce key (and no 0.5 s
    # DynamoDB deadline can turn a loaded machine's slowness into a 503 here).
    for name in ("AUTHGATE_DENYLIST_TABLE", "AWS_LAMBDA_FUNCTION_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AUTHGATE_DPOP_NONCE_KEY", base64.urlsafe_b64encode(NONCE_KEY).rstrip(b"=").decode())
    key = SigningKey.generate("ES256")
    token, token_type = worker_token(world, dpop_key=key)
    assert token_type == "DPoP"
    uri = f"https://{HOST}/orders"
    with GuardedBackend(env["AUTHGATE_POLICY"]) as first, GuardedBackend(env["AUTHGATE_POLICY"]) as second:
        status, headers = first.sender(token)(make_proof(key, "POST", uri, token))
        assert status == 401 and headers["www-authenticate"].startswith('DPoP error="use_dpop_nonce"')
        assert headers["dpop-nonce"]
        status, allowed, nonce = dpop_request(first.sender(token), key, "POST", uri, token)
        # RFC 9449 8.2: the allowed answer hands out the current nonce too, which the client keeps for next time.
        assert status == 200 and DpopNonces(NONCE_KEY).accepts(allowed["dpop-nonce"]) and nonce == allowed["dpop-nonce"]
        # The other replica accepts the same nonce, with a proof of its own.
        status, _ = second.sender(token)(make_proof(key, "POST", uri, token, claims={"nonce": nonce}))
        assert status == 200
        stale = DpopNonces(NONCE_KEY, clock=lambda: time.time() - 2 * STEP_SECONDS).current()
        status, headers = second.sender(token)(make_proof(key, "POST", uri, token, claims={"nonce": stale}))
        assert status == 401 and headers["dpop-nonce"] not in ("", stale)


class ForwardAuthReplica(ServedApp):
    """One replica of the in-cluster forward-auth service as `render k8s --denylist-table` configures it (in a pod,
    with the stage's table); its check requests use NGINX's auth_request headers."""

    def __init__(self, environ: dict) -> None:
        from lambdas.forward_auth.app import ForwardAuthApp
        from lambdas.forward_auth.service import ForwardAuthService

        super().__init__(ForwardAuthApp(ForwardAuthService.from_env(environ)))

    def check(self, method: str, path: str, authorization: str, proof: str | None = None) -> int:
        port = self.port
        headers = {"x-original-method": method, "x-original-uri": path, "authorization": authorization}
        if proof is not None:
            headers["dpop"] = proof
        request = urllib.request.Request(f"http://127.0.0.1:{port}/check", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code


def replicas_share_proofs_and_logouts(world, pod: dict, denylist, then=None) -> None:
    """Two forward-auth replicas started from `pod` (the environment the rendered Deployment gives them) over real
    HTTP: a DPoP proof used at one is refused at the other, and a subject's logout recorded once in `denylist` (as
    the logout endpoint records it) is seen by both; `then(first, plain)` runs while they still serve."""
    idp = world[0]
    key = SigningKey.generate("ES256")
    bound, token_type = worker_token(world, dpop_key=key)
    assert token_type == "DPoP"
    plain, _ = worker_token(world)
    uri = f"https://{HOST}/orders"
    with ForwardAuthReplica(pod) as first, ForwardAuthReplica(pod) as second:
        proof = make_proof(key, "POST", uri, bound)
        assert first.check("POST", "/orders", f"DPoP {bound}", proof) == 200
        assert second.check("POST", "/orders", f"DPoP {bound}", proof) == 401      # replayed at another replica
        assert second.check("POST", "/orders", f"DPoP {bound}", make_proof(key, "POST", uri, bound)) == 200

        assert first.check("GET", "/reports", f"Bearer {plain}") == 200
        assert second.check("GET", "/reports", f"Bearer {plain}") == 200
        denylist.revoke(idp.issuer, "sub", claims_of(plain)["sub"], lifetime_seconds=3600,
                        at=claims_of(plain)["iat"] + 1)
        assert first.check("GET", "/reports", f"Bearer {plain}") == 401
        assert second.check("GET", "/reports", f"Bearer {plain}") == 401
        assert first.check("GET", "/orders", f"Bearer {plain}") == 200           # freshness: none
        if then is not None:
            then(first, plain)


def in_a_pod(env: dict, **settings: str) -> dict:
    """What the rendered Deployment sets besides the store: KUBERNETES_SERVICE_HOST (as in every pod, so a missing
    store would refuse), the NGINX convention, the public origin."""
    pod = {name: value for name, value in env.items()
           if name not in ("AWS_LAMBDA_FUNCTION_NAME", "AUTHGATE_DENYLIST_TABLE", "AUTHGATE_DYNAMODB_ENDPOINT")}
    return {**pod, "KUBERNETES_SERVICE_HOST": "10.96.0.1", "AUTHGATE_FORWARD_AUTH_CONVENTION": "nginx",
            "AUTHGATE_FORWARD_AUTH_PUBLIC_ORIGIN": f"https://{HOST}", **settings}


def test_forward_auth_replicas_share_the_stage_table(world, monkeypatch):
    pytest.importorskip("uvicorn")
    from lambdas.validation.denylist import Denylist
    from lambdas.validation.dynamodb_store import DynamoDbTable, dynamodb_client

    _, _, env, _ = world
    for name, value in DUMMY_AWS.items():   # boto3 reads credentials from the process (in a pod: IRSA's variables)
        monkeypatch.setenv(name, value)
    pod = in_a_pod(env, AUTHGATE_DENYLIST_TABLE=env["AUTHGATE_DENYLIST_TABLE"],
                   AUTHGATE_DYNAMODB_ENDPOINT=env["AUTHGATE_DYNAMODB_ENDPOINT"])
    table = DynamoDbTable(env["AUTHGATE_DENYLIST_TABLE"], client_factory=lambda: dynamodb_client(
        region="eu-west-1", endpoint_url=env["AUTHGATE_DYNAMODB_ENDPOINT"], timeout_seconds=5))
    replicas_share_proofs_and_logouts(world, pod, Denylist(table))


def test_forward_auth_replicas_share_a_redis(world, tmp_path):
    pytest.importorskip("uvicorn")
    from lambdas.validation.denylist import Denylist
    from lambdas.validation.redis_store import RedisEndpoint, RedisStore
    from tests.support.redis_server import RedisServer

    _, _, env, _ = world
    # The in-cluster shape without DynamoDB (AKS, any cluster): the Redis URL and the password from a Secret.
    server = RedisServer(tmp_path, password="from-a-kubernetes-secret").start()

    def store_gone(first, plain) -> None:
        server.stop()   # denylist and DPoP routes fail closed, others still answer
        assert first.check("GET", "/reports", f"Bearer {plain}") == 503
        assert first.check("GET", "/orders", f"Bearer {plain}") == 200

    try:
        pod = in_a_pod(env, AUTHGATE_REDIS_URL=server.url, AUTHGATE_REDIS_PASSWORD=server.password)
        store = RedisStore(RedisEndpoint(server.url, password=server.password))
        replicas_share_proofs_and_logouts(world, pod, Denylist(store), then=store_gone)
    finally:
        server.stop()
