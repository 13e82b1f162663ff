"""TrainingJobRole (foundation), TrainingPipeline and ModelDeployment (training stack), synthesized
once in a small app with the project's feature flags and cdk-nag on: the state machine definition, the IAM of
every role, the approval rule, the dead-letter queue, alarms, and cfn-lint on the templates."""

from __future__ import annotations

import ast
import copy
import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_sns as sns
from botocore.validate import ParamValidator

from genai_stack import compliance
from genai_stack.catalog import image_repository_arn, image_uri
from genai_stack.cli.synth import cdk_app
from genai_stack.components import model_deployment, training_job_role, training_pipeline
from genai_stack.components.model_deployment import DEPLOYER_ENTRY_POINT, EndpointDeployment, ModelDeployment
from genai_stack.components.monitoring import MonitoringHub
from genai_stack.components.platform_key import PlatformKey
from genai_stack.components.secure_bucket import SecureBucket
from genai_stack.components.training_job_role import TrainingJobRole
from genai_stack.components.training_pipeline import (
    TrainingPipeline,
    framework_hyperparameters,
    job_name_prefix,
)
from genai_stack.config import TrainingPipeline as PipelineSettings
from tests.compliance.tools import cfn_lint_later
from tests.support import REPO_ROOT

REGION = "us-east-1"
ACCOUNT = "123456789012"
ENV = Environment(account=ACCOUNT, region=REGION)
SERVING_IMAGE = image_uri("lmi", REGION)
EXECUTION_ROLE = f"arn:aws:iam::{ACCOUNT}:role/endpoint-execution"
ENDPOINT_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"

SPOT = PipelineSettings.model_validate(
    {
        "name": "support-tuning",
        "source_key": "code/support-tuning/sourcedir.tar.gz",
        "entry_point": "train.py",
        "data_prefix": "training/support/",
        "instance_type": "ml.g5.2xlarge",
        "hyperparameters": {"epochs": "3", "learning_rate": "2e-5", "use_lora": "true"},
        "spot": {"max_wait_hours": 30},
        "metric": {"name": "eval:loss", "regex": "eval_loss=([0-9.]+)", "threshold": 1.5},
        "schedule": "rate(7 days)",
    }
)
# Without spot, schedule or network isolation, and on an instance type that (as patched below)
# takes the KMS key on its storage volume.
PLAIN = PipelineSettings.model_validate(
    {
        "name": "copy-tuning",
        "source_key": "code/copy/source.tar.gz",
        "entry_point": "src/train.py",
        "data_prefix": "training/copy/",
        "instance_type": "ml.g6.xlarge",
        "max_runtime_hours": 2,
        "network_isolation": False,
        "metric": {
            "name": "eval:accuracy",
            "regex": "accuracy=([0-9.]+)",
            "threshold": 0.8,
            "goal": "maximize",
        },
    }
)
NAMES = {SPOT.name: f"demo-{SPOT.name}", PLAIN.name: f"demo-{PLAIN.name}"}


@dataclass
class Built:
    app: App
    hub: MonitoringHub
    pipelines: dict[str, TrainingPipeline]
    deployment: ModelDeployment


def build(outdir: Path, monkeypatch: pytest.MonkeyPatch) -> Built:
    # No training type in the catalogue lacks local NVMe: pretend ml.g6.xlarge does, to cover the
    # volume-key path (VolumeKmsKeyId and the role's kms:CreateGrant).
    def takes_key(settings) -> bool:
        return settings.instance_type == PLAIN.instance_type

    monkeypatch.setattr(training_job_role, "uses_volume_key", takes_key)
    monkeypatch.setattr(training_pipeline, "uses_volume_key", takes_key)
    app = cdk_app(outdir)
    foundation = Stack(app, "Foundation", env=ENV)
    key = PlatformKey(foundation, "PlatformKey", description="test key").key
    access_logs = SecureBucket(foundation, "AccessLogs", noncurrent_version_days=30).bucket
    buckets = {
        name: SecureBucket(
            foundation, name, encryption_key=key, noncurrent_version_days=30, access_logs_bucket=access_logs
        ).bucket
        for name in ("Data", "Artifacts")
    }
    compliance.skip_checkov(access_logs.node.default_child, compliance.ACCESS_LOG_BUCKET_NOT_LOGGED)
    topic = sns.Topic(foundation, "Alarms", master_key=key, enforce_ssl=True)
    training = Stack(app, "Training", env=ENV)
    hub = MonitoringHub(alarm_topic=topic)
    pipelines = {}
    for settings in (SPOT, PLAIN):
        role = TrainingJobRole(
            foundation,
            f"TrainingRole-{settings.name}",
            settings=settings,
            data_bucket=buckets["Data"],
            artifacts_bucket=buckets["Artifacts"],
            encryption_key=key,
            region=REGION,
        )
        pipelines[settings.name] = TrainingPipeline(
            training,
            f"Pipeline-{settings.name}",
            settings=settings,
            pipeline_name=NAMES[settings.name],
            role=role.role,
            data_bucket=buckets["Data"],
            artifacts_bucket=buckets["Artifacts"],
            encryption_key=key,
            region=REGION,
            log_retention_days=30,
            inference_image_uri=SERVING_IMAGE if settings is SPOT else None,
        )
        pipelines[settings.name].monitor(hub)
    deployment = ModelDeployment(
        training,
        "ModelDeployment",
        deployments=[
            EndpointDeployment(
                model_package_group=NAMES[SPOT.name],
                endpoint_name="demo-support-llm",
                execution_role_arn=EXECUTION_ROLE,
                environment={"OPTION_ROLLING_BATCH": "vllm"},
            ),
            EndpointDeployment(
                model_package_group=NAMES[PLAIN.name],
                endpoint_name="demo-copy-llm",
                execution_role_arn=EXECUTION_ROLE,
                kms_key_arn=ENDPOINT_KEY,
                enable_network_isolation=True,
            ),
        ],
        encryption_key=key,
        log_retention_days=30,
    )
    deployment.monitor(hub)
    compliance.enable_checks(app)
    return Built(app=app, hub=hub, pipelines=pipelines, deployment=deployment)


