"""`authgate synth`: synthesize the AWS CDK stacks without credentials and say which authorizer each route uses."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

CDK_JSON = "cdk.json"
CDK_CONTEXT_JSON = "cdk.context.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", help="policy file (default: authgate:policy in cdk.json)")
    parser.add_argument("--api", help="API of the policy to deploy (default: authgate:api in cdk.json)")
    parser.add_argument("--stage", action="append", dest="stages", metavar="NAME",
                        help="stage to synthesize (repeatable; default: authgate:stages in cdk.json)")
    parser.add_argument("--authorizer-asset", metavar="DIR",
                        help="built authorizer asset directory (lambdas/ plus its Linux runtime dependencies)")
    parser.add_argument("-c", "--context", action="append", default=[], metavar="KEY=VALUE",
                        help="extra CDK context, as with `cdk synth -c` (repeatable)")
    parser.add_argument("-o", "--output", default="cdk.out", help="cloud assembly directory (default: cdk.out)")
    parser.add_argument("--project-dir", default=".", help="where cdk.json is (default: current directory)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON document (each route's authorizer and why, the templates) on stdout")


def project_context(project_dir: Path) -> dict:
    """cdk.json's context, then cdk.context.json over it: what `cdk synth` would see."""
    context: dict = {}
    for name in (CDK_JSON, CDK_CONTEXT_JSON):
        path = project_dir / name
        if path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
            context.update(data.get("context", {}) if name == CDK_JSON else data)
    return context


def route_authorizers(plan) -> list[dict]:
    """Per HTTP API route: which authorizer enforces it (public, native or lambda), its name, and why."""
    out = []
    for route in plan.routes:
        entry = {"route": route.route_key, "authorizer": "public" if route.public else
                 "native" if route.native else "lambda", "name": None, "scopes": [], "because": None}
        if route.native:
            entry.update(name=f"jwt-{route.issuers[0]}", scopes=list(route.scopes))
        elif not route.public:
            entry["name"] = f"authgate-{plan.name}"
        entry["because"] = route.enforcement_reason or None
        out.append(entry)
    return out


def _rest_api_line(plan, rest_authorizer_type: str) -> str:
    return (f"every non-public route runs the Lambda {rest_authorizer_type.upper()} authorizer (REST APIs have no "
            "native JWT authorizer); WAF rate-based rule on the stage")


def describe_routes(plan, *, rest_authorizer_type: str) -> str:
    """One line per route: the HTTP API mechanism chosen and why; then what the REST API does."""
    width = max(len(route.route_key) for route in plan.routes)
    lines = [f"api {plan.name}: HTTP API"]
    for entry in route_authorizers(plan):
        if entry["authorizer"] == "public":
            mechanism = "public (no authorizer)"
        elif entry["authorizer"] == "native":
            mechanism = f"native JWT authorizer {entry['name']}"
            if entry["scopes"]:
                mechanism += f" scopes any of {', '.join(entry['scopes'])}"
        else:
            mechanism = f"Lambda authorizer {entry['name']}"
        lines.append(f"  {entry['route'].ljust(width)}  {mechanism}")
        if entry["because"]:
            lines.append(f"  {''.ljust(width)}    because: {entry['because']}")
    lines.append(f"api {plan.name}: REST API: {_rest_api_line(plan, rest_authorizer_type)}")
    return "\n".join(lines)


