"""Public JSON Web Keys (RFC 7517/7518/8037) parsed once into ready-to-verify key objects, and key sets built from JWKS.

Everything here is built once per fetched key document so that verifying a signature costs one call into
`cryptography` with padding and hash objects that already exist. The EC and Ed25519 modules are imported only when
such a key appears, which keeps a cold start that only ever sees RSA keys short.
"""
from __future__ import annotations

import binascii
from typing import Any, Callable, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

# RFC 7518 3.3: "A key of size 2048 bits or larger MUST be used with these algorithms."
MIN_RSA_BITS = 2048
# Far beyond any issuer in use; bounds the cost an attacker-supplied JWKS can impose on every verify.
MAX_RSA_BITS = 8192

RSA_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
EC_CURVE_ALGORITHMS = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
EC_COORDINATE_BYTES = {"P-256": 32, "P-384": 48, "P-521": 66}
# "Ed25519" is the fully-specified name from RFC 9864 for what RFC 8037 calls "EdDSA" over Ed25519.
OKP_CURVE_ALGORITHMS = {"Ed25519": ("EdDSA", "Ed25519")}
SUPPORTED_ALGORITHMS = frozenset(RSA_ALGORITHMS) | frozenset(EC_CURVE_ALGORITHMS.values()) | {"EdDSA", "Ed25519"}
# The names a policy may allow, in the order they are documented (Ed25519 is read as EdDSA; one spelling there).
ASYMMETRIC_ALGORITHMS = RSA_ALGORITHMS + tuple(EC_CURVE_ALGORITHMS.values()) + ("EdDSA",)

# Members that only a private (or symmetric) key carries; a JWKS that publishes them is leaking a secret.
_PRIVATE_MEMBERS = {
    "RSA": ("d", "p", "q", "dp", "dq", "qi", "oth"),
    "EC": ("d",),
    "OKP": ("d",),
}

