"""Key-server faults end to end: a real JWKS server on 127.0.0.1 that goes down, errs, stalls, sends garbage or
oversized bodies, redirects, mislabels keys or rotates them, under the REST, HTTP API and WebSocket authorizers and
the Verifier. Every decision's outcome, its wall time and the requests the key server received are checked.

Set-up: the route table names the issuer's jwks_uri on the local server and sets `allow_insecure_http` (the explicit
switch that admits plain http, to loopback only). Each authorizer runs on the runtime its handler builds from that
table at init, and decides through the handler module's `authorize`, which is all `handler` does after init. The one
change is the key source: the JwksCache the table would build, given an injected clock (TTLs, cooldowns and the stale
window pass without sleeping) and a short fetch timeout (the suite stays fast). `test_handlers_as_deployed_*` runs
the handlers unchanged: configured from the environment, keys fetched at import, the default 1 s timeout.

What each outcome means (lambdas/authorizers/runtime.py): keys that cannot be had -> "unavailable" (the handler raises
AuthorizerUnavailable; API Gateway answers 500 and caches nothing), never Allow and never a Deny; a token whose key
the issuer does not serve for its alg -> "unauthorized" (401; an HTTP API simple response says isAuthorized false).
Every token is freshly minted, so no decision is answered from the Verifier's verified-token cache.
"""
from __future__ import annotations

import importlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import SimpleNamespace

import pytest

from lambdas.authorizers import http_api, rest, websocket
from lambdas.authorizers.iam_policy import policy_allows
from lambdas.authorizers.runtime import AuthorizerRuntime, AuthorizerUnavailable
from lambdas.validation.errors import KEY_SOURCE_CODES, TokenRejected
from lambdas.validation.fetcher import DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT_SECONDS
from lambdas.validation.jwks_cache import JwksCache
from lambdas.validation.route_table import RouteTable
from tests.support.http_server import LocalHttpServer
from tests.support.route_tables import route, table_document
from tests.support.tokens import SigningKey, mint

PATH = "/.well-known/jwks.json"
STAGE_ARN = "arn:aws:execute-api:eu-west-1:123456789012:a1b2c3d4e5/prod"
ORDERS_ARN = f"{STAGE_ARN}/GET/orders"
CONNECT_ARN = f"{STAGE_ARN}/$connect"
FETCH_TIMEOUT = 0.2
# For tests that count fetches under concurrency rather than time them: long enough for a key server whose threads
# are scheduled late on a loaded machine.
UNHURRIED_FETCH_TIMEOUT = 2.0
# A decision's own work (decoding, one RSA verify, an IAM policy) is about a millisecond. The margin absorbs the fetch
# deadline's timer thread and the server's threads being scheduled late on a shared 2-core machine that runs other
# suites at the same time. A fetch the deadline failed to stop overshoots it; a second fetch within one decision
# shows in the request counts every test checks.
BUDGET_MARGIN = 0.25
SURFACES = ("rest", "http_api", "websocket", "verifier")

ALLOW, DENY, UNAUTHORIZED, UNAVAILABLE = "allow", "forbidden", "unauthorized", "unavailable"


# ----- the issuer's key server -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def keys() -> SimpleNamespace:
    """issuer signs the tokens; spare is published beside it (as issuers pre-publish their next key); stranger is
    never published by the issuer (another server on 127.0.0.1 serves it); successor is the key rotated in."""
    return SimpleNamespace(issuer=SigningKey.generate("RS256", kid="issuer-1"),
                           spare=SigningKey.generate("RS256", kid="spare-1"),
                           stranger=SigningKey.generate("RS256", kid="stranger-1"),
                           successor=SigningKey.generate("RS256", kid="issuer-2"))


class KeyServer:
    """The issuer's JWKS server, and `elsewhere`: another local server holding a stranger's valid keys, the place a
    followed redirect would lead."""

    def __init__(self, server: LocalHttpServer, elsewhere: LocalHttpServer, keys: SimpleNamespace) -> None:
        self.server = server
        self.elsewhere = elsewhere
        self.keys = keys

    @property
    def jwks_uri(self) -> str:
        return self.server.url(PATH)

    def good_jwks(self) -> dict:
        return {"keys": [self.keys.issuer.jwk(), self.keys.spare.jwk()]}

    def serve_keys(self, *signing_keys: SigningKey, max_age: int | None = None) -> None:
        headers = {"Cache-Control": f"max-age={max_age}"} if max_age is not None else {}
        self.server.serve_json(PATH, {"keys": [k.jwk() for k in signing_keys]}, headers=headers)

    def received(self) -> int:
        return self.server.count(PATH)


