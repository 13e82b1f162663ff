"""The example apps in docs/examples synthesize, and do what their docstrings say: a team's app with
genai-stack's constructs and its own Lambda code, and one profile promoted through two environments
by CDK Pipelines with distinct stack names and accounts."""

from __future__ import annotations

import importlib.util
import json

import pytest

from tests.support import REPO_ROOT

EXAMPLES = REPO_ROOT / "docs" / "examples"


def example(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    module = example("pipeline_app")
    assembly = module.build(str(tmp_path_factory.mktemp("pipeline"))).synth()
    return module, assembly


def test_the_team_app_uses_the_constructs_and_its_own_function_code(tmp_path):
    assembly = example("team_app").build(str(tmp_path)).synth()
    names = {stack.stack_name for stack in assembly.stacks}
    assert "Support" in names
    assert {
        "support-assistant-foundation",
        "support-assistant-bedrock",
        "support-assistant-observability",
    } <= names
    template = assembly.get_stack_by_name("Support").template
    types = [resource["Type"] for resource in template["Resources"].values()]
    assert {"AWS::Bedrock::Guardrail", "AWS::Budgets::Budget", "AWS::SNS::Topic"} <= set(types)
    functions = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    hello = next(f for f in functions if f["Properties"]["Handler"] == "hello.handler.on_event")
    asset = tmp_path / f"asset.{hello['Properties']['Code']['S3Key'].removesuffix('.zip')}"
    assert (asset / "hello" / "handler.py").is_file()
    assert not (asset / "lambdas").exists()  # the team's code only, at the asset's root


def test_one_profile_deploys_as_two_environments_with_distinct_names_and_accounts(pipeline):
    module, assembly = pipeline
    stages = {}
    for name, (prefix, env) in module.ENVIRONMENTS.items():
        nested = assembly.get_nested_assembly(f"assembly-SupportPipeline-{name}")
        stages[name] = {stack.stack_name: stack for stack in nested.stacks}
        assert {stack.environment.account for stack in nested.stacks} == {env.account}
        assert all(stack_name.startswith(f"{prefix}-") for stack_name in stages[name]), stages[name]
        foundation = stages[name][f"{prefix}-foundation"].template
        tags = [
            tag
            for resource in foundation["Resources"].values()
            for tag in resource.get("Properties", {}).get("Tags", [])
            if isinstance(tag, dict) and tag.get("Key") == "genai-stack:profile"
        ]
        assert tags
        assert {tag["Value"] for tag in tags} == {prefix}
    assert len(stages["Dev"]) == len(stages["Prod"]) >= 3
    assert not set(stages["Dev"]) & set(stages["Prod"])


def test_prod_waits_for_a_manual_approval(pipeline):
    _, assembly = pipeline
    template = assembly.get_stack_by_name("SupportPipeline").template
    (resource,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::CodePipeline::Pipeline"]
    stages = {stage["Name"]: stage for stage in resource["Properties"]["Stages"]}
    assert list(stages).index("Dev") < list(stages).index("Prod")
    owners = [action["ActionTypeId"]["Category"] for action in stages["Prod"]["Actions"]]
    assert "Approval" in owners
    assert "Approval" not in [action["ActionTypeId"]["Category"] for action in stages["Dev"]["Actions"]]
    assert json.dumps(stages["Prod"]).count("333333333333") > 0


def test_the_pipeline_may_use_its_connection_and_synthesizes_with_the_project_s_python(pipeline):
    """A `codeconnections` ARN needs `codeconnections:UseConnection`: aws-cdk-lib grants only the
    `codestar-connections` action, which IAM does not match against that ARN (reviewed against the
    Developer Tools console guide, "Identity and access management for ... AWS CodeConnections")."""
    module, assembly = pipeline
    template = assembly.get_stack_by_name("SupportPipeline").template
    statements = [
        statement
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::IAM::Policy"
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert module.CONNECTION.startswith("arn:aws:codeconnections:")
    allowed = {
        (action, json.dumps(statement["Resource"]))
        for statement in statements
        if statement["Effect"] == "Allow"
        for action in (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
    }
    assert ("codeconnections:UseConnection", json.dumps(module.CONNECTION)) in allowed
    projects = [r for r in template["Resources"].values() if r["Type"] == "AWS::CodeBuild::Project"]
    buildspecs = " ".join(json.dumps(p["Properties"]["Source"]) for p in projects)
    assert f"cdk synth -a '{module.SYNTH_APP}'" in buildspecs
    assert module.SYNTH_APP.startswith(".venv/bin/python ")
