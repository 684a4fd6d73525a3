"""Running a Lambda handler in-process: loaded from its code directory, its environment, its own module instance."""
from __future__ import annotations

import os

import pytest

from sandbox.gateways.lambda_runtime import InProcessLambda, LambdaInvocationError

HANDLER_SOURCE = '''
import os
import sys
LOADED_WITH = os.environ.get("SANDBOX_TEST_SETTING")
calls = []

def handler(event, context):
    calls.append(event["n"])
    print('{"decision": "allow", "code": null, "n": %d}' % event["n"])
    sys.stderr.write("to stderr %d\\n" % event["n"])
    if event.get("fail"):
        raise Exception("Unauthorized")
    return {"setting": os.environ["SANDBOX_TEST_SETTING"], "loaded_with": LOADED_WITH, "calls": list(calls),
            "remaining_ms": context.get_remaining_time_in_millis()}
'''


@pytest.fixture()
def code_root(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "fn.py").write_text(HANDLER_SOURCE)
    return tmp_path


def test_handler_runs_with_its_environment_only_while_it_runs(code_root):
    assert "SANDBOX_TEST_SETTING" not in os.environ
    function = InProcessLambda("pkg.fn.handler", code_root=code_root, environment={"SANDBOX_TEST_SETTING": "a"},
                               function_name="Fn", timeout_seconds=3)
    answer = function.invoke({"n": 1})
    assert answer["setting"] == answer["loaded_with"] == "a"
    assert 0 < answer["remaining_ms"] <= 3000
    assert "SANDBOX_TEST_SETTING" not in os.environ
    assert function.invocations == 1


def test_each_function_gets_its_own_module_instance(code_root):
    first = InProcessLambda("pkg.fn.handler", code_root=code_root, environment={"SANDBOX_TEST_SETTING": "a"},
                            function_name="A")
    second = InProcessLambda("pkg.fn.handler", code_root=code_root, environment={"SANDBOX_TEST_SETTING": "b"},
                             function_name="B")
    first.invoke({"n": 1})
    assert first.invoke({"n": 2})["calls"] == [1, 2]
    assert second.invoke({"n": 3}) == {"setting": "b", "loaded_with": "b", "calls": [3],
                                       "remaining_ms": pytest.approx(10000, abs=500)}


def test_printed_lines_are_the_function_log_and_errors_are_wrapped(code_root, capsys):
    function = InProcessLambda("pkg.fn.handler", code_root=code_root, environment={"SANDBOX_TEST_SETTING": "a"},
                               function_name="Fn")
    with pytest.raises(LambdaInvocationError) as raised:
        function.invoke({"n": 7, "fail": True})
    assert str(raised.value.cause) == "Unauthorized"
    assert capsys.readouterr() == ("", "")   # stderr too: Lambda sends both streams to the function's log
    assert function.last_audit() == {"decision": "allow", "code": None, "n": 7}
    assert "to stderr 7" in function.log


def test_a_handler_that_does_not_exist_is_refused(code_root):
    with pytest.raises(ValueError, match="whose file exists"):
        InProcessLambda("pkg.missing.handler", code_root=code_root, environment={}, function_name="Fn")
    with pytest.raises(ValueError, match="defines no function 'nope'"):
        InProcessLambda("pkg.fn.nope", code_root=code_root, environment={}, function_name="Fn")
