"""ModelEndpoint (inference stack) and ModelEndpointRole (foundation stack), synthesized once in a small
app with cdk-nag on: a GPU LMI endpoint with data capture and Model Monitor, an Inferentia2 LMI-Neuron
endpoint, an inference-component endpoint that scales to zero off hours, and an asynchronous endpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_cdk import Environment, Stack, Stage
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from genai_stack import compliance
from genai_stack.catalog import image_repository_arn, image_uri, sagemaker_data
from genai_stack.cli.synth import cdk_app
from genai_stack.components.alarm_topic import AlarmTopic
from genai_stack.components.endpoint_layout import (
    application_autoscaling_cron,
    container_environment,
    model_monitor_image,
)
from genai_stack.components.model_endpoint import ModelEndpoint
from genai_stack.components.model_endpoint_role import ModelEndpointRole
from genai_stack.components.monitoring import MonitoringHub
from genai_stack.components.platform_key import PlatformKey
from genai_stack.components.secure_bucket import SecureBucket
from genai_stack.config import AsyncInference, InferenceEndpoint, OffHours
from tests.compliance.tools import cfn_lint_later

REGION = "us-east-1"

ENDPOINTS = {
    "chat": InferenceEndpoint(
        name="chat",
        instance_type="ml.g5.2xlarge",
        container="lmi",
        model_prefix="models/llama-3-8b/",
        min_instances=1,
        max_instances=3,
        invocations_per_instance=20,
        max_model_len=8192,
        data_capture_percentage=25,
        monitoring_schedule="cron(0 * ? * * *)",  # Model Monitor is an opt-in (closed to new customers)
    ),
    "neuron": InferenceEndpoint(
        name="neuron",
        instance_type="ml.inf2.xlarge",
        container="lmi-neuron",
        model_prefix="models/mistral-7b/",
        data_capture_percentage=0,
    ),
    "assist": InferenceEndpoint(
        name="assist",
        instance_type="ml.g6.12xlarge",
        container="tgi",
        model_prefix="models/qwen-14b/",
        inference_components=True,
        min_instances=0,
        max_instances=2,
        max_model_len=8192,
        monitoring_schedule=None,
        off_hours=OffHours(stop="0 20 * * 1-5", start="30 7 * * MON-FRI", timezone="Asia/Taipei"),
    ),
    "batch": InferenceEndpoint(
        name="batch",
        instance_type="ml.g5.xlarge",
        container="lmi",
        model_prefix="models/llama-3-8b/",
        async_inference=AsyncInference(max_concurrent_invocations_per_instance=2),
        min_instances=0,
        max_instances=2,
        invocations_per_instance=5,
        data_capture_percentage=10,
        monitoring_schedule=None,
    ),
}


# Endpoints a training pipeline deploys its approved versions to (the model deployer): real-time and
# asynchronous ones (inference components are refused by the profile, stacks/profile/inference.py).
APPROVED_MODELS = {"chat", "batch"}


def endpoint_name(key: str) -> str:
    return f"test-{key}"


class Built:
    def __init__(self, app, foundation, inference, roles, endpoints, hub):
        self.app, self.foundation, self.inference = app, foundation, inference
        self.roles, self.endpoints, self.hub = roles, endpoints, hub
        self.templates: dict[str, dict] = {}
        self.paths: list[str] = []


# Session-scoped: the cfn-lint test (marked `waits`) runs after the other modules, on this synthesis.
@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Built:
    outdir = tmp_path_factory.mktemp("cdk.out")
    app = cdk_app(outdir)
    env = Environment(account="123456789012", region=REGION)
    foundation = Stack(app, "Foundation", env=env)
    key = PlatformKey(foundation, "PlatformKey", description="test key").key
    logs = SecureBucket(foundation, "AccessLogs", noncurrent_version_days=30, expiration_days=30).bucket
    compliance.skip_checkov(logs.node.default_child, compliance.ACCESS_LOG_BUCKET_NOT_LOGGED)
    artifacts = SecureBucket(
        foundation,
        "Artifacts",
        encryption_key=key,
        access_logs_bucket=logs,
        access_logs_prefix="artifacts/",
        noncurrent_version_days=30,
    ).bucket
    topic = AlarmTopic(foundation, "Alarms", encryption_key=key, emails=[]).topic
    roles = {
        name: ModelEndpointRole(
            foundation,
            f"EndpointRole-{name}",
            settings=settings,
            endpoint_name=endpoint_name(name),
            artifacts_bucket=artifacts,
            encryption_key=key,
            region=REGION,
        )
        for name, settings in ENDPOINTS.items()
    }
    inference = Stack(app, "Inference", env=env)
    hub = MonitoringHub(alarm_topic=topic)
    endpoints = {}
    for name, settings in ENDPOINTS.items():
        endpoint = ModelEndpoint(
            inference,
            f"Endpoint-{name}",
            settings=settings,
            endpoint_name=endpoint_name(name),
            role=roles[name].role,
            monitor_role=roles[name].monitor_role,
            artifacts_bucket=artifacts,
            encryption_key=key,
            region=REGION,
            log_retention_days=90,
            approved_models=name in APPROVED_MODELS,
        )
        endpoint.monitor(hub)
        endpoints[name] = endpoint
    compliance.enable_checks(app)
    assembly = app.synth()  # raises on any unacknowledged cdk-nag finding
    result = Built(app, foundation, inference, roles, endpoints, hub)
    for artifact in assembly.stacks:
        result.templates[artifact.hierarchical_id.split("/")[-1]] = artifact.template
        result.paths.append(artifact.template_full_path)
    cfn_lint_later(result.paths)
    return result


def resources(built: Built, stack: str, resource_type: str) -> dict[str, dict]:
    return {k: r for k, r in built.templates[stack]["Resources"].items() if r["Type"] == resource_type}


def props_of(built: Built, stack: Stack, construct) -> dict:
    template = built.templates[stack.node.id]["Resources"]
    return template[stack.get_logical_id(construct)]["Properties"]


def policy_statements(built: Built, role) -> dict[str, dict]:
    """Statements of the role's default policy, by Sid."""
    policy = role.node.find_child("DefaultPolicy").node.default_child
    props = props_of(built, built.foundation, policy)
    return {s["Sid"]: s for s in props["PolicyDocument"]["Statement"]}


