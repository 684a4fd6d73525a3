"""Decoding a compact JWS (RFC 7515 7.1) safely: size limits before decoding, strict base64url, strict JSON objects.

Nothing here trusts the token: the size limits are checked on the raw string before any base64 or JSON work, JSON must
be UTF-8, an object, free of duplicate member names, of NaN/Infinity and of lone surrogates, and nested at most
MAX_JSON_DEPTH deep. Every walk over a decoded value is iterative: a recursive one costs a Python frame per nesting
level, and a few hundred levels (well inside the size limits) would raise RecursionError out of the decoder. Whatever
the input, only TokenRejected leaves decode_token (the property tests generate deep nesting to hold that).
"""
from __future__ import annotations

import json
from binascii import Error as B64Error, a2b_base64
from typing import Any

from .errors import TokenRejected
from .jwk import _B64URL_INDEX, _B64URL_TO_STD, _PADDING, _SPARE_BITS, SUPPORTED_ALGORITHMS, b64url_decode

MAX_TOKEN_CHARS = 16 * 1024       # far above real tokens (Entra with many groups ~ 6 KB), far below abuse
MAX_HEADER_CHARS = 2048           # a JOSE header is alg/kid/typ and a few more; 2 KB is generous
MAX_KID_CHARS = 256
# Containers inside containers, the top-level object counting as 1. Real claims sets nest 3 or 4 deep (Keycloak's
# resource_access.<client>.roles, Kubernetes' kubernetes.io.pod); the bound keeps every later reader of the claims
# (audit logs, explain, json.dumps) far from any recursion limit.
MAX_JSON_DEPTH = 32
# Header members that point at keys. The key for a token comes only from its issuer's configuration, never from the
# token itself (RFC 8725 3.10), so these are ignored, not followed.
TOKEN_SUPPLIED_KEY_MEMBERS = ("jku", "x5u", "jwk", "x5c")
# Extensions listed in "crit" that this verifier implements. None: any "crit" makes the token unacceptable
# (RFC 7515 4.1.11: a recipient MUST reject a JWS whose crit lists an extension it does not understand).
UNDERSTOOD_CRITICAL_EXTENSIONS: frozenset[str] = frozenset()


def _reject_duplicates(pairs: list) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise ValueError(f"duplicate member name {dup[:40]!r}")
    return obj


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    # A literal like 1e400 is valid JSON but overflows to infinity, which JSON cannot express: a claim holding it
    # would come back out of Principal.as_dict() as "Infinity", which no JSON parser accepts.
    value = float(text)
    if value - value != 0.0:
        raise ValueError(f"the number {text[:40]} is too large to represent")
    return value


_DECODER = json.JSONDecoder(object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant,
                            parse_float=_finite_float)
_SCAN = _DECODER.scan_once
# The same grammar without the per-object Python hook; used only where duplicates are ruled out another way.
_PLAIN_SCAN = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float).scan_once


def _has_lone_surrogate(value: Any) -> bool:
    """Whether any string (member name or value) in the decoded JSON holds an unpaired UTF-16 surrogate."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str:
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return True
        elif kind is dict:
            stack.extend(item)
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
    return False


def _nesting_exceeds(value: Any, limit: int) -> bool:
    """Whether containers nest more than `limit` deep in `value` (a dict or list counts 1 at the top)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        for child in (item.values() if type(item) is dict else item):
            if type(child) is dict or type(child) is list:
                stack.append((child, depth + 1))
    return False


def _may_nest_too_deeply(text: str) -> bool:
    # Nesting deeper than the bound needs more than that many brackets: a cheap pre-test on the text, so the walk
    # runs only for the rare document that has many of them.
    return text.count("{") + text.count("[") > MAX_JSON_DEPTH