@pytest.fixture(scope="module")
def elsewhere(keys) -> Iterator[LocalHttpServer]:
    """A server the configuration never names, holding a stranger's valid keys: no fetch may ever reach it."""
    with LocalHttpServer() as server:
        server.serve_json(PATH, {"keys": [keys.stranger.jwk()]})
        yield server


@pytest.fixture(scope="module")
def background() -> Iterator[ThreadPoolExecutor]:
    """Stops servers off the test's path; leaving the module waits for them."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        yield pool


@pytest.fixture
def site(keys, elsewhere, background) -> Iterator[KeyServer]:
    """The issuer's key server for one test, serving the issuer's and the spare key."""
    reached_elsewhere = elsewhere.count(PATH)
    server = LocalHttpServer().start()
    try:
        key_server = KeyServer(server, elsewhere, keys)
        server.serve_json(PATH, key_server.good_jwks())
        yield key_server
    finally:
        background.submit(server.stop)  # a stop waits out one 50 ms turn of the accept loop
    assert elsewhere.count(PATH) == reached_elsewhere, "a key fetch reached a server the configuration does not name"


def token(key: SigningKey, *, kid: str | None = None) -> str:
    """A token the routes accept if its signature does; a new jti each time."""
    return mint(key, header={"kid": kid} if kid else None, scope="orders:read", client_id="orders-web")


# ----- the authorizers ---------------------------------------------------------------------------------------------

class FakeClock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def route_table(jwks_uri: str) -> dict:
    """What `authgate render routes` writes for an issuer whose keys a local development server holds."""
    return table_document(None, [route("GET /orders", scopes=["orders:read"])],
                          extra_apis={"stream": {"routes": [route("$connect", scopes=["orders:read"])]}},
                          jwks=None, jwks_uri=jwks_uri, allow_insecure_http=True)


def write_route_table(directory, jwks_uri: str) -> str:
    path = directory / "routes.json"
    path.write_text(json.dumps(route_table(jwks_uri)), encoding="utf-8")
    return str(path)


def rest_event(raw_token: str) -> dict:
    return {"type": "TOKEN", "authorizationToken": f"Bearer {raw_token}", "methodArn": ORDERS_ARN}


def http_api_event(raw_token: str) -> dict:
    return {"version": "2.0", "type": "REQUEST", "routeArn": ORDERS_ARN, "routeKey": "GET /orders",
            "rawPath": "/orders", "headers": {"authorization": f"Bearer {raw_token}"},
            "requestContext": {"http": {"method": "GET", "path": "/orders"}, "routeKey": "GET /orders",
                               "requestId": "fault-test"}}


def connect_event(raw_token: str) -> dict:
    return {"type": "REQUEST", "methodArn": CONNECT_ARN, "headers": {},
            "queryStringParameters": {"access_token": raw_token},
            "multiValueQueryStringParameters": {"access_token": [raw_token]},
            "requestContext": {"routeKey": "$connect", "eventType": "CONNECT", "requestId": "fault-test"}}


HANDLERS = {  # kind: (module, API name in the route table, event builder, ARN the decision is about)
    "rest": (rest, "orders", rest_event, ORDERS_ARN),
    "http_api": (http_api, "orders", http_api_event, ORDERS_ARN),
    "websocket": (websocket, "stream", connect_event, CONNECT_ARN),
}


class AuditSpy:
    """Each handler's audit record, kept per thread so concurrent decisions each read their own."""

    def __init__(self) -> None:
        self._local = threading.local()

    def emit(self, record: dict) -> None:
        self._local.record = record

    def take(self) -> dict:
        record = getattr(self._local, "record", None)
        self._local.record = None
        assert record is not None, "the handler decided without writing its audit line"
        return record


