"""Azure API Management, emulated from the rendered policy XML (render_apim + render_apim_operations).

The XML is parsed with defusedxml and interpreted element by element, in order, for the operation a request matches:
`<base />` runs the API-level policy there; `set-header` with `exists-action="delete"` drops a header and with
`override` sets it (literal values, and the `(Jwt)context.Variables[...]` expressions the renderer writes:
`jwt.Subject`, `jwt.Issuer`, `jwt.Claims.GetValueOrDefault(name, fallback)`, `??`); `validate-jwt` checks the token
through lambdas.validation configured from the element (openid-config url or issuer-signing-keys, audiences,
issuers, clock-skew, require-expiration-time, header-name + require-scheme) and then its required-claims (match
any/all, separator); on failure the request ends with failed-validation-httpcode and -error-message.
`choose` runs the first `when` whose condition holds, else its `otherwise`; the conditions understood are the
renderer's issuer dispatch, `@(context.Request.Headers.GetValueOrDefault("Authorization", "").AsJwt()?.Issuer ==
"<iss>")`, read as APIM's AsJwt does (the optional Bearer scheme stripped, the payload decoded, nothing verified),
and its bound-token refusal, `@(((Jwt)context.Variables["<var>"]).Claims.ContainsKey("<claim>"))`, on the token
a validate-jwt verified into that variable.
`return-response` (set-status, literal set-header and set-body) ends the request with that answer.
`rate-limit-by-key` counts calls per evaluated counter-key in a sliding window of renewal-period seconds and answers
429 past `calls`, as APIM does (the key expressions understood are the renderer's: the caller from the validated
token, or `context.Request.IpAddress`, the client address the gateway sees). Any other element or expression is an
error: the emulator never skips a rule it does not understand.
"""
from __future__ import annotations

import base64
import json
import math
import re
import threading
import time
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import urlsplit
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeXml

from lambdas.validation import IssuerConfig, TokenRejected, Verifier
from sandbox.gateways.routing import APIM, GATEWAYS
from sandbox.gateways.server import Decision

NAME = APIM
# validate-jwt accepts RSA and EC signatures; HMAC would need a shared secret in the policy (never rendered).
APIM_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
# Every attribute of rate-limit-by-key the renderer writes; any other one (increment-condition, ...) is not emulated.
RATE_LIMIT_ATTRIBUTES = frozenset({"calls", "renewal-period", "counter-key"})
DISCOVERY_TIMEOUT_SECONDS = 5
MAX_KID_VERIFIERS = 64
# AsJwt() reads a header value no larger than a token the validation module would accept at all.
MAX_DISPATCH_HEADER_BYTES = 16 * 1024
_ISSUER_CONDITION = re.compile(
    r'@\(\s*context\.Request\.Headers\.GetValueOrDefault\(\s*"([^"\\]+)"\s*,\s*""\s*\)\.AsJwt\(\)\?\.Issuer\s*==\s*'
    r'"((?:[^"\\]|\\["\\])*)"\s*\)', re.S)
_CLAIM_CONDITION = re.compile(
    r'@\(\s*\(\s*\(Jwt\)\s*context\.Variables\[\s*"(\w+)"\s*\]\s*\)\.Claims\.ContainsKey\(\s*"([^"\\]+)"\s*\)\s*\)')


class ApimEmulationError(ValueError):
    """The policy XML uses something the emulator cannot interpret faithfully."""


@dataclass(frozen=True)
class ClaimRule:
    name: str
    match: str                       # any | all
    separator: str | None
    values: tuple[str, ...]

    def failure(self, claims: Mapping[str, Any]) -> str | None:
        raw = claims.get(self.name)
        if raw is None:
            return f"claim {self.name} is missing"
        items = raw if isinstance(raw, list) else [raw]
        present: set[str] = set()
        for item in items:
            text = item if isinstance(item, str) else json.dumps(item)
            present.update(p for p in (text.split(self.separator) if self.separator else [text]) if p)
        wanted = set(self.values)
        ok = wanted <= present if self.match == "all" else bool(wanted & present)
        return None if ok else f"claim {self.name} needs {self.match} of {sorted(wanted)}"


