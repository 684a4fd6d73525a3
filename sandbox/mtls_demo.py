"""The demo's certificate-bound token section, through the emulated AWS HTTP API on its mutual TLS domain
(`sandbox/mtls_policy.yaml`).

What is real: the provider (oidc-provider with certificate-bound access tokens on a TLS listener that asks for client
certificates, sandbox/idp), the certificates (a throwaway CA made for this run, sandbox/tls_material.py), the
synthesized HttpApi template (`authgate synth` with context authgate:mtls_domain, cached: the custom domain with its
truststore, the execute-api endpoint off) and its authorizer run in-process from the bundled code. The emulated
gateway serves TLS and asks for client certificates from the run's CA (the truststore's part), and passes the
certificate to the authorizer in requestContext.authentication.clientCert, as API Gateway does on that domain.

The flow: the robot client gets a token over mutual TLS with its certificate (cnf x5t#S256 = that certificate's
thumbprint); DELETE /orders/1 (proof: mtls) with that certificate is allowed; the same token from a client holding
another certificate of the same CA is refused at the gateway, and so is a token bound to another certificate.
"""
from __future__ import annotations

import base64
import json
import ssl
import tempfile
import urllib.parse
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from sandbox.gateway_calls import expect_call
from sandbox.lifecycle import StoppedOnExit, run_demo_section
from sandbox.report import Narrator

POLICY = Path(__file__).resolve().with_name("mtls_policy.yaml")
API = "orders"
CLIENT = "demo-robot"
BOUND_ROUTE = ("DELETE", "/orders/1")
GATEWAY_TITLE = "AWS HTTP API (mutual TLS domain)"
# The custom domain the synthesized stack would serve; no request ever goes to it (the emulator serves locally).
MTLS_CONTEXT = {"certificate_arn": "arn:aws:acm:eu-west-1:111122223333:certificate/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b",
                "truststore_uri": "s3://authgate-sandbox-truststore/orders/ca.pem",
                "http_api_domain": "orders.api.example.com", "rest_api_domain": "orders-rest.api.example.com"}


@dataclass
class MtlsSandbox(StoppedOnExit):
    """The provider with its TLS listener, the run's certificates, the backend and the emulated HTTP API on its
    mutual TLS domain; a context manager (everything stopped on leaving, also on errors)."""

    log: Callable[[str], None] = lambda line: None
    idp: Any = None
    idp_setup: Any = None
    synthesized: Any = None
    workdir: Path | None = None
    ca: Any = None
    certs: dict = field(default_factory=dict)
    backend: Any = None
    gateway: Any = None               # sandbox.environment.GatewayHandle
    _running: ExitStack = field(default_factory=ExitStack)

    def start(self) -> "MtlsSandbox":
        from sandbox.artifacts import _aws_stack
        from sandbox.backend import Backend, GuardVerdict
        from sandbox.environment import ISSUER_VARIABLE, PLACEHOLDER_ISSUER, GatewayHandle
        from sandbox.gateways.http_api import HttpApiEmulator
        from sandbox.gateways.server import GatewayServer
        from sandbox.idp.config import build_idp_setup
        from sandbox.idp.launcher import IdpProcess
        from sandbox.synth_cache import synthesize
        from sandbox.tls_material import ThrowawayCa
        from stacks.policy import load_policy

        self.workdir = Path(self._running.enter_context(tempfile.TemporaryDirectory(prefix="authgate-mtls-")))
        self.synthesized = synthesize(POLICY, API, variable=ISSUER_VARIABLE, log=self.log,
                                      context={"authgate:mtls_domain": MTLS_CONTEXT})
        self.ca = ThrowawayCa(self.workdir / "tls")
        self.certs = {"server": self.ca.issue("127.0.0.1", server=True), "robot": self.ca.issue("demo-robot"),
                      "intruder": self.ca.issue("intruder")}
        self.log(f"throwaway CA for this run in {self.ca.directory}: certificates for the servers, demo-robot and an "
                 f"intruder")
        self.idp_setup = build_idp_setup(load_policy(POLICY, variables={ISSUER_VARIABLE: PLACEHOLDER_ISSUER}), "local")
        self.idp_setup.document["tls"] = {"cert_file": str(self.certs["server"].path),
                                          "key_file": str(self.certs["server"].key_path)}
        for client in self.idp_setup.document["clients"]:
            if client["client_id"] == CLIENT:
                client["certificate_bound"] = True
        self.idp = self._running.enter_context(IdpProcess(self.idp_setup.document, log_path=self.workdir / "idp.log"))
        self.log(f"OpenID provider at {self.idp.issuer}, its mutual TLS listener at {self.idp.tls_origin}")
        # The backend cannot see the client's certificate (TLS ends at the gateway): it relies on the gateway here.
        self.backend = Backend({"bearer": lambda *_: GuardVerdict(True, subject="(decided at the gateway)")})
        self._running.callback(self.backend.stop)
        self.backend.start()
        template, code_root_of, route_table, app = _aws_stack(self, "HttpApi")
        emulator = HttpApiEmulator(template, code_root_of=code_root_of, route_table_path=route_table)
        server = GatewayServer(emulator, self.backend.url("bearer"), tls=self._truststore_context())
        self._running.callback(server.stop)
        server.start()
        self.gateway = GatewayHandle("aws-http-api", GATEWAY_TITLE, server,
                                     f"CloudFormation ({app.template_path('HttpApi').name}, authgate synth, domain "
                                     f"{emulator.mtls_domain})")
        self.log(f"{GATEWAY_TITLE} emulated from {self.gateway.artifact} at {server.url}")
        return self

    def _truststore_context(self) -> ssl.SSLContext:
        """The domain's handshake: the server certificate, and client certificates required from the run's CA."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.certs["server"].path), str(self.certs["server"].key_path))
        context.load_verify_locations(cafile=str(self.ca.path))
        context.verify_mode = ssl.CERT_REQUIRED
        return context

    def client_context(self, cert: str) -> ssl.SSLContext:
        return self.certs[cert].client_context(self.ca)

    def bound_token(self, cert: str = "robot") -> str:
        """A token from the provider's mutual TLS token endpoint, bound to the certificate `cert`."""
        from sandbox.idp.config import resource_indicator
        from sandbox.oidc_client import client_credentials

        path = urllib.parse.urlsplit(self.idp.discovery()["token_endpoint"]).path
        robot = self.idp_setup.clients[CLIENT]
        return client_credentials(self.idp.tls_origin + path, CLIENT, robot.client_secret, scope="orders:read",
                                  resource=resource_indicator("orders-api"), context=self.client_context(cert)
                                  ).access_token

    def stop(self) -> None:
        self._running.close()