def flat(value) -> str:
    """A resolved value as one string (Fn::Join flattened, references as <id>)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        return "".join(flat(v) for v in value["Fn::Join"][1])
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return f"<{'.'.join(value['Fn::GetAtt'])}>"
    if isinstance(value, dict) and "Fn::ImportValue" in value:
        return f"<import:{flat(value['Fn::ImportValue'])}>"
    if isinstance(value, dict) and "Fn::GetStackOutput" in value:  # a cross-stack reference
        return f"<import:{value['Fn::GetStackOutput']['OutputName']}>"
    return json.dumps(value)


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


# --------------------------------------------------------------------------------------------------
# Gates


@pytest.mark.waits  # cfn-lint runs in the background from the fixture
def test_cdk_nag_passes_and_cfn_lint_is_clean(built):
    assert set(built.templates) == {"Foundation", "Inference"}
    result = cfn_lint_later(built.paths).result()
    assert not result.stdout.strip(), result.stdout
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------------------------------
# Models and containers


def test_models_serve_uncompressed_weights_from_the_prefix_with_the_container_image(built):
    for name, endpoint in built.endpoints.items():
        settings = ENDPOINTS[name]
        props = props_of(built, built.inference, endpoint.model)
        container = props["PrimaryContainer"]
        assert container["Image"] == image_uri(settings.container, REGION)
        source = container["ModelDataSource"]["S3DataSource"]
        assert source["S3DataType"] == "S3Prefix"
        assert source["CompressionType"] == "None"
        assert flat(source["S3Uri"]).startswith("s3://<import:PublishOutputRefArtifactsBucket")
        assert flat(source["S3Uri"]).endswith(f"/{settings.model_prefix}")
        assert props["EnableNetworkIsolation"] is True
        assert "ExecutionRoleArn" in props


def test_lmi_gpu_uses_vllm_over_every_gpu_with_the_context_length(built):
    env = props_of(built, built.inference, built.endpoints["chat"].model)["PrimaryContainer"]["Environment"]
    assert env["OPTION_MODEL_ID"] == "/opt/ml/model"
    assert env["OPTION_ROLLING_BATCH"] == "vllm"
    assert env["TENSOR_PARALLEL_DEGREE"] == "max"
    assert env["OPTION_MAX_MODEL_LEN"] == "8192"


def test_lmi_neuron_shards_over_two_neuron_cores_per_chip(built):
    env = props_of(built, built.inference, built.endpoints["neuron"].model)["PrimaryContainer"]["Environment"]
    assert env["OPTION_ENTRYPOINT"] == "djl_python.transformers_neuronx"
    assert env["OPTION_ROLLING_BATCH"] == "auto"
    assert env["TENSOR_PARALLEL_DEGREE"] == "2"  # ml.inf2.xlarge: 1 chip, 2 NeuronCores
    assert env["OPTION_N_POSITIONS"] == "4096"
    assert env["OPTION_MODEL_ID"] == "/opt/ml/model"
    bigger = ENDPOINTS["neuron"].model_copy(update={"instance_type": "ml.inf2.24xlarge"})
    assert container_environment(bigger)["TENSOR_PARALLEL_DEGREE"] == "12"


@pytest.mark.parametrize(("instance_type", "chips"), [("ml.inf2.xlarge", 1), ("ml.inf2.24xlarge", 6)])
def test_a_neuron_inference_component_takes_every_chip_and_shards_over_both_cores(
    tmp_path, instance_type, chips
):
    # SageMaker counts accelerator devices (GPUs, Inferentia chips), the Neuron runtime reserves every
    # core of the devices a container gets: the component asks for chips, tensor parallelism counts
    # cores, and nothing narrows the visible cores.
    from aws_cdk.assertions import Template

    stack = Stack(cdk_app(tmp_path), "S", env=Environment(account="123456789012", region=REGION))
    settings = ENDPOINTS["neuron"].model_copy(
        update={"instance_type": instance_type, "inference_components": True, "min_instances": 0}
    )
    ModelEndpoint(
        stack,
        "E",
        settings=settings,
        endpoint_name="n",
        role=iam.Role(stack, "R", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com")),
        artifacts_bucket=s3.Bucket(stack, "B"),
        encryption_key=kms.Key(stack, "K"),
        region=REGION,
        log_retention_days=30,
    )
    template = Template.from_stack(stack)
    (component,) = template.find_resources("AWS::SageMaker::InferenceComponent").values()
    requirements = component["Properties"]["Specification"]["ComputeResourceRequirements"]
    assert requirements["NumberOfAcceleratorDevicesRequired"] == chips
    (model,) = template.find_resources("AWS::SageMaker::Model").values()
    env = model["Properties"]["PrimaryContainer"]["Environment"]
    assert env["TENSOR_PARALLEL_DEGREE"] == str(2 * chips)
    assert not {k for k in env if k.startswith("NEURON_RT_")}


def test_the_neuron_image_records_a_transformers_that_predates_rope_parameters():
    # transformers 5 writes RoPE under rope_parameters only; a 4.x reader silently falls back to
    # rope_theta 10000 (stacks/data/sagemaker.json, lmi-neuron notes). Llama 3.1 needs >= 4.43.
    from genai_stack.catalog import sagemaker_data

    entry = sagemaker_data()["images"]["lmi-neuron"]
    major, minor, _ = (int(part) for part in entry["transformers"].split("."))
    assert (4, 43) <= (major, minor) < (5, 0)
    assert "rope_parameters" in entry["notes"]
    assert "rope_theta" in entry["notes"]


def test_tgi_gets_the_gpu_count_and_token_limits(built):
    env = props_of(built, built.inference, built.endpoints["assist"].model)["PrimaryContainer"]["Environment"]
    assert env == {
        "HF_MODEL_ID": "/opt/ml/model",
        "SM_NUM_GPUS": "4",
        "MAX_TOTAL_TOKENS": "8192",
        "MAX_INPUT_TOKENS": "4096",
    }


# --------------------------------------------------------------------------------------------------
# Endpoint configurations


def config(built: Built, name: str) -> dict:
    return props_of(built, built.inference, built.endpoints[name].endpoint_config)


def test_the_volume_key_is_set_only_for_types_without_local_nvme(built):
    assert "KmsKeyId" not in config(built, "chat")  # ml.g5: NVMe instance storage
    assert "KmsKeyId" not in config(built, "assist")
    assert "KmsKeyId" in config(built, "neuron")  # ml.inf2: EBS only


def test_data_capture_goes_to_the_capture_prefix_encrypted(built):
    capture = config(built, "chat")["DataCaptureConfig"]
    assert capture["EnableCapture"] is True
    assert capture["InitialSamplingPercentage"] == 25
    assert {o["CaptureMode"] for o in capture["CaptureOptions"]} == {"Input", "Output"}
    # SageMaker appends <endpoint>/<variant>/yyyy/mm/dd/hh/ below the destination.
    assert flat(capture["DestinationS3Uri"]).endswith("/data-capture")
    assert "KmsKeyId" in capture
    assert capture["CaptureContentTypeHeader"] == {"JsonContentTypes": ["application/json"]}
    assert "DataCaptureConfig" not in config(built, "neuron")  # percentage 0


def test_variant_endpoints_hold_the_model_and_route_to_the_least_busy_instance(built):
    (variant,) = config(built, "chat")["ProductionVariants"]
    assert variant["VariantName"] == "AllTraffic"
    assert variant["InstanceType"] == "ml.g5.2xlarge"
    assert variant["InitialInstanceCount"] == 1
    assert "Fn::GetAtt" in variant["ModelName"]
    assert variant["RoutingConfig"] == {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"}
    assert "ManagedInstanceScaling" not in variant
    assert "ExecutionRoleArn" not in config(built, "chat")


def test_inference_component_endpoints_scale_instances_to_zero(built):
    props = config(built, "assist")
    (variant,) = props["ProductionVariants"]
    assert "ModelName" not in variant
    assert variant["ManagedInstanceScaling"] == {
        "Status": "ENABLED",
        "MinInstanceCount": 0,
        "MaxInstanceCount": 2,
    }
    assert variant["RoutingConfig"] == {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"}
    assert "ExecutionRoleArn" in props
    (component,) = resources(built, "Inference", "AWS::SageMaker::InferenceComponent").values()
    spec = component["Properties"]
    assert spec["InferenceComponentName"] == "test-assist-model"
    assert spec["VariantName"] == "AllTraffic"
    assert "Fn::GetAtt" in spec["Specification"]["ModelName"]
    assert spec["Specification"]["ComputeResourceRequirements"] == {
        "NumberOfAcceleratorDevicesRequired": 4,  # every GPU of ml.g6.12xlarge
        "MinMemoryRequiredInMb": 98304,  # half of its 192 GiB
    }
    assert spec["RuntimeConfig"] == {"CopyCount": 1}


def test_async_endpoints_write_results_under_their_prefix(built):
    props = config(built, "batch")
    output = props["AsyncInferenceConfig"]["OutputConfig"]
    assert flat(output["S3OutputPath"]).endswith("/async/test-batch/output/")
    assert flat(output["S3FailurePath"]).endswith("/async/test-batch/failure/")
    assert "KmsKeyId" in output
    assert props["AsyncInferenceConfig"]["ClientConfig"] == {"MaxConcurrentInvocationsPerInstance": 2}
    (variant,) = props["ProductionVariants"]
    assert "RoutingConfig" not in variant
    assert variant["InitialInstanceCount"] == 1  # min 0: starts with one, scales in when idle


def test_endpoints_have_their_names_and_encrypted_log_groups_first(built):
    names = {
        r["Properties"]["EndpointName"]
        for r in resources(built, "Inference", "AWS::SageMaker::Endpoint").values()
    }
    assert names == {endpoint_name(n) for n in ENDPOINTS}
    groups = resources(built, "Inference", "AWS::Logs::LogGroup")
    # (the approved-model custom resource's functions have log groups with generated names)
    by_name = {
        g["Properties"]["LogGroupName"]: (k, g)
        for k, g in groups.items()
        if "LogGroupName" in g["Properties"]
    }
    assert set(by_name) == {f"/aws/sagemaker/Endpoints/{endpoint_name(n)}" for n in ENDPOINTS} | {
        "/aws/sagemaker/InferenceComponents/test-assist-model"
    }
    for _, group in by_name.values():
        assert group["Properties"]["RetentionInDays"] == 90
        assert "KmsKeyId" in group["Properties"]
        assert group["DeletionPolicy"] == "Retain"
    endpoint = built.templates["Inference"]["Resources"][
        built.inference.get_logical_id(built.endpoints["chat"].endpoint)
    ]
    assert by_name["/aws/sagemaker/Endpoints/test-chat"][0] in endpoint["DependsOn"]


# --------------------------------------------------------------------------------------------------
# Autoscaling


def scaling(built: Built, resource_id: str) -> tuple[dict, list[dict]]:
    targets = resources(built, "Inference", "AWS::ApplicationAutoScaling::ScalableTarget")
    (logical_id, target), *_ = [
        (k, t) for k, t in targets.items() if t["Properties"]["ResourceId"] == resource_id
    ]
    policies = [
        p["Properties"]
        for p in resources(built, "Inference", "AWS::ApplicationAutoScaling::ScalingPolicy").values()
        if p["Properties"].get("ScalingTargetId") == {"Ref": logical_id}
    ]
    return target["Properties"], policies


def test_variant_autoscaling_tracks_invocations_per_instance(built):
    target, policies = scaling(built, "endpoint/test-chat/variant/AllTraffic")
    assert target["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 3)
    assert target["ServiceNamespace"] == "sagemaker"
    (policy,) = policies
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["PredefinedMetricSpecification"] == {
        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
    }
    assert tracking["TargetValue"] == 20
    assert "ScheduledActions" not in target


def alarm_on(built: Built, metric_name: str) -> dict:
    (alarm,) = [
        a["Properties"]
        for a in resources(built, "Inference", "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == metric_name
    ]
    return alarm


def test_inference_components_scale_copies_to_zero_and_back(built):
    target, policies = scaling(built, "inference-component/test-assist-model")
    assert target["ScalableDimension"] == "sagemaker:inference-component:DesiredCopyCount"
    assert (target["MinCapacity"], target["MaxCapacity"]) == (0, 2)
    by_type = {p["PolicyType"]: p for p in policies}
    tracking = by_type["TargetTrackingScaling"]["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["PredefinedMetricSpecification"] == {
        "PredefinedMetricType": "SageMakerInferenceComponentInvocationsPerCopy"
    }
    step = by_type["StepScaling"]["StepScalingPolicyConfiguration"]
    assert step["AdjustmentType"] == "ChangeInCapacity"
    assert step["StepAdjustments"] == [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]
    alarm = alarm_on(built, "NoCapacityInvocationFailures")
    assert alarm["Namespace"] == "AWS/SageMaker"
    assert alarm["Dimensions"] == [{"Name": "InferenceComponentName", "Value": "test-assist-model"}]
    assert alarm["Threshold"] == 1
    (action,) = alarm["AlarmActions"]
    assert "Ref" in action  # the step scaling policy, not the alarm topic


def test_off_hours_pin_the_capacity_to_zero_in_the_profile_time_zone(built):
    target, _ = scaling(built, "inference-component/test-assist-model")
    actions = {a["Schedule"]: a for a in target["ScheduledActions"]}
    assert set(actions) == {"cron(0 20 ? * 2-6 *)", "cron(30 7 ? * MON-FRI *)"}
    stop, start = actions["cron(0 20 ? * 2-6 *)"], actions["cron(30 7 ? * MON-FRI *)"]
    assert stop["ScalableTargetAction"] == {"MinCapacity": 0, "MaxCapacity": 0}
    assert start["ScalableTargetAction"] == {"MinCapacity": 0, "MaxCapacity": 2}
    assert stop["Timezone"] == start["Timezone"] == "Asia/Taipei"


def test_async_endpoints_track_the_backlog_and_start_from_zero(built):
    target, policies = scaling(built, "endpoint/test-batch/variant/AllTraffic")
    assert (target["MinCapacity"], target["MaxCapacity"]) == (0, 2)
    by_type = {p["PolicyType"]: p for p in policies}
    custom = by_type["TargetTrackingScaling"]["TargetTrackingScalingPolicyConfiguration"]
    assert custom["TargetValue"] == 5
    assert custom["CustomizedMetricSpecification"] == {
        "MetricName": "ApproximateBacklogSizePerInstance",
        "Namespace": "AWS/SageMaker",
        "Dimensions": [{"Name": "EndpointName", "Value": "test-batch"}],
        "Statistic": "Average",
    }
    assert "StepScaling" in by_type
    alarm = alarm_on(built, "HasBacklogWithoutCapacity")
    assert alarm["Dimensions"] == [{"Name": "EndpointName", "Value": "test-batch"}]


def test_endpoints_that_never_reach_zero_have_no_wake_alarm(built):
    _, policies = scaling(built, "endpoint/test-neuron/variant/AllTraffic")
    assert [p["PolicyType"] for p in policies] == ["TargetTrackingScaling"]


@pytest.mark.parametrize(
    ("unix", "expected"),
    [
        ("0 20 * * MON-FRI", "cron(0 20 ? * MON-FRI *)"),
        ("0 20 * * 1-5", "cron(0 20 ? * 2-6 *)"),
        ("0 7 * * 0,6", "cron(0 7 ? * 1,7 *)"),
        ("0 7 * * 7", "cron(0 7 ? * 1 *)"),
        ("15 6 1 * *", "cron(15 6 1 * ? *)"),
        ("*/30 * * * *", "cron(*/30 * * * ? *)"),
    ],
)
def test_unix_cron_becomes_application_auto_scaling_cron(unix, expected):
    assert application_autoscaling_cron(unix) == expected


@pytest.mark.parametrize(
    ("unix", "problem"), [("0 20 1 * MON", "both"), ("0 20 * *", "5-field"), ("0 1 * * 5-7", "wraps")]
)
def test_cron_that_cannot_be_converted_is_refused(unix, problem):
    with pytest.raises(ValueError, match=problem):
        application_autoscaling_cron(unix)


# --------------------------------------------------------------------------------------------------
# Model Monitor


def test_model_monitor_checks_the_captured_data_hourly(built):
    (job,) = resources(built, "Inference", "AWS::SageMaker::DataQualityJobDefinition").values()
    props = job["Properties"]
    assert "JobDefinitionName" not in props  # generated, so that a change can replace it
    assert props["DataQualityAppSpecification"]["ImageUri"] == (
        "156813124566.dkr.ecr.us-east-1.amazonaws.com/sagemaker-model-monitor-analyzer"
    )
    endpoint_input = props["DataQualityJobInput"]["EndpointInput"]
    assert endpoint_input["LocalPath"] == "/opt/ml/processing/input"
    assert "Fn::GetAtt" in endpoint_input["EndpointName"]
    output = props["DataQualityJobOutputConfig"]
    assert "KmsKeyId" in output
    (s3_output,) = output["MonitoringOutputs"]
    assert flat(s3_output["S3Output"]["S3Uri"]).endswith("/monitoring/test-chat/")
    cluster = props["JobResources"]["ClusterConfig"]
    assert (cluster["InstanceType"], cluster["InstanceCount"], cluster["VolumeSizeInGB"]) == (
        "ml.m5.large",
        1,
        30,
    )
    assert "VolumeKmsKeyId" in cluster
    assert props["NetworkConfig"]["EnableNetworkIsolation"] is True
    assert props["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}
    monitor_role = built.roles["chat"].monitor_role
    assert "MonitorRole" in flat(props["RoleArn"])
    assert monitor_role is not None
    (schedule,) = resources(built, "Inference", "AWS::SageMaker::MonitoringSchedule").values()
    config_ = schedule["Properties"]["MonitoringScheduleConfig"]
    assert schedule["Properties"]["MonitoringScheduleName"] == "test-chat-data-quality"
    assert config_["MonitoringType"] == "DataQuality"
    assert config_["ScheduleConfig"] == {"ScheduleExpression": "cron(0 * ? * * *)"}
    assert config_["MonitoringJobDefinitionName"]["Fn::Select"][0] == 1


def test_only_endpoints_with_capture_and_a_schedule_get_a_monitor(built):
    assert [n for n, r in built.roles.items() if r.monitor_role is not None] == ["chat"]
    assert [n for n, e in built.endpoints.items() if e.monitoring_schedule is not None] == ["chat"]


def test_the_analyzer_image_is_known_where_profiles_may_ask_for_it():
    for region in sagemaker_data()["model_monitor"]["accounts"]:
        image = model_monitor_image(region)
        assert image.uri == f"{image.account}.dkr.ecr.{region}.amazonaws.com/sagemaker-model-monitor-analyzer"
        assert len(image.account) == 12
    with pytest.raises(ValueError, match="not known"):
        model_monitor_image("xx-nowhere-1")


# --------------------------------------------------------------------------------------------------
# Roles


def test_the_execution_role_reads_exactly_its_model_and_writes_exactly_its_prefixes(built):
    statements = policy_statements(built, built.roles["chat"].role)
    listing = statements["ListTheModelPrefix"]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["models/llama-3-8b/*"]}}
    assert flat(listing["Resource"]).startswith("<Artifacts")
    assert flat(statements["ReadTheModel"]["Resource"]).endswith("/models/llama-3-8b/*")
    assert statements["ReadTheModel"]["Action"] == "s3:GetObject"
    assert [
        flat(r)[-len("/data-capture/test-chat/*") :]
        for r in as_list(statements["WriteCapturesAndResults"]["Resource"])
    ] == ["/data-capture/test-chat/*"]
    assert statements["PullTheImage"]["Resource"] == image_repository_arn("lmi", REGION)
    assert set(statements["UseThePlatformKey"]["Action"]) == {
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "kms:Encrypt",
    }
    assert "EncryptTheVolumeWithThePlatformKey" not in statements  # ml.g5: no volume key
    logs = [flat(r) for r in statements["WriteTheLogs"]["Resource"]]
    assert logs == [
        "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/test-chat",
        "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/test-chat:*",
    ]
    metrics = statements["PutSageMakerMetrics"]
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": ["/aws/sagemaker/Endpoints"]}}


def test_no_role_has_a_wildcard_resource_on_data_or_image_actions(built):
    unscoped_allowed = {"ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"}
    roles = [r.role for r in built.roles.values()] + [
        r.monitor_role for r in built.roles.values() if r.monitor_role
    ]
    for role in roles:
        for statement in policy_statements(built, role).values():
            if "*" in as_list(statement["Resource"]):
                assert set(as_list(statement["Action"])) <= unscoped_allowed, statement
                if "cloudwatch:PutMetricData" in as_list(statement["Action"]):
                    assert "cloudwatch:namespace" in statement["Condition"]["StringEquals"]
            for resource in as_list(statement["Resource"]):
                if resource != "*" and "*" in flat(resource):
                    # every other wildcard is a trailing one below a prefix of its own
                    assert flat(resource).endswith(("/*", ":*")), (statement["Sid"], flat(resource))


def test_the_neuron_role_may_encrypt_its_volume_and_pulls_the_neuron_image(built):
    statements = policy_statements(built, built.roles["neuron"].role)
    grant = statements["EncryptTheVolumeWithThePlatformKey"]
    assert grant["Action"] == "kms:CreateGrant"
    assert grant["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}
    assert statements["UseThePlatformKey"]["Action"] == "kms:Decrypt"  # writes nothing
    assert "WriteCapturesAndResults" not in statements
    assert statements["PullTheImage"]["Resource"] == image_repository_arn("lmi-neuron", REGION)


def test_the_async_role_reads_requests_and_writes_results_only(built):
    statements = policy_statements(built, built.roles["batch"].role)
    assert flat(statements["ReadAsyncRequests"]["Resource"]).endswith("/async/test-batch/input/*")
    written = sorted(flat(r).split("/", 1)[1] for r in statements["WriteCapturesAndResults"]["Resource"])
    assert written == ["async/test-batch/failure/*", "async/test-batch/output/*", "data-capture/test-batch/*"]


def test_the_inference_component_role_writes_both_log_groups(built):
    statements = policy_statements(built, built.roles["assist"].role)
    logs = {flat(r).split("log-group:")[1] for r in statements["WriteTheLogs"]["Resource"]}
    assert logs == {
        "/aws/sagemaker/Endpoints/test-assist",
        "/aws/sagemaker/Endpoints/test-assist:*",
        "/aws/sagemaker/InferenceComponents/test-assist-model",
        "/aws/sagemaker/InferenceComponents/test-assist-model:*",
    }
    namespaces = statements["PutSageMakerMetrics"]["Condition"]["StringEquals"]["cloudwatch:namespace"]
    assert namespaces == ["/aws/sagemaker/Endpoints", "/aws/sagemaker/InferenceComponents"]


def test_the_monitor_role_reads_captures_and_writes_reports_only(built):
    statements = policy_statements(built, built.roles["chat"].monitor_role)
    assert statements["ListCapturesAndReports"]["Condition"] == {
        "StringLike": {"s3:prefix": ["data-capture/test-chat/*", "monitoring/test-chat/*"]}
    }
    read = sorted(flat(r).split("/", 1)[1] for r in statements["ReadCapturesAndBaseline"]["Resource"])
    assert read == ["data-capture/test-chat/*", "monitoring/test-chat/*"]
    assert flat(statements["WriteReports"]["Resource"]).endswith("/monitoring/test-chat/*")
    assert statements["PullTheImage"]["Resource"] == (
        "arn:aws:ecr:us-east-1:156813124566:repository/sagemaker-model-monitor-analyzer"
    )
    assert statements["EncryptTheVolumeWithThePlatformKey"]["Action"] == "kms:CreateGrant"
    assert "ReadTheModel" not in statements
    trust = props_of(built, built.foundation, built.roles["chat"].monitor_role.node.default_child)
    (principal,) = trust["AssumeRolePolicyDocument"]["Statement"]
    assert principal["Principal"] == {"Service": "sagemaker.amazonaws.com"}


# --------------------------------------------------------------------------------------------------
# Alarms and dashboard


def test_alarms_watch_latency_errors_and_utilisation(built):
    chat = {a.node.id: a for a in built.endpoints["chat"].alarms}
    assert set(chat) == {"LatencyP90Alarm", "ServerErrorsAlarm", "ClientErrorsAlarm", "UtilisationAlarm"}
    latency = props_of(built, built.inference, chat["LatencyP90Alarm"].node.default_child)
    assert (latency["MetricName"], latency["Namespace"], latency["ExtendedStatistic"]) == (
        "ModelLatency",
        "AWS/SageMaker",
        "p90",
    )
    assert latency["Threshold"] == 60_000_000  # microseconds
    assert latency["Dimensions"] == [
        {"Name": "EndpointName", "Value": "test-chat"},
        {"Name": "VariantName", "Value": "AllTraffic"},
    ]
    utilisation = props_of(built, built.inference, chat["UtilisationAlarm"].node.default_child)
    (expression, raw) = sorted(utilisation["Metrics"], key=lambda m: "MetricStat" in m)
    assert expression["Expression"] == "raw / 1"
    assert raw["MetricStat"]["Metric"]["MetricName"] == "GPUUtilization"
    assert raw["MetricStat"]["Metric"]["Namespace"] == "/aws/sagemaker/Endpoints"
    neuron = {a.node.id: a for a in built.endpoints["neuron"].alarms}
    neuron_util = props_of(built, built.inference, neuron["UtilisationAlarm"].node.default_child)
    assert [m["MetricStat"]["Metric"]["MetricName"] for m in neuron_util["Metrics"] if "MetricStat" in m] == [
        "CPUUtilization"
    ]
    assist = {a.node.id: a for a in built.endpoints["assist"].alarms}
    errors = props_of(built, built.inference, assist["ServerErrorsAlarm"].node.default_child)
    assert errors["Dimensions"] == [{"Name": "InferenceComponentName", "Value": "test-assist-model"}]
    batch = {a.node.id for a in built.endpoints["batch"].alarms}
    assert {"OldestRequestAlarm", "InvocationFailuresAlarm"} <= batch


def test_alarms_reach_the_hub_and_every_endpoint_has_a_dashboard_section(built):
    assert len(built.hub.alarms) == sum(len(e.alarms) for e in built.endpoints.values()) == 4 * 4 + 2
    assert [s.title for s in built.hub.sections] == [
        f"SageMaker endpoint {endpoint_name(n)}" for n in ENDPOINTS
    ]
    for alarm in resources(built, "Inference", "AWS::CloudWatch::Alarm").values():
        if alarm["Properties"].get("MetricName") not in (
            "NoCapacityInvocationFailures",
            "HasBacklogWithoutCapacity",
        ):
            assert alarm["Properties"]["AlarmActions"]
            assert alarm["Properties"]["OKActions"]


def test_grant_invoke_names_the_endpoint_and_its_component(built):
    assert built.endpoints["chat"].endpoint_arn.endswith(":endpoint/test-chat")
    role_stack = Stack(Stage(cdk_app(Path(built.app.outdir) / "grant"), "g"), "G")

    grantee = iam.Role(role_stack, "Caller", assumed_by=iam.AccountRootPrincipal())
    grant = built.endpoints["assist"].grant_invoke(grantee)
    assert grant.success
    statement = grant.principal_statement.to_statement_json()
    assert statement["Action"] == ["sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointWithResponseStream"]
    assert any(":inference-component/test-assist-model" in json.dumps(r) for r in statement["Resource"])
    assert built.endpoints["batch"].grant_invoke(grantee).principal_statement.to_statement_json()[
        "Action"
    ] == ("sagemaker:InvokeEndpointAsync")


# --------------------------------------------------------------------------------------------------
# Refusals


def test_names_sagemaker_would_refuse_are_refused(tmp_path):
    stack = Stack(cdk_app(tmp_path), "S", env=Environment(account="123456789012", region=REGION))

    bucket = s3.Bucket(stack, "B")
    with pytest.raises(ValueError, match="not a valid SageMaker name"):
        ModelEndpointRole(
            stack,
            "R",
            settings=ENDPOINTS["neuron"],
            endpoint_name="x" * 64,
            artifacts_bucket=bucket,
            encryption_key=kms.Key(stack, "K"),
            region=REGION,
        )


def test_a_monitor_role_is_required_exactly_when_monitoring(tmp_path):
    stack = Stack(cdk_app(tmp_path), "S", env=Environment(account="123456789012", region=REGION))

    role = iam.Role(stack, "R", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    common = dict(
        role=role,
        artifacts_bucket=s3.Bucket(stack, "B"),
        encryption_key=kms.Key(stack, "K"),
        region=REGION,
        log_retention_days=30,
    )
    with pytest.raises(ValueError, match="monitor_role is required"):
        ModelEndpoint(stack, "A", settings=ENDPOINTS["chat"], endpoint_name="a", **common)
    with pytest.raises(ValueError, match="monitor_role is required"):
        ModelEndpoint(
            stack, "B2", settings=ENDPOINTS["neuron"], endpoint_name="b", monitor_role=role, **common
        )


def test_every_acknowledgement_of_the_roles_names_its_finding_and_gives_a_reason():
    from genai_stack.components import model_endpoint_role

    acks = [v for v in vars(model_endpoint_role).values() if isinstance(v, compliance.Acknowledgement)]
    assert len(acks) == 8  # seven for the roles' statements, TRAINED_MODELS for read_trained_models
    for ack in acks:
        assert ack.finding.startswith("AwsSolutions-IAM5")
        assert len(ack.reason.split()) >= 8, ack.finding


# --- one owner: the model deployer's endpoints ---------------------------------------------------------


def test_an_endpoint_with_approved_models_gets_its_config_only_through_the_custom_resource(built):
    """Finding: the deployer rolled the endpoint, and a later deploy whose template configuration
    changed put the initial model back (CloudFormation's UpdateEndpoint with the template's config).
    The endpoint's EndpointConfigName now comes from the custom resource, which keeps a live approved
    model (lambdas/model_deployer/logic.config_for_settings, tested in tests/lambdas/test_model_deployer.py)."""
    stack = built.inference
    for name, endpoint in built.endpoints.items():
        props = props_of(built, stack, endpoint.endpoint)
        config_id = stack.get_logical_id(endpoint.endpoint_config)
        template_name = {"Fn::GetAtt": [config_id, "EndpointConfigName"]}
        if name not in APPROVED_MODELS:
            assert endpoint.approved_model_config is None
            assert props["EndpointConfigName"] == template_name
            continue
        chooser = endpoint.approved_model_config
        chooser_id = stack.get_logical_id(chooser.resource.node.default_child)
        assert props["EndpointConfigName"] == {"Fn::GetAtt": [chooser_id, "EndpointConfigName"]}
        chooser_props = built.templates["Inference"]["Resources"][chooser_id]
        assert chooser_props["Type"] == "Custom::ApprovedModelEndpointConfig"
        assert chooser_props["Properties"]["EndpointName"] == endpoint_name(name)
        # It runs exactly when the template's configuration is replaced (any settings change).
        assert chooser_props["Properties"]["TemplateConfigName"] == template_name
        # Its handler is the deployer's own logic.
        function = props_of(built, stack, chooser.handler.function.node.default_child)
        assert function["Handler"] == "lambdas.model_deployer.endpoint_settings.on_event"
        from lambdas.model_deployer import endpoint_settings

        assert callable(endpoint_settings.on_event)


def test_the_approved_model_resource_may_read_and_copy_configs_but_never_change_the_endpoint(built):
    endpoint = built.endpoints["chat"]
    policy = endpoint.approved_model_config.handler.role.node.find_child("DefaultPolicy").node.default_child
    document = props_of(built, built.inference, policy)["PolicyDocument"]["Statement"]
    statements = {s.get("Sid"): s for s in document}
    sagemaker_actions = {a for s in document for a in as_list(s["Action"]) if a.startswith("sagemaker:")}
    assert sagemaker_actions == {
        "sagemaker:DescribeEndpoint",
        "sagemaker:DescribeEndpointConfig",
        "sagemaker:CreateEndpointConfig",
    }
    arn = f"arn:aws:sagemaker:{REGION}:123456789012"
    assert flat(statements["WatchTheEndpoint"]["Resource"]) == f"{arn}:endpoint/test-chat"
    assert flat(statements["CopyTheTemplateConfig"]["Resource"]) == f"{arn}:endpoint-config/test-chat-v*"
    assert statements["LetTheEndpointUseItsKey"]["Condition"] == {
        "Bool": {"kms:GrantIsForAWSResource": "true"}
    }


def test_every_config_with_data_capture_stores_json_readable(built):
    """ "If no headers are specified Amazon SageMaker AI will by default base64 encode when capturing
    the data" (API_CaptureContentTypeHeader); the deployer's copies keep this block."""
    configs = resources(built, "Inference", "AWS::SageMaker::EndpointConfig")
    captured = [
        c["Properties"]["DataCaptureConfig"]
        for c in configs.values()
        if "DataCaptureConfig" in c["Properties"]
    ]
    assert len(captured) == sum(1 for s in ENDPOINTS.values() if s.data_capture_percentage)
    for capture in captured:
        assert "application/json" in capture["CaptureContentTypeHeader"]["JsonContentTypes"]
        assert capture["DestinationS3Uri"]
        assert capture["KmsKeyId"]


