"""The Redis store in-cluster forward-auth replicas share: the denylist's entries and the DPoP/logout replay records,
where there is no DynamoDB (AKS, any Kubernetes cluster). The same two roles as dynamodb_store.py, over RESP2.

Standard library only (socket, ssl), like all of lambdas/ apart from cryptography (pyproject's import-linter
contract): the forward-auth image runs the same runtime code as the authorizers, with no Redis client package.
Keys are the callers' (denylist.entry_key, the DPoP and logout-token replay keys) under a namespace, default
"authgate:", so a shared Redis can hold other data:

  authgate:jti|<iss>|<jti>   "<revoked_at>" (decimal epoch seconds), expiring when the entry does
  authgate:dpop:<hash>       "1", expiring when the proof could no longer be accepted anyway

Calls are bounded: waiting for a free connection, dialling one (TCP, TLS, AUTH, SELECT) and reading the reply each
take at most `timeout_seconds` (default 0.5 s like DynamoDB's; name resolution is the resolver's own); one attempt;
a broken connection is dropped and the next call dials again. Every failure is raised as DenylistUnavailable or
ReplayStoreUnavailable naming the operation and the host, never the password, so the caller fails closed.
"""
from __future__ import annotations

import ipaddress
import math
import select
import socket
import ssl
import threading
import time
from typing import Callable, Iterable, Mapping
from urllib.parse import unquote, urlsplit

from .denylist import DenylistUnavailable
from .replay import ReplayStoreUnavailable

DEFAULT_NAMESPACE = "authgate:"
DEFAULT_PORT = 6379
# Callers' keys hold an issuer URL and a jti/sid/sub (bounded by the token size limits) or a hash: far below this.
MAX_KEY_BYTES = 1024
# get_many is asked for a token's jti, origin_jti, sid and sub; a thousand is a caller's mistake, not a token.
MAX_KEYS_PER_READ = 1000
# The replies this store reads are "OK", a nil, a small integer, or an array of a few decimal numbers. A reply
# larger than these limits is not one of them, and reading it would only let a wrong peer make us buffer it.
MAX_LINE_BYTES = 4096
MAX_BULK_BYTES = 4096
MAX_ARRAY_LENGTH = MAX_KEYS_PER_READ

# A later revocation of a key wins and an earlier one arriving late changes nothing; the entry lives as long as the
# longest expiry either write asked for (an entry refusing tokens longer is never less safe). A script, not
# WATCH/MULTI: it runs atomically on the server in one round trip, while WATCH/MULTI takes three and must be retried
# when another replica writes the key in between, and a call here makes one attempt. The expiry is relative (PX,
# from this process's clock), so a Redis whose clock differs from ours still keeps each record as long as asked.
_PUT_SCRIPT = b"""
local known = redis.call('GET', KEYS[1])
local ttl = tonumber(ARGV[2])
if known then
  local known_at = tonumber(known)
  if known_at == nil then
    return redis.error_reply('AUTHGATE the key holds something other than a revocation time')
  end
  local left = redis.call('PTTL', KEYS[1])
  if left > ttl then ttl = left end
  if known_at >= tonumber(ARGV[1]) then
    redis.call('PEXPIRE', KEYS[1], ttl)
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
return 1
"""


class RedisProtocolError(Exception):
    """The peer's reply is not RESP2 this store can read (malformed, of an unexpected type, or too large)."""