@pytest.fixture
def audit(monkeypatch) -> AuditSpy:
    spy = AuditSpy()
    for module, *_ in HANDLERS.values():
        monkeypatch.setattr(module, "emit", spy.emit)
    return spy


@dataclass(frozen=True)
class Outcome:
    decision: str          # allow | deny | unauthorized | unavailable
    code: str | None       # the TokenRejected code, None when allowed


class Authorizer:
    """One decision surface (a handler's `authorize` on its runtime, or the Verifier) over one JwksCache."""

    def __init__(self, surface: str, table_path: str, audit: AuditSpy, *, timeout: float) -> None:
        self.surface = surface
        self.audit = audit
        self.clock = FakeClock()
        self.budget = timeout + BUDGET_MARGIN
        table = RouteTable.load(table_path)
        config = table.issuers["corp"]
        self.cache = JwksCache(config.jwks_uri, allow_insecure_http=config.allow_insecure_http, issuer=config.issuer,
                               clock=self.clock, timeout=timeout)
        self.verifier = table.verifier(key_sources={"corp": self.cache})
        self.runtime: AuthorizerRuntime | None = None
        if surface in HANDLERS:
            _, api, _, _ = HANDLERS[surface]
            settings = {"rest": None, "http_api": http_api.HttpApiSettings({}),
                        "websocket": websocket.WebSocketSettings({})}[surface]
            self.runtime = AuthorizerRuntime(table, api, verifier=self.verifier, settings=settings)
            if surface == "rest":
                self.runtime.prepare_policies()  # as rest._load does at init

    def init(self) -> None:
        """What Lambda init does after loading the table: fetch the keys now; an outage there is not fatal."""
        started = time.monotonic()
        if self.runtime is not None:
            self.runtime.hydrate()
        else:
            try:
                self.verifier.hydrate()
            except TokenRejected:
                pass
        self._within_budget("init", time.monotonic() - started)

    def decide(self, raw_token: str) -> Outcome:
        started = time.monotonic()
        outcome = self._decide(raw_token)
        self._within_budget("a decision", time.monotonic() - started)
        return outcome

    def _within_budget(self, what: str, seconds: float) -> None:
        assert seconds <= self.budget, f"{self.surface}: {what} took {seconds:.3f} s, budget {self.budget:.3f} s"

    def _decide(self, raw_token: str) -> Outcome:
        if self.runtime is None:
            try:
                self.verifier.verify(raw_token, scopes=("orders:read",))
            except TokenRejected as exc:
                if exc.code in KEY_SOURCE_CODES:
                    return Outcome(UNAVAILABLE, exc.code)
                return Outcome(DENY if exc.status == 403 else UNAUTHORIZED, exc.code)
            return Outcome(ALLOW, None)
        module, _, event_for, arn = HANDLERS[self.surface]
        event = event_for(raw_token)
        try:
            if self.surface == "rest":
                response = rest.authorize(self.runtime, event)
            else:
                response = module.authorize(self.runtime, event, self.runtime.settings)
        except AuthorizerUnavailable:
            decision = UNAVAILABLE
        except Exception as exc:
            if type(exc) is not Exception or exc.args != ("Unauthorized",):  # what API Gateway turns into 401
                raise
            decision = UNAUTHORIZED
        else:
            if "isAuthorized" in response:  # the simple format says false for both 401 and 403 cases
                decision = ALLOW if response["isAuthorized"] is True else "refused"
            else:
                decision = ALLOW if policy_allows(response["policyDocument"], arn) else DENY
        record = self.audit.take()
        if decision == "refused":
            assert record["decision"] in (DENY, UNAUTHORIZED)
            decision = record["decision"]
        assert record["decision"] == decision, (record, decision)
        return Outcome(decision, record["code"])


@pytest.fixture
def authorizer_for(site, tmp_path, audit) -> Callable[..., Authorizer]:
    path = write_route_table(tmp_path, site.jwks_uri)

    def build(surface: str, *, timeout: float = FETCH_TIMEOUT) -> Authorizer:
        return Authorizer(surface, path, audit, timeout=timeout)
    return build