def decode_json_object(raw: bytes, part: str, *, subject: str | None = None) -> dict:
    """Strict JSON object from UTF-8 bytes; raises TokenRejected("malformed") naming the problem and what was read:
    `subject`, by default "the token <part>" (a guard reading a platform's identity header names the header)."""
    subject = subject or f"the token {part}"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise TokenRejected("malformed", f"{subject} is not valid UTF-8",
                            hint="JOSE headers and claims sets are UTF-8 JSON (RFC 7515 5.1)") from None
    try:
        try:
            # Fast path: the C scanner without the whitespace-skipping wrapper; falls back for any other layout.
            value, end = _SCAN(text, 0)
            if end != len(text):
                raise StopIteration
        except StopIteration:
            value = _DECODER.decode(text)
    except StopIteration:
        raise TokenRejected("malformed", f"{subject} is not JSON") from None
    except RecursionError:
        raise TokenRejected("malformed", f"{subject} nests JSON too deeply") from None
    except ValueError as exc:  # JSONDecodeError, duplicate members, NaN/Infinity, oversized integers
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise TokenRejected("malformed", f"{subject} is not acceptable JSON: {reason}",
                            hint="JSON members must be unique; NaN, Infinity and numbers that overflow a double are "
                                 "not accepted") from None
    if type(value) is not dict:
        raise TokenRejected("malformed", f"{subject} is JSON but not an object",
                            expected="object", found=type(value).__name__)
    if _may_nest_too_deeply(text) and _nesting_exceeds(value, MAX_JSON_DEPTH):
        raise TokenRejected("malformed", f"{subject} nests JSON more than {MAX_JSON_DEPTH} levels deep",
                            expected=f"at most {MAX_JSON_DEPTH} levels", hint="real claims sets nest a few levels; "
                            "flatten the claim or issue it as a string")
    if "\\u" in text and _has_lone_surrogate(value):
        raise TokenRejected("malformed", f"{subject} contains a lone UTF-16 surrogate escape",
                            hint="strings must be valid Unicode (RFC 8259 8.2)")
    return value


def check_header(header: dict) -> None:
    """Header rules that do not depend on the issuer: a supported alg, a sane kid, no unknown critical extensions."""
    alg = header.get("alg")
    if type(alg) is not str:
        raise TokenRejected("malformed", 'the token header has no "alg" string', expected="alg", found=None)
    if alg not in SUPPORTED_ALGORITHMS:
        shown = alg[:20]
        if alg.lower() == "none":
            hint = "unsigned tokens are never accepted"
        elif alg.upper().startswith("HS"):
            hint = "HMAC (shared-secret) tokens are not accepted: issuers must sign with an asymmetric key"
        else:
            hint = "sign tokens with one of " + ", ".join(sorted(SUPPORTED_ALGORITHMS))
        raise TokenRejected("unsupported_alg", f"the token alg {shown!r} is not a supported signature algorithm",
                            expected=sorted(SUPPORTED_ALGORITHMS), found=shown, hint=hint)
    # A member that is present must hold its type: JSON null is not "absent" (a null kid would otherwise select the
    # one-key rule for a token that names a key).
    kid = header.get("kid")
    if "kid" in header and (type(kid) is not str or len(kid) > MAX_KID_CHARS):
        raise TokenRejected("malformed", f'the token header "kid" must be a string of at most {MAX_KID_CHARS} '
                            "characters", found=type(kid).__name__)
    typ = header.get("typ")
    if "typ" in header and type(typ) is not str:
        raise TokenRejected("malformed", 'the token header "typ" must be a string', found=type(typ).__name__)
    if "crit" in header:
        crit = header["crit"]
        if type(crit) is not list or not crit or not all(type(c) is str for c in crit):
            raise TokenRejected("malformed", 'the token header "crit" must be a non-empty array of names '
                                "(RFC 7515 4.1.11)")
        unknown = [c for c in crit if c not in UNDERSTOOD_CRITICAL_EXTENSIONS]
        if unknown:
            raise TokenRejected("malformed", "the token marks header extension(s) as critical that this verifier "
                                "does not implement", expected=sorted(UNDERSTOOD_CRITICAL_EXTENSIONS),
                                found=[c[:40] for c in unknown[:5]],
                                hint="RFC 7515 4.1.11 requires rejecting such tokens; do not issue them with crit")
    if header.get("b64", True) is not True:
        # RFC 7797 unencoded payloads change what the signature covers; refuse rather than misinterpret.
        raise TokenRejected("malformed", 'the token header sets "b64" (RFC 7797 unencoded payload), which is '
                            "not supported for JWTs")