_B64URL_TO_STD = bytes.maketrans(b"-_+/=", b"+/!!!")  # "+", "/" and "=" become invalid so strict decoding refuses them
_PADDING = (b"", b"", b"==", b"=")
_B64URL_INDEX = {c: i for i, c in enumerate(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")}


_SPARE_BITS = (0, 0, 0b1111, 0b11)  # bits the last character carries beyond the data, by length mod 4


def b64url_bytes(segment: bytes) -> bytes | None:
    """The bytes of strict unpadded base64url (RFC 7515 2), or None when `segment` is not exactly that: no padding,
    no other alphabet, no stray bits in the last character, so one byte string has exactly one accepted encoding.

    binascii's lenient mode (cheaper than strict_mode, and this runs for every new token) with an exact length check
    is as strict: it skips every character outside the standard alphabet (the translation also turns "+", "/" and
    "=" into such characters), and each skipped character leaves fewer data characters, so fewer than 3n/4 bytes for
    a segment of n characters (or a padding error). A full-length result means every character was base64url.
    """
    remainder = len(segment) & 3
    if remainder == 1:
        return None
    try:
        raw = binascii.a2b_base64(segment.translate(_B64URL_TO_STD) + _PADDING[remainder])
    except binascii.Error:
        return None
    if len(raw) != len(segment) * 3 >> 2 or (remainder and _B64URL_INDEX[segment[-1]] & _SPARE_BITS[remainder]):
        return None
    return raw


def b64url_decode(segment: bytes) -> bytes:
    """b64url_bytes, raising ValueError that says what is wrong instead of returning None."""
    raw = b64url_bytes(segment)
    if raw is not None:
        return raw
    if len(segment) & 3 == 1:
        raise ValueError("base64url text has an impossible length")
    if not all(c in _B64URL_INDEX for c in segment):
        raise ValueError("not strict unpadded base64url (only A-Z a-z 0-9 - _ are allowed, no '=')")
    # The last character carries 4 (or 2) bits beyond the data; a canonical encoder sets them to zero.
    raise ValueError("base64url text is not canonical (non-zero trailing bits)")


def b64url_encode(data: bytes) -> str:
    """Unpadded base64url (RFC 7515 2), the one encoding JOSE thumbprints and hashes are compared in."""
    return binascii.b2a_base64(data, newline=False).rstrip(b"=").translate(_STD_TO_B64URL).decode("ascii")


_STD_TO_B64URL = bytes.maketrans(b"+/", b"-_")


class JsonWebKey:
    """An immutable public key parsed from a JWK, ready to verify JWS signatures."""

    __slots__ = ("kid", "kty", "alg", "crv", "use", "key_ops", "key_size", "public_key", "_verifiers")

    def __init__(self, *, kid: str | None, kty: str, alg: str | None, crv: str | None, use: str | None,
                 key_ops: tuple[str, ...] | None, key_size: int, public_key: Any,
                 verifiers: Mapping[str, Callable[[bytes, bytes], None]]) -> None:
        set_ = object.__setattr__
        set_(self, "kid", kid)
        set_(self, "kty", kty)
        set_(self, "alg", alg)
        set_(self, "crv", crv)
        set_(self, "use", use)
        set_(self, "key_ops", key_ops)
        set_(self, "key_size", key_size)
        set_(self, "public_key", public_key)
        # alg -> function(signature, signing_input) that raises InvalidSignature; only algs this key may verify.
        set_(self, "_verifiers", dict(verifiers))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("JsonWebKey is immutable")

    def __repr__(self) -> str:
        detail = f"crv={self.crv!r}" if self.crv else f"bits={self.key_size}"
        return f"JsonWebKey(kid={self.kid!r}, kty={self.kty!r}, alg={self.alg!r}, {detail})"

    @property
    def algorithms(self) -> tuple[str, ...]:
        """The JWS algorithms this key can verify (narrowed to its own "alg" member when it has one)."""
        return tuple(self._verifiers)

    def supports(self, alg: str) -> bool:
        return alg in self._verifiers

    def verify(self, alg: str, signing_input: bytes, signature: bytes) -> bool:
        """True when `signature` is a valid `alg` signature of `signing_input` under this key; False otherwise,
        including when the key cannot be used with `alg` at all."""
        verifier = self._verifiers.get(alg)
        if verifier is None:
            return False
        try:
            verifier(signature, signing_input)
        except (InvalidSignature, ValueError):
            return False
        return True


def parse_jwk(obj: Any) -> JsonWebKey:
    """Build a JsonWebKey from a JWK object. Raises ValueError saying what is wrong with the JWK and how to fix it."""
    if not isinstance(obj, Mapping):
        raise ValueError(f"a JWK must be a JSON object, got {type(obj).__name__}")
    kty = obj.get("kty")
    if not isinstance(kty, str):
        raise ValueError('JWK has no "kty" string member; expected "RSA", "EC" or "OKP"')
    kid = _optional_str(obj, "kid")
    alg = _optional_str(obj, "alg")
    use = _optional_str(obj, "use")
    key_ops = obj.get("key_ops")
    if key_ops is not None:
        if not isinstance(key_ops, list) or not all(isinstance(op, str) for op in key_ops):
            raise ValueError(f'JWK {kid!r}: "key_ops" must be an array of strings')
        if len(set(key_ops)) != len(key_ops):
            raise ValueError(f'JWK {kid!r}: "key_ops" lists an operation twice (RFC 7517 4.3)')
        key_ops = tuple(key_ops)
    if kty == "oct":
        raise ValueError(f"JWK {kid!r} is a symmetric (oct) key; only public RSA, EC and OKP keys verify tokens "
                         "(a shared secret must never be published or used to verify issuer-signed tokens)")
    private = _PRIVATE_MEMBERS.get(kty)
    if private is None:
        raise ValueError(f'JWK {kid!r} has unsupported kty {kty!r}; expected "RSA", "EC" or "OKP"')
    leaked = [m for m in private if m in obj]
    if leaked:
        raise ValueError(f"JWK {kid!r} contains private key member(s) {', '.join(leaked)}; publish only the public "
                         "part of the key")
    if alg is not None and alg not in SUPPORTED_ALGORITHMS:
        raise ValueError(f"JWK {kid!r} declares alg {alg!r}, which is not a supported signature algorithm "
                         f"({', '.join(sorted(SUPPORTED_ALGORITHMS))})")
    if kty == "RSA":
        public_key, key_size, crv, verifiers = _rsa_key(obj, kid)
    elif kty == "EC":
        public_key, key_size, crv, verifiers = _ec_key(obj, kid)
    else:
        public_key, key_size, crv, verifiers = _okp_key(obj, kid)
    if alg is not None:
        if alg not in verifiers:
            raise ValueError(f"JWK {kid!r} declares alg {alg!r}, which a {kty} key"
                             f"{' on ' + crv if crv else ''} cannot verify")
        verifiers = {alg: verifiers[alg]}
    return JsonWebKey(kid=kid, kty=kty, alg=alg, crv=crv, use=use, key_ops=key_ops, key_size=key_size,
                      public_key=public_key, verifiers=verifiers)


def _optional_str(obj: Mapping, name: str) -> str | None:
    value = obj.get(name)
    if value is not None and not isinstance(value, str):
        raise ValueError(f'JWK member "{name}" must be a string, got {type(value).__name__}')
    return value


def _member_bytes(obj: Mapping, name: str, kid: str | None) -> bytes:
    value = obj.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f'JWK {kid!r} is missing its "{name}" member (a base64url string)')
    try:
        return b64url_decode(value.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise ValueError(f'JWK {kid!r}: member "{name}" is not strict unpadded base64url') from None


_SHA = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}


def _rsa_key(obj: Mapping, kid: str | None):
    from cryptography.hazmat.primitives.asymmetric import rsa

    n_bytes = _member_bytes(obj, "n", kid)
    e_bytes = _member_bytes(obj, "e", kid)
    if n_bytes[0] == 0 or e_bytes[0] == 0:
        # RFC 7518 6.3.1: the octet sequence uses the minimum number of octets.
        raise ValueError(f"JWK {kid!r}: RSA modulus/exponent has leading zero octets (RFC 7518 6.3.1)")
    n = int.from_bytes(n_bytes, "big")
    e = int.from_bytes(e_bytes, "big")
    bits = n.bit_length()
    if bits < MIN_RSA_BITS:
        raise ValueError(f"JWK {kid!r}: RSA key is {bits} bits; at least {MIN_RSA_BITS} are required (RFC 7518 3.3)")
    if bits > MAX_RSA_BITS:
        raise ValueError(f"JWK {kid!r}: RSA key is {bits} bits; at most {MAX_RSA_BITS} are accepted")
    if e < 3 or e % 2 == 0 or e >= n:
        raise ValueError(f"JWK {kid!r}: RSA public exponent {e} is not valid (it must be odd, >= 3 and < n)")
    if has_roca_fingerprint(n):
        raise ValueError(f"JWK {kid!r}: RSA key has the ROCA fingerprint (CVE-2017-15361): its private key can be "
                         "computed from the public key; the issuer must replace it")
    if not _tested_at_build(n_bytes) and modulus_is_probably_prime(n):
        raise ValueError(f"JWK {kid!r}: RSA modulus is a prime, not a product of two primes: anyone can compute its "
                         "private exponent (d = e^-1 mod n-1) and forge tokens; the issuer must replace the key")
    try:
        public_key = rsa.RSAPublicNumbers(e, n).public_key()
    except ValueError as exc:
        raise ValueError(f"JWK {kid!r}: not a usable RSA public key ({exc})") from None
    verifiers: dict[str, Callable[[bytes, bytes], None]] = {}
    key_bytes = (bits + 7) // 8
    for size, hash_cls in _SHA.items():
        verifiers["RS" + size] = _bind_rsa_pkcs1(public_key, key_bytes, size)
        h = hash_cls()
        # RFC 7518 3.5: the salt is as long as the hash output, and MGF1 uses the same hash.
        pss = padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size)
        verifiers["PS" + size] = _bind_rsa_pss(public_key.verify, pss, h)
    return public_key, bits, None, verifiers


