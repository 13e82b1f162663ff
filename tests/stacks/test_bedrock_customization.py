"""BedrockCustomization (training stack) and BedrockCustomizationRole (foundation): one small app with
a customization per serving mode, synthesized once with cdk-nag (an open finding fails the synth) and
linted with cfn-lint; then the state machine definitions, the IAM and the clean-up resource."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from aws_cdk import Environment, Stack
from aws_cdk import aws_sns as sns

from genai_stack import compliance
from genai_stack.cli.synth import cdk_app
from genai_stack.components import bedrock_customization, bedrock_customization_role
from genai_stack.components.bedrock_customization import (
    DEPLOYMENT_TRANSIENT_ERRORS,
    TRANSIENT_ERRORS,
    BedrockCustomization,
    check_job_prefix,
)
from genai_stack.components.bedrock_customization_role import BedrockCustomizationRole
from genai_stack.components.monitoring import MonitoringHub
from genai_stack.components.platform_key import PlatformKey
from genai_stack.components.secure_bucket import SecureBucket
from genai_stack.config import BedrockCustomization as Settings
from tests.compliance.tools import cfn_lint_later

REGION = "us-east-1"
NOVA = "amazon.nova-micro-v1:0:128k"
TAGS = {"genai-stack:cost-center": "model-tuning"}

ON_DEMAND = Settings(
    name="nova-support",
    base_model=NOVA,
    data_prefix="customization/nova-support/",
    validation_data=True,
    hyperparameters={"epochCount": "2", "learningRate": "0.00001"},
    serving="on_demand",
    schedule="cron(0 3 ? * SUN *)",
)
PROVISIONED = Settings(
    name="nova-pt",
    base_model=NOVA,
    data_prefix="customization/nova-pt/",
    serving="provisioned",
    model_units=2,
)
NONE = Settings(
    name="titan-cpt",
    base_model="amazon.titan-text-express-v1:0:8k",
    kind="CONTINUED_PRE_TRAINING",
    data_prefix="corpus/titan/",
    serving="none",
)
ALL = (ON_DEMAND, PROVISIONED, NONE)


def prefix(settings: Settings) -> str:
    return f"custom-model-{settings.name}"


class Synth:
    def __init__(self, outdir: Path, hub: MonitoringHub, constructs: dict[str, BedrockCustomization]):
        self.outdir = outdir
        self.hub = hub
        self.constructs = constructs
        self.base = json.loads((outdir / "Base.template.json").read_text())
        self.training = json.loads((outdir / "Training.template.json").read_text())

    def of_type(self, template: dict, resource_type: str, name_part: str = "") -> dict[str, dict]:
        return {
            logical_id: resource
            for logical_id, resource in template["Resources"].items()
            if resource["Type"] == resource_type and name_part in logical_id
        }

    def one(self, template: dict, resource_type: str, name_part: str) -> dict:
        (resource,) = self.of_type(template, resource_type, name_part).values()
        return resource

    def definition(self, settings: Settings) -> dict:
        """The state machine's definition with each CloudFormation token as `${...}`."""
        machine = self.one(self.training, "AWS::StepFunctions::StateMachine", construct_part(settings))
        parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
        return json.loads("".join(part if isinstance(part, str) else _token(part) for part in parts))

    def statements(self, template: dict, name_part: str) -> list[dict]:
        policy = self.one(template, "AWS::IAM::Policy", name_part)
        return policy["Properties"]["PolicyDocument"]["Statement"]


def construct_part(settings: Settings) -> str:
    return "Customization" + settings.name.replace("-", "")


def _token(part: dict) -> str:
    if "Ref" in part:
        return f"${{{part['Ref']}}}"
    if "Fn::GetAtt" in part:
        return f"${{{'.'.join(part['Fn::GetAtt'])}}}"
    if "Fn::GetStackOutput" in part:
        return f"${{{part['Fn::GetStackOutput']['OutputName']}}}"
    if "Fn::ImportValue" in part:
        return "${import}"
    raise AssertionError(f"unexpected token {part}")


