"""The denylist (jti, origin_jti, sid, sub-before-T) over its two stores: in memory, and DynamoDB through moto's
real server on 127.0.0.1 (the conditional writes and TTL reads the Lambda relies on). The replay store likewise."""
from __future__ import annotations

import logging
import threading

import pytest

from lambdas.validation.denylist import Denylist, DenylistUnavailable, MemoryDenylistStore, entry_key
from lambdas.validation.dynamodb_store import DynamoDbTable
from lambdas.validation.errors import TokenRejected
from lambdas.validation.replay import MemoryReplayStore, ReplayStoreUnavailable

ISS = "https://idp.example.com"
DUMMY = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "aws_session_token": "testing"}


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def dynamodb():
    """moto's server on an ephemeral loopback port, and a table shaped as the CDK construct makes it."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        client = boto3.session.Session(region_name="eu-west-1", **DUMMY).client(
            "dynamodb", endpoint_url=f"http://{host}:{port}")
        client.create_table(TableName="authgate-denylist", BillingMode="PAY_PER_REQUEST",
                            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
        client.update_time_to_live(TableName="authgate-denylist",
                                   TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"})
        yield client, server
        # moto's backends live in this process, not in the server: leave no table for the next module's server.
        client.delete_table(TableName="authgate-denylist")
    finally:
        server.stop()


def stores(request, clock):
    if request.param == "memory":
        return MemoryDenylistStore(clock=clock), MemoryReplayStore(clock=clock)
    client, _ = request.getfixturevalue("dynamodb")
    table = DynamoDbTable("authgate-denylist", client=client, clock=clock)
    return table, table


@pytest.fixture(params=["memory", "dynamodb"])
def backends(request):
    clock = Clock(1_800_000_000.0 + hash(request.node.name) % 10_000)
    denylist_store, replay = stores(request, clock)
    return Denylist(denylist_store, clock=clock), replay, clock


def claims(**extra):
    base = {"iss": ISS, "sub": "alice", "jti": "t-1", "sid": "s-1", "iat": 1_800_000_000.0}
    base.update(extra)
    return base


def test_jti_revocation_refuses_that_token_only(backends):
    denylist, _, clock = backends
    jti = f"jti-{clock.now}"
    denylist.check(ISS, claims(jti=jti), cache_seconds=0)
    denylist.revoke(ISS, "jti", jti, lifetime_seconds=600)
    with pytest.raises(TokenRejected, match="the token was revoked") as info:
        denylist.check(ISS, claims(jti=jti, iat=clock.now + 100), cache_seconds=0)
    assert info.value.code == "revoked"
    denylist.check(ISS, claims(jti=jti + "-other"), cache_seconds=0)
    denylist.check("https://other.example.com", claims(jti=jti), cache_seconds=0)  # keyed per issuer


def test_cognito_origin_jti_revokes_every_token_of_a_refresh_token(backends):
    denylist, _, clock = backends
    origin = f"origin-{clock.now}"
    denylist.revoke(ISS, "jti", origin, lifetime_seconds=600)
    with pytest.raises(TokenRejected, match="refresh token this token came from"):
        denylist.check(ISS, claims(jti="fresh", origin_jti=origin), cache_seconds=0)


@pytest.mark.parametrize("kind", ["sid", "sub"])
def test_session_and_subject_refuse_tokens_issued_before_the_logout(backends, kind):
    denylist, _, clock = backends
    value = f"{kind}-{clock.now}"
    denylist.revoke(ISS, kind, value, lifetime_seconds=600)
    with pytest.raises(TokenRejected) as info:
        denylist.check(ISS, claims(**{kind: value, "jti": "a", "iat": clock.now - 10}), cache_seconds=0)
    assert info.value.found == kind
    with pytest.raises(TokenRejected):
        denylist.check(ISS, claims(**{kind: value, "jti": "a", "iat": None}), cache_seconds=0)  # cannot tell: no
    denylist.check(ISS, claims(**{kind: value, "jti": "b", "iat": clock.now + 1}), cache_seconds=0)  # a new sign-in


def test_entries_expire_after_the_longest_token_lifetime(backends):
    denylist, _, clock = backends
    value = f"sub-exp-{clock.now}"
    denylist.revoke(ISS, "sub", value, lifetime_seconds=60)
    clock.now += 61
    denylist.check(ISS, claims(sub=value, iat=clock.now - 120), cache_seconds=0)


def test_later_revocation_wins_over_an_earlier_one_arriving_late(backends):
    denylist, _, clock = backends
    value = f"sid-order-{clock.now}"
    denylist.revoke(ISS, "sid", value, lifetime_seconds=600, at=clock.now)
    denylist.revoke(ISS, "sid", value, lifetime_seconds=600, at=clock.now - 100)
    with pytest.raises(TokenRejected):
        denylist.check(ISS, claims(sid=value, iat=clock.now - 50), cache_seconds=0)


def test_replay_store_says_first_use_once(backends):
    _, replay, clock = backends
    key = f"dpop:{clock.now}"
    assert replay.first_use(key, expires_at=clock.now + 60) is True
    assert replay.first_use(key, expires_at=clock.now + 60) is False
    clock.now += 61
    assert replay.first_use(key, expires_at=clock.now + 60) is True  # expired records do not block


def test_concurrent_first_use_admits_exactly_one(backends):
    _, replay, clock = backends
    key = f"race:{clock.now}"
    results: list[bool] = []
    threads = [threading.Thread(target=lambda: results.append(replay.first_use(key, expires_at=clock.now + 60)))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]


def test_dynamodb_outage_fails_closed():
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    server.stop()  # nothing listens there now
    from botocore.config import Config
    client = boto3.session.Session(region_name="eu-west-1", **DUMMY).client(
        "dynamodb", endpoint_url=f"http://{host}:{port}",
        config=Config(connect_timeout=0.5, read_timeout=0.5, retries={"max_attempts": 1}))
    table = DynamoDbTable("authgate-denylist", client=client)
    with pytest.raises(TokenRejected) as info:
        Denylist(table).check(ISS, claims(), cache_seconds=5)
    assert info.value.code == "denylist_unavailable"
    with pytest.raises(DenylistUnavailable):
        Denylist(table).revoke(ISS, "jti", "x", lifetime_seconds=60)
    with pytest.raises(ReplayStoreUnavailable):
        table.first_use("dpop:x", expires_at=2_000_000_000)


def test_unknown_table_is_unavailable_not_empty(dynamodb):
    client, _ = dynamodb
    table = DynamoDbTable("no-such-table", client=client)
    with pytest.raises(DenylistUnavailable):
        table.get_many([entry_key(ISS, "jti", "x")])


def test_entry_keys_name_their_kind():
    assert entry_key(ISS, "sid", "s") == f"sid|{ISS}|s"
    with pytest.raises(ValueError, match="jti, sid or sub"):
        entry_key(ISS, "token", "x")
