"""The custom-model profile end to end: the training-and-tuning stacks wired to the foundation, the
gateway and each other (the constructs have their own tests in test_model_endpoint.py,
test_training_pipeline.py and test_bedrock_customization.py)."""

from __future__ import annotations

import json

import pytest

from genai_stack.config import load_profile
from genai_stack.retired_roles import RETIRED_METADATA

PROFILE = "custom-model"


@pytest.fixture(scope="module")
def profile():
    return load_profile(PROFILE)


def unjoin(value) -> str:
    """An environment value with CloudFormation references (Fn::Join) as text, references as <ref>."""
    if isinstance(value, str):
        return value
    return "".join(p if isinstance(p, str) else "<ref>" for p in value["Fn::Join"][1])


def of_type(synthesized, stack: str, resource_type: str) -> dict[str, dict]:
    return synthesized.resources(PROFILE, stack, resource_type)


def test_every_endpoint_of_the_profile_is_deployed_under_the_profile_name(synthesized, profile):
    endpoints = of_type(synthesized, "Inference", "AWS::SageMaker::Endpoint")
    names = sorted(e["Properties"]["EndpointName"] for e in endpoints.values())
    assert names == sorted(f"{PROFILE}-{e.name}" for e in profile.inference.endpoints)
    components = of_type(synthesized, "Inference", "AWS::SageMaker::InferenceComponent")
    assert len(components) == sum(e.inference_components for e in profile.inference.endpoints)
    configs = [
        c["Properties"] for c in of_type(synthesized, "Inference", "AWS::SageMaker::EndpointConfig").values()
    ]
    assert sum("AsyncInferenceConfig" in c for c in configs) == 1
    # ml.inf2 has no local NVMe storage: its configuration carries the platform key; ml.g5/g6 cannot.
    with_key = [c for c in configs if "KmsKeyId" in c]
    assert [v["InstanceType"] for c in with_key for v in c["ProductionVariants"] if "InstanceType" in v] == [
        "ml.inf2.8xlarge"
    ]


def test_each_role_lives_in_the_stack_that_uses_it(synthesized, profile):
    """docs/architecture.md "Where each role lives": endpoint roles in the inference stack, training
    and customization roles in the training stack; the foundation keeps only 0.1's retired copies."""
    inference = of_type(synthesized, "Inference", "AWS::IAM::Role")
    training = of_type(synthesized, "Training", "AWS::IAM::Role")
    for endpoint in profile.inference.endpoints:
        assert any(k.startswith("EndpointRole" + endpoint.name.replace("-", "")) for k in inference)
    assert any(k.startswith("TrainingRolesupporttuning") for k in training)
    assert any(k.startswith("CustomizationRolenovasupport") for k in training)
    serving = [
        r
        for r in of_type(synthesized, "Foundation", "AWS::IAM::Role").values()
        if "sagemaker.amazonaws.com" in json.dumps(r["Properties"]["AssumeRolePolicyDocument"])
        or "bedrock.amazonaws.com" in json.dumps(r["Properties"]["AssumeRolePolicyDocument"])
    ]
    assert serving
    assert all(RETIRED_METADATA in r["Metadata"] for r in serving)
    # The models and the deployer use the inference stack's roles.
    models = of_type(synthesized, "Inference", "AWS::SageMaker::Model")
    assert models
    assert all(m["Properties"]["ExecutionRoleArn"]["Fn::GetAtt"][0] in inference for m in models.values())
    deployer_roles = json.dumps(of_type(synthesized, "Training", "AWS::Lambda::Function"))
    assert "PublishOutputFnGetAttEndpointRole" in deployer_roles
    assert f"{PROFILE}-inference" in deployer_roles


