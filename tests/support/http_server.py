"""A real HTTP(S) server on 127.0.0.1 for tests: scripted replies per path, request counts, delays, failures, TLS.

Tests that exercise key fetching, discovery, the ALB public-key endpoint or any other HTTP dependency start one of
these instead of mocking sockets, so the code under test goes through a real TCP connection (and, with ``tls=True``, a
real TLS handshake against a self-signed certificate).

Starting and stopping
---------------------
As a context manager::

    with LocalHttpServer() as server:
        server.serve_json("/jwks.json", {"keys": [...]}, headers={"Cache-Control": "max-age=300"})
        fetch(server.url("/jwks.json"))
        assert server.count("/jwks.json") == 1

or as pytest fixtures (import them into the test module; pytest finds fixtures imported by name)::

    from tests.support.http_server import http_server, https_server  # noqa: F401  (fixtures)

    def test_something(http_server):
        http_server.serve("/health", "ok")

The server binds 127.0.0.1 on an ephemeral port (port 0) and is always stopped by the fixture or the ``with`` block.
``stop()`` interrupts any reply that is sleeping (delays, holds), so a test never waits on a deliberately slow path.

Scripting replies
-----------------
- ``serve(path, body, status=, headers=, delay=, chunk_size=, chunk_delay=, declare_length=)`` sets the standing
  reply for a path (any method). ``body`` may be bytes, str, or a dict/list (sent as JSON with
  ``Content-Type: application/json``). Calling it again switches the content at runtime (key rotation, say).
- ``serve_json(path, obj, ...)`` is ``serve`` for JSON documents.
- ``enqueue(path, *replies)`` queues one-shot :class:`Reply` objects that are served, in order, before the standing
  reply (e.g. "fail twice, then succeed").
- ``handle(path, func)`` computes each reply with ``func(request: RecordedRequest) -> Reply``.
- ``fail(path, status=503)`` and ``drop(path)`` (close the connection without answering) are shorthands; so is
  ``remove(path)``, after which the path answers 404.
- ``delay`` sleeps before the status line (a slow server); ``chunk_size``/``chunk_delay`` trickle the body (a server
  that never quite finishes); ``declare_length=False`` omits Content-Length (the client reads to end of stream) and an
  int declares a false length.
- ``hold(path)`` parks every request to that path until ``release(path)``: the way to prove that concurrent clients
  share one in-flight request. ``wait_for_requests(path, n)`` blocks until n requests have arrived.

Observing
---------
``count(path)`` counts requests to a path (query string ignored); ``requests(path=None)`` returns the recorded
:class:`RecordedRequest` objects (method, path, query, headers, body); ``reset_counts()`` forgets them.

TLS
---
``LocalHttpServer(tls=True)`` serves https with a self-signed certificate for ``localhost``, ``127.0.0.1`` and
``::1`` (generated once per test process). ``client_ssl_context()`` returns an ``ssl.SSLContext`` that trusts exactly
that certificate; ``ca_pem`` is the certificate in PEM for clients that take a file.
"""
from __future__ import annotations

import datetime
import functools
import ipaddress
import json
import socket
import ssl
import tempfile
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

import pytest

__all__ = ["Reply", "RecordedRequest", "LocalHttpServer", "http_server", "https_server"]


@dataclass
class Reply:
    """One scripted HTTP reply. See the module docstring for what each field does."""

    body: bytes | str | dict | list | None = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    chunk_size: int = 0
    chunk_delay: float = 0.0
    declare_length: bool | int = True
    drop: bool = False

    def body_bytes(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body).encode("utf-8")

    def header_items(self) -> list[tuple[str, str]]:
        names = {name.lower() for name in self.headers}
        items = list(self.headers.items())
        if "content-type" not in names:
            is_json = isinstance(self.body, (dict, list))
            items.append(("Content-Type", "application/json" if is_json else "text/plain; charset=utf-8"))
        return items


@dataclass(frozen=True)
class RecordedRequest:
    """A request the server received."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    received_at: float


Handler = Callable[[RecordedRequest], Reply]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], owner: "LocalHttpServer", family: int) -> None:
        self.address_family = family
        self.owner = owner
        super().__init__(address, _RequestHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients in these tests hang up on purpose (timeouts, body caps); that is not a server error worth printing.
        pass


class _RequestHandler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        if isinstance(self.request, ssl.SSLSocket):
            # The handshake happens here, on the handler's thread, so a client that never completes it cannot
            # stall the accept loop.
            self.request.settimeout(10)
            self.request.do_handshake()
            self.request.settimeout(None)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = RecordedRequest(method=self.command, path=parts.path, query=parts.query,
                                  headers={k: v for k, v in self.headers.items()}, body=body,
                                  received_at=time.monotonic())
        owner = self.server.owner
        reply = owner._reply_for(request)
        self.close_connection = True
        try:
            owner._write_reply(self, reply)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            pass

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _dispatch


@functools.lru_cache(maxsize=1)
def _self_signed_certificate() -> tuple[bytes, bytes]:
    """(certificate PEM, private key PEM) for localhost/127.0.0.1/::1, made once per process (EC keys are quick)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert_pem, key_pem