class RedisErrorReply(Exception):
    """Redis answered with an error reply (-ERR ..., -WRONGPASS ..., -NOAUTH ...)."""


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RedisEndpoint:
    """Where the store connects and how, from a redis:// or rediss:// URL; refuses what would be unsafe or unclear.

    `rediss://host:port/db` is TLS with the server certificate and host name verified (against the system CA store,
    or only `ca_file` when given). `redis://` (plain text: the password and every key readable on the wire) is
    accepted only for a loopback host or with `allow_plaintext` (a network that encrypts already, e.g. a mesh)."""

    def __init__(self, url: str, *, password: str | None = None, username: str | None = None,
                 ca_file: str | None = None, allow_plaintext: bool = False,
                 plaintext_opt_in: str = "allow_plaintext=True") -> None:
        if not isinstance(url, str) or not url.strip():
            raise ValueError("the Redis URL is empty; give rediss://host:port/db")
        parts = urlsplit(url.strip())
        if parts.scheme not in ("redis", "rediss"):
            raise ValueError(f"the Redis URL must start with rediss:// (TLS) or redis://, not "
                             f"{parts.scheme or '(none)'}://")
        if parts.query or parts.fragment:
            raise ValueError("the Redis URL takes no ?options or #fragment; give rediss://host:port/db and configure "
                             "TLS and the password through their own settings")
        try:
            host, port = parts.hostname, parts.port
        except ValueError:
            raise ValueError("the Redis URL's port is not a number from 1 to 65535") from None
        if not host:
            raise ValueError("the Redis URL names no host; give rediss://host:port/db")
        path = parts.path.strip("/")
        if path and not (path.isdigit() and path.isascii() and int(path) < 1 << 16):
            raise ValueError("the Redis URL's path is the database number (/0, /1, ...), nothing else")
        if parts.password is not None and password is not None:
            raise ValueError("the Redis password is given both in the URL and separately; give it once (separately, "
                             "so the URL holds no secret)")
        if parts.username and username is not None:
            raise ValueError("the Redis user name is given both in the URL and separately; give it once")
        self.tls = parts.scheme == "rediss"
        self.host = host
        self.port = port or DEFAULT_PORT
        self.database = int(path) if path else 0
        self.password = password if password is not None else (
            unquote(parts.password) if parts.password is not None else None)
        self.username = username if username is not None else (unquote(parts.username) if parts.username else None)
        if self.username and not self.password:
            raise ValueError("a Redis user name is given without a password; ACL AUTH needs both")
        for what, value in (("password", self.password), ("user name", self.username)):
            if value and ("\n" in value or "\r" in value):
                # Most often a Secret written with `echo`: AUTH would fail on every call, refused as WRONGPASS.
                raise ValueError(f"the Redis {what} contains a line break (a Secret written with echo ends with "
                                 f"one); store it without")
        if not self.tls and not allow_plaintext and not _is_loopback(self.host):
            raise ValueError(f"redis:// to {self.host} would send the password and every key in plain text; use "
                             f"rediss:// (TLS), or, when the network already encrypts (a service mesh), accept plain "
                             f"text explicitly with {plaintext_opt_in}")
        if ca_file and not self.tls:
            raise ValueError("a CA file is given for a redis:// URL, which does not use TLS; use rediss:// so the "
                             "server's certificate is checked against it")
        self.ca_file = ca_file
        self._tls_context = self._make_tls_context() if self.tls else None

    @property
    def address(self) -> str:
        """host:port for messages (never the user name or password)."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def _make_tls_context(self) -> ssl.SSLContext:
        try:
            context = ssl.create_default_context(cafile=self.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"the Redis CA file {self.ca_file} cannot be read as PEM certificates "
                             f"({type(exc).__name__})") from None
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context

    def open(self, deadline: float) -> "_Connection":
        sock = socket.create_connection((self.host, self.port), timeout=_remaining(deadline))
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls_context is not None:
                # CPython bounds the whole handshake by the socket's timeout (one deadline, not one per read).
                sock.settimeout(_remaining(deadline))
                sock = self._tls_context.wrap_socket(sock, server_hostname=self.host)
            connection = _Connection(sock)
            setup: list[tuple[bytes, ...]] = []
            if self.password is not None:
                setup.append((b"AUTH", self.username.encode(), self.password.encode()) if self.username
                             else (b"AUTH", self.password.encode()))
            if self.database:
                setup.append((b"SELECT", str(self.database).encode()))
            for reply in connection.execute(setup, deadline) if setup else ():
                if isinstance(reply, RedisErrorReply):
                    raise reply
        except BaseException:
            sock.close()
            raise
        return connection


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise socket.timeout("timed out")
    return left


def _command(*args: bytes) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(out)


class _Connection:
    """One socket and what it has read but not yet parsed. Used by one thread at a time (the pool's)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = bytearray()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def is_stale(self) -> bool:
        """True when an idle connection has something to read: the server closed it (EOF) or sent what no
        command asked for. Either way it cannot carry the next command's reply."""
        if self._buffer or (isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()):
            return True
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def execute(self, commands: list[tuple[bytes, ...]], deadline: float) -> list:
        """Send the commands in one write (pipelined) and read one reply each; an error reply is returned as a
        RedisErrorReply in its place, so the caller says which command failed."""
        payload = b"".join(_command(*args) for args in commands)
        self.sock.settimeout(_remaining(deadline))
        self.sock.sendall(payload)
        return [self._reply(deadline, depth=0) for _ in commands]

    # ---- RESP2 -----------------------------------------------------------------------------------------------
    def _fill(self, deadline: float) -> None:
        self.sock.settimeout(_remaining(deadline))
        chunk = self.sock.recv(65536)
        if not chunk:
            raise RedisProtocolError("the server closed the connection mid-reply")
        self._buffer += chunk

    def _line(self, deadline: float) -> bytes:
        start = 0
        while True:
            end = self._buffer.find(b"\r\n", start)
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[:end + 2]
                return line
            if len(self._buffer) > MAX_LINE_BYTES:
                raise RedisProtocolError(f"a reply line is longer than {MAX_LINE_BYTES} bytes")
            start = max(len(self._buffer) - 1, 0)
            self._fill(deadline)

    def _exact(self, size: int, deadline: float) -> bytes:
        while len(self._buffer) < size + 2:
            self._fill(deadline)
        if self._buffer[size:size + 2] != b"\r\n":
            raise RedisProtocolError("a bulk reply is not terminated by CRLF")
        data = bytes(self._buffer[:size])
        del self._buffer[:size + 2]
        return data

    def _reply(self, deadline: float, *, depth: int) -> object:
        line = self._line(deadline)
        if not line:
            raise RedisProtocolError("an empty reply line")
        kind, body = line[:1], line[1:]
        if kind == b"+":
            return body.decode("utf-8", "replace")
        if kind == b"-":
            return RedisErrorReply(body.decode("utf-8", "replace")[:200])
        if kind == b":":
            return _integer(body)
        if kind == b"$":
            size = _integer(body)
            if size == -1:
                return None
            if not 0 <= size <= MAX_BULK_BYTES:
                raise RedisProtocolError(f"a bulk reply of {size} bytes (at most {MAX_BULK_BYTES} are expected)")
            return self._exact(size, deadline)
        if kind == b"*":
            count = _integer(body)
            if count == -1:
                return None
            if depth >= 1 or not 0 <= count <= MAX_ARRAY_LENGTH:
                raise RedisProtocolError(f"an array reply of {count} elements at depth {depth} is not expected")
            return [self._reply(deadline, depth=depth + 1) for _ in range(count)]
        raise RedisProtocolError(f"a reply of unknown type {kind!r} (not RESP2)")


def _integer(body: bytes) -> int:
    digits = body[1:] if body[:1] == b"-" else body
    if not digits or len(digits) > 19 or not digits.isdigit():
        raise RedisProtocolError("a reply's length or integer is not a decimal number")
    return int(body)


class RedisStore:
    """One Redis, two roles: a DenylistStore (put / get_many) and a ReplayStore (first_use).

    Thread-safe: the forward-auth service checks requests in worker threads, and each call takes one of at most
    `pool_size` connections (idle ones are reused; a call that finds all busy waits at most `timeout_seconds`)."""

    def __init__(self, endpoint: RedisEndpoint, *, namespace: str = DEFAULT_NAMESPACE, timeout_seconds: float = 0.5,
                 pool_size: int = 8, clock: Callable[[], float] = time.time) -> None:
        if not isinstance(namespace, str) or not namespace.isprintable() or not 0 < len(namespace) <= 64 \
                or " " in namespace:
            raise ValueError("the Redis key namespace must be 1 to 64 printable characters without spaces, "
                             "e.g. authgate: or authgate:prod:")
        if not (isinstance(timeout_seconds, (int, float)) and 0 < timeout_seconds <= 10):
            raise ValueError("the Redis timeout must be more than 0 and at most 10 seconds")
        if not (isinstance(pool_size, int) and pool_size >= 1):
            raise ValueError("the Redis connection pool needs at least one connection")
        self.endpoint = endpoint
        self.namespace = namespace
        self.timeout_seconds = float(timeout_seconds)
        self._clock = clock
        self._slots = threading.BoundedSemaphore(pool_size)
        self._idle: list[_Connection] = []
        self._idle_lock = threading.Lock()

    @classmethod
    def from_env(cls, environ: Mapping[str, str], *, clock: Callable[[], float] = time.time) -> "RedisStore":
        """The store AUTHGATE_REDIS_URL and its companion variables describe (possession.py names them all)."""
        from .possession import (ENV_REDIS_ALLOW_PLAINTEXT, ENV_REDIS_CA_FILE, ENV_REDIS_NAMESPACE,
                                 ENV_REDIS_PASSWORD, ENV_REDIS_URL, ENV_REDIS_USERNAME)
        from .secrets import secret_value

        plaintext = environ.get(ENV_REDIS_ALLOW_PLAINTEXT, "").strip().lower()
        if plaintext not in ("", "true", "false"):
            raise ValueError(f"{ENV_REDIS_ALLOW_PLAINTEXT} must be true or false")
        # The password as every runtime secret is read: the variable, else the Secrets Manager secret in _ARN.
        # RedisEndpoint's messages name "the Redis URL", "the Redis password", ...: each is one of these variables.
        endpoint = RedisEndpoint(environ.get(ENV_REDIS_URL, ""), password=secret_value(environ, ENV_REDIS_PASSWORD),
                                 username=environ.get(ENV_REDIS_USERNAME) or None,
                                 ca_file=environ.get(ENV_REDIS_CA_FILE) or None, allow_plaintext=plaintext == "true",
                                 plaintext_opt_in=f"{ENV_REDIS_ALLOW_PLAINTEXT}=true")
        try:
            return cls(endpoint, namespace=environ.get(ENV_REDIS_NAMESPACE) or DEFAULT_NAMESPACE, clock=clock)
        except ValueError as exc:
            raise ValueError(f"{ENV_REDIS_NAMESPACE}: {exc}") from None

    def close(self) -> None:
        """Close the idle connections (a busy one is closed by its call's end: it is not returned to the pool)."""
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    # ---- DenylistStore ---------------------------------------------------------------------------------------
    def put(self, key: str, *, revoked_at: float, expires_at: float) -> None:
        if not math.isfinite(revoked_at) or not math.isfinite(expires_at):
            raise DenylistUnavailable("a denylist entry's revocation and expiry times must be finite numbers")
        name = self._name(key, DenylistUnavailable)
        ttl_ms = math.ceil((expires_at - self._clock()) * 1000)
        if ttl_ms <= 0:
            return  # already expired: it would refuse nothing, and must not replace a live entry
        reply = self._call("EVAL", DenylistUnavailable,
                           (b"EVAL", _PUT_SCRIPT, b"1", name, repr(float(revoked_at)).encode(), str(ttl_ms).encode()))
        if reply not in (0, 1):
            raise DenylistUnavailable(f"Redis EVAL on {self.endpoint.address} answered {type(reply).__name__}, "
                                      f"not 0 or 1")

    def get_many(self, keys: Iterable[str]) -> dict[str, float]:
        keys = list(dict.fromkeys(keys))
        if not keys:
            return {}
        if len(keys) > MAX_KEYS_PER_READ:
            raise DenylistUnavailable(f"{len(keys)} denylist keys in one read; at most {MAX_KEYS_PER_READ}")
        names = [self._name(key, DenylistUnavailable) for key in keys]
        # Redis never returns an expired key (it checks the expiry on access), so a value read is a live entry.
        values = self._call("MGET", DenylistUnavailable, (b"MGET", *names))
        if not isinstance(values, list) or len(values) != len(keys):
            raise DenylistUnavailable(f"Redis MGET on {self.endpoint.address} did not answer one value per key")
        found: dict[str, float] = {}
        for key, value in zip(keys, values):
            if value is None:
                continue
            try:
                revoked_at = float(value.decode("ascii")) if isinstance(value, bytes) else math.nan
            except (UnicodeDecodeError, ValueError):
                revoked_at = math.nan
            if not math.isfinite(revoked_at):
                raise DenylistUnavailable(f"a denylist entry in Redis at {self.endpoint.address} is not a "
                                          f"revocation time (another application's key in the namespace "
                                          f"{self.namespace!r}?)")
            found[key] = revoked_at
        return found

    # ---- ReplayStore -----------------------------------------------------------------------------------------
    def first_use(self, key: str, *, expires_at: float) -> bool:
        if not math.isfinite(expires_at):
            raise ReplayStoreUnavailable("a replay record's expiry must be a finite number")
        # Relative (PX): kept as long as asked whatever the Redis server's clock says. At least 1 ms, so a record
        # that is already due still answers whether the key is held now.
        ttl_ms = max(math.ceil((expires_at - self._clock()) * 1000), 1)
        reply = self._call("SET", ReplayStoreUnavailable,
                           (b"SET", self._name(key, ReplayStoreUnavailable), b"1", b"NX", b"PX", str(ttl_ms).encode()))
        if reply == "OK":
            return True
        if reply is None:
            return False
        raise ReplayStoreUnavailable(f"Redis SET NX on {self.endpoint.address} answered neither OK nor nil")

    # ---- the one way a call reaches Redis --------------------------------------------------------------------
    def _name(self, key: str, unavailable: type[Exception]) -> bytes:
        if not isinstance(key, str):
            raise unavailable("a Redis store key must be a string")
        raw = key.encode("utf-8", "surrogatepass")
        if len(raw) > MAX_KEY_BYTES:
            raise unavailable(f"a key of {len(raw)} bytes; the Redis store refuses keys over {MAX_KEY_BYTES} bytes")
        return self.namespace.encode("utf-8") + raw

    def _call(self, operation: str, unavailable: type[Exception], command: tuple[bytes, ...]) -> object:
        where = f"Redis {operation} on {self.endpoint.address}"
        if not self._slots.acquire(timeout=self.timeout_seconds):
            raise unavailable(f"{where}: every connection stayed busy for {self.timeout_seconds} s")
        connection: _Connection | None = None
        try:
            connection = self._idle_connection()
            if connection is None:
                connection = self.endpoint.open(time.monotonic() + self.timeout_seconds)
            (reply,) = connection.execute([command], time.monotonic() + self.timeout_seconds)
        except RedisErrorReply as exc:  # from the connection's AUTH or SELECT
            self._discard(connection)
            raise unavailable(f"{where} failed: the server refused the connection setup: "
                              f"{self._redacted(exc)}") from None
        except ssl.SSLCertVerificationError as exc:
            self._discard(connection)
            raise unavailable(f"{where} failed: TLS certificate not accepted ({exc.verify_message})") from None
        except (OSError, RedisProtocolError) as exc:
            self._discard(connection)
            reason = "timed out" if isinstance(exc, socket.timeout) else f"{type(exc).__name__}: {self._redacted(exc)}"
            raise unavailable(f"{where} failed: {reason}") from None
        except BaseException:
            self._discard(connection)
            raise
        else:
            with self._idle_lock:
                self._idle.append(connection)
        finally:
            self._slots.release()
        if isinstance(reply, RedisErrorReply):
            raise unavailable(f"{where} failed: {self._redacted(reply)}")
        return reply

    def _idle_connection(self) -> _Connection | None:
        while True:
            with self._idle_lock:
                connection = self._idle.pop() if self._idle else None
            if connection is None or not connection.is_stale():
                return connection
            connection.close()

    @staticmethod
    def _discard(connection: _Connection | None) -> None:
        if connection is not None:
            connection.close()

    def _redacted(self, exc: BaseException) -> str:
        text = str(exc)
        password = self.endpoint.password
        return text.replace(password, "[password]") if password else text


__all__ = ["DEFAULT_NAMESPACE", "MAX_KEY_BYTES", "RedisEndpoint", "RedisStore"]
