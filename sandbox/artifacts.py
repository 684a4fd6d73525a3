"""From the policy to the artifacts each cloud deploys, and from each artifact to its gateway emulator.

Every builder produces the deployable artifact with the project's own renderer or synthesizer (never a second copy
of the rules) and hands it to the emulator, which reads only that artifact. A builder returns
(emulator, backend door, where the configuration came from, display title).
"""
from __future__ import annotations

import json
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
    emulator = GcpApiGatewayEmulator(document)
    if emulator.backend_address != backend_url:
        raise ValueError(f"the OpenAPI document's x-google-backend {emulator.backend_address} is not the backend")
    return emulator, "gcp-userinfo", f"OpenAPI 2.0 ({path.name}, render_openapi)", "GCP API Gateway"


GATEWAY_BUILDERS: dict[str, Callable[["Sandbox"], BuilderResult]] = {
    "gcp-api-gateway": build_gcp_api_gateway,
}
