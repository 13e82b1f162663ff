"""ModelGateway with IAM auth: SigV4 callers, no API key required, no API-key acknowledgements needed."""

from __future__ import annotations

from aws_cdk import Environment, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Template

from stacks.components.model_gateway import ModelGateway
from tests.conftest import cdk_app


def test_iam_auth_makes_every_method_sigv4_and_drops_the_key_requirement(tmp_path):
    stack = Stack(
        cdk_app(tmp_path), "GatewayIam", env=Environment(account="123456789012", region="us-east-1")
    )
    policy = iam.ManagedPolicy(
        stack,
        "Access",
        statements=[
            iam.PolicyStatement(
                actions=["bedrock:InvokeModel"], resources=["arn:aws:bedrock:us-east-1::foundation-model/x"]
            )
        ],
    )
    ModelGateway(
        stack,
        "Gateway",
        config={"chat": {"a": [{"kind": "bedrock", "model": "x"}]}},
        access_policy=policy,
        encryption_key=kms.Key(stack, "Key"),
        log_retention_days=30,
        deadline_seconds=20,
        auth="iam",
        tenants=[],
    )
    template = Template.from_stack(stack)
    methods = template.find_resources("AWS::ApiGateway::Method")
    assert len(methods) == 3
    for method in methods.values():
        assert method["Properties"]["AuthorizationType"] == "AWS_IAM"
        assert method["Properties"]["ApiKeyRequired"] is False
    template.resource_count_is("AWS::ApiGateway::UsagePlan", 0)
    template.resource_count_is("AWS::ApiGateway::ApiKey", 0)
