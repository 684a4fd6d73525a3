"""The demo's back-channel logout section, through the emulated AWS HTTP API of `sandbox/logout_policy.yaml`.

What is real: the provider (oidc-provider with back-channel logout, sandbox/idp), the synthesized HttpApi and
Revocation templates (`authgate synth`, cached), the HTTP API's authorizer and the logout endpoint run in-process from
their bundled code behind the template's routes (POST /backchannel-logout is answered by
lambdas/backchannel_logout/http_api.py), and the revocation table: moto's DynamoDB, the table created from the
Revocation template, named to both functions as the deployed stacks name it to them (AUTHGATE_DENYLIST_TABLE).

The flow: alice signs in (code + PKCE), calls a `freshness: denylist` route (allowed), logs out at the provider
(RP-initiated logout); the provider POSTs a logout token to the HTTP API's logout route; the same access token is then
refused on the denylist route and still accepted on a `freshness: none` route.
"""
from __future__ import annotations

import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from lambdas.backchannel_logout.http_api import LOGOUT_PATH
from sandbox.gateway_calls import expect_call
from sandbox.lifecycle import StoppedOnExit, run_demo_section
from sandbox.report import Narrator

POLICY = Path(__file__).resolve().with_name("logout_policy.yaml")
API = "orders"
CLIENT = "demo-web"
USER = "alice"
DENYLIST_ROUTE = ("GET", "/payments")
PLAIN_ROUTE = ("GET", "/orders")
GATEWAY_TITLE = "AWS HTTP API"
DELIVERY_TIMEOUT_SECONDS = 10.0


@dataclass
class LogoutSandbox(StoppedOnExit):
    """The provider, moto's DynamoDB, the backend and the emulated HTTP API for the logout policy; a context manager
    (everything stopped on leaving, also on errors)."""

    log: Callable[[str], None] = lambda line: None
    idp: Any = None
    idp_setup: Any = None
    synthesized: Any = None
    workdir: Path | None = None
    backend: Any = None
    gateway: Any = None               # sandbox.environment.GatewayHandle
    table_name: str = ""
    _moto: Any = None
    _running: ExitStack = field(default_factory=ExitStack)   # what start() started, stopped in reverse order

    def start(self) -> "LogoutSandbox":
        from lambdas.guards.require import BearerGuard
        from lambdas.validation.route_table import RouteTable
        from sandbox.artifacts import _aws_stack
        from sandbox.backend import Backend, bearer_door
        from sandbox.cognito import DUMMY_CREDENTIALS, REGION, MotoServer
        from sandbox.environment import ISSUER_VARIABLE, PLACEHOLDER_ISSUER, GatewayHandle
        from sandbox.gateways.http_api import HttpApiEmulator
        from sandbox.gateways.server import GatewayServer
        from sandbox.idp.config import build_idp_setup
        from sandbox.idp.launcher import IdpProcess
        from sandbox.synth_cache import synthesize
        from stacks.policy import load_policy
        from stacks.policy.render import render_route_table

        self.workdir = Path(self._running.enter_context(tempfile.TemporaryDirectory(prefix="authgate-logout-")))
        self.synthesized = synthesize(POLICY, API, variable=ISSUER_VARIABLE, log=self.log)
        self._moto = self._running.enter_context(MotoServer())
        self.table_name = self._create_revocation_table()
        self.log(f"revocation table {self.table_name} (from the Revocation template) in moto's DynamoDB at "
                 f"{self._moto.endpoint}")
        self.backend = Backend({"bearer": lambda *_: None})
        self._running.callback(self.backend.stop)
        # Bound now, served once the provider is up: the provider's client registration names the logout route.
        server = GatewayServer(None, self.backend.url("bearer"))
        self._running.callback(server.stop)
        draft = load_policy(POLICY, variables={ISSUER_VARIABLE: PLACEHOLDER_ISSUER})
        self.idp_setup = build_idp_setup(draft, "local")
        logout_uri = server.url + LOGOUT_PATH
        for client in self.idp_setup.document["clients"]:
            if client["client_id"] == CLIENT:
                client["backchannel_logout_uri"] = logout_uri
        self.idp = self._running.enter_context(IdpProcess(self.idp_setup.document, log_path=self.workdir / "idp.log"))
        self.log(f"OpenID provider at {self.idp.issuer}; client {CLIENT}'s backchannel_logout_uri is {logout_uri}")
        policy = load_policy(POLICY, variables={ISSUER_VARIABLE: self.idp.issuer})
        table = RouteTable.load(render_route_table(policy, apis=[API]))
        self.backend.bind("bearer", bearer_door(BearerGuard.from_route_table(table, API)))
        self.backend.start()
        template, code_root_of, route_table, app = _aws_stack(self, "HttpApi")
        # What the deployed stacks resolve from their references: the table's name and, here, moto's endpoint.
        account = {"AUTHGATE_DENYLIST_TABLE": self.table_name, "AUTHGATE_DYNAMODB_ENDPOINT": self._moto.endpoint,
                   "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
                   **{name.upper(): value for name, value in DUMMY_CREDENTIALS.items()}}
        server.emulator = HttpApiEmulator(template, code_root_of=code_root_of, route_table_path=route_table,
                                          function_environment=account)
        server.start()
        self.gateway = GatewayHandle("aws-http-api", GATEWAY_TITLE, server,
                                     f"CloudFormation ({app.template_path('HttpApi').name}, authgate synth)")
        self.log(f"{GATEWAY_TITLE} emulated from {self.gateway.artifact} at {server.url}")
        return self

    def _create_revocation_table(self) -> str:
        from sandbox.gateways.cfn import Template

        revocation = Template(self.synthesized.template("Revocation"),
                              source=self.synthesized.template_path("Revocation").name)
        [(table_id, props)] = list(revocation.of_type("AWS::DynamoDB::Table"))
        client = self._moto.client("dynamodb")
        client.create_table(TableName=table_id, KeySchema=props["KeySchema"],
                            AttributeDefinitions=props["AttributeDefinitions"], BillingMode=props["BillingMode"])
        if props.get("TimeToLiveSpecification"):
            client.update_time_to_live(TableName=table_id, TimeToLiveSpecification=props["TimeToLiveSpecification"])
        return table_id

    def logout_deliveries(self) -> list:
        """The gateway's events for the logout route: what the provider posted and what it was answered."""
        return [e for e in self.gateway.server.events if e.path.split("?")[0] == LOGOUT_PATH]

    def wait_for_delivery(self, timeout: float = DELIVERY_TIMEOUT_SECONDS) -> Any:
        deadline = time.monotonic() + timeout
        while not self.logout_deliveries() and time.monotonic() < deadline:
            time.sleep(0.05)
        found = self.logout_deliveries()
        return found[-1] if found else None

    def stop(self) -> None:
        self._running.close()