# Session-scoped: the cfn-lint test (marked `waits`) runs after the other modules, on this synthesis.
@pytest.fixture(scope="session")
def synth(tmp_path_factory) -> Synth:
    outdir = tmp_path_factory.mktemp("customization.out")
    app = cdk_app(outdir)
    env = Environment(region=REGION)
    base = Stack(app, "Base", env=env)
    key = PlatformKey(base, "PlatformKey", description="test key").key
    logs = SecureBucket(base, "AccessLogs", noncurrent_version_days=30).bucket
    data = SecureBucket(
        base,
        "Data",
        encryption_key=key,
        access_logs_bucket=logs,
        access_logs_prefix="data/",
        noncurrent_version_days=30,
    ).bucket
    artifacts = SecureBucket(
        base,
        "Artifacts",
        encryption_key=key,
        access_logs_bucket=logs,
        access_logs_prefix="artifacts/",
        noncurrent_version_days=30,
    ).bucket
    topic = sns.Topic(base, "Alarms", master_key=key)
    roles = {
        s.name: BedrockCustomizationRole(
            base,
            f"CustomizationRole-{s.name}",
            settings=s,
            data_bucket=data,
            artifacts_bucket=artifacts,
            encryption_key=key,
        ).role
        for s in ALL
    }
    training = Stack(app, "Training", env=env)
    hub = MonitoringHub(alarm_topic=topic)
    constructs = {}
    for s in ALL:
        constructs[s.name] = BedrockCustomization(
            training,
            f"Customization-{s.name}",
            settings=s,
            job_prefix=prefix(s),
            role=roles[s.name],
            data_bucket=data,
            artifacts_bucket=artifacts,
            encryption_key=key,
            region=REGION,
            log_retention_days=30,
            tags=TAGS if s is PROVISIONED else None,
        )
        constructs[s.name].monitor(hub)
    compliance.enable_checks(app)
    app.synth()  # raises on any open cdk-nag finding
    cfn_lint_later([outdir / "Base.template.json", outdir / "Training.template.json"])
    return Synth(outdir, hub, constructs)


def tasks_of(definition: dict) -> dict[str, dict]:
    return {name: state for name, state in definition["States"].items() if state["Type"] == "Task"}


def resources_called(definition: dict) -> set[str]:
    return {state["Resource"].rsplit(":::", 1)[1] for state in tasks_of(definition).values()}


# --------------------------------------------------------------------------------------------------
# Gates


def test_the_app_synthesizes_with_cdk_nag_and_no_open_finding(synth):
    report = json.loads((synth.outdir / "validation-report.json").read_text())
    assert all(plugin.get("conclusion") != "failure" for plugin in report["pluginReports"])
    assert synth.of_type(synth.training, "AWS::StepFunctions::StateMachine")


@pytest.mark.waits  # cfn-lint runs in the background from the fixture
def test_cfn_lint_passes_both_templates(synth):
    result = cfn_lint_later(
        [synth.outdir / "Base.template.json", synth.outdir / "Training.template.json"]
    ).result()
    assert not result.stdout.strip(), result.stdout
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------------------------------
# The state machine


@pytest.mark.parametrize("settings", ALL, ids=lambda s: s.serving)
def test_every_run_customizes_with_sync_and_names_the_job_after_the_run(synth, settings):
    definition = synth.definition(settings)
    assert definition["StartAt"] == "NameTheRun"
    assert definition["States"]["NameTheRun"]["Parameters"] == {
        "runId.$": "States.ArrayGetItem(States.StringSplit(States.UUID(), '-'), 4)"
    }
    customize = definition["States"]["Customize"]
    assert customize["Resource"] == "arn:${AWS::Partition}:states:::bedrock:createModelCustomizationJob.sync"
    assert definition["States"]["NameTheRun"]["Next"] == "Customize"
    assert customize["Next"] == "DescribeJob"
    parameters = customize["Parameters"]
    run_name = f"States.Format('{prefix(settings)}-{{}}', $.runId)"
    assert parameters["JobName.$"] == parameters["CustomModelName.$"] == run_name
    assert parameters["ClientRequestToken.$"] == run_name
    assert (
        parameters["BaseModelIdentifier"]
        == f"arn:aws:bedrock:{REGION}::foundation-model/{settings.base_model}"
    )
    assert parameters["CustomizationType"] == settings.kind
    assert parameters["CustomModelKmsKeyId"] == "${PublishOutputFnGetAttPlatformKey1C4A1A63Arn0E7FCAA9}"
    assert parameters["RoleArn"].startswith("${PublishOutputFnGetAttCustomizationRole")
    assert parameters["TrainingDataConfig"]["S3Uri"].endswith(f"/{settings.data_prefix}train.jsonl")
    assert parameters["TrainingDataConfig"]["S3Uri"].startswith("s3://${PublishOutputRefDataBucket")
    assert parameters["OutputDataConfig"]["S3Uri"].startswith("s3://${PublishOutputRefArtifactsBucket")
    assert parameters["OutputDataConfig"]["S3Uri"].endswith(f"/customization/{settings.name}/output/")
    assert customize["ResultPath"] == "$.customization"  # keeps $.runId; the job is read back by name
    describe = definition["States"]["DescribeJob"]
    assert describe["Resource"].endswith(":::aws-sdk:bedrock:getModelCustomizationJob")
    assert describe["Parameters"] == {"JobIdentifier.$": run_name}
    assert describe["ResultSelector"]["customModelArn.$"] == "$.OutputModelArn"


