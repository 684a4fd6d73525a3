"""Proof of possession and freshness for one request, after the token verified: the checks a route's `proof` and
`freshness` ask for, and the ones a bound token asks for on every route.

Every entry point (authorizers, backend guards, the forward-auth service, the back-channel logout endpoint's
neighbours) reaches these through `RequestChecks.check`, given the request facts its adapter read from its event:
the Authorization scheme, the DPoP header, the URI and method the gateway saw, and the client certificate. So
there is one place that says what DPoP, certificate binding, the denylist and introspection require.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Mapping

from .config import DEFAULT_DPOP_ALGORITHMS, IssuerConfig
from .denylist import Denylist
from .errors import DPOP_CODES, TokenRejected
from .principal import Principal
from .records import Record, set_field
from .replay import ReplayStore

SCHEMES = ("bearer", "dpop")


class RequestFacts(Record):
    """What the entry point saw of the request, beyond the token.

    scheme              the Authorization scheme the token came with: "bearer" or "dpop"
    method, uri         the request as the gateway received it (uri: scheme://host/path, the query ignored)
    dpop_proof          the DPoP header (a tuple when sent more than once), or None
    client_certificate  the mutual TLS client certificate (PEM) the gateway or a trusted proxy passed, or None
    """

    __slots__ = ("scheme", "method", "uri", "dpop_proof", "client_certificate")

    def __init__(self, scheme: str = "bearer", method: str = "", uri: str | None = None,
                 dpop_proof: str | tuple | None = None, client_certificate: str | None = None) -> None:
        set_field(self, "scheme", scheme)
        set_field(self, "method", method)
        set_field(self, "uri", uri)
        set_field(self, "dpop_proof", dpop_proof)
        set_field(self, "client_certificate", client_certificate)


def authorization_credentials(value: Any) -> tuple[str, str]:
    """(scheme, token) from an Authorization-style value: "Bearer <token>" or "DPoP <token>" (any case), or the bare
    token (read as Bearer). A list or tuple is every value of the header; more than one is refused, because which
    copy would count is the client's choice (a gateway or proxy may have checked the other one)."""
    if isinstance(value, (tuple, list)):
        if len(value) > 1:
            raise TokenRejected("malformed", "the token header appears more than once",
                                hint="send exactly one header: Authorization: Bearer <token>")
        value = value[0] if value else None
    if not isinstance(value, str) or not value.strip():
        raise TokenRejected("malformed", "the request carries no bearer token",
                            hint="send the access token as: Authorization: Bearer <token>")
    value = value.strip()
    scheme, sep, rest = value.partition(" ")
    kind = "bearer"
    if sep:
        kind = scheme.lower()
        if kind not in SCHEMES:
            raise TokenRejected("malformed", "the Authorization scheme is not Bearer or DPoP", expected="Bearer",
                                found=scheme[:20], hint="send the access token as: Authorization: Bearer <token>")
        value = rest.strip()
    # isprintable() is False for every whitespace character but the space (and for control characters, which no
    # token holds either): one C scan instead of a Python loop over a token of a few hundred characters.
    if not value or " " in value or not value.isprintable():
        raise TokenRejected("malformed", "the bearer token is empty or contains whitespace or control characters",
                            hint="send exactly one token: Authorization: Bearer <token>")
    return kind, value


def confirmation(claims: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(cnf.jkt, cnf["x5t#S256"]) of a token: the key and the certificate it is bound to, each None when absent."""
    cnf = claims.get("cnf")
    if cnf is None:
        return None, None
    if not isinstance(cnf, Mapping):
        raise TokenRejected("malformed", "the token's cnf claim must be an object (RFC 7800)")
    jkt, x5t = cnf.get("jkt"), cnf.get("x5t#S256")
    for name, value in (("jkt", jkt), ("x5t#S256", x5t)):
        if value is not None and (type(value) is not str or not value):
            raise TokenRejected("malformed", f"the token's cnf.{name} must be a non-empty string")
    return jkt, x5t


def _dpop_bound_token(how: str, hint: str) -> TokenRejected:
    return TokenRejected("dpop_bound_token", f"this token is DPoP-bound (cnf.jkt) and {how}", hint=hint)


def refuse_bound_forwarded_claims(claims: Mapping[str, Any], *, forwarded_by: str) -> None:
    """Raise TokenRejected when the claims a gateway verified and forwarded (GCP API Gateway's
    X-Apigateway-Api-Userinfo, EasyAuth's X-MS-CLIENT-PRINCIPAL) are a bound token's (cnf.jkt or cnf x5t#S256).

    Behind such a gateway neither the DPoP proof nor the client certificate reaches the backend, so the token
    arrived as what RequestChecks.check_possession refuses on every route: a bound token without its proof. A thief
    who drops the proof must not get through there either."""
    jkt, x5t = confirmation(claims)
    if jkt is not None:
        raise _dpop_bound_token(f"arrived through {forwarded_by}, which forwards only its claims: its DPoP proof "
                                f"cannot be checked here", "call this API where DPoP proofs are checked (an authgate "
                                "authorizer or forward-auth), or with an unbound token")
    if x5t is not None:
        raise TokenRejected("certificate_required", f"this token is bound to a client certificate (cnf x5t#S256) "
                            f"and arrived through {forwarded_by}, which passes no client certificate to check it "
                            "against", hint="call this API where mutual TLS is checked (an authgate authorizer "
                            "behind API Gateway's mTLS domain, or forward-auth), or with an unbound token")


class RequestChecks:
    """The stores and clients the checks need, shared by every request of an entry point.

    replay         where DPoP proof jtis are recorded (the DynamoDB table in Lambda, in memory for one process)
    denylist       the shared denylist, for freshness: denylist routes (None: such routes fail closed)
    introspection  issuer name -> IntrospectionClient, for freshness: introspect routes and opaque tokens
    nonces         the server's DPoP nonces (dpop_nonce.DpopNonces), for dpop_nonce routes (None: they fail closed)
    """

    def __init__(self, *, replay: ReplayStore | None = None, denylist: Denylist | None = None,
                 introspection: Mapping[str, Any] | None = None, nonces: Any = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.replay = replay
        self.denylist = denylist
        self.introspection = dict(introspection or {})
        self.nonces = nonces
        self._clock = clock

    def check(self, *, proof: str, freshness: str, issuer: IssuerConfig, principal: Principal, token: str,
              facts: RequestFacts, dpop_nonce: bool = False) -> None:
        """Raise TokenRejected unless the request proves possession as the token and the route require and the
        token is still fresh as the route requires (`dpop_nonce`: the route's proofs must carry the server's
        nonce). Codes: dpop_bound_token, dpop_required, invalid_dpop_proof, use_dpop_nonce (a DpopNonceRequired
        carrying the nonce to retry with), certificate_required, certificate_mismatch, revoked, inactive_token; and
        the "cannot tell now" codes replay_store_unavailable, dpop_nonce_unavailable, denylist_unavailable,
        introspection_unavailable (fail closed)."""
        self.check_possession(proof, issuer, principal.claims, token, facts, dpop_nonce=dpop_nonce)
        self.check_freshness(freshness, issuer, principal, token)

    def check_possession(self, proof: str, issuer: IssuerConfig, claims: Mapping[str, Any], token: str,
                         facts: RequestFacts, *, dpop_nonce: bool = False) -> None:
        jkt, x5t = confirmation(claims)
        if jkt is not None:
            # RFC 9449 7.2: a DPoP-bound token is refused as a Bearer token on every route, or a thief could drop
            # the proof and use it where DPoP is not required.
            if facts.scheme != "dpop":
                raise _dpop_bound_token("was sent as a Bearer token",
                                        "send it as Authorization: DPoP <token> with a DPoP proof")
            if self.replay is None:
                raise TokenRejected("replay_store_unavailable", "no DPoP replay store is configured, so a DPoP "
                                    "proof cannot be checked for replay")
            if dpop_nonce and self.nonces is None:
                raise TokenRejected("dpop_nonce_unavailable", "this route requires server-provided DPoP nonces and "
                                    "no nonce key is configured", hint="set AUTHGATE_DPOP_NONCE_KEY (or its _ARN)")
            # Imported here: a decision without a DPoP-bound token never needs it (it pulls in urllib.parse and
            # ipaddress), and every module imported at init is paid for on each Lambda cold start.
            from .dpop import check_dpop_proof

            check_dpop_proof(facts.dpop_proof, method=facts.method, uri=facts.uri or "", access_token=token,
                             expected_thumbprint=jkt, algorithms=issuer.binding.dpop_algorithms,
                             max_age_seconds=issuer.binding.dpop_proof_max_age_seconds, now=self._clock(),
                             replay=self.replay, nonces=self.nonces if dpop_nonce else None)
        elif facts.scheme == "dpop":
            raise TokenRejected("invalid_dpop_proof", "the token was sent with the DPoP scheme but is not bound to a "
                                "key (no cnf.jkt)", hint="send an unbound token as Authorization: Bearer <token>")
        elif proof == "dpop":
            raise TokenRejected("dpop_required", "this route accepts only DPoP-bound tokens sent with a DPoP proof",
                                hint="obtain a DPoP-bound token (RFC 9449) and send it as Authorization: DPoP")
        if x5t is not None:
            from .cert_binding import check_certificate_binding
            check_certificate_binding(x5t, facts.client_certificate)
        elif proof == "mtls":
            raise TokenRejected("certificate_required", "this route accepts only certificate-bound tokens (cnf "
                                "x5t#S256), and this token is not bound", hint="obtain the token over mutual TLS "
                                "(RFC 8705) and call with the same certificate")

    def check_freshness(self, freshness: str, issuer: IssuerConfig, principal: Principal, token: str) -> None:
        if freshness == "denylist":
            if self.denylist is None:
                raise TokenRejected("denylist_unavailable", "no denylist store is configured for this entry point",
                                    hint="set AUTHGATE_DENYLIST_TABLE (the construct does) or AUTHGATE_REDIS_URL, "
                                         "or pass a Denylist")
            self.denylist.check(principal.issuer, principal.claims, cache_seconds=issuer.revocation.cache_seconds)
        elif freshness == "introspect":
            self.introspection_client(issuer).confirm(token, principal)

    def introspection_client(self, issuer: IssuerConfig) -> Any:
        client = self.introspection.get(issuer.display_name)
        if client is None:
            from .introspection import IntrospectionClient
            client = self.introspection[issuer.display_name] = IntrospectionClient(issuer, clock=self._clock)
        return client


ENV_DENYLIST_TABLE = "AUTHGATE_DENYLIST_TABLE"
ENV_DYNAMODB_ENDPOINT = "AUTHGATE_DYNAMODB_ENDPOINT"
# The in-cluster alternative to the table (redis_store.py): rediss://host:port/db, the password and ACL user name
# beside it (from a Kubernetes Secret, never in the URL), a CA file instead of the system store, the opt-in to plain
# redis:// beyond loopback, and the key prefix.
ENV_REDIS_URL = "AUTHGATE_REDIS_URL"
ENV_REDIS_PASSWORD = "AUTHGATE_REDIS_PASSWORD"
ENV_REDIS_USERNAME = "AUTHGATE_REDIS_USERNAME"
ENV_REDIS_CA_FILE = "AUTHGATE_REDIS_CA_FILE"
ENV_REDIS_ALLOW_PLAINTEXT = "AUTHGATE_REDIS_ALLOW_PLAINTEXT"
ENV_REDIS_NAMESPACE = "AUTHGATE_REDIS_NAMESPACE"
ENV_DPOP_NONCE_KEY = "AUTHGATE_DPOP_NONCE_KEY"
# Set by whoever runs exactly one instance (a single pod): in-memory stores are then shared by every request.
ENV_SINGLE_INSTANCE = "AUTHGATE_SINGLE_INSTANCE"


def request_checks_from_env(environ: Mapping[str, str], *, needs_shared_store: bool, needs_dpop_nonces: bool = False,
                            clock: Callable[[], float] = time.time) -> RequestChecks:
    """The stores an entry point uses, from its environment: the DynamoDB table named by AUTHGATE_DENYLIST_TABLE
    (denylist and DPoP replay records, shared by every instance; AUTHGATE_DYNAMODB_ENDPOINT points elsewhere than
    AWS, e.g. moto in tests), or the Redis at AUTHGATE_REDIS_URL (the same, for replicas in a cluster; one of the
    two, not both), else in-memory stores for one process.

    In Lambda (AWS_LAMBDA_FUNCTION_NAME is set) every concurrent execution environment has its own memory, so a
    replayed DPoP proof or a revocation would go unseen by the others: with `needs_shared_store` (the API has DPoP,
    denylist or bound-token issuers) and no shared store, this raises ValueError instead of starting unsafe. So it
    does in a Kubernetes pod (KUBERNETES_SERVICE_HOST is set), where a Deployment's replicas share nothing, unless
    AUTHGATE_SINGLE_INSTANCE=true says this pod is the only one.

    The DPoP nonce key comes from AUTHGATE_DPOP_NONCE_KEY (or AUTHGATE_DPOP_NONCE_KEY_ARN, read through secrets.py);
    with `needs_dpop_nonces` (the API has dpop_nonce routes) and no key, this raises ValueError, in Lambda and
    elsewhere: a key made up per process would refuse every other instance's nonces."""
    nonces = _nonces_from_env(environ, needed=needs_dpop_nonces, clock=clock)
    table_name = environ.get(ENV_DENYLIST_TABLE)
    if environ.get(ENV_REDIS_URL):
        if table_name:
            raise ValueError(f"both {ENV_DENYLIST_TABLE} and {ENV_REDIS_URL} are set; pick one shared store (every "
                             f"instance must use the same one, or each would miss the others' records)")
        from .redis_store import RedisStore

        store = RedisStore.from_env(environ, clock=clock)
        return RequestChecks(replay=store, denylist=Denylist(store, clock=clock), nonces=nonces, clock=clock)
    if table_name:
        from .dynamodb_store import DynamoDbTable, dynamodb_client

        region, endpoint = environ.get("AWS_REGION"), environ.get(ENV_DYNAMODB_ENDPOINT)
        table = DynamoDbTable(table_name, clock=clock,
                              client_factory=lambda: dynamodb_client(region=region, endpoint_url=endpoint))
        return RequestChecks(replay=table, denylist=Denylist(table, clock=clock), nonces=nonces, clock=clock)
    if needs_shared_store and environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        raise ValueError(f"this API has routes or issuers that need the shared denylist / DPoP replay table, and "
                         f"{ENV_DENYLIST_TABLE} is not set; deploy with the authgate construct (it creates the table "
                         f"and sets it) or set it to the table's name")
    if needs_shared_store and environ.get("KUBERNETES_SERVICE_HOST") \
            and environ.get(ENV_SINGLE_INSTANCE, "").strip().lower() != "true":
        # Kubernetes sets KUBERNETES_SERVICE_HOST in every pod; a Deployment's replicas share no memory, as Lambda's
        # execution environments do not.
        raise ValueError(f"this API has routes or issuers that need state every replica shares (the denylist, DPoP "
                         f"replay records), this process runs in a Kubernetes pod, and no shared store is set: set "
                         f"{ENV_DENYLIST_TABLE} (the stage's revocation table; `authgate render k8s "
                         f"--denylist-table` does) or {ENV_REDIS_URL} (a Redis every replica reaches, with "
                         f"{ENV_REDIS_PASSWORD}), or {ENV_SINGLE_INSTANCE}=true if this pod is the only instance")
    from .denylist import MemoryDenylistStore
    from .replay import MemoryReplayStore

    return RequestChecks(replay=MemoryReplayStore(clock=clock),
                         denylist=Denylist(MemoryDenylistStore(clock=clock), clock=clock), nonces=nonces, clock=clock)


def _nonces_from_env(environ: Mapping[str, str], *, needed: bool, clock: Callable[[], float]) -> Any:
    # Imported only when a key is configured or needed: most entry points have no nonce routes.
    if not (needed or environ.get(ENV_DPOP_NONCE_KEY) or environ.get(f"{ENV_DPOP_NONCE_KEY}_ARN")):
        return None
    from .dpop_nonce import DpopNonces
    from .secrets import secret_value

    text = secret_value(environ, ENV_DPOP_NONCE_KEY)
    if not text:
        raise ValueError(f"this API has routes with dpop_nonce: required, and neither {ENV_DPOP_NONCE_KEY} nor "
                         f"{ENV_DPOP_NONCE_KEY}_ARN is set; set one (base64url of 32 random bytes, the same for every "
                         f"instance) so that every instance issues and accepts the same nonces")
    return DpopNonces.from_secret(text, clock=clock)


def dpop_nonce_header(rejection: TokenRejected | None) -> tuple[str, str] | None:
    """("DPoP-Nonce", the nonce to retry with) for a use_dpop_nonce refusal (RFC 9449 section 9: the 401 carries it),
    None for every other decision. Every entry point that answers the client itself adds it beside WWW-Authenticate."""
    nonce = getattr(rejection, "dpop_nonce", None)
    return ("DPoP-Nonce", nonce) if isinstance(nonce, str) and nonce else None


def fresh_dpop_nonce_header(route: Any, checks: RequestChecks | None) -> tuple[str, str] | None:
    """("DPoP-Nonce", the current nonce) for an allowed request on a route with dpop_nonce: required, None otherwise.
    RFC 9449 8.2 lets a server hand out a fresh nonce on success: a client that keeps it never has a proof refused
    for an aged-out nonce (without it, every 60-120 s costs a 401 and a retry). Entry points that answer the client
    add it to the allowed response."""
    if route is None or route.dpop_nonce != "required" or checks is None or checks.nonces is None:
        return None
    return "DPoP-Nonce", checks.nonces.current()


def www_authenticate(rejection: TokenRejected | None, *, proof: str, issuer: IssuerConfig | None = None) -> str:
    """The WWW-Authenticate header of a 401 on a route: DPoP's challenge (with algs) on DPoP routes and for DPoP
    refusals, Bearer's (RFC 6750 3) elsewhere."""
    if proof == "dpop" or (rejection is not None and rejection.code in DPOP_CODES):
        from .dpop import www_authenticate_dpop

        algorithms = issuer.binding.dpop_algorithms if issuer is not None else DEFAULT_DPOP_ALGORITHMS
        return www_authenticate_dpop(rejection, algorithms)
    if rejection is None:
        return "Bearer"
    return 'Bearer error="invalid_token"'


__all__ = ["ENV_DENYLIST_TABLE", "ENV_DPOP_NONCE_KEY", "ENV_SINGLE_INSTANCE", "RequestChecks", "RequestFacts", "authorization_credentials", "confirmation",
           "dpop_nonce_header", "fresh_dpop_nonce_header", "refuse_bound_forwarded_claims", "request_checks_from_env", "www_authenticate"]