def split_token(token: Any) -> tuple[bytes, bytes, bytes]:
    """(header segment, payload segment, signature segment) as ASCII bytes, after the size and shape limits."""
    if type(token) is not str:
        if isinstance(token, (bytes, bytearray)):
            try:
                token = bytes(token).decode("ascii")
            except UnicodeDecodeError:
                raise TokenRejected("malformed", "the token contains non-ASCII bytes") from None
        else:
            raise TokenRejected("malformed", f"a token must be a string, got {type(token).__name__}")
    if len(token) > MAX_TOKEN_CHARS:
        raise TokenRejected("token_too_large", f"the token is {len(token)} characters; at most {MAX_TOKEN_CHARS} "
                            "are accepted", expected=MAX_TOKEN_CHARS, found=len(token),
                            hint="trim the claims (e.g. group overage) or raise the limit deliberately")
    try:
        raw = token.encode("ascii")
    except UnicodeEncodeError:
        raise TokenRejected("malformed", "the token contains non-ASCII characters",
                            hint="a compact JWS is base64url segments joined by '.'") from None
    dots = raw.count(b".")
    if dots != 2:
        if dots == 4:
            raise TokenRejected("malformed", "the token has 5 segments: it is an encrypted JWE, not a signed JWT",
                                expected="3 segments", found="5 segments",
                                hint="ask the issuer for signed (not encrypted) access tokens")
        raise TokenRejected("malformed", f"a JWT has 3 dot-separated segments, this token has {dots + 1}",
                            expected="3 segments", found=f"{dots + 1} segments",
                            hint="pass the bare token, without a 'Bearer ' prefix or surrounding quotes")
    header_segment, payload_segment, signature_segment = raw.split(b".")
    if len(header_segment) > MAX_HEADER_CHARS:
        raise TokenRejected("token_too_large", f"the token header is {len(header_segment)} characters; at most "
                            f"{MAX_HEADER_CHARS} are accepted", expected=MAX_HEADER_CHARS,
                            found=len(header_segment))
    # An empty payload is a valid JWS (and is then refused as a claims set); an empty header or signature is not.
    if not header_segment or not signature_segment:
        raise TokenRejected("malformed", "the token has an empty header or signature segment (an unsigned JWS)",
                            hint="tokens must carry a header, a claims set and a signature")
    return header_segment, payload_segment, signature_segment


def decode_segment(segment: bytes, part: str) -> bytes:
    try:
        return b64url_decode(segment)
    except ValueError as exc:
        raise TokenRejected("malformed", f"the token {part} is not valid base64url: {exc}") from None


class HeaderCache:
    """Decoded, checked headers by their encoded form: an issuer's tokens share a handful of distinct headers, so
    the base64 and JSON work for the header is done once per distinct header instead of once per token."""

    __slots__ = ("_entries", "_max")

    def __init__(self, max_entries: int = 256) -> None:
        self._entries: dict[bytes, dict] = {}
        self._max = max_entries

    def decode(self, segment: bytes) -> dict:
        header = self._entries.get(segment)
        if header is not None:
            return header
        header = decode_json_object(decode_segment(segment, "header"), "header")
        check_header(header)
        if len(self._entries) >= self._max:
            self._entries.clear()  # distinct headers beyond the bound mean abuse or churn; start over
        self._entries[segment] = header
        return header


def _member_count(obj: dict) -> int:
    """How many members the objects in `obj` have, its own included."""
    n = 0
    stack: list = [obj]
    while stack:
        item = stack.pop()
        if type(item) is dict:
            n += len(item)
            values = item.values()
        else:
            values = item
        for value in values:
            kind = type(value)
            if kind is dict or kind is list:
                stack.append(value)
    return n


