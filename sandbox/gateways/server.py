"""The HTTP front of every emulated gateway: take a request, ask the gateway's decision, forward or refuse.

Each emulator (HTTP API, REST API, GCP API Gateway, APIM) only answers "what would the real gateway do with this
request"; this module turns that into a loopback HTTP server that forwards allowed requests to the backend and
answers refused ones itself, so a refused request provably never reaches the backend.
"""
from __future__ import annotations

import json
import ssl
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Mapping, Protocol

from sandbox.report import fingerprint

MAX_BODY_BYTES = 1 << 20
FORWARD_TIMEOUT_SECONDS = 10
# Hop-by-hop headers (RFC 9110 7.6.1) are never forwarded.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                        "transfer-encoding", "upgrade", "host", "content-length"})
# The gateway answers with its own Server and Date (BaseHTTPRequestHandler.send_response writes them), as a real
# gateway does; the backend's copies are not passed on, or the response would carry each twice.
GATEWAY_OWN_RESPONSE_HEADERS = frozenset({"server", "date"})


@dataclass(frozen=True)
class Decision:
    """What a gateway does with one request.

    allowed          forward to the backend (True) or answer `status` itself (False)
    status, body     the gateway's own answer when not allowed
    checked          what the gateway checked, in words, for the narration
    code             the validation module's reason code when refused (e.g. "expired"), else ""
    set_headers      headers to add or replace on the forwarded request (e.g. X-Apigateway-Api-Userinfo)
    drop_headers     headers to remove from the forwarded request (lower case)
    respond          when allowed: the route's own integration answers instead of the backend (authgate's endpoints
                     behind a Lambda proxy integration, run in-process); called with the request body, returns
                     (status, headers, body)
    """

    allowed: bool
    status: int = 200
    body: Mapping = field(default_factory=dict)
    checked: str = ""
    code: str = ""
    set_headers: Mapping[str, str] = field(default_factory=dict)
    drop_headers: frozenset[str] = frozenset()
    respond: Callable[[bytes | None], tuple[int, Mapping[str, str], bytes]] | None = None

    @classmethod
    def refuse(cls, status: int, message: str, *, code: str = "", checked: str = "") -> "Decision":
        body = {"message": message}
        if code:
            body["code"] = code
        return cls(allowed=False, status=status, body=body, checked=checked, code=code)


class GatewayEmulator(Protocol):
    name: str

    def decide(self, method: str, path: str, headers: Mapping[str, str], *,
               client_ip: str = "127.0.0.1") -> Decision:
        """The real gateway's verdict for this request. `headers` keys are lower case; `client_ip` is the address
        the request came from (what a gateway's IP-based rules read)."""
        ...


@dataclass(frozen=True)
class GatewayEvent:
    """One request seen by a gateway, for narration and for tests."""

    gateway: str
    method: str
    path: str
    token: str
    decision: Decision
    final_status: int


def client_cert_context(pem: str) -> dict:
    """What API Gateway's mutual TLS puts in an authorizer event for the client certificate (HTTP API:
    requestContext.authentication.clientCert; REST: requestContext.identity.clientCert)."""
    from cryptography import x509

    certificate = x509.load_pem_x509_certificate(pem.encode("ascii"))
    return {"clientCertPem": pem, "subjectDN": certificate.subject.rfc4514_string(),
            "issuerDN": certificate.issuer.rfc4514_string(), "serialNumber": format(certificate.serial_number, "x"),
            "validity": {"notBefore": certificate.not_valid_before_utc.strftime("%b %d %H:%M:%S %Y GMT"),
                         "notAfter": certificate.not_valid_after_utc.strftime("%b %d %H:%M:%S %Y GMT")}}


