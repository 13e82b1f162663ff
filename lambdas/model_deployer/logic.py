"""Deployment logic over an injected `sagemaker` client (tests pass a moto-backed or stubbed one).

One approved model package version becomes a Model and an EndpointConfig that share one name,
`{endpoint}-v{version}-{digest}`, and the endpoint is created with, or updated to, that config.
The digest covers the package ARN, its containers and the deployment settings, so a name always
means the same content: a re-delivered event finds its own resources and reuses them, while a
changed setting (or a package group recreated with the same version numbers) gets new ones.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from botocore.exceptions import ClientError

NAME_MAX = 63  # SageMaker model, endpoint config and endpoint names: [a-zA-Z0-9](-*[a-zA-Z0-9])*, <= 63
BUSY_STATUSES = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"})
FAILED_STATUSES = frozenset({"Failed", "RollingBack", "UpdateRollbackFailed"})


class EndpointBusyError(RuntimeError):
    """The endpoint is in a transition; raised so that Lambda's asynchronous retry redelivers the event."""


@dataclass(frozen=True)
class Deployment:
    """Where and how the approved versions of one model package group are deployed."""

    model_package_group: str
    endpoint_name: str
    execution_role_arn: str
    instance_type: str
    initial_instance_count: int
    variant_name: str = "AllTraffic"
    kms_key_arn: str | None = None
    data_capture_s3_uri: str | None = None
    data_capture_percentage: int = 100
    enable_network_isolation: bool = False
    environment: dict[str, str] = field(default_factory=dict)


def resource_name(endpoint_name: str, version: int, digest: str) -> str:
    """The Model / EndpointConfig name for one package version: at most 63 valid characters."""
    suffix = f"-v{version}-{digest[:8]}"
    return endpoint_name[: NAME_MAX - len(suffix)].rstrip("-") + suffix


def deployment_name(
    deployment: Deployment, package_arn: str, version: int, containers: list[dict[str, Any]]
) -> str:
    """The name of the Model and EndpointConfig that deploy `package_arn` as `deployment` says."""
    content = json.dumps([package_arn, containers, asdict(deployment)], sort_keys=True)
    return resource_name(deployment.endpoint_name, version, hashlib.sha256(content.encode()).hexdigest())


def model_containers(package: dict[str, Any], environment: dict[str, str]) -> list[dict[str, Any]]:
    """The package's inference containers as CreateModel containers, `environment` merged over theirs."""
    containers = package.get("InferenceSpecification", {}).get("Containers", [])
    if not containers:
        raise ValueError(f"model package {package['ModelPackageArn']} has no inference containers")
    result = []
    for container in containers:
        definition = {
            key: container[key] for key in ("Image", "ModelDataUrl", "ModelDataSource") if key in container
        }
        merged = {**container.get("Environment", {}), **environment}
        if merged:
            definition["Environment"] = merged
        result.append(definition)
    return result


def model_request(name: str, deployment: Deployment, containers: list[dict[str, Any]]) -> dict[str, Any]:
    """CreateModel arguments: one container as PrimaryContainer, several as a serial inference pipeline."""
    request: dict[str, Any] = {
        "ModelName": name,
        "ExecutionRoleArn": deployment.execution_role_arn,
        "EnableNetworkIsolation": deployment.enable_network_isolation,
    }
    if len(containers) == 1:
        request["PrimaryContainer"] = containers[0]
    else:
        request["Containers"] = containers
        request["InferenceExecutionConfig"] = {"Mode": "Serial"}
    return request


def endpoint_config_request(name: str, deployment: Deployment) -> dict[str, Any]:
    """CreateEndpointConfig arguments: one variant serving model `name`, KMS and data capture if set.

    Note: SageMaker rejects KmsKeyId for instance types with local NVMe storage (e.g. ml.g5, ml.p4d),
    whose volumes are always encrypted; leave kms_key_arn unset for those.
    """
    request: dict[str, Any] = {
        "EndpointConfigName": name,
        "ProductionVariants": [
            {
                "VariantName": deployment.variant_name,
                "ModelName": name,
                "InstanceType": deployment.instance_type,
                "InitialInstanceCount": deployment.initial_instance_count,
                "InitialVariantWeight": 1.0,
            }
        ],
    }
    if deployment.kms_key_arn:
        request["KmsKeyId"] = deployment.kms_key_arn
    if deployment.data_capture_s3_uri:
        capture: dict[str, Any] = {
            "EnableCapture": True,
            "InitialSamplingPercentage": deployment.data_capture_percentage,
            "DestinationS3Uri": deployment.data_capture_s3_uri,
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        }
        if deployment.kms_key_arn:
            capture["KmsKeyId"] = deployment.kms_key_arn
        request["DataCaptureConfig"] = capture
    return request


