"""The sandbox's context managers: a start that fails half-way stops what it had started, and the error goes on."""
from __future__ import annotations

import pytest

from sandbox.cognito import MotoCognito
from sandbox.environment import Sandbox
from sandbox.idp.launcher import IdpProcess
from sandbox.lifecycle import StoppedOnExit


class HalfStarting(StoppedOnExit):
    def __init__(self, fail: bool) -> None:
        self.fail, self.events = fail, []

    def start(self) -> "HalfStarting":
        self.events.append("started a child")
        if self.fail:
            raise RuntimeError("the port never answered")
        return self

    def stop(self) -> None:
        self.events.append("stopped")


def test_a_failed_start_is_stopped_and_the_error_raised():
    peer = HalfStarting(fail=True)
    with pytest.raises(RuntimeError, match="the port never answered"):
        with peer:
            pytest.fail("the body must not run after a failed start")
    assert peer.events == ["started a child", "stopped"]


def test_a_started_thing_is_stopped_on_leaving_also_on_errors():
    peer = HalfStarting(fail=False)
    with pytest.raises(ValueError):
        with peer as entered:
            assert entered is peer and peer.events == ["started a child"]
            raise ValueError("the test body failed")
    assert peer.events == ["started a child", "stopped"]


@pytest.mark.parametrize("kind", [IdpProcess, MotoCognito, Sandbox])
def test_every_sandbox_process_owner_uses_it(kind):
    assert issubclass(kind, StoppedOnExit)
