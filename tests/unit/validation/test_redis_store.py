"""The Redis store (lambdas/validation/redis_store.py) against a real Debian redis-server on 127.0.0.1 (plain, with a
password and an ACL user, and TLS-only), and against small fake TCP peers that misbehave; then two "replicas" built
by request_checks_from_env from one AUTHGATE_REDIS_URL, sharing DPoP replay records, the denylist and back-channel
logouts."""
from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest

from lambdas.backchannel_logout.core import BackchannelLogout
from lambdas.validation import IssuerConfig, Verifier
from lambdas.validation.config import BindingConfig, RevocationConfig
from lambdas.validation.denylist import Denylist, DenylistUnavailable
from lambdas.validation.errors import TokenRejected
from lambdas.validation.logout_token import BACKCHANNEL_LOGOUT_EVENT
from lambdas.validation.possession import RequestFacts, request_checks_from_env
from lambdas.validation.redis_store import MAX_KEY_BYTES, RedisEndpoint, RedisStore
from lambdas.validation.replay import ReplayStoreUnavailable
from lambdas.validation.route_decision import Outcome, decide_request
from lambdas.validation.route_table import RouteTable
from tests.support.dpop import make_proof, thumbprint
from tests.support.keys import SIGNING_KEY as ISSUER_KEY
from tests.support.redis_server import RedisServer, free_port, tls_certificate
from tests.support.route_tables import route, table_document
from tests.support.tokens import AUDIENCE, ISSUER, SigningKey, mint

PASSWORD = "correct-horse-battery-staple"
ISS = "https://idp.example.com"


@pytest.fixture(scope="module")
def redis(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis-auth"), password=PASSWORD).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis-tls"), tls=True).start()
    yield server
    server.stop()


def store_for(server: RedisServer, **options) -> RedisStore:
    endpoint_options = {k: options.pop(k) for k in ("password", "username", "ca_file") if k in options}
    return RedisStore(RedisEndpoint(server.url, **endpoint_options), **options)


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex}"


# ---- replay records ----------------------------------------------------------------------------------------------
def test_first_use_admits_a_key_once_and_refuses_its_replay(redis):
    store = store_for(redis)
    key = unique("dpop:")
    assert store.first_use(key, expires_at=time.time() + 60) is True
    assert store.first_use(key, expires_at=time.time() + 60) is False
    assert store_for(redis).first_use(key, expires_at=time.time() + 60) is False  # another replica's store


