"""The evaluation runs of managed-api as synthesized (stacks/components/model_evaluation.py): the
state machine's definition (each job's CreateEvaluationJob as the profile asks for it, the wait loop,
the collection and the report), and the triggers (schedule, and the stack's own deployments with the
jobs' digests, so a prompt or guardrail change changes what a deployment re-runs)."""

from __future__ import annotations

import json

import pytest
from botocore.stub import Stubber

from genai_stack.components.model_evaluation import MIN_TRAFFIC_ROWS
from genai_stack.config import load_profile
from genai_stack.planning.evaluation import own_responses_source, run_jobs
from tests.access.rows.state_machine_roles import all_states, run_value
from tests.support.stubs import offline_client

PROFILE = "managed-api"


@pytest.fixture(scope="module")
def bedrock(synthesized) -> dict:
    return synthesized.template(PROFILE, "Bedrock")["Resources"]


@pytest.fixture(scope="module")
def definition(bedrock) -> dict:
    (machine,) = [
        r
        for i, r in bedrock.items()
        if r["Type"] == "AWS::StepFunctions::StateMachine" and i.startswith("Evaluation")
    ]
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    # Tokens (ARNs, bucket names) as placeholders: the structure is what is asserted here; the access
    # checks resolve the same definition to names (tests/access/rows/evaluation_role.py).
    text = "".join(p if isinstance(p, str) else "TOKEN" for p in parts)
    return json.loads(text)


@pytest.fixture(scope="module")
def states(definition) -> dict[str, dict]:
    return all_states(definition)


def camel(value):
    """The SDK integration's PascalCase parameters back in botocore's member names."""
    if isinstance(value, dict):
        return {k[:1].lower() + k[1:]: camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camel(v) for v in value]
    return value


def filled(parameters: dict) -> dict:
    """`Key.$` paths as a run fills them (state_machine_roles.run_value), tokens as placeholders."""
    result = {}
    for key, value in parameters.items():
        if isinstance(value, dict):
            result[key] = filled(value)
        elif isinstance(value, list):
            result[key] = [filled(v) if isinstance(v, dict) else v for v in value]
        elif key.endswith(".$"):
            result[key[:-2]] = run_value(value)
        else:
            result[key] = value
    return result


def test_every_planned_job_is_created_as_the_profile_asks(states):
    jobs = run_jobs(load_profile(PROFILE))
    # copy-quality and copy-traffic for each of copywriter's two models, facts-rag, facts-retrieval
    assert sorted(j.planned.kind for j in jobs) == ["knowledge_base"] * 2 + ["model"] * 2 + ["traffic"] * 2
    for job in jobs:
        create = states[f"Create {job.key}"]
        assert create["Resource"].endswith(":states:::aws-sdk:bedrock:createEvaluationJob")
        parameters = create["Parameters"]
        automated = parameters["EvaluationConfig"]["Automated"]
        (config,) = automated["DatasetMetricConfigs"]
        assert config["MetricNames"] == list(job.planned.metrics)
        judges = (automated.get("EvaluatorModelConfig") or {}).get("BedrockEvaluatorModels", [])
        assert [j["ModelIdentifier"] for j in judges] == ([job.planned.judge] if job.planned.judge else [])
        assert parameters["JobName.$"].startswith(f"States.Format('{job.job_name_prefix}-{{}}'")
        assert parameters["JobTags"] == [{"Key": "genai-stack:cost-center", "Value": "marketing-genai"}]
        if job.planned.kind == "model":
            assert parameters["ApplicationType"] == "ModelEvaluation"
            assert config["TaskType"] == job.planned.task
            (model,) = parameters["InferenceConfig"]["Models"]
            assert set(model) == {"BedrockModel"}
        elif job.planned.kind == "traffic":
            # Bedrock scores the sampled answers; it invokes only the judge.
            assert parameters["ApplicationType"] == "ModelEvaluation"
            assert parameters["InferenceConfig"]["Models"] == [
                {
                    "PrecomputedInferenceSource": {
                        "InferenceSourceIdentifier": own_responses_source(job.planned)
                    }
                }
            ]
            assert judges
        else:
            assert parameters["ApplicationType"] == "RagEvaluation"
            (rag,) = parameters["InferenceConfig"]["RagConfigs"]
            generate = rag["KnowledgeBaseConfig"].get("RetrieveAndGenerateConfig")
            assert (generate is not None) == (job.planned.generator is not None)
            if generate:
                rail = generate["KnowledgeBaseConfiguration"]["GenerationConfiguration"][
                    "GuardrailConfiguration"
                ]
                assert set(rail) == {"GuardrailId", "GuardrailVersion"}