def revocation_lines(plan, settings) -> list[str]:
    """What the app deploys for revocation and proof of possession: the logout endpoint and the mutual TLS domains."""
    from lambdas.backchannel_logout.http_api import LOGOUT_PATH
    from stacks.aws.mtls_domain.infrastructure import mtls_route_keys

    lines = []
    if plan.logout_issuers:
        audiences = sorted({a for name in plan.logout_issuers for a in plan.issuers[name].logout_audiences})
        lines.append(f"api {plan.name}: back-channel logout: POST {LOGOUT_PATH} on the HTTP API, no authorizer (the "
                     f"logout token is checked), for issuer(s) {', '.join(plan.logout_issuers)} and client(s) "
                     f"{', '.join(audiences)}; register https://<HTTP API domain>{LOGOUT_PATH} as their "
                     f"backchannel_logout_uri")
    if mtls_route_keys(plan.api) and settings.mtls_domain is not None:
        from stacks.aws.settings import MTLS_DOMAIN_FIELDS
        domains = ", ".join(f"{stack} on https://{getattr(settings.mtls_domain, field)}"
                            for stack, field in MTLS_DOMAIN_FIELDS.items() if getattr(settings.mtls_domain, field))
        lines.append(f"api {plan.name}: mutual TLS (proof: mtls routes): {domains}; the execute-api endpoints are "
                     f"off")
    return lines


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    os.environ.setdefault("CDK_DISABLE_CLI_TELEMETRY", "true")
    from aws_cdk import App

    from stacks.aws.app import add_nag_checks, build
    from stacks.aws.refusals import UnsupportedConfiguration
    from stacks.aws.settings import AppSettings
    from stacks.policy import PolicyError

    project_dir = Path(args.project_dir)
    context = project_context(project_dir)
    overrides = {"authgate:policy": args.policy, "authgate:api": args.api, "authgate:stages": args.stages,
                 "authgate:authorizer_asset_dir": args.authorizer_asset}
    context.update({key: value for key, value in overrides.items() if value})
    for item in args.context:
        key, sep, value = item.partition("=")
        if not sep or not key:
            print(f"authgate synth: -c takes KEY=VALUE, got {item!r}", file=sys.stderr)
            return 2
        context[key] = value
    try:
        app = App(outdir=args.output, context=context)
        settings = AppSettings.from_context(app.node.try_get_context)
        plan = build(app, settings)
        add_nag_checks(app)
    except (UnsupportedConfiguration, PolicyError, FileNotFoundError) as exc:
        print(f"authgate synth: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:   # a CDK validation error raised while building (e.g. an invalid property)
        print(f"authgate synth: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    from stacks.aws.rest_api.infrastructure import AuthgateRestApi
    rest_cache = sorted({f"api {c.plan.name}: {c.cache.summary}" for c in app.node.find_all()
                         if isinstance(c, AuthgateRestApi) and c.cache is not None})
    from stacks.aws.authorizer_asset import building_python, lambda_runtime_name
    runtime_line = (f"{lambda_runtime_name()} on arm64, because Python {building_python()} builds the asset and its "
                    "bytecode is valid only for that version (the runtime follows the building interpreter)")
    websocket_line = (f"$connect runs the Lambda REQUEST authorizer (token from {settings.websocket.token_source}); "
                      "message routes ride the authorized connection") if settings.websocket else None
    if not args.json:
        print(describe_routes(plan, rest_authorizer_type=settings.rest_authorizer_type))
        for line in rest_cache:
            print(line)
        print(f"authorizer functions: {runtime_line}")
        if websocket_line:
            print(f"api {settings.websocket.api}: WebSocket API: {websocket_line}")
        for line in revocation_lines(plan, settings):
            print(line)
    try:
        assembly = app.synth()
    except RuntimeError as exc:
        # cdk-nag findings arrive as a failed validation; the report names each resource and rule.
        print(f"authgate synth: {exc}", file=sys.stderr)
        return 1
    templates = sorted(str(Path(stack.template_full_path)) for stage in _assemblies(assembly)
                       for stack in stage.stacks)
    if args.json:
        document = {"api": plan.name, "http_api": route_authorizers(plan),
                    "rest_api": _rest_api_line(plan, settings.rest_authorizer_type),
                    "rest_authorizer_cache": rest_cache,
                    "authorizer_functions": runtime_line,
                    "websocket_api": {"api": settings.websocket.api, "authorizer": websocket_line}
                    if settings.websocket else None, "revocation": revocation_lines(plan, settings),
                    "output": args.output, "templates": templates}
        print(json.dumps(document, indent=2))
        return 0
    print(f"{len(templates)} templates in {args.output} (cdk-nag AwsSolutions: no unacknowledged findings):")
    for path in templates:
        print(f"  {path}")
    return 0


def _assemblies(assembly):
    yield assembly
    for artifact in assembly.nested_assemblies:
        yield from _assemblies(artifact.nested_assembly)
