"""Model deployer Lambda: logic against moto's SageMaker (server mode), edge cases with Stubber,
the handler end to end.

What moto 5.2.5 serves here: model package groups, versioned model packages, approval updates,
describe/list model packages, CreateModel/DescribeModel, CreateEndpointConfig/DescribeEndpointConfig,
CreateEndpoint/DescribeEndpoint. What it does not, and how the tests cover it:
- UpdateEndpoint is not implemented (HTTP 500): the moto client gets a `before-call` hook for that
  one operation, which records the request and applies it as delete + create of the endpoint with
  the new config on the same moto server, so DescribeEndpoint shows the update;
- endpoints are always InService, and duplicate Create* calls silently overwrite instead of failing
  with "Cannot create already existing ...": those paths use botocore Stubber;
- EnableNetworkIsolation is dropped by moto's CreateModel: asserted on the recorded request.
"""

from __future__ import annotations

import importlib
import io
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber

from lambdas.model_deployer import logic
from lambdas.model_deployer.logic import Deployment, EndpointBusyError
from tests.support.moto_server import moto_server

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/sagemaker-execution"
KMS = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
CAPTURE = "s3://genai-artifacts/data-capture/chat"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-tgi-inference:2.4"
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
NOW = datetime(2026, 11, 23, tzinfo=UTC)


