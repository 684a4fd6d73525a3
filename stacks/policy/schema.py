"""The policy file's JSON Schema, generated from the model: `python -m stacks.policy.schema > policies/authgate.schema.json`."""
from __future__ import annotations

import json
import re
import sys
from typing import Any

from stacks.policy.model import AuthPolicy
from stacks.policy.route_keys import METHODS, WEBSOCKET_PREDEFINED_ROUTES

SCHEMA_ID = "https://authgate.dev/schemas/authgate.schema.json"
_SEGMENT = r"(?:[A-Za-z0-9._~!$&'()*,;=:@-]+|\{[A-Za-z_][A-Za-z0-9_]*\})"
ROUTE_KEY_PATTERN = (rf"^(?:{'|'.join(METHODS)}) (?:/|(?:/{_SEGMENT})*(?:/\{{[A-Za-z_][A-Za-z0-9_]*\+\}})?)$")
NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,62}$"
WEBSOCKET_ROUTE_KEY_PATTERN = (r"^(?:" + "|".join(re.escape(key) for key in WEBSOCKET_PREDEFINED_ROUTES)
                               + r"|[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,127})$")


def policy_json_schema() -> dict[str, Any]:
    """Editors use this to complete and check policy files; the loader stays the authority (cross references,
    profiles, URLs), so the schema accepts a superset of what loads."""
    schema = AuthPolicy.model_json_schema(mode="validation", by_alias=True)
    defs = schema.get("$defs", {})
    # Route keys and names are dict keys; pydantic cannot express their shape, so add it here. Which shape depends
    # on the API's protocol.
    defs["ApiSpec"]["if"] = {"properties": {"protocol": {"const": "websocket"}}, "required": ["protocol"]}
    defs["ApiSpec"]["then"] = {"properties": {"routes": {"propertyNames": {"pattern": WEBSOCKET_ROUTE_KEY_PATTERN}}}}
    defs["ApiSpec"]["else"] = {"properties": {"routes": {"propertyNames": {"pattern": ROUTE_KEY_PATTERN}}}}
    for section in ("issuers", "apis", "clients"):
        schema["properties"][section]["propertyNames"] = {"pattern": NAME_PATTERN}
    issuer_props = defs["IssuerSpec"]["properties"]
    # Defaults depend on the profile; say so rather than show null.
    issuer_props["algorithms"].pop("default", None)
    issuer_props["token_use"].pop("default", None)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            **schema, "title": "authgate auth policy"}


def schema_text() -> str:
    return json.dumps(policy_json_schema(), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    sys.stdout.write(schema_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
