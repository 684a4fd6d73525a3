"""The loopback gateway server: a proxied response carries one Server and one Date header, the gateway's own."""
from __future__ import annotations

import http.client
from urllib.parse import urlsplit

from sandbox.gateways.server import Decision, GatewayServer
from tests.support.http_server import LocalHttpServer


class AllowEverything:
    name = "allow-everything"

    def decide(self, method, path, headers, *, client_ip=""):
        return Decision(allowed=True, checked="nothing")


def test_a_proxied_response_has_one_server_and_one_date_header():
    with LocalHttpServer() as backend:
        backend.serve("/orders", "ok", headers={"X-Backend": "yes"})
        gateway = GatewayServer(AllowEverything(), backend.url("/").rstrip("/")).start()
        try:
            parts = urlsplit(gateway.url)
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
            connection.request("GET", "/orders")
            response = connection.getresponse()
            assert response.read() == b"ok"
            names = [name.lower() for name, _ in response.getheaders()]
            connection.close()
        finally:
            gateway.stop()
    assert names.count("server") == 1 and names.count("date") == 1, names
    assert "x-backend" in names
