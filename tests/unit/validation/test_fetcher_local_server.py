"""The test HTTP server's own contract (tests/support/http_server.py), which other test suites build on."""
from __future__ import annotations

import http.client
import ssl
import threading
import time
import urllib.error
import urllib.request

import pytest

from tests.support.http_server import LocalHttpServer, Reply, http_server  # noqa: F401 (fixture)


def get(url: str, **kwargs) -> tuple[int, bytes, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5, **kwargs) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def test_binds_loopback_on_an_ephemeral_port_and_stops():
    server = LocalHttpServer().start()
    url = server.url("/x")
    assert url.startswith("http://127.0.0.1:") and server.port != 0
    server.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=1)


def test_refuses_non_loopback_bind():
    with pytest.raises(ValueError, match="loopback"):
        LocalHttpServer(host="0.0.0.0")


def test_standing_reply_can_be_switched_and_removed(http_server):
    http_server.serve_json("/doc", {"v": 1}, headers={"Cache-Control": "max-age=5"})
    status, body, headers = get(http_server.url("/doc"))
    assert (status, body, headers["Cache-Control"], headers["Content-Type"]) == \
        (200, b'{"v": 1}', "max-age=5", "application/json")
    http_server.serve("/doc", "text", status=201)
    assert get(http_server.url("/doc"))[:2] == (201, b"text")
    http_server.remove("/doc")
    assert get(http_server.url("/doc"))[0] == 404


def test_queued_replies_come_first_then_the_standing_one(http_server):
    http_server.serve("/doc", "steady")
    http_server.enqueue("/doc", Reply("first", status=500), Reply("second", status=502))
    assert [get(http_server.url("/doc"))[:2] for _ in range(3)] == \
        [(500, b"first"), (502, b"second"), (200, b"steady")]


def test_handler_sees_the_request_and_counts_ignore_the_query(http_server):
    http_server.handle("/echo", lambda request: Reply({"method": request.method, "query": request.query,
                                                        "body": request.body.decode()}))
    request = urllib.request.Request(http_server.url("/echo?a=1"), data=b"payload", method="POST")
    status, body, _ = get(request)
    assert status == 200 and b'"method": "POST"' in body and b'"query": "a=1"' in body and b'"payload"' in body
    get(http_server.url("/echo?b=2"))
    assert http_server.count("/echo") == 2
    assert [r.query for r in http_server.requests("/echo")] == ["a=1", "b=2"]
    http_server.reset_counts()
    assert http_server.count("/echo") == 0


def test_hold_parks_requests_until_release(http_server):
    http_server.serve("/held", "done")
    http_server.hold("/held")
    results: list = []
    thread = threading.Thread(target=lambda: results.append(get(http_server.url("/held"))[1]))
    thread.start()
    assert http_server.wait_for_requests("/held", 1)
    time.sleep(0.1)
    assert results == []
    http_server.release("/held")
    thread.join(5)
    assert results == [b"done"]


def test_wait_for_requests_gives_up(http_server):
    assert http_server.wait_for_requests("/never", 1, timeout=0.05) is False


def test_stop_interrupts_a_sleeping_reply():
    server = LocalHttpServer().start()
    server.serve("/slow", "late", delay=30)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/slow")
    assert server.wait_for_requests("/slow", 1)
    started = time.monotonic()
    server.stop()
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        conn.getresponse()
    assert time.monotonic() - started < 2
    conn.close()


def test_false_content_length_and_head(http_server):
    http_server.serve("/short", b"abc", declare_length=10)
    conn = http.client.HTTPConnection("127.0.0.1", http_server.port, timeout=5)
    conn.request("GET", "/short")
    with pytest.raises(http.client.IncompleteRead):
        conn.getresponse().read()
    conn.close()
    http_server.serve("/head", b"abcdef")
    conn = http.client.HTTPConnection("127.0.0.1", http_server.port, timeout=5)
    conn.request("HEAD", "/head")
    response = conn.getresponse()
    assert response.getheader("Content-Length") == "6" and response.read() == b""
    conn.close()


def test_tls_certificate_is_trusted_only_through_its_context(tmp_path):
    with LocalHttpServer(tls=True) as server:
        server.serve("/x", "secure")
        assert server.url("/x").startswith("https://")
        assert get(server.url("/x"), context=server.client_ssl_context())[:2] == (200, b"secure")
        ca = tmp_path / "ca.pem"
        ca.write_bytes(server.ca_pem)
        assert get(server.url("/x"), context=ssl.create_default_context(cafile=str(ca)))[1] == b"secure"
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            urllib.request.urlopen(server.url("/x"), timeout=5)
