"""How the demo shows what happens: one line per hop, token fingerprints instead of tokens, and the summary table."""
from __future__ import annotations

import base64
import hashlib
import json
import sys
from dataclasses import dataclass, field
from typing import TextIO


def fingerprint(token: str | None) -> str:
    """A short, stable name for a token that reveals nothing usable: the first 10 hex digits of its SHA-256."""
    if not token:
        return "<no token>"
    return "tok#" + hashlib.sha256(token.encode()).hexdigest()[:10]


def peek_claims(token: str) -> dict:
    """The unverified payload, for display only (never for a decision): empty when the token is not a JWS."""
    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}


def describe_token(token: str) -> str:
    """fingerprint plus the few claims a reader needs to follow the story (sub, aud, client_id, token_use, scope)."""
    claims = peek_claims(token)
    parts = [fingerprint(token)]
    for name in ("sub", "aud", "client_id", "token_use", "scope"):
        if name in claims:
            parts.append(f"{name}={claims[name]}")
    return " ".join(parts)


@dataclass
class Outcome:
    """One expectation of the demo: what was tried, through which gateway, what was expected and what happened."""

    step: str
    gateway: str
    expected: str
    actual: str
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.expected == self.actual


@dataclass
class Narrator:
    """Prints hops as they happen and collects outcomes for the table at the end."""

    out: TextIO = field(default_factory=lambda: sys.stdout)
    outcomes: list[Outcome] = field(default_factory=list)
    color: bool = False

    def _paint(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def section(self, title: str) -> None:
        print(f"\n{self._paint('== ' + title, '1')}", file=self.out, flush=True)

    def hop(self, who: str, what: str, answer: str = "") -> None:
        arrow = f" -> {answer}" if answer else ""
        print(f"  {who:<34} {what}{arrow}", file=self.out, flush=True)

    def note(self, text: str) -> None:
        print(f"  {self._paint(text, '2')}", file=self.out, flush=True)

    def expect(self, step: str, gateway: str, expected: str, actual: str, detail: str = "") -> Outcome:
        outcome = Outcome(step, gateway, expected, actual, detail)
        self.outcomes.append(outcome)
        mark = self._paint("ok", "32") if outcome.passed else self._paint("FAILED", "31")
        print(f"  {'':<34} expected {expected}, got {actual}: {mark}", file=self.out, flush=True)
        return outcome

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.passed]

    def summary(self) -> None:
        headers = ("step", "gateway", "expected", "actual", "result")
        rows = [(o.step, o.gateway, o.expected, o.actual, "ok" if o.passed else "FAILED") for o in self.outcomes]
        widths = [max(len(str(r[i])) for r in rows + [headers]) for i in range(len(headers))]
        line = "+".join("-" * (w + 2) for w in widths)
        self.section("Summary")
        print(f"  {' | '.join(h.ljust(w) for h, w in zip(headers, widths))}", file=self.out)
        print(f"  {line}", file=self.out)
        for row in rows:
            text = " | ".join(str(c).ljust(w) for c, w in zip(row, widths))
            print(f"  {self._paint(text, '31') if row[-1] == 'FAILED' else text}", file=self.out)
        total, failed = len(self.outcomes), len(self.failures)
        verdict = f"{total - failed}/{total} expectations met"
        print(f"\n  {self._paint(verdict, '32' if not failed else '31')}", file=self.out, flush=True)
