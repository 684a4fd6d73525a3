"""The demo's metrics summary counts decisions from the EMF members of real authorizer audit lines, and says so when a
line carries none (which CloudWatch could not count either)."""
from __future__ import annotations

import io
import json
from contextlib import redirect_stdout

from lambdas.authorizers.audit import audit_record, emit
from lambdas.observability.emf import DecisionMetrics
from lambdas.validation.key_metrics import KeySetMetrics
from sandbox.metrics_summary import AuditTap, tally


def written_lines(*decisions: tuple[str, str | None], metrics: bool = True) -> list[str]:
    """Audit lines exactly as an authorizer writes them (audit_record + emit to stdout)."""
    emf = DecisionMetrics("orders", route_keys=["GET /orders"], key_metrics=KeySetMetrics())
    out = io.StringIO()
    with redirect_stdout(out):
        for outcome, code in decisions:
            emit(audit_record(authorizer="rest", decision=outcome, code=code, route="GET /orders", latency_us=90,
                              metrics=emf if metrics else None))
    return out.getvalue().splitlines()


def test_counts_by_outcome_and_code_from_the_emf_members():
    lines = written_lines(("allow", None), ("unauthorized", "expired"), ("unauthorized", "expired"),
                          ("forbidden", "insufficient_scope"))
    counted = tally(["START RequestId: 1", *lines, "not json", '{"other": "line"}'])
    assert counted.decisions == {("allow", "none"): 1, ("unauthorized", "expired"): 2,
                                 ("forbidden", "insufficient_scope"): 1}
    assert (counted.lines, counted.total, counted.without_metrics) == (4, 4, 0)


def test_a_line_without_metrics_is_reported_not_counted():
    counted = tally(written_lines(("allow", None), metrics=False) + written_lines(("allow", None)))
    assert (counted.lines, counted.total, counted.without_metrics) == (2, 1, 1)


def test_a_line_whose_directive_does_not_count_decisions_by_code_is_not_counted():
    (line,) = written_lines(("allow", None))
    doc = json.loads(line)
    doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"] = [["ApiName"]]
    assert tally([json.dumps(doc)]).without_metrics == 1


def test_the_tap_keeps_forward_auth_records_as_lines():
    tap = AuditTap()
    tap({"authgate": "authorizer", "decision": "allow", "latency_us": 5})
    assert json.loads(tap.lines[0]) == {"authgate": "authorizer", "decision": "allow", "latency_us": 5}
