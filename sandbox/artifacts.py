"""From the policy to the artifacts each cloud deploys, and from each artifact to its gateway emulator.

Every builder produces the deployable artifact with the project's own renderer or synthesizer (never a second copy
of the rules) and hands it to the emulator, which reads only that artifact. A builder returns
(emulator, backend door, where the configuration came from, display title).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from sandbox.environment import Sandbox

BuilderResult = tuple[Any, str, str, str]


def build_gcp_api_gateway(sandbox: "Sandbox") -> BuilderResult:
    from stacks.policy.render.openapi import render_openapi
    from sandbox.gateways.gcp_api_gateway import GcpApiGatewayEmulator

    backend_url = sandbox.backend.url("gcp-userinfo")
    document = render_openapi(sandbox.policy, sandbox.api, backend_url=backend_url)
    path = sandbox.workdir / "gcp-openapi.json"
    path.write_text(json.dumps(document, indent=2))
    emulator = GcpApiGatewayEmulator(document, service_account=sandbox.gateway_service_account)
    if emulator.backend_address != backend_url:
        raise ValueError(f"the OpenAPI document's x-google-backend {emulator.backend_address} is not the backend")
    return emulator, "gcp-userinfo", f"OpenAPI 2.0 ({path.name}, render_openapi)", "GCP API Gateway"


def _aws_stack(sandbox: "Sandbox", stack_id: str):
    """The synthesized stack's template pointed at the running provider, and what its Lambda functions need: the
    directory each function's code was bundled from, and the bundled route table pointed at the provider too."""
    from sandbox.gateways.cfn import Template
    from sandbox.synth_cache import localize, localize_route_table

    app = sandbox.synthesized
    if app is None:
        raise RuntimeError("the AWS stacks were not synthesized")
    raw = app.template(stack_id)
    template = Template(localize(raw, sandbox.idp.issuer), source=app.template_path(stack_id).name)
    tables: dict[str, Path] = {}

    def code_root_of(function_id: str) -> Path:
        return app.function_asset_dir(stack_id, raw, function_id)

    def route_table_for(function_id: str) -> str:
        root = code_root_of(function_id)
        env = template.lambda_environment(function_id)
        bundled = env.get("AUTHGATE_POLICY", "")
        if not bundled.startswith(LAMBDA_TASK_ROOT + "/"):
            raise ValueError(f"{function_id}: AUTHGATE_POLICY {bundled!r} is not inside the function's code")
        table = json.loads((root / bundled[len(LAMBDA_TASK_ROOT) + 1:]).read_text(encoding="utf-8"))
        path = sandbox.workdir / f"{stack_id}-{function_id}-routes.json"
        path.write_text(json.dumps(localize_route_table(table, sandbox.idp.issuer), indent=2))
        tables[function_id] = path
        return str(path)

    # The authorizer, not the stack's other functions running the same asset (the back-channel logout endpoint):
    # they share its bundled route table, so the localized copy serves them too.
    functions = {fid for fid, _ in template.of_type("AWS::Lambda::Function")
                 if "AUTHGATE_POLICY" in template.lambda_environment(fid)
                 and template.function_handler(fid).startswith("lambdas.authorizers.")}
    if len(functions) != 1:
        raise ValueError(f"{stack_id}: expected one authorizer function, found {sorted(functions)}")
    (function_id,) = functions
    return template, code_root_of, route_table_for(function_id), app


def build_aws_http_api(sandbox: "Sandbox") -> BuilderResult:
    from sandbox.gateways.http_api import HttpApiEmulator

    template, code_root_of, table, app = _aws_stack(sandbox, "HttpApi")
    emulator = HttpApiEmulator(template, code_root_of=code_root_of, route_table_path=table)
    return emulator, "bearer", f"CloudFormation ({app.template_path('HttpApi').name}, authgate synth)", \
        "AWS HTTP API"


def build_aws_rest_api(sandbox: "Sandbox") -> BuilderResult:
    from sandbox.gateways.rest_api import RestApiEmulator

    template, code_root_of, table, app = _aws_stack(sandbox, "RestApi")
    emulator = RestApiEmulator(template, code_root_of=code_root_of, route_table_path=table)
    return emulator, "bearer", f"CloudFormation ({app.template_path('RestApi').name}, authgate synth)", \
        "AWS REST API"


