"""WebSocket echo backend: accepts connections $connect authorized and answers each message with who sent it."""
import json
import os

# With the token in Sec-WebSocket-Protocol, the browser offers "<marker>, <token>" and drops the connection unless
# the handshake answer selects one of the offered protocols: select the marker, never the token.
PROTOCOL_MARKER = os.environ.get("AUTHGATE_WS_PROTOCOL_MARKER", "authgate.bearer")


def _offered_protocols(event):
    for name, value in (event.get("headers") or {}).items():
        if name.lower() == "sec-websocket-protocol" and isinstance(value, str):
            return [p.strip() for p in value.split(",")]
    return []


def handler(event, context):
    request_context = event.get("requestContext") or {}
    route = request_context.get("routeKey")
    if route == "$connect":
        response = {"statusCode": 200}
        if PROTOCOL_MARKER in _offered_protocols(event):
            response["headers"] = {"Sec-WebSocket-Protocol": PROTOCOL_MARKER}
        return response
    if route == "$disconnect":
        return {"statusCode": 200}
    # API Gateway hands every message the context the $connect authorizer returned for this connection.
    authorizer = request_context.get("authorizer") or {}
    identity = {key: value for key, value in authorizer.items() if key not in ("principalId", "integrationLatency")}
    body = {"route": route, "connection": request_context.get("connectionId"),
            "principal": authorizer.get("principalId"), "identity": identity}
    return {"statusCode": 200, "body": json.dumps(body)}