def test_concurrent_first_use_admits_exactly_one(redis):
    store = store_for(redis)
    key, threads = unique("dpop:"), 32
    barrier = threading.Barrier(threads)
    results: list[bool] = []
    lock = threading.Lock()

    def attempt():
        barrier.wait()
        outcome = store.first_use(key, expires_at=time.time() + 60)
        with lock:
            results.append(outcome)

    workers = [threading.Thread(target=attempt) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sorted(results) == [False] * (threads - 1) + [True]


def test_a_replay_record_expires_when_asked(redis):
    store = store_for(redis)
    key = unique("dpop:")
    assert store.first_use(key, expires_at=time.time() + 0.2) is True
    assert store.first_use(key, expires_at=time.time() + 0.2) is False
    time.sleep(0.35)
    assert store.first_use(key, expires_at=time.time() + 60) is True


def test_the_expiry_is_relative_so_the_servers_clock_does_not_shorten_it(redis):
    # The store's clock says 1970 + a little; the record still lives the 60 s asked for, by Redis's own clock.
    store = store_for(redis, clock=lambda: 1000.0)
    key = unique("dpop:")
    assert store.first_use(key, expires_at=1060.0) is True
    assert 59_000 < int(redis.cli("PTTL", f"authgate:{key}")) <= 60_000


def test_a_restart_without_persistence_forgets_replay_records(tmp_path):
    # What SECURITY.md warns of: a Redis run with --save '' and no AOF starts empty, so a proof can be used again.
    server = RedisServer(tmp_path).start()
    try:
        store = store_for(server)
        key = unique("dpop:")
        assert store.first_use(key, expires_at=time.time() + 60) is True
        server.stop()
        server.start()
        assert store.first_use(key, expires_at=time.time() + 60) is True
    finally:
        server.stop()


# ---- denylist entries --------------------------------------------------------------------------------------------
def test_a_later_revocation_wins_and_an_earlier_one_changes_nothing(redis):
    store = store_for(redis)
    key = unique("sid|https://idp.example.com|")
    now = time.time()
    store.put(key, revoked_at=now - 100, expires_at=now + 600)
    store.put(key, revoked_at=now, expires_at=now + 60)
    assert store.get_many([key]) == {key: now}
    store.put(key, revoked_at=now - 50, expires_at=now + 60)
    assert store.get_many([key]) == {key: now}
    # The entry lives as long as the longest expiry either write asked for.
    assert int(redis.cli("PTTL", f"authgate:{key}")) > 590_000


def test_concurrent_revocations_keep_the_latest(redis):
    store = store_for(redis)
    key, threads = unique("sub|https://idp.example.com|"), 24
    barrier = threading.Barrier(threads)
    now = time.time()

    def revoke(at: float):
        barrier.wait()
        store.put(key, revoked_at=at, expires_at=now + 60)

    workers = [threading.Thread(target=revoke, args=(now + i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert store.get_many([key]) == {key: now + threads - 1}


def test_get_many_answers_live_entries_only(redis):
    store = store_for(redis)
    live, short, missing = unique("jti|i|"), unique("jti|i|"), unique("jti|i|")
    now = time.time()
    store.put(live, revoked_at=now, expires_at=now + 60)
    store.put(short, revoked_at=now, expires_at=now + 0.2)
    assert store.get_many([live, short, missing, live]) == {live: now, short: now}
    time.sleep(0.35)
    assert store.get_many([live, short, missing]) == {live: now}
    assert store.get_many([]) == {}


def test_an_already_expired_revocation_writes_nothing_and_keeps_the_live_entry(redis):
    store = store_for(redis)
    key = unique("sid|i|")
    now = time.time()
    store.put(key, revoked_at=now - 10, expires_at=now + 60)
    store.put(key, revoked_at=now, expires_at=now - 1)
    assert store.get_many([key]) == {key: now - 10}


def test_a_value_that_is_not_a_revocation_time_is_unavailable_not_absent(redis):
    store = store_for(redis)
    key = unique("jti|i|")
    redis.cli("SET", f"authgate:{key}", "not-a-number")
    with pytest.raises(DenylistUnavailable, match="is not a revocation time"):
        store.get_many([key])
    with pytest.raises(DenylistUnavailable, match="something other than a revocation time"):
        store.put(key, revoked_at=time.time(), expires_at=time.time() + 60)
    assert redis.cli("GET", f"authgate:{key}") == "not-a-number"


def test_the_denylist_over_redis_refuses_a_revoked_session(redis):
    denylist = Denylist(store_for(redis))
    sid = unique("s-")
    claims = {"iss": ISS, "sub": "alice", "jti": unique("t-"), "sid": sid, "iat": time.time() - 5}
    denylist.check(ISS, claims, cache_seconds=0)
    denylist.revoke(ISS, "sid", sid, lifetime_seconds=600)
    with pytest.raises(TokenRejected) as info:
        Denylist(store_for(redis)).check(ISS, claims, cache_seconds=0)
    assert info.value.code == "revoked"


# ---- keys and their namespace ------------------------------------------------------------------------------------
def test_every_key_is_under_the_namespace(redis):
    key = unique("dpop:")
    assert store_for(redis).first_use(key, expires_at=time.time() + 60) is True
    assert redis.cli("EXISTS", f"authgate:{key}") == "1" and redis.cli("EXISTS", key) == "0"
    tenant = store_for(redis, namespace="tenant-b:")
    assert tenant.first_use(key, expires_at=time.time() + 60) is True  # its own records, not authgate:'s
    assert redis.cli("EXISTS", f"tenant-b:{key}") == "1"
    entry = unique("jti|i|")
    store_for(redis).put(entry, revoked_at=1.5, expires_at=time.time() + 60)
    assert tenant.get_many([entry]) == {}


def test_oversize_keys_are_refused_before_anything_is_sent(redis):
    store = store_for(redis)
    key = "dpop:" + "x" * MAX_KEY_BYTES
    with pytest.raises(ReplayStoreUnavailable, match="refuses keys over 1024 bytes"):
        store.first_use(key, expires_at=time.time() + 60)
    with pytest.raises(DenylistUnavailable, match="refuses keys over 1024 bytes"):
        store.put(key, revoked_at=1.0, expires_at=time.time() + 60)
    with pytest.raises(DenylistUnavailable, match="refuses keys over 1024 bytes"):
        store.get_many(["short", key])
    assert redis.cli("EXISTS", f"authgate:{key}") == "0"


@pytest.mark.parametrize("namespace", ["", "has space:", "x" * 65, "tab\t:"])
def test_a_namespace_that_is_not_a_plain_prefix_is_refused(namespace):
    with pytest.raises(ValueError, match="namespace must be 1 to 64 printable characters"):
        RedisStore(RedisEndpoint("redis://127.0.0.1:6379/0"), namespace=namespace)


# ---- connections -------------------------------------------------------------------------------------------------
def test_idle_connections_are_reused(redis):
    store = store_for(redis)
    before = redis.connections_received()
    for _ in range(20):
        store.first_use(unique("dpop:"), expires_at=time.time() + 60)
    assert redis.connections_received() - before == 2  # the store's one connection, and this redis-cli call


def test_a_connection_the_server_dropped_is_replaced_without_a_refusal(redis):
    store = store_for(redis)
    store.first_use(unique("dpop:"), expires_at=time.time() + 60)
    redis.cli("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
    time.sleep(0.05)
    assert store.first_use(unique("dpop:"), expires_at=time.time() + 60) is True


def test_a_server_that_is_down_is_unavailable_fast_and_the_store_recovers(tmp_path):
    server = RedisServer(tmp_path).start()
    try:
        store = store_for(server)
        assert store.first_use(unique("dpop:"), expires_at=time.time() + 60) is True
        server.stop()
        started = time.monotonic()
        with pytest.raises(ReplayStoreUnavailable, match=f"Redis SET on 127.0.0.1:{server.port} failed"):
            store.first_use(unique("dpop:"), expires_at=time.time() + 60)
        with pytest.raises(DenylistUnavailable, match=f"Redis MGET on 127.0.0.1:{server.port} failed"):
            store.get_many(["jti|i|1"])
        assert time.monotonic() - started < 0.5
        server.start()
        assert store.first_use(unique("dpop:"), expires_at=time.time() + 60) is True
    finally:
        server.stop()


def test_a_full_redis_refuses_the_write_and_the_store_fails_closed(tmp_path):
    # With maxmemory-policy noeviction (the default, and what SECURITY.md asks for) nothing is dropped silently.
    server = RedisServer(tmp_path).start()
    try:
        store = store_for(server)
        server.cli("CONFIG", "SET", "maxmemory", "1")
        with pytest.raises(ReplayStoreUnavailable, match="OOM"):
            store.first_use(unique("dpop:"), expires_at=time.time() + 60)
        with pytest.raises(DenylistUnavailable, match="OOM"):
            store.put(unique("jti|i|"), revoked_at=1.0, expires_at=time.time() + 60)
    finally:
        server.stop()


def test_a_call_that_finds_every_connection_busy_waits_only_the_timeout(redis):
    store = store_for(redis, pool_size=1, timeout_seconds=0.2)
    held = threading.Event()
    release = threading.Event()
    original = store.endpoint.open

    def slow_open(deadline):  # the one connection is being dialled by another call, slowly
        held.set()
        release.wait(5)
        return original(time.monotonic() + 1)

    store.endpoint.open = slow_open
    worker = threading.Thread(target=lambda: store.first_use(unique("dpop:"), expires_at=time.time() + 60))
    worker.start()
    try:
        assert held.wait(5)
        started = time.monotonic()
        with pytest.raises(ReplayStoreUnavailable, match="every connection stayed busy for 0.2 s"):
            store.first_use(unique("dpop:"), expires_at=time.time() + 60)
        assert 0.15 < time.monotonic() - started < 0.6
    finally:
        release.set()
        worker.join(timeout=5)


# ---- passwords and ACL users -------------------------------------------------------------------------------------
def test_the_password_authenticates_the_connection(secured):
    store = store_for(secured, password=PASSWORD)
    key = unique("dpop:")
    assert store.first_use(key, expires_at=time.time() + 60) is True
    assert secured.cli("EXISTS", f"authgate:{key}") == "1"


@pytest.mark.parametrize("password", [None, "wrong-password-1234"])
def test_a_wrong_or_missing_password_is_unavailable_and_never_echoed(secured, password):
    store = store_for(secured, password=password)
    with pytest.raises(ReplayStoreUnavailable) as info:
        store.first_use(unique("dpop:"), expires_at=time.time() + 60)
    message = str(info.value)
    assert f"127.0.0.1:{secured.port}" in message and ("WRONGPASS" in message or "NOAUTH" in message), message
    assert PASSWORD not in message and "wrong-password-1234" not in message
    with pytest.raises(DenylistUnavailable) as info:
        store.put("jti|i|1", revoked_at=1.0, expires_at=time.time() + 60)
    assert "wrong-password-1234" not in str(info.value)


def test_an_acl_user_authenticates_with_its_own_password(secured):
    # The user may touch only authgate:* keys: the namespace is what makes such an ACL possible.
    secured.cli("ACL", "SETUSER", "forward-auth", "on", ">user-password-5678", "~authgate:*", "+@all")
    store = store_for(secured, username="forward-auth", password="user-password-5678")
    assert store.first_use(unique("dpop:"), expires_at=time.time() + 60) is True
    outside = store_for(secured, username="forward-auth", password="user-password-5678", namespace="other:")
    with pytest.raises(ReplayStoreUnavailable, match="NOPERM"):
        outside.first_use(unique("dpop:"), expires_at=time.time() + 60)
    wrong = store_for(secured, username="forward-auth", password=PASSWORD)
    with pytest.raises(ReplayStoreUnavailable, match="WRONGPASS") as info:
        wrong.first_use(unique("dpop:"), expires_at=time.time() + 60)
    assert PASSWORD not in str(info.value)


# ---- TLS ---------------------------------------------------------------------------------------------------------
def test_tls_with_the_servers_ca_file(tls_redis):
    store = store_for(tls_redis, ca_file=tls_redis.ca_file)
    key = unique("dpop:")
    before = tls_redis.connections_received()
    assert store.first_use(key, expires_at=time.time() + 60) is True
    assert store.first_use(key, expires_at=time.time() + 60) is False
    store.put("jti|i|tls", revoked_at=7.25, expires_at=time.time() + 60)
    assert store.get_many(["jti|i|tls"]) == {"jti|i|tls": 7.25}
    assert tls_redis.connections_received() - before == 2  # one TLS connection, reused


def test_tls_refuses_a_certificate_the_system_store_does_not_trust(tls_redis):
    with pytest.raises(ReplayStoreUnavailable, match="TLS certificate not accepted"):
        store_for(tls_redis).first_use(unique("dpop:"), expires_at=time.time() + 60)


def test_tls_refuses_a_certificate_for_another_host(tmp_path):
    certificate = tls_certificate(tmp_path, names=("redis.other.test",))
    server = RedisServer(tmp_path, tls=True, certificate=certificate).start()
    try:
        store = store_for(server, ca_file=str(certificate[0]))
        with pytest.raises(ReplayStoreUnavailable, match="TLS certificate not accepted.*mismatch"):
            store.first_use(unique("dpop:"), expires_at=time.time() + 60)
    finally:
        server.stop()


def test_plain_text_to_a_tls_port_is_unavailable_not_a_hang(tls_redis):
    store = RedisStore(RedisEndpoint(f"redis://127.0.0.1:{tls_redis.port}/0"), timeout_seconds=0.3)
    started = time.monotonic()
    with pytest.raises(ReplayStoreUnavailable):
        store.first_use(unique("dpop:"), expires_at=time.time() + 60)
    assert time.monotonic() - started < 1.0


# ---- peers that are not Redis ------------------------------------------------------------------------------------
class FakePeer:
    """A TCP server on 127.0.0.1 that answers every connection's first bytes with `reply` and then keeps the
    connection open, saying nothing more, until stopped."""

    def __init__(self, reply: bytes) -> None:
        self.reply = reply
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self._stop = threading.Event()
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self.listener.accept()
            except socket.timeout:
                continue
            self._held.append(connection)
            connection.settimeout(1)
            try:
                connection.recv(65536)
                if self.reply:
                    connection.sendall(self.reply)
            except OSError:
                pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for connection in self._held:
            connection.close()
        self.listener.close()


@pytest.mark.parametrize("reply, reason", [
    (b"HTTP/1.1 400 Bad Request\r\n\r\n", "unknown type"),
    (b"$99999999\r\n", "bulk reply of 99999999 bytes"),
    (b"+" + b"x" * 10_000, "longer than 4096 bytes"),
    (b"$3\r\nabcXY\r\n", "not terminated by CRLF"),
    (b"*1\r\n*1\r\n:1\r\n", "array reply"),
    (b"*-7\r\n", "array reply of -7"),
    (b":12a\r\n", "not a decimal number"),
    (b"\r\n", "empty reply line"),
    (b":1\r\n", "answered neither OK nor nil"),
    (b"+OK", "timed out"),
    (b"", "timed out"),
])
def test_a_peer_answering_garbage_is_unavailable_not_a_hang(reply, reason):
    peer = FakePeer(reply)
    try:
        store = RedisStore(RedisEndpoint(f"redis://127.0.0.1:{peer.port}/0"), timeout_seconds=0.2)
        started = time.monotonic()
        with pytest.raises(ReplayStoreUnavailable, match=reason):
            store.first_use("dpop:abc", expires_at=time.time() + 60)
        assert time.monotonic() - started < 1.0
    finally:
        peer.stop()


def test_a_peer_that_drips_a_reply_is_cut_off_at_the_deadline():
    # One byte every 50 ms would keep a per-read timeout waiting forever; the call's deadline ends it.
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()

    def drip():
        connection, _ = listener.accept()
        connection.recv(65536)
        try:
            for _ in range(60):  # 3 s at most, so a store without the deadline fails this test instead of hanging
                if stop.is_set():
                    break
                connection.sendall(b"x")
                time.sleep(0.05)
        except OSError:
            pass
        connection.close()

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    try:
        store = RedisStore(RedisEndpoint(f"redis://127.0.0.1:{port}/0"), timeout_seconds=0.3)
        started = time.monotonic()
        with pytest.raises(ReplayStoreUnavailable):
            store.first_use("dpop:abc", expires_at=time.time() + 60)
        assert time.monotonic() - started < 0.6
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def test_a_peer_that_drips_a_tls_handshake_is_cut_off_at_the_deadline(tmp_path):
    # A TLS record header announcing 16 KiB, then its body one byte every 50 ms: each read gets a byte in time.
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()

    def drip():
        connection, _ = listener.accept()
        try:
            connection.recv(65536)
            connection.sendall(b"\x16\x03\x03\x40\x00")
            for _ in range(60):
                if stop.is_set():
                    break
                connection.sendall(b"\x00")
                time.sleep(0.05)
        except OSError:
            pass
        connection.close()

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    try:
        cert, _ = tls_certificate(tmp_path)
        store = RedisStore(RedisEndpoint(f"rediss://127.0.0.1:{port}/0", ca_file=str(cert)), timeout_seconds=0.3)
        started = time.monotonic()
        with pytest.raises(ReplayStoreUnavailable, match="timed out"):
            store.first_use("dpop:abc", expires_at=time.time() + 60)
        assert time.monotonic() - started < 0.6
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


# ---- URLs ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("url", ["redis://10.0.0.5:6379/0", "redis://redis.default.svc.cluster.local/0",
                                 "redis://[2001:db8::1]:6379"])
def test_plain_redis_beyond_loopback_is_refused(url):
    with pytest.raises(ValueError, match="plain text; use rediss://"):
        RedisEndpoint(url)
    assert not RedisEndpoint(url, allow_plaintext=True).tls


@pytest.mark.parametrize("url, address", [("redis://localhost", "localhost:6379"),
                                          ("redis://127.3.2.1:7000/3", "127.3.2.1:7000"),
                                          ("redis://[::1]:6380", "[::1]:6380"),
                                          ("rediss://redis.example.com:6380/1", "redis.example.com:6380")])
def test_loopback_plain_and_any_tls_url_is_accepted(url, address):
    assert RedisEndpoint(url).address == address


@pytest.mark.parametrize("url, problem", [
    ("http://127.0.0.1:6379", "must start with rediss://"),
    ("rediss://:6379/0", "names no host"),
    ("rediss://redis.example.com:99999", "port is not a number"),
    ("rediss://redis.example.com/zero", "database number"),
    ("rediss://redis.example.com/0?ssl_cert_reqs=none", r"takes no \?options"),
    ("", "is empty"),
])
def test_an_unclear_url_is_refused_saying_what_is_wrong(url, problem):
    with pytest.raises(ValueError, match=problem):
        RedisEndpoint(url)


def test_a_password_in_the_url_and_beside_it_is_refused_without_echoing_either():
    with pytest.raises(ValueError, match="given both in the URL and separately") as info:
        RedisEndpoint("rediss://:inline-secret@redis.example.com/0", password="env-secret")
    assert "inline-secret" not in str(info.value) and "env-secret" not in str(info.value)
    endpoint = RedisEndpoint("rediss://app:in%40line@redis.example.com/0")
    assert (endpoint.username, endpoint.password, endpoint.address) == ("app", "in@line", "redis.example.com:6379")
    with pytest.raises(ValueError, match="user name is given without a password"):
        RedisEndpoint("rediss://redis.example.com/0", username="app")


@pytest.mark.parametrize("secret", [{"password": "pass-word-1234\n"}, {"password": "x", "username": "app\r\n"}])
def test_a_secret_with_a_line_break_is_refused_without_echoing_it(secret):
    with pytest.raises(ValueError, match="contains a line break") as info:
        RedisEndpoint("rediss://redis.example.com/0", **secret)
    assert "pass-word-1234" not in str(info.value)


def test_an_unreadable_or_unused_ca_file_is_refused(tmp_path):
    (tmp_path / "ca.pem").write_text("not a certificate")
    with pytest.raises(ValueError, match="CA file .* cannot be read"):
        RedisEndpoint("rediss://redis.example.com/0", ca_file=str(tmp_path / "ca.pem"))
    cert, _ = tls_certificate(tmp_path)
    with pytest.raises(ValueError, match="CA file is given for a redis:// URL, which does not use TLS"):
        RedisEndpoint("redis://127.0.0.1:6379/0", ca_file=str(cert))


# ---- request_checks_from_env: two replicas, one Redis ------------------------------------------------------------
CLIENT_KEY = SigningKey.generate("ES256")
URI = "https://api.example.com/orders"
CONFIG = IssuerConfig(ISSUER, [AUDIENCE], jwks=ISSUER_KEY.jwks(), name="corp", binding=BindingConfig(dpop=True),
                      revocation=RevocationConfig(cache_seconds=0))
VERIFIER = Verifier([CONFIG])


def replica_env(server: RedisServer, **extra: str) -> dict:
    return {"AUTHGATE_REDIS_URL": server.url, "AUTHGATE_REDIS_PASSWORD": PASSWORD, **extra}


def test_two_replicas_share_dpop_replay_records_and_the_denylist(secured):
    first = request_checks_from_env(replica_env(secured), needs_shared_store=True)
    second = request_checks_from_env(replica_env(secured), needs_shared_store=True)
    assert isinstance(first.replay, RedisStore) and first.denylist.store is first.replay
    raw = mint(ISSUER_KEY, cnf={"jkt": thumbprint(CLIENT_KEY)}, sid=unique("session-"))
    principal = VERIFIER.authenticate(raw)
    facts = RequestFacts(scheme="dpop", method="GET", uri=URI, dpop_proof=make_proof(CLIENT_KEY, "GET", URI, raw))
    check = dict(proof="dpop", freshness="denylist", issuer=CONFIG, principal=principal, token=raw)
    first.check(facts=facts, **check)
    with pytest.raises(TokenRejected, match="already used") as info:
        second.check(facts=facts, **check)
    assert info.value.code == "invalid_dpop_proof"

    fresh = lambda: RequestFacts(scheme="dpop", method="GET", uri=URI,  # noqa: E731
                                 dpop_proof=make_proof(CLIENT_KEY, "GET", URI, raw))
    second.check(facts=fresh(), **check)
    first.denylist.revoke(principal.issuer, "sid", principal.claims["sid"], lifetime_seconds=600)
    with pytest.raises(TokenRejected) as info:
        second.check(facts=fresh(), **check)
    assert info.value.code == "revoked"


def test_a_store_that_cannot_be_reached_refuses_the_request():
    checks = request_checks_from_env({"AUTHGATE_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"},
                                     needs_shared_store=True)
    raw = mint(ISSUER_KEY, cnf={"jkt": thumbprint(CLIENT_KEY)})
    principal = VERIFIER.authenticate(raw)
    facts = RequestFacts(scheme="dpop", method="GET", uri=URI, dpop_proof=make_proof(CLIENT_KEY, "GET", URI, raw))
    with pytest.raises(TokenRejected) as info:
        checks.check(proof="dpop", freshness="none", issuer=CONFIG, principal=principal, token=raw, facts=facts)
    assert info.value.code == "replay_store_unavailable"
    with pytest.raises(TokenRejected) as info:
        checks.check_freshness("denylist", CONFIG, principal, raw)
    assert info.value.code == "denylist_unavailable"


def test_the_environment_names_every_setting(secured, tmp_path):
    store = request_checks_from_env(replica_env(secured, AUTHGATE_REDIS_NAMESPACE="stage-a:",
                                                AWS_LAMBDA_FUNCTION_NAME="authorizer"),
                                    needs_shared_store=True).replay
    key = unique("dpop:")
    assert store.first_use(key, expires_at=time.time() + 60) is True
    assert secured.cli("EXISTS", f"stage-a:{key}") == "1"
    acl = request_checks_from_env({"AUTHGATE_REDIS_URL": "rediss://redis.example.com/0",
                                   "AUTHGATE_REDIS_USERNAME": "forward-auth", "AUTHGATE_REDIS_PASSWORD": "p-1234"},
                                  needs_shared_store=True).replay
    assert (acl.endpoint.username, acl.endpoint.password, acl.endpoint.tls) == ("forward-auth", "p-1234", True)
    cert, _ = tls_certificate(tmp_path)
    tls = request_checks_from_env({"AUTHGATE_REDIS_URL": "rediss://redis.example.com/0",
                                   "AUTHGATE_REDIS_CA_FILE": str(cert)}, needs_shared_store=False).replay
    assert tls.endpoint.ca_file == str(cert)


def test_the_password_can_come_from_secrets_manager_as_every_runtime_secret(secured):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:authgate-redis-AbCdEf"

    class Extension(BaseHTTPRequestHandler):  # the Parameters and Secrets extension's loopback answer
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            known = (self.headers.get("X-Aws-Parameters-Secrets-Token") == "session-token"
                     and parse_qs(urlsplit(self.path).query).get("secretId") == [arn])
            body = json.dumps({"ARN": arn, "SecretString": PASSWORD}).encode() if known else b"not found"
            self.send_response(200 if known else 400)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    extension = ThreadingHTTPServer(("127.0.0.1", 0), Extension)
    threading.Thread(target=extension.serve_forever, daemon=True).start()
    try:
        store = request_checks_from_env({"AUTHGATE_REDIS_URL": secured.url, "AUTHGATE_REDIS_PASSWORD_ARN": arn,
                                         "AWS_SESSION_TOKEN": "session-token",
                                         "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": str(extension.server_address[1])},
                                        needs_shared_store=True).replay
        assert store.first_use(unique("dpop:"), expires_at=time.time() + 60) is True
    finally:
        extension.shutdown()
        extension.server_close()


def test_plain_text_in_the_cluster_needs_the_opt_in():
    env = {"AUTHGATE_REDIS_URL": "redis://redis.authgate.svc.cluster.local:6379/0"}
    with pytest.raises(ValueError, match="redis:// to redis.authgate.svc.cluster.local would "
                                         "send .* with AUTHGATE_REDIS_ALLOW_PLAINTEXT=true"):
        request_checks_from_env(env, needs_shared_store=True)
    checks = request_checks_from_env({**env, "AUTHGATE_REDIS_ALLOW_PLAINTEXT": "true"}, needs_shared_store=True)
    assert checks.replay.endpoint.tls is False
    with pytest.raises(ValueError, match="AUTHGATE_REDIS_ALLOW_PLAINTEXT must be true or false"):
        request_checks_from_env({**env, "AUTHGATE_REDIS_ALLOW_PLAINTEXT": "yes"}, needs_shared_store=True)
    with pytest.raises(ValueError, match="AUTHGATE_REDIS_NAMESPACE: the Redis key namespace must be"):
        request_checks_from_env({**env, "AUTHGATE_REDIS_ALLOW_PLAINTEXT": "true",
                                 "AUTHGATE_REDIS_NAMESPACE": "two words:"}, needs_shared_store=True)


def test_the_table_and_redis_together_are_refused():
    with pytest.raises(ValueError, match="both AUTHGATE_DENYLIST_TABLE and AUTHGATE_REDIS_URL are set; pick one"):
        request_checks_from_env({"AUTHGATE_REDIS_URL": "rediss://redis.example.com/0",
                                 "AUTHGATE_DENYLIST_TABLE": "authgate-revocations"}, needs_shared_store=True)


def test_back_channel_logout_records_through_redis_for_every_replica(secured, tmp_path):
    document = table_document(ISSUER_KEY, [route("GET /orders", freshness="denylist")])
    document["issuers"]["corp"]["revocation"] = {"cache_seconds": 0, "logout_audiences": ["orders-web"]}
    path = tmp_path / "routes.json"
    path.write_text(json.dumps(document))
    # Where the table is not set, Lambda refuses to start with in-memory stores; with Redis it starts.
    env = replica_env(secured, AUTHGATE_POLICY=str(path), AWS_LAMBDA_FUNCTION_NAME="logout")
    endpoint, other_endpoint = BackchannelLogout.from_env(env), BackchannelLogout.from_env(env)
    replica = request_checks_from_env(replica_env(secured), needs_shared_store=True)
    table = RouteTable.load(document)
    verifier = table.verifier()
    sid = unique("session-")
    access = mint(ISSUER_KEY, sid=sid, subject="alice", now=time.time() - 10)
    decide = lambda: decide_request(table.api("orders"), verifier, "GET", "/orders", f"Bearer {access}",  # noqa: E731
                                    checks=replica)
    assert decide().outcome is Outcome.ALLOW
    logout = mint(ISSUER_KEY, {"iss": ISSUER, "aud": "orders-web", "iat": int(time.time()), "jti": uuid.uuid4().hex,
                               "sid": sid, "events": {BACKCHANNEL_LOGOUT_EVENT: {}}}, typ="logout+jwt")
    body = f"logout_token={logout}".encode()
    assert endpoint.handle("POST", "application/x-www-form-urlencoded", body).status == 200
    assert decide().outcome is Outcome.UNAUTHORIZED
    # The same logout token at another instance of the endpoint is a replay.
    assert other_endpoint.handle("POST", "application/x-www-form-urlencoded", body).status == 400


def test_the_token_handlers_logout_writes_to_the_same_redis(secured, monkeypatch):
    from lambdas.token_handler.core import _denylist_from_env

    monkeypatch.delenv("AUTHGATE_DENYLIST_TABLE", raising=False)
    monkeypatch.delenv("AUTHGATE_REDIS_URL", raising=False)
    assert _denylist_from_env() is None
    for name, value in replica_env(secured).items():
        monkeypatch.setenv(name, value)
    denylist = _denylist_from_env()
    assert isinstance(denylist.store, RedisStore)
    sid = unique("session-")
    denylist.revoke(ISSUER, "sid", sid, lifetime_seconds=600)
    replica = request_checks_from_env(replica_env(secured), needs_shared_store=True)
    with pytest.raises(TokenRejected) as info:
        replica.denylist.check(ISSUER, {"sub": "alice", "sid": sid, "iat": time.time() - 5}, cache_seconds=0)
    assert info.value.code == "revoked"
