"""A real NGINX (Debian's `nginx`) on 127.0.0.1: the configuration `render_nginx` writes, `auth_request` to the
forward-auth service (lambdas/forward_auth under uvicorn, in this process), in front of the sample backend.

Nothing here decides anything: NGINX routes, asks the service and proxies; the service decides. What the demo and
the tests observe is NGINX's own access log (one JSON line per client request: method, URI, status, the decision
code NGINX got from the service, and the upstream it proxied to), read back as the same GatewayEvent the emulated
gateways record, so "refused at the gateway" and "backend arrivals equal forwarded requests" are checked the same
way for all five.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.gateways.server import Decision, GatewayEvent

NAME = "nginx"
INSTALL_HINT = "install Debian's nginx to run it: sudo apt-get install -y nginx"
ACCESS_LOG = "access.log.jsonl"
LOG_FORMAT = ("log_format authgate escape=json '{\"method\":\"$request_method\",\"uri\":\"$request_uri\","
              "\"status\":\"$status\",\"decision\":\"$authgate_decision\",\"upstream\":\"$upstream_addr\"}';")


def nginx_binary() -> str | None:
    """Debian installs nginx in /usr/sbin, which is not on every user's PATH."""
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx")
                                          if os.access(p, os.X_OK)), None)


def free_loopback_port() -> int:
    """A port free right now (NGINX cannot listen on port 0 and report the port it got)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main_config(server_config: str, workdir: Path) -> str:
    """The nginx.conf around the rendered configuration: everything in `workdir`, foreground, loopback only."""
    user = "user nobody nogroup;\n" if os.geteuid() == 0 else ""
    return (f"{user}worker_processes 1;\npid {workdir / 'nginx.pid'};\nerror_log {workdir / 'error.log'} warn;\n"
            "daemon off;\nevents { worker_connections 256; }\nhttp {\n"
            f"    client_body_temp_path {workdir / 'body'};\n    proxy_temp_path {workdir / 'proxy'};\n"
            f"    fastcgi_temp_path {workdir / 'fastcgi'};\n    uwsgi_temp_path {workdir / 'uwsgi'};\n"
            f"    scgi_temp_path {workdir / 'scgi'};\n    {LOG_FORMAT}\n"
            f"    access_log {workdir / ACCESS_LOG} authgate;\n"
            + "".join(f"    {line}\n" if line else "\n" for line in server_config.splitlines()) + "}\n")


class ForwardAuthThread:
    """The forward-auth service under uvicorn in a thread, on an ephemeral loopback port."""

    def __init__(self, app) -> None:
        import uvicorn

        self.app = app
        # proxy_headers off, as `authgate serve` and the image run it: the peer is the TCP peer (trusted proxies).
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="on", proxy_headers=False,
                                                    log_level="warning", access_log=False))
        self.thread = threading.Thread(target=self.server.run, name="forward-auth", daemon=True)

    def start(self, timeout: float = 20.0) -> "ForwardAuthThread":
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not (self.server.started and self.app.ready):
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the forward-auth service did not become ready "
                                   f"({self.app.startup_error or 'no keys from the issuer'})")
            time.sleep(0.02)
        return self

    @property
    def address(self) -> str:
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        return f"{host}:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class NginxGateway:
    """NGINX plus its forward-auth service; `events` reads NGINX's access log. Start, use, stop."""

    server_config: str                 # what render_nginx wrote (rendered for `listen` and the two upstreams)
    workdir: Path
    port: int
    backend: str                       # HOST:PORT of the backend, as the configuration names it
    forward_auth: ForwardAuthThread
    binary: str = field(default_factory=lambda: nginx_binary() or "nginx")
    name: str = NAME
    _process: subprocess.Popen | None = None
    _events: list[GatewayEvent] = field(default_factory=list)
    _read: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> "NginxGateway":
        self.workdir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.workdir, 0o755)  # the worker (nobody, when started as root) reaches its temp directories
        conf = self.workdir / "nginx.conf"
        conf.write_text(main_config(self.server_config, self.workdir), encoding="utf-8")
        (self.workdir / ACCESS_LOG).touch()
        check = subprocess.run([self.binary, "-t", "-q", "-e", "stderr", "-p", str(self.workdir), "-c", str(conf)],
                               capture_output=True, text=True, timeout=30)
        if check.returncode != 0:
            raise RuntimeError(f"nginx refused the rendered configuration: {check.stderr.strip()}")
        self._process = subprocess.Popen([self.binary, "-e", "stderr", "-p", str(self.workdir), "-c", str(conf)],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"nginx exited at start: {self._process.stderr.read().strip()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    self._process.kill()
                    self._process.wait()
                    raise RuntimeError(f"nginx did not listen on 127.0.0.1:{self.port} within {timeout:.0f}s")
                time.sleep(0.05)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGQUIT)   # graceful: finish requests, then exit
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        self.forward_auth.stop()

    @property
    def events(self) -> list[GatewayEvent]:
        """One event per request NGINX answered, from its access log (read up to the last complete line)."""
        with open(self.workdir / ACCESS_LOG, "rb") as log:
            log.seek(self._read)
            chunk = log.read()
        complete = chunk[:chunk.rfind(b"\n") + 1]
        self._read += len(complete)
        for line in complete.splitlines():
            self._events.append(self._event(json.loads(line)))
        return list(self._events)

    def wait_for_events(self, count: int, timeout: float = 5.0) -> list[GatewayEvent]:
        """NGINX writes the access log line after the response: a caller that just got its answer may be first."""
        deadline = time.monotonic() + timeout
        while len(events := self.events) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return events

    def _event(self, entry: dict) -> GatewayEvent:
        status = int(entry["status"])
        # $upstream_addr lists every upstream the request went to; the auth subrequest's is not among them.
        forwarded = self.backend in entry["upstream"].split(", ")
        code = entry["decision"] if entry["decision"] not in ("allow", "public") else ""
        checked = (f"forward-auth said {entry['decision']}" if entry["decision"]
                   else "no auth_request (public location, or not a route)")
        method, uri = entry["method"], entry["uri"]
        return GatewayEvent(NAME, method, uri, "", Decision(allowed=forwarded, status=status, checked=checked,
                                                              code=code), status)
