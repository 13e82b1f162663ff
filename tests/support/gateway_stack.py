"""A ModelGateway alone in a stack (one Bedrock model, IAM auth, no tenants), for construct tests."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Environment, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Template

from genai_stack.cli.synth import cdk_app
from genai_stack.components.model_gateway import ModelGateway


def gateway_template(outdir: Path, **props) -> Template:
    """The template of a minimal gateway; `props` override or add ModelGateway's keyword props."""
    stack = Stack(cdk_app(outdir), "Gw", env=Environment(account="123456789012", region="us-east-1"))
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
        **{
            "config": {"chat": {"a": [{"kind": "bedrock", "model": "x"}]}},
            "access_policy": policy,
            "encryption_key": kms.Key(stack, "Key"),
            "log_retention_days": 30,
            "deadline_seconds": 20,
            "auth": "iam",
            "tenants": [],
            **props,
        },
    )
    return Template.from_stack(stack)