def _client(endpoint_url: str | None = None) -> Any:
    return boto3.client(
        "sagemaker",
        region_name="us-east-1",
        endpoint_url=endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture(scope="module")
def moto_endpoint():
    with moto_server() as endpoint:
        yield endpoint


class MotoSageMaker:
    """`client` is what the code under test gets: it records every call and emulates UpdateEndpoint.
    `admin` is a plain client to arrange and inspect moto's state."""

    def __init__(self, endpoint_url: str) -> None:
        self.client = _client(endpoint_url)
        self.admin = _client(endpoint_url)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.client.meta.events.register("before-parameter-build.sagemaker", self._record)
        self.client.meta.events.register("before-call.sagemaker.UpdateEndpoint", self._update_endpoint)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, dict(params)))

    def _update_endpoint(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        request = json.loads(params["body"])
        self.admin.delete_endpoint(EndpointName=request["EndpointName"])
        arn = self.admin.create_endpoint(**request)["EndpointArn"]
        return AWSResponse(None, 200, {}, None), {"EndpointArn": arn}

    def operations(self) -> list[str]:
        return [name for name, _ in self.calls]

    def request(self, operation: str) -> dict[str, Any]:
        (params,) = [params for name, params in self.calls if name == operation]
        return params


@pytest.fixture
def moto(moto_endpoint) -> MotoSageMaker:
    return MotoSageMaker(moto_endpoint)


@pytest.fixture
def group(moto) -> str:
    name = f"chat-models-{uuid.uuid4().hex[:8]}"
    moto.admin.create_model_package_group(ModelPackageGroupName=name)
    return name


@pytest.fixture
def endpoint() -> str:
    return f"chat-{uuid.uuid4().hex[:8]}"


def register(admin: Any, group: str, tag: str, *, approve: bool = True) -> str:
    """A new model package version in `group` (image `IMAGE-tag`, artifacts under tag), approved."""
    arn = admin.create_model_package(
        ModelPackageGroupName=group,
        InferenceSpecification={
            "Containers": [
                {
                    "Image": f"{IMAGE}-{tag}",
                    "ModelDataUrl": f"s3://genai-artifacts/models/{tag}/model.tar.gz",
                    "Environment": {"HF_MODEL_ID": "/opt/ml/model", "SM_NUM_GPUS": "1"},
                }
            ],
            "SupportedContentTypes": ["application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        ModelApprovalStatus="PendingManualApproval",
    )["ModelPackageArn"]
    if approve:
        admin.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    return arn


def make_deployment(group: str, endpoint: str, **overrides: Any) -> Deployment:
    settings: dict[str, Any] = {
        "model_package_group": group,
        "endpoint_name": endpoint,
        "execution_role_arn": ROLE,
        "instance_type": "ml.m5.xlarge",  # moto knows no ml.g5 / ml.inf2 types
        "initial_instance_count": 2,
        "variant_name": "Primary",
        "kms_key_arn": KMS,
        "data_capture_s3_uri": CAPTURE,
        "data_capture_percentage": 20,
        "enable_network_isolation": True,
        "environment": {"SM_NUM_GPUS": "4", "MAX_INPUT_LENGTH": "4096"},
    }
    return Deployment(**{**settings, **overrides})


# --------------------------------------------------------------------------------------------------
# Logic against moto


def test_the_first_approval_creates_model_endpoint_config_and_endpoint(moto, group, endpoint):
    arn = register(moto.admin, group, "a")
    result = logic.deploy(moto.client, make_deployment(group, endpoint), arn)

    name = result["model"]
    assert result == {"endpoint": endpoint, "model": name, "endpoint_config": name, "action": "created"}
    assert name.startswith(f"{endpoint}-v1-")
    assert len(name) <= 63
    assert NAME_PATTERN.match(name)

    model = moto.admin.describe_model(ModelName=name)
    assert model["ExecutionRoleArn"] == ROLE
    assert model["PrimaryContainer"] == {
        "Image": f"{IMAGE}-a",
        "ModelDataUrl": "s3://genai-artifacts/models/a/model.tar.gz",
        "Environment": {"HF_MODEL_ID": "/opt/ml/model", "SM_NUM_GPUS": "4", "MAX_INPUT_LENGTH": "4096"},
    }
    assert moto.request("CreateModel")["EnableNetworkIsolation"] is True  # moto does not keep it

    config = moto.admin.describe_endpoint_config(EndpointConfigName=name)
    assert config["ProductionVariants"] == [
        {
            "VariantName": "Primary",
            "ModelName": name,
            "InstanceType": "ml.m5.xlarge",
            "InitialInstanceCount": 2,
            "InitialVariantWeight": 1.0,
        }
    ]
    assert config["KmsKeyId"] == KMS
    assert config["DataCaptureConfig"] == {
        "EnableCapture": True,
        "InitialSamplingPercentage": 20,
        "DestinationS3Uri": CAPTURE,
        "KmsKeyId": KMS,
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
    }

    live = moto.admin.describe_endpoint(EndpointName=endpoint)
    assert live["EndpointConfigName"] == name
    assert live["EndpointStatus"] == "InService"
    assert live["ProductionVariants"][0]["VariantName"] == "Primary"
    assert "UpdateEndpoint" not in moto.operations()


def test_without_kms_and_capture_the_config_has_neither(moto, group, endpoint):
    arn = register(moto.admin, group, "a")
    deployment = make_deployment(
        group, endpoint, kms_key_arn=None, data_capture_s3_uri=None, environment={}, variant_name="AllTraffic"
    )
    name = logic.deploy(moto.client, deployment, arn)["endpoint_config"]
    config = moto.admin.describe_endpoint_config(EndpointConfigName=name)
    assert "KmsKeyId" not in config
    assert not config.get("DataCaptureConfig")
    assert config["ProductionVariants"][0]["VariantName"] == "AllTraffic"
    assert moto.admin.describe_model(ModelName=name)["PrimaryContainer"]["Environment"] == {
        "HF_MODEL_ID": "/opt/ml/model",
        "SM_NUM_GPUS": "1",
    }


def test_a_new_approved_version_updates_the_endpoint_to_its_config(moto, group, endpoint):
    deployment = make_deployment(group, endpoint)
    first = logic.deploy(moto.client, deployment, register(moto.admin, group, "a"))
    second = logic.deploy(moto.client, deployment, register(moto.admin, group, "b"))

    assert second["action"] == "updated"
    assert second["model"].startswith(f"{endpoint}-v2-")
    assert second["model"] != first["model"]
    assert moto.request("UpdateEndpoint") == {"EndpointName": endpoint, "EndpointConfigName": second["model"]}
    assert (
        moto.admin.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"] == second["endpoint_config"]
    )
    assert moto.admin.describe_model(ModelName=second["model"])["PrimaryContainer"]["Image"] == f"{IMAGE}-b"
    # the previous version's resources stay for a rollback
    assert moto.admin.describe_model(ModelName=first["model"])["PrimaryContainer"]["Image"] == f"{IMAGE}-a"


def test_a_redelivered_event_changes_nothing(moto, group, endpoint):
    deployment = make_deployment(group, endpoint)
    arn = register(moto.admin, group, "a")
    first = logic.deploy(moto.client, deployment, arn)
    moto.calls.clear()

    again = logic.deploy(moto.client, deployment, arn)

    assert again == {**first, "action": "unchanged"}
    assert moto.operations() == ["ListModelPackages", "DescribeModelPackage", "DescribeEndpoint"]
    assert (
        moto.admin.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"] == first["endpoint_config"]
    )


def test_changed_settings_get_new_resources_for_the_same_version(moto, group, endpoint):
    arn = register(moto.admin, group, "a")
    first = logic.deploy(moto.client, make_deployment(group, endpoint), arn)
    bigger = logic.deploy(moto.client, make_deployment(group, endpoint, initial_instance_count=4), arn)
    assert bigger["action"] == "updated"
    assert bigger["model"] != first["model"]
    assert bigger["model"].startswith(f"{endpoint}-v1-")
    config = moto.admin.describe_endpoint_config(EndpointConfigName=bigger["endpoint_config"])
    assert config["ProductionVariants"][0]["InitialInstanceCount"] == 4


def test_a_late_event_for_an_older_version_does_not_roll_back(moto, group, endpoint):
    deployment = make_deployment(group, endpoint)
    old = register(moto.admin, group, "a")
    logic.deploy(moto.client, deployment, old)
    new = logic.deploy(moto.client, deployment, register(moto.admin, group, "b"))

    late = logic.deploy(moto.client, deployment, old)

    assert "is not the latest approved version" in late["ignored"]
    assert f"{group}/2" in late["ignored"]
    assert moto.admin.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"] == new["endpoint_config"]


def test_rejecting_the_newest_version_and_reapproving_an_older_one_rolls_back(moto, group, endpoint):
    deployment = make_deployment(group, endpoint)
    old = register(moto.admin, group, "a")
    first = logic.deploy(moto.client, deployment, old)
    newer = register(moto.admin, group, "b")
    logic.deploy(moto.client, deployment, newer)
    moto.admin.update_model_package(ModelPackageArn=newer, ModelApprovalStatus="Rejected")

    rollback = logic.deploy(moto.client, deployment, old)

    assert rollback == {**first, "action": "updated"}
    assert (
        moto.admin.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"] == first["endpoint_config"]
    )


# --------------------------------------------------------------------------------------------------
# Logic edge cases moto cannot produce (Stubber)

PACKAGE_ARN = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-package/chat-models/3"
PACKAGE = {
    "ModelPackageName": "chat-models",
    "ModelPackageGroupName": "chat-models",
    "ModelPackageVersion": 3,
    "ModelPackageArn": PACKAGE_ARN,
    "CreationTime": NOW,
    "ModelPackageStatus": "Completed",
    "ModelPackageStatusDetails": {"ValidationStatuses": []},
    "ModelApprovalStatus": "Approved",
    "InferenceSpecification": {
        "Containers": [{"Image": IMAGE, "ModelDataUrl": "s3://genai-artifacts/models/c/model.tar.gz"}],
        "SupportedContentTypes": ["application/json"],
        "SupportedResponseMIMETypes": ["application/json"],
    },
}
STUB_DEPLOYMENT = make_deployment("chat-models", "chat")


@pytest.fixture
def stubbed():
    client = _client()
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def _stub_package(stub: Stubber) -> None:
    stub.add_response(
        "list_model_packages",
        {
            "ModelPackageSummaryList": [
                {"ModelPackageArn": PACKAGE_ARN, "CreationTime": NOW, "ModelPackageStatus": "Completed"}
            ]
        },
        {
            "ModelPackageGroupName": "chat-models",
            "ModelApprovalStatus": "Approved",
            "SortBy": "CreationTime",
            "SortOrder": "Descending",
            "MaxResults": 1,
        },
    )
    stub.add_response("describe_model_package", PACKAGE, {"ModelPackageName": PACKAGE_ARN})


def _endpoint(status: str, config: str = "chat-v2-0123abcd", **extra: Any) -> dict[str, Any]:
    return {
        "EndpointName": "chat",
        "EndpointArn": f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/chat",
        "EndpointConfigName": config,
        "EndpointStatus": status,
        "CreationTime": NOW,
        "LastModifiedTime": NOW,
        **extra,
    }


def _derived_name() -> str:
    """The Model / EndpointConfig name the logic derives for PACKAGE and STUB_DEPLOYMENT."""
    containers = logic.model_containers(PACKAGE, STUB_DEPLOYMENT.environment)
    return logic.deployment_name(STUB_DEPLOYMENT, PACKAGE_ARN, 3, containers)


def test_existing_model_and_endpoint_config_of_the_same_name_are_reused(stubbed):
    client, stub = stubbed
    name = _derived_name()
    _stub_package(stub)
    stub.add_client_error(
        "describe_endpoint",
        service_error_code="ValidationException",
        service_message=f'Could not find endpoint "arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/chat".',
    )
    stub.add_client_error(
        "create_model",
        service_error_code="ValidationException",
        service_message=f'Cannot create already existing model "arn:aws:sagemaker:us-east-1:{ACCOUNT}:model/{name}".',
    )
    stub.add_client_error(
        "create_endpoint_config",
        service_error_code="ValidationException",
        service_message="Cannot create already existing endpoint configuration "
        f'"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint-config/{name}".',
    )
    stub.add_response(
        "create_endpoint",
        {"EndpointArn": f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/chat"},
        {"EndpointName": "chat", "EndpointConfigName": name},
    )
    assert logic.deploy(client, STUB_DEPLOYMENT, PACKAGE_ARN) == {
        "endpoint": "chat",
        "model": name,
        "endpoint_config": name,
        "action": "created",
    }


def test_other_create_model_errors_propagate(stubbed):
    client, stub = stubbed
    _stub_package(stub)
    stub.add_client_error(
        "describe_endpoint",
        service_error_code="ValidationException",
        service_message="Could not find endpoint x",
    )
    stub.add_client_error(
        "create_model",
        service_error_code="ValidationException",
        service_message="Could not access model data",
    )
    with pytest.raises(Exception, match="Could not access model data"):
        logic.deploy(client, STUB_DEPLOYMENT, PACKAGE_ARN)


@pytest.mark.parametrize("status", ["Creating", "Updating", "SystemUpdating", "RollingBack"])
def test_an_endpoint_in_transition_raises_a_retriable_error_before_creating_anything(stubbed, status):
    client, stub = stubbed
    _stub_package(stub)
    stub.add_response("describe_endpoint", _endpoint(status), {"EndpointName": "chat"})
    # no create_* response is queued: the Stubber would fail any further call
    with pytest.raises(
        EndpointBusyError, match=f"endpoint chat is {status}; cannot deploy .*/chat-models/3 now"
    ):
        logic.deploy(client, STUB_DEPLOYMENT, PACKAGE_ARN)


def test_a_redelivery_during_its_own_rollout_is_unchanged(stubbed):
    client, stub = stubbed
    name = _derived_name()
    _stub_package(stub)
    stub.add_response(
        "describe_endpoint",
        _endpoint("Updating", PendingDeploymentSummary={"EndpointConfigName": name, "StartTime": NOW}),
    )
    assert logic.deploy(client, STUB_DEPLOYMENT, PACKAGE_ARN)["action"] == "unchanged"


def test_an_update_racing_another_deployment_is_retriable(stubbed):
    client, stub = stubbed
    _stub_package(stub)
    stub.add_response("describe_endpoint", _endpoint("InService"))
    stub.add_response("create_model", {"ModelArn": f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model/m"})
    stub.add_response(
        "create_endpoint_config",
        {"EndpointConfigArn": f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint-config/c"},
    )
    stub.add_client_error(
        "update_endpoint",
        service_error_code="ValidationException",
        service_message=f'Cannot update in-progress endpoint "arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/chat".',
    )
    with pytest.raises(EndpointBusyError, match="endpoint chat changed while deploying"):
        logic.deploy(client, STUB_DEPLOYMENT, PACKAGE_ARN)


def test_long_endpoint_names_are_shortened_to_valid_distinct_names():
    long_endpoint = "a" * 40 + "-" + "b" * 22  # 63 characters, the maximum
    name = logic.resource_name(long_endpoint, 12345, "0123456789abcdef")
    assert len(name) == 63
    assert NAME_PATTERN.match(name)
    assert name.endswith("-v12345-01234567")
    assert logic.resource_name(long_endpoint, 12345, "fedcba9876543210") != name
    # truncation that would end on a hyphen drops it
    assert logic.resource_name("a" * 50 + "-" + "b" * 12, 1, "0123456789") == "a" * 50 + "-v1-01234567"


def test_a_package_with_several_containers_becomes_a_serial_pipeline():
    package = {
        "ModelPackageArn": PACKAGE_ARN,
        "InferenceSpecification": {
            "Containers": [
                {"Image": "pre:1", "Environment": {"A": "1"}},
                {"Image": "model:1", "ModelDataUrl": "s3://b/m.tar.gz", "ImageDigest": "sha256:x"},
            ]
        },
    }
    containers = logic.model_containers(package, {"A": "2"})
    assert containers == [
        {"Image": "pre:1", "Environment": {"A": "2"}},
        {"Image": "model:1", "ModelDataUrl": "s3://b/m.tar.gz", "Environment": {"A": "2"}},
    ]
    request = logic.model_request("m", STUB_DEPLOYMENT, containers)
    assert request["Containers"] == containers
    assert request["InferenceExecutionConfig"] == {"Mode": "Serial"}
    assert "PrimaryContainer" not in request
    with pytest.raises(ValueError, match="has no inference containers"):
        logic.model_containers({"ModelPackageArn": PACKAGE_ARN, "InferenceSpecification": {}}, {})


# --------------------------------------------------------------------------------------------------
# Handler


@dataclass
class LambdaContext:
    function_name: str = "model-deployer"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:model-deployer"
    aws_request_id: str = "5f1c2f3e-0000-4000-8000-000000000001"


def state_change(arn: str, group: str, status: str = "Approved", version: int = 1) -> dict[str, Any]:
    """An EventBridge "SageMaker Model Package State Change" event (trimmed to the fields that matter)."""
    return {
        "version": "0",
        "id": "8f1d2f3e-0000-4000-8000-000000000002",
        "detail-type": "SageMaker Model Package State Change",
        "source": "aws.sagemaker",
        "account": ACCOUNT,
        "time": "2026-11-23T09:00:00Z",
        "region": "us-east-1",
        "resources": [arn],
        "detail": {
            "ModelPackageGroupName": group,
            "ModelPackageVersion": version,
            "ModelPackageArn": arn,
            "ModelApprovalStatus": status,
            "ModelPackageStatus": "Completed",
        },
    }


def deployments_json(group: str, endpoint: str) -> str:
    return json.dumps(
        [
            {
                "model_package_group": group,
                "endpoint_name": endpoint,
                "execution_role_arn": ROLE,
                "instance_type": "ml.m5.xlarge",
                "initial_instance_count": 1,
                "kms_key_arn": KMS,
                "data_capture_s3_uri": CAPTURE,
                "data_capture_percentage": 50,
                "environment": {"MAX_INPUT_LENGTH": "2048"},
            }
        ]
    )


@pytest.fixture
def logs() -> io.StringIO:
    return io.StringIO()


def load_handler(monkeypatch, deployments: str, client: Any, logs: io.StringIO) -> Any:
    """Reload the handler with DEPLOYMENTS set and `client` injected; its log lines go to `logs`.

    Powertools configures a service's logger once per process (a reload reuses it, with the stream
    it was first given), so the test points that logger's handler at the test's buffer.
    """
    monkeypatch.setenv("DEPLOYMENTS", deployments)
    module = importlib.reload(importlib.import_module("lambdas.model_deployer.handler"))
    monkeypatch.setattr(module, "sagemaker", lambda: client)
    monkeypatch.setattr(module.logger.registered_handler, "stream", logs)
    return module


def metrics_in(out: str) -> list[dict]:
    """The EMF metric lines Powertools printed."""
    return [json.loads(line) for line in out.splitlines() if line.startswith("{") and '"_aws"' in line]


def lines(logs: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in logs.getvalue().splitlines()]


def test_the_handler_deploys_an_approval_and_publishes_a_metric(
    monkeypatch, capsys, logs, moto, group, endpoint
):
    handler = load_handler(monkeypatch, deployments_json(group, endpoint), moto.client, logs)
    arn = register(moto.admin, group, "a")
    capsys.readouterr()

    result = handler.handler(state_change(arn, group), LambdaContext())

    assert result["action"] == "created"
    assert result["endpoint"] == endpoint
    config = moto.admin.describe_endpoint_config(EndpointConfigName=result["endpoint_config"])
    assert config["DataCaptureConfig"]["InitialSamplingPercentage"] == 50
    assert config["ProductionVariants"][0]["VariantName"] == "AllTraffic"
    assert moto.request("CreateModel")["EnableNetworkIsolation"] is False
    metrics = metrics_in(capsys.readouterr().out)
    assert [m["ModelDeployed"] for m in metrics] == [[1.0]]
    assert metrics[0]["EndpointName"] == endpoint
    assert metrics[0]["ModelPackageArn"] == arn
    assert metrics[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "GenAiStack/ModelRegistry"
    assert metrics[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["EndpointName"]]
    (decision,) = [log for log in lines(logs) if log["message"] == "model deployed"]
    assert decision["service"] == "model-deployer"
    assert decision["model_package_arn"] == arn
    assert decision["action"] == "created"
    assert decision["function_request_id"] == LambdaContext.aws_request_id

    # re-delivery: same names, nothing deployed, no second metric
    again = handler.handler(state_change(arn, group), LambdaContext())
    assert again == {**result, "action": "unchanged"}
    assert metrics_in(capsys.readouterr().out) == []


@pytest.mark.parametrize(
    ("status", "group_name", "reason"),
    [
        ("Rejected", "chat-models", "approval status is 'Rejected', not 'Approved'"),
        (
            "PendingManualApproval",
            "chat-models",
            "approval status is 'PendingManualApproval', not 'Approved'",
        ),
        ("Approved", "image-models", "no deployment is configured for model package group 'image-models'"),
    ],
)
def test_the_handler_ignores_other_statuses_and_groups_without_calling_aws(
    monkeypatch, capsys, logs, status, group_name, reason
):
    client = _client()
    handler = load_handler(monkeypatch, deployments_json("chat-models", "chat"), client, logs)
    event = state_change(PACKAGE_ARN, group_name, status)
    with Stubber(client):  # nothing queued: any SageMaker call would fail
        assert handler.handler(event, LambdaContext()) == {
            "ignored": reason,
            "model_package_arn": PACKAGE_ARN,
        }
    assert metrics_in(capsys.readouterr().out) == []
    (log,) = lines(logs)
    assert (log["message"], log["reason"], log["model_package_group"]) == (
        "event ignored",
        reason,
        group_name,
    )


def test_the_handler_ignores_a_stale_approval(monkeypatch, logs, moto, group, endpoint):
    handler = load_handler(monkeypatch, deployments_json(group, endpoint), moto.client, logs)
    old = register(moto.admin, group, "a")
    register(moto.admin, group, "b")
    result = handler.handler(state_change(old, group), LambdaContext())
    assert "is not the latest approved version" in result["ignored"]
    assert "CreateEndpoint" not in moto.operations()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda e: e["detail"].pop("ModelPackageArn"), "detail.ModelPackageArn: Field required"),
        (lambda e: e["detail"].pop("ModelApprovalStatus"), "detail.ModelApprovalStatus: Field required"),
        (lambda e: e.pop("detail"), "detail: Field required"),
        (
            lambda e: e.update({"detail-type": "SageMaker Endpoint State Change"}),
            "detail-type: Input should be",
        ),
        (
            lambda e: e["detail"].update({"ModelPackageArn": "chat-models/1"}),
            "detail.ModelPackageArn: String should match",
        ),
    ],
)
def test_a_malformed_event_is_rejected_with_the_missing_fields(monkeypatch, logs, mutate, message):
    client = _client()
    handler = load_handler(monkeypatch, deployments_json("chat-models", "chat"), client, logs)
    event = state_change(PACKAGE_ARN, "chat-models")
    mutate(event)
    with (
        Stubber(client),
        pytest.raises(ValueError, match="not a SageMaker Model Package State Change event") as info,
    ):
        handler.handler(event, LambdaContext())
    assert message in str(info.value)


def test_the_handler_lets_a_busy_endpoint_error_through_for_a_retry(monkeypatch, capsys, logs):
    client = _client()
    handler = load_handler(monkeypatch, deployments_json("chat-models", "chat"), client, logs)
    with Stubber(client) as stub:
        _stub_package(stub)
        stub.add_response("describe_endpoint", _endpoint("Updating"))
        with pytest.raises(EndpointBusyError, match="endpoint chat is Updating"):
            handler.handler(state_change(PACKAGE_ARN, "chat-models", version=3), LambdaContext())
    assert metrics_in(capsys.readouterr().out) == []


VALID = {
    "model_package_group": "chat-models",
    "endpoint_name": "chat",
    "execution_role_arn": ROLE,
    "instance_type": "ml.inf2.xlarge",
    "initial_instance_count": 1,
}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "environment variable DEPLOYMENTS is not set"),
        ("{not json", "DEPLOYMENTS is not valid: DEPLOYMENTS: Invalid JSON"),
        ("[]", "DEPLOYMENTS is not valid: it lists no deployment"),
        (
            json.dumps([{**VALID, "initial_instance_count": 0}]),
            "DEPLOYMENTS[0].initial_instance_count: Input should be greater than or equal to 1",
        ),
        (
            json.dumps([{**VALID, "data_capture_percentage": 101}]),
            "DEPLOYMENTS[0].data_capture_percentage: Input should be less than or equal to 100",
        ),
        (
            json.dumps([{**VALID, "data_capture_percentage": 10}]),
            "data_capture_percentage is set but data_capture_s3_uri is not",
        ),
        (
            json.dumps([{k: v for k, v in VALID.items() if k != "execution_role_arn"}]),
            "DEPLOYMENTS[0].execution_role_arn: Field required",
        ),
        (
            json.dumps([{**VALID, "endpoint_name": "chat_endpoint"}]),
            "DEPLOYMENTS[0].endpoint_name: String should match pattern",
        ),
        (
            json.dumps([{**VALID, "instance_typ": "ml.g5.xlarge"}]),
            "DEPLOYMENTS[0].instance_typ: Extra inputs are not permitted",
        ),
        (
            json.dumps([VALID, {**VALID, "endpoint_name": "chat-2"}]),
            "model_package_group must be unique (one model package group per endpoint), repeated: chat-models",
        ),
        (
            json.dumps([VALID, {**VALID, "model_package_group": "other"}]),
            "endpoint_name must be unique (one model package group per endpoint), repeated: chat",
        ),
    ],
)
def test_bad_deployments_fail_at_cold_start_with_a_clear_message(monkeypatch, value, message):
    if value is None:
        monkeypatch.delenv("DEPLOYMENTS", raising=False)
    else:
        monkeypatch.setenv("DEPLOYMENTS", value)
    with pytest.raises(RuntimeError) as info:
        importlib.reload(importlib.import_module("lambdas.model_deployer.handler"))
    assert message in str(info.value)


def test_valid_deployments_get_their_defaults(monkeypatch):
    monkeypatch.setenv("DEPLOYMENTS", json.dumps([VALID]))
    module = importlib.reload(importlib.import_module("lambdas.model_deployer.handler"))
    expected = {
        "chat-models": Deployment(
            model_package_group="chat-models",
            endpoint_name="chat",
            execution_role_arn=ROLE,
            instance_type="ml.inf2.xlarge",
            initial_instance_count=1,
            variant_name="AllTraffic",
            kms_key_arn=None,
            data_capture_s3_uri=None,
            data_capture_percentage=100,
            enable_network_isolation=False,
            environment={},
        )
    }
    loaded = module.DEPLOYMENTS
    assert loaded == expected
