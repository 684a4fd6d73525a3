"""The sandbox's evaluation of authorizer IAM policies: explicit Deny wins, then Allow, wildcards, other actions."""
from __future__ import annotations

from sandbox.gateways.iam_policy import policy_allows, policy_effect

ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/v1/GET/orders/42"


def statement(effect, resource, action="execute-api:Invoke"):
    return {"Effect": effect, "Action": action, "Resource": resource}


def policy(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


def test_allow_on_the_exact_arn_or_a_wildcard_allows():
    assert policy_allows(policy(statement("Allow", ARN)), ARN)
    assert policy_allows(policy(statement("Allow", "arn:aws:execute-api:us-east-1:123456789012:abc123/v1/GET/orders/*")),
                         ARN)
    assert policy_allows(policy(statement("Allow", "arn:aws:execute-api:*:*:abc123/*/GET/orders/??")), ARN)


def test_explicit_deny_wins_over_any_allow():
    document = policy(statement("Allow", "arn:aws:execute-api:us-east-1:123456789012:abc123/v1/*"),
                      statement("Deny", "arn:aws:execute-api:us-east-1:123456789012:abc123/v1/GET/orders/*"))
    assert policy_effect(document, ARN) == "Deny"
    assert policy_effect(document, ARN.replace("/GET/", "/POST/")) == "Allow"


def test_no_matching_allow_is_no_match_and_so_denied():
    document = policy(statement("Allow", "arn:aws:execute-api:us-east-1:123456789012:abc123/v1/GET/orders"))
    assert policy_effect(document, ARN) == "NoMatch"
    assert not policy_allows(document, ARN)
    # `?` matches exactly one character: "4?" would match /42 but "4" alone does not.
    assert not policy_allows(policy(statement("Allow", ARN[:-2] + "?")), ARN)


def test_statements_for_other_actions_and_malformed_documents_allow_nothing():
    assert policy_effect(policy(statement("Allow", ARN, action="s3:GetObject")), ARN) == "NoMatch"
    assert policy_effect(policy(statement("Allow", ARN, action=["s3:GetObject", "execute-api:Invoke"])), ARN) == "Allow"
    assert policy_effect(None, ARN) == "NoMatch"
    assert policy_effect({"Statement": "not a list of statements"}, ARN) == "NoMatch"
    assert policy_effect(policy(statement("Permit", ARN)), ARN) == "NoMatch"