def sign_in_and_log_out(world: LogoutSandbox, narrator: Narrator) -> None:
    from sandbox.idp.config import resource_indicator
    from sandbox.oidc_client import BrowserSession, LoginTrace, OidcFlowError, login_with_pkce, rp_initiated_logout

    discovery = world.idp.discovery()
    spa = world.idp_setup.clients[CLIENT]
    user = world.idp_setup.users[USER]
    browser, trace = BrowserSession(), LoginTrace()
    try:
        tokens, _ = login_with_pkce(discovery, client_id=CLIENT, redirect_uri=spa.redirect_uris[0],
                                    username=user.username, password=user.password, scope="openid orders:read",
                                    resource=resource_indicator(spa.audience), trace=trace, browser=browser)
    except OidcFlowError as exc:
        narrator.expect("logout: sign in (code + PKCE)", "IdP", "tokens issued", "failed", str(exc))
        return
    for who, what, answer in trace.hops:
        narrator.hop(who, what, answer)
    narrator.expect("logout: sign in (code + PKCE)", "IdP", "tokens issued", "tokens issued")
    token = tokens.access_token
    expect_call(narrator, world, "logout: denylist route before logout", f"{USER}'s app", world.gateway,
                DENYLIST_ROUTE, token, 200, "backend")
    trace = LoginTrace()
    try:
        rp_initiated_logout(discovery, browser, client_id=CLIENT, trace=trace)
        ended = "session ended"
    except OidcFlowError as exc:
        ended = f"failed: {exc}"
    for who, what, answer in trace.hops:
        narrator.hop(who, what, answer)
    narrator.expect("logout: RP-initiated logout at the provider", "IdP", "session ended", ended)
    delivery = world.wait_for_delivery()
    narrator.hop(f"IdP -> {GATEWAY_TITLE}", f"POST {LOGOUT_PATH} with the logout token (sid, sub)",
                 f"{delivery.final_status} from {delivery.decision.checked}" if delivery else "nothing delivered")
    narrator.expect("logout: provider delivers the logout token", GATEWAY_TITLE, "200 from the logout endpoint",
                    f"{delivery.final_status} from the logout endpoint" if delivery else
                    f"nothing within {DELIVERY_TIMEOUT_SECONDS:g}s")
    expect_call(narrator, world, "logout: denylist route after logout", f"{USER}'s app", world.gateway,
                DENYLIST_ROUTE, token, 403, "gateway")
    expect_call(narrator, world, "logout: freshness none route after logout", f"{USER}'s app", world.gateway,
                PLAIN_ROUTE, token, 200, "backend")


def backchannel_logout(narrator: Narrator) -> None:
    narrator.section("6. Back-channel logout: the provider tells the HTTP API's logout endpoint; denylist routes "
                     "refuse the session's tokens")

    def body(world: LogoutSandbox) -> None:
        narrator.note(f"policy {POLICY.name}: {DENYLIST_ROUTE[0]} {DENYLIST_ROUTE[1]} has freshness: denylist "
                      f"(revocation.cache_seconds 0), {PLAIN_ROUTE[0]} {PLAIN_ROUTE[1]} freshness: none")
        sign_in_and_log_out(world, narrator)

    run_demo_section(narrator, LogoutSandbox(log=narrator.note), body, step="logout: sandbox available",
                     gateway=GATEWAY_TITLE)
