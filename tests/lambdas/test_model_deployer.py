"""Model deployer Lambda: logic against moto's SageMaker (server mode), edge cases with Stubber,
the approved-model custom resource, the handler end to end over moto's SQS.

The endpoint exists before any approval (the inference stack creates it): `live` makes it on moto
from a "template" configuration shaped like the stack's (data capture with key, destination and
CaptureContentTypeHeader, startup timeouts, routing).

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

import copy
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

from genai_stack.components import model_deployment
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
        "enable_network_isolation": True,
        "environment": {"SM_NUM_GPUS": "4", "MAX_INPUT_LENGTH": "4096"},
    }
    return Deployment(**{**settings, **overrides})


CAPTURE_CONFIG = {
    "EnableCapture": True,
    "InitialSamplingPercentage": 20,
    "DestinationS3Uri": CAPTURE,
    "KmsKeyId": KMS,
    "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
    "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]},
}


def template_config(name: str, *, instances: int = 2, capture: dict | None = None) -> dict[str, Any]:
    """A CreateEndpointConfig request shaped like the inference stack's (variant mode)."""
    return {
        "EndpointConfigName": name,
        "ProductionVariants": [
            {
                "VariantName": "AllTraffic",
                "ModelName": f"{name}-model",
                "InstanceType": "ml.m5.xlarge",  # moto knows no ml.g5 / ml.inf2 types
                "InitialInstanceCount": instances,
                "InitialVariantWeight": 1.0,
                "ModelDataDownloadTimeoutInSeconds": 3600,
                "ContainerStartupHealthCheckTimeoutInSeconds": 3600,
                "RoutingConfig": {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"},
            }
        ],
        "KmsKeyId": KMS,
        "DataCaptureConfig": copy.deepcopy(CAPTURE_CONFIG if capture is None else capture),
    }


def make_template(admin: Any, name: str, **changes: Any) -> dict[str, Any]:
    """The stack's model and configuration (CloudFormation-generated names), on moto."""
    request = template_config(name, **changes)
    admin.create_model(
        ModelName=f"{name}-model",
        ExecutionRoleArn=ROLE,
        PrimaryContainer={
            "Image": f"{IMAGE}-initial",
            "ModelDataUrl": "s3://genai-artifacts/models/initial/",
        },
    )
    admin.create_endpoint_config(**request)
    return request


@pytest.fixture
def live(moto, endpoint) -> dict[str, Any]:
    """The endpoint as the inference stack creates it, serving its initial model."""
    template = make_template(moto.admin, f"EndpointConfig-{uuid.uuid4().hex[:12]}")
    moto.admin.create_endpoint(EndpointName=endpoint, EndpointConfigName=template["EndpointConfigName"])
    return template


def serving(moto: MotoSageMaker, endpoint: str) -> tuple[str, dict[str, Any]]:
    """The model the endpoint serves and its configuration."""
    name = moto.admin.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    config = moto.admin.describe_endpoint_config(EndpointConfigName=name)
    return config["ProductionVariants"][0]["ModelName"], config


def settings_of(config: dict[str, Any]) -> dict[str, Any]:
    """Everything CreateEndpointConfig takes but the names."""
    copied = {key: copy.deepcopy(config[key]) for key in logic.copied_settings(_client()) if key in config}
    for variant in copied["ProductionVariants"]:
        variant.pop("ModelName")
    return copied


# --------------------------------------------------------------------------------------------------
# Logic against moto: approvals


def test_an_approval_rolls_the_endpoint_with_every_setting_of_its_current_config(moto, group, endpoint, live):
    arn = register(moto.admin, group, "a")
    result = logic.deploy(moto.client, make_deployment(group, endpoint), arn)

    model, config = result["model"], result["endpoint_config"]
    assert result == {"endpoint": endpoint, "model": model, "endpoint_config": config, "action": "updated"}
    for name in (model, config):
        assert name.startswith(f"{endpoint}-v1-")
        assert len(name) <= 63
        assert NAME_PATTERN.match(name)
        assert logic.deployed_version(endpoint, name) == 1

    assert moto.admin.describe_model(ModelName=model)["PrimaryContainer"] == {
        "Image": f"{IMAGE}-a",
        "ModelDataUrl": "s3://genai-artifacts/models/a/model.tar.gz",
        "Environment": {"HF_MODEL_ID": "/opt/ml/model", "SM_NUM_GPUS": "4", "MAX_INPUT_LENGTH": "4096"},
    }
    assert moto.request("CreateModel")["EnableNetworkIsolation"] is True  # moto does not keep it
    # The template's settings, all of them: data capture with destination, key and readable JSON.
    created = moto.request("CreateEndpointConfig")
    assert created["DataCaptureConfig"] == CAPTURE_CONFIG
    assert settings_of(created) == settings_of(live)
    assert created["ProductionVariants"][0]["ModelName"] == model
    assert moto.request("UpdateEndpoint") == {"EndpointName": endpoint, "EndpointConfigName": config}
    assert "CreateEndpoint" not in moto.operations()
    assert serving(moto, endpoint)[0] == model


def test_a_config_captured_without_the_header_gets_readable_json(moto, group, endpoint):
    """Finding: a deployer configuration without CaptureContentTypeHeader stores base64."""
    bare = {k: v for k, v in CAPTURE_CONFIG.items() if k != "CaptureContentTypeHeader"}
    template = make_template(moto.admin, f"EndpointConfig-{uuid.uuid4().hex[:12]}", capture=bare)
    moto.admin.create_endpoint(EndpointName=endpoint, EndpointConfigName=template["EndpointConfigName"])
    logic.deploy(moto.client, make_deployment(group, endpoint), register(moto.admin, group, "a"))
    capture = serving(moto, endpoint)[1]["DataCaptureConfig"]
    assert capture == {**bare, "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]}}


def test_a_redelivered_event_changes_nothing(moto, group, endpoint, live):
    deployment = make_deployment(group, endpoint)
    arn = register(moto.admin, group, "a")
    first = logic.deploy(moto.client, deployment, arn)
    moto.calls.clear()

    again = logic.deploy(moto.client, deployment, arn)

    assert again == {**first, "action": "unchanged"}
    assert moto.operations() == [
        "ListModelPackages",
        "DescribeModelPackage",
        "DescribeEndpoint",
        "DescribeEndpointConfig",
    ]


def test_a_new_approved_version_updates_the_endpoint_and_keeps_the_old_resources(moto, group, endpoint, live):
    deployment = make_deployment(group, endpoint)
    first = logic.deploy(moto.client, deployment, register(moto.admin, group, "a"))
    second = logic.deploy(moto.client, deployment, register(moto.admin, group, "b"))

    assert second["action"] == "updated"
    assert second["model"].startswith(f"{endpoint}-v2-")
    assert serving(moto, endpoint)[0] == second["model"]
    assert settings_of(serving(moto, endpoint)[1]) == settings_of(live)
    assert moto.admin.describe_model(ModelName=second["model"])["PrimaryContainer"]["Image"] == f"{IMAGE}-b"
    assert moto.admin.describe_model(ModelName=first["model"])["PrimaryContainer"]["Image"] == f"{IMAGE}-a"


def test_a_late_event_for_an_older_version_does_not_roll_back(moto, group, endpoint, live):
    deployment = make_deployment(group, endpoint)
    old = register(moto.admin, group, "a")
    logic.deploy(moto.client, deployment, old)
    new = logic.deploy(moto.client, deployment, register(moto.admin, group, "b"))

    late = logic.deploy(moto.client, deployment, old)

    assert "is not the latest approved version" in late["ignored"]
    assert f"{group}/2" in late["ignored"]
    assert serving(moto, endpoint)[0] == new["model"]


def test_rejecting_the_newest_version_and_reapproving_an_older_one_rolls_back(moto, group, endpoint, live):
    deployment = make_deployment(group, endpoint)
    old = register(moto.admin, group, "a")
    first = logic.deploy(moto.client, deployment, old)
    newer = register(moto.admin, group, "b")
    logic.deploy(moto.client, deployment, newer)
    moto.admin.update_model_package(ModelPackageArn=newer, ModelApprovalStatus="Rejected")

    rollback = logic.deploy(moto.client, deployment, old)

    assert rollback == {**first, "action": "updated"}  # the same model and configuration as before
    assert serving(moto, endpoint)[0] == first["model"]


def test_an_approval_before_the_endpoint_exists_is_refused_not_created(moto, group, endpoint):
    with pytest.raises(logic.EndpointNotReadyError, match=f"endpoint {endpoint} does not exist"):
        logic.deploy(moto.client, make_deployment(group, endpoint), register(moto.admin, group, "a"))
    assert "CreateEndpoint" not in moto.operations()
    assert "CreateModel" not in moto.operations()


# --------------------------------------------------------------------------------------------------
# One owner: a later stack deploy keeps the approved model (logic.config_for_settings, the custom
# resource between the template's configuration and the endpoint), emulating CloudFormation: it gives
# the endpoint whatever configuration the resource returns.


def stack_update(moto: MotoSageMaker, endpoint: str, **changes: Any) -> str:
    """A deploy of the inference stack whose configuration changed: CloudFormation makes the new
    template configuration, runs the custom resource, then UpdateEndpoint with its answer."""
    template = make_template(moto.admin, f"EndpointConfig-{uuid.uuid4().hex[:12]}", **changes)
    chosen = logic.config_for_settings(moto.client, endpoint, template["EndpointConfigName"])
    moto.client.update_endpoint(EndpointName=endpoint, EndpointConfigName=chosen)
    return template["EndpointConfigName"]


def test_a_later_stack_deploy_keeps_the_approved_model_and_applies_the_new_settings(
    moto, group, endpoint, live
):
    deployment = make_deployment(group, endpoint)
    approved = logic.deploy(moto.client, deployment, register(moto.admin, group, "a"))

    new_capture = {**CAPTURE_CONFIG, "InitialSamplingPercentage": 50}
    template = stack_update(moto, endpoint, instances=4, capture=new_capture)

    model, config = serving(moto, endpoint)
    assert model == approved["model"]  # not the template's initial model
    assert config["EndpointConfigName"] != template
    assert logic.deployed_version(endpoint, config["EndpointConfigName"]) == 1
    assert config["ProductionVariants"][0]["InitialInstanceCount"] == 4
    assert config["DataCaptureConfig"] == new_capture
    template_settings = settings_of(moto.admin.describe_endpoint_config(EndpointConfigName=template))
    assert settings_of(config) == template_settings

    # The approval re-delivered afterwards finds its model live and changes nothing.
    again = logic.deploy(moto.client, deployment, register_latest(moto, group))
    assert again["action"] == "unchanged"

    # The next approval keeps the new settings.
    newer = logic.deploy(moto.client, deployment, register(moto.admin, group, "b"))
    assert settings_of(serving(moto, endpoint)[1]) == template_settings
    assert serving(moto, endpoint)[0] == newer["model"]


def register_latest(moto: MotoSageMaker, group: str) -> str:
    return logic.latest_approved_package(moto.admin, group)


def test_before_any_approval_a_stack_deploy_applies_the_template_as_it_is(moto, endpoint, live):
    template = stack_update(moto, endpoint, instances=3)
    assert serving(moto, endpoint)[1]["EndpointConfigName"] == template
    assert "CreateEndpointConfig" not in moto.operations()


def test_the_first_stack_deploy_creates_the_endpoint_with_the_template(moto, endpoint):
    assert logic.config_for_settings(moto.client, endpoint, "EndpointConfig-abc") == "EndpointConfig-abc"
    assert moto.operations() == ["DescribeEndpoint"]


def test_a_stack_deploy_during_a_rollout_fails_before_touching_the_endpoint(stubbed):
    client, stub = stubbed
    stub.add_response("describe_endpoint", _endpoint("Updating"), {"EndpointName": "chat"})
    with pytest.raises(EndpointBusyError, match="endpoint chat is Updating"):
        logic.config_for_settings(client, "chat", "EndpointConfig-abc")


def test_the_custom_resource_handler_answers_cloudformation(monkeypatch, moto, group, endpoint, live):
    from lambdas.model_deployer import endpoint_settings

    monkeypatch.setattr(endpoint_settings, "sagemaker", lambda: moto.client)
    approved = logic.deploy(moto.client, make_deployment(group, endpoint), register(moto.admin, group, "a"))
    template = make_template(moto.admin, f"EndpointConfig-{uuid.uuid4().hex[:12]}", instances=5)
    event = {
        "RequestType": "Update",
        "PhysicalResourceId": endpoint,
        "ResourceProperties": {
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:provider",
            "EndpointName": endpoint,
            "TemplateConfigName": template["EndpointConfigName"],
        },
    }
    answer = endpoint_settings.on_event(event, LambdaContext())
    chosen = answer["Data"]["EndpointConfigName"]
    assert answer["PhysicalResourceId"] == endpoint
    config = moto.admin.describe_endpoint_config(EndpointConfigName=chosen)
    assert config["ProductionVariants"][0]["ModelName"] == approved["model"]
    assert config["ProductionVariants"][0]["InitialInstanceCount"] == 5
    assert endpoint_settings.on_event({**event, "RequestType": "Delete"}, LambdaContext()) == {
        "PhysicalResourceId": endpoint
    }


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
LIVE_CONFIG = {
    **template_config("EndpointConfig-live"),
    "EndpointConfigArn": f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint-config/endpointconfig-live",
    "CreationTime": NOW,
}


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


def _endpoint(status: str, config: str = "EndpointConfig-live", **extra: Any) -> dict[str, Any]:
    return {
        "EndpointName": "chat",
        "EndpointArn": f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/chat",
        "EndpointConfigName": config,
        "EndpointStatus": status,
        "CreationTime": NOW,
        "LastModifiedTime": NOW,
        **extra,
    }


def _stub_live(stub: Stubber, status: str, **extra: Any) -> None:
    stub.add_response("describe_endpoint", _endpoint(status, **extra), {"EndpointName": "chat"})
    stub.add_response("describe_endpoint_config", LIVE_CONFIG, {"EndpointConfigName": "EndpointConfig-live"})


def _derived() -> tuple[str, dict[str, Any]]:
    """The Model name and CreateEndpointConfig request the logic derives for PACKAGE on LIVE_CONFIG."""
    containers = logic.model_containers(PACKAGE, STUB_DEPLOYMENT.environment)
    model = logic.model_name(STUB_DEPLOYMENT, PACKAGE_ARN, 3, containers)
    return model, logic.endpoint_config_request(_client(), LIVE_CONFIG, model, "chat", 3)


def test_the_requests_are_valid_sagemaker_requests():
    from botocore.validate import ParamValidator

    model, config = _derived()
    shapes = _client().meta.service_model
    containers = logic.model_containers(PACKAGE, STUB_DEPLOYMENT.environment)
    for operation, params in (
        ("CreateEndpointConfig", config),
        ("CreateModel", logic.model_request(model, STUB_DEPLOYMENT, containers)),
    ):
        report = ParamValidator().validate(params, shapes.operation_model(operation).input_shape)
        assert not report.has_errors(), report.generate_report()


def test_existing_model_and_endpoint_config_of_the_same_name_are_reused(stubbed):
    client, stub = stubbed
    model, config = _derived()
    _stub_package(stub)
    _stub_live(stub, "InService")
    stub.add_client_error(
        "create_model",
        service_error_code="ValidationException",
        service_message=f'Cannot create already existing model "arn:aws:sagemaker:us-east-1:{ACCOUNT}:model/{model}".',
    )
    stub.add_client_error(
        "create_endpoint_config",
        service_error_code="ValidationException",
        service_message="Cannot create already existing endpoint configuration "
        f'"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint-config/{config["EndpointConfigName"]}".',
    )
    stub.add_response(
        "update_endpoint",
        {"EndpointArn": f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/chat"},
        {"EndpointName": "chat", "EndpointConfigName": config["EndpointConfigName"]},
    )
    assert logic.deploy(client, STUB_DEPLOYMENT, PACKAGE_ARN) == {
        "endpoint": "chat",
        "model": model,
        "endpoint_config": config["EndpointConfigName"],
        "action": "updated",
    }


def test_other_create_model_errors_propagate(stubbed):
    client, stub = stubbed
    _stub_package(stub)
    _stub_live(stub, "InService")
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
    _stub_live(stub, status)
    # no create_* response is queued: the Stubber would fail any further call
    with pytest.raises(
        EndpointBusyError, match=f"endpoint chat is {status}; cannot deploy .*/chat-models/3 now"
    ):
        logic.deploy(client, STUB_DEPLOYMENT, PACKAGE_ARN)


def test_a_redelivery_during_its_own_rollout_is_unchanged(stubbed):
    client, stub = stubbed
    _, config = _derived()
    _stub_package(stub)
    _stub_live(
        stub,
        "Updating",
        PendingDeploymentSummary={"EndpointConfigName": config["EndpointConfigName"], "StartTime": NOW},
    )
    assert logic.deploy(client, STUB_DEPLOYMENT, PACKAGE_ARN)["action"] == "unchanged"


def test_an_update_racing_another_deployment_is_retriable(stubbed):
    client, stub = stubbed
    _stub_package(stub)
    _stub_live(stub, "InService")
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


def test_rolling_to_an_untagged_configuration_0_1_made_says_how_to_recover(stubbed):
    """The deployer's role rolls only to configurations carrying the profile's tags
    (stacks/components/model_deployment.py RollToTaggedConfigs): one of the same name that 0.1 made
    exists untagged, so CreateEndpointConfig reports it exists and UpdateEndpoint is refused."""
    client, stub = stubbed
    tagged = make_deployment("chat-models", "chat", tags=TAGS)
    _stub_package(stub)
    _stub_live(stub, "InService")
    stub.add_client_error(
        "create_model",
        service_error_code="ValidationException",
        service_message="Cannot create already existing model",
    )
    stub.add_client_error(
        "create_endpoint_config",
        service_error_code="ValidationException",
        service_message="Cannot create already existing endpoint configuration",
    )
    stub.add_client_error(
        "update_endpoint",
        service_error_code="AccessDeniedException",
        service_message="User is not authorized to perform: sagemaker:UpdateEndpoint",
        http_status_code=400,
    )
    _, config = _derived()
    with pytest.raises(logic.UntaggedConfigError) as refused:
        logic.deploy(client, tagged, PACKAGE_ARN)
    message = str(refused.value)
    assert f"delete-endpoint-config --endpoint-config-name {config['EndpointConfigName']}" in message
    assert f"approve {PACKAGE_ARN} again" in message


def test_an_endpoint_with_inference_components_is_refused():
    components = {
        **LIVE_CONFIG,
        "ProductionVariants": [{"VariantName": "AllTraffic", "InstanceType": "ml.g5.xlarge"}],
    }
    with pytest.raises(ValueError, match="exactly one production variant holding a model"):
        logic.endpoint_config_request(_client(), components, "m", "chat", 1)


def test_long_endpoint_names_are_shortened_to_valid_distinct_names():
    long_endpoint = "a" * 40 + "-" + "b" * 22  # 63 characters, the maximum
    name = logic.resource_name(long_endpoint, 12345, "0123456789abcdef")
    assert len(name) == 63
    assert NAME_PATTERN.match(name)
    assert name.endswith("-v12345-01234567")
    assert logic.deployed_version(long_endpoint, name) == 12345
    assert logic.resource_name(long_endpoint, 12345, "fedcba9876543210") != name
    # truncation that would end on a hyphen drops it
    assert logic.resource_name("a" * 50 + "-" + "b" * 12, 1, "0123456789") == "a" * 50 + "-v1-01234567"
    # the stack's own names are not deployed versions
    assert logic.deployed_version("chat", "EndpointConfig-3fKq9xZ") is None
    assert logic.deployed_version("chat", "chatty-v1-01234567") is None


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
# Handler: approvals from SQS (moto), busy endpoints wait in the queue


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


def deployments_json(group: str, *endpoints: str) -> str:
    return json.dumps(
        [
            {
                "model_package_group": group,
                "endpoint_name": endpoint,
                "execution_role_arn": ROLE,
                "environment": {"MAX_INPUT_LENGTH": "2048"},
            }
            for endpoint in endpoints
        ]
    )


class Queues:
    """The approvals queue and its dead-letter queue on moto, as the stack makes them."""

    def __init__(self, endpoint_url: str) -> None:
        self.sqs = boto3.client(
            "sqs",
            region_name="us-east-1",
            endpoint_url=endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        suffix = uuid.uuid4().hex[:8]
        self.dead_letters = self.sqs.create_queue(QueueName=f"dead-letters-{suffix}")["QueueUrl"]
        dlq_arn = self.sqs.get_queue_attributes(QueueUrl=self.dead_letters, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.approvals = self.sqs.create_queue(
            QueueName=f"approvals-{suffix}",
            Attributes={
                "VisibilityTimeout": str(int(model_deployment.RETRY_DELAY.to_seconds())),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": model_deployment.MAX_RECEIVES}
                ),
            },
        )["QueueUrl"]

    def put(self, event: dict[str, Any] | str) -> None:
        body = event if isinstance(event, str) else json.dumps(event)
        self.sqs.send_message(QueueUrl=self.approvals, MessageBody=body)

    def poll(self) -> dict[str, Any] | None:
        """What the event source mapping hands the function: an SQS event of one record, or None."""
        messages = self.sqs.receive_message(
            QueueUrl=self.approvals, MaxNumberOfMessages=1, AttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            return None
        (message,) = messages
        return {
            "Records": [
                {
                    "messageId": message["MessageId"],
                    "receiptHandle": message["ReceiptHandle"],
                    "body": message["Body"],
                    "attributes": message["Attributes"],
                    "messageAttributes": {},
                    "md5OfBody": message["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": f"arn:aws:sqs:us-east-1:{ACCOUNT}:approvals",
                    "awsRegion": "us-east-1",
                }
            ]
        }

    def succeed(self, event: dict[str, Any]) -> None:
        """The event source mapping deletes a message the function did not report as failed."""
        self.sqs.delete_message(QueueUrl=self.approvals, ReceiptHandle=event["Records"][0]["receiptHandle"])

    def time_passes(self, event: dict[str, Any]) -> None:
        """The visibility timeout runs out (moto keeps real time): the message is visible again."""
        self.sqs.change_message_visibility(
            QueueUrl=self.approvals, ReceiptHandle=event["Records"][0]["receiptHandle"], VisibilityTimeout=0
        )

    def dead_lettered(self) -> list[dict[str, Any]]:
        return self.sqs.receive_message(
            QueueUrl=self.dead_letters, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", [])


@pytest.fixture
def queues(moto_endpoint) -> Queues:
    return Queues(moto_endpoint)


@pytest.fixture
def logs() -> io.StringIO:
    return io.StringIO()


def load_handler(
    monkeypatch, deployments: str, client: Any, logs: io.StringIO, queues: Queues | None = None
) -> Any:
    """Reload the handler with DEPLOYMENTS set and `client` injected; its log lines go to `logs`.

    Powertools configures a service's logger once per process (a reload reuses it, with the stream
    it was first given), so the test points that logger's handler at the test's buffer.
    """
    monkeypatch.setenv("DEPLOYMENTS", deployments)
    monkeypatch.setenv(
        "DEAD_LETTER_QUEUE_URL",
        queues.dead_letters if queues else f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/dead-letters",
    )
    module = importlib.reload(importlib.import_module("lambdas.model_deployer.handler"))
    monkeypatch.setattr(module, "sagemaker", lambda: client)
    if queues is not None:
        monkeypatch.setattr(module, "sqs", lambda: queues.sqs)
    monkeypatch.setattr(module.logger.registered_handler, "stream", logs)
    return module


def metrics_in(out: str) -> list[dict]:
    """The EMF metric lines Powertools printed."""
    return [json.loads(line) for line in out.splitlines() if line.startswith("{") and '"_aws"' in line]


def lines(logs: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in logs.getvalue().splitlines()]


def test_the_handler_deploys_an_approval_from_the_queue_and_publishes_a_metric(
    monkeypatch, capsys, logs, moto, queues, group, endpoint, live
):
    handler = load_handler(monkeypatch, deployments_json(group, endpoint), moto.client, logs, queues)
    arn = register(moto.admin, group, "a")
    queues.put(state_change(arn, group))
    capsys.readouterr()

    event = queues.poll()
    assert handler.handler(event, LambdaContext()) == {"batchItemFailures": []}
    queues.succeed(event)

    model = serving(moto, endpoint)[0]
    assert model.startswith(f"{endpoint}-v1-")
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
    assert decision["action"] == "updated"
    assert decision["function_request_id"] == LambdaContext.aws_request_id

    # re-delivery: nothing deployed, no second metric
    queues.put(state_change(arn, group))
    assert handler.handler(queues.poll(), LambdaContext()) == {"batchItemFailures": []}
    assert metrics_in(capsys.readouterr().out) == []
    assert queues.dead_lettered() == []


def test_an_approval_for_a_busy_endpoint_waits_in_the_queue_then_rolls(
    monkeypatch, logs, moto, queues, group, endpoint, live
):
    """Finding: Lambda's two asynchronous retries (+1, +2 minutes) end in the dead-letter queue while
    a rollout keeps the endpoint Updating for 30 minutes; from the queue, the approval waits."""
    arn = register(moto.admin, group, "a")
    busy = _client(moto.client.meta.endpoint_url)

    def updating(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        answer = moto.admin.describe_endpoint(EndpointName=endpoint)
        return AWSResponse(None, 200, {}, None), {**answer, "EndpointStatus": "Updating"}

    busy.meta.events.register("before-call.sagemaker.DescribeEndpoint", updating)
    handler = load_handler(monkeypatch, deployments_json(group, endpoint), busy, logs, queues)
    queues.put(state_change(arn, group))

    event = queues.poll()
    message_id = event["Records"][0]["messageId"]
    assert handler.handler(event, LambdaContext()) == {"batchItemFailures": [{"itemIdentifier": message_id}]}
    assert queues.poll() is None  # invisible for the visibility timeout: re-queued with a delay
    assert queues.dead_lettered() == []
    assert serving(moto, endpoint)[1]["EndpointConfigName"] == live["EndpointConfigName"]
    (waiting,) = [log for log in lines(logs) if log["message"].startswith("endpoint busy")]
    assert "is Updating" in waiting["reason"]

    # The visibility timeout runs out, the rollout is over: the same message rolls the endpoint.
    queues.time_passes(event)
    handler = load_handler(monkeypatch, deployments_json(group, endpoint), moto.client, logs, queues)
    again = queues.poll()
    assert again["Records"][0]["messageId"] == message_id
    assert again["Records"][0]["attributes"]["ApproximateReceiveCount"] == "2"
    assert handler.handler(again, LambdaContext()) == {"batchItemFailures": []}
    assert serving(moto, endpoint)[0].startswith(f"{endpoint}-v1-")


def test_one_approval_rolls_every_endpoint_of_the_group_and_waits_only_for_the_busy_one(
    monkeypatch, capsys, logs, moto, queues, group, endpoint, live
):
    """Issue 19: a pipeline deploying to a real-time and an async endpoint; the second is Updating."""
    second = f"docs-{uuid.uuid4().hex[:8]}"
    template = make_template(moto.admin, f"EndpointConfig-{uuid.uuid4().hex[:12]}")
    moto.admin.create_endpoint(EndpointName=second, EndpointConfigName=template["EndpointConfigName"])
    arn = register(moto.admin, group, "a")
    rolling = {second}

    def updating(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        name = json.loads(params["body"])["EndpointName"]
        if name not in rolling:
            return None  # the call goes to moto
        answer = moto.admin.describe_endpoint(EndpointName=name)
        return AWSResponse(None, 200, {}, None), {**answer, "EndpointStatus": "Updating"}

    moto.client.meta.events.register("before-call.sagemaker.DescribeEndpoint", updating)
    handler = load_handler(monkeypatch, deployments_json(group, endpoint, second), moto.client, logs, queues)
    queues.put(state_change(arn, group))
    capsys.readouterr()

    event = queues.poll()
    message_id = event["Records"][0]["messageId"]
    assert handler.handler(event, LambdaContext()) == {"batchItemFailures": [{"itemIdentifier": message_id}]}
    assert serving(moto, endpoint)[0].startswith(f"{endpoint}-v1-")  # the free one rolled at once
    assert serving(moto, second)[1]["EndpointConfigName"] == template["EndpointConfigName"]
    assert [m["EndpointName"] for m in metrics_in(capsys.readouterr().out)] == [endpoint]
    (waiting,) = [log for log in lines(logs) if log["message"].startswith("endpoint busy")]
    assert f"endpoint {second} is Updating" in waiting["reason"]

    queues.time_passes(event)
    rolling.clear()  # the other rollout is over
    assert handler.handler(queues.poll(), LambdaContext()) == {"batchItemFailures": []}
    assert serving(moto, second)[0].startswith(f"{second}-v1-")
    assert [m["EndpointName"] for m in metrics_in(capsys.readouterr().out)] == [second]  # first: unchanged
    assert queues.dead_lettered() == []


def test_a_refused_endpoint_does_not_keep_the_others_from_their_rollout(
    monkeypatch, logs, moto, queues, group, endpoint, live
):
    missing = f"docs-{uuid.uuid4().hex[:8]}"
    handler = load_handler(monkeypatch, deployments_json(group, missing, endpoint), moto.client, logs, queues)
    queues.put(state_change(register(moto.admin, group, "a"), group))
    event = queues.poll()
    assert handler.handler(event, LambdaContext()) == {"batchItemFailures": []}
    assert serving(moto, endpoint)[0].startswith(f"{endpoint}-v1-")
    (dead,) = queues.dead_lettered()
    assert f"endpoint {missing} does not exist" in dead["MessageAttributes"]["Error"]["StringValue"]


def test_a_group_may_be_deployed_to_several_endpoints(monkeypatch, logs):
    module = load_handler(monkeypatch, deployments_json("chat-models", "chat", "docs"), None, logs)
    assert [d.endpoint_name for d in module.DEPLOYMENTS["chat-models"]] == ["chat", "docs"]


def test_the_wait_is_bounded_by_the_queue_s_redrive_policy():
    """About six hours of waiting, then the dead-letter queue (and its alarm)."""
    waited = model_deployment.MAX_RECEIVES * model_deployment.RETRY_DELAY.to_seconds()
    assert 5.5 * 3600 <= waited <= 6 * 3600
    # Lambda: the visibility timeout must be at least the function timeout; six times is advised.
    assert model_deployment.RETRY_DELAY.to_seconds() >= 6 * model_deployment.FUNCTION_TIMEOUT.to_seconds()


def test_a_failure_waiting_cannot_fix_goes_to_the_dead_letter_queue_at_once(
    monkeypatch, logs, moto, queues, group, endpoint
):
    handler = load_handler(monkeypatch, deployments_json(group, endpoint), moto.client, logs, queues)
    queues.put(state_change(register(moto.admin, group, "a"), group))  # no endpoint: not created here
    event = queues.poll()
    assert handler.handler(event, LambdaContext()) == {"batchItemFailures": []}
    (dead,) = queues.dead_lettered()
    assert dead["Body"] == event["Records"][0]["body"]
    assert f"endpoint {endpoint} does not exist" in dead["MessageAttributes"]["Error"]["StringValue"]


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
    monkeypatch, logs, status, group_name, reason
):
    client = _client()
    handler = load_handler(monkeypatch, deployments_json("chat-models", "chat"), client, logs)
    with Stubber(client):  # nothing queued: any SageMaker call would fail
        assert handler.approval(json.dumps(state_change(PACKAGE_ARN, group_name, status))) == {
            "ignored": reason,
            "model_package_arn": PACKAGE_ARN,
        }
    (log,) = [line for line in lines(logs) if line["message"] == "event ignored"]
    assert (log["reason"], log["model_package_group"]) == (reason, group_name)


def test_the_handler_ignores_a_stale_approval(monkeypatch, logs, moto, group, endpoint, live):
    handler = load_handler(monkeypatch, deployments_json(group, endpoint), moto.client, logs)
    old = register(moto.admin, group, "a")
    register(moto.admin, group, "b")
    result = handler.approval(json.dumps(state_change(old, group)))
    assert "is not the latest approved version" in result["ignored"]
    assert "UpdateEndpoint" not in moto.operations()


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
        handler.approval(json.dumps(event))
    assert message in str(info.value)
    with pytest.raises(ValueError, match="not JSON"):
        handler.approval("{not json")


VALID = {
    "model_package_group": "chat-models",
    "endpoint_name": "chat",
    "execution_role_arn": ROLE,
}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "environment variable DEPLOYMENTS is not set"),
        ("{not json", "DEPLOYMENTS is not valid: DEPLOYMENTS: Invalid JSON"),
        ("[]", "DEPLOYMENTS is not valid: it lists no deployment"),
        (
            json.dumps([{k: v for k, v in VALID.items() if k != "execution_role_arn"}]),
            "DEPLOYMENTS[0].execution_role_arn: Field required",
        ),
        (
            json.dumps([{**VALID, "endpoint_name": "chat_endpoint"}]),
            "DEPLOYMENTS[0].endpoint_name: String should match pattern",
        ),
        (
            json.dumps([{**VALID, "instance_type": "ml.g5.xlarge"}]),
            "DEPLOYMENTS[0].instance_type: Extra inputs are not permitted",
        ),
        (
            json.dumps([VALID, {**VALID, "model_package_group": "other"}]),
            "endpoint_name must be unique (one model package group per endpoint), repeated: chat",
        ),
    ],
)
def test_bad_deployments_fail_at_cold_start_with_a_clear_message(monkeypatch, value, message):
    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/dlq")
    if value is None:
        monkeypatch.delenv("DEPLOYMENTS", raising=False)
    else:
        monkeypatch.setenv("DEPLOYMENTS", value)
    with pytest.raises(RuntimeError) as info:
        importlib.reload(importlib.import_module("lambdas.model_deployer.handler"))
    assert message in str(info.value)


def test_a_bad_dead_letter_queue_url_fails_at_cold_start(monkeypatch):
    monkeypatch.setenv("DEPLOYMENTS", json.dumps([VALID]))
    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", "arn:aws:sqs:us-east-1:123456789012:dlq")
    with pytest.raises(RuntimeError, match="DEAD_LETTER_QUEUE_URL is not an SQS queue URL"):
        importlib.reload(importlib.import_module("lambdas.model_deployer.handler"))


def test_valid_deployments_get_their_defaults(monkeypatch):
    monkeypatch.setenv("DEPLOYMENTS", json.dumps([VALID]))
    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/dlq")
    module = importlib.reload(importlib.import_module("lambdas.model_deployer.handler"))
    assert {
        "chat-models": (
            Deployment(
                model_package_group="chat-models",
                endpoint_name="chat",
                execution_role_arn=ROLE,
                enable_network_isolation=False,
                environment={},
            ),
        )
    } == module.DEPLOYMENTS


# --------------------------------------------------------------------------------------------------
# Issue 19: every setting copied; the rollout's outcome reported


def test_every_setting_sagemaker_returns_is_copied_even_ones_added_after_the_deployer():
    """Finding: a hand-written list of copied settings dropped MetricsConfig and CrossRegionTrafficConfig
    (parameters SageMaker added later); the copy now takes every CreateEndpointConfig parameter that
    DescribeEndpointConfig returns, from the client's own service model."""
    shapes = _client().meta.service_model
    create = set(shapes.operation_model("CreateEndpointConfig").input_shape.members)
    describe = set(shapes.operation_model("DescribeEndpointConfig").output_shape.members)
    assert set(logic.copied_settings(_client())) == (create & describe) - {"EndpointConfigName"}
    assert {"MetricsConfig", "CrossRegionTrafficConfig", "ProductionVariants"} <= set(
        logic.copied_settings(_client())
    )

    newer = {
        **LIVE_CONFIG,
        "MetricsConfig": {"EnableEnhancedMetrics": True, "MetricPublishFrequencyInSeconds": 10},
        "CrossRegionTrafficConfig": {"MaxCrossRegionPercentPerEndpoint": 20},
    }
    request = logic.endpoint_config_request(_client(), newer, "approved", "chat", 3)
    assert request["MetricsConfig"] == newer["MetricsConfig"]
    assert request["CrossRegionTrafficConfig"] == newer["CrossRegionTrafficConfig"]


def endpoint_state_change(endpoint: str, status: str, reason: str | None = None) -> dict[str, Any]:
    """A "SageMaker Endpoint State Change" event (EventBridge; SageMaker developer guide, "Events that
    Amazon SageMaker AI sends to Amazon EventBridge"), trimmed to the fields that matter."""
    detail: dict[str, Any] = {
        "EndpointName": endpoint,
        "EndpointArn": f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/{endpoint.lower()}",
        "EndpointConfigName": f"{endpoint}-v1-0123abcd",
        "EndpointStatus": status,
        "CreationTime": 1763888400000,
        "LastModifiedTime": 1763890200000,
    }
    if reason is not None:
        detail["FailureReason"] = reason
    return {
        "version": "0",
        "id": "9a1d2f3e-0000-4000-8000-000000000003",
        "detail-type": "SageMaker Endpoint State Change",
        "source": "aws.sagemaker",
        "account": ACCOUNT,
        "time": "2026-11-23T09:30:00Z",
        "region": "us-east-1",
        "resources": [detail["EndpointArn"]],
        "detail": detail,
    }


@pytest.mark.parametrize(
    ("status", "reason", "failed"),
    [
        (
            "InService",
            "The primary container for production variant AllTraffic did not pass the ping health check.",
            True,
        ),
        ("IN_SERVICE", "Failed to download model data.", True),
        ("Failed", None, True),
        ("UpdateRollbackFailed", "Both the rolling deployment and auto-rollback failed.", True),
        ("InService", None, False),
        ("IN_SERVICE", None, False),
        ("Updating", None, False),
        ("RollingBack", "rolling back", False),  # transitional: its end is reported
    ],
)
def test_rollout_failures_are_told_from_the_endpoint_status_and_failure_reason(status, reason, failed):
    assert (logic.rollout_failure(status, reason) is not None) is failed


def test_a_rolled_back_rollout_raises_the_alarm_metric(monkeypatch, capsys, logs, queues, group, endpoint):
    """Finding: UpdateEndpoint returns as soon as the rollout starts and the deployer reported
    "updated"; a rollout SageMaker rolled back (InService again, with a FailureReason) was silent.
    Its endpoint state change, queued by the second rule, now publishes RolloutFailed with exactly the
    namespace and dimension the RolloutFailed alarm watches (tests/stacks/test_training_pipeline.py)."""
    handler = load_handler(monkeypatch, deployments_json(group, endpoint), _client(), logs, queues)
    reason = "The primary container for production variant AllTraffic did not pass the ping health check."
    queues.put(endpoint_state_change(endpoint, "InService", reason))
    capsys.readouterr()

    event = queues.poll()
    assert handler.handler(event, LambdaContext()) == {"batchItemFailures": []}
    metrics = metrics_in(capsys.readouterr().out)
    assert [m["RolloutFailed"] for m in metrics] == [[1.0]]
    (directive,) = metrics[0]["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == model_deployment.NAMESPACE
    assert directive["Dimensions"] == [["EndpointName"]]
    assert metrics[0]["EndpointName"] == endpoint
    assert metrics[0]["FailureReason"] == reason
    (logged,) = [log for log in lines(logs) if log["message"] == "endpoint rollout failed"]
    assert logged["level"] == "ERROR"
    assert reason in logged["failure"]
    assert queues.dead_lettered() == []

    # A rollout that ends in service without a reason publishes nothing.
    queues.succeed(event)
    queues.put(endpoint_state_change(endpoint, "IN_SERVICE"))
    assert handler.handler(queues.poll(), LambdaContext()) == {"batchItemFailures": []}
    assert metrics_in(capsys.readouterr().out) == []
    assert queues.dead_lettered() == []


TAGS = {"genai-stack:cost-center": "support", "genai-stack:profile": "custom-model"}


def test_models_and_configurations_carry_the_deployment_s_tags_without_renaming_them():
    """The role may create them only with exactly these tags (stacks/components/model_deployment.py);
    a configuration's name does not depend on its tags, so one made before they were added is found
    again by name (created once, then reused)."""
    from botocore.validate import ParamValidator

    tagged = make_deployment("chat-models", "chat", tags=TAGS)
    containers = logic.model_containers(PACKAGE, tagged.environment)
    model = logic.model_name(tagged, PACKAGE_ARN, 3, containers)
    assert model == logic.model_name(STUB_DEPLOYMENT, PACKAGE_ARN, 3, containers)  # tags do not rename
    request = logic.model_request(model, tagged, containers)
    expected = [{"Key": k, "Value": v} for k, v in sorted(TAGS.items())]
    assert request["Tags"] == expected
    config = logic.endpoint_config_request(_client(), LIVE_CONFIG, model, "chat", 3, TAGS)
    untagged = logic.endpoint_config_request(_client(), LIVE_CONFIG, model, "chat", 3)
    assert config["Tags"] == expected
    assert "Tags" not in untagged
    assert config["EndpointConfigName"] == untagged["EndpointConfigName"]
    shapes = _client().meta.service_model
    for operation, params in (("CreateEndpointConfig", config), ("CreateModel", request)):
        report = ParamValidator().validate(params, shapes.operation_model(operation).input_shape)
        assert not report.has_errors(), report.generate_report()
