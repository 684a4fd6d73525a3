"""The whole sandbox as one object: the OpenID provider, the artifacts rendered from the policy, the backend, one
loopback gateway per emulation, and the Cognito user pool (moto) with its authorizer. Start it, use it, stop it (also
on errors and Ctrl-C: it is a context manager).
"""
from __future__ import annotations

import json
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from sandbox.backend import Backend
from sandbox.gateways.server import GatewayServer
from sandbox.idp.config import IdpSetup, build_idp_setup
from sandbox.idp.launcher import IdpProcess
from sandbox.lifecycle import StoppedOnExit

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POLICY = REPO_ROOT / "policies" / "local.yaml"
ISSUER_VARIABLE = "LOCAL_ISSUER_URL"
# Only used to read the clients and audiences before the provider (and so its URL) exists.
PLACEHOLDER_ISSUER = "http://127.0.0.1:9"
# Another API served by the same provider, which the sandbox's gateways must not accept: the "wrong audience".
FOREIGN_AUDIENCE = "billing-api"


class SandboxInputError(ValueError):
    """A --policy / --api the sandbox cannot run; the message says what it needs. Raised before anything starts."""


def check_sandbox_inputs(policy_path: Path, api: str, issuer_name: str = "local") -> None:
    """The sandbox stands in for one issuer: its own OpenID provider, at a URL known only once it starts. So it runs
    a policy shaped like policies/local.yaml (an issuer `local` at ${LOCAL_ISSUER_URL}, one spa and one service
    client of it) and an HTTP API of that policy whose routes accept it; anything else is refused here, up front."""
    from stacks.policy import PolicyError, load_policy

    shape = (f"the sandbox runs a policy shaped like policies/local.yaml: an issuer named {issuer_name!r} whose "
             f"issuer is ${{{ISSUER_VARIABLE}}} (the sandbox's own OpenID provider, with local_development: true), "
             f"a spa and a service client of it, and an HTTP API whose routes accept it")
    try:
        policy = load_policy(policy_path, variables={ISSUER_VARIABLE: PLACEHOLDER_ISSUER})
    except PolicyError as exc:
        raise SandboxInputError(f"--policy {policy_path}: the policy is not valid:\n{exc}") from None
    issuer = policy.issuers.get(issuer_name)
    if issuer is None or issuer.issuer != PLACEHOLDER_ISSUER:
        found = (f"its issuer {issuer_name!r} is {issuer.issuer}" if issuer is not None
                 else f"it defines issuers {', '.join(policy.issuers)}")
        raise SandboxInputError(f"--policy {policy_path}: {shape}; {found}. Real IdPs' tokens cannot be minted "
                                f"locally: copy policies/local.yaml and change its routes and clients instead")
    kinds = {client.kind for client in policy.clients_of(issuer_name).values()}
    if not {"spa", "service"} <= kinds:
        raise SandboxInputError(f"--policy {policy_path}: {shape}; its clients of {issuer_name!r} are "
                                f"{', '.join(sorted(kinds)) or 'none'}")
    api_spec = policy.apis.get(api)
    if api_spec is None:
        raise SandboxInputError(f"--api {api!r} is not in {policy_path}; choose one of: {', '.join(policy.apis)}")
    if api_spec.is_websocket or not any(issuer_name in route.issuers for route in api_spec.routes.values()):
        usable = [name for name, spec in policy.apis.items() if not spec.is_websocket
                  and any(issuer_name in route.issuers for route in spec.routes.values())]
        raise SandboxInputError(f"--api {api!r}: the sandbox's gateways serve an HTTP API whose routes accept issuer "
                                f"{issuer_name!r}; in {policy_path} that is: {', '.join(usable) or 'none'}")


@dataclass
class GatewayHandle:
    name: str
    title: str
    server: GatewayServer | None
    artifact: str                     # where the configuration came from, for the narration
    error: str = ""                   # why this gateway could not be built (then server is None)

    @property
    def url(self) -> str:
        return self.server.url if self.server else ""


