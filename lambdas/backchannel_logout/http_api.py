"""The back-channel logout endpoint as an API Gateway HTTP API Lambda (payload 2.0): `POST /backchannel-logout`."""
from __future__ import annotations

import base64
from typing import Any, Mapping

from .core import BackchannelLogout

# Where the stacks deploy this handler on the HTTP API (stacks/aws/backchannel_logout), the path to register as the
# client's backchannel_logout_uri at the issuer.
LOGOUT_PATH = "/backchannel-logout"
_endpoint: BackchannelLogout | None = None


def handler(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    global _endpoint
    if _endpoint is None:
        _endpoint = BackchannelLogout.from_env()
    http = (event.get("requestContext") or {}).get("http") or {}
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    raw = event.get("body") or ""
    body = base64.b64decode(raw) if event.get("isBase64Encoded") else str(raw).encode("utf-8")
    answer = _endpoint.handle(str(http.get("method", "")), headers.get("content-type"), body)
    return {"statusCode": answer.status, "headers": dict(answer.headers), "isBase64Encoded": False,
            "body": answer.body.decode("utf-8")}