# ----- the fault matrix --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Expectation:
    """What a fault leads to, for the issuer's own token and for one whose kid the issuer never published."""

    issuer_cold: Outcome   # nothing cached when the fault begins
    issuer_warm: Outcome   # keys cached, and past their freshness, when the fault begins
    stranger: Outcome      # either phase
    cold_fetches: int      # fetches over the cold sequence: init, a request in the error backoff, one after it


# The keys cannot be had. Nothing cached: fail closed, one fetch at init and one after the error backoff. Keys cached:
# they keep serving for the stale window; a kid not among them is unavailable rather than unknown, because whether
# the issuer publishes it cannot be known right now.
OUTAGE = Expectation(issuer_cold=Outcome(UNAVAILABLE, "jwks_unavailable"), issuer_warm=Outcome(ALLOW, None),
                     stranger=Outcome(UNAVAILABLE, "jwks_unavailable"), cold_fetches=2)


def not_served(code: str) -> Expectation:
    """The server answers a usable key set in which the issuer's key cannot verify RS256: its tokens are refused
    (401) as a stranger's are. One fetch at init; the refetch cooldown covers the rest."""
    return Expectation(issuer_cold=Outcome(UNAUTHORIZED, code), issuer_warm=Outcome(UNAUTHORIZED, code),
                       stranger=Outcome(UNAUTHORIZED, "unknown_kid"), cold_fetches=1)


def issuer_jwk(site: KeyServer, **members) -> dict:
    """The issuer's public JWK with `members` changed (None removes one)."""
    jwk = site.keys.issuer.jwk()
    jwk.update(members)
    return {name: value for name, value in jwk.items() if value is not None}


def oversized(site: KeyServer) -> dict:
    return {**site.good_jwks(), "padding": "x" * DEFAULT_MAX_BYTES}


@dataclass(frozen=True)
class Fault:
    name: str
    misbehave: Callable[[KeyServer], None]
    expect: Expectation
    reason: str | None = None      # what the failed fetch is refused for (in jwks_unavailable's `found`)
    reaches_server: bool = True    # False: nothing listens, so the server sees no attempt


FAULTS = [
    Fault("stopped", lambda s: s.server.stop(), OUTAGE, "connection refused", reaches_server=False),
    Fault("connection_closed_unanswered", lambda s: s.server.drop(PATH), OUTAGE, "closed the connection"),
    Fault("status_500", lambda s: s.server.fail(PATH, status=500, body="internal error"), OUTAGE, "HTTP 500"),
    # Retry-After: 0 invites an immediate retry; the cache's own error backoff decides when to ask again.
    Fault("status_503_retry_after", lambda s: s.server.serve(PATH, "try again", status=503,
                                                             headers={"Retry-After": "0"}), OUTAGE, "HTTP 503"),
    # An hour asked for: with keys cached it is honoured within the stale window (the timelines below); with none
    # cached nothing is served while waiting, so the error backoff still decides and the cold sequence is unchanged.
    Fault("status_429_retry_after_an_hour", lambda s: s.server.serve(PATH, "slow down", status=429,
                                                                     headers={"Retry-After": "3600"}), OUTAGE,
          "HTTP 429"),
    Fault("headers_slower_than_timeout", lambda s: s.server.serve_json(PATH, s.good_jwks(), delay=30), OUTAGE,
          "timed out"),
    Fault("body_trickles_past_timeout", lambda s: s.server.serve_json(PATH, s.good_jwks(), chunk_size=16,
                                                                      chunk_delay=0.05), OUTAGE, "timed out"),
    Fault("html_error_page", lambda s: s.server.serve(PATH, "<html><body>Bad gateway</body></html>",
                                                      headers={"Content-Type": "text/html"}), OUTAGE,
          "not valid JSON"),
    Fault("json_array", lambda s: s.server.serve(PATH, s.good_jwks()["keys"]), OUTAGE, "got a JSON list"),
    Fault("keys_not_a_list", lambda s: s.server.serve_json(PATH, {"keys": s.good_jwks()["keys"][0]}), OUTAGE,
          'with a "keys" array'),
    Fault("over_cap_length_declared", lambda s: s.server.serve_json(PATH, oversized(s)), OUTAGE,
          "bytes, more than the"),
    Fault("over_cap_length_undeclared", lambda s: s.server.serve_json(PATH, oversized(s), declare_length=False),
          OUTAGE, "the body exceeds the"),
    Fault("redirect_to_valid_keys_elsewhere", lambda s: s.server.serve(
        PATH, "", status=302, headers={"Location": s.elsewhere.url(PATH)}), OUTAGE, "redirects are not followed"),
    # A set with no key usable for signatures is a bad document: it never replaces cached keys.
    Fault("only_key_use_enc", lambda s: s.server.serve_json(PATH, {"keys": [issuer_jwk(s, use="enc")]}), OUTAGE,
          "no usable signing key"),
    Fault("issuer_key_use_enc", lambda s: s.server.serve_json(
        PATH, {"keys": [issuer_jwk(s, use="enc"), s.keys.spare.jwk()]}), not_served("unknown_kid")),
    Fault("issuer_key_ops_without_verify", lambda s: s.server.serve_json(
        PATH, {"keys": [issuer_jwk(s, use=None, key_ops=["encrypt", "wrapKey"]), s.keys.spare.jwk()]}),
        not_served("unknown_kid")),
    Fault("issuer_key_alg_mismatch", lambda s: s.server.serve_json(
        PATH, {"keys": [issuer_jwk(s, alg="RS384"), s.keys.spare.jwk()]}), not_served("alg_not_allowed")),
]


