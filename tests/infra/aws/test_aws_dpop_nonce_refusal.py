"""Synth refuses dpop_nonce: required on API Gateway (REST and HTTP API): a Lambda authorizer's refusal cannot carry
the DPoP-Nonce header RFC 9449 9 needs, so the message says what to do instead (DPoP routes without the setting
synthesize as test_aws_revocation.py shows)."""
from __future__ import annotations

import pytest

from lambdas.validation.route_table import RouteTable
from stacks.aws.refusals import UnsupportedConfiguration, refuse_dpop_nonce_routes
from tests.infra.aws.test_aws_revocation import bound_table, http_api, rest_api


@pytest.mark.parametrize("build, kind", [(http_api, "HTTP API"), (rest_api, "REST API")])
def test_api_gateway_refuses_nonce_routes_and_says_where_they_work(build, kind):
    with pytest.raises(UnsupportedConfiguration) as info:
        build(bound_table(proof="dpop", dpop_nonce="required"))
    message = str(info.value)
    assert f"API orders ({kind}): route(s) POST /orders have dpop_nonce: required" in message
    assert "cannot send a Lambda authorizer's DPoP-Nonce header" in message
    assert "forward-auth service" in message and "lambdas.guards" in message and "Remove dpop_nonce" in message


def test_the_rule_lists_every_nonce_route_and_passes_apis_without_one():
    table = bound_table(proof="dpop", dpop_nonce="required")
    refuse_dpop_nonce_routes(RouteTable.load(bound_table(proof="dpop")).api("orders"), what="x")
    with pytest.raises(UnsupportedConfiguration, match=r"x: route\(s\) POST /orders have"):
        refuse_dpop_nonce_routes(RouteTable.load(table).api("orders"), what="x")
