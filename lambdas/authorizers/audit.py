"""One structured JSON audit line per authorizer decision, written to stdout (CloudWatch Logs). Never the token."""
from __future__ import annotations

import json
import sys
from typing import Any


def audit_record(*, authorizer: str, decision: str, code: str | None, route: str | None, principal: Any = None,
                 latency_us: int, request_id: str | None = None, metrics: Any = None, **extra: Any) -> dict:
    """The audit fields. `principal` is a verified Principal or None; unverified token contents are never logged
    (they are whatever an attacker chose to write). `metrics` (the API's lambdas.observability.emf.DecisionMetrics)
    adds the CloudWatch EMF members, so the same line is also the decision's metrics."""
    record = {"authgate": "authorizer", "authorizer": authorizer, "decision": decision, "code": code,
              "route": route, "sub": None, "client_id": None, "iss": None, "issuer_name": None, "aud": None,
              "jti": None, "latency_us": latency_us}
    if principal is not None:
        record.update(sub=principal.subject, client_id=principal.client_id, iss=principal.issuer,
                      issuer_name=principal.issuer_name, aud=list(principal.audience), jti=principal.jti)
    if request_id:
        record["request_id"] = request_id
    record.update({k: v for k, v in extra.items() if v is not None})
    if metrics is not None:
        record.update(metrics.fields(authorizer=authorizer, outcome=decision, code=code, route=route,
                                     principal=principal, latency_us=latency_us))
    return record


def audit_line(record: dict) -> str:
    """The record as one JSON line. The EMF `_aws` member (lambdas.observability.emf.EmfMetadata) goes last, with
    its pre-encoded directives spliced in."""
    meta = record.get("_aws")
    if meta is None or isinstance(meta, dict):
        return json.dumps(record, separators=(",", ":"), default=str)
    rest = json.dumps({k: v for k, v in record.items() if k != "_aws"}, separators=(",", ":"), default=str)
    return f'{rest[:-1]},"_aws":{meta.json_text()}}}'


def emit(record: dict) -> None:
    sys.stdout.write(audit_line(record) + "\n")