def test_validation_data_and_hyperparameters_are_passed_only_when_set(synth):
    with_validation = synth.definition(ON_DEMAND)["States"]["Customize"]["Parameters"]
    assert with_validation["ValidationDataConfig"]["Validators"][0]["S3Uri"].endswith(
        "/customization/nova-support/validation.jsonl"
    )
    assert with_validation["HyperParameters"] == {"epochCount": "2", "learningRate": "0.00001"}
    without = synth.definition(NONE)["States"]["Customize"]["Parameters"]
    assert "ValidationDataConfig" not in without
    assert "HyperParameters" not in without
    assert "JobTags" not in without


@pytest.mark.parametrize("settings", ALL, ids=lambda s: s.serving)
def test_every_task_retries_throttling_and_fails_into_the_fail_state(synth, settings):
    definition = synth.definition(settings)
    assert definition["States"]["Failed"] == {
        "Type": "Fail",
        "ErrorPath": "$.error.Error",
        "CausePath": "$.error.Cause",
    }
    for name, task in tasks_of(definition).items():
        assert task["Retry"] == [
            {
                "ErrorEquals": DEPLOYMENT_TRANSIENT_ERRORS if name == "Deploy" else TRANSIENT_ERRORS,
                "IntervalSeconds": 10,
                "MaxAttempts": 5,
                "BackoffRate": 2,
                "JitterStrategy": "FULL",
            }
        ], name
        assert task["Catch"][-1] == {
            "ErrorEquals": ["States.ALL"],
            "ResultPath": "$.error",
            "Next": "Failed",
        }, name
    assert "States.TaskFailed" not in json.dumps(definition)  # a failed training job is never re-run


def test_provisioned_serving_creates_or_moves_the_one_provisioned_throughput(synth):
    definition = synth.definition(PROVISIONED)
    states = definition["States"]
    assert states["DescribeJob"]["Next"] == "FindProvisionedThroughput"
    find = states["FindProvisionedThroughput"]
    assert find["Resource"].endswith(":::aws-sdk:bedrock:getProvisionedModelThroughput")
    assert find["Parameters"] == {"ProvisionedModelId": "custom-model-nova-pt-pt"}
    assert find["Catch"][0] == {
        "ErrorEquals": ["Bedrock.ResourceNotFoundException"],
        "ResultPath": None,
        "Next": "CreateProvisionedThroughput",
    }
    assert find["Next"] == "UpdateProvisionedThroughput"
    update = states["UpdateProvisionedThroughput"]
    assert update["Resource"].endswith(":::aws-sdk:bedrock:updateProvisionedModelThroughput")
    assert update["Parameters"] == {
        "ProvisionedModelId": "custom-model-nova-pt-pt",
        "DesiredModelId.$": "$.job.customModelArn",
    }
    create = states["CreateProvisionedThroughput"]
    assert create["Resource"].endswith(":::aws-sdk:bedrock:createProvisionedModelThroughput")
    assert create["Parameters"] == {
        "ModelId.$": "$.job.customModelArn",
        "ProvisionedModelName": "custom-model-nova-pt-pt",
        "ModelUnits": 2,
        "ClientRequestToken.$": "States.Format('custom-model-nova-pt-pt-{}', $.runId)",
        "Tags": [{"Key": "genai-stack:cost-center", "Value": "model-tuning"}],
    }  # no CommitmentDuration: no commitment
    assert create["Next"] == update["Next"] == "Report"
    assert states["Report"]["Parameters"]["servingArn.$"] == "$.serving.arn"
    assert not {r for r in resources_called(definition) if "Deployment" in r}
    job = states["Customize"]["Parameters"]
    assert (
        job["JobTags"]
        == job["CustomModelTags"]
        == [{"Key": "genai-stack:cost-center", "Value": "model-tuning"}]
    )


