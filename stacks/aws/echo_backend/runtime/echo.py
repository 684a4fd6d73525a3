"""Echo backend: answers with the route and the identity the gateway's authorizer passed along (never the token)."""
import json


def handler(event, context):
    request_context = event.get("requestContext") or {}
    authorizer = request_context.get("authorizer") or {}
    # HTTP API nests the JWT authorizer's claims under "jwt" and the Lambda authorizer's context under "lambda";
    # REST API puts the Lambda authorizer's context at the top level.
    identity = authorizer.get("jwt", {}).get("claims") or authorizer.get("lambda") or {
        key: value for key, value in authorizer.items() if key not in ("principalId", "integrationLatency")}
    body = {
        "route": request_context.get("routeKey") or f"{event.get('httpMethod')} {request_context.get('resourcePath')}",
        "principal": authorizer.get("principalId") or identity.get("sub"),
        "identity": identity,
    }
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}
