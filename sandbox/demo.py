"""`python -m sandbox.demo`: the flows end to end on loopback, printed hop by hop, with a summary table.

1. Human login: authorization code + PKCE through the provider's pages, then the API through every gateway.
2. Service to service: client credentials; wrong audience, missing scope, expired, tampered, key rotation; and the
   REST API's cached policy answering for other routes without invoking the authorizer again.
3. Gateway enforcement: every refused request is checked against the backend's arrival counter.
4. Cognito: a user pool in moto's emulator; its access token accepted by the REST API Lambda authorizer under a
   Cognito policy (client_id, token_use), its ID token, another app client's token and an altered token refused.
5. Browser sign-in: the token handler (tokens in HttpOnly cookies) and a cookie-authorized API, in a real Chromium
   when installed (else the headless HTTP client, saying so): refresh at expiry, cross-site forms, logout.
6. Back-channel logout: sign in, a `freshness: denylist` route allowed, logout at the provider, the logout token
   delivered to the emulated HTTP API's logout endpoint (the real handler, moto's DynamoDB as the shared table), then
   the same token refused on the denylist route and still accepted on a `freshness: none` route.
7. Certificate-bound tokens: a token issued over mutual TLS, bound to the client's certificate, through the emulated
   HTTP API's mutual TLS domain: allowed with its certificate, refused with another.
Exit status: 0 when every expectation held, 1 when any failed, 2 when the sandbox could not start.
`--keep-running` leaves it up and prints ready-to-paste curl commands (that is `authgate local`).
"""
from __future__ import annotations

import argparse
import base64
import json
import signal
import sys
import threading
import time
from pathlib import Path

from lambdas.validation import IssuerConfig, TokenRejected, Verifier
from sandbox.gateway_calls import CallResult, call_through, expect_call, stopped_at  # noqa: F401 - also for tests
from sandbox.logout_demo import backchannel_logout
from sandbox.mtls_demo import certificate_bound
from sandbox.web_demo import browser_sign_in
from sandbox.cognito_api import APP_CLIENT_NAME, OTHER_CLIENT_NAME, AuthorizerAnswer, CognitoApi
from sandbox.cognito_api import PASSWORD as COGNITO_PASSWORD
from sandbox.cognito_api import USERNAME as COGNITO_USER
from sandbox.environment import (DEFAULT_POLICY, FOREIGN_AUDIENCE, GatewayHandle, Sandbox, SandboxInputError,
                                 check_sandbox_inputs)
from stacks.commands.demo import API_HELP, POLICY_HELP
from sandbox.idp.config import resource_indicator
from sandbox.oidc_client import LoginTrace, client_credentials, login_with_pkce
from sandbox.report import Narrator, describe_token, fingerprint

READ_ROUTE = ("GET", "/orders")
TENANT_ROUTE = ("GET", "/orders/42")
WRITE_ROUTE = ("POST", "/orders")
COGNITO_AUTHORIZER = "REST authorizer (Cognito)"