def test_on_demand_serving_creates_or_moves_the_deployment_and_buys_no_throughput(synth):
    definition = synth.definition(ON_DEMAND)
    states = definition["States"]
    assert states["DescribeJob"]["Next"] == "Deploy"
    deploy = states["Deploy"]
    # A Lambda task, not aws-sdk:bedrock:*CustomModelDeployment (newer than Step Functions' Bedrock
    # SDK integration; lambdas/custom_model_deployment/logic.py).
    assert deploy["Resource"] == "arn:${AWS::Partition}:states:::lambda:invoke"
    assert deploy["Parameters"]["FunctionName"].startswith("${CustomizationnovasupportDeployerFunction")
    assert deploy["Parameters"]["Payload"] == {
        "DeploymentName": "custom-model-nova-support-on-demand",
        "ModelArn.$": "$.job.customModelArn",
        "ClientRequestToken.$": "States.Format('custom-model-nova-support-on-demand-{}', $.runId)",
        "Description": "Newest custom model of the Bedrock customization custom-model-nova-support",
    }
    assert deploy["ResultSelector"] == {"arn.$": "$.Payload.arn"}
    assert deploy["ResultPath"] == "$.serving"
    assert deploy["Next"] == "Report"
    assert not {r for r in resources_called(definition) if "Provisioned" in r}


@pytest.mark.parametrize("settings", ALL, ids=lambda s: s.serving)
def test_no_state_calls_a_bedrock_api_newer_than_the_step_functions_integration(synth, settings):
    # CreateCustomModelDeployment, GetCustomModelDeployment and UpdateCustomModelDeployment (2025) cannot
    # be shown to be in Step Functions' AWS SDK integration for Bedrock (January 2024, updated quarterly).
    called = resources_called(synth.definition(settings))
    assert not {r for r in called if "CustomModelDeployment" in r}, called


def test_no_serving_ends_with_the_custom_model_and_calls_nothing_else(synth):
    definition = synth.definition(NONE)
    assert resources_called(definition) == {
        "bedrock:createModelCustomizationJob.sync",
        "aws-sdk:bedrock:getModelCustomizationJob",
    }
    assert definition["States"]["DescribeJob"]["Next"] == "Report"
    assert definition["States"]["Report"]["Parameters"] == {
        "customModelArn.$": "$.job.customModelArn",
        "jobName.$": "$.job.jobName",
    }
    assert definition["States"]["Done"] == {"Type": "Succeed"}


@pytest.mark.parametrize("settings", ALL, ids=lambda s: s.serving)
def test_the_state_machine_logs_everything_to_a_kms_log_group_and_traces(synth, settings):
    part = construct_part(settings)
    props = synth.one(synth.training, "AWS::StepFunctions::StateMachine", part)["Properties"]
    assert props["StateMachineType"] == "STANDARD"
    assert props["TracingConfiguration"] == {"Enabled": True}
    logging = props["LoggingConfiguration"]
    assert logging["Level"] == "ALL"
    (log_group_id, _) = logging["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"]
    log_group = synth.training["Resources"][log_group_id]["Properties"]
    assert "KmsKeyId" in log_group
    assert log_group["RetentionInDays"] == 30


def test_only_a_scheduled_customization_gets_a_rule_that_starts_it(synth):
    rules = synth.of_type(synth.training, "AWS::Events::Rule")
    assert len(rules) == 1
    (rule,) = rules.values()
    assert rule["Properties"]["ScheduleExpression"] == "cron(0 3 ? * SUN *)"
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {
        "Ref": next(iter(synth.of_type(synth.training, "AWS::StepFunctions::StateMachine", "novasupport")))
    }


def test_the_attributes_say_which_pipeline_buys_throughput(synth):
    assert synth.constructs["nova-pt"].provisions_throughput is True
    assert synth.constructs["nova-support"].provisions_throughput is False
    assert synth.constructs["titan-cpt"].provisions_throughput is False
    assert synth.constructs["nova-pt"].provisioned_model_name == "custom-model-nova-pt-pt"
    assert synth.constructs["nova-support"].deployment_name == "custom-model-nova-support-on-demand"
    assert "FIXED HOURLY COST" in (BedrockCustomization.__doc__ or "")


