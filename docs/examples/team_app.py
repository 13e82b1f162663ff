#!/usr/bin/env python3
"""A team's own CDK app that reuses genai-stack's constructs (`genai_stack.constructs`), run with
`python docs/examples/team_app.py` or as `cdk.json`'s app. tests/test_examples.py synthesizes it.

- a stack of the team's: a KMS key and alarm topic, a Bedrock guardrail, a tag-scoped budget with
  anomaly alerts, and a Lambda function from the team's own code folder (functions/hello);
- the built-in `customer-service` profile deployed as the team's own instance (`stack_prefix`, `env`).
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import App, Environment, Stack
from aws_cdk import aws_kms as kms
from constructs import Construct

from genai_stack.config import load_profile
from genai_stack.constructs import (
    FEATURE_FLAGS,
    AlarmTopic,
    BudgetAlert,
    CostControls,
    Guardrail,
    GuardrailSettings,
    ProfileStacks,
    PythonFunction,
)

HERE = Path(__file__).resolve().parent
ACCOUNT = "111111111111"


class TeamStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        key = kms.Key(self, "Key", enable_key_rotation=True)
        alarms = AlarmTopic(self, "Alarms", encryption_key=key, emails=["oncall@example.com"])
        Guardrail(
            self,
            "Guardrail",
            name="support-guardrail",
            encryption_key=key,
            log_retention_days=90,
            settings=GuardrailSettings(
                blocked_input_message="I can't help with that request.",
                blocked_output_message="I can't share that answer.",
                languages=["en", "zh-Hant"],
            ),
        )
        # Budgets and Cost Explorer resources are offered only in us-east-1 (this stack's region).
        CostControls(
            self,
            "Cost",
            tag_key="team",
            tag_value="support",
            monthly_limit_usd=500,
            alerts=[BudgetAlert(percent=80, kind="ACTUAL"), BudgetAlert(percent=100, kind="FORECASTED")],
            anomaly_threshold_usd=50,
            topic=alarms.topic,
        )
        hello = PythonFunction(
            self,
            "Hello",
            package="hello",
            code_dir=HERE / "functions",
            description="The support team's hello function",
            encryption_key=key,
            log_retention_days=30,
        )
        hello.function.add_environment("TEAM", "support")


def build(outdir: str | None = None) -> App:
    app = App(context=FEATURE_FLAGS, outdir=outdir)
    TeamStack(app, "Support", env=Environment(account=ACCOUNT, region="us-east-1"))
    ProfileStacks(
        app,
        "SupportAssistant",
        profile=load_profile("customer-service"),
        stack_prefix="support-assistant",
        env=Environment(account=ACCOUNT, region="us-west-2"),
    )
    return app


if __name__ == "__main__":
    build().synth()
