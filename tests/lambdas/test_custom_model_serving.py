"""Custom model serving clean-up: logic and handler with a stubbed bedrock client (moto serves no
Provisioned Throughput or custom model deployment) and Step Functions on a moto server.

The Stubber raises on any call that was not queued, so a test that queues no delete also proves the
code deleted nothing else: in particular not the serving of another pipeline whose name merely
starts with ours.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from lambdas.custom_model_serving import logic
from lambdas.custom_model_serving.logic import Serving, StillBusyError
from tests.support.moto_server import moto_server
from tests.support.stubs import import_counting_clients, offline_client, stubbed

REGION = "us-east-1"
ACCOUNT = "123456789012"
PREFIX = "custom-model-nova-support"
PT_NAME = f"{PREFIX}-pt"
DEPLOYMENT_NAME = f"{PREFIX}-on-demand"
MODEL_ARN = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:custom-model/amazon.nova-micro-v1:0:128k/abcdefghijkl"
FOUNDATION_ARN = f"arn:aws:bedrock:{REGION}::foundation-model/amazon.nova-micro-v1:0:128k"
NOW = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)


def definition(mode: str) -> str:
    """A pipeline definition that serves `mode` the way BedrockCustomization's does: the serving
    resource's exact name is a task parameter (`none` names neither)."""
    parameters = {
        "provisioned": {"ProvisionedModelId": f"{PREFIX}-pt"},
        "on_demand": {"Payload": {"DeploymentName": f"{PREFIX}-on-demand"}},
        "none": {},
    }[mode]
    state = {"Type": "Pass", "Parameters": parameters, "End": True, "Comment": f"Does {PREFIX}-pt exist?"}
    return json.dumps({"StartAt": "Serve", "States": {"Serve": state}})


def pt_arn(suffix: str) -> str:
    return f"arn:aws:bedrock:{REGION}:{ACCOUNT}:provisioned-model/{suffix:0<12}"


def deployment_arn(suffix: str) -> str:
    return f"arn:aws:bedrock:{REGION}:{ACCOUNT}:custom-model-deployment/{suffix:0<12}"


def pt_summary(name: str, arn: str) -> dict:
    return {
        "provisionedModelName": name,
        "provisionedModelArn": arn,
        "modelArn": MODEL_ARN,
        "desiredModelArn": MODEL_ARN,
        "foundationModelArn": FOUNDATION_ARN,
        "modelUnits": 1,
        "desiredModelUnits": 1,
        "status": "InService",
        "creationTime": NOW,
        "lastModifiedTime": NOW,
    }


def deployment_summary(name: str, arn: str) -> dict:
    return {
        "customModelDeploymentArn": arn,
        "customModelDeploymentName": name,
        "modelArn": MODEL_ARN,
        "createdAt": NOW,
        "status": "Active",
    }


OURS_PT = pt_arn("ours")
OURS_DEPLOYMENT = deployment_arn("ours")
# Names that contain ours (nameContains matches them) but belong to other pipelines.
V2_PT = pt_arn("v2")
V2_DEPLOYMENT = deployment_arn("v2")