@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize("fault", FAULTS, ids=lambda fault: fault.name)
def test_cold_start_into_a_fault(site, authorizer_for, keys, fault, surface):
    """The fault is there from the start: init, a request in the error backoff, one after it, a stranger's token."""
    fault.misbehave(site)
    authorizer = authorizer_for(surface)
    authorizer.init()
    assert authorizer.decide(token(keys.issuer)) == fault.expect.issuer_cold
    authorizer.clock.advance(authorizer.cache.policy.error_backoff + 1)
    assert authorizer.decide(token(keys.issuer)) == fault.expect.issuer_cold
    assert authorizer.decide(token(keys.stranger)) == fault.expect.stranger
    if fault.reason is not None:  # still in the error backoff: this asks for the latest failure without a fetch
        with pytest.raises(TokenRejected) as refused:
            authorizer.cache.hydrate()
        assert fault.reason in refused.value.found
    assert authorizer.cache.fetch_count == fault.expect.cold_fetches
    assert site.received() == (fault.expect.cold_fetches if fault.reaches_server else 0)


@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize("fault", FAULTS, ids=lambda fault: fault.name)
def test_fault_after_keys_were_cached(site, authorizer_for, keys, fault, surface):
    """Keys cached at init; the fault begins; once the keys are past their freshness the next request meets it."""
    authorizer = authorizer_for(surface)
    authorizer.init()
    assert authorizer.decide(token(keys.issuer)) == Outcome(ALLOW, None)
    fault.misbehave(site)
    authorizer.clock.advance(authorizer.cache.policy.default_ttl + 1)
    assert authorizer.decide(token(keys.issuer)) == fault.expect.issuer_warm
    assert authorizer.decide(token(keys.stranger)) == fault.expect.stranger
    assert authorizer.cache.fetch_count == 2   # init, then one refetch: the stranger's kid waits out backoff/cooldown
    assert site.received() == (2 if fault.reaches_server else 1)


@pytest.mark.parametrize("kind", sorted(HANDLERS))
def test_handlers_as_deployed_fail_closed_within_the_default_timeout(site, tmp_path, monkeypatch, capsys, keys, kind):
    """The handler module as Lambda runs it: configured from the environment, keys fetched at import with the default
    fetch timeout, from a key server that answers too slowly."""
    module, api, event_for, _ = HANDLERS[kind]
    monkeypatch.setenv("AUTHGATE_POLICY", write_route_table(tmp_path, site.jwks_uri))
    monkeypatch.setenv("AUTHGATE_API", api)
    for name in ("AUTHGATE_RESPONSE", "AUTHGATE_TOKEN_HEADER", "AUTHGATE_RESULT_TTL_SECONDS",
                 "AUTHGATE_IDENTITY_SOURCES", "AUTHGATE_MAX_POLICY_BYTES", "AUTHGATE_WS_TOKEN_SOURCE",
                 "AUTHGATE_WS_QUERY_PARAM"):
        monkeypatch.delenv(name, raising=False)
    site.server.serve_json(PATH, site.good_jwks(), delay=30)

    started = time.monotonic()
    importlib.reload(module)
    init_seconds = time.monotonic() - started
    assert init_seconds <= DEFAULT_TIMEOUT_SECONDS + BUDGET_MARGIN
    assert site.received() == 1

    started = time.monotonic()
    with pytest.raises(AuthorizerUnavailable):
        module.handler(event_for(token(keys.issuer)))
    # Within the error backoff the request is refused without waiting on the issuer again.
    assert time.monotonic() - started <= BUDGET_MARGIN
    assert site.received() == 1
    [line] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"authgate"')]
    assert (line["decision"], line["code"]) == (UNAVAILABLE, "jwks_unavailable")