def latest_approved_package(client: Any, group: str) -> str | None:
    """The ARN of the most recently created Approved package version of `group`, if any."""
    response = client.list_model_packages(
        ModelPackageGroupName=group,
        ModelApprovalStatus="Approved",
        SortBy="CreationTime",
        SortOrder="Descending",
        MaxResults=1,
    )
    summaries = response.get("ModelPackageSummaryList", [])
    return summaries[0]["ModelPackageArn"] if summaries else None


def describe_endpoint(client: Any, name: str) -> dict[str, Any] | None:
    """DescribeEndpoint, or None when the endpoint does not exist."""
    try:
        return client.describe_endpoint(EndpointName=name)
    except ClientError as error:
        if _is(error, "Could not find endpoint"):
            return None
        raise


def deploy(client: Any, deployment: Deployment, package_arn: str) -> dict[str, str]:
    """Deploy the approved package version `package_arn` to the deployment's endpoint.

    Returns {endpoint, model, endpoint_config, action} with action "created", "updated" or
    "unchanged" (the endpoint already serves, or is rolling out, this version: a re-delivered event),
    or {"ignored": reason} when the package is not the group's latest approved version (a late or
    re-delivered event must not roll the endpoint back). Raises EndpointBusyError while the endpoint
    is in a transition.
    """
    latest = latest_approved_package(client, deployment.model_package_group)
    if latest != package_arn:
        return {
            "ignored": f"{package_arn} is not the latest approved version of "
            f"{deployment.model_package_group} (latest approved: {latest})"
        }
    package = client.describe_model_package(ModelPackageName=package_arn)
    containers = model_containers(package, deployment.environment)
    name = deployment_name(deployment, package_arn, package["ModelPackageVersion"], containers)
    result = {"endpoint": deployment.endpoint_name, "model": name, "endpoint_config": name}

    current = describe_endpoint(client, deployment.endpoint_name)
    if current is not None:
        status = current["EndpointStatus"]
        rolling_out = current.get("PendingDeploymentSummary", {}).get("EndpointConfigName")
        if name in (current["EndpointConfigName"], rolling_out) and status not in FAILED_STATUSES:
            return {**result, "action": "unchanged"}
        if status in BUSY_STATUSES:
            raise EndpointBusyError(
                f"endpoint {deployment.endpoint_name} is {status}; cannot deploy {package_arn} now, "
                "retry when it is InService"
            )

    _create_unless_exists(client.create_model, model_request(name, deployment, containers), "model")
    _create_unless_exists(
        client.create_endpoint_config, endpoint_config_request(name, deployment), "endpoint configuration"
    )
    try:
        if current is None:
            client.create_endpoint(EndpointName=deployment.endpoint_name, EndpointConfigName=name)
        else:
            client.update_endpoint(EndpointName=deployment.endpoint_name, EndpointConfigName=name)
    except ClientError as error:
        # Another deployment got there between DescribeEndpoint and this call.
        if _is(error, "Cannot update in-progress endpoint") or _is(
            error, "Cannot create already existing endpoint"
        ):
            raise EndpointBusyError(
                f"endpoint {deployment.endpoint_name} changed while deploying {package_arn}: "
                f"{error.response['Error']['Message']}"
            ) from error
        raise
    return {**result, "action": "created" if current is None else "updated"}


def _create_unless_exists(create: Any, request: dict[str, Any], kind: str) -> None:
    """Call a Create* operation; an existing resource of the same (content-derived) name is reused."""
    try:
        create(**request)
    except ClientError as error:
        if not _is(error, f"Cannot create already existing {kind}"):
            raise


def _is(error: ClientError, message_start: str) -> bool:
    """Whether `error` is a ValidationException whose message starts with `message_start`."""
    details = error.response.get("Error", {})
    return details.get("Code") == "ValidationException" and details.get("Message", "").startswith(
        message_start
    )
