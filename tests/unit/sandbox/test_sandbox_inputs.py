"""`authgate demo --policy/--api`: what the sandbox cannot run is refused up front, saying what it needs."""
from __future__ import annotations

import time

import pytest

from sandbox.demo import main as demo_main
from sandbox.environment import SandboxInputError, check_sandbox_inputs
from stacks.cli import build_parser
from tests.unit.policy.policy_testing import REPO, write_policy

LOCAL = REPO / "policies/local.yaml"


@pytest.mark.parametrize("argv, message", [
    (["--policy", str(REPO / "policies/example.yaml")],
     "an issuer named 'local' whose issuer is ${LOCAL_ISSUER_URL}"),
    (["--api", "billing"], "--api 'billing' is not in"),
])
def test_demo_refuses_what_it_cannot_run_before_starting_anything(argv, message, capsys):
    started = time.monotonic()
    assert demo_main([*argv, "--no-color"]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and "Traceback" not in captured.err
    assert "Starting the sandbox" not in captured.out
    assert time.monotonic() - started < 10   # no provider was started (that takes seconds)


def test_a_local_shaped_policy_without_clients_is_refused(tmp_path):
    path = write_policy(tmp_path, LOCAL.read_text().split("clients:")[0])
    with pytest.raises(SandboxInputError, match="a spa and a service client"):
        check_sandbox_inputs(path, "orders")


def test_an_api_whose_routes_do_not_accept_the_local_issuer_is_refused(tmp_path):
    text = LOCAL.read_text().replace("apis:\n", "apis:\n  status:\n    routes:\n      \"GET /up\": {public: true}\n")
    path = write_policy(tmp_path, text)
    check_sandbox_inputs(path, "orders")
    with pytest.raises(SandboxInputError, match="in .* that is: orders"):
        check_sandbox_inputs(path, "status")


def test_the_default_inputs_pass_and_the_help_says_what_is_supported():
    check_sandbox_inputs(LOCAL, "orders")
    for command in ("demo", "local"):
        help_text = build_parser()._subparsers._group_actions[0].choices[command].format_help()
        assert "shaped like policies/local.yaml" in " ".join(help_text.split())