# ----- whole timelines through an authorizer -----------------------------------------------------------------------

@pytest.mark.parametrize("surface", SURFACES)
def test_outage_is_ridden_out_for_the_stale_window_and_no_longer(site, authorizer_for, keys, surface):
    """Keys cached with max-age=300, then the issuer goes down: tokens are allowed on the stale keys until the stale
    window closes, then refused as unavailable (never Allow, never a Deny), with one fetch attempt per visit after the
    error backoff. When the issuer is back, the next request after the backoff recovers."""
    ttl = 300
    site.serve_keys(keys.issuer, max_age=ttl)
    authorizer = authorizer_for(surface)
    policy = authorizer.cache.policy
    init_at = authorizer.clock()
    authorizer.init()
    site.server.drop(PATH)
    stale_until = ttl + policy.stale_if_error
    timeline = [  # (seconds since init, decision, fetches the request causes)
        (ttl - 1, ALLOW, 0),                       # still fresh: the outage goes unnoticed
        (ttl + 1, ALLOW, 1),                       # stale: the refetch fails, the stale keys serve
        (ttl + 2, ALLOW, 0),                       # error backoff: no new attempt
        *[(ttl + later, ALLOW, 1) for later in range(600, int(policy.stale_if_error), 600)],
        (stale_until - 1, ALLOW, 1),
        (stale_until + 10, UNAVAILABLE, 1),        # the stale window is over: fail closed
        (stale_until + 11, UNAVAILABLE, 0),        # ... without touching the network during the backoff
        (stale_until + 86400, UNAVAILABLE, 1),
    ]
    for at, decision, fetches in timeline:
        authorizer.clock.now = init_at + at
        received = site.received()
        outcome = authorizer.decide(token(keys.issuer))
        assert outcome.decision == decision, at
        assert outcome.code == (None if decision == ALLOW else "jwks_unavailable"), at
        assert site.received() - received == fetches, at

    site.serve_keys(keys.issuer, max_age=ttl)
    authorizer.clock.advance(policy.error_backoff)
    assert authorizer.decide(token(keys.issuer)) == Outcome(ALLOW, None)
    assert authorizer.cache.fetch_count == site.received() == 1 + sum(f for _, _, f in timeline) + 1


BLIPS = {  # how the key server fails while the new key is being published: (misbehave, seconds until asked again)
    "connection_closed": (lambda s: s.server.drop(PATH), None),           # None: the error backoff
    "status_503": (lambda s: s.server.fail(PATH, status=503), None),
    "status_503_retry_after_20": (lambda s: s.server.serve(PATH, "busy", status=503,
                                                           headers={"Retry-After": "20"}), 20),
    "status_429_retry_after_a_day": (lambda s: s.server.serve(PATH, "slow down", status=429,
                                                              headers={"Retry-After": "86400"}), "stale_if_error"),
}