# --- one definition: the deployer's configuration is the stack's (issue 19) -------------------------


@pytest.mark.parametrize("key", sorted(APPROVED_MODELS | {"neuron"}))
def test_the_deployer_s_endpoint_config_equals_the_stack_s_except_the_model(built, key):
    """The stack's AWS::SageMaker::EndpointConfig is the one definition of the endpoint's settings
    (startup timeouts, routing, capture with its content-type header, volume key, async output); the
    deployer copies it (lambdas/model_deployer/logic.copied_settings). The synthesized properties,
    resolved, are served as SageMaker's DescribeEndpointConfig answer (the Stubber checks them against
    the API's output shape, so CloudFormation's property names are the API's), and the deployer's
    CreateEndpointConfig request must be exactly those properties with the approved model."""
    from botocore.stub import ANY, Stubber

    from lambdas.model_deployer import logic
    from tests.access.resolver import Resolver
    from tests.lambdas import test_model_deployer as deployer

    endpoint = built.endpoints[key]
    resolver = Resolver(built.templates, account="123456789012", region=REGION)
    template = resolver.resolve("Inference", props_of(built, built.inference, endpoint.endpoint_config))
    assert "Tags" not in template  # Tags are not copied (DescribeEndpointConfig does not return them)
    live = "test-config-live"
    described = {
        "EndpointConfigName": live,
        "EndpointConfigArn": f"arn:aws:sagemaker:{REGION}:123456789012:endpoint-config/{live}",
        "CreationTime": deployer.NOW,
        **template,
    }
    model = logic.model_name(
        deployer.STUB_DEPLOYMENT,
        deployer.PACKAGE_ARN,
        3,
        logic.model_containers(deployer.PACKAGE, deployer.STUB_DEPLOYMENT.environment),
    )
    expected = json.loads(json.dumps(template))
    expected["ProductionVariants"][0]["ModelName"] = model

    client = deployer._client()
    with Stubber(client) as stub:
        deployer._stub_package(stub)
        stub.add_response(
            "describe_endpoint", deployer._endpoint("InService", live), {"EndpointName": "chat"}
        )
        stub.add_response("describe_endpoint_config", described, {"EndpointConfigName": live})
        stub.add_response("create_model", {"ModelArn": f"arn:aws:sagemaker:{REGION}:123456789012:model/m"})
        stub.add_response(
            "create_endpoint_config",
            {"EndpointConfigArn": f"arn:aws:sagemaker:{REGION}:123456789012:endpoint-config/c"},
            {"EndpointConfigName": ANY, **expected},
        )
        stub.add_response(
            "update_endpoint",
            {"EndpointArn": f"arn:aws:sagemaker:{REGION}:123456789012:endpoint/chat"},
            {"EndpointName": "chat", "EndpointConfigName": ANY},
        )
        assert logic.deploy(client, deployer.STUB_DEPLOYMENT, deployer.PACKAGE_ARN)["action"] == "updated"
        stub.assert_no_pending_responses()
    variant = expected["ProductionVariants"][0]
    assert variant["ContainerStartupHealthCheckTimeoutInSeconds"] > 0
    assert variant["ModelDataDownloadTimeoutInSeconds"] > 0


def test_approved_models_on_inference_components_are_refused_at_synth(tmp_path):
    """The deployer rolls endpoints with UpdateEndpoint; an inference-component endpoint's configuration
    holds no model, so approvals would only reach the dead-letter queue."""
    stack = Stack(cdk_app(tmp_path), "Refused", env=Environment(account="123456789012", region=REGION))
    key = kms.Key(stack, "Key")
    with pytest.raises(ValueError, match="approved_models needs a real-time or asynchronous endpoint"):
        ModelEndpoint(
            stack,
            "Endpoint",
            settings=ENDPOINTS["assist"],
            endpoint_name="test-assist",
            role=iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com")),
            artifacts_bucket=s3.Bucket(stack, "Artifacts"),
            encryption_key=key,
            region=REGION,
            log_retention_days=30,
            approved_models=True,
        )