# Session-scoped: the cfn-lint test (marked `waits`) runs after the other modules, on this synthesis.
@pytest.fixture(scope="session")
def built(tmp_path_factory) -> tuple[Built, Path]:
    outdir = tmp_path_factory.mktemp("cdk.out")
    with pytest.MonkeyPatch.context() as monkeypatch:
        result = build(outdir, monkeypatch)
        result.app.synth()  # cdk-nag findings without an acknowledgement fail here
    cfn_lint_later(outdir.glob("*.template.json"))
    return result, outdir


@pytest.fixture(scope="module")
def templates(built) -> dict[str, dict]:
    _, outdir = built
    return {
        name: json.loads((outdir / f"{name}.template.json").read_text())
        for name in ("Foundation", "Training")
    }


def resources(template: dict, resource_type: str, prefix: str = "") -> dict[str, dict]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type and logical_id.startswith(prefix)
    }


def one(template: dict, resource_type: str, prefix: str = "") -> dict:
    (resource,) = resources(template, resource_type, prefix).values()
    return resource


def flat(value: Any) -> Any:
    """A template value with references written as <Name> (like cdk-nag); lists and dicts recursively."""
    if isinstance(value, list):
        return [flat(item) for item in value]
    if not isinstance(value, dict):
        return value
    if "Fn::Join" in value:
        delimiter, items = value["Fn::Join"]
        return delimiter.join(str(flat(item)) for item in items)
    if "Fn::GetAtt" in value:
        return f"<{value['Fn::GetAtt'][0]}.{value['Fn::GetAtt'][1]}>"
    if "Ref" in value:
        return f"<{value['Ref']}>"
    if "Fn::GetStackOutput" in value:
        return f"<{value['Fn::GetStackOutput']['OutputName']}>"
    return {key: flat(item) for key, item in value.items()}


def definition(templates: dict, settings: PipelineSettings) -> dict:
    prefix = f"Pipeline{settings.name.replace('-', '')}"
    machine = one(templates["Training"], "AWS::StepFunctions::StateMachine", prefix)
    return json.loads(flat(machine["Properties"]["DefinitionString"]))


def statements(template: dict, policy_prefix: str) -> dict[str, dict]:
    policy = one(template, "AWS::IAM::Policy", policy_prefix)
    found = {}
    for index, statement in enumerate(policy["Properties"]["PolicyDocument"]["Statement"]):
        found[statement.get("Sid", f"#{index}")] = flat(statement)
    return found