@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize("blip", sorted(BLIPS))
def test_rotation_that_meets_a_blip_is_picked_up_when_the_issuer_is_back(site, authorizer_for, keys, surface, blip):
    """The issuer rotates and its key server fails just as the first token with the new kid arrives: that token is
    refused as unavailable (500, never a Deny), and so is every one until the next attempt is due: after the error
    backoff, or after the Retry-After the server sent (bounded by the stale window), not after the 30 s unknown-kid
    cooldown. The issuer is back by then, so the next token with the new kid refetches and is allowed; the cooldown
    applies again after that successful fetch. Tokens with the old kid are allowed throughout."""
    misbehave, asked = BLIPS[blip]
    # The blips fail at once; the recovery fetch must not time out on a loaded machine, or it would read as a blip.
    authorizer = authorizer_for(surface, timeout=UNHURRIED_FETCH_TIMEOUT)
    policy = authorizer.cache.policy
    wait = {None: policy.error_backoff, "stale_if_error": policy.stale_if_error}.get(asked, asked)
    site.serve_keys(keys.issuer, max_age=int(policy.max_ttl))
    authorizer.init()
    authorizer.clock.advance(policy.refetch_cooldown + 1)
    misbehave(site)
    start = authorizer.clock()
    timeline = [  # (seconds after the first new-kid token, outcome for a new-kid token, fetches it causes)
        (0, Outcome(UNAVAILABLE, "jwks_unavailable"), 1),
        (wait - 1, Outcome(UNAVAILABLE, "jwks_unavailable"), 0),   # the issuer is back, the wait is not over
        (wait, Outcome(ALLOW, None), 1),                            # still inside the cooldown: picked up
        (wait + 1, Outcome(ALLOW, None), 0),
    ]
    for at, expected, fetches in timeline:
        authorizer.clock.now = start + at
        if at == wait - 1:
            site.serve_keys(keys.issuer, keys.successor, max_age=int(policy.max_ttl))
        received = site.received()
        assert authorizer.decide(token(keys.successor)) == expected, at
        assert authorizer.decide(token(keys.issuer)) == Outcome(ALLOW, None), at
        assert site.received() - received == fetches, at
    # After the successful fetch a made-up kid waits out the cooldown again.
    assert authorizer.decide(token(keys.stranger, kid=uuid.uuid4().hex)) == Outcome(UNAUTHORIZED, "unknown_kid")
    assert authorizer.cache.fetch_count == site.received() == 3


@pytest.fixture(scope="module")
def made_up_kid_tokens(keys) -> list[str]:
    """200 tokens with random kids, signed with an algorithm the issuer allows (so the kid lookup is reached)."""
    return [token(keys.stranger, kid=uuid.uuid4().hex) for _ in range(200)]