# ROCA (Nemec et al., CCS 2017): primes generated as k*M + (65537^a mod M) make n mod r fall in the subgroup that
# 65537 generates modulo every small prime r dividing M. A random modulus does so for all of these primes with
# negligible probability, so the test has no practical false positives. It runs once per key, at key-set parse time.
_ROCA_PRIMES = (3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97, 101,
                103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167)
_roca_subgroups: list[tuple[int, frozenset[int]]] = []


def has_roca_fingerprint(n: int) -> bool:
    if not _roca_subgroups:
        for r in _ROCA_PRIMES:
            members, x = {1}, 65537 % r
            while x not in members:
                members.add(x)
                x = x * 65537 % r
            _roca_subgroups.append((r, frozenset(members)))
    return all(n % r in members for r, members in _roca_subgroups)


# Miller-Rabin witnesses: a prime modulus passes them all, a composite one fails almost always at the first.
_MILLER_RABIN_BASES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)
_prime_verdicts: dict[int, bool] = {}


def modulus_is_probably_prime(n: int) -> bool:
    """True for a prime RSA modulus (whose private exponent anyone can compute), False for the composite modulus of a
    real key. Runs once per modulus (cached), at key-set parse time."""
    verdict = _prime_verdicts.get(n)
    if verdict is None:
        verdict = not _openssl_shows_composite(n) and _miller_rabin(n)
        if len(_prime_verdicts) >= 256:
            _prime_verdicts.clear()  # more distinct moduli than any issuer publishes: start over
        _prime_verdicts[n] = verdict
    return verdict