class Demo:
    def __init__(self, sandbox: Sandbox, narrator: Narrator) -> None:
        self.sandbox = sandbox
        self.n = narrator
        self.issuer = sandbox.idp.issuer
        self.disc = sandbox.discovery
        clients = sandbox.idp_setup.clients
        self.spa = next(c for c in clients.values() if c.kind == "spa")
        self.worker = next(c for c in clients.values() if c.kind == "service")

    # -- helpers ------------------------------------------------------------------------------------------------
    def expect_call(self, step: str, caller: str, gateway: GatewayHandle, route: tuple[str, str], token: str | None,
                    status: int, where: str) -> CallResult:
        return expect_call(self.n, self.sandbox, step, caller, gateway, route, token, status, where)

    def worker_token(self, audience: str = "orders-api", scope: str | None = None) -> str:
        scope = scope or " ".join(self.worker.scopes)
        tokens = client_credentials(self.disc["token_endpoint"], self.worker.client_id, self.worker.client_secret,
                                    scope=scope, resource=resource_indicator(audience))
        self.n.hop(f"{self.worker.client_id} -> IdP", f"POST /token client_credentials, resource={audience}, "
                   f"scope={scope!r}", f"access token {describe_token(tokens.access_token)}")
        return tokens.access_token

    # -- the flows ----------------------------------------------------------------------------------------------
    def human_login(self) -> None:
        self.n.section("1. Human login: authorization code + PKCE at the local OpenID provider")
        user = self.sandbox.idp_setup.users["alice"]
        trace = LoginTrace()
        scope = "openid profile email " + " ".join(s for s in self.spa.scopes if ":" in s)
        tokens, nonce = login_with_pkce(self.disc, client_id=self.spa.client_id, redirect_uri=self.spa.redirect_uris[0],
                                        username=user.username, password=user.password, scope=scope,
                                        resource=resource_indicator(self.spa.audience or "orders-api"), trace=trace)
        for who, what, answer in trace.hops:
            self.n.hop(who, what, answer)
        id_verifier = Verifier([IssuerConfig(self.issuer, [self.spa.client_id], token_use="id", name="local-id",
                                             allow_insecure_http=True, leeway_seconds=5)])
        try:
            principal = id_verifier.verify_id_token(tokens.id_token, client_id=self.spa.client_id, nonce=nonce)
            outcome = "valid"
            self.n.hop("app (SPA)", f"checks ID token {fingerprint(tokens.id_token)}: signature, iss, aud, nonce",
                       f"valid, sub={principal.subject}")
        except TokenRejected as err:
            outcome = err.code
            self.n.hop("app (SPA)", f"checks ID token {fingerprint(tokens.id_token)}", f"REJECTED {err.code}")
        self.n.expect("login: ID token", "IdP", "valid", outcome)
        self.n.note(f"access token {describe_token(tokens.access_token)}")
        for gateway in self.sandbox.running_gateways():
            self.expect_call("login: read tenant order", "alice's app", gateway, TENANT_ROUTE, tokens.access_token,
                             200, "backend")

    def service_to_service(self) -> None:
        self.n.section("2. Service to service: client credentials for service B's audience")
        good = self.worker_token()
        for gateway in self.sandbox.running_gateways():
            self.expect_call("s2s: allowed", self.worker.client_id, gateway, READ_ROUTE, good, 200, "backend")

        self.n.section("2a. Wrong audience: a token minted for another API of the same provider")
        foreign = self.worker_token(FOREIGN_AUDIENCE)
        for gateway in self.sandbox.running_gateways():
            self.expect_call("s2s: wrong audience", self.worker.client_id, gateway, READ_ROUTE, foreign, 401, "gateway")

        self.n.section("2b. Missing scope: POST /orders needs orders:read AND orders:write")
        for gateway in self.sandbox.running_gateways():
            # GCP's gateway cannot check scopes; the backend guard refuses from X-Apigateway-Api-Userinfo.
            where = "backend guard" if gateway.name == "gcp-api-gateway" else "gateway"
            self.expect_call("s2s: missing scope", self.worker.client_id, gateway, WRITE_ROUTE, good, 403, where)

        self.n.section("2c. Expired token (signed by the provider, lifetime over)")
        expired = self.sandbox.idp.expired_token(client_id=self.worker.client_id,
                                                 resource=resource_indicator("orders-api"),
                                                 scope=" ".join(self.worker.scopes))
        self.n.hop("IdP admin", "issue a worker token as of an hour ago", describe_token(expired))
        for gateway in self.sandbox.running_gateways():
            self.expect_call("s2s: expired", self.worker.client_id, gateway, READ_ROUTE, expired, 401, "gateway")

        self.n.section("2d. Tampered token: payload edited to claim more scope, signature left as it was")
        tampered = tamper(good)
        for gateway in self.sandbox.running_gateways():
            self.expect_call("s2s: tampered", "attacker", gateway, READ_ROUTE, tampered, 401, "gateway")

        self.n.section("2e. Key rotation: the provider signs with its pre-published next key; the old one stays")
        rotated = self.sandbox.idp.rotate_key()
        self.n.hop("IdP admin", "rotate signing key",
                   f"now signing with {rotated['signing_kid']}, next {rotated['next_kid']}, publishing "
                   f"{', '.join(rotated['published_kids'])}")
        fresh = self.worker_token()
        for gateway in self.sandbox.running_gateways():
            self.expect_call("s2s: after rotation (new key)", self.worker.client_id, gateway, READ_ROUTE, fresh, 200,
                             "backend")
            self.expect_call("s2s: after rotation (old key)", self.worker.client_id, gateway, READ_ROUTE, good, 200,
                             "backend")

    def rest_result_cache(self) -> None:
        """API Gateway caches a REST authorizer's policy per identity-source value and reuses it for every method:
        the policy must therefore answer correctly for routes other than the one that produced it."""
        handle = self.sandbox.gateways.get("aws-rest-api")
        if handle is None or handle.server is None:
            return
        emulator = handle.server.emulator
        self.n.section("2f. REST API result cache: one policy, cached per token, answers for every route")
        token = self.worker_token()
        before = emulator.invocations
        self.expect_call("rest cache: first request invokes the authorizer", self.worker.client_id, handle,
                         READ_ROUTE, token, 200, "backend")
        self.expect_call("rest cache: cached policy, route needing tenant", self.worker.client_id, handle,
                         TENANT_ROUTE, token, 403, "gateway")
        self.expect_call("rest cache: cached policy, route needing write", self.worker.client_id, handle,
                         WRITE_ROUTE, token, 403, "gateway")
        self.expect_call("rest cache: cached policy, first route again", self.worker.client_id, handle,
                         READ_ROUTE, token, 200, "backend")
        self.n.expect("rest cache: authorizer invocations for 4 requests", handle.title, "1",
                      str(emulator.invocations - before))

    def enforcement(self) -> None:
        self.n.section("3. Gateway enforcement: did any refused request reach the backend?")
        backend = self.sandbox.backend
        for gateway in self.sandbox.running_gateways():
            events = gateway.server.events
            refused_at_gateway = [e for e in events if not e.decision.allowed]
            self.n.hop(gateway.title, f"{len(events)} requests, {len(refused_at_gateway)} refused at the gateway",
                       f"backend saw {sum(1 for e in events if e.decision.allowed)} from it")
        self.n.note(f"backend arrivals by door: {dict(backend.arrivals)}, accepted by its guard: "
                    f"{dict(backend.accepted)}")
        forwarded = sum(1 for g in self.sandbox.running_gateways() for e in g.server.events if e.decision.allowed)
        self.n.expect("enforcement: backend arrivals == forwarded requests", "all", str(forwarded),
                      str(backend.total_arrivals))
        for handle in self.sandbox.gateways.values():
            if handle.server is None:
                self.n.expect("gateway available", handle.name, "running", "unavailable", handle.error)
        for name, why in self.sandbox.not_started.items():
            self.n.note(f"not run: {name}: {why}")

    def cognito(self) -> None:
        self.n.section("4. Cognito user pool (moto): Cognito-shaped tokens through the REST API Lambda authorizer")
        api = self.sandbox.cognito
        if api is None:
            if self.sandbox.cognito_wanted:
                self.n.expect("cognito: emulator available", "moto", "running", "unavailable",
                              self.sandbox.cognito_error)
            return
        self.n.note("emulated: Cognito, by moto's server on 127.0.0.1 (every moto pool signs with one static key).")
        self.n.note("not served: an API Gateway for this API. The REST authorizer (lambdas/authorizers/rest.py) runs "
                    "in-process on the TOKEN event API Gateway sends, and its policy is evaluated as API Gateway does.")
        self.n.note(f"its route table is rendered from sandbox/{api.policy_path.name}; only the pool's jwks_uri is "
                    "pointed at the emulator.")
        pool = api.pool
        self.n.hop("platform team -> Cognito (moto)", f"CreateUserPool, CreateUserPoolClient {APP_CLIENT_NAME} and "
                   f"{OTHER_CLIENT_NAME}, AdminCreateUser {COGNITO_USER}",
                   f"pool {pool.pool_id}, {APP_CLIENT_NAME}={api.app_client_id}")
        route = api.route("GET /orders")
        self.n.hop("policy compiler", f"GET /orders: profile cognito, audiences [{APP_CLIENT_NAME}], token_use access",
                   f"{route['enforcement'].capitalize()} authorizer: {route['enforcement_reason']}")
        mine = api.sign_in(api.app_client_id)
        self.n.hop(f"{COGNITO_USER}'s app -> Cognito", f"InitiateAuth USER_PASSWORD_AUTH, client {APP_CLIENT_NAME}",
                   f"access token {describe_token(mine['AccessToken'])}, ID token {fingerprint(mine['IdToken'])}")
        other = api.sign_in(api.other_client_id, admin=True)
        self.n.hop("billing app -> Cognito", f"AdminInitiateAuth ADMIN_USER_PASSWORD_AUTH, client "
                   f"{OTHER_CLIENT_NAME}", f"access token {describe_token(other['AccessToken'])}")
        accepted = self.expect_cognito("cognito: access token", f"{COGNITO_USER}'s app", api, mine["AccessToken"],
                                       "200 client_id matched, token_use access")
        if accepted.status == 200:
            self.n.note(f"    authorizer context: sub={accepted.context.get('sub')}, "
                        f"scopes={accepted.context.get('scopes')}")
        self.expect_cognito("cognito: ID token on an access route", f"{COGNITO_USER}'s app", api, mine["IdToken"],
                            "401 wrong_token_use")
        self.expect_cognito("cognito: another app client's token", "billing app", api, other["AccessToken"],
                            "401 invalid_audience")
        self.expect_cognito("cognito: altered token", "attacker", api, tamper(mine["AccessToken"]),
                            "401 bad_signature")

    def expect_cognito(self, step: str, caller: str, api: CognitoApi, token: str, expected: str) -> AuthorizerAnswer:
        answer = api.authorize("GET", "/orders", token)
        if answer.status == 200:
            client = "matched" if answer.context.get("client_id") == api.app_client_id else "NOT matched"
            actual = f"200 client_id {client}, token_use {answer.context.get('token_use')}"
        else:
            actual = f"{answer.status} {answer.code}"
        self.n.hop(f"{caller} -> REST authorizer", f"GET /orders with {describe_token(token)}", actual)
        self.n.expect(step, COGNITO_AUTHORIZER, expected, actual)
        return answer