def flood(authorizer: Authorizer, made_up: list[str], genuine: list[str]) -> tuple[list[Outcome], list[Outcome]]:
    """Decide every token from 8 threads, the genuine ones spread through the made-up ones."""
    step = len(made_up) // len(genuine)
    mixed: list[str] = []
    for index, made_up_token in enumerate(made_up):
        if index % step == 0:
            mixed.append(genuine[index // step])
        mixed.append(made_up_token)
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = dict(zip(mixed, pool.map(authorizer.decide, mixed), strict=True))
    return [outcomes[t] for t in made_up], [outcomes[t] for t in genuine]


@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize("phase", ["issuer_up", "issuer_down", "issuer_down_keys_stale"])
def test_unknown_kid_flood_costs_at_most_one_fetch_per_window(site, authorizer_for, keys, made_up_kid_tokens,
                                                              surface, phase):
    """200 tokens with made-up kids from 8 threads, three times: at once, just inside the window, just after it.
    Issuer up: the window is the refetch cooldown. Issuer down (keys fresh or stale): a failed attempt is retried
    once per error backoff, the outage's own retry rate (so a rotation that met a blip is picked up soon after), and
    the flood adds nothing to that. Genuine tokens among the made-up ones keep being allowed on the cached keys.
    What is counted here is fetches, not how fast one is: the fetch timeout is generous, so a key server scheduled
    late among 8 busy threads still answers (with 0.2 s the issuer_up fetch sometimes timed out on a loaded machine
    and turned unknown_kid into jwks_unavailable); the issuer_down fetches fail at once whatever the timeout."""
    authorizer = authorizer_for(surface, timeout=UNHURRIED_FETCH_TIMEOUT)
    policy = authorizer.cache.policy
    authorizer.init()
    authorizer.clock.advance(policy.refetch_cooldown + 1)   # the cooldown since init is over; keys fresh for 600 s
    window = policy.refetch_cooldown
    if phase != "issuer_up":
        site.server.drop(PATH)
        window = policy.error_backoff
    if phase == "issuer_down_keys_stale":
        authorizer.clock.advance(policy.default_ttl)
    # Issuer up: the kids are not the issuer's (401). Down: whether they are cannot be known (500, retry later).
    expected = (Outcome(UNAUTHORIZED, "unknown_kid") if phase == "issuer_up"
                else Outcome(UNAVAILABLE, "jwks_unavailable"))
    for advance, fetches in [(0, 1), (window - 1, 0), (2, 1)]:
        authorizer.clock.advance(advance)
        received = site.received()
        made_up, genuine = flood(authorizer, made_up_kid_tokens, [token(keys.issuer) for _ in range(10)])
        assert site.received() - received == fetches
        assert set(made_up) == {expected}
        assert set(genuine) == {Outcome(ALLOW, None)}


@pytest.mark.parametrize("surface", SURFACES)
def test_concurrent_cold_start_invocations_share_one_fetch(site, authorizer_for, keys, surface):
    """The issuer was down at init, so nothing is cached; after the backoff 16 invocations arrive at once. The key
    server holds the first fetch open: no other invocation sends its own, and all are allowed once it answers."""
    # The shared fetch is held open while the test watches for others, so its timeout must outlast the watching.
    authorizer = authorizer_for(surface, timeout=UNHURRIED_FETCH_TIMEOUT)
    site.server.fail(PATH, status=503)
    authorizer.init()
    authorizer.clock.advance(authorizer.cache.policy.error_backoff + 1)
    site.server.serve_json(PATH, site.good_jwks())
    site.server.hold(PATH)
    tokens = [token(keys.issuer) for _ in range(16)]
    together = threading.Barrier(len(tokens))

    def invoke(raw_token: str) -> Outcome:
        together.wait()
        return authorizer.decide(raw_token)

    with ThreadPoolExecutor(max_workers=len(tokens)) as pool:
        futures = [pool.submit(invoke, t) for t in tokens]
        assert site.server.wait_for_requests(PATH, 2)   # init's failed fetch, then the shared one
        # Every invocation is past the barrier: one fetching on its own would arrive within this window.
        assert not site.server.wait_for_requests(PATH, 3, timeout=0.2)
        site.server.release(PATH)
        outcomes = [future.result() for future in futures]
    assert set(outcomes) == {Outcome(ALLOW, None)}
    assert authorizer.cache.fetch_count == site.received() == 2


@pytest.mark.parametrize("surface", SURFACES)
def test_rotation_is_picked_up_on_first_sight_and_the_removed_key_is_refused_after_the_refetch(
        site, authorizer_for, keys, surface):
    """The issuer publishes a new key beside the old one, then withdraws the old one. Tokens are fresh each time, so
    none is answered from the verified-token cache."""
    ttl = 300
    site.serve_keys(keys.issuer, max_age=ttl)
    authorizer = authorizer_for(surface)
    authorizer.init()
    authorizer.clock.advance(authorizer.cache.policy.refetch_cooldown + 1)   # rotations come after the cooldown

    site.serve_keys(keys.issuer, keys.successor, max_age=ttl)     # the new key is published
    assert authorizer.decide(token(keys.successor)) == Outcome(ALLOW, None)
    assert site.received() == 2
    assert authorizer.decide(token(keys.successor)) == Outcome(ALLOW, None)
    assert site.received() == 2

    site.serve_keys(keys.successor, max_age=ttl)                  # the old key is withdrawn
    # Until the cached set is refetched the old key still verifies: the freshness the issuer granted.
    assert authorizer.decide(token(keys.issuer)) == Outcome(ALLOW, None)
    assert site.received() == 2
    authorizer.clock.advance(ttl + 1)
    assert authorizer.decide(token(keys.issuer)) == Outcome(UNAUTHORIZED, "unknown_kid")
    assert site.received() == 3
    assert authorizer.decide(token(keys.successor)) == Outcome(ALLOW, None)
    assert authorizer.decide(token(keys.issuer)) == Outcome(UNAUTHORIZED, "unknown_kid")
    assert authorizer.cache.fetch_count == site.received() == 3