# SHA-256 (hex) of the moduli the deployment's builder tested composite with modulus_is_probably_prime (see
# vetted_keys.py, which fills it at a cold start from the record beside the route table).
_build_tested_moduli: set[str] = set()


def trust_tested_moduli(digests) -> None:
    """Skip the prime-modulus test for the moduli with these SHA-256 digests: a builder tested them (vetted_keys)."""
    _build_tested_moduli.update(digests)


def _tested_at_build(n_bytes: bytes) -> bool:
    if not _build_tested_moduli:
        return False
    import hashlib

    return hashlib.sha256(n_bytes).hexdigest() in _build_tested_moduli


def _openssl_shows_composite(n: int) -> bool:
    """Whether OpenSSL's RSA private-key validation refuses n as the prime factor p of the key (p = n, q = 3).

    A speed-up only: that validation runs OpenSSL's primality test in C, several times cheaper than the first
    Miller-Rabin round in Python (which costs about one 2048-bit modular exponentiation), and that matters at a cold
    start. Every other component is computed correctly for a prime n, so a refusal means n is composite. False
    ("not shown composite") leaves the verdict to Miller-Rabin, so the verdict never rests on OpenSSL's behaviour.
    """
    from cryptography.hazmat.primitives.asymmetric import rsa

    e, q = 65537, 3
    try:
        d = pow(e, -1, n - 1)  # lcm(n - 1, q - 1) is n - 1 for odd n
        numbers = rsa.RSAPrivateNumbers(n, q, d, d % (n - 1), d % (q - 1), pow(q, -1, n), rsa.RSAPublicNumbers(e, n * q))
    except ValueError:
        return False  # e not invertible modulo n - 1, or 3 divides n: Miller-Rabin decides
    try:
        numbers.private_key()
    except ValueError:
        return True
    return False


def _miller_rabin(n: int) -> bool:
    if n < 2 or n % 2 == 0:
        return n == 2
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for base in _MILLER_RABIN_BASES:
        x = pow(base, d, n)
        if x == 1 or x == n - 1:
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


# DER DigestInfo prefixes (RFC 8017 9.2 note 1), the parameters NULL present as in every JWS implementation.
_DIGEST_INFO = {
    "256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "512": bytes.fromhex("3051300d060960864801650304020305000440"),
}


def _bind_rsa_pkcs1(public_key, key_bytes: int, size: str):
    """RSASSA-PKCS1-v1_5 verification by encoding comparison (RFC 8017 8.2.2): the RSA public operation with
    OpenSSL's strict type-1 unpadding (00 01 FF..FF 00), then an exact comparison with DigestInfo || H(m).

    Equivalent to cryptography's verify(), and several microseconds cheaper per call because the digest is computed
    by hashlib directly instead of through a fresh signature context. Comparing the whole encoded T (never parsing
    the ASN.1) is what rules out Bleichenbacher-style forgeries with trailing garbage.
    """
    import hashlib

    recover = public_key.recover_data_from_signature
    pkcs1 = padding.PKCS1v15()
    prefix = _DIGEST_INFO[size]
    digest = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}[size]

    def verify_rsa_pkcs1(signature: bytes, signing_input: bytes) -> None:
        # RFC 8017 8.2.2 step 1: the signature is exactly k octets.
        if len(signature) != key_bytes:
            raise InvalidSignature
        if recover(signature, pkcs1, None) != prefix + digest(signing_input).digest():
            raise InvalidSignature
    return verify_rsa_pkcs1


def _bind_rsa_pss(verify, pad, h):
    def verify_rsa_pss(signature: bytes, signing_input: bytes) -> None:
        verify(signature, signing_input, pad, h)
    return verify_rsa_pss


