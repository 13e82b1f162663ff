"""Deployment logic over an injected `sagemaker` client (tests pass a moto-backed or stubbed one).

Ownership (see stacks/components/model_endpoint.py): the inference stack's CloudFormation creates the
endpoint and owns its settings (instance type and count, startup timeouts, routing, volume key, data
capture); the model registry owns which model it serves. Both writers build their endpoint
configuration with `endpoint_config_request`, which copies a whole configuration and swaps the model:

- `deploy` (an approval): the endpoint's *current* configuration with the approved version's model;
- `config_for_settings` (the custom resource between the template's configuration and the endpoint):
  the template's *new* configuration with the model the endpoint serves now, when that model is an
  approved version. So a later `cdk deploy` changes settings but never puts the initial model back.

One approved package version becomes a Model named `{endpoint}-v{version}-{digest}`; its digest covers
the package ARN, its containers, role and isolation, so a re-delivered event finds its own model. The
endpoint configuration is named the same way, its digest covering the model and every copied setting.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

NAME_MAX = 63  # SageMaker model, endpoint config and endpoint names: [a-zA-Z0-9](-*[a-zA-Z0-9])*, <= 63
BUSY_STATUSES = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"})
FAILED_STATUSES = frozenset({"Failed", "RollingBack", "UpdateRollbackFailed"})
# Not copied from a DescribeEndpointConfig answer: the name (each copy has its own) and Tags, which
# DescribeEndpointConfig does not return (tags cost nothing on a configuration: SageMaker bills the
# endpoint's instances).
NOT_COPIED = frozenset({"EndpointConfigName", "Tags"})


def copied_settings(client: Any) -> tuple[str, ...]:
    """Every CreateEndpointConfig parameter that DescribeEndpointConfig returns, but the name, read from
    the client's own service model (SageMaker API reference, CreateEndpointConfig and
    DescribeEndpointConfig). A hand-written list drops what SageMaker adds later (MetricsConfig,
    CrossRegionTrafficConfig were missing from it), and a setting the client cannot send is one its
    service model does not have, so the copy is always exactly what this client can give back."""
    model = client.meta.service_model
    create = model.operation_model("CreateEndpointConfig").input_shape.members
    describe = model.operation_model("DescribeEndpointConfig").output_shape.members
    return tuple(key for key in create if key in describe and key not in NOT_COPIED)


# "If no headers are specified Amazon SageMaker AI will by default base64 encode when capturing the
# data" (SageMaker API reference, CaptureContentTypeHeader:
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CaptureContentTypeHeader.html).
# The servers behind these endpoints speak JSON, so captured requests and answers are kept readable.
JSON_CAPTURE = {"JsonContentTypes": ["application/json"]}


class EndpointBusyError(RuntimeError):
    """The endpoint is in a transition: the approval waits in the queue and is tried again later."""


class UntaggedConfigError(RuntimeError):
    """The configuration to roll to exists without the deployment's tags (made by genai-stack 0.1)."""


class EndpointNotReadyError(RuntimeError):
    """The endpoint does not exist (yet): the inference stack creates it, never the deployer."""


@dataclass(frozen=True)
class Deployment:
    """Which endpoint the approved versions of one model package group are served from, and how their
    models are made (the endpoint's settings are copied from its current configuration)."""

    model_package_group: str
    endpoint_name: str
    execution_role_arn: str
    enable_network_isolation: bool = False
    environment: dict[str, str] = field(default_factory=dict)
    # Put on every model and endpoint configuration created for it; the role may create only with them
    # (aws:RequestTag, stacks/components/model_deployment.py).
    tags: dict[str, str] = field(default_factory=dict)


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    """A request's `Tags` ([{"Key", "Value"}], SageMaker API reference, Tag)."""
    return [{"Key": key, "Value": value} for key, value in sorted(tags.items())]


def resource_name(endpoint_name: str, version: int, digest: str) -> str:
    """The Model / EndpointConfig name for one package version: at most 63 valid characters."""
    suffix = f"-v{version}-{digest[:8]}"
    return endpoint_name[: NAME_MAX - len(suffix)].rstrip("-") + suffix


def deployed_version(endpoint_name: str, name: str) -> int | None:
    """The package version a model or configuration named by `resource_name` was made for, or None
    for any other name (the inference stack's own model and configuration have generated names)."""
    match = re.search(r"-v(\d+)-([0-9a-f]{8})$", name)
    if match and resource_name(endpoint_name, int(match.group(1)), match.group(2)) == name:
        return int(match.group(1))
    return None


def _digest(*content: Any) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


