"""The provider launcher's start-up: a stalled start (running, silent) is retried once; a provider that exits says
so with what it wrote. Each case runs a small stand-in for server.mjs under the real Node."""
from __future__ import annotations

import shutil

import pytest

from sandbox.idp import launcher
from sandbox.idp.launcher import IdpError, IdpProcess

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="needs node")

# Stalls (runs, prints nothing) on its first start and comes up on the next: a marker file tells them apart.
STALLS_ONCE = """
import { existsSync, writeFileSync } from 'node:fs';
const marker = process.env.STAND_IN_MARKER;
if (!existsSync(marker)) {
  writeFileSync(marker, 'stalled');
} else {
  process.stdout.write(JSON.stringify({event: 'ready', issuer: 'http://127.0.0.1:9', signing_kid: 'k'}) + '\\n');
}
setInterval(() => {}, 1000);
"""
ALWAYS_STALLS = "setInterval(() => {}, 1000);\n"
# Ready at once; each start leaves a line in the marker file, so the test can count the providers started.
COUNTS_STARTS = """
import { appendFileSync } from 'node:fs';
appendFileSync(process.env.STAND_IN_MARKER, 'started\\n');
process.stdout.write(JSON.stringify({event: 'ready', issuer: 'http://127.0.0.1:9', signing_kid: 'k'}) + '\\n');
setInterval(() => {}, 1000);
"""
EXITS = "process.stderr.write('authgate idp: cannot read config\\n'); process.exit(2);\n"


def stand_in(tmp_path, monkeypatch, source: str) -> None:
    script = tmp_path / "bin" / "server.mjs"
    script.parent.mkdir()
    script.write_text(source)
    monkeypatch.setattr(launcher, "SERVER_SCRIPT", script)
    monkeypatch.setattr(launcher, "READY_TIMEOUT_SECONDS", 1.5)
    monkeypatch.setenv("STAND_IN_MARKER", str(tmp_path / "stalled"))


def test_a_stalled_start_is_retried_once(tmp_path, monkeypatch):
    stand_in(tmp_path, monkeypatch, STALLS_ONCE)
    with IdpProcess({}) as idp:
        assert idp.issuer == "http://127.0.0.1:9"
    assert (tmp_path / "stalled").exists(), "the first start stalled"


def test_a_start_that_stalls_every_time_is_an_error_naming_the_attempts(tmp_path, monkeypatch):
    stand_in(tmp_path, monkeypatch, ALWAYS_STALLS)
    with pytest.raises(IdpError, match=r"did not become ready within 2s: no output \(in each of 2 attempts\)"):
        IdpProcess({}).start()


def test_a_provider_that_exits_says_its_status_and_what_it_wrote(tmp_path, monkeypatch):
    stand_in(tmp_path, monkeypatch, EXITS)
    with pytest.raises(IdpError, match="exited with status 2 before it was ready: authgate idp: cannot read config"):
        IdpProcess({}).start()


def test_entering_a_started_provider_starts_no_second_one(tmp_path, monkeypatch):
    # `with IdpProcess(...).start() as idp:` starts, then enters (which starts): one provider, stopped on leaving.
    stand_in(tmp_path, monkeypatch, COUNTS_STARTS)
    with IdpProcess({}).start() as idp:
        process = idp._process
    assert (tmp_path / "stalled").read_text() == "started\n"
    assert process.poll() is not None, "the provider outlived the with block"
