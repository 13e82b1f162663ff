"""custom-model's training gate as synthesized (stacks/components/candidate_evaluation.py): the
candidate answers the gate's set in support-llm's serving container (a batch transform), the judge
scores the answers (an own-responses evaluation job) and only a passing candidate is registered, with
the verdict in its metadata."""

from __future__ import annotations

import json
from itertools import pairwise

import pytest
from botocore.stub import Stubber

from genai_stack.catalog import image_uri
from genai_stack.components.candidate_evaluation import INPUT_FILTER
from genai_stack.components.endpoint_layout import container_environment
from genai_stack.config import load_profile
from genai_stack.planning.evaluation import gate_jobs, own_responses_source
from tests.access.rows.state_machine_roles import all_states
from tests.stacks.test_model_evaluation import camel, filled
from tests.support.stubs import offline_client

PROFILE = "custom-model"


@pytest.fixture(scope="module")
def definition(synthesized) -> dict:
    training = synthesized.template(PROFILE, "Training")["Resources"]
    (machine,) = [
        r
        for i, r in training.items()
        if r["Type"] == "AWS::StepFunctions::StateMachine" and i.startswith("Pipelinesupporttuning")
    ]
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    return json.loads("".join(p if isinstance(p, str) else "TOKEN" for p in parts))


@pytest.fixture(scope="module")
def states(definition) -> dict[str, dict]:
    return all_states(definition)


def test_a_gate_run_is_accepted_by_starting_the_pipeline_with_its_id(definition, states):
    assert definition["StartAt"] == "Accept?"
    (accept,) = states["Accept?"]["Choices"]
    assert accept == {"Variable": "$.accept", "IsPresent": True, "Next": "Accept"}
    assert states["Accept?"]["Default"] == "NameTheJob"
    assert states["Accept"]["Parameters"] == {"action": "accept", "run.$": "$.accept"}
    assert states[states["Accept"]["Next"]]["Type"] == "Succeed"


@pytest.fixture(scope="module")
def gate():
    return gate_jobs(load_profile(PROFILE))["support-tuning"]


def test_only_a_candidate_that_passed_the_gate_is_registered(states, gate):
    (passed,) = states["Passed?"]["Choices"]
    assert passed["Next"] == "Gate run"
    order = [
        "Gate run",
        "Copy requests",
        "Candidate model",
        "Answer",
        "Remove the candidate model",
        "Answers",
    ]
    for state, following in pairwise(order):
        assert states[state]["Next"] == following
    for state in order[:3]:
        assert states[state]["Catch"][0]["Next"] == "PipelineFailed"
    # A failed transform removes the candidate before the execution fails; a failed removal goes on.
    cleanup = states["Answer"]["Catch"][0]["Next"]
    assert states[cleanup]["Resource"].endswith(":sagemaker:deleteModel")
    assert states[cleanup]["Next"] == "PipelineFailed"
    assert states["Remove the candidate model"]["Catch"][0]["Next"] == "Answers"
    assert states["Verdict"]["Parameters"]["answers.$"] == "$.answers"
    (answered,) = states["Answered?"]["Choices"]
    assert answered == {"Variable": "$.answers.rows", "NumericGreaterThan": 0, "Next": f"Create {gate.key}"}
    assert states[states["Answered?"]["Default"]]["Type"] == "Fail"
    assert states[f"Running {gate.key}?"]["Default"] == f"Collect {gate.key}"
    assert states[f"Collect {gate.key}"]["Next"] == "Verdict"
    assert states["Verdict"]["Parameters"]["thresholds"] == {"Correctness": 0.6, "Harmfulness": 0.1}
    (verdict,) = states["Gate passed?"]["Choices"]
    assert verdict == {"Variable": "$.gate.passed", "BooleanEquals": True, "Next": "Gate metadata"}
    assert states["Gate passed?"]["Default"] == "GateFailed"
    assert states["GateFailed"] == {
        "Type": "Fail",
        "Comment": states["GateFailed"]["Comment"],
        "Error": "EvaluationGateFailed",
        "CausePath": "$.gate.reason",
    }
    assert states["Gate metadata"]["Next"] == "Register"
    assert states["Gate metadata"]["Parameters"]["merged.$"] == (
        "States.JsonMerge($.evaluation.customer_metadata, $.gate.customer_metadata, false)"
    )
    assert states["Register"]["Parameters"]["CustomerMetadataProperties.$"] == "$.metadata.merged"
    # A judge job that did not complete still reaches the verdict (which fails the gate with the reason).
    for ended in (f"NotCreated {gate.key}", f"Unchecked {gate.key}"):
        assert states[ended]["Next"] == "Verdict"