class GatewayServer:
    """A loopback HTTP server in front of `backend_url` that applies `emulator`'s decisions.

    With `tls` (an ssl.SSLContext for the server side) it speaks TLS; a context that asks for client certificates
    (verify_mode CERT_REQUIRED with the CAs of a truststore) plays an API Gateway mutual TLS domain: the handshake
    fails without a certificate from those CAs, and the emulator gets each request's certificate as
    `client_certificate` (emulators served this way take that argument: the HTTP and REST API ones)."""

    def __init__(self, emulator: GatewayEmulator, backend_url: str, *, tls: ssl.SSLContext | None = None) -> None:
        self.emulator = emulator
        self.backend_url = backend_url.rstrip("/")
        self.events: list[GatewayEvent] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._tls = tls
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"{'https' if self._tls else 'http'}://{host}:{port}"

    def start(self) -> "GatewayServer":
        self._thread = threading.Thread(target=self._httpd.serve_forever, name=f"gateway-{self.emulator.name}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def record(self, event: GatewayEvent) -> None:
        with self._lock:
            self.events.append(event)

    def _forward(self, method: str, path: str, headers: Mapping[str, str], body: bytes | None,
                 decision: Decision) -> tuple[int, dict[str, str], bytes]:
        out = {k: v for k, v in headers.items() if k not in HOP_BY_HOP and k not in decision.drop_headers}
        out.update({k.lower(): v for k, v in decision.set_headers.items()})
        request = urllib.request.Request(self.backend_url + path, data=body, headers=out, method=method)
        try:
            with urllib.request.urlopen(request, timeout=FORWARD_TIMEOUT_SECONDS) as resp:
                return resp.status, dict(resp.headers.items()), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers.items()), err.read()
        except OSError as err:
            # The real gateways answer 502/504 when the integration fails; never pass the request on silently.
            return 502, {"content-type": "application/json"}, json.dumps(
                {"message": f"integration failure: {err}"}).encode()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # the narration reports requests; keep stderr quiet
                return

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if length > MAX_BODY_BYTES:
                    self._reply(413, {"content-type": "application/json"}, b'{"message":"Request too large"}')
                    return
                body = self.rfile.read(length) if length else None
                headers = {k.lower(): v for k, v in self.headers.items()}
                mtls = {}
                if gateway._tls is not None:
                    der = self.connection.getpeercert(binary_form=True)
                    mtls["client_certificate"] = ssl.DER_cert_to_PEM_cert(der) if der else None
                try:
                    decision = gateway.emulator.decide(self.command, self.path, headers,
                                                       client_ip=self.client_address[0], **mtls)
                except Exception as exc:  # an emulator bug must never turn into an allow
                    decision = Decision.refuse(500, f"gateway emulator error: {type(exc).__name__}: {exc}",
                                               code="emulator_error")
                if decision.allowed and decision.respond is not None:
                    try:
                        status, resp_headers, resp_body = decision.respond(body)
                    except Exception as exc:  # API Gateway answers 500 when the integration fails
                        status, resp_headers = 500, {"content-type": "application/json"}
                        resp_body = json.dumps({"message": f"integration failure: {type(exc).__name__}"}).encode()
                    resp_headers = {k.lower(): v for k, v in resp_headers.items()}
                elif decision.allowed:
                    status, resp_headers, resp_body = gateway._forward(self.command, self.path, headers, body,
                                                                       decision)
                    resp_headers = {k.lower(): v for k, v in resp_headers.items()
                                    if k.lower() not in HOP_BY_HOP and k.lower() not in GATEWAY_OWN_RESPONSE_HEADERS}
                else:
                    status, resp_headers = decision.status, {"content-type": "application/json"}
                    resp_body = json.dumps(decision.body).encode()
                token = _bearer(headers.get("authorization", ""))
                gateway.record(GatewayEvent(gateway.emulator.name, self.command, self.path, fingerprint(token),
                                            decision, status))
                self._reply(status, resp_headers, resp_body)

            def _reply(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

        return Handler


def _bearer(authorization: str) -> str:
    scheme, _, value = authorization.strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""