class JwtValidation:
    """One <validate-jwt> element, ready to run."""

    def __init__(self, element: Element, *, fetch_json=None) -> None:
        attrs = element.attrib
        for unsupported in ("query-parameter-name", "token-value"):
            if unsupported in attrs:
                raise ApimEmulationError(f"validate-jwt {unsupported} is not emulated (only header-name)")
        self.header = attrs.get("header-name", "").lower()
        if not self.header:
            raise ApimEmulationError("validate-jwt without header-name")
        self.scheme = attrs.get("require-scheme")
        self.status = int(attrs.get("failed-validation-httpcode", "401"))
        self.message = attrs.get("failed-validation-error-message", "JWT not present.")
        self.output_variable = attrs.get("output-token-variable-name")
        if attrs.get("require-signed-tokens", "true").lower() != "true":
            raise ApimEmulationError("validate-jwt require-signed-tokens=false would accept unsigned tokens; the "
                                     "emulator (and authgate) never does")
        require_exp = attrs.get("require-expiration-time", "true").lower() == "true"
        skew = int(attrs.get("clock-skew", "0"))
        fetch_json = fetch_json or _fetch_json
        issuers = [i.text.strip() for i in element.findall("issuers/issuer") if i.text and i.text.strip()]
        audiences = [a.text.strip() for a in element.findall("audiences/audience") if a.text and a.text.strip()]
        if not audiences:
            raise ApimEmulationError("validate-jwt without <audiences> (aud unchecked) is not emulated")
        discovered = {}
        for config in element.findall("openid-config"):
            url = config.attrib.get("url", "")
            document = fetch_json(url)
            discovered[document.get("issuer")] = document.get("jwks_uri")
        keys = [_rsa_jwk(k) for k in element.findall("issuer-signing-keys/key")]
        if not issuers:
            issuers = [i for i in discovered if i]
        self._issuer_settings = dict(issuers=issuers, audiences=audiences, skew=skew, require_exp=require_exp)
        self._signing_keys = keys
        self._by_kid: dict[tuple[str, int], Verifier] = {}
        configs = []
        for index, issuer in enumerate(issuers if not keys else ()):
            source: dict[str, Any]
            if issuer in discovered:
                source = {"jwks_uri": discovered[issuer]}
            elif len(discovered) == 1:
                source = {"jwks_uri": next(iter(discovered.values()))}
            else:
                raise ApimEmulationError(f"validate-jwt: no key source for issuer {issuer}")
            loopback = any(urlsplit(u or "").hostname in ("127.0.0.1", "localhost", "::1")
                           for u in (issuer, source.get("jwks_uri")))
            configs.append(IssuerConfig(issuer, audiences, algorithms=APIM_ALGORITHMS, name=f"issuer{index}",
                                        leeway_seconds=skew, require_exp=require_exp, token_use=None,
                                        allow_insecure_http=loopback, **source))
        if not configs and not (keys and issuers):
            raise ApimEmulationError("validate-jwt names no issuer and no openid-config")
        self.verifier = Verifier(configs) if configs else None
        self.claims = tuple(
            ClaimRule(c.attrib["name"], c.attrib.get("match", "all"), c.attrib.get("separator"),
                      tuple(v.text or "" for v in c.findall("value")))
            for c in element.findall("required-claims/claim"))
        self.summary = (f"validate-jwt ({self.status}): signature, iss in {issuers}, aud in {audiences}, exp, "
                        f"skew {skew}s" + "".join(f", {c.name} {c.match} of {list(c.values)}" for c in self.claims))

    def run(self, headers: Mapping[str, str]) -> tuple[Any, TokenRejected | None]:
        value = headers.get(self.header, "").strip()
        if self.scheme:
            scheme, _, rest = value.partition(" ")
            value = rest.strip() if scheme.lower() == self.scheme.lower() else ""
        if not value:
            return None, TokenRejected("malformed", "JWT not present")
        try:
            principal = self._authenticate(value)
        except TokenRejected as err:
            return None, err
        for rule in self.claims:
            failure = rule.failure(principal.claims)
            if failure:
                return None, TokenRejected("claim_mismatch", failure)
        return principal, None


    def _authenticate(self, token: str) -> Any:
        if self.verifier is not None:
            return self.verifier.authenticate(token)
        # issuer-signing-keys carry no key ids: APIM tries each key. The token's kid (read only to label the key,
        # never trusted) is given to each configured key in turn, one small verifier per (kid, key).
        kid = _unverified_kid(token)
        last: TokenRejected | None = None
        for index, jwk in enumerate(self._signing_keys):
            verifier = self._by_kid.get((kid, index))
            if verifier is None:
                if len(self._by_kid) >= MAX_KID_VERIFIERS:
                    self._by_kid.clear()
                settings = self._issuer_settings
                verifier = Verifier([IssuerConfig(
                    issuer, settings["audiences"], jwks={"keys": [dict(jwk, kid=kid)]}, algorithms=APIM_ALGORITHMS,
                    name=f"issuer{n}", leeway_seconds=settings["skew"], require_exp=settings["require_exp"],
                    token_use=None) for n, issuer in enumerate(settings["issuers"])])
                self._by_kid[(kid, index)] = verifier
            try:
                return verifier.authenticate(token)
            except TokenRejected as err:
                last = err
                if err.code != "bad_signature":
                    raise
        raise last or TokenRejected("unknown_kid", "no signing key configured")


