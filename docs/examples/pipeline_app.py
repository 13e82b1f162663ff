#!/usr/bin/env python3
"""One profile promoted through two environments by CDK Pipelines: `dev` in one account, then, after
a manual approval, `prod` in another. tests/test_examples.py synthesizes it.

The pipeline's own account and the connection to the repository are the team's. Bootstrap the
pipeline's environment (`cdk bootstrap aws://PIPELINE_ACCOUNT/REGION`) and every target environment to
trust it (`cdk bootstrap --trust PIPELINE_ACCOUNT aws://TARGET/REGION`; for a profile whose region lacks
AWS Budgets, `aws://TARGET/us-east-1` too: docs/regions.md). Each stage's stacks carry the stage's
prefix (`support-dev-foundation`, `support-prod-foundation`), so the two can also share one account.

The connection: aws-cdk-lib grants the source action `codestar-connections:UseConnection` on the ARN
it is given, and IAM matches the action's service prefix with the ARN's ("the service prefix needs to
match that of the resource": Developer Tools console guide, "Identity and access management for AWS
CodeStar Notifications and AWS CodeConnections",
https://docs.aws.amazon.com/dtconsole/latest/userguide/security-iam.html). A connection made since the
service became AWS CodeConnections has a `codeconnections` ARN: the pipeline then also grants
`codeconnections:UseConnection` on it (below).
"""

from __future__ import annotations

from aws_cdk import App, Environment, Stack, pipelines
from aws_cdk import aws_iam as iam
from constructs import Construct

from genai_stack.config import load_profile
from genai_stack.constructs import FEATURE_FLAGS, GenAiStage

PIPELINE = Environment(account="111111111111", region="us-west-2")
ENVIRONMENTS = {
    "Dev": ("support-dev", Environment(account="222222222222", region="us-west-2")),
    "Prod": ("support-prod", Environment(account="333333333333", region="us-west-2")),
}
REPOSITORY = "example-org/genai-platform"
SYNTH_APP = ".venv/bin/python docs/examples/pipeline_app.py"
CONNECTION = "arn:aws:codeconnections:us-west-2:111111111111:connection/00000000-0000-0000-0000-000000000000"


class PlatformPipeline(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, profile_name: str, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        pipeline = pipelines.CodePipeline(
            self,
            "Pipeline",
            cross_account_keys=True,  # the stages deploy to other accounts
            synth=pipelines.ShellStep(
                "Synth",
                input=pipelines.CodePipelineSource.connection(REPOSITORY, "main", connection_arn=CONNECTION),
                # make setup installs the project into .venv, which the app runs with (as cdk.json's).
                commands=["make setup", "make test", f"node_modules/.bin/cdk synth -a '{SYNTH_APP}'"],
            ),
        )
        profile = load_profile(profile_name)
        self.stages = {}
        for name, (prefix, env) in ENVIRONMENTS.items():
            stage = GenAiStage(self, name, profile=profile, stack_prefix=prefix, env=env)
            pipeline.add_stage(
                stage, pre=[pipelines.ManualApprovalStep(f"PromoteTo{name}")] if name == "Prod" else None
            )
            self.stages[name] = stage
        pipeline.build_pipeline()
        if CONNECTION.startswith("arn:aws:codeconnections:"):
            # The source action's role (made by the pipeline for the Source stage's action).
            (role,) = [
                child
                for child in pipeline.pipeline.node.find_all()
                if isinstance(child, iam.Role) and "/Source/" in child.node.path
            ]
            role.add_to_principal_policy(
                iam.PolicyStatement(actions=["codeconnections:UseConnection"], resources=[CONNECTION])
            )


def build(outdir: str | None = None) -> App:
    app = App(context=FEATURE_FLAGS, outdir=outdir)
    PlatformPipeline(app, "SupportPipeline", profile_name="customer-service", env=PIPELINE)
    return app


if __name__ == "__main__":
    build().synth()