def test_the_sdk_parameters_are_a_request_bedrock_s_api_model_accepts(states):
    """Every member PascalCase (Step Functions' AWS SDK integrations), and, named back as botocore
    names them, a CreateEvaluationJob request the service model validates (botocore Stubber)."""
    client = offline_client("bedrock")
    with Stubber(client) as stubber:
        for name, state in states.items():
            if not name.startswith("Create "):
                continue
            request = camel(filled(state["Parameters"]))
            stubber.add_response(
                "create_evaluation_job",
                {"jobArn": "arn:aws:bedrock:us-east-1:123456789012:evaluation-job/abcd1234efgh"},
                request,
            )
            client.create_evaluation_job(**request)
        stubber.assert_no_pending_responses()


def test_each_job_waits_while_bedrock_runs_it_then_is_collected(states):
    for job in run_jobs(load_profile(PROFILE)):
        key = job.key
        assert states[f"Create {key}"]["Next"] == f"Wait {key}"
        assert states[f"Wait {key}"] == {"Type": "Wait", "Seconds": 300, "Next": f"Check {key}"}
        check = states[f"Check {key}"]
        assert check["Resource"].endswith(":states:::aws-sdk:bedrock:getEvaluationJob")
        assert check["Parameters"] == {"JobIdentifier.$": "$.job.arn"}
        running = states[f"Running {key}?"]
        (choice,) = running["Choices"]
        assert {c["StringEquals"] for c in choice["Or"]} == {"InProgress", "Stopping"}
        assert choice["Next"] == f"Wait {key}"
        assert running["Default"] == f"Collect {key}"
        collect = states[f"Collect {key}"]
        assert collect["Parameters"]["action"] == "collect"
        assert collect["Parameters"]["job"]["key"] == key
        assert collect["Parameters"]["job"]["tolerance"] == 0.05
        assert collect["Parameters"]["check.$"] == "$.check"
        first = "Sample" if job.planned.kind == "traffic" else "Copy"
        for state in (first, "Create", "Check", "Collect"):  # any failure ends the branch with a status
            assert states[f"{state} {key}"]["Catch"][0]["ErrorEquals"] == ["States.ALL"]
        selected = states[f"Selected {key}?"]["Choices"][0]
        assert selected["Variable"] == f"$.run.selected.{key}"
        assert selected["Next"] == f"{first} {key}"


def test_a_traffic_job_samples_the_logs_of_its_target_and_scores_only_enough_rows(states):
    jobs = [j for j in run_jobs(load_profile(PROFILE)) if j.planned.kind == "traffic"]
    assert jobs
    for job in jobs:
        key = job.key
        sample = states[f"Sample {key}"]
        parameters = sample["Parameters"]
        assert parameters["action"] == "sample"
        assert parameters["job"]["sample"] == 100
        assert parameters["job"]["days"] == 7
        assert parameters["job"]["label"] == own_responses_source(job.planned)
        assert len(parameters["job"]["identifiers"]) == 1  # the target's application inference profile
        assert len(parameters["job"]["excluded_roles"]) == 1  # the evaluation jobs' role
        assert set(parameters["guardrail"]) == {"id", "version"}
        assert sample["Next"] == f"Enough {key}?"
        (enough,) = states[f"Enough {key}?"]["Choices"]
        assert enough == {
            "Variable": "$.sampled.rows",
            "NumericGreaterThanEquals": MIN_TRAFFIC_ROWS,
            "Next": f"Create {key}",
        }
        quiet = states[states[f"Enough {key}?"]["Default"]]
        assert quiet["Type"] == "Pass"
        assert quiet["Parameters"]["status"] == "NoTraffic"
        collect = states[f"Collect {key}"]["Parameters"]["job"]
        assert collect["kind"] == "traffic"
        compared = next(
            j for j in run_jobs(load_profile(PROFILE)) if j.planned.name == job.planned.compare_with
        )
        assert collect["baseline_key"] == compared.key
    select = states["Select"]["Parameters"]["jobs"]
    assert {j["key"] for j in select if j["schedule_only"]} == {j.key for j in jobs}