# --------------------------------------------------------------------------------------------------
# IAM


def test_the_service_role_trusts_bedrock_jobs_of_this_account_and_region_only(synth):
    role = synth.one(synth.base, "AWS::IAM::Role", "CustomizationRolenovasupport")
    (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "bedrock.amazonaws.com"}
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
        "ArnEquals": {
            "aws:SourceArn": {
                "Fn::Join": [
                    "",
                    [f"arn:aws:bedrock:{REGION}:", {"Ref": "AWS::AccountId"}, ":model-customization-job/*"],
                ]
            }
        },
    }


def test_the_service_role_reads_exactly_its_files_and_writes_only_its_output_prefix(synth):
    by_sid = {s["Sid"]: s for s in synth.statements(synth.base, "CustomizationRolenovasupport")}
    data = {"Fn::GetAtt": ["DataBucketE6B0FAA8", "Arn"]}
    artifacts = {"Fn::GetAtt": ["ArtifactsBucket88671897", "Arn"]}
    assert by_sid["ReadTheTrainingData"]["Action"] == "s3:GetObject"
    assert by_sid["ReadTheTrainingData"]["Resource"] == [
        {"Fn::Join": ["", [data, "/customization/nova-support/train.jsonl"]]},
        {"Fn::Join": ["", [data, "/customization/nova-support/validation.jsonl"]]},
    ]
    assert by_sid["ListTheDataPrefix"] == {
        "Sid": "ListTheDataPrefix",
        "Action": "s3:ListBucket",
        "Effect": "Allow",
        "Resource": data,
        "Condition": {"StringLike": {"s3:prefix": ["customization/nova-support/*"]}},
    }
    assert by_sid["WriteTheJobOutput"]["Action"] == ["s3:GetObject", "s3:PutObject"]
    assert by_sid["WriteTheJobOutput"]["Resource"] == {
        "Fn::Join": ["", [artifacts, "/customization/nova-support/output/*"]]
    }
    assert by_sid["ListTheOutputPrefix"]["Condition"] == {
        "StringLike": {"s3:prefix": ["customization/nova-support/output/*"]}
    }
    assert by_sid["UseThePlatformKey"]["Resource"] == {"Fn::GetAtt": ["PlatformKey1C4A1A63", "Arn"]}
    without_validation = {s["Sid"]: s for s in synth.statements(synth.base, "CustomizationRoletitancpt")}
    assert without_validation["ReadTheTrainingData"]["Resource"] == {
        "Fn::Join": ["", [data, "/corpus/titan/train.jsonl"]]
    }


def _actions(statements: list[dict]) -> dict[str, list]:
    """Every action with the resources granted for it."""
    granted: dict[str, list] = {}
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        for action in actions:
            granted.setdefault(action, []).extend(resources)
    return granted


def _arn(resource: str) -> dict:
    return {"Fn::Join": ["", [f"arn:aws:bedrock:{REGION}:", {"Ref": "AWS::AccountId"}, f":{resource}/*"]]}


def test_the_state_machine_may_customize_only_its_base_model_and_pass_only_its_role(synth):
    statements = synth.statements(synth.training, "CustomizationnovaptStateMachineRole")
    by_sid = {s.get("Sid"): s for s in statements}
    create = by_sid["CreateTheCustomizationJob"]
    assert create["Action"] == ["bedrock:CreateModelCustomizationJob", "bedrock:TagResource"]
    assert create["Resource"] == [
        f"arn:aws:bedrock:{REGION}::foundation-model/{NOVA}",
        _arn("custom-model"),
        _arn("model-customization-job"),
    ]
    assert by_sid["WaitForTheCustomizationJob"]["Action"] == "bedrock:GetModelCustomizationJob"
    assert by_sid["WaitForTheCustomizationJob"]["Resource"] == _arn("model-customization-job")
    # Stopping is limited to the jobs this pipeline tags (its cost tags).
    stop = by_sid["StopTheCustomizationJob"]
    assert stop["Action"] == "bedrock:StopModelCustomizationJob"
    assert stop["Resource"] == _arn("model-customization-job")
    assert stop["Condition"] == {"StringEquals": {f"aws:ResourceTag/{k}": v for k, v in TAGS.items()}}
    pass_role = by_sid["PassTheCustomizationRole"]
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "bedrock.amazonaws.com"}}
    assert "CustomizationRolenovapt" in json.dumps(pass_role["Resource"])
    kms = by_sid["EncryptTheCustomModel"]
    assert kms["Action"] == ["kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"]
    assert kms["Condition"] == {"StringEquals": {"kms:ViaService": f"bedrock.{REGION}.amazonaws.com"}}
    granted = _actions(statements)
    assert granted["bedrock:CreateProvisionedModelThroughput"] == [
        f"arn:aws:bedrock:{REGION}::foundation-model/{NOVA}",
        _arn("custom-model"),
    ]
    assert _arn("provisioned-model") in granted["bedrock:UpdateProvisionedModelThroughput"]
    assert not [a for a in granted if "CustomModelDeployment" in a]