def model_name(
    deployment: Deployment, package_arn: str, version: int, containers: list[dict[str, Any]]
) -> str:
    """The name of the Model that serves `package_arn` on the deployment's endpoint."""
    digest = _digest(
        package_arn, containers, deployment.execution_role_arn, deployment.enable_network_isolation
    )
    return resource_name(deployment.endpoint_name, version, digest)


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
    if deployment.tags:
        request["Tags"] = tag_list(deployment.tags)
    if len(containers) == 1:
        request["PrimaryContainer"] = containers[0]
    else:
        request["Containers"] = containers
        request["InferenceExecutionConfig"] = {"Mode": "Serial"}
    return request


def served_model(config: dict[str, Any]) -> str:
    """The model of a configuration's one production variant; ValueError for any other shape (inference
    components, several variants, shadow variants), which the deployer cannot roll."""
    variants = config.get("ProductionVariants", [])
    if len(variants) != 1 or "ModelName" not in variants[0] or config.get("ShadowProductionVariants"):
        raise ValueError(
            f"endpoint configuration {config.get('EndpointConfigName')} does not have exactly one production "
            "variant holding a model; only such endpoints can be rolled to an approved model"
        )
    return variants[0]["ModelName"]


def endpoint_config_request(
    client: Any,
    base: dict[str, Any],
    model: str,
    endpoint_name: str,
    version: int,
    tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    """CreateEndpointConfig arguments: every setting of `base` (a DescribeEndpointConfig answer, see
    `copied_settings`), its variant serving `model`; captured JSON is stored as text. Named for
    `version` and the content, not the tags (a configuration made before it was tagged keeps its name),
    which are added as `Tags`."""
    served_model(base)
    request = {key: copy.deepcopy(base[key]) for key in copied_settings(client) if key in base}
    request["ProductionVariants"][0]["ModelName"] = model
    capture = request.get("DataCaptureConfig")
    if capture and capture.get("EnableCapture", True) and not capture.get("CaptureContentTypeHeader"):
        capture["CaptureContentTypeHeader"] = copy.deepcopy(JSON_CAPTURE)
    name = resource_name(endpoint_name, version, _digest(request))
    return {"EndpointConfigName": name, **request, **({"Tags": tag_list(tags)} if tags else {})}


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
    """Roll the deployment's endpoint to the approved package version `package_arn`.

    Returns {endpoint, model, endpoint_config, action} with action "updated" or "unchanged" (the
    endpoint already serves, or is rolling out, this version: a re-delivered event), or
    {"ignored": reason} when the package is not the group's latest approved version (a late or
    re-delivered event must not roll the endpoint back). Raises EndpointBusyError while the endpoint
    is in a transition, EndpointNotReadyError when it does not exist.
    """
    latest = latest_approved_package(client, deployment.model_package_group)
    if latest != package_arn:
        return {
            "ignored": f"{package_arn} is not the latest approved version of "
            f"{deployment.model_package_group} (latest approved: {latest})"
        }
    package = client.describe_model_package(ModelPackageName=package_arn)
    version = package["ModelPackageVersion"]
    containers = model_containers(package, deployment.environment)
    model = model_name(deployment, package_arn, version, containers)

    current = describe_endpoint(client, deployment.endpoint_name)
    if current is None:
        raise EndpointNotReadyError(
            f"endpoint {deployment.endpoint_name} does not exist; the inference stack creates it "
            f"(deploy it, then approve {package_arn} again or redrive this message)"
        )
    base = client.describe_endpoint_config(EndpointConfigName=current["EndpointConfigName"])
    config = endpoint_config_request(client, base, model, deployment.endpoint_name, version, deployment.tags)
    name = config["EndpointConfigName"]
    result = {"endpoint": deployment.endpoint_name, "model": model, "endpoint_config": name}

    status = current["EndpointStatus"]
    rolling_out = current.get("PendingDeploymentSummary", {}).get("EndpointConfigName")
    if status not in FAILED_STATUSES:
        if served_model(base) == model:
            return {**result, "endpoint_config": current["EndpointConfigName"], "action": "unchanged"}
        if rolling_out == name:
            return {**result, "action": "unchanged"}
    if status in BUSY_STATUSES:
        raise EndpointBusyError(
            f"endpoint {deployment.endpoint_name} is {status}; cannot deploy {package_arn} now, "
            "retry when it is InService"
        )

    _create_unless_exists(client.create_model, model_request(model, deployment, containers), "model")
    _create_unless_exists(client.create_endpoint_config, config, "endpoint configuration")
    try:
        client.update_endpoint(EndpointName=deployment.endpoint_name, EndpointConfigName=name)
    except ClientError as error:
        # Another rollout (or a stack update) got there between DescribeEndpoint and this call.
        if _is(error, "Cannot update in-progress endpoint"):
            raise EndpointBusyError(
                f"endpoint {deployment.endpoint_name} changed while deploying {package_arn}: "
                f"{error.response['Error']['Message']}"
            ) from error
        if error.response.get("Error", {}).get("Code") == "AccessDeniedException" and deployment.tags:
            # The role rolls only to configurations that carry the profile's tags; one of this name
            # that genai-stack 0.1 created has none, and the deployer may not tag it afterwards.
            raise UntaggedConfigError(
                f"endpoint configuration {name} exists without the profile's tags (genai-stack 0.1 created "
                f"it), and the deployer may roll {deployment.endpoint_name} only to tagged ones: delete it "
                f"(aws sagemaker delete-endpoint-config --endpoint-config-name {name}) and approve "
                f"{package_arn} again; the deployer then creates it with the tags"
            ) from error
        raise
    return {**result, "action": "updated"}


def deploy_each(
    client: Any, deployments: Sequence[Deployment], package_arn: str
) -> tuple[list[dict[str, str]], list[str], list[str]]:
    """One approval, every endpoint its group is deployed to: `deploy` on each, so an endpoint that is
    busy or refused does not keep the others from their rollout.

    Returns (results, busy, failures): the results of the endpoints deployed (or the one {"ignored"}
    result when the package is not the latest approved version: the same for every endpoint), the
    EndpointBusyError messages and the other errors' messages, one per endpoint. The caller retries
    the approval while any endpoint is busy; the endpoints already rolled are then "unchanged".
    """
    results, busy, failures = [], [], []
    for deployment in deployments:
        try:
            result = deploy(client, deployment, package_arn)
        except EndpointBusyError as error:
            busy.append(str(error))
            continue
        except Exception as error:  # refused, missing endpoint: reported once the others are done
            failures.append(f"endpoint {deployment.endpoint_name}: {error}")
            continue
        if "ignored" in result:
            return [result], [], []
        results.append(result)
    return results, busy, failures


def config_for_settings(
    client: Any, endpoint_name: str, template_config: str, tags: dict[str, str] | None = None
) -> str:
    """The configuration CloudFormation should give the endpoint for the template's `template_config`.

    While the endpoint does not exist or serves the inference stack's own model, that is the template's
    configuration itself. Once it serves an approved version (a model named by `resource_name`), it is
    a copy of the template's configuration serving that model, created here: the new settings apply
    and the approved model stays. Raises EndpointBusyError while the endpoint is in a transition (a
    rollout in progress would make CloudFormation's UpdateEndpoint fail anyway).
    """
    current = describe_endpoint(client, endpoint_name)
    if current is None:
        return template_config
    if current["EndpointStatus"] in BUSY_STATUSES:
        raise EndpointBusyError(
            f"endpoint {endpoint_name} is {current['EndpointStatus']} (a model rollout or another update); "
            "deploy the stack again when it is InService"
        )
    live = current["EndpointConfigName"]
    # The inference stack's configurations have generated names: the endpoint then serves its model.
    if deployed_version(endpoint_name, live) is None:
        return template_config
    model = served_model(client.describe_endpoint_config(EndpointConfigName=live))
    version = deployed_version(endpoint_name, model)
    if version is None:
        return template_config
    template = client.describe_endpoint_config(EndpointConfigName=template_config)
    request = endpoint_config_request(client, template, model, endpoint_name, version, tags)
    _create_unless_exists(client.create_endpoint_config, request, "endpoint configuration")
    return request["EndpointConfigName"]


def rollout_failure(status: str, reason: str | None) -> str | None:
    """What went wrong, from a "SageMaker Endpoint State Change" event's EndpointStatus and
    FailureReason, or None while nothing has (in service, or still in a transition).

    UpdateEndpoint returns at once; its outcome arrives later as this event (SageMaker developer guide,
    "Events that Amazon SageMaker AI sends to Amazon EventBridge", endpoint state change:
    https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html).
    A rollout that fails is rolled back: the endpoint serves its previous configuration again and
    reports InService, with the reason: "If the status of the endpoint is Failed, or the status is
    InService but update operation fails, this provides the reason why it failed" (SageMaker API
    reference, EndpointMetadata, FailureReason:
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_EndpointMetadata.html). Failed and
    UpdateRollbackFailed (the rollback failed too) are failures whatever the reason says. The status
    is compared without case and underscores: the API spells it InService, published event examples
    IN_SERVICE.
    """
    normalised = re.sub(r"[_\s-]", "", status).lower()
    if normalised in {"failed", "updaterollbackfailed"}:
        return f"endpoint is {status}: {reason or 'no reason given'}"
    if normalised == "inservice" and reason:
        return f"update failed and was rolled back, the endpoint serves its previous configuration: {reason}"
    return None


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