def decode_token_fast(token: str, headers: HeaderCache) -> tuple[dict, dict, bytes, bytes] | None:
    """decode_token for well-formed tokens with an already-seen header; None means "take decode_token", which then
    either succeeds the same way or raises the precise TokenRejected. It never accepts what decode_token refuses.

    The claims JSON is parsed without the per-object duplicate-member hook: when the text has no backslash and no
    whitespace before a colon, every unescaped '"' followed by ':' ends a member name and nothing else does, so the
    count of '":' is the number of member names in the text, and the parsed objects hold that many members exactly
    when no name repeated. Anything else (escapes, pretty-printed JSON, deep nesting) goes to the careful decoder."""
    if len(token) > MAX_TOKEN_CHARS:
        return None
    try:
        raw = token.encode("ascii")
    except UnicodeEncodeError:
        return None
    signing_input, _, signature_segment = raw.rpartition(b".")
    header_segment, dot, payload_segment = signing_input.partition(b".")
    header = headers._entries.get(header_segment)
    if header is None or not dot or not payload_segment or not signature_segment or b"." in payload_segment:
        return None
    # b64url_bytes of both segments, written out: this runs for every new token, and the two calls were a tenth of
    # the decoding's Python time. Same rules (see b64url_bytes): no length of 1 mod 4, lenient binascii with an exact
    # length check, and no stray bits in the last character; tests/security/test_fast_decoder_base64.py holds it.
    payload_rest = len(payload_segment) & 3
    signature_rest = len(signature_segment) & 3
    if payload_rest == 1 or signature_rest == 1:
        return None
    try:
        payload = a2b_base64(payload_segment.translate(_B64URL_TO_STD) + _PADDING[payload_rest])
        signature = a2b_base64(signature_segment.translate(_B64URL_TO_STD) + _PADDING[signature_rest])
    except B64Error:
        return None
    if (len(payload) != len(payload_segment) * 3 >> 2 or len(signature) != len(signature_segment) * 3 >> 2
            or (payload_rest and _B64URL_INDEX[payload_segment[-1]] & _SPARE_BITS[payload_rest])
            or (signature_rest and _B64URL_INDEX[signature_segment[-1]] & _SPARE_BITS[signature_rest])):
        return None
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return None
    # Whitespace before a ':' would hide a member name from the '":' count below: such text takes the careful path.
    if "\\" in text or "\n" in text or "\t" in text or "\r" in text or " :" in text:
        return None
    try:
        claims, end = _PLAIN_SCAN(text, 0)
    except (StopIteration, ValueError, RecursionError):
        return None
    if end != len(text) or type(claims) is not dict:
        return None
    names = text.count('":')
    if names == len(claims):
        # Every member name is the top object's, so any nested object is empty: a chain of containers deeper than
        # MAX_JSON_DEPTH (the top object being level 1) holds an array at each of levels 2 to MAX_JSON_DEPTH, one '['
        # each at least. Fewer '[' in the text rule it out without counting '{' as well (the usual flat claims set).
        if text.count("[") >= MAX_JSON_DEPTH - 1 and _nesting_exceeds(claims, MAX_JSON_DEPTH):
            return None
    elif names != _member_count(claims) or (  # _may_nest_too_deeply, written out
            text.count("{") + text.count("[") > MAX_JSON_DEPTH and _nesting_exceeds(claims, MAX_JSON_DEPTH)):
        return None
    return header, claims, signing_input, signature


def decode_token(token: Any, headers: HeaderCache | None = None) -> tuple[dict, dict, bytes, bytes]:
    """(header, claims, signing input, signature) of a compact JWS, every structural rule checked."""
    header_segment, payload_segment, signature_segment = split_token(token)
    if headers is not None:
        header = headers.decode(header_segment)
    else:
        header = decode_json_object(decode_segment(header_segment, "header"), "header")
        check_header(header)
    claims = decode_json_object(decode_segment(payload_segment, "claims set"), "claims set")
    signature = decode_segment(signature_segment, "signature")
    return header, claims, header_segment + b"." + payload_segment, signature
