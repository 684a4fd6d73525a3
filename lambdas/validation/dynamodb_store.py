"""The DynamoDB table every authorizer instance shares: the denylist's entries and the DPoP/logout replay records.

The one module of lambdas/ that imports beyond the standard library and cryptography: boto3 ships in the Lambda
Python runtime, so it is imported here, lazily, and never bundled (pyproject's import-linter contract names this
module as the exception). One table holds both kinds of item, told apart by their key prefix:

  pk (S, partition key)   "jti|<iss>|<jti>", "sid|<iss>|<sid>", "sub|<iss>|<sub>" or "dpop:<hash>" / "logout:<hash>"
  revoked_at (N)          denylist items: when the revocation happened (epoch seconds)
  expires_at (N)          the table's TTL attribute; also checked on read, because TTL deletion lags by up to days

Calls are bounded (short connect/read timeouts, one attempt) so a slow table costs the authorizer a refusal, not
its whole time budget; every failure is raised as "unavailable" and the caller fails closed.
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Iterable

from .denylist import DenylistUnavailable
from .replay import ReplayStoreUnavailable

TTL_ATTRIBUTE = "expires_at"
PARTITION_KEY = "pk"


def dynamodb_client(*, region: str | None = None, endpoint_url: str | None = None, timeout_seconds: float = 0.5):
    """A DynamoDB client with bounded timeouts and no retries (the authorizer's budget is small)."""
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=timeout_seconds, read_timeout=timeout_seconds,
                    retries={"max_attempts": 1, "mode": "standard"})
    return boto3.client("dynamodb", region_name=region, endpoint_url=endpoint_url, config=config)


def _is_conditional_failure(exc: Exception) -> bool:
    response = getattr(exc, "response", None)
    return isinstance(response, dict) and response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class DynamoDbTable:
    """One table, two roles: a DenylistStore (put / get_many) and a ReplayStore (first_use)."""

    def __init__(self, table_name: str, *, client: Any = None, client_factory: Callable[[], Any] = dynamodb_client,
                 clock: Callable[[], float] = time.time) -> None:
        if not isinstance(table_name, str) or not table_name:
            raise ValueError("the DynamoDB store needs the table name")
        self.table_name = table_name
        self._client = client
        self._client_factory = client_factory
        self._clock = clock

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    # ---- DenylistStore ---------------------------------------------------------------------------------------
    def put(self, key: str, *, revoked_at: float, expires_at: float) -> None:
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item={PARTITION_KEY: {"S": key}, "revoked_at": {"N": _number(revoked_at)},
                      TTL_ATTRIBUTE: {"N": str(math.ceil(expires_at))}},
                # A later revocation of the same key wins; an earlier one arriving late changes nothing.
                ConditionExpression="attribute_not_exists(pk) OR revoked_at < :at",
                ExpressionAttributeValues={":at": {"N": _number(revoked_at)}})
        except Exception as exc:  # noqa: BLE001 - botocore's errors are many; each means the same here
            if _is_conditional_failure(exc):
                return
            raise DenylistUnavailable(f"DynamoDB put_item on {self.table_name} failed: {type(exc).__name__}") from None

    def get_many(self, keys: Iterable[str]) -> dict[str, float]:
        keys = list(dict.fromkeys(keys))
        if not keys:
            return {}
        request = {self.table_name: {"Keys": [{PARTITION_KEY: {"S": k}} for k in keys], "ConsistentRead": True,
                                     "ProjectionExpression": "pk, revoked_at, expires_at"}}
        try:
            response = self.client.batch_get_item(RequestItems=request)
        except Exception as exc:  # noqa: BLE001
            raise DenylistUnavailable(f"DynamoDB batch_get_item on {self.table_name} failed: "
                                      f"{type(exc).__name__}") from None
        if response.get("UnprocessedKeys"):
            # Throttled: part of the answer is missing, and a missing entry would read as "not revoked".
            raise DenylistUnavailable(f"DynamoDB left keys of {self.table_name} unprocessed (throttled)")
        now = self._clock()
        found: dict[str, float] = {}
        for item in response.get("Responses", {}).get(self.table_name, []):
            try:
                expires = float(item[TTL_ATTRIBUTE]["N"])
                revoked_at = float(item["revoked_at"]["N"])
                key = item[PARTITION_KEY]["S"]
            except (KeyError, TypeError, ValueError):
                raise DenylistUnavailable(f"an item of {self.table_name} is not a denylist entry") from None
            if expires > now:
                found[key] = revoked_at
        return found

    # ---- ReplayStore -----------------------------------------------------------------------------------------
    def first_use(self, key: str, *, expires_at: float) -> bool:
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item={PARTITION_KEY: {"S": key}, TTL_ATTRIBUTE: {"N": str(math.ceil(expires_at))}},
                ConditionExpression="attribute_not_exists(pk) OR expires_at <= :now",
                ExpressionAttributeValues={":now": {"N": _number(self._clock())}})
        except Exception as exc:  # noqa: BLE001
            if _is_conditional_failure(exc):
                return False
            raise ReplayStoreUnavailable(f"DynamoDB put_item on {self.table_name} failed: "
                                         f"{type(exc).__name__}") from None
        return True


def _number(value: float) -> str:
    return repr(float(value)) if value != int(value) else str(int(value))


__all__ = ["DynamoDbTable", "PARTITION_KEY", "TTL_ATTRIBUTE", "dynamodb_client"]