def test_a_pipeline_without_serving_gets_no_serving_permissions_and_no_tagging(synth):
    granted = _actions(synth.statements(synth.training, "CustomizationtitancptStateMachineRole"))
    assert not [a for a in granted if "Provisioned" in a or "Deployment" in a or a == "bedrock:TagResource"]
    assert granted["bedrock:CreateModelCustomizationJob"][0] == (
        f"arn:aws:bedrock:{REGION}::foundation-model/amazon.titan-text-express-v1:0:8k"
    )
    on_demand = _actions(synth.statements(synth.training, "CustomizationnovasupportStateMachineRole"))
    assert not [a for a in on_demand if "Provisioned" in a or "Deployment" in a]
    deployer = synth.one(synth.training, "AWS::Lambda::Function", "novasupportDeployerFunction")
    (deployer_id,) = [k for k, v in synth.training["Resources"].items() if v is deployer]
    assert on_demand["lambda:InvokeFunction"] == [{"Fn::GetAtt": [deployer_id, "Arn"]}]  # exactly, no :*


def test_the_deployer_may_manage_only_deployments_and_read_only_custom_models(synth):
    by_sid = {s["Sid"]: s for s in synth.statements(synth.training, "novasupportDeployerRole")}
    assert set(by_sid) >= {"FindTheDeployment", "CreateTheDeployment", "MoveTheDeployment"}
    assert by_sid["FindTheDeployment"]["Action"] == "bedrock:GetCustomModelDeployment"
    assert by_sid["FindTheDeployment"]["Resource"] == _arn("custom-model-deployment")
    assert by_sid["CreateTheDeployment"]["Action"] == "bedrock:CreateCustomModelDeployment"
    assert by_sid["MoveTheDeployment"]["Action"] == "bedrock:UpdateCustomModelDeployment"
    for sid in ("CreateTheDeployment", "MoveTheDeployment"):
        assert by_sid[sid]["Resource"] == [_arn("custom-model-deployment"), _arn("custom-model")]
    assert "Condition" not in by_sid["MoveTheDeployment"]  # no tags on this pipeline: nothing to scope by
    assert "TagTheDeployment" not in by_sid  # no tags on this pipeline
    function = synth.one(synth.training, "AWS::Lambda::Function", "novasupportDeployerFunction")
    assert function["Properties"]["Handler"] == "lambdas.custom_model_deployment.handler.on_event"


# --------------------------------------------------------------------------------------------------
# The clean-up custom resource


@pytest.mark.parametrize("settings", ALL, ids=lambda s: s.serving)
def test_every_pipeline_has_a_cleanup_resource_naming_its_serving(synth, settings):
    part = construct_part(settings)
    resource = synth.one(synth.training, "Custom::BedrockCustomModelServing", part)
    props = resource["Properties"]
    machine_id = next(iter(synth.of_type(synth.training, "AWS::StepFunctions::StateMachine", part)))
    assert props["StateMachineArn"] == {"Ref": machine_id}  # so it is deleted before the state machine
    assert props["JobPrefix"] == prefix(settings)
    assert props["ProvisionedModelName"] == f"{prefix(settings)}-pt"
    assert props["DeploymentName"] == f"{prefix(settings)}-on-demand"
    assert props["Serving"] == settings.serving