def test_a_run_is_selected_reported_and_fails_when_a_job_did_not_complete(definition, states):
    assert definition["StartAt"] == "Accept?"
    assert states["Select"]["Parameters"]["action"] == "select"
    assert states["Jobs"]["Type"] == "Parallel"
    assert states["Jobs"]["Next"] == "Report"
    assert states["Report"]["Parameters"] == {"action": "report", "run.$": "$.run", "results.$": "$.results"}
    (failed,) = states["AllCompleted?"]["Choices"]
    assert failed["Variable"] == "$.report.failed[0]"
    assert states[failed["Next"]]["Type"] == "Fail"


def rules(bedrock) -> dict[str, dict]:
    return {
        i: r["Properties"]
        for i, r in bedrock.items()
        if r["Type"] == "AWS::Events::Rule" and i.startswith("Evaluation")
    }


def test_the_deployment_trigger_carries_the_jobs_digests_and_watches_this_stack(bedrock):
    found = rules(bedrock)
    (deployment,) = [p for i, p in found.items() if i.startswith("EvaluationDeployment")]
    assert deployment["EventPattern"] == {
        "source": ["aws.cloudformation"],
        "detail-type": ["CloudFormation Stack Status Change"],
        "resources": [{"Ref": "AWS::StackId"}],
        "detail": {"status-details": {"status": ["CREATE_COMPLETE", "UPDATE_COMPLETE"]}},
    }
    (target,) = deployment["Targets"]
    digests = {job.key: job.digest for job in run_jobs(load_profile(PROFILE))}
    assert json.loads(target["Input"]) == {"reason": "deployment", "digests": digests}
    (schedule,) = [p for i, p in found.items() if i.startswith("EvaluationSchedule")]
    assert schedule["ScheduleExpression"] == load_profile(PROFILE).evaluation.schedule


def _changed(**changes):
    profile = load_profile(PROFILE)
    bedrock = profile.bedrock
    if "prompt" in changes:
        prompts = []
        for prompt in bedrock.prompts:  # the template's text, read from its file (a private attribute)
            edited = prompt.model_copy()
            edited._text = prompt.text + changes["prompt"]
            prompts.append(edited)
        bedrock = bedrock.model_copy(update={"prompts": prompts})
    if "guardrail" in changes:
        bedrock = bedrock.model_copy(
            update={
                "guardrail": bedrock.guardrail.model_copy(
                    update={"blocked_input_message": changes["guardrail"]}
                )
            }
        )
    return {job.key: job.digest for job in run_jobs(profile.model_copy(update={"bedrock": bedrock}))}


def test_a_prompt_change_re_runs_its_jobs_and_a_guardrail_change_every_job():
    """The trigger's input is these digests (test above): what a change does to them is what the
    deployment re-runs (lambdas/evaluation/runs.py select)."""
    before = {job.key: job.digest for job in run_jobs(load_profile(PROFILE))}
    prompt = _changed(prompt="\nKeep it under 50 words.")
    assert {k for k in before if before[k] != prompt[k]} == {
        k for k in before if k.startswith("copy_quality")
    }
    guardrail = _changed(guardrail="Sorry, I cannot help with that request.")
    # Traffic jobs run on the schedule only (their Select entry is schedule_only, test above).
    reviewed = {j.key for j in run_jobs(load_profile(PROFILE)) if j.planned.kind != "traffic"}
    assert {k for k in before if before[k] != guardrail[k]} == reviewed
