"""The forward-auth service in a Kubernetes pod: an API whose routes need state every replica shares (the denylist,
DPoP replay records) refuses to start without a shared store, as an authorizer in Lambda does; the environment it is
given, not the process's, decides."""
from __future__ import annotations

import json
import os

import pytest

from lambdas.authorizers.runtime import AuthorizerMisconfigured
from lambdas.forward_auth.service import ForwardAuthService
from lambdas.validation.dynamodb_store import DynamoDbTable
from lambdas.validation.denylist import MemoryDenylistStore
from lambdas.validation.redis_store import RedisStore
from tests.support.route_tables import route

IN_A_POD = {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}


@pytest.fixture
def environ_for(tmp_path, table_for):
    def build(routes, binds=True, **extra):
        path = tmp_path / "routes.json"
        # The issuer binds tokens (DPoP), which proof: dpop routes need; a bound token's proof can come on any route,
        # so such an issuer alone needs the shared replay records.
        document = table_for(routes, binding={"dpop": True}) if binds else table_for(routes)
        path.write_text(json.dumps(document), encoding="utf-8")
        return {"AUTHGATE_POLICY": str(path), "AUTHGATE_API": "orders", **extra}
    return build


@pytest.mark.parametrize("needs", [{"freshness": "denylist"}, {"proof": "dpop"}])
def test_a_pod_without_a_shared_store_refuses_to_start(environ_for, needs):
    assert "KUBERNETES_SERVICE_HOST" not in os.environ   # the refusal comes from the environment passed in
    environ = environ_for([route("GET /orders", scopes=["orders:read"], **needs)], **IN_A_POD)
    with pytest.raises(AuthorizerMisconfigured) as refused:
        ForwardAuthService.from_env(environ)
    message = str(refused.value)
    assert "Kubernetes pod" in message and "AUTHGATE_DENYLIST_TABLE" in message and "AUTHGATE_REDIS_URL" in message
    assert "AUTHGATE_SINGLE_INSTANCE=true" in message


def test_an_issuer_that_binds_tokens_needs_the_shared_store_in_a_pod(environ_for):
    with pytest.raises(AuthorizerMisconfigured, match="Kubernetes pod"):
        ForwardAuthService.from_env(environ_for([route("GET /orders", scopes=["orders:read"])], **IN_A_POD))


def test_a_pod_that_says_it_is_the_only_instance_keeps_its_stores_in_memory(environ_for):
    environ = environ_for([route("GET /orders", scopes=["orders:read"], freshness="denylist")],
                          AUTHGATE_SINGLE_INSTANCE="true", **IN_A_POD)
    service = ForwardAuthService.from_env(environ)
    assert isinstance(service.runtime.request_checks.denylist.store, MemoryDenylistStore)


def test_a_pod_with_the_table_uses_it(environ_for):
    environ = environ_for([route("GET /orders", scopes=["orders:read"], proof="dpop")],
                          AUTHGATE_DENYLIST_TABLE="authgate-prod-orders-revocation", AWS_REGION="eu-west-1",
                          **IN_A_POD)
    checks = ForwardAuthService.from_env(environ).runtime.request_checks
    assert isinstance(checks.replay, DynamoDbTable) and checks.replay.table_name == "authgate-prod-orders-revocation"
    assert checks.denylist.store is checks.replay


def test_a_pod_with_redis_uses_it(environ_for):
    environ = environ_for([route("GET /orders", scopes=["orders:read"], freshness="denylist")],
                          AUTHGATE_REDIS_URL="rediss://redis.authgate.svc.cluster.local:6380/0",
                          AUTHGATE_REDIS_PASSWORD="from-a-secret", **IN_A_POD)
    checks = ForwardAuthService.from_env(environ).runtime.request_checks
    assert isinstance(checks.replay, RedisStore) and checks.replay.endpoint.tls
    assert checks.replay.endpoint.address == "redis.authgate.svc.cluster.local:6380"
    assert checks.denylist.store is checks.replay


def test_an_api_without_shared_state_starts_in_a_pod(environ_for):
    environ = environ_for([route("GET /orders", scopes=["orders:read"])], binds=False, **IN_A_POD)
    assert ForwardAuthService.from_env(environ).runtime.api_name == "orders"


def test_outside_a_pod_and_lambda_one_process_keeps_memory_stores(environ_for):
    environ = environ_for([route("GET /orders", scopes=["orders:read"], freshness="denylist")])
    service = ForwardAuthService.from_env(environ)
    assert isinstance(service.runtime.request_checks.denylist.store, MemoryDenylistStore)