def show_certificate_binding(world: MtlsSandbox, narrator: Narrator) -> None:
    from sandbox.oidc_client import OidcFlowError
    from sandbox.report import describe_token

    try:
        token = world.bound_token()
    except OidcFlowError as exc:
        narrator.expect("mtls: token over mutual TLS", "IdP", "certificate-bound token", "failed", str(exc))
        return
    payload = token.split(".")[1]
    cnf = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))).get("cnf", {})
    bound = cnf.get("x5t#S256") == world.certs["robot"].thumbprint
    narrator.hop(f"{CLIENT} -> IdP (mutual TLS)", "POST /token, client credentials, with its client certificate",
                 f"{describe_token(token)}, cnf x5t#S256 {'=' if bound else '!='} its certificate's thumbprint")
    narrator.expect("mtls: token bound to the client certificate", "IdP", "cnf x5t#S256 of demo-robot's certificate",
                    "cnf x5t#S256 of demo-robot's certificate" if bound else f"cnf {cnf}")
    expect_call(narrator, world, "mtls: bound token with its own certificate", f"{CLIENT} (its certificate)",
                world.gateway, BOUND_ROUTE, token, 200, "backend", context=world.client_context("robot"))
    expect_call(narrator, world, "mtls: bound token with another client certificate", "intruder (another certificate)",
                world.gateway, BOUND_ROUTE, token, 403, "gateway", context=world.client_context("intruder"))
    intruders_token = world.bound_token("intruder")
    expect_call(narrator, world, "mtls: a token bound to another certificate, on robot's connection",
                f"{CLIENT} (its certificate)", world.gateway, BOUND_ROUTE, intruders_token, 403, "gateway",
                context=world.client_context("robot"))


def certificate_bound(narrator: Narrator) -> None:
    narrator.section("7. Certificate-bound tokens (RFC 8705): the HTTP API's mutual TLS domain passes the client "
                     "certificate; a token works only with the certificate it was issued to")

    def body(world: MtlsSandbox) -> None:
        narrator.note(f"policy {POLICY.name}: {BOUND_ROUTE[0]} /orders/{{id}} has proof: mtls; issuer local binds "
                      f"tokens to certificates (binding.mtls)")
        show_certificate_binding(world, narrator)

    run_demo_section(narrator, MtlsSandbox(log=narrator.note), body, step="mtls: sandbox available",
                     gateway=GATEWAY_TITLE)