def test_the_candidate_answers_in_the_endpoint_s_container_with_the_endpoint_s_role(states):
    endpoint = next(e for e in load_profile(PROFILE).inference.endpoints if e.name == "support-llm")
    model = states["Candidate model"]["Parameters"]
    assert model["PrimaryContainer"]["Image"] == image_uri(endpoint.container, "us-east-1")
    assert model["PrimaryContainer"]["Environment"] == container_environment(endpoint)
    assert model["PrimaryContainer"]["ModelDataUrl.$"] == "$.evaluation.model_data_url"
    assert model["EnableNetworkIsolation"] is True
    assert model["ModelName.$"] == "States.Format('custom-model-support-tuning-g-{}', $.run.token)"
    answer = states["Answer"]
    assert answer["Resource"] == "arn:aws:states:::sagemaker:createTransformJob.sync"
    parameters = answer["Parameters"]
    assert parameters["ModelName.$"] == model["ModelName.$"]
    assert parameters["TransformResources"] == {"InstanceType": endpoint.instance_type, "InstanceCount": 1}
    assert parameters["TransformInput"]["SplitType"] == "Line"
    assert parameters["TransformOutput"]["AssembleWith"] == "Line"
    assert parameters["DataProcessing"] == {"InputFilter": INPUT_FILTER, "JoinSource": "Input"}
    assert states["Remove the candidate model"]["Parameters"] == {"ModelName.$": model["ModelName.$"]}


def test_the_requests_are_the_set_s_prompts_in_the_messages_format(gate):
    rows = load_profile(PROFILE).evaluation.set_named("support-questions").rows
    lines = [json.loads(line) for line in gate.requests.splitlines()]
    assert len(lines) == len(rows)
    for line, row in zip(lines, rows, strict=True):
        # What INPUT_FILTER sends the container: an OpenAI chat request the LMI and TGI messages API take.
        assert {k: line[k] for k in ("messages", "max_tokens", "temperature")} == {
            "messages": [{"role": "user", "content": row.prompt}],
            "max_tokens": 512,
            "temperature": 0,
        }
        assert line["genai_stack"]["reference"] == row.reference


def test_the_judge_job_is_a_request_bedrock_s_api_model_accepts(states, gate):
    create = states[f"Create {gate.key}"]
    parameters = create["Parameters"]
    assert parameters["InferenceConfig"]["Models"] == [
        {"PrecomputedInferenceSource": {"InferenceSourceIdentifier": own_responses_source(gate.planned)}}
    ]
    (config,) = parameters["EvaluationConfig"]["Automated"]["DatasetMetricConfigs"]
    assert config["MetricNames"] == ["Builtin.Correctness", "Builtin.Helpfulness", "Builtin.Harmfulness"]
    judges = parameters["EvaluationConfig"]["Automated"]["EvaluatorModelConfig"]["BedrockEvaluatorModels"]
    assert judges == [{"ModelIdentifier": "amazon.nova-micro-v1:0"}]
    client = offline_client("bedrock")
    with Stubber(client) as stubber:
        request = camel(filled(parameters))
        stubber.add_response(
            "create_evaluation_job",
            {"jobArn": "arn:aws:bedrock:us-east-1:123456789012:evaluation-job/abcd1234efgh"},
            request,
        )
        client.create_evaluation_job(**request)