def _unverified_kid(token: str) -> str:
    try:
        header = token.split(".", 1)[0]
        kid = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))).get("kid")
    except (ValueError, AttributeError):
        return "none"
    return kid if isinstance(kid, str) and 0 < len(kid) <= 128 else "none"


@dataclass(frozen=True)
class ApimOperationPolicy:
    route_key: str
    method: str
    url_template: str
    inbound: tuple[Element, ...] | None     # None: inherits the API policy (<base /> only)


def _inbound(xml: str, what: str) -> tuple[Element, ...]:
    root = SafeXml.fromstring(xml)
    if root.tag != "policies" or root.find("inbound") is None:
        raise ApimEmulationError(f"{what}: not a <policies> document with <inbound>")
    return tuple(root.find("inbound"))


class ApimEmulator:
    """An APIM API: its API-level policy, its operations (route key, method, URL template) and their policies."""

    name = NAME

    def __init__(self, api_policy_xml: str, operations: Sequence[tuple[str, str, str]],
                 operation_policies: Mapping[str, str], *, fetch_json=None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch_json
        self._clock = clock
        self._limits: dict[int, RateLimit] = {}
        self._validations: dict[int, JwtValidation] = {}
        self._branches: dict[int, tuple["IssuerBranch | ClaimBranch", ...]] = {}
        self._responses: dict[int, "ReturnResponse"] = {}
        self.api_inbound = _inbound(api_policy_xml, "API policy")
        self.operations: list[ApimOperationPolicy] = []
        for route_key, method, template in operations:
            xml = operation_policies.get(route_key)
            inbound = _inbound(xml, f"operation {route_key}") if xml else None
            self.operations.append(ApimOperationPolicy(route_key, method, template, inbound))
        unknown = set(operation_policies) - {op.route_key for op in self.operations}
        if unknown:
            raise ApimEmulationError(f"operation policies for routes that are not operations: {sorted(unknown)}")
        self.router = GATEWAYS[APIM].router((op.method, op.url_template, op) for op in self.operations)
        for element in self.api_inbound + tuple(e for op in self.operations for e in (op.inbound or ())):
            self._compile(element)

    def _compile(self, element: Element) -> None:
        if element.tag == "validate-jwt":
            self._validations[id(element)] = JwtValidation(element, fetch_json=self._fetch)
        elif element.tag == "choose":
            self._branches[id(element)] = _compile_choose(element)
            for branch in element:
                for child in branch:
                    self._compile(child)
        elif element.tag == "return-response":
            self._responses[id(element)] = _compile_return_response(element)
        elif element.tag == "rate-limit-by-key":
            self._limits[id(element)] = RateLimit.from_element(element)
        elif element.tag not in ("base", "set-header"):
            raise ApimEmulationError(f"policy element <{element.tag}> is not emulated")

    def match(self, method: str, path: str) -> ApimOperationPolicy | None:
        """The operation, selected as the runtime selects routes (sandbox/gateways/routing.py)."""
        return self.router.match(method, path)

    def decide(self, method: str, path: str, headers: Mapping[str, str], *,
               client_ip: str = "127.0.0.1") -> Decision:
        operation = self.match(method, path.split("?", 1)[0])
        if operation is None:
            return Decision(False, 404, {"statusCode": 404, "message": "Resource not found"}, "operation lookup",
                            "no_route")
        inbound = operation.inbound if operation.inbound is not None else (Element("base"),)
        state = _RequestState(dict(headers), client_ip=client_ip)
        refusal = self._run(inbound, state, in_operation=True)
        checked = f"{operation.route_key}: " + ("; ".join(state.checked) or "no token check (public operation)")
        if refusal is not None:
            status, message, code = refusal
            return Decision(False, status, {"statusCode": status, "message": message}, checked, code)
        return Decision(allowed=True, checked=checked,
                        set_headers={k: v for k, v in state.headers.items() if headers.get(k) != v},
                        drop_headers=frozenset(k for k in headers if k not in state.headers))

    def _run(self, elements: Sequence[Element], state: "_RequestState", *, in_operation: bool):
        for element in elements:
            if element.tag == "base":
                if in_operation:
                    refusal = self._run(self.api_inbound, state, in_operation=False)
                    if refusal is not None:
                        return refusal
            elif element.tag == "set-header":
                _set_header(element, state)
            elif element.tag == "validate-jwt":
                validation = self._validations[id(element)]
                state.checked.append(validation.summary)
                principal, error = validation.run(state.headers)
                if error is not None:
                    return validation.status, validation.message, error.code
                if validation.output_variable:
                    state.variables[validation.output_variable] = principal
            elif element.tag == "choose":
                branch = next((b for b in self._branches[id(element)] if b.applies(state)), None)
                if branch is None:
                    # APIM runs nothing when no <when> holds and there is no <otherwise>; so does the emulator.
                    state.checked.append("choose: no branch applies, nothing checked")
                    continue
                state.checked.append(branch.summary)
                refusal = self._run(branch.elements, state, in_operation=in_operation)
                if refusal is not None:
                    status, message, code = refusal
                    # An <otherwise> follows only the issuer dispatch's <when>s, so it means no listed issuer.
                    if code == "return_response":
                        code = branch.refusal_code
                    return status, message, code
            elif element.tag == "rate-limit-by-key":
                limit = self._limits[id(element)]
                wait = limit.admit(_evaluate(limit.counter_key, state), self._clock())
                state.checked.append(limit.summary)
                if wait is not None:
                    return 429, f"Rate limit is exceeded. Try again in {wait} seconds.", "rate_limited"
            elif element.tag == "return-response":
                response = self._responses[id(element)]
                state.checked.append(f"return-response {response.status}")
                return response.status, response.body, "return_response"
        return None


@dataclass(frozen=True)
class IssuerBranch:
    """One branch of an issuer-dispatch <choose>: a <when> for tokens whose (unverified) iss is `issuer`, or the
    <otherwise> (issuer None)."""
    issuer: str | None
    header: str
    elements: tuple[Element, ...]

    def applies(self, state: "_RequestState") -> bool:
        return self.issuer is None or _as_jwt_issuer(state.headers.get(self.header, "")) == self.issuer

    @property
    def summary(self) -> str:
        return "otherwise" if self.issuer is None else f"when iss == {self.issuer}"

    @property
    def refusal_code(self) -> str:
        return "unknown_issuer" if self.issuer is None else "return_response"


@dataclass(frozen=True)
class ClaimBranch:
    """A <when> for a verified token (the principal a validate-jwt stored in `variable`) that has claim `claim`,
    e.g. the renderer's refusal of bound tokens (cnf)."""
    variable: str
    claim: str
    elements: tuple[Element, ...]

    def applies(self, state: "_RequestState") -> bool:
        principal = state.variables.get(self.variable)
        if principal is None:
            raise ApimEmulationError(f"context.Variables[{self.variable!r}] is read before a validate-jwt sets it")
        return self.claim in principal.claims

    @property
    def summary(self) -> str:
        return f"when the token has claim {self.claim}"

    @property
    def refusal_code(self) -> str:
        return "bound_token" if self.claim == "cnf" else "return_response"


def _compile_choose(element: Element) -> tuple[IssuerBranch | ClaimBranch, ...]:
    branches: list[IssuerBranch | ClaimBranch] = []
    for index, branch in enumerate(element):
        if branch.tag == "when":
            condition = (branch.attrib.get("condition") or "").strip()
            has_claim = _CLAIM_CONDITION.fullmatch(condition)
            if has_claim:
                branches.append(ClaimBranch(has_claim.group(1), has_claim.group(2), tuple(branch)))
                continue
            found = _ISSUER_CONDITION.fullmatch(condition)
            if not found:
                raise ApimEmulationError(f"<when condition={condition[:100]!r}> is not emulated (only the issuer "
                                         "dispatch and the claim test authgate renders)")
            issuer = re.sub(r'\\(["\\])', r"\1", found.group(2))
            branches.append(IssuerBranch(issuer, found.group(1).lower(), tuple(branch)))
        elif branch.tag == "otherwise" and index == len(element) - 1 and index > 0:
            branches.append(IssuerBranch(None, "", tuple(branch)))
        else:
            raise ApimEmulationError(f"<choose> holds <when> elements and at most one <otherwise>, last; found "
                                     f"<{branch.tag}> at position {index + 1}")
    if not branches:
        raise ApimEmulationError("<choose> without any <when>")
    return tuple(branches)


def _as_jwt_issuer(header_value: str) -> str | None:
    """What APIM's AsJwt()?.Issuer gives for a header value: the iss of a JWT (optionally after "Bearer"), NOT
    verified; None when the value is no JWT or iss is no string."""
    value = header_value.strip()
    if not value or len(value) > MAX_DISPATCH_HEADER_BYTES:
        return None
    scheme, _, rest = value.partition(" ")
    if rest:
        if scheme.lower() != "bearer":
            return None
        value = rest.strip()
    parts = value.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    issuer = payload.get("iss") if isinstance(payload, dict) else None
    return issuer if isinstance(issuer, str) else None


@dataclass(frozen=True)
class ReturnResponse:
    """A <return-response>: the gateway answers itself; `body` is the message the client reads."""
    status: int
    body: str


def _compile_return_response(element: Element) -> ReturnResponse:
    status: int | None = None
    body = ""
    for child in element:
        if child.tag == "set-status":
            try:
                status = int(child.attrib.get("code", ""))
            except ValueError:
                raise ApimEmulationError(f"return-response set-status code {child.attrib.get('code')!r} is not a "
                                         "number") from None
        elif child.tag == "set-header":
            if any((v.text or "").startswith("@") for v in child.findall("value")):
                raise ApimEmulationError("return-response set-header with a policy expression is not emulated")
        elif child.tag == "set-body":
            text = child.text or ""
            if text.startswith("@") or child.attrib.get("template"):
                raise ApimEmulationError("return-response set-body with an expression or template is not emulated")
            body = text
        else:
            raise ApimEmulationError(f"<{child.tag}> inside return-response is not emulated")
    if status is None:
        raise ApimEmulationError("return-response without set-status (APIM would answer 200)")
    try:
        parsed = json.loads(body)
        message = parsed["message"] if isinstance(parsed, dict) and isinstance(parsed.get("message"), str) else body
    except ValueError:
        message = body
    return ReturnResponse(status, message)


class RateLimit:
    """A <rate-limit-by-key>: at most `calls` calls per counter key in any `period` seconds (APIM's sliding window).
    A refused call is not counted, so a caller that waits as told gets through."""

    def __init__(self, calls: int, period: int, counter_key: str) -> None:
        self.calls, self.period, self.counter_key = calls, period, counter_key
        self._lock = threading.Lock()
        self._calls: dict[str, deque] = {}

    @classmethod
    def from_element(cls, element: Element) -> "RateLimit":
        extra = set(element.attrib) - RATE_LIMIT_ATTRIBUTES
        if extra:
            raise ApimEmulationError(f"rate-limit-by-key {', '.join(sorted(extra))} is not emulated")
        try:
            calls, period = int(element.attrib["calls"]), int(element.attrib["renewal-period"])
            counter_key = element.attrib["counter-key"]
        except (KeyError, ValueError):
            raise ApimEmulationError("rate-limit-by-key needs whole-number calls and renewal-period and a "
                                     f"counter-key, got {dict(element.attrib)}") from None
        if calls < 1 or period < 1:
            raise ApimEmulationError(f"rate-limit-by-key calls ({calls}) and renewal-period ({period}) must be >= 1")
        return cls(calls, period, counter_key)

    @property
    def summary(self) -> str:
        return f"rate-limit-by-key {self.calls} calls / {self.period} s"

    def admit(self, key: str, now: float) -> int | None:
        """Count a call for `key`; None when it is within the limit, else whole seconds until the next one is."""
        with self._lock:
            recent = self._calls.setdefault(key, deque())
            while recent and recent[0] <= now - self.period:
                recent.popleft()
            if len(recent) >= self.calls:
                return max(1, math.ceil(recent[0] + self.period - now))
            recent.append(now)
            return None


@dataclass
class _RequestState:
    headers: dict[str, str]
    client_ip: str = "127.0.0.1"
    variables: dict[str, Any] = field(default_factory=dict)
    checked: list[str] = field(default_factory=list)


def _set_header(element: Element, state: _RequestState) -> None:
    name = element.attrib["name"].lower()
    action = element.attrib.get("exists-action", "override")
    if action == "delete":
        state.headers.pop(name, None)
        return
    values = [_evaluate(v.text or "", state) for v in element.findall("value")]
    if action == "skip" and name in state.headers:
        return
    if action == "append" and name in state.headers:
        values.insert(0, state.headers[name])
    if action not in ("override", "skip", "append"):
        raise ApimEmulationError(f"set-header exists-action={action!r} is not emulated")
    state.headers[name] = ",".join(values)


_EXPRESSION = re.compile(r'@\{\s*var (\w+) = \(Jwt\)context\.Variables\["([^"]+)"\];\s*return (.*);\s*\}', re.S)
_SINGLE_EXPRESSION = re.compile(r"@\((.*)\)", re.S)
_CLIENT_IP = "context.Request.IpAddress"


def _evaluate(text: str, state: _RequestState) -> str:
    """A literal value, or one of the expressions the renderer writes; anything else is refused."""
    if not text.startswith("@"):
        return text
    found = _EXPRESSION.fullmatch(text.strip())
    if found:
        variable, context_name, body = found.groups()
        principal = state.variables.get(context_name)
        if principal is None:
            raise ApimEmulationError(f"policy expression reads context variable {context_name!r}, which no "
                                     "validate-jwt set")
    else:
        single = _SINGLE_EXPRESSION.fullmatch(text.strip())
        if not single:
            raise ApimEmulationError(f"policy expression {text[:80]!r} is not emulated")
        variable, principal, body = None, None, single.group(1)
    value, rest = _sum(body.strip(), variable, principal, state)
    if rest.strip():
        raise ApimEmulationError(f"policy expression {body[:80]!r}: unexpected {rest[:40]!r}")
    return value


def _sum(text: str, variable: str | None, principal: Any, state: _RequestState) -> tuple[str, str]:
    """Terms joined by `+` (string concatenation, the only operator the renderer writes)."""
    value, rest = _expression(text, variable, principal, state)
    while rest.lstrip().startswith("+"):
        # `x + a ?? b` is `(x + a) ?? b` in C#: a term after `+` stops before `??`, which is then refused.
        more, rest = _expression(rest.lstrip()[1:], variable, principal, state, coalesce=False)
        value += more
    return value, rest


def _expression(text: str, variable: str | None, principal: Any, state: _RequestState, *,
                coalesce: bool = True) -> tuple[str, str]:
    """Parse one term at the start of text; returns (value, remaining text)."""
    text = text.lstrip()
    if text.startswith('"'):
        end = text.index('"', 1)
        return text[1:end], text[end + 1:]
    if text.startswith(_CLIENT_IP):
        return state.client_ip, text[len(_CLIENT_IP):]
    if variable is None:
        raise ApimEmulationError(f"policy expression {text[:60]!r} reads a token outside a validate-jwt variable")
    for member, attribute in (("Subject", "subject"), ("Issuer", "issuer")):
        prefix = f"{variable}.{member}"
        if text.startswith(prefix):
            value, rest = getattr(principal, attribute), text[len(prefix):].lstrip()
            if coalesce and rest.startswith("??"):
                # `??` binds looser than `+`: `a ?? b + c` is `a ?? (b + c)`.
                fallback, rest = _sum(rest[2:], variable, principal, state)
                value = value if value is not None else fallback
            return value or "", rest
    prefix = f"{variable}.Claims.GetValueOrDefault("
    if text.startswith(prefix):
        name, rest = _expression(text[len(prefix):], variable, principal, state)
        rest = rest.lstrip()
        if not rest.startswith(","):
            raise ApimEmulationError(f"GetValueOrDefault without a default near {rest[:40]!r}")
        fallback, rest = _expression(rest[1:], variable, principal, state)
        rest = rest.lstrip()
        if not rest.startswith(")"):
            raise ApimEmulationError(f"GetValueOrDefault not closed near {rest[:40]!r}")
        raw = principal.claims.get(name)
        # APIM's Jwt.Claims holds string arrays; GetValueOrDefault joins them with commas.
        value = ",".join(map(str, raw)) if isinstance(raw, list) else (str(raw) if raw is not None else fallback)
        return value, rest[1:]
    raise ApimEmulationError(f"policy expression {text[:60]!r} is not emulated")


def _rsa_jwk(key: Element) -> dict:
    if "n" not in key.attrib or "e" not in key.attrib:
        raise ApimEmulationError("issuer-signing-keys: only RSA keys given as n/e are emulated")
    return {"kty": "RSA", "n": key.attrib["n"], "e": key.attrib["e"]}


def _fetch_json(url: str) -> dict:
    parts = urlsplit(url)
    if parts.scheme != "https" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ApimEmulationError(f"openid-config url {url!r} must be https (loopback http only in the sandbox)")
    with urllib.request.urlopen(url, timeout=DISCOVERY_TIMEOUT_SECONDS) as resp:
        return json.load(resp)