# --------------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def moto_endpoint():
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def stepfunctions(moto_endpoint):
    return boto3.client(
        "stepfunctions",
        region_name=REGION,
        endpoint_url=moto_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def make_machine(stepfunctions, request):
    """make_machine(mode): a pipeline state machine whose definition serves `mode`, deleted afterwards."""
    made = []

    def make(mode: str) -> str:
        name = f"pipeline-{mode}-{abs(hash(request.node.name)) % 10**8}"
        arn = stepfunctions.create_state_machine(
            name=name, definition=definition(mode), roleArn=f"arn:aws:iam::{ACCOUNT}:role/pipeline"
        )["stateMachineArn"]
        made.append(arn)
        return arn

    yield make
    for arn in made:
        stepfunctions.delete_state_machine(stateMachineArn=arn)


@pytest.fixture
def state_machine(make_machine):
    """A pipeline serving `provisioned`."""
    return make_machine("provisioned")


@pytest.fixture
def bedrock():
    return offline_client("bedrock", REGION)


@pytest.fixture
def stub(bedrock):
    with stubbed(bedrock) as stubber:
        yield stubber


def serving(state_machine: str) -> Serving:
    return Serving(
        state_machine_arn=state_machine, provisioned_model_name=PT_NAME, deployment_name=DEPLOYMENT_NAME
    )


def provisioned(
    stub: Stubber, *summaries: dict, token: str | None = None, next_token: str | None = None
) -> None:
    request = {"nameContains": PT_NAME, **({"nextToken": token} if token else {})}
    response = {
        "provisionedModelSummaries": list(summaries),
        **({"nextToken": next_token} if next_token else {}),
    }
    stub.add_response("list_provisioned_model_throughputs", response, request)


def deployments(stub: Stubber, *summaries: dict) -> None:
    stub.add_response(
        "list_custom_model_deployments",
        {"modelDeploymentSummaries": list(summaries)},
        {"nameContains": DEPLOYMENT_NAME},
    )


def expect_pt_delete(stub: Stubber, arn: str = OURS_PT) -> None:
    stub.add_response("delete_provisioned_model_throughput", {}, {"provisionedModelId": arn})


def expect_deployment_delete(stub: Stubber, arn: str = OURS_DEPLOYMENT) -> None:
    stub.add_response("delete_custom_model_deployment", {}, {"customModelDeploymentIdentifier": arn})


def no_time_left() -> bool:
    return False


class Waits:
    """A wait() that allows `allowed` retries and counts them (no real sleeping)."""

    def __init__(self, allowed: int) -> None:
        self.allowed = allowed
        self.calls = 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.calls <= self.allowed


# --------------------------------------------------------------------------------------------------
# Logic


def test_delete_stops_the_pipeline_and_removes_exactly_its_serving(
    bedrock, stub, stepfunctions, state_machine
):
    running = [stepfunctions.start_execution(stateMachineArn=state_machine)["executionArn"] for _ in range(2)]
    provisioned(stub, pt_summary(f"{PREFIX}-v2-pt", V2_PT), pt_summary(PT_NAME, OURS_PT))
    expect_pt_delete(stub)
    # No deployment call is queued: the on-demand deployment is not this registration's to touch.

    outcome = logic.remove_serving(
        bedrock, stepfunctions, serving(state_machine), mode="provisioned", wait=no_time_left
    )

    assert sorted(outcome.stopped_executions) == sorted(running)
    assert outcome.provisioned_throughput == "deleted"
    assert outcome.deployment == "kept"
    for arn in running:
        described = stepfunctions.describe_execution(executionArn=arn)
        assert described["status"] == "ABORTED"
    assert (
        stepfunctions.list_executions(stateMachineArn=state_machine, statusFilter="RUNNING")["executions"]
        == []
    )


def test_an_on_demand_registration_deletes_only_the_deployment(bedrock, stub, stepfunctions, make_machine):
    state_machine = make_machine("on_demand")
    running = stepfunctions.start_execution(stateMachineArn=state_machine)["executionArn"]
    deployments(
        stub,
        deployment_summary(DEPLOYMENT_NAME, OURS_DEPLOYMENT),
        deployment_summary(f"x-{DEPLOYMENT_NAME}", V2_DEPLOYMENT),
    )
    expect_deployment_delete(stub)
    outcome = logic.remove_serving(
        bedrock, stepfunctions, serving(state_machine), mode="on_demand", wait=no_time_left
    )
    assert outcome == logic.Outcome(
        stopped_executions=[running], provisioned_throughput="kept", deployment="deleted"
    )


def test_finished_executions_are_left_alone(bedrock, stub, stepfunctions, state_machine):
    done = stepfunctions.start_execution(stateMachineArn=state_machine)["executionArn"]
    stepfunctions.stop_execution(executionArn=done)
    provisioned(stub)
    outcome = logic.remove_serving(
        bedrock, stepfunctions, serving(state_machine), mode="provisioned", wait=no_time_left
    )
    assert outcome.stopped_executions == []


def test_nothing_to_delete_is_a_success(bedrock, stub, stepfunctions, state_machine):
    provisioned(stub, pt_summary(f"{PREFIX}-v2-pt", V2_PT))  # only another pipeline's
    outcome = logic.remove_serving(
        bedrock, stepfunctions, serving(state_machine), mode="provisioned", wait=no_time_left
    )
    assert outcome == logic.Outcome(stopped_executions=[], provisioned_throughput="absent", deployment="kept")


def test_no_serving_deletes_nothing_and_stops_its_runs(bedrock, stub, stepfunctions, make_machine):
    state_machine = make_machine("none")
    running = stepfunctions.start_execution(stateMachineArn=state_machine)["executionArn"]
    outcome = logic.remove_serving(
        bedrock, stepfunctions, serving(state_machine), mode="none", wait=no_time_left
    )
    assert outcome == logic.Outcome(
        stopped_executions=[running], provisioned_throughput="kept", deployment="kept"
    )


def test_serving_deleted_meanwhile_counts_as_absent(bedrock, stub, stepfunctions, state_machine):
    provisioned(stub, pt_summary(PT_NAME, OURS_PT))
    stub.add_client_error(
        "delete_provisioned_model_throughput",
        service_error_code="ResourceNotFoundException",
        http_status_code=404,
        expected_params={"provisionedModelId": OURS_PT},
    )
    outcome = logic.remove_serving(
        bedrock, stepfunctions, serving(state_machine), mode="provisioned", wait=no_time_left
    )
    assert outcome.provisioned_throughput == "absent"
    deployments(stub, deployment_summary(DEPLOYMENT_NAME, OURS_DEPLOYMENT))
    stub.add_client_error(
        "delete_custom_model_deployment",
        service_error_code="ResourceNotFoundException",
        http_status_code=404,
        expected_params={"customModelDeploymentIdentifier": OURS_DEPLOYMENT},
    )
    outcome = logic.remove_serving(
        bedrock, stepfunctions, serving(state_machine), mode="on_demand", wait=no_time_left
    )
    assert outcome.deployment == "absent"


@pytest.mark.parametrize(
    ("mode", "expected"), [("provisioned", "provisioned"), ("on_demand", "on_demand"), ("none", "none")]
)
def test_the_serving_of_a_definition_is_read_from_its_exact_resource_names(mode, expected):
    pipeline = serving("arn:aws:states:us-east-1:123456789012:stateMachine:p")
    assert pipeline.mode_of(definition(mode)) == expected
    # A name that merely contains ours (another customization's) does not count.
    other = json.dumps(
        {"StartAt": "S", "States": {"S": {"Type": "Pass", "Parameters": {"X": f"{PT_NAME}-v2"}, "End": True}}}
    )
    assert pipeline.mode_of(other) == "none"


def test_a_throughput_still_being_created_is_retried_until_it_can_be_deleted(
    bedrock, stub, stepfunctions, state_machine
):
    provisioned(stub, pt_summary(PT_NAME, OURS_PT))
    for _ in range(2):
        stub.add_client_error(
            "delete_provisioned_model_throughput",
            service_error_code="ConflictException",
            http_status_code=409,
        )
    expect_pt_delete(stub)
    waits = Waits(allowed=5)
    outcome = logic.remove_serving(
        bedrock, stepfunctions, serving(state_machine), mode="provisioned", wait=waits
    )
    assert outcome.provisioned_throughput == "deleted"
    assert waits.calls == 2


def test_a_throughput_that_stays_busy_fails_the_delete_with_a_clear_error(
    bedrock, stub, stepfunctions, state_machine
):
    provisioned(stub, pt_summary(PT_NAME, OURS_PT))
    for _ in range(2):
        stub.add_client_error(
            "delete_provisioned_model_throughput",
            service_error_code="ConflictException",
            http_status_code=409,
        )
    with pytest.raises(StillBusyError, match=rf"Provisioned Throughput {PT_NAME}.*delete the stack again"):
        logic.remove_serving(
            bedrock, stepfunctions, serving(state_machine), mode="provisioned", wait=Waits(allowed=1)
        )


def test_other_errors_propagate(bedrock, stub, stepfunctions, state_machine):
    stub.add_client_error(
        "list_provisioned_model_throughputs", service_error_code="AccessDeniedException", http_status_code=403
    )
    with pytest.raises(Exception, match="AccessDeniedException"):
        logic.remove_serving(
            bedrock, stepfunctions, serving(state_machine), mode="provisioned", wait=no_time_left
        )


def test_every_page_of_the_list_is_searched(bedrock, stub):
    provisioned(stub, pt_summary(f"{PREFIX}-v2-pt", V2_PT), next_token="page-2")
    provisioned(stub, pt_summary(PT_NAME, OURS_PT), token="page-2")
    assert logic.provisioned_throughput_arns(bedrock, PT_NAME) == [OURS_PT]


def test_an_execution_that_ended_meanwhile_is_not_an_error():
    class Executions:
        def list_executions(self, **kwargs):
            return {
                "executions": [{"executionArn": "arn:aws:states:us-east-1:123456789012:execution:p:gone"}]
            }

        def describe_state_machine_for_execution(self, **kwargs):
            return {"definition": definition("provisioned")}

        def stop_execution(self, **kwargs):
            raise ClientError(
                {"Error": {"Code": "ExecutionDoesNotExist", "Message": "gone"}}, "StopExecution"
            )

    assert (
        logic.stop_executions(Executions(), "arn:aws:states:us-east-1:123456789012:stateMachine:p", cause="x")
        == []
    )


# --------------------------------------------------------------------------------------------------
# Handler


@dataclass
class FakeLambdaContext:
    """The attributes Powertools' inject_lambda_context reads, and the remaining time."""

    function_name: str = "custom-model-serving"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:custom-model-serving"
    aws_request_id: str = "52fdfc07-2182-154f-163f-5f0f9a621d72"
    remaining_ms: int = 600_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


SERVICE_TOKEN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:provider-framework-onEvent"


def properties(state_machine: str, **changes: str) -> dict:
    return {
        "ServiceToken": SERVICE_TOKEN,
        "JobPrefix": PREFIX,
        "StateMachineArn": state_machine,
        "ProvisionedModelName": PT_NAME,
        "DeploymentName": DEPLOYMENT_NAME,
        "Serving": "on_demand",
        **changes,
    }


def cfn_event(request_type: str, props: dict, **extra: object) -> dict:
    return {
        "RequestType": request_type,
        "ServiceToken": SERVICE_TOKEN,
        "ResponseURL": "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/x",
        "StackId": f"arn:aws:cloudformation:us-east-1:{ACCOUNT}:stack/genai-training/0f1e2d3c",
        "RequestId": "7d6c5b4a-0000-4000-8000-000000000000",
        "LogicalResourceId": "ServingCleanup",
        "ResourceType": "Custom::BedrockCustomModelServing",
        "ResourceProperties": props,
        **extra,
    }


class _NoAwsCalls:
    def __call__(self):
        raise AssertionError("no AWS client may be built for this request")


@pytest.fixture
def handler(monkeypatch, bedrock, stepfunctions):
    module = importlib.import_module("lambdas.custom_model_serving.handler")
    monkeypatch.setattr(module, "bedrock_client", lambda: bedrock)
    monkeypatch.setattr(module, "stepfunctions_client", lambda: stepfunctions)
    return module


@pytest.mark.parametrize("request_type", ["Create", "Update"])
def test_create_and_update_only_register_and_make_no_aws_call(handler, monkeypatch, request_type):
    monkeypatch.setattr(handler, "bedrock_client", _NoAwsCalls())
    monkeypatch.setattr(handler, "stepfunctions_client", _NoAwsCalls())
    machine = f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:CustomizationStateMachine-AbC123"
    extra = (
        {"PhysicalResourceId": f"custom-model-serving:{PREFIX}:on_demand"} if request_type == "Update" else {}
    )
    response = handler.on_event(cfn_event(request_type, properties(machine), **extra), FakeLambdaContext())
    assert response == {
        "PhysicalResourceId": f"custom-model-serving:{PREFIX}:on_demand",
        "Data": {"Action": "registered"},
    }


def test_a_changed_serving_mode_changes_the_physical_id(handler, monkeypatch):
    monkeypatch.setattr(handler, "bedrock_client", _NoAwsCalls())
    machine = f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:pipeline"
    event = cfn_event(
        "Update",
        properties(machine, Serving="none"),
        PhysicalResourceId=f"custom-model-serving:{PREFIX}:provisioned",
        OldResourceProperties=properties(machine, Serving="provisioned"),
    )
    # CloudFormation then deletes the old id (with the old properties): the throughput goes.
    assert (
        handler.on_event(event, FakeLambdaContext())["PhysicalResourceId"]
        == f"custom-model-serving:{PREFIX}:none"
    )


def test_delete_end_to_end_removes_the_serving_and_keeps_the_physical_id(
    handler, stub, stepfunctions, state_machine
):
    execution = stepfunctions.start_execution(stateMachineArn=state_machine)["executionArn"]
    provisioned(stub, pt_summary(PT_NAME, OURS_PT))
    expect_pt_delete(stub)
    physical_id = f"custom-model-serving:{PREFIX}:provisioned"
    event = cfn_event(
        "Delete", properties(state_machine, Serving="provisioned"), PhysicalResourceId=physical_id
    )
    response = handler.on_event(event, FakeLambdaContext())
    assert response == {
        "PhysicalResourceId": physical_id,
        "Data": {
            "Action": "removed",
            "StoppedExecutions": "1",
            "ProvisionedThroughput": "deleted",
            "Deployment": "kept",
        },
    }
    assert stepfunctions.describe_execution(executionArn=execution)["status"] == "ABORTED"


def test_delete_ignores_properties_a_later_version_no_longer_knows(handler, stub, state_machine):
    deployments(stub)
    event = cfn_event(
        "Delete",
        {**properties(state_machine), "RetiredProperty": "x"},
        PhysicalResourceId=f"custom-model-serving:{PREFIX}:on_demand",
    )
    assert handler.on_event(event, FakeLambdaContext())["Data"]["Action"] == "removed"


def test_delete_gives_up_retrying_before_lambda_times_out(handler, stub, state_machine, monkeypatch):
    monkeypatch.setattr(
        handler.time, "sleep", lambda seconds: pytest.fail("must not sleep without time left")
    )
    provisioned(stub, pt_summary(PT_NAME, OURS_PT))
    stub.add_client_error(
        "delete_provisioned_model_throughput", service_error_code="ConflictException", http_status_code=409
    )
    event = cfn_event(
        "Delete",
        properties(state_machine, Serving="provisioned"),
        PhysicalResourceId=f"custom-model-serving:{PREFIX}:provisioned",
    )
    with pytest.raises(StillBusyError):
        handler.on_event(event, FakeLambdaContext(remaining_ms=30_000))


# --------------------------------------------------------------------------------------------------
# The CloudFormation event sequences of a rollback (CloudFormation user guide, "Update request for
# CloudFormation custom resources" and "Delete request for CloudFormation custom resources": a different
# PhysicalResourceId returned by an Update is a replacement, and the old id gets a Delete at cleanup,
# including after the Update that a rollback sends with the old properties).


class RecordedExecutions:
    """A stepfunctions client whose running executions each run the definition they started with
    (moto answers DescribeStateMachineForExecution with the state machine's current definition)."""

    def __init__(self, runs: dict[str, str]) -> None:
        self.runs = runs  # execution ARN -> serving mode of the definition it started with
        self.stopped: list[str] = []

    def list_executions(self, **kwargs):
        return {"executions": [{"executionArn": arn} for arn in self.runs if arn not in self.stopped]}

    def describe_state_machine_for_execution(self, *, executionArn):
        return {"definition": definition(self.runs[executionArn])}

    def stop_execution(self, *, executionArn, **kwargs):
        self.stopped.append(executionArn)


def execution_arn(name: str) -> str:
    return f"arn:aws:states:us-east-1:{ACCOUNT}:execution:pipeline:{name}"


MACHINE = f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:pipeline"
PROVISIONED_ID = f"custom-model-serving:{PREFIX}:provisioned"
ON_DEMAND_ID = f"custom-model-serving:{PREFIX}:on_demand"


def registers(handler, monkeypatch, event: dict) -> str:
    """Run a Create or Update that must make no AWS call; returns the physical id it reports."""
    monkeypatch.setattr(handler, "bedrock_client", _NoAwsCalls())
    monkeypatch.setattr(handler, "stepfunctions_client", _NoAwsCalls())
    response = handler.on_event(event, FakeLambdaContext())
    assert response["Data"] == {"Action": "registered"}
    return response["PhysicalResourceId"]


def test_a_rolled_back_switch_to_on_demand_keeps_the_throughput_in_use(handler, monkeypatch, bedrock, stub):
    provisioned_props = properties(MACHINE, Serving="provisioned")
    on_demand_props = properties(MACHINE, Serving="on_demand")
    # Create, then an Update to on_demand that another resource's failure rolls back.
    assert registers(handler, monkeypatch, cfn_event("Create", provisioned_props)) == PROVISIONED_ID
    forward = cfn_event(
        "Update", on_demand_props, PhysicalResourceId=PROVISIONED_ID, OldResourceProperties=provisioned_props
    )
    assert registers(handler, monkeypatch, forward) == ON_DEMAND_ID
    rollback = cfn_event(
        "Update", provisioned_props, PhysicalResourceId=ON_DEMAND_ID, OldResourceProperties=on_demand_props
    )
    assert registers(handler, monkeypatch, rollback) == PROVISIONED_ID
    # Cleanup: the Delete of the on_demand id. A run of the restored definition (started before the
    # update, hours into its customization job) and one started in between with the on_demand one.
    runs = RecordedExecutions({execution_arn("weekly"): "provisioned", execution_arn("between"): "on_demand"})
    monkeypatch.setattr(handler, "bedrock_client", lambda: bedrock)
    monkeypatch.setattr(handler, "stepfunctions_client", lambda: runs)
    deployments(stub)  # only the deployment is looked for; a Provisioned Throughput call would fail here
    response = handler.on_event(
        cfn_event("Delete", on_demand_props, PhysicalResourceId=ON_DEMAND_ID), FakeLambdaContext()
    )
    assert response["PhysicalResourceId"] == ON_DEMAND_ID
    assert response["Data"]["ProvisionedThroughput"] == "kept"
    assert runs.stopped == [execution_arn("between")]


def test_a_completed_switch_to_on_demand_deletes_the_old_throughput_only(handler, monkeypatch, bedrock, stub):
    runs = RecordedExecutions({execution_arn("old"): "provisioned", execution_arn("new"): "on_demand"})
    monkeypatch.setattr(handler, "stepfunctions_client", lambda: runs)
    provisioned(stub, pt_summary(PT_NAME, OURS_PT))
    expect_pt_delete(stub)  # and no deployment call: the new serving is not this id's
    response = handler.on_event(
        cfn_event("Delete", properties(MACHINE, Serving="provisioned"), PhysicalResourceId=PROVISIONED_ID),
        FakeLambdaContext(),
    )
    assert response["Data"]["ProvisionedThroughput"] == "deleted"
    assert response["Data"]["Deployment"] == "kept"
    assert runs.stopped == [execution_arn("old")]


def test_the_physical_id_decides_what_a_delete_owns_not_the_properties(handler, monkeypatch, bedrock, stub):
    runs = RecordedExecutions({})
    monkeypatch.setattr(handler, "stepfunctions_client", lambda: runs)
    deployments(stub)
    response = handler.on_event(
        cfn_event("Delete", properties(MACHINE, Serving="provisioned"), PhysicalResourceId=ON_DEMAND_ID),
        FakeLambdaContext(),
    )
    assert response["Data"]["ProvisionedThroughput"] == "kept"


# The CDK provider framework answers a failed Create with this physical id and answers the Delete that
# follows itself (aws-cdk-lib 2.275, custom-resources/lib/provider-framework/runtime/cfn-response.js).
CREATE_FAILED_MARKER = "AWSCDK::CustomResourceProviderFramework::CREATE_FAILED"


@pytest.mark.parametrize("physical_id", [CREATE_FAILED_MARKER, "7d6c5b4a-0000-4000-8000-000000000000"])
def test_a_delete_after_a_failed_create_owns_nothing_and_calls_nothing(handler, monkeypatch, physical_id):
    monkeypatch.setattr(handler, "bedrock_client", _NoAwsCalls())
    monkeypatch.setattr(handler, "stepfunctions_client", _NoAwsCalls())
    response = handler.on_event(
        cfn_event("Delete", properties(MACHINE), PhysicalResourceId=physical_id), FakeLambdaContext()
    )
    assert response == {"PhysicalResourceId": physical_id, "Data": {"Action": "nothing-owned"}}


def test_a_delete_after_a_create_that_succeeded_in_a_failed_stack_finds_nothing_and_succeeds(
    handler, monkeypatch, stub
):
    monkeypatch.setattr(handler, "stepfunctions_client", lambda: RecordedExecutions({}))
    provisioned(stub)
    response = handler.on_event(
        cfn_event("Delete", properties(MACHINE, Serving="provisioned"), PhysicalResourceId=PROVISIONED_ID),
        FakeLambdaContext(),
    )
    assert response["Data"]["ProvisionedThroughput"] == "absent"


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"Serving": "reserved"}, "Serving"),
        ({"ProvisionedModelName": "bad name!"}, "ProvisionedModelName"),
        ({"StateMachineArn": "pipeline"}, "StateMachineArn"),
        ({"DeploymentNmae": "x"}, "DeploymentNmae"),  # misspelt: must not be ignored
    ],
)
def test_a_bad_property_is_named_before_any_aws_call(handler, monkeypatch, changes, named):
    monkeypatch.setattr(handler, "bedrock_client", _NoAwsCalls())
    monkeypatch.setattr(handler, "stepfunctions_client", _NoAwsCalls())
    machine = f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:pipeline"
    with pytest.raises(ValueError, match=rf"ResourceProperties\.{named}:"):
        handler.on_event(cfn_event("Create", properties(machine, **changes)), FakeLambdaContext())


def test_import_makes_no_aws_call_and_the_clients_are_built_once(monkeypatch):
    module, calls = import_counting_clients(monkeypatch, "lambdas.custom_model_serving.handler")
    assert calls == []
    assert module.bedrock_client() is module.bedrock_client()
    assert module.stepfunctions_client() is module.stepfunctions_client()
    assert calls == ["bedrock", "stepfunctions"]