@dataclass
class Sandbox(StoppedOnExit):
    policy_path: Path = DEFAULT_POLICY
    api: str = "orders"
    issuer_name: str = "local"
    gateways_wanted: tuple[str, ...] = ("aws-http-api", "aws-rest-api", "gcp-api-gateway", "azure-apim", "nginx")
    log: Callable[[str], None] = lambda line: None
    idp: IdpProcess | None = None
    idp_setup: IdpSetup | None = None
    policy: Any = None
    route_table: dict = field(default_factory=dict)
    route_table_path: Path | None = None
    backend: Backend | None = None
    gateways: dict[str, GatewayHandle] = field(default_factory=dict)
    workdir: Path | None = None
    synthesized: Any = None           # sandbox.synth_cache.SynthesizedApp: the HttpApi and RestApi templates
    gateway_service_account: Any = None
    cognito_wanted: bool = True
    cognito: Any = None               # sandbox.cognito_api.CognitoApi once its pool and authorizer are up
    cognito_error: str = ""           # why the Cognito flow could not start (then cognito is None)
    not_started: dict[str, str] = field(default_factory=dict)   # gateway -> why it was left out (nginx missing)
    _tmp: tempfile.TemporaryDirectory | None = None

    def start(self) -> "Sandbox":
        from stacks.policy import load_policy
        from stacks.policy.render import render_route_table

        check_sandbox_inputs(self.policy_path, self.api, self.issuer_name)
        self._tmp = tempfile.TemporaryDirectory(prefix="authgate-sandbox-")
        self.workdir = Path(self._tmp.name)
        draft = load_policy(self.policy_path, variables={ISSUER_VARIABLE: PLACEHOLDER_ISSUER})
        self.idp_setup = build_idp_setup(draft, self.issuer_name, extra_audiences=(FOREIGN_AUDIENCE,))
        self.idp = IdpProcess(self.idp_setup.document, log_path=self.workdir / "idp.log").start()
        self.log(f"OpenID provider ready at {self.idp.issuer} (signing key {self.idp.signing_kid})")
        self.policy = load_policy(self.policy_path, variables={ISSUER_VARIABLE: self.idp.issuer})
        self.route_table = render_route_table(self.policy)
        self.route_table_path = self.workdir / "authgate_routes.json"
        self.route_table_path.write_text(json.dumps(self.route_table, indent=2))
        self.log(f"route table rendered from {self.policy_path.name}: {self.route_table_path}")

        self.backend = self._start_backend()
        self.log(f"backend (service B) listening at {self.backend.url('bearer')} and "
                 f"{self.backend.url('gcp-userinfo')}")
        from sandbox.artifacts import GATEWAY_BUILDERS, needs_synth
        if needs_synth(self.gateways_wanted):
            from sandbox.synth_cache import synthesize
            self.synthesized = synthesize(self.policy_path, self.api, variable=ISSUER_VARIABLE, log=self.log)
            self.log(f"AWS templates {'from the synth cache' if self.synthesized.cached else 'synthesized'} "
                     f"({self.synthesized.seconds:.1f}s): {self.synthesized.assembly_dir}")
        for name in self.gateways_wanted:
            if name == "nginx":
                self._start_nginx()
                continue
            builder = GATEWAY_BUILDERS.get(name)
            try:
                if builder is None:
                    raise LookupError(f"no artifact builder for {name} in sandbox/artifacts.py")
                emulator, door, artifact, title = builder(self)
            except Exception as exc:  # one missing artifact must not hide the others; the demo reports it
                self.gateways[name] = GatewayHandle(name, name, None, "", f"{type(exc).__name__}: {exc}")
                self.log(f"gateway {name} NOT available: {type(exc).__name__}: {exc}")
                continue
            server = GatewayServer(emulator, self.backend.url(door)).start()
            self.gateways[name] = GatewayHandle(name, title, server, artifact)
            self.log(f"{title} emulated from {artifact} at {server.url}")
        if self.cognito_wanted:
            self._start_cognito()
        return self

    def _start_nginx(self) -> None:
        """A real NGINX, not an emulator: left out (and said how to get it) when Debian's nginx is not installed."""
        from sandbox.artifacts import start_nginx
        from sandbox.gateways.nginx import INSTALL_HINT, nginx_binary

        title = "NGINX auth_request"
        if nginx_binary() is None:
            self.not_started["nginx"] = f"nginx is not installed; {INSTALL_HINT}"
            self.log(f"{title} NOT started: {self.not_started['nginx']}")
            return
        try:
            gateway, artifact = start_nginx(self)
        except Exception as exc:  # reported by the demo like any gateway that could not be built
            self.gateways["nginx"] = GatewayHandle("nginx", title, None, "", f"{type(exc).__name__}: {exc}")
            self.log(f"{title} NOT available: {type(exc).__name__}: {exc}")
            return
        self.gateways["nginx"] = GatewayHandle("nginx", title, gateway, artifact)
        self.log(f"{title} (real nginx) from {artifact} at {gateway.url}")

    def _start_cognito(self) -> None:
        from sandbox.cognito_api import CognitoApi

        # Assigned before starting, so stop() reaches the emulator even when setting up the pool fails midway.
        self.cognito = CognitoApi(self.workdir)
        try:
            self.cognito.start()
        except Exception as exc:  # like a gateway: the other flows still run, and the demo reports it
            self.cognito.stop()
            self.cognito = None
            self.cognito_error = f"{type(exc).__name__}: {exc}"
            self.log(f"Cognito flow NOT available: {self.cognito_error}")
            return
        self.log(f"Cognito user pool {self.cognito.pool.pool_id} emulated by moto at {self.cognito.emulator.endpoint}"
                 f"; route table from {self.cognito.policy_path.name}: {self.cognito.route_table_path}")

    def _start_backend(self) -> Backend:
        """Service B with two doors, each guarded by lambdas.guards over the rendered route table."""
        from lambdas.guards.gcp import GcpGatewayGuard, gateway_issuer_config
        from lambdas.guards.require import BearerGuard
        from lambdas.validation import Verifier
        from lambdas.validation.route_table import RouteTable
        from sandbox.backend import bearer_door, gcp_userinfo_door
        from sandbox.gateways.gcp_api_gateway import GatewayServiceAccount

        table = RouteTable.load(self.route_table)
        self.gateway_service_account = GatewayServiceAccount()
        backend = Backend({"bearer": lambda *_: None, "gcp-userinfo": lambda *_: None})
        # The GCP door's guard needs the door's own URL (the audience of the gateway's ID token), so the doors are
        # bound to their guards once the ports exist and before anything can call them.
        gcp_audience = backend.url("gcp-userinfo")
        gateway_verifier = Verifier([gateway_issuer_config(gcp_audience, jwks=self.gateway_service_account.jwks())])
        readers = [GcpGatewayGuard(issuers=[spec["issuer"]], gateway_verifier=gateway_verifier,
                                   gateway_service_account=self.gateway_service_account.email,
                                   profile=spec.get("profile") or "generic", issuer_name=name)
                   for name, spec in self.route_table["issuers"].items()]
        backend.bind("bearer", bearer_door(BearerGuard.from_route_table(table, self.api)))
        backend.bind("gcp-userinfo", gcp_userinfo_door(readers, table.api(self.api)))
        return backend.start()

    def stop(self) -> None:
        # moto's server notices a shutdown only at its next half-second poll: wait for it beside the other stops.
        cognito_stopping = threading.Thread(target=self.cognito.stop, name="cognito-stop") if self.cognito else None
        if cognito_stopping:
            cognito_stopping.start()
        for handle in self.gateways.values():
            if handle.server:
                handle.server.stop()
        self.gateways = {}
        if cognito_stopping:
            cognito_stopping.join()
            self.cognito = None
        if self.backend:
            self.backend.stop()
            self.backend = None
        if self.idp:
            self.idp.stop()
            self.idp = None
        if self._tmp:
            self._tmp.cleanup()
            self._tmp = None

    # Conveniences for the demo and the tests.
    @property
    def discovery(self) -> dict:
        assert self.idp is not None
        return self.idp.discovery()

    def running_gateways(self) -> list[GatewayHandle]:
        return [g for g in self.gateways.values() if g.server is not None]