class LocalHttpServer:
    """A scriptable HTTP(S) server bound to a loopback address on an ephemeral port. See the module docstring."""

    def __init__(self, *, tls: bool = False, host: str = "127.0.0.1") -> None:
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError(f"LocalHttpServer binds loopback only; got host {host!r} (use 127.0.0.1 or ::1)")
        self.tls = tls
        self.host = "127.0.0.1" if host == "localhost" else host
        self._lock = threading.Lock()
        self._standing: dict[str, Reply | Handler] = {}
        self._queued: dict[str, deque[Reply]] = defaultdict(deque)
        self._holds: dict[str, threading.Event] = {}
        self._requests: list[RecordedRequest] = []
        self._arrived = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ----- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> "LocalHttpServer":
        if self._server is not None:
            raise RuntimeError("LocalHttpServer is already running")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        server = _Server((self.host, 0), self, family)
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            cert_pem, key_pem = _self_signed_certificate()
            with tempfile.NamedTemporaryFile("wb", suffix=".pem") as cert_file, \
                    tempfile.NamedTemporaryFile("wb", suffix=".pem") as key_file:
                cert_file.write(cert_pem)
                cert_file.flush()
                key_file.write(key_pem)
                key_file.flush()
                ctx.load_cert_chain(cert_file.name, key_file.name)
            server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        self._stopping.clear()
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"LocalHttpServer:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        with self._lock:
            for gate in self._holds.values():
                gate.set()
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> "LocalHttpServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----- addresses -------------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("LocalHttpServer is not running: call start() or use it as a context manager")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    def url(self, path: str = "/") -> str:
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/': {path!r}")
        return self.base_url + path

    # ----- scripting -------------------------------------------------------------------------------------------
    def serve(self, path: str, body: bytes | str | dict | list | None = b"", *, status: int = 200,
              headers: dict[str, str] | None = None, delay: float = 0.0, chunk_size: int = 0,
              chunk_delay: float = 0.0, declare_length: bool | int = True) -> None:
        self.serve_reply(path, Reply(body=body, status=status, headers=dict(headers or {}), delay=delay,
                                     chunk_size=chunk_size, chunk_delay=chunk_delay, declare_length=declare_length))

    def serve_json(self, path: str, obj: Any, **options: Any) -> None:
        headers = {"Content-Type": "application/json", **(options.pop("headers", None) or {})}
        self.serve(path, json.dumps(obj).encode("utf-8"), headers=headers, **options)

    def serve_reply(self, path: str, reply: Reply) -> None:
        with self._lock:
            self._standing[path] = reply

    def handle(self, path: str, func: Handler) -> None:
        with self._lock:
            self._standing[path] = func

    def enqueue(self, path: str, *replies: Reply) -> None:
        with self._lock:
            self._queued[path].extend(replies)

    def fail(self, path: str, status: int = 503, body: str = "service unavailable") -> None:
        self.serve(path, body, status=status)

    def drop(self, path: str) -> None:
        self.serve_reply(path, Reply(drop=True))

    def remove(self, path: str) -> None:
        with self._lock:
            self._standing.pop(path, None)
            self._queued.pop(path, None)

    def hold(self, path: str) -> None:
        with self._lock:
            self._holds[path] = threading.Event()

    def release(self, path: str) -> None:
        with self._lock:
            gate = self._holds.pop(path, None)
        if gate is not None:
            gate.set()

    # ----- observing -------------------------------------------------------------------------------------------
    def count(self, path: str) -> int:
        with self._lock:
            return sum(1 for r in self._requests if r.path == path)

    def requests(self, path: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self._requests if path is None or r.path == path]

    def reset_counts(self) -> None:
        with self._lock:
            self._requests.clear()

    def wait_for_requests(self, path: str, n: int, timeout: float = 5.0) -> bool:
        """Block until at least n requests to path have arrived; False if the timeout passes first."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while sum(1 for r in self._requests if r.path == path) < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._arrived.wait(remaining)
            return True

    # ----- serving (called on handler threads) -----------------------------------------------------------------
    def _reply_for(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self._requests.append(request)
            self._arrived.notify_all()
            gate = self._holds.get(request.path)
            queued = self._queued.get(request.path)
            standing: Reply | Handler | None = queued.popleft() if queued else self._standing.get(request.path)
        if gate is not None:
            gate.wait()
        if standing is None:
            return Reply(body={"error": "not_found", "path": request.path}, status=404)
        if callable(standing):
            return standing(request)
        return standing

    def _write_reply(self, handler: _RequestHandler, reply: Reply) -> None:
        if reply.delay and self._stopping.wait(reply.delay):
            return
        if reply.drop:
            handler.connection.shutdown(socket.SHUT_RDWR)
            return
        body = reply.body_bytes()
        handler.send_response(reply.status)
        for name, value in reply.header_items():
            handler.send_header(name, value)
        if reply.declare_length is True:
            handler.send_header("Content-Length", str(len(body)))
        elif reply.declare_length is not False:
            handler.send_header("Content-Length", str(int(reply.declare_length)))
        handler.send_header("Connection", "close")
        handler.end_headers()
        if handler.command == "HEAD":
            return
        if not reply.chunk_size:
            handler.wfile.write(body)
            return
        for start in range(0, len(body), reply.chunk_size):
            handler.wfile.write(body[start:start + reply.chunk_size])
            handler.wfile.flush()
            if reply.chunk_delay and self._stopping.wait(reply.chunk_delay):
                return

    def client_ssl_context(self) -> ssl.SSLContext:
        """An SSL context that trusts this server's self-signed certificate (and nothing else)."""
        if not self.tls:
            raise RuntimeError("this LocalHttpServer was started without tls=True")
        ctx = ssl.create_default_context(cadata=self.ca_pem.decode("ascii"))
        return ctx

    @property
    def ca_pem(self) -> bytes:
        return _self_signed_certificate()[0]


@pytest.fixture
def http_server() -> Iterator[LocalHttpServer]:
    """A plain-http LocalHttpServer on 127.0.0.1, stopped after the test."""
    with LocalHttpServer() as server:
        yield server


@pytest.fixture
def https_server() -> Iterator[LocalHttpServer]:
    """An https LocalHttpServer on 127.0.0.1 with a self-signed certificate, stopped after the test."""
    with LocalHttpServer(tls=True) as server:
        yield server
