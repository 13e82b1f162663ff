"""product-imagery's SageMaker parts in the synthesized templates: the LoRA pipeline's state machine
(train -> evaluate the images -> evaluate -> register), the image evaluation job's request, and the
asynchronous diffusers endpoint that scales to zero and is pinned to zero off hours."""

from __future__ import annotations

import json
import re
from typing import Any

import botocore.session
from botocore.validate import ParamValidator

from genai_stack.catalog import image_uri
from tests.stacks.test_training_pipeline import flat as flat_named

PROFILE = "product-imagery"


def flat(value: Any) -> Any:
    """A template value with references written as REF (tests/stacks/test_training_pipeline.py's flat
    writes them <Name>)."""
    named = flat_named(value)
    if isinstance(named, str):
        return re.sub(r"<[^<>]+>", "REF", named)
    if isinstance(named, list):
        return [flat(item) for item in named]
    if isinstance(named, dict):
        return {key: flat(item) for key, item in named.items()}
    return named


def definition(synthesized) -> dict:
    (machine,) = [
        r for r in synthesized.resources(PROFILE, "Training", "AWS::StepFunctions::StateMachine").values()
    ]
    return json.loads(flat(machine["Properties"]["DefinitionString"]))


def test_the_pipeline_trains_scores_the_images_evaluates_then_registers(synthesized):
    states = definition(synthesized)["States"]
    path, name = [], "NameTheJob"
    while name != "Passed?":
        path.append(name)
        name = states[name]["Next"]
    assert path == ["NameTheJob", "Train", "EvaluateImages", "Evaluate"]
    choice = states["Passed?"]
    assert choice["Choices"] == [
        {"Variable": "$.evaluation.passed", "BooleanEquals": True, "Next": "Register"}
    ]
    assert choice["Default"] == "EvaluationFailed"
    assert states["EvaluateImages"]["Catch"][0]["Next"] == "PipelineFailed"


def test_the_image_evaluation_job_reads_the_candidate_the_held_out_set_and_the_weights(synthesized):
    states = definition(synthesized)["States"]
    task = states["EvaluateImages"]
    assert task["Resource"] == "arn:aws:states:::sagemaker:createTrainingJob.sync"
    assert task["ResultPath"] == "$.image_evaluation"
    parameters = task["Parameters"]
    assert parameters["TrainingJobName.$"] == "$.job.evaluation_name"
    names = states["NameTheJob"]["Parameters"]
    assert names["evaluation_name.$"] != names["name.$"]  # a second job name per execution
    assert "#images" in names["evaluation_name.$"]
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"] for c in parameters["InputDataConfig"]}
    assert set(channels) == {"holdout", "weights", "model", "code"}
    assert channels["model"]["S3Uri.$"] == "$.training.ModelArtifacts.S3ModelArtifacts"
    assert channels["holdout"]["S3Uri"] == "s3://REF/evaluation/brand-sdxl/holdout/"
    assert channels["weights"]["S3Uri"] == "s3://REF/evaluation/brand-sdxl/weights/"
    spec = parameters["AlgorithmSpecification"]
    assert spec["TrainingImage"] == image_uri("huggingface-training", "us-west-2")
    assert spec["MetricDefinitions"] == [
        {"Name": "clip_score", "Regex": "clip_score=([0-9.]+)"},
        {"Name": "fid", "Regex": "fid=([0-9.]+)"},
    ]
    assert parameters["HyperParameters"]["sagemaker_program"] == '"evaluate.py"'
    assert "rank" not in parameters["HyperParameters"]  # the training hyperparameters are the training's
    assert "EnableManagedSpotTraining" not in parameters
    assert "CheckpointConfig" not in parameters
    assert parameters["StoppingCondition"] == {"MaxRuntimeInSeconds": 7200}
    assert parameters["EnableNetworkIsolation"] is True
    # A valid CreateTrainingJob request once the execution's values are in place.
    request = {key.removesuffix(".$"): value for key, value in parameters.items()}
    request["TrainingJobName"] = "product-imagery-brand-sdxl-0123456789abcdef0123456789abcdef"
    request["RoleArn"] = "arn:aws:iam::123456789012:role/training"
    request["OutputDataConfig"]["KmsKeyId"] = "arn:aws:kms:us-west-2:123456789012:key/abc"
    for channel in request["InputDataConfig"]:
        source = channel["DataSource"]["S3DataSource"]
        source["S3Uri"] = source.pop("S3Uri.$", source.get("S3Uri"))
    model = botocore.session.get_session().get_service_model("sagemaker")
    report = ParamValidator().validate(request, model.operation_model("CreateTrainingJob").input_shape)
    assert not report.has_errors(), report.generate_report()