def _ec_key(obj: Mapping, kid: str | None):
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    crv = obj.get("crv")
    if crv not in EC_CURVE_ALGORITHMS:
        raise ValueError(f"JWK {kid!r}: EC curve {crv!r} is not supported; expected P-256, P-384 or P-521")
    size = EC_COORDINATE_BYTES[crv]
    x = _member_bytes(obj, "x", kid)
    y = _member_bytes(obj, "y", kid)
    if len(x) != size or len(y) != size:
        # RFC 7518 6.2.1.2: coordinates are the full curve size, leading zeros included.
        raise ValueError(f"JWK {kid!r}: {crv} coordinates must be exactly {size} octets, got {len(x)} and {len(y)}")
    curve = {"P-256": ec.SECP256R1, "P-384": ec.SECP384R1, "P-521": ec.SECP521R1}[crv]()
    try:
        # from_encoded_point checks that the point lies on the curve (invalid-curve attacks).
        public_key = ec.EllipticCurvePublicKey.from_encoded_point(curve, b"\x04" + x + y)
    except ValueError:
        raise ValueError(f"JWK {kid!r}: the x/y coordinates are not a point on {crv}") from None
    alg = EC_CURVE_ALGORITHMS[crv]
    ecdsa = ec.ECDSA(_SHA[alg[2:]]())
    verify = public_key.verify
    from_bytes = int.from_bytes

    def verify_ecdsa(signature: bytes, signing_input: bytes) -> None:
        # JWS carries r||s, each exactly the curve size (RFC 7518 3.4); any other length is not a signature.
        if len(signature) != 2 * size:
            raise InvalidSignature
        r = from_bytes(signature[:size], "big")
        s = from_bytes(signature[size:], "big")
        verify(encode_dss_signature(r, s), signing_input, ecdsa)

    return public_key, public_key.curve.key_size, crv, {alg: verify_ecdsa}


def _okp_key(obj: Mapping, kid: str | None):
    crv = obj.get("crv")
    if crv not in OKP_CURVE_ALGORITHMS:
        raise ValueError(f"JWK {kid!r}: OKP curve {crv!r} is not supported; expected Ed25519")
    from cryptography.hazmat.primitives.asymmetric import ed25519

    x = _member_bytes(obj, "x", kid)
    if len(x) != 32:
        raise ValueError(f"JWK {kid!r}: an Ed25519 public key is 32 octets, got {len(x)}")
    problem = ed25519_point_problem(x)
    if problem is not None:
        raise ValueError(f"JWK {kid!r}: not a usable Ed25519 public key: {problem}")
    try:
        public_key = ed25519.Ed25519PublicKey.from_public_bytes(x)
    except ValueError:
        raise ValueError(f"JWK {kid!r}: not a valid Ed25519 public key") from None
    verify = public_key.verify

    def verify_eddsa(signature: bytes, signing_input: bytes) -> None:
        verify(signature, signing_input)

    return public_key, 256, crv, {alg: verify_eddsa for alg in OKP_CURVE_ALGORITHMS[crv]}