def test_the_deployed_endpoint_can_read_the_models_its_pipeline_trains(synthesized):
    policies = of_type(synthesized, "Inference", "AWS::IAM::Policy")
    trained = {k: p for k, p in policies.items() if "TrainedModels" in k}
    # deploy_to: [support-llm, long-documents] (issue 19), not the inference-component endpoint
    owners = sorted(k.split("Role")[1] for k in trained)  # EndpointRole<endpoint>RoleTrainedModels...
    assert owners == ["longdocuments", "supportllm"]
    for policy in trained.values():
        (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
        assert statement["Action"] == "s3:GetObject"
        assert json.dumps(statement["Resource"]).endswith('/training/support-tuning/output/*"]]}')


def test_no_role_has_sagemaker_full_access_or_a_star_on_data_and_model_actions(synthesized):
    data_actions = ("s3:GetObject", "s3:PutObject", "sagemaker:CreateModel", "sagemaker:InvokeEndpoint")
    for stack, template in synthesized.templates[PROFILE].items():
        text = json.dumps(template)
        assert "AmazonSageMakerFullAccess" not in text, stack
        for resource in template["Resources"].values():
            if resource["Type"] not in ("AWS::IAM::Policy", "AWS::IAM::Role"):
                continue
            documents = [resource["Properties"].get("PolicyDocument")] + [
                p["PolicyDocument"] for p in resource["Properties"].get("Policies", [])
            ]
            for document in filter(None, documents):
                for statement in document["Statement"]:
                    actions = (
                        statement["Action"]
                        if isinstance(statement["Action"], list)
                        else [statement["Action"]]
                    )
                    if any(a in data_actions for a in actions):
                        assert statement["Resource"] != "*", (stack, actions)


def test_the_loop_train_evaluate_register_approve_deploy_is_wired(synthesized, profile):
    machines = of_type(synthesized, "Training", "AWS::StepFunctions::StateMachine")
    assert len(machines) == len(profile.training.pipelines) + len(profile.training.customizations)
    groups = of_type(synthesized, "Training", "AWS::SageMaker::ModelPackageGroup")
    (group,) = groups.values()
    assert group["Properties"]["ModelPackageGroupName"] == f"{PROFILE}-support-tuning"
    assert group["DeletionPolicy"] == "Retain"
    rules = [r["Properties"] for r in of_type(synthesized, "Training", "AWS::Events::Rule").values()]
    patterns = {r["EventPattern"]["detail-type"][0]: r["EventPattern"] for r in rules if "EventPattern" in r}
    assert sorted(patterns) == ["SageMaker Endpoint State Change", "SageMaker Model Package State Change"]
    assert patterns["SageMaker Model Package State Change"]["detail"]["ModelApprovalStatus"] == ["Approved"]
    # The rollouts' outcomes (issue 19): the deployed endpoint's state changes reach the deployer.
    assert patterns["SageMaker Endpoint State Change"]["detail"] == {
        "EndpointName": [f"{PROFILE}-support-llm", f"{PROFILE}-long-documents"]
    }
    schedules = [r for r in rules if "ScheduleExpression" in r]
    assert {r["ScheduleExpression"] for r in schedules} == {profile.training.pipelines[0].schedule}
    functions = of_type(synthesized, "Training", "AWS::Lambda::Function")
    (deployer,) = [f["Properties"] for k, f in functions.items() if k.startswith("ModelDeploymentDeployer")]
    deployments = json.loads(unjoin(deployer["Environment"]["Variables"]["DEPLOYMENTS"]))
    # One approval, both endpoints that serve the model (issue 19); support-llm-inf2 is refused.
    assert [d["endpoint_name"] for d in deployments] == [
        f"{PROFILE}-support-llm",
        f"{PROFILE}-long-documents",
    ]
    assert {d["model_package_group"] for d in deployments} == {f"{PROFILE}-support-tuning"}
    for deployment in deployments:
        # The endpoint's settings (instance type, capture, keys) come from its current configuration.
        assert "instance_type" not in deployment
        assert deployment["enable_network_isolation"] is True
    # Each listed endpoint takes its configuration through the approved-model custom resource.
    resources = synthesized.template(PROFILE, "Inference")["Resources"]
    approved = [r for r in resources.values() if r["Type"] == "Custom::ApprovedModelEndpointConfig"]
    assert len(approved) == 2
    stage = synthesized.profiles[PROFILE]
    assert stage.inference in stage.training.dependencies


def test_the_gateway_calls_the_profile_endpoint_by_its_full_name(synthesized):
    resources = synthesized.template(PROFILE, "Orchestration")["Resources"]
    (function,) = [
        r["Properties"]
        for k, r in resources.items()
        if r["Type"] == "AWS::Lambda::Function" and k.startswith("GatewayHandler")
    ]
    config = json.loads(unjoin(function["Environment"]["Variables"]["GATEWAY_CONFIG"]))
    assert config["chat"]["support"][0] == {
        "kind": "sagemaker",
        "endpoint": f"{PROFILE}-support-llm",
        "max_tokens": 512,  # the profile's bound (docs/gateway.md, "Per-target limits")
    }
    policies = json.dumps([r for r in resources.values() if r["Type"] == "AWS::IAM::Policy"])
    assert f":endpoint/{PROFILE}-support-llm" in policies


def test_the_key_lets_bedrock_encrypt_custom_models_only_when_the_profile_customizes(synthesized):
    for name, expected in ((PROFILE, True), ("managed-api", False)):
        (key,) = synthesized.resources(name, "Foundation", "AWS::KMS::Key").values()
        sids = {s.get("Sid") for s in key["Properties"]["KeyPolicy"]["Statement"]}
        assert ("AllowBedrockCustomModels" in sids) is expected, name


def test_the_dashboard_has_a_section_per_endpoint_pipeline_and_customization(synthesized, profile):
    (dashboard,) = synthesized.resources(PROFILE, "Observability", "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for endpoint in profile.inference.endpoints:
        assert f"{PROFILE}-{endpoint.name}" in body
    assert "nova-support" in body
    assert "support-tuning" in body