def test_the_evaluation_step_gets_the_image_job_and_every_threshold(synthesized):
    parameters = definition(synthesized)["States"]["Evaluate"]["Parameters"]
    assert parameters["images.$"] == "$.image_evaluation"
    assert parameters["image_rules"] == [
        {"name": "clip_score", "threshold": 30, "goal": "maximize"},
        {"name": "fid", "threshold": 60, "goal": "minimize"},
    ]


def test_the_training_role_reads_the_held_out_set_and_the_candidates(synthesized):
    policies = synthesized.resources(PROFILE, "Foundation", "AWS::IAM::Policy")
    (policy,) = [p for key, p in policies.items() if key.startswith("TrainingRolebrandsdxl")]
    found = {s["Sid"]: flat(s) for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert found["ListTheHeldOutSet"]["Condition"] == {
        "StringLike": {"s3:prefix": ["evaluation/brand-sdxl/holdout/*", "evaluation/brand-sdxl/weights/*"]}
    }
    assert found["ReadTheHeldOutSet"]["Action"] == "s3:GetObject"
    assert found["ReadTheCandidates"]["Resource"] == "REF/training/brand-sdxl/output/*"


def test_the_endpoint_runs_the_model_s_own_code_on_the_diffusers_image(synthesized):
    (model,) = synthesized.resources(PROFILE, "Inference", "AWS::SageMaker::Model").values()
    container = model["Properties"]["PrimaryContainer"]
    assert container["Image"] == image_uri("diffusers", "us-west-2")
    assert container["Environment"] == {
        "SAGEMAKER_PROGRAM": "inference.py",
        "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
        "SAGEMAKER_MODEL_SERVER_TIMEOUT": "60",  # minutes to multi-model-server: an hour
    }
    assert "HF_MODEL_ID" not in container["Environment"]  # nothing is fetched from the Hub
    assert model["Properties"]["EnableNetworkIsolation"] is True


def test_the_endpoint_scales_to_zero_and_is_pinned_there_off_hours(synthesized):
    targets = synthesized.resources(PROFILE, "Inference", "AWS::ApplicationAutoScaling::ScalableTarget")
    (target,) = [t["Properties"] for t in targets.values()]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (0, 2)
    actions = {a["ScheduledActionName"].split("OffHours")[-1][:5]: a for a in target["ScheduledActions"]}
    assert actions["Stop"]["ScalableTargetAction"] == {"MinCapacity": 0, "MaxCapacity": 0}
    assert actions["Start"]["ScalableTargetAction"] == {"MinCapacity": 0, "MaxCapacity": 2}
    assert actions["Stop"]["Timezone"] == "Asia/Hong_Kong"
    policies = synthesized.resources(PROFILE, "Inference", "AWS::ApplicationAutoScaling::ScalingPolicy")
    kinds = {p["Properties"]["PolicyType"]: p["Properties"] for p in policies.values()}
    tracking = kinds["TargetTrackingScaling"]["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["CustomizedMetricSpecification"]["MetricName"] == "ApproximateBacklogSizePerInstance"
    assert tracking["TargetValue"] == 4
    assert "StepScaling" in kinds  # from zero as soon as a request waits without capacity
    alarms = synthesized.resources(PROFILE, "Inference", "AWS::CloudWatch::Alarm")
    assert any(a["Properties"].get("MetricName") == "HasBacklogWithoutCapacity" for a in alarms.values())
    (config,) = synthesized.resources(PROFILE, "Inference", "AWS::SageMaker::EndpointConfig").values()
    client = config["Properties"]["AsyncInferenceConfig"]["ClientConfig"]
    assert client == {"MaxConcurrentInvocationsPerInstance": 1}


# --- the batch --------------------------------------------------------------------------------------


def batch_definition(synthesized) -> dict:
    machines = synthesized.resources(PROFILE, "Bedrock", "AWS::StepFunctions::StateMachine")
    (machine,) = [m for key, m in machines.items() if key.startswith("ImageBatch")]
    assert machine["Properties"]["StateMachineName"] == "product-imagery-batch"
    return json.loads(flat(machine["Properties"]["DefinitionString"]))


def test_the_batch_is_a_distributed_map_over_the_manifest_with_a_result_writer(synthesized):
    definition = batch_definition(synthesized)
    assert definition["StartAt"] == "Photos"
    photos = definition["States"]["Photos"]
    assert photos["Type"] == "Map"
    assert photos["End"] is True
    # Standard children: exactly once, and not cut off at Express's five minutes.
    assert photos["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    reader = photos["ItemReader"]
    assert reader["Resource"] == "arn:aws:states:::s3:getObject"
    assert reader["ReaderConfig"] == {"InputType": "JSONL"}
    assert reader["Parameters"] == {"Bucket": "REF", "Key.$": "States.Format('batches/input/{}', $.manifest)"}
    assert photos["ItemSelector"] == {"item.$": "$$.Map.Item.Value", "run.$": "$$.Execution.Name"}
    assert photos["ResultWriter"] == {
        "Resource": "arn:aws:states:::s3:putObject",
        "Parameters": {"Bucket": "REF", "Prefix": "batches/output/results/"},
    }
    assert (photos["MaxConcurrency"], photos["ToleratedFailurePercentage"]) == (4, 5)
    (task,) = photos["ItemProcessor"]["States"].values()
    assert task["Resource"] == "arn:aws:states:::lambda:invoke"
    assert task["OutputPath"] == "$.Payload"
    retried = [r["ErrorEquals"] for r in task["Retry"]]
    assert ["ModelBusy"] in retried
    assert not any("BadItem" in e or "ImageRefused" in e for e in retried)  # those fail the item at once


def test_the_worker_gets_the_categories_the_model_and_the_price(synthesized):
    functions = synthesized.resources(PROFILE, "Bedrock", "AWS::Lambda::Function")
    (worker,) = [f for key, f in functions.items() if key.startswith("ImageBatchWorker")]
    environment = worker["Properties"]["Environment"]["Variables"]
    batch = json.loads(flat(environment["BATCH"]))
    assert batch["model_id"] == "stability.sd3-5-large-v1:0"
    assert set(batch["categories"]) == {"sofa", "lamp", "kitchenware"}
    assert batch["strength"] == 0.7
    assert batch["price_per_image"] == 0.08
    assert (batch["input_prefix"], batch["output_prefix"]) == ("batches/input/", "batches/output/")
    assert worker["Properties"]["MemorySize"] == 1024


def test_the_spend_cap_stops_the_batch_worker_too(synthesized):
    """budget.stop_invocations attaches its deny policy to every role that invokes models."""
    (action,) = synthesized.resources(PROFILE, "Observability", "AWS::Budgets::BudgetsAction").values()
    roles = action["Properties"]["Definition"]["IamActionDefinition"]["Roles"]
    outputs = [role["Fn::GetStackOutput"]["OutputName"] for role in roles]
    assert any("ImageBatchWorkerRole" in name for name in outputs)
    assert any("GatewayHandlerRole" in name for name in outputs)


# --- the brand alias on the endpoint -------------------------------------------------------------


def gateway_config(synthesized) -> dict:
    functions = synthesized.resources(PROFILE, "Orchestration", "AWS::Lambda::Function")
    (gateway,) = [f for key, f in functions.items() if key.startswith("GatewayHandler")]
    return json.loads(flat(gateway["Properties"]["Environment"]["Variables"]["GATEWAY_CONFIG"]))


def test_the_brand_alias_queues_on_the_endpoint_and_falls_back_to_sd3_5_in_time(synthesized):
    brand = gateway_config(synthesized)["images"]["brand"]
    assert brand["endpoint"] == {
        "endpoint": "product-imagery-brand-sdxl",
        "bucket": "REF",
        "input_prefix": "async/product-imagery-brand-sdxl/input/gateway/",
        "key_id": "REF",
        "wait_seconds": 13.0,  # the 25 s deadline less 12 s for SD3.5 Large and the guardrail
    }
    assert (brand["fallback"], brand["fallback_price_per_image"]) == ("stability.sd3-5-large-v1:0", 0.08)


def test_the_gateway_may_queue_on_that_endpoint_and_read_its_answers_only(synthesized):
    policies = synthesized.resources(PROFILE, "Orchestration", "AWS::IAM::Policy")
    (policy,) = [p for key, p in policies.items() if key.startswith("GatewayHandlerRole")]
    found = {s.get("Sid"): flat(s) for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert found["QueueImageRequests"]["Action"] == "sagemaker:InvokeEndpointAsync"
    assert found["QueueImageRequests"]["Resource"].endswith(":endpoint/product-imagery-brand-sdxl")
    assert found["WriteImageRequests"]["Resource"] == "REF/async/product-imagery-brand-sdxl/input/gateway/*"
    assert found["FindImageAnswers"]["Condition"] == {
        "StringLike": {
            "s3:prefix": [
                "async/product-imagery-brand-sdxl/output/*",
                "async/product-imagery-brand-sdxl/failure/*",
            ]
        }
    }
    assert sorted(found["ReadImageAnswers"]["Resource"]) == [
        "REF/async/product-imagery-brand-sdxl/failure/*",
        "REF/async/product-imagery-brand-sdxl/output/*",
    ]
