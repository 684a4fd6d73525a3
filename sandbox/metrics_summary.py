"""The demo's closing metrics: decisions by outcome and code per gateway, read from the audit lines the authorizers
wrote, the way CloudWatch reads them (each line's EMF directive names the `Decisions` metric and the dimension members
`Outcome` and `Reason` it is counted under).

The lines come from where each authgate authorizer in the sandbox writes them: the Lambda authorizers' captured
stdout (AWS HTTP API, AWS REST API, the Cognito flow's REST authorizer) and the forward-auth service behind NGINX (an
AuditTap on its observer hook keeps each line). GCP API Gateway and Azure APIM validate tokens natively: no authgate
authorizer runs there, so they write no such lines.
"""
from __future__ import annotations

import json
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from lambdas.authorizers.audit import audit_line

LINES_KEPT = 2000


class AuditTap:
    """An observer for ForwardAuthService: keeps each decision's audit line, as emitted (JSON text)."""

    def __init__(self) -> None:
        self.lines: deque[str] = deque(maxlen=LINES_KEPT)

    def __call__(self, record: dict) -> None:
        self.lines.append(audit_line(record))


@dataclass
class GatewayTally:
    """What one gateway's authorizer lines say, counted from their EMF members."""

    decisions: Counter = field(default_factory=Counter)   # (outcome, reason) -> Decisions
    lines: int = 0
    without_metrics: int = 0                              # authorizer lines CloudWatch could not count
    key_fetches: float = 0
    key_fetch_failures: float = 0
    cache_hits: float = 0

    @property
    def total(self) -> int:
        return sum(self.decisions.values())


def _counts_decisions(doc: Mapping[str, Any]) -> bool:
    """Whether the line's EMF metadata counts `Decisions` under a dimension set holding Outcome and Reason."""
    meta = doc.get("_aws")
    if not isinstance(meta, Mapping) or not isinstance(meta.get("CloudWatchMetrics"), list):
        return False
    for directive in meta["CloudWatchMetrics"]:
        names = {m.get("Name") for m in directive.get("Metrics", []) if isinstance(m, Mapping)}
        if "Decisions" in names and any({"Outcome", "Reason"} <= set(dims) for dims in directive.get("Dimensions", [])):
            return True
    return False


def tally(lines: Iterable[str]) -> GatewayTally:
    """Count the authorizer audit lines among `lines` (other output is skipped)."""
    result = GatewayTally()
    for line in lines:
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if not isinstance(doc, dict) or doc.get("authgate") != "authorizer":
            continue
        result.lines += 1
        if not _counts_decisions(doc) or not isinstance(doc.get("Decisions"), (int, float)):
            result.without_metrics += 1
            continue
        result.decisions[(str(doc.get("Outcome")), str(doc.get("Reason")))] += doc["Decisions"]
        result.key_fetches += doc.get("KeyFetches", 0)
        result.key_fetch_failures += doc.get("KeyFetchFailures", 0)
        result.cache_hits += doc.get("VerifiedCacheHits", 0)
    return result


def audit_lines(sandbox: Any) -> dict[str, list[str]]:
    """Gateway title -> the audit lines its authgate authorizer wrote, for every gateway that runs one."""
    found: dict[str, list[str]] = {}
    for handle in sandbox.running_gateways():
        server = handle.server
        emulator = getattr(server, "emulator", None)
        functions = [*getattr(emulator, "lambda_authorizers", {}).values(),
                     *getattr(emulator, "authorizers", {}).values()]
        lines = [line for authorizer in functions for line in authorizer.function.log]
        forward_auth = getattr(server, "forward_auth", None)
        if forward_auth is not None:
            taps = [o for o in forward_auth.app.service.observers if isinstance(o, AuditTap)]
            lines += [line for tap in taps for line in tap.lines]
        if functions or forward_auth is not None:
            found[handle.title] = lines
    cognito = getattr(sandbox, "cognito", None)
    if cognito is not None and getattr(cognito, "authorizer", None) is not None:
        found["Cognito REST authorizer"] = list(cognito.authorizer.log)
    return found


def summary_lines(sandbox: Any) -> list[str]:
    """The summary, one line per gateway (and what it means when a gateway wrote no metric)."""
    out = []
    sources = audit_lines(sandbox)
    width = max([len(title) for title in sources] + [20])
    for title, lines in sources.items():
        counted = tally(lines)
        by_code = ", ".join(f"{outcome}{'' if reason == 'none' else ' ' + reason} {n:g}"
                            for (outcome, reason), n in sorted(counted.decisions.items()))
        text = f"{title:<{width}} {counted.total:g} decisions: {by_code or 'none'}"
        text += (f"; key fetches {counted.key_fetches:g} ({counted.key_fetch_failures:g} failed), "
                 f"verified-token cache hits {counted.cache_hits:g}")
        if counted.without_metrics:
            text += f"; {counted.without_metrics} line(s) WITHOUT metrics"
        out.append(text)
    native = [h.title for h in sandbox.running_gateways() if h.title not in sources]
    if native:
        out.append(f"{', '.join(native)}: native token validation, no authgate authorizer lines")
    return out