def build_azure_apim(sandbox: "Sandbox") -> BuilderResult:
    """render_apim refuses a loopback issuer (APIM could not reach it), so the XML is rendered for the deploy-shaped
    policy (placeholder https issuer, see sandbox/synth_cache.py) and the placeholder is then replaced by the running
    provider's URL, the one substitution the emulator's input gets."""
    from stacks.azure.apim import operations_for_routes
    from stacks.policy import load_policy_text
    from stacks.policy.render.apim import render_apim, render_apim_operations
    from sandbox.gateways.apim import ApimEmulator
    from sandbox.synth_cache import deploy_shaped_policy, localize
    from sandbox.environment import ISSUER_VARIABLE

    shaped = load_policy_text(deploy_shaped_policy(sandbox.policy_path, variable=ISSUER_VARIABLE),
                              file=f"{sandbox.policy_path.name} (deploy shape)", base_dir=sandbox.policy_path.parent)
    issuer = sandbox.idp.issuer
    api_xml = localize(render_apim(shaped, sandbox.api), issuer)
    operation_xml = {k: localize(v, issuer) for k, v in render_apim_operations(shaped, sandbox.api).items()}
    (sandbox.workdir / "apim-api-policy.xml").write_text(api_xml)
    for index, (route_key, xml) in enumerate(operation_xml.items()):
        (sandbox.workdir / f"apim-operation-{index}.xml").write_text(f"<!-- {route_key} -->\n{xml}")
    operations = [(op.route_key, op.method, op.url_template)
                  for op in operations_for_routes(list(shaped.api(sandbox.api).routes))]
    emulator = ApimEmulator(api_xml, operations, operation_xml)
    return emulator, "bearer", (f"validate-jwt XML (render_apim: API policy + {len(operation_xml)} operation "
                                "policies)"), "Azure APIM"


def start_nginx(sandbox: "Sandbox", door: str = "bearer"):
    """Debian's nginx with render_nginx's configuration, auth_request to the forward-auth service (started here,
    in this process, on the sandbox's route table), in front of the backend's bearer door. Returns the running
    gateway (url, events, stop) and where its configuration came from."""
    from urllib.parse import urlsplit

    from lambdas.authorizers.runtime import AuthorizerRuntime
    from lambdas.forward_auth.app import ForwardAuthApp
    from lambdas.forward_auth.proxy_facts import parse_trusted_proxies
    from lambdas.forward_auth.service import ForwardAuthService, ForwardAuthSettings
    from lambdas.validation.route_table import RouteTable
    from sandbox.gateways.nginx import INSTALL_HINT, ForwardAuthThread, NginxGateway, free_loopback_port, nginx_binary
    from stacks.policy.render.nginx import render_nginx

    binary = nginx_binary()
    if binary is None:
        raise FileNotFoundError(f"nginx is not installed; {INSTALL_HINT}")
    from sandbox.metrics_summary import AuditTap

    # The tap keeps the service's audit lines for the demo's metrics summary.
    # NGINX reaches the service from 127.0.0.1: its forwarded URL and client certificate are trusted from there.
    settings = ForwardAuthSettings(convention="nginx", trusted_proxies=parse_trusted_proxies("127.0.0.1"))
    service = ForwardAuthService(AuthorizerRuntime(RouteTable.load(sandbox.route_table), sandbox.api), settings,
                                 observers=[AuditTap()])
    forward_auth = ForwardAuthThread(ForwardAuthApp(service)).start()
    try:
        backend = urlsplit(sandbox.backend.url(door)).netloc
        port = free_loopback_port()
        config = render_nginx(sandbox.policy, sandbox.api, backend=backend, forward_auth=forward_auth.address,
                              listen=f"127.0.0.1:{port}")
        gateway = NginxGateway(config, sandbox.workdir / "nginx", port, backend, forward_auth, binary=binary)
        (sandbox.workdir / "nginx.server.conf").write_text(config)
        gateway.start()
    except BaseException:
        forward_auth.stop()
        raise
    return gateway, "NGINX server block (render_nginx) + forward-auth service"


AWS_GATEWAYS = ("aws-http-api", "aws-rest-api")
# Where the Lambda runtime unpacks a function's code; paths in its environment are relative to it.
LAMBDA_TASK_ROOT = "/var/task"

GATEWAY_BUILDERS: dict[str, Callable[["Sandbox"], BuilderResult]] = {
    "aws-http-api": build_aws_http_api,
    "aws-rest-api": build_aws_rest_api,
    "gcp-api-gateway": build_gcp_api_gateway,
    "azure-apim": build_azure_apim,
}


def needs_synth(gateways: tuple[str, ...]) -> bool:
    return any(name in AWS_GATEWAYS for name in gateways)