def test_the_cleanup_handler_may_stop_only_its_executions_and_delete_serving(synth):
    statements = synth.statements(synth.training, "CustomizationnovaptServingCleanupHandlerRole")
    by_sid = {s["Sid"]: s for s in statements}
    machine_id = next(iter(synth.of_type(synth.training, "AWS::StepFunctions::StateMachine", "novapt")))
    assert by_sid["ListThePipelineExecutions"]["Resource"] == {"Ref": machine_id}
    assert by_sid["StopThePipelineExecutions"]["Action"] == [
        "states:DescribeStateMachineForExecution",
        "states:StopExecution",
    ]
    assert by_sid["StopThePipelineExecutions"]["Resource"] == {
        "Fn::Join": [
            "",
            [
                f"arn:aws:states:{REGION}:",
                {"Ref": "AWS::AccountId"},
                ":execution:",
                {"Fn::GetAtt": [machine_id, "Name"]},
                ":*",
            ],
        ]
    }
    assert by_sid["FindTheServing"]["Action"] == [
        "bedrock:ListCustomModelDeployments",
        "bedrock:ListProvisionedModelThroughputs",
    ]
    assert by_sid["DeleteTheProvisionedThroughput"]["Resource"] == _arn("provisioned-model")
    assert by_sid["DeleteTheDeployment"]["Resource"] == _arn("custom-model-deployment")
    # Only what this pipeline created, which carries its tags.
    tagged = {"StringEquals": {f"aws:ResourceTag/{k}": v for k, v in TAGS.items()}}
    assert by_sid["DeleteTheProvisionedThroughput"]["Condition"] == tagged
    assert by_sid["DeleteTheDeployment"]["Condition"] == tagged
    function = synth.one(synth.training, "AWS::Lambda::Function", "novaptServingCleanupHandler")
    assert function["Properties"]["Handler"] == "lambdas.custom_model_serving.handler.on_event"
    assert function["Properties"]["Timeout"] == 600


# --------------------------------------------------------------------------------------------------
# Monitoring and names


def test_monitor_alarms_on_failed_executions_and_adds_a_dashboard_section(synth):
    alarm = synth.one(synth.training, "AWS::CloudWatch::Alarm", "novaptFailedAlarm")["Properties"]
    assert alarm["MetricName"] == "ExecutionsFailed"
    assert alarm["Namespace"] == "AWS/States"
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["AlarmActions"]
    assert alarm["OKActions"]
    assert [s.title for s in synth.hub.sections] == [f"Bedrock customization {prefix(s)}" for s in ALL]
    assert len(synth.hub.alarms) == 3


@pytest.mark.parametrize(
    "job_prefix",
    ["a" * 51, "custom--model", "custom-model-", "-custom", "custom.model", "custom_model", ""],
)
def test_a_name_base_bedrock_would_reject_fails_at_synth(job_prefix):
    with pytest.raises(ValueError, match="cannot name Bedrock customization jobs"):
        check_job_prefix(job_prefix)


def test_the_longest_accepted_name_base_still_fits_bedrock_limits():
    check_job_prefix("a" * 50)  # + "-" + 12 hex digits = 63


def test_every_acknowledgement_of_these_constructs_names_a_finding_and_gives_a_reason():
    entries = [
        value
        for module in (bedrock_customization, bedrock_customization_role)
        for value in vars(module).values()
        if isinstance(value, compliance.Acknowledgement)
    ]
    assert len(entries) == 5
    for entry in entries:
        assert re.fullmatch(r"AwsSolutions-IAM5(\[Resource::\*\])?", entry.finding), entry.finding
        assert len(entry.reason.split()) >= 15, entry.finding


@pytest.mark.parametrize("settings", ALL, ids=lambda s: s.serving)
def test_the_cleanup_reads_each_definition_s_serving_mode_from_the_real_definition(synth, settings):
    # The serving clean-up stops only the runs whose definition serves the mode of the physical id it
    # deletes; it recognises the mode by the serving resource's exact name in the definition.
    from lambdas.custom_model_serving.logic import Serving

    pipeline = Serving(
        state_machine_arn="arn:aws:states:us-east-1:123456789012:stateMachine:p",
        provisioned_model_name=f"{prefix(settings)}-pt",
        deployment_name=f"{prefix(settings)}-on-demand",
    )
    assert pipeline.mode_of(json.dumps(synth.definition(settings))) == settings.serving