def validate(operation: str, params: dict) -> None:
    """The request against botocore's SageMaker model: names, types, required fields, lengths."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    report = ParamValidator().validate(params, model.operation_model(operation).input_shape)
    assert not report.has_errors(), report.generate_report()


# --- compliance ------------------------------------------------------------------------------------


def test_every_finding_is_acknowledged_and_every_acknowledgement_is_used(tmp_path, monkeypatch):
    """With acknowledgements switched off, cdk-nag reports exactly the findings they name."""
    acknowledged: list[tuple[object, object]] = []

    def record(scope, *acks):
        acknowledged.extend((a, scope) for a in acks)

    monkeypatch.setattr(compliance, "acknowledge", record)
    result = build(tmp_path, monkeypatch)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        result.app.synth()
    # A pending acknowledgement is named after its resolved resource: the app has resolved it now.
    recorded = [
        (
            (
                a.acknowledgement.on(compliance.nag_resource(scope, a.resource))
                if isinstance(a, compliance.PendingAcknowledgement)
                else a
            ).finding,
            scope.node.path,
        )
        for a, scope in acknowledged
    ]
    report = json.loads((tmp_path / "validation-report.json").read_text())
    violations = {
        (v["ruleName"], c["constructPath"])
        for plugin in report["pluginReports"]
        for v in plugin["violations"]
        for c in v["violatingConstructs"]
    }
    assert violations

    def covers(ack: tuple[str, str], violation: tuple[str, str]) -> bool:
        return ack[0] == violation[0] and (violation[1] + "/").startswith(ack[1] + "/")

    assert [v for v in violations if not any(covers(a, v) for a in recorded)] == []
    assert [a for a in recorded if not any(covers(a, v) for v in violations)] == []


@pytest.mark.waits  # cfn-lint runs in the background from the fixture
def test_cfn_lint_passes(built):
    _, outdir = built
    result = cfn_lint_later(outdir.glob("*.template.json")).result()
    assert not result.stdout.strip(), result.stdout
    assert result.returncode == 0, result.stderr


# --- the state machine -----------------------------------------------------------------------------


def test_the_states_run_train_evaluate_then_register_or_fail(templates):
    states = definition(templates, SPOT)["States"]
    assert {name: state["Type"] for name, state in states.items()} == {
        "NameTheJob": "Pass",
        "Train": "Task",
        "Evaluate": "Task",
        "Passed?": "Choice",
        "Register": "Task",
        "EvaluationFailed": "Fail",
        "PipelineFailed": "Fail",
    }
    assert definition(templates, SPOT)["StartAt"] == "NameTheJob"
    assert states["NameTheJob"]["Next"] == "Train"
    assert states["Train"]["Next"] == "Evaluate"
    assert states["Evaluate"]["Next"] == "Passed?"
    assert states["Passed?"]["Choices"] == [
        {"Variable": "$.evaluation.passed", "BooleanEquals": True, "Next": "Register"}
    ]
    assert states["Passed?"]["Default"] == "EvaluationFailed"
    assert states["EvaluationFailed"]["Error"] == "EvaluationFailed"
    assert states["EvaluationFailed"]["CausePath"] == "$.evaluation.reason"
    assert states["Register"]["End"] is True


def test_the_training_task_waits_for_the_job_and_retries_only_transient_errors(templates):
    train = definition(templates, SPOT)["States"]["Train"]
    assert train["Resource"] == "arn:aws:states:::sagemaker:createTrainingJob.sync"
    (retry,) = train["Retry"]
    assert set(retry["ErrorEquals"]) >= {"SageMaker.AmazonSageMakerException", "ThrottlingException"}
    assert "States.ALL" not in retry["ErrorEquals"]
    assert retry["BackoffRate"] == 2
    assert retry["MaxAttempts"] == 3
    assert train["ResultPath"] == "$.training"


def test_every_task_catches_everything_into_a_failed_execution(templates):
    states = definition(templates, SPOT)["States"]
    for name in ("Train", "Evaluate", "Register"):
        assert states[name]["Catch"] == [
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "PipelineFailed"}
        ], name
    assert states["PipelineFailed"]["ErrorPath"] == "$.failure.Error"
    assert states["PipelineFailed"]["CausePath"] == "$.failure.Cause"


def test_one_job_name_per_execution_within_sagemaker_limits(templates):
    name = definition(templates, SPOT)["States"]["NameTheJob"]["Parameters"]["name.$"]
    assert name == (
        "States.Format('demo-support-tuning-{}', States.Hash(States.Format('{}@{}', "
        "$$.Execution.Id, $$.Execution.StartTime), 'MD5'))"
    )
    assert definition(templates, SPOT)["States"]["Train"]["Parameters"]["TrainingJobName.$"] == "$.job.name"
    long = "a-very-long-profile-name-and-a-long-pipeline-name"
    prefix = job_name_prefix(long)
    assert len(prefix) <= 30
    assert not prefix.endswith("-")
    assert len(f"{prefix}-{'0' * 32}") <= 63


def test_spot_training_checkpoints_per_job_with_isolation_and_kms(templates):
    params = definition(templates, SPOT)["States"]["Train"]["Parameters"]
    assert params["EnableManagedSpotTraining"] is True
    assert params["StoppingCondition"] == {
        "MaxRuntimeInSeconds": 24 * 3600,
        "MaxWaitTimeInSeconds": 30 * 3600,
    }
    checkpoint = params["CheckpointConfig"]["S3Uri.$"]
    assert checkpoint.startswith("States.Format('s3://<")
    assert checkpoint.endswith("/training/support-tuning/checkpoints/{}/', $.job.name)")
    assert "ArtifactsBucket" in checkpoint
    assert params["EnableNetworkIsolation"] is True
    assert params["EnableInterContainerTrafficEncryption"] is True
    assert "PlatformKey" in params["OutputDataConfig"]["KmsKeyId"]
    assert params["OutputDataConfig"]["S3OutputPath"].endswith("/training/support-tuning/output/")
    # ml.g5 has local NVMe storage: SageMaker refuses a volume key there.
    assert "VolumeKmsKeyId" not in params["ResourceConfig"]
    assert params["ResourceConfig"] == {
        "InstanceType": "ml.g5.2xlarge",
        "InstanceCount": 1,
        "VolumeSizeInGB": 100,
    }
    assert params["AlgorithmSpecification"] == {
        "TrainingImage": image_uri("pytorch-training", REGION),
        "TrainingInputMode": "File",
        "MetricDefinitions": [{"Name": "eval:loss", "Regex": "eval_loss=([0-9.]+)"}],
    }


def test_an_isolated_job_gets_its_code_as_a_channel(templates):
    params = definition(templates, SPOT)["States"]["Train"]["Parameters"]
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in params["InputDataConfig"]}
    assert set(channels) == {"train", "code"}
    assert "DataBucket" in channels["train"]
    assert channels["train"].endswith("/training/support/")
    assert channels["code"].endswith("/code/support-tuning/sourcedir.tar.gz")
    hyper = {key: json.loads(value) for key, value in params["HyperParameters"].items()}
    assert hyper == {
        "epochs": "3",
        "learning_rate": "2e-5",
        "use_lora": "true",
        "sagemaker_program": "train.py",
        "sagemaker_submit_directory": "/opt/ml/input/data/code/sourcedir.tar.gz",
        "sagemaker_region": REGION,
    }


def test_without_spot_or_isolation_the_code_comes_from_s3_and_the_volume_takes_the_key(templates):
    params = definition(templates, PLAIN)["States"]["Train"]["Parameters"]
    for absent in ("EnableManagedSpotTraining", "CheckpointConfig"):
        assert absent not in params
    assert params["StoppingCondition"] == {"MaxRuntimeInSeconds": 2 * 3600}
    assert params["EnableNetworkIsolation"] is False
    assert [c["ChannelName"] for c in params["InputDataConfig"]] == ["train"]
    submit = json.loads(params["HyperParameters"]["sagemaker_submit_directory"])
    assert submit.startswith("s3://<")
    assert submit.endswith("/code/copy/source.tar.gz")
    assert json.loads(params["HyperParameters"]["sagemaker_program"]) == "src/train.py"
    assert "PlatformKey" in params["ResourceConfig"]["VolumeKmsKeyId"]


def test_the_training_request_is_a_valid_create_training_job_request(templates):
    for settings in (SPOT, PLAIN):
        params = copy.deepcopy(definition(templates, settings)["States"]["Train"]["Parameters"])
        params["TrainingJobName"] = params.pop("TrainingJobName.$").replace("$.job.name", "x" * 63)
        if "CheckpointConfig" in params:
            params["CheckpointConfig"] = {"S3Uri": "s3://bucket/training/x/checkpoints/job/"}
        validate("CreateTrainingJob", params)


def test_evaluation_gets_the_job_description_and_the_rule(templates):
    states = definition(templates, PLAIN)["States"]
    evaluate = states["Evaluate"]
    assert evaluate["Parameters"] == {
        "training.$": "$.training",
        "rule": {"name": "eval:accuracy", "threshold": 0.8, "goal": "maximize"},
    }
    assert evaluate["ResultPath"] == "$.evaluation"
    assert "EvaluationFunction" in evaluate["Resource"]


def test_registration_is_a_pending_model_version_with_the_serving_image(templates):
    register = definition(templates, SPOT)["States"]["Register"]
    assert register["Resource"] == "arn:<AWS::Partition>:states:::aws-sdk:sagemaker:createModelPackage"
    params = register["Parameters"]
    assert params["ModelPackageGroupName"] == "demo-support-tuning"
    assert params["ModelApprovalStatus"] == "PendingManualApproval"
    assert params["ClientToken.$"] == "States.Hash($$.Execution.Id, 'MD5')"
    assert params["InferenceSpecification"] == {
        "Containers": [{"Image": SERVING_IMAGE, "ModelDataUrl.$": "$.evaluation.model_data_url"}],
        "SupportedContentTypes": ["application/json"],
        "SupportedResponseMIMETypes": ["application/json"],
    }
    assert params["CustomerMetadataProperties.$"] == "$.evaluation.customer_metadata"
    assert params["ModelPackageDescription.$"] == "$.evaluation.reason"
    assert {r["ErrorEquals"][0] for r in register["Retry"]} == {"SageMaker.ThrottlingException"}
    # Without a serving image the training image is registered.
    plain = definition(templates, PLAIN)["States"]["Register"]["Parameters"]["InferenceSpecification"]
    assert plain["Containers"][0]["Image"] == image_uri("pytorch-training", REGION)


def test_the_registration_request_built_from_an_evaluation_is_valid(templates, monkeypatch):
    from tests.lambdas.test_training_evaluation import DESCRIPTION, RULE

    handler = importlib.import_module("lambdas.training_evaluation.handler")
    context = type("Context", (), {"function_name": "f", "memory_limit_in_mb": 256, "aws_request_id": "r"})
    context.invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:f"
    evaluation = handler.on_event({"training": DESCRIPTION, "rule": RULE}, context())
    params = copy.deepcopy(definition(templates, SPOT)["States"]["Register"]["Parameters"])
    params["ModelPackageDescription"] = evaluation["reason"]
    params["CustomerMetadataProperties"] = evaluation["customer_metadata"]
    params["ClientToken"] = "0" * 32
    container = params["InferenceSpecification"]["Containers"][0]
    container["ModelDataUrl"] = evaluation["model_data_url"]
    for key in ("ModelPackageDescription.$", "CustomerMetadataProperties.$", "ClientToken.$"):
        del params[key]
    del container["ModelDataUrl.$"]
    validate("CreateModelPackage", params)


def test_logging_tracing_and_timeout(templates):
    machine = one(templates["Training"], "AWS::StepFunctions::StateMachine", "Pipelinesupporttuning")[
        "Properties"
    ]
    logging = machine["LoggingConfiguration"]
    assert logging["Level"] == "ALL"
    assert logging["IncludeExecutionData"] is False
    log_group_id = logging["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    log_group = templates["Training"]["Resources"][log_group_id]
    assert "KmsKeyId" in log_group["Properties"]
    assert log_group["Properties"]["RetentionInDays"] == 30
    assert machine["TracingConfiguration"] == {"Enabled": True}
    assert definition(templates, SPOT)["TimeoutSeconds"] == (30 + 1) * 3600


def test_the_model_package_group_is_named_and_retained(templates):
    groups = resources(templates["Training"], "AWS::SageMaker::ModelPackageGroup")
    assert sorted(g["Properties"]["ModelPackageGroupName"] for g in groups.values()) == sorted(NAMES.values())
    for group in groups.values():
        assert group["DeletionPolicy"] == group["UpdateReplacePolicy"] == "Retain"
        assert group["Properties"]["ModelPackageGroupDescription"]


def test_the_schedule_starts_the_state_machine_with_a_role_for_that_only(templates):
    training = templates["Training"]
    rule = one(training, "AWS::Events::Rule", "Pipelinesupporttuning")["Properties"]
    assert rule["ScheduleExpression"] == "rate(7 days)"
    (target,) = rule["Targets"]
    assert target["Input"] == "{}"
    machine_id = next(iter(resources(training, "AWS::StepFunctions::StateMachine", "Pipelinesupporttuning")))
    assert target["Arn"] == {"Ref": machine_id}
    role_statements = statements(training, "PipelinesupporttuningStateMachineEventsRole")
    assert list(role_statements.values()) == [
        {"Action": "states:StartExecution", "Effect": "Allow", "Resource": f"<{machine_id}>"}
    ]
    assert not resources(training, "AWS::Events::Rule", "Pipelinecopytuning")


def test_the_state_machine_role_reaches_only_its_jobs_group_and_function(templates):
    found = statements(templates["Training"], "PipelinesupporttuningStateMachineRole")
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}"
    assert found["RunTheTrainingJobs"]["Resource"] == f"{arn}:training-job/demo-support-tuning-*"
    assert set(found["RunTheTrainingJobs"]["Action"]) == {
        "sagemaker:CreateTrainingJob",
        "sagemaker:DescribeTrainingJob",
        "sagemaker:StopTrainingJob",
        "sagemaker:ListTags",
    }
    assert found["PassTheTrainingRole"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }
    assert "TrainingRolesupporttuningRole" in found["PassTheTrainingRole"]["Resource"]
    assert found["WatchTheTrainingJobs"]["Resource"] == (
        f"arn:aws:events:{REGION}:{ACCOUNT}:rule/StepFunctionsGetEventsForSageMakerTrainingJobsRule"
    )
    (register,) = [s for s in found.values() if s["Action"] == "sagemaker:CreateModelPackage"]
    assert register["Resource"] == [
        f"{arn}:model-package-group/demo-support-tuning",
        f"{arn}:model-package/demo-support-tuning/*",
    ]


# --- the training job role -------------------------------------------------------------------------


def test_the_training_role_reads_and_writes_exactly_the_pipeline_s_objects(templates):
    found = statements(templates["Foundation"], "TrainingRolesupporttuningRole")
    data, artifacts = "<DataBucketE6B0FAA8.Arn>", "<ArtifactsBucket88671897.Arn>"
    assert found["ListTheTrainingData"]["Resource"] == data
    assert found["ListTheTrainingData"]["Condition"] == {"StringLike": {"s3:prefix": ["training/support/*"]}}
    assert found["ReadTheTrainingData"]["Resource"] == f"{data}/training/support/*"
    assert found["ListTheCodeAndCheckpoints"]["Condition"] == {
        "StringLike": {
            "s3:prefix": ["code/support-tuning/sourcedir.tar.gz", "training/support-tuning/checkpoints/*"]
        }
    }
    assert found["ReadTheCode"]["Resource"] == f"{artifacts}/code/support-tuning/sourcedir.tar.gz"
    assert found["WriteTheModel"] == {
        "Action": "s3:PutObject",
        "Effect": "Allow",
        "Resource": f"{artifacts}/training/support-tuning/output/*",
        "Sid": "WriteTheModel",
    }
    assert found["KeepCheckpoints"]["Resource"] == f"{artifacts}/training/support-tuning/checkpoints/*"
    s3_actions = {a for s in found.values() for a in _actions(s) if a.startswith("s3:")}
    assert s3_actions == {"s3:ListBucket", "s3:GetObject", "s3:PutObject"}


def test_the_training_role_uses_the_key_pulls_one_repository_and_logs_to_sagemaker_s_group(templates):
    found = statements(templates["Foundation"], "TrainingRolesupporttuningRole")
    assert set(found["UseThePlatformKey"]["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt"}
    assert found["UseThePlatformKey"]["Resource"] == "<PlatformKey1C4A1A63.Arn>"
    assert "EncryptTheTrainingVolume" not in found  # ml.g5: no volume key, no grant
    assert found["PullTheTrainingImage"]["Resource"] == image_repository_arn("pytorch-training", REGION)
    assert found["LogInToEcr"]["Action"] == "ecr:GetAuthorizationToken"
    group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker/TrainingJobs"
    assert found["WriteTrainingLogs"]["Resource"] == group
    assert found["WriteTrainingLogStreams"]["Resource"] == f"{group}:log-stream:*"
    assert found["PublishTrainingMetrics"]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/TrainingJobs"}
    }
    wildcard = [s for s in found.values() if s["Resource"] == "*"]
    assert {a for s in wildcard for a in _actions(s)} == {
        "ecr:GetAuthorizationToken",
        "cloudwatch:PutMetricData",
    }
    plain = statements(templates["Foundation"], "TrainingRolecopytuningRole")
    assert plain["EncryptTheTrainingVolume"]["Action"] == "kms:CreateGrant"
    assert plain["EncryptTheTrainingVolume"]["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}


def test_the_training_role_is_trusted_by_sagemaker_only(templates):
    role = one(templates["Foundation"], "AWS::IAM::Role", "TrainingRolesupporttuningRole")
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert not role["Properties"].get("ManagedPolicyArns")


def _actions(statement: dict) -> list[str]:
    action = statement["Action"]
    return action if isinstance(action, list) else [action]


# --- deployment on approval ------------------------------------------------------------------------


def test_the_approval_rule_matches_approved_versions_of_the_configured_groups(templates):
    rule = one(templates["Training"], "AWS::Events::Rule", "ModelDeploymentOnApproval")["Properties"]
    assert rule["EventPattern"] == {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Model Package State Change"],
        "detail": {
            "ModelPackageGroupName": ["demo-support-tuning", "demo-copy-tuning"],
            "ModelApprovalStatus": ["Approved"],
        },
    }
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [_queue_id(templates, "Approvals"), "Arn"]}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 6 * 3600}


def _deployer_id(templates) -> str:
    (logical_id,) = resources(templates["Training"], "AWS::Lambda::Function", "ModelDeploymentDeployer")
    return logical_id


def _queue_id(templates, name: str) -> str:
    (logical_id,) = resources(templates["Training"], "AWS::SQS::Queue", f"ModelDeployment{name}")
    return logical_id


def test_approvals_wait_in_a_queue_while_the_endpoint_is_busy_then_go_to_an_alarmed_dead_letter_queue(
    templates,
):
    """Finding: Lambda's asynchronous retries (twice, +1 and +2 minutes) cannot outlast a 30-minute
    rollout. The approval waits in an SQS queue: a busy endpoint's approval is a batch item failure and
    comes back after the visibility timeout, for about six hours, then SQS moves it to the DLQ."""
    training = templates["Training"]
    approvals_id, dead_letters_id = _queue_id(templates, "Approvals"), _queue_id(templates, "DeadLetters")
    approvals = training["Resources"][approvals_id]["Properties"]
    assert approvals["VisibilityTimeout"] == 600
    assert approvals["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dead_letters_id, "Arn"]},
        "maxReceiveCount": 36,
    }
    assert approvals["SqsManagedSseEnabled"] is True
    assert approvals["MessageRetentionPeriod"] >= 6 * 3600
    dead_letters = training["Resources"][dead_letters_id]["Properties"]
    assert "PlatformKey" in flat(dead_letters["KmsMasterKeyId"])
    assert dead_letters["MessageRetentionPeriod"] == 14 * 24 * 3600
    for policy in resources(training, "AWS::SQS::QueuePolicy", "ModelDeployment").values():
        deny = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
        assert [d["Condition"] for d in deny] == [{"Bool": {"aws:SecureTransport": "false"}}]
    # EventBridge may send to the approvals queue, from the two rules only (approvals, rollout outcomes).
    (approvals_policy,) = [
        p["Properties"]["PolicyDocument"]
        for p in resources(training, "AWS::SQS::QueuePolicy", "ModelDeployment").values()
        if p["Properties"]["Queues"] == [{"Ref": approvals_id}]
    ]
    sends = [s for s in approvals_policy["Statement"] if s["Effect"] == "Allow"]
    assert all(send["Principal"] == {"Service": "events.amazonaws.com"} for send in sends)
    assert sorted(flat(send["Condition"]["ArnEquals"]["aws:SourceArn"]) for send in sends) == [
        f"<{rule_id}.Arn>" for rule_id in sorted(resources(training, "AWS::Events::Rule", "ModelDeployment"))
    ]

    (mapping,) = resources(training, "AWS::Lambda::EventSourceMapping").values()
    assert mapping["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [approvals_id, "Arn"]}
    assert mapping["Properties"]["FunctionName"] == {"Ref": _deployer_id(templates)}
    assert mapping["Properties"]["BatchSize"] == 1
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    function = training["Resources"][_deployer_id(templates)]["Properties"]
    assert function["Timeout"] * 6 <= approvals["VisibilityTimeout"]
    assert function["Environment"]["Variables"]["DEAD_LETTER_QUEUE_URL"] == {"Ref": dead_letters_id}
    # No asynchronous invocation path is left.
    assert not resources(training, "AWS::Lambda::EventInvokeConfig")
    assert not [
        p
        for p in resources(training, "AWS::Lambda::Permission").values()
        if "events" in flat(p["Properties"]["Principal"])
    ]

    alarm = one(training, "AWS::CloudWatch::Alarm", "ModelDeploymentFailedDeployments")["Properties"]
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [dead_letters_id, "QueueName"]}}
    ]
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_the_deployer_runs_its_real_entry_point(templates):
    function = templates["Training"]["Resources"][_deployer_id(templates)]["Properties"]
    assert function["Handler"] == DEPLOYER_ENTRY_POINT
    module, _, name = DEPLOYER_ENTRY_POINT.rpartition(".")
    source = (REPO_ROOT / Path(*module.split("."))).with_suffix(".py").read_text()
    functions = {n.name for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef)}
    assert name in functions


def test_the_deployments_pass_the_deployer_s_own_validation(templates, monkeypatch):
    variables = templates["Training"]["Resources"][_deployer_id(templates)]["Properties"]["Environment"][
        "Variables"
    ]
    raw = variables["DEPLOYMENTS"]
    assert isinstance(raw, str)  # no deploy-time values in this test's deployments
    monkeypatch.setenv("DEPLOYMENTS", raw)
    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/dead-letters")
    handler = importlib.reload(importlib.import_module("lambdas.model_deployer.handler"))
    loaded = handler._load_deployments(raw)
    ((support,), (copy_llm,)) = loaded["demo-support-tuning"], loaded["demo-copy-tuning"]
    assert support.endpoint_name == "demo-support-llm"
    assert support.environment == {"OPTION_ROLLING_BATCH": "vllm"}
    assert support.enable_network_isolation is False
    assert copy_llm.enable_network_isolation is True


def test_the_deployer_may_do_exactly_what_a_deployment_needs(templates):
    found = statements(templates["Training"], "ModelDeploymentDeployerRole")
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}"
    assert sorted(found["ReadApprovedVersions"]["Resource"]) == [
        f"{arn}:model-package/demo-copy-tuning/*",
        f"{arn}:model-package/demo-support-tuning/*",
    ]
    assert found["FindTheLatestVersion"] == {
        "Action": "sagemaker:ListModelPackages",
        "Effect": "Allow",
        "Resource": "*",
        "Sid": "FindTheLatestVersion",
    }
    assert sorted(found["CreateModels"]["Resource"]) == [
        f"{arn}:model/demo-copy-llm-v*",
        f"{arn}:model/demo-support-llm-v*",
    ]
    configs = [f"{arn}:endpoint-config/demo-copy-llm-v*", f"{arn}:endpoint-config/demo-support-llm-v*"]
    endpoints = [f"{arn}:endpoint/demo-copy-llm", f"{arn}:endpoint/demo-support-llm"]
    assert sorted(found["CreateEndpointConfigs"]["Resource"]) == configs
    assert sorted(found["RollTheEndpoints"]["Resource"]) == endpoints
    # UpdateEndpoint only: the inference stack creates the endpoints. The configurations it rolls to
    # only when they carry one of the deployment's tags (one statement per tag).
    assert _actions(found["RollTheEndpoints"]) == ["sagemaker:UpdateEndpoint"]
    # This test's app gives the deployment no tags: one statement without a condition (the built-in
    # profiles' tag conditions: tests/stacks/test_resource_policies.py and the access rows).
    rolls = [statement for sid, statement in found.items() if sid.startswith("RollToTaggedConfigs")]
    assert len(rolls) == 1
    assert _actions(rolls[0]) == ["sagemaker:UpdateEndpoint"]
    assert sorted(rolls[0]["Resource"]) == configs
    assert "Condition" not in rolls[0]
    assert sorted(found["WatchTheEndpoints"]["Resource"]) == endpoints
    assert found["CopyTheEndpointConfigs"]["Resource"] == f"{arn}:endpoint-config/*"
    assert _actions(found["CopyTheEndpointConfigs"]) == ["sagemaker:DescribeEndpointConfig"]
    assert found["PassTheExecutionRoles"]["Resource"] == EXECUTION_ROLE
    assert found["PassTheExecutionRoles"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }
    assert found["LetEndpointsUseTheirKeys"]["Resource"] == ENDPOINT_KEY
    assert found["LetEndpointsUseTheirKeys"]["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}
    assert found["CheckTheKeys"]["Resource"] == ENDPOINT_KEY
    assert "PlatformKey" in str(found["EncryptFailureReports"]["Resource"])
    assert "DeadLetters" in str(found["ReportFailures"]["Resource"])
    wildcard = [s for s in found.values() if s["Resource"] == "*"]
    assert [_actions(s) for s in wildcard] == [["sagemaker:ListModelPackages"]]


# --- monitoring ------------------------------------------------------------------------------------


def test_alarms_and_dashboard_sections(built, templates):
    result, _ = built
    alarms = resources(templates["Training"], "AWS::CloudWatch::Alarm")
    metrics = sorted(a["Properties"].get("MetricName") for a in alarms.values())
    assert metrics == sorted(
        ["ExecutionsFailed", "ExecutionsTimedOut"] * 2
        + ["ApproximateNumberOfMessagesVisible"]
        + ["RolloutFailed"] * 2
    )
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"]
        assert alarm["Properties"]["OKActions"]
    assert len(result.hub.alarms) == 7
    assert [s.title for s in result.hub.sections] == [
        "Training pipeline support-tuning",
        "Training pipeline copy-tuning",
        "Model deployment",
    ]


# --- refusals at synth -----------------------------------------------------------------------------


def _stack() -> Stack:
    return Stack(App(), "S", env=ENV)


def _pipeline(stack: Stack, **changes) -> None:
    from aws_cdk import aws_iam as iam
    from aws_cdk import aws_kms as kms
    from aws_cdk import aws_s3 as s3

    bucket = s3.Bucket.from_bucket_name(stack, "B", "bucket")
    props = {
        "settings": SPOT,
        "pipeline_name": "demo-support-tuning",
        "role": iam.Role.from_role_arn(stack, "R", f"arn:aws:iam::{ACCOUNT}:role/r"),
        "data_bucket": bucket,
        "artifacts_bucket": bucket,
        "encryption_key": kms.Key.from_key_arn(stack, "K", ENDPOINT_KEY),
        "region": REGION,
        "log_retention_days": 30,
        **changes,
    }
    TrainingPipeline(stack, "P", **props)


def test_a_name_sagemaker_would_refuse_is_refused_at_synth():
    with pytest.raises(ValueError, match="not a SageMaker model package group name"):
        _pipeline(_stack(), pipeline_name="x" * 64)
    with pytest.raises(ValueError, match="not a SageMaker model package group name"):
        _pipeline(_stack(), pipeline_name="demo_tuning")


def test_reserved_hyperparameters_are_refused():
    settings = SPOT.model_copy(update={"hyperparameters": {"sagemaker_program": "evil.py"}})
    with pytest.raises(ValueError, match="sagemaker_program are reserved"):
        framework_hyperparameters(settings, "s3://b/k", REGION)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"endpoint_name": "e" * (model_deployment.ENDPOINT_NAME_MAX + 1)}, "longer than"),
        ({"endpoint_name": "bad_name"}, "is not a SageMaker name"),
        ({"model_package_group": "bad_group"}, "is not a SageMaker name"),
    ],
)
def test_a_deployment_the_deployer_would_refuse_is_refused_at_synth(changes, message):
    from aws_cdk import aws_kms as kms

    stack = _stack()
    item = {
        "model_package_group": "demo-support-tuning",
        "endpoint_name": "demo-support-llm",
        "execution_role_arn": EXECUTION_ROLE,
        **changes,
    }
    with pytest.raises(ValueError, match=message):
        ModelDeployment(
            stack,
            "D",
            deployments=[EndpointDeployment(**item)],
            encryption_key=kms.Key.from_key_arn(stack, "K", ENDPOINT_KEY),
            log_retention_days=30,
        )


def test_two_deployments_to_one_endpoint_are_refused():
    from aws_cdk import aws_kms as kms

    stack = _stack()
    item = {
        "endpoint_name": "demo-support-llm",
        "execution_role_arn": EXECUTION_ROLE,
    }
    with pytest.raises(ValueError, match="endpoint_name 'demo-support-llm' is used by more than one"):
        ModelDeployment(
            stack,
            "D",
            deployments=[
                EndpointDeployment(model_package_group="a", **item),
                EndpointDeployment(model_package_group="b", **item),
            ],
            encryption_key=kms.Key.from_key_arn(stack, "K", ENDPOINT_KEY),
            log_retention_days=30,
        )


# --- the rollouts' outcomes (issue 19) -------------------------------------------------------------


def test_endpoint_state_changes_of_the_deployed_endpoints_reach_the_deployer(templates):
    """Finding: UpdateEndpoint returns when the rollout starts, and a rollout SageMaker rolls back was
    silent. SageMaker's "SageMaker Endpoint State Change" events of the deployed endpoints go to the
    deployer's queue (the same event source mapping), which reports failures as RolloutFailed."""
    training = templates["Training"]
    rule = one(training, "AWS::Events::Rule", "ModelDeploymentOnEndpointStateChange")["Properties"]
    assert rule["EventPattern"] == {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Endpoint State Change"],
        "detail": {"EndpointName": ["demo-support-llm", "demo-copy-llm"]},
    }
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [_queue_id(templates, "Approvals"), "Arn"]}


