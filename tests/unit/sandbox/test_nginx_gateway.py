"""The sandbox's NGINX gateway around the rendered configuration: what it logs, how events are read, when it is left out."""
from __future__ import annotations

import json

import pytest

import sandbox.gateways.nginx as nginx_module
from sandbox.environment import Sandbox
from sandbox.gateways.nginx import ACCESS_LOG, NginxGateway, main_config
from tests.support.required import unavailable


class StoppedForwardAuth:
    def stop(self) -> None:
        pass


def test_main_config_keeps_everything_in_the_work_directory(tmp_path):
    text = main_config("server {\n    listen 127.0.0.1:1;\n}", tmp_path)
    assert f"pid {tmp_path / 'nginx.pid'};" in text and f"access_log {tmp_path / ACCESS_LOG} authgate;" in text
    assert "daemon off;" in text and "    server {\n        listen 127.0.0.1:1;\n    }\n}" in text


def test_events_come_from_the_access_log_and_forwarded_means_proxied_to_the_backend(tmp_path):
    gateway = NginxGateway("", tmp_path, 1, "127.0.0.1:8081", StoppedForwardAuth())
    lines = [{"method": "GET", "uri": "/orders", "status": "200", "decision": "allow", "upstream": "127.0.0.1:8081"},
             {"method": "POST", "uri": "/orders", "status": "403", "decision": "insufficient_scope", "upstream": ""},
             {"method": "GET", "uri": "/x", "status": "404", "decision": "", "upstream": ""}]
    log = tmp_path / ACCESS_LOG
    log.write_text("".join(json.dumps(line) + "\n" for line in lines[:2]) + json.dumps(lines[2]))  # last: partial
    events = gateway.events
    assert [(e.method, e.final_status, e.decision.allowed, e.decision.code) for e in events] == [
        ("GET", 200, True, ""), ("POST", 403, False, "insufficient_scope")]
    with log.open("a") as handle:
        handle.write("\n")
    assert [e.final_status for e in gateway.events] == [200, 403, 404]


def test_without_nginx_the_sandbox_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(nginx_module, "nginx_binary", lambda: None)
    sandbox = Sandbox(gateways_wanted=("nginx",), cognito_wanted=False)
    sandbox._start_nginx()
    assert "nginx" not in sandbox.gateways
    assert "apt-get install -y nginx" in sandbox.not_started["nginx"]


def test_a_refused_configuration_is_reported(tmp_path):
    if nginx_module.nginx_binary() is None:
        unavailable("nginx is not installed; install it with: apt-get install -y nginx (.ci/run does, as root)")
    gateway = NginxGateway("server { listen 127.0.0.1:1; bogus_directive on; }", tmp_path / "n", 1, "127.0.0.1:2",
                           StoppedForwardAuth())
    with pytest.raises(RuntimeError, match="bogus_directive"):
        gateway.start()
