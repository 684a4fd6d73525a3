"""Build the stack the config asks for: load the policy once, then hand it to the GCP or Azure stack builder."""
from __future__ import annotations

from pathlib import Path

from stacks.pulumi_program.settings import ConfigSource, StackConfigError, read_common


def build_stack(source: ConfigSource | None = None, root: Path | None = None) -> None:
    from stacks.policy import PolicyError, load_policy

    source = source or ConfigSource.from_pulumi()
    common = read_common(source, root)
    try:
        policy = load_policy(common.policy_path)
    except PolicyError as exc:
        # The policy's own error names file, line and field; the stack cannot be built from a broken policy.
        raise StackConfigError("authgate:policy", f"the policy file is invalid:\n{exc}\n",
                               str(common.policy_path)) from None
    if common.api_name not in policy.apis:
        raise StackConfigError("authgate:api", f"the policy has no API {common.api_name!r} (it has "
                               f"{', '.join(policy.apis)})", next(iter(policy.apis), "orders"))
    if policy.api(common.api_name).is_websocket:
        http_apis = [name for name, api in policy.apis.items() if not api.is_websocket]
        raise StackConfigError("authgate:api", f"API {common.api_name!r} is a WebSocket API (protocol: websocket); "
                               f"GCP API Gateway and Azure API Management serve HTTP APIs only here (WebSocket APIs "
                               f"deploy on AWS: stacks/aws/websocket_api). Pick an HTTP API "
                               f"({', '.join(http_apis) or 'the policy has none'})",
                               next(iter(http_apis), "orders"))
    if common.cloud == "gcp":
        from stacks.gcp.program import build_gcp_stack
        build_gcp_stack(source, policy, common.api_name)
    else:
        from stacks.azure.program import build_azure_stack
        build_azure_stack(source, policy, common.api_name)