# edwards25519 (RFC 8032 5.1): the field prime, the curve constant d and a square root of -1.
_P25519 = 2 ** 255 - 19
_D25519 = -121665 * pow(121666, _P25519 - 2, _P25519) % _P25519
_SQRT_M1 = pow(2, (_P25519 - 1) // 4, _P25519)


def ed25519_point_problem(encoded: bytes) -> str | None:
    """Why a 32-octet Ed25519 public key is unusable, or None. Refused: encodings RFC 8032 5.1.3 cannot decode
    (y >= p, no x for y, x = 0 with the sign bit set) and points of small order (order 1, 2, 4 or 8): under such a
    key, R = a small-order point and S = 0 verifies for any message with a cofactorless check, so anyone could
    forge."""
    p = _P25519
    y = int.from_bytes(encoded, "little") & ((1 << 255) - 1)
    sign = encoded[31] >> 7
    if y >= p:
        return "the point encoding is not canonical (y is not reduced modulo 2^255 - 19)"
    u, v = (y * y - 1) % p, (_D25519 * y * y + 1) % p
    x = u * pow(v, 3, p) * pow(u * pow(v, 7, p), (p - 5) // 8, p) % p
    if v * x * x % p == (p - u) % p:
        x = x * _SQRT_M1 % p
    if v * x * x % p != u:
        return "it is not a point on the curve"
    if x == 0 and sign:
        return "the point encoding is not canonical (x = 0 with the sign bit set)"
    if x & 1 != sign:
        x = p - x
    for _ in range(3):  # 8P: the identity exactly when P has small order (the cofactor is 8)
        xy = x * y % p
        t = _D25519 * xy * xy % p
        x, y = 2 * xy * pow(1 + t, p - 2, p) % p, (y * y + x * x) * pow(1 - t, p - 2, p) % p
    if x == 0 and y == 1:
        return "the point has small order, so a signature with S = 0 would verify for every message"
    return None


class KeySet:
    """An immutable set of verification keys built from one JWKS document (RFC 7517 5)."""

    __slots__ = ("source", "keys", "kids", "skipped", "refused", "_by_kid", "_by_kid_alg")

    def __init__(self, keys: tuple[JsonWebKey, ...], *, source: str, skipped: tuple[str, ...] = (),
                 refused: Mapping[str, str] | None = None) -> None:
        by_kid: dict[str | None, tuple[JsonWebKey, ...]] = {}
        by_kid_alg: dict[tuple[str, str], JsonWebKey] = {}
        for key in keys:
            by_kid[key.kid] = by_kid.get(key.kid, ()) + (key,)
            if key.kid is not None:
                for alg in key._verifiers:
                    by_kid_alg.setdefault((key.kid, alg), key)  # the first published key wins, as in find()
        set_ = object.__setattr__
        set_(self, "_by_kid_alg", by_kid_alg)
        set_(self, "source", source)
        set_(self, "keys", tuple(keys))
        set_(self, "kids", tuple(k for k in by_kid if k is not None))
        set_(self, "skipped", tuple(skipped))
        # kid -> why the published key with that kid is not used (weak, private, not for signatures...): a token
        # naming it is told so, instead of hearing that no such key exists.
        set_(self, "refused", {kid: reason for kid, reason in (refused or {}).items() if kid not in by_kid})
        set_(self, "_by_kid", by_kid)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("KeySet is immutable")

    def __len__(self) -> int:
        return len(self.keys)

    def __repr__(self) -> str:
        return f"KeySet(source={self.source!r}, kids={self.kids!r}, skipped={len(self.skipped)})"

    @classmethod
    def from_jwks(cls, doc: Any, *, source: str) -> "KeySet":
        """Parse a JWKS document. Keys that are not for signature verification, or that cannot be used, are skipped
        and the reason recorded in `.skipped`; a document that is not `{"keys": [...]}` raises ValueError."""
        if not isinstance(doc, Mapping) or not isinstance(doc.get("keys"), list):
            raise ValueError(f'{source}: a JWKS must be a JSON object with a "keys" array (RFC 7517 5)')
        keys: list[JsonWebKey] = []
        skipped: list[str] = []
        refused: dict[str, str] = {}
        for index, entry in enumerate(doc["keys"]):
            kid = entry.get("kid") if isinstance(entry, Mapping) else None
            label = f"key #{index}" + (f" (kid {kid[:64]!r})" if isinstance(kid, str) else "")
            reason = None
            if isinstance(entry, Mapping):
                use = entry.get("use")
                ops = entry.get("key_ops")
                if use is not None and use != "sig":
                    reason = f'use is {use!r}, not "sig"'
                elif isinstance(ops, list) and "verify" not in ops:
                    reason = f'key_ops {ops!r} does not include "verify"'
            if reason is None:
                try:
                    keys.append(parse_jwk(entry))
                    continue
                except ValueError as exc:
                    reason = str(exc)
            skipped.append(f"{label}: {reason}")
            if isinstance(kid, str):
                refused.setdefault(kid, reason)
        return cls(tuple(keys), source=source, skipped=tuple(skipped), refused=refused)

    def has_kid(self, kid: str | None) -> bool:
        return kid in self._by_kid

    def find(self, kid: str | None, alg: str) -> JsonWebKey | None:
        """The key for this kid that can verify `alg`, or None.

        A token without a kid is matched only when exactly one key in the set can verify its alg: guessing among
        several keys would let a token pick which key checks it.
        """
        if kid is None:
            candidates = [key for key in self.keys if alg in key._verifiers]
            return candidates[0] if len(candidates) == 1 else None
        return self._by_kid_alg.get((kid, alg))