def test_a_failed_rollout_raises_an_alarm_on_the_metric_the_deployer_publishes(built, templates):
    """The alarm watches exactly the namespace, metric and dimension set the handler's single_metric
    emits (tests/lambdas/test_model_deployer.py, test_a_rolled_back_rollout_raises_the_alarm_metric),
    and notifies the alarm topic through the MonitoringHub."""
    result, _ = built
    source = (REPO_ROOT / "lambdas" / "model_deployer" / "handler.py").read_text()
    handler_namespace = next(
        node.value.value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["NAMESPACE"]
    )
    alarms = {
        logical_id: alarm["Properties"]
        for logical_id, alarm in resources(templates["Training"], "AWS::CloudWatch::Alarm").items()
        if alarm["Properties"].get("MetricName") == "RolloutFailed"
    }
    watched = sorted(
        d["Value"] for a in alarms.values() for d in a["Dimensions"] if d["Name"] == "EndpointName"
    )
    assert watched == ["demo-copy-llm", "demo-support-llm"]
    for alarm in alarms.values():
        assert alarm["Namespace"] == handler_namespace == model_deployment.NAMESPACE
        # Powertools adds `service` (POWERTOOLS_SERVICE_NAME) to what single_metric emits: the
        # signal contract (tests/signals) runs the handler with the template's environment to prove it.
        assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]}.keys() == {"EndpointName", "service"}
        assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]}["service"] == "model-deployer"
        assert alarm["Statistic"] == "Sum"
        assert alarm["Threshold"] == 1
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmActions"]  # the hub's alarm topic
    assert set(result.deployment.rollout_alarms) <= set(result.hub.alarms)


