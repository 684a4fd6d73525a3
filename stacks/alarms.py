"""authgate's alarms on every cloud: when each fires (AlarmThresholds) and what it means and what to do (ALARMS).

One catalogue, so a CloudWatch alarm, a Cloud Monitoring alert policy and an Azure Monitor scheduled query rule for the
same condition carry the same words, and the README's "Operating authgate" section is written from it. The runtime
signals they read are the authorizers' audit lines (lambdas/observability: EMF members on AWS, the same JSON fields
in Cloud Logging and Log Analytics).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from lambdas.validation.errors import AUTHORIZATION_CODES, CODES, KEY_SOURCE_CODES

# The 401 codes whose sudden rise points to something an operator fixes (keys, clocks, configuration, a client
# fleet) rather than one caller's mistake. Any 401 code of lambdas.validation.errors.CODES may be chosen instead.
DEFAULT_WATCHED_401_CODES = ("unknown_kid", "bad_signature", "expired", "not_yet_valid", "issued_in_future",
                             "invalid_audience", "unknown_issuer", "wrong_token_use", "alg_not_allowed", "malformed")
UNAUTHORIZED_CODES = frozenset(CODES) - AUTHORIZATION_CODES - KEY_SOURCE_CODES - {"route_not_found"}


@dataclass(frozen=True)
class AlarmThresholds:
    """When each alarm fires. Periods are one minute unless said otherwise.

    key_fetch_failure_minutes  consecutive minutes with at least one failed key fetch
    unavailable_count          "unavailable" decisions in one minute
    unauthorized_share_percent a watched 401 code's share of all decisions in 5 minutes ...
    unauthorized_min_count     ... counted only when the code was seen at least this often (quiet APIs stay quiet)
    unauthorized_periods       consecutive 5-minute periods over the share
    latency_p99_ms             p99 decision latency over 5 minutes, for `latency_periods` periods
    throttles_count            (AWS) authorizer throttles in one minute
    errors_count               (AWS) authorizer function errors (crashes, timeouts) in 5 minutes
    gateway_5xx_count          (AWS) API Gateway 5xx answers in 5 minutes
    watched_401_codes          the codes that get an alarm of their own
    """

    key_fetch_failure_minutes: int = 5
    unavailable_count: int = 1
    unauthorized_share_percent: float = 20.0
    unauthorized_min_count: int = 20
    unauthorized_periods: int = 2
    latency_p99_ms: float = 250.0
    latency_periods: int = 3
    throttles_count: int = 1
    errors_count: int = 1
    gateway_5xx_count: int = 10
    watched_401_codes: tuple[str, ...] = field(default=DEFAULT_WATCHED_401_CODES)

    def __post_init__(self) -> None:
        for name in ("key_fetch_failure_minutes", "unauthorized_periods", "latency_periods"):
            if not 1 <= getattr(self, name) <= 60:
                raise ValueError(f"{name} must be 1..60 periods, got {getattr(self, name)!r}")
        if not 0 < self.unauthorized_share_percent <= 100:
            raise ValueError(f"unauthorized_share_percent must be in (0, 100], got {self.unauthorized_share_percent}")
        not_401 = sorted(set(self.watched_401_codes) - UNAUTHORIZED_CODES)
        if not_401:
            raise ValueError(f"watched_401_codes {not_401} are not 401 codes of lambdas.validation.errors.CODES; "
                             f"choose from {', '.join(sorted(UNAUTHORIZED_CODES))}")


@dataclass(frozen=True)
class Alarm:
    """One alarm: its name, what it means when it fires, and what to do."""

    name: str
    means: str
    action: str
    clouds: tuple[str, ...] = ("aws", "gcp", "azure")


ALARMS = {
    "key_fetch_failures": Alarm(
        "KeyFetchFailures",
        "fetching an issuer's keys (JWKS or discovery document) failed in each of the last {key_fetch_failure_minutes} "
        "minutes. Tokens are still checked against the cached keys, stale for a bounded time, and then refused.",
        "Read the authorizer's log for the URL and the reason (timeout, HTTP status, malformed, over the size cap); "
        "check the issuer's status page and this runtime's egress (NAT, proxy, DNS, firewall)."),
    "unavailable": Alarm(
        "Unavailable",
        "the authorizer answered 'unavailable' (API Gateway 500, forward-auth 503): no usable keys for the token's "
        "issuer, so requests fail closed.",
        "Fix key fetching first (see KeyFetchFailures); on API Gateway map the AUTHORIZER_FAILURE gateway response "
        "to 503 so clients retry."),
    "unauthorized": Alarm(
        "Unauthorized-<code>",
        "is more than {unauthorized_share_percent:g}% of decisions (at least {unauthorized_min_count} of them) for "
        "{unauthorized_minutes} minutes.",
        "Each code's likely cause is in the README's Operating authgate section; the audit lines name the client_id "
        "and route of each refusal."),
    "latency_p99": Alarm(
        "LatencyP99",
        "the p99 decision latency is above {latency_p99_ms:g} ms for {latency_minutes} minutes.",
        "Usually key fetches on the request path (KeyFetchLatency, KeyFetches) or cold starts: check the issuer's "
        "latency and the function's memory size."),
    "authorizer_throttles": Alarm(
        "AuthorizerThrottles",
        "Lambda throttled the authorizer; API Gateway answers those requests 500.",
        "Raise the account's or the function's concurrency, or the authorizer cache TTL.", clouds=("aws",)),
    "authorizer_errors": Alarm(
        "AuthorizerErrors",
        "the authorizer function errored beyond the errors it raises on purpose (every unavailable answer, and every "
        "401 on REST and WebSocket, which API Gateway reads from a raise): crashes or timeouts.",
        "Read the function's log (a misconfiguration is logged once at init and every request then fails).",
        clouds=("aws",)),
    "gateway_5xx": Alarm(
        "Gateway5xx",
        "API Gateway answered {gateway_5xx_count} or more 5xx in 5 minutes.",
        "Authorizer failures (Unavailable, AuthorizerThrottles, AuthorizerErrors) or the backend: the access log's "
        "status and authorizer error fields say which.", clouds=("aws",)),
    "logout_unavailable": Alarm(
        "LogoutUnavailable",
        "the back-channel logout endpoint answered 503 in the last 5 minutes: the issuer's keys or the revocation "
        "table could not be reached, so a logout was not recorded and that session's tokens keep working on "
        "freshness: denylist routes until the issuer retries (not every issuer does) or they expire.",
        "Read the function's log (code and reason of each refusal); check the issuer's JWKS and the table "
        "(throttling, KMS key access).", clouds=("aws",)),
    "logout_errors": Alarm(
        "LogoutErrors",
        "the back-channel logout function errored or was throttled (crash, timeout, concurrency): the issuer got a "
        "5xx and the logout may not be recorded.",
        "Read the function's log (a misconfiguration is logged at init and every logout then fails); raise its "
        "concurrency if throttled.", clouds=("aws",)),
}

UNAUTHORIZED_ACTIONS = {
    "unknown_kid": "tokens are signed by a key the issuer does not publish: a rotation that published the new key "
                   "late, or tokens from another issuer or environment. Compare the tokens' kid with the JWKS.",
    "bad_signature": "signatures do not verify: altered tokens, or an issuer that reused a kid for a new key. If "
                     "legitimate clients are affected, check the issuer's rotation.",
    "expired": "clients send expired tokens: a client that does not refresh, or a clock running behind (the leeway "
               "is bounded). The audit lines name the client_id.",
    "not_yet_valid": "tokens are not valid yet: the issuer's or this runtime's clock is ahead. Check NTP.",
    "issued_in_future": "tokens are issued in the future: clock skew between issuer and authorizer. Check NTP.",
    "invalid_audience": "tokens are for another audience: a client requesting the wrong resource, or a policy whose "
                        "audiences changed. Compare the policy's audiences with what the client requests.",
    "unknown_issuer": "tokens come from an issuer the policy or the route does not trust: a client pointed at "
                      "another environment, or a policy missing an issuer.",
    "wrong_token_use": "ID tokens are sent where access tokens are required (or the reverse): a client bug.",
    "alg_not_allowed": "tokens use an algorithm the issuer's allow-list refuses: an issuer that changed its signing "
                       "algorithm, or forged tokens.",
    "malformed": "requests carry no token or a malformed one: unauthenticated traffic or a broken client.",
}
UNAUTHORIZED_ACTION_DEFAULT = "the audit lines name the client_id and route of each refusal with this code."


def _facts(thresholds: AlarmThresholds) -> dict:
    return {**thresholds.__dict__, "unauthorized_minutes": thresholds.unauthorized_periods * 5,
            "latency_minutes": thresholds.latency_periods * 5}


def describe(key: str, api: str, thresholds: AlarmThresholds) -> str:
    """The alarm's description for one API: what it means, then what to do."""
    alarm = ALARMS[key]
    return f"authgate {api}: {alarm.means.format(**_facts(thresholds))} {alarm.action}"


def describe_unauthorized(code: str, api: str, thresholds: AlarmThresholds) -> str:
    """The description of the alarm on one watched 401 code."""
    means = ALARMS["unauthorized"].means.format(**_facts(thresholds))
    action = UNAUTHORIZED_ACTIONS.get(code, UNAUTHORIZED_ACTION_DEFAULT)
    return f"authgate {api}: 401 {code} ({CODES[code]}) {means} Likely: {action}"


def describe_unauthorized_split(api: str, thresholds: AlarmThresholds) -> str:
    """The description of one rule that alerts per watched 401 code (split by code)."""
    alarm = ALARMS["unauthorized"]
    return (f"authgate {api}: a watched 401 code ({', '.join(thresholds.watched_401_codes)}) "
            f"{alarm.means.format(**_facts(thresholds))} One alert per code. {alarm.action}")