def tamper(token: str) -> str:
    """The same token with its payload changed (scope widened) and the original signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["scope"] = (claims.get("scope", "") + " orders:write orders:admin").strip()
    forged = base64.urlsafe_b64encode(json.dumps(claims, separators=(",", ":")).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def cognito_commands(api: CognitoApi) -> list[str]:
    """Shell lines that sign in to the emulated pool with curl (InitiateAuth) and verify the access token."""
    import shlex

    body = json.dumps({"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": api.app_client_id,
                       "AuthParameters": {"USERNAME": COGNITO_USER, "PASSWORD": COGNITO_PASSWORD}})
    sign_in = (f"curl -s -X POST {api.emulator.endpoint}/ -H 'Content-Type: application/x-amz-json-1.1' "
               f"-H 'X-Amz-Target: AWSCognitoIdentityProviderService.InitiateAuth' -d {shlex.quote(body)}")
    return [f"COGNITO_TOKEN=$({sign_in} | python3 -c 'import json,sys; "
            f"print(json.load(sys.stdin)[\"AuthenticationResult\"][\"AccessToken\"])')",
            f"authgate verify \"$COGNITO_TOKEN\" --policy {shlex.quote(str(api.policy_path))} "
            f"--var COGNITO_ISSUER={api.pool.issuer} --var COGNITO_APP_CLIENT={api.app_client_id} "
            f"--jwks {api.pool.jwks_url} --allow-insecure-http"]


def print_curl_commands(sandbox: Sandbox, demo: Demo, narrator: Narrator) -> None:
    narrator.section("The sandbox is running: paste these (tokens live 5 minutes; rerun the token command for more)")
    worker = demo.worker
    token_cmd = (f"curl -s -u '{worker.client_id}:{worker.client_secret}' -d grant_type=client_credentials "
                 f"-d 'scope={' '.join(worker.scopes)}' -d 'resource={resource_indicator('orders-api')}' "
                 f"{demo.disc['token_endpoint']}")
    print(f"\n  # a service token\n  TOKEN=$({token_cmd} | python3 -c 'import json,sys; print(json.load(sys.stdin)"
          f"[\"access_token\"])')", file=narrator.out)
    for gateway in sandbox.running_gateways():
        print(f"\n  # {gateway.title} ({gateway.artifact})", file=narrator.out)
        print(f"  curl -i -H \"Authorization: Bearer $TOKEN\" {gateway.url}/orders", file=narrator.out)
        print(f"  curl -i -X POST -H \"Authorization: Bearer $TOKEN\" {gateway.url}/orders   # 403: needs "
              "orders:write too", file=narrator.out)
        print(f"  curl -i {gateway.url}/health", file=narrator.out)
    if sandbox.cognito is not None:
        print("\n  # Cognito (moto): alice signs in to app client " + APP_CLIENT_NAME + "; then authgate checks the access "
              "token\n  # under sandbox/cognito_policy.yaml as the REST authorizer does (keys from the emulator)",
              file=narrator.out)
        for command in cognito_commands(sandbox.cognito):
            print(f"  {command}", file=narrator.out)
    print(f"\n  # the provider: discovery, keys, login (users: "
          f"{', '.join(f'{u.username}/{u.password}' for u in sandbox.idp_setup.users.values())})", file=narrator.out)
    print(f"  curl -s {sandbox.idp.issuer}/.well-known/openid-configuration\n  curl -s {demo.disc['jwks_uri']}",
          file=narrator.out)
    print("\n  Ctrl-C stops everything.", file=narrator.out, flush=True)


def print_metrics_summary(sandbox: Sandbox, narrator: Narrator) -> None:
    """Decisions by outcome and code per gateway, counted from the EMF members of the authorizers' audit lines."""
    from sandbox.metrics_summary import summary_lines

    narrator.section("Metrics from the authorizers' audit lines (CloudWatch EMF: Decisions by Outcome and Reason)")
    for line in summary_lines(sandbox):
        print(f"  {line}", file=narrator.out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--policy", type=Path, default=DEFAULT_POLICY, help=POLICY_HELP)
    parser.add_argument("--api", default="orders", help=API_HELP)
    parser.add_argument("--keep-running", action="store_true", help="stay up and print curl commands")
    parser.add_argument("--no-color", action="store_true", help="plain output")
    args = parser.parse_args(argv)
    narrator = Narrator(color=sys.stdout.isatty() and not args.no_color)
    started = time.monotonic()
    # SIGTERM ends the run like Ctrl-C, so the context manager stops every process and server.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        check_sandbox_inputs(args.policy, args.api)
    except SandboxInputError as exc:
        print(f"authgate demo: {exc}", file=sys.stderr)
        return 2
    narrator.section("Starting the sandbox (everything on 127.0.0.1, ephemeral ports)")
    try:
        with Sandbox(policy_path=args.policy, api=args.api, log=narrator.note) as sandbox:
            demo = Demo(sandbox, narrator)
            demo.human_login()
            demo.service_to_service()
            demo.rest_result_cache()
            demo.enforcement()
            demo.cognito()
            browser_sign_in(narrator)
            backchannel_logout(narrator)
            certificate_bound(narrator)
            narrator.summary()
            print_metrics_summary(sandbox, narrator)
            narrator.note(f"took {time.monotonic() - started:.1f}s")
            if args.keep_running:
                print_curl_commands(sandbox, demo, narrator)
                threading.Event().wait()
    except KeyboardInterrupt:
        print("\nstopping the sandbox", file=sys.stderr)
        return 130 if not narrator.outcomes or narrator.failures else 0
    except Exception as exc:
        print(f"\nthe sandbox failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    return 1 if narrator.failures else 0


if __name__ == "__main__":
    sys.exit(main())