def test_one_group_rolls_several_endpoints():
    """Issue 19: one approval, a real-time and an async endpoint (custom-model's support-tuning)."""
    from aws_cdk import aws_kms as kms

    stack = _stack()
    ModelDeployment(
        stack,
        "D",
        deployments=[
            EndpointDeployment(
                model_package_group="demo-support-tuning",
                endpoint_name=name,
                execution_role_arn=EXECUTION_ROLE,
            )
            for name in ("demo-support-llm", "demo-long-documents")
        ],
        encryption_key=kms.Key.from_key_arn(stack, "K", ENDPOINT_KEY),
        log_retention_days=30,
    )
    from aws_cdk.assertions import Template

    template = Template.from_stack(stack).to_json()
    rules = {k: r["Properties"] for k, r in template["Resources"].items() if r["Type"] == "AWS::Events::Rule"}
    (approval,) = [r for k, r in rules.items() if "OnApproval" in k]
    assert approval["EventPattern"]["detail"]["ModelPackageGroupName"] == ["demo-support-tuning"]
    (outcome,) = [r for k, r in rules.items() if "OnEndpointStateChange" in k]
    assert outcome["EventPattern"]["detail"]["EndpointName"] == ["demo-support-llm", "demo-long-documents"]
    found = statements(template, "DDeployerRole")
    arn = f"arn:<AWS::Partition>:sagemaker:{REGION}:{ACCOUNT}"  # a stack without the test app's partition
    assert found["ReadApprovedVersions"]["Resource"] == f"{arn}:model-package/demo-support-tuning/*"
    assert {f"{arn}:endpoint/demo-support-llm", f"{arn}:endpoint/demo-long-documents"} <= set(
        found["RollTheEndpoints"]["Resource"]
    )
