"""Reading a synthesized CloudFormation template the way the emulators need it: resources by type, Refs resolved.

Only what CDK emits for the gateway resources is understood (Ref, Fn::GetAtt to a logical id, literal values);
anything else in a field an emulator relies on is an error naming the resource and field, never a guess.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, Mapping


class TemplateError(ValueError):
    """The template lacks, or hides behind an intrinsic function, something an emulator needs."""


class Template:
    def __init__(self, document: Mapping[str, Any], *, source: str = "<template>") -> None:
        self.document = document
        self.source = source
        self.resources: Mapping[str, Mapping[str, Any]] = document.get("Resources") or {}

    @classmethod
    def load(cls, path: str | Path) -> "Template":
        path = Path(path)
        try:
            return cls(json.loads(path.read_text()), source=str(path))
        except (OSError, ValueError) as exc:
            raise TemplateError(f"cannot read CloudFormation template {path}: {exc}") from None

    def of_type(self, resource_type: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
        for logical_id, resource in self.resources.items():
            if resource.get("Type") == resource_type:
                yield logical_id, resource.get("Properties") or {}

    def ref_target(self, value: Any, *, where: str) -> str:
        """The logical id a {"Ref": id} or {"Fn::GetAtt": [id, attr]} points at."""
        if isinstance(value, Mapping):
            if "Ref" in value:
                return str(value["Ref"])
            if "Fn::GetAtt" in value:
                target = value["Fn::GetAtt"]
                return str(target[0] if isinstance(target, list) else str(target).split(".")[0])
        raise TemplateError(f"{self.source}: {where} is {json.dumps(value)[:120]}, expected a Ref to a resource")

    def literal(self, value: Any, *, where: str) -> Any:
        """A value that must be known at synth time (issuer, audiences, scopes, route keys)."""
        if isinstance(value, Mapping) and any(k == "Ref" or k.startswith("Fn::") for k in value):
            raise TemplateError(f"{self.source}: {where} is {json.dumps(value)[:120]}, which the sandbox cannot "
                                "resolve; it needs the literal value in the template")
        if isinstance(value, list):
            return [self.literal(v, where=where) for v in value]
        return value

    def mtls_domain(self, api_logical_id: str) -> str | None:
        """The custom domain with mutual TLS mapped to the API (HTTP API: ApiGatewayV2 DomainName + ApiMapping;
        REST: ApiGateway DomainName + BasePathMapping), None when it has none. Only there does API Gateway ask
        for a client certificate and pass it to the authorizer (requestContext ... clientCert)."""
        domains = {lid: props for kind in ("AWS::ApiGatewayV2::DomainName", "AWS::ApiGateway::DomainName")
                   for lid, props in self.of_type(kind) if props.get("MutualTlsAuthentication")}
        for kind, api_key in (("AWS::ApiGatewayV2::ApiMapping", "ApiId"), ("AWS::ApiGateway::BasePathMapping",
                                                                           "RestApiId")):
            for lid, props in self.of_type(kind):
                if self.ref_target(props.get(api_key), where=f"{lid}.{api_key}") != api_logical_id:
                    continue
                domain = domains.get(self.ref_target(props.get("DomainName"), where=f"{lid}.DomainName"))
                if domain is not None:
                    return self.literal(domain.get("DomainName"), where=f"{lid}.DomainName")
        return None

    def lambda_environment(self, function_logical_id: str) -> dict[str, str]:
        function = self.resources.get(function_logical_id) or {}
        env = ((function.get("Properties") or {}).get("Environment") or {}).get("Variables") or {}
        return {k: v for k, v in env.items() if isinstance(v, str)}

    def function_handler(self, function_logical_id: str) -> str:
        """A Lambda function's Handler string ("package.module.function")."""
        function = self.resources.get(function_logical_id) or {}
        if function.get("Type") != "AWS::Lambda::Function":
            raise TemplateError(f"{self.source}: {function_logical_id} is not an AWS::Lambda::Function")
        return self.literal((function.get("Properties") or {}).get("Handler"), where=f"{function_logical_id}.Handler")

    def function_behind(self, uri: Any, *, where: str) -> str:
        """The Lambda function an authorizer URI (Fn::Join of ...:lambda:path/.../functions/<arn>/invocations) names."""
        found: list[str] = []

        def walk(node: Any) -> None:
            if isinstance(node, Mapping):
                if "Fn::GetAtt" in node or "Ref" in node:
                    try:
                        target = self.ref_target(node, where=where)
                    except TemplateError:
                        return
                    if (self.resources.get(target) or {}).get("Type") == "AWS::Lambda::Function":
                        found.append(target)
                    return
                for child in node.values():
                    walk(child)
            elif isinstance(node, list):
                for child in node:
                    walk(child)

        walk(uri)
        if len(set(found)) != 1:
            raise TemplateError(f"{self.source}: {where} does not name exactly one Lambda function in this template")
        return found[0]
