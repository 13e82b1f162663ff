"""Profile validation of the training-and-tuning sections: inference endpoints, training pipelines and
Bedrock customization. One test per rule; each error names the file, the field and what is allowed."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from genai_stack.config import ProfileError, load_profile, load_profiles

BASE = {
    "name": "team-a",
    "description": "A test profile.",
    "region": "us-east-1",
    "cost_allocation": {"tag_value": "team-a"},
    "budget": {"monthly_limit_usd": 100},
}
ENDPOINT = {
    "name": "support-llm",
    "instance_type": "ml.g6.2xlarge",
    "container": "lmi",
    "model_prefix": "models/support-llm/",
}
PIPELINE = {
    "name": "support-tuning",
    "source_key": "code/support-tuning/sourcedir.tar.gz",
    "entry_point": "train.py",
    "data_prefix": "training/support/",
    "instance_type": "ml.g5.2xlarge",
    "metric": {"name": "eval:loss", "regex": "eval_loss=([0-9.]+)", "threshold": 1.5},
}
CUSTOMIZATION = {
    "name": "nova-support",
    "base_model": "amazon.nova-micro-v1:0:128k",
    "data_prefix": "customization/nova-support/",
}


def load(tmp_path: Path, **sections):
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump({**BASE, **sections}))
    return load_profile(str(path))


def error(tmp_path: Path, **sections) -> str:
    with pytest.raises(ProfileError) as caught:
        load(tmp_path, **sections)
    return str(caught.value)


def endpoint(**changes) -> dict:
    return {**copy.deepcopy(ENDPOINT), **changes}


def pipeline(**changes) -> dict:
    return {**copy.deepcopy(PIPELINE), **changes}


def test_a_full_training_profile_loads_with_defaults(tmp_path):
    profile = load(
        tmp_path,
        inference={"endpoints": [endpoint()]},
        training={"pipelines": [pipeline(deploy_to="support-llm")], "customizations": [CUSTOMIZATION]},
    )
    (loaded,) = profile.inference.endpoints
    assert (loaded.min_instances, loaded.max_instances, loaded.data_capture_percentage) == (1, 2, 20)
    assert loaded.monitoring_schedule is None  # Model Monitor is closed to new customers: opt-in only
    assert profile.inference.drift.schedule == "rate(1 hour)"  # our own drift job instead
    assert profile.training.pipelines[0].network_isolation is True
    assert profile.training.customizations[0].serving == "none"  # provisioned throughput only when asked


def test_endpoint_instance_types_come_from_the_table(tmp_path):
    message = error(tmp_path, inference={"endpoints": [endpoint(instance_type="ml.p5.48xlarge")]})
    assert (
        "inference.endpoints[0].instance_type: 'ml.p5.48xlarge' is not a known ml.g5, ml.g6 or ml.inf2"
        in message
    )
    assert "ml.inf2.xlarge" in message


def test_inferentia2_needs_the_neuron_container_and_the_reverse(tmp_path):
    message = error(tmp_path, inference={"endpoints": [endpoint(instance_type="ml.inf2.xlarge")]})
    assert (
        "inference.endpoints[0].container: 'lmi' does not run on ml.inf2.xlarge (neuron); use lmi-neuron"
        in message
    )
    message = error(tmp_path, inference={"endpoints": [endpoint(container="lmi-neuron")]})
    assert "'lmi-neuron' does not run on ml.g6.2xlarge (gpu); use lmi, tgi or diffusers" in message


def test_min_above_max_and_zero_instances_only_where_supported(tmp_path):
    message = error(tmp_path, inference={"endpoints": [endpoint(min_instances=3, max_instances=2)]})
    assert "inference.endpoints[0].min_instances: 3 is above max_instances (2)" in message
    message = error(tmp_path, inference={"endpoints": [endpoint(min_instances=0)]})
    assert "min_instances: is 0, which only inference components or asynchronous endpoints allow" in message
    assert load(tmp_path, inference={"endpoints": [endpoint(min_instances=0, inference_components=True)]})


def test_off_hours_only_on_endpoints_that_scale_to_zero(tmp_path):
    off_hours = {"stop": "0 20 * * MON-FRI", "start": "0 7 * * MON-FRI"}
    message = error(tmp_path, inference={"endpoints": [endpoint(off_hours=off_hours)]})
    assert "inference.endpoints[0].off_hours: needs an endpoint that can scale to zero" in message
    ok = load(tmp_path, inference={"endpoints": [endpoint(off_hours=off_hours, async_inference={})]})
    assert ok.inference.endpoints[0].async_inference.max_concurrent_invocations_per_instance == 1
    message = error(
        tmp_path, inference={"endpoints": [endpoint(inference_components=True, async_inference={})]}
    )
    assert "async_inference: cannot be combined with inference_components" in message


def test_endpoint_names_are_unique(tmp_path):
    message = error(tmp_path, inference={"endpoints": [endpoint(), endpoint()]})
    assert "inference.endpoints: names support-llm more than once" in message


def test_an_image_outside_its_regions_is_a_profile_error(tmp_path):
    neuron = endpoint(instance_type="ml.inf2.xlarge", container="lmi-neuron")
    message = error(tmp_path, region="us-west-1", inference={"endpoints": [neuron]})
    assert "inference.endpoints[0].container: the lmi-neuron image is not published in us-west-1" in message


def test_training_instance_types_spot_wait_and_the_metric_regex(tmp_path):
    message = error(tmp_path, training={"pipelines": [pipeline(instance_type="ml.m5.xlarge")]})
    assert "training.pipelines[0].instance_type: 'ml.m5.xlarge' is not a known training type" in message
    message = error(
        tmp_path, training={"pipelines": [pipeline(max_runtime_hours=10, spot={"max_wait_hours": 5})]}
    )
    assert "training.pipelines[0].spot.max_wait_hours: 5 is below max_runtime_hours (10)" in message
    bad_metric = {"name": "eval:loss", "regex": "eval_loss=[0-9.]+", "threshold": 1}
    message = error(tmp_path, training={"pipelines": [pipeline(metric=bad_metric)]})
    assert "needs exactly one capturing group" in message


def test_deploy_to_must_name_an_inference_endpoint(tmp_path):
    message = error(tmp_path, training={"pipelines": [pipeline(deploy_to="nowhere")]})
    expected = "'nowhere' is not an inference endpoint (none: add an inference section)"
    assert f"training.pipelines[0].deploy_to[0]: {expected}" in message
    message = error(
        tmp_path,
        inference={"endpoints": [endpoint()]},
        training={"pipelines": [pipeline(deploy_to="nowhere")]},
    )
    assert "'nowhere' is not an inference endpoint (support-llm)" in message


def test_customization_base_models_kinds_and_serving_by_region(tmp_path):
    message = error(
        tmp_path, training={"customizations": [{**CUSTOMIZATION, "base_model": "amazon.titan-x"}]}
    )
    assert (
        "training.customizations[0].base_model: 'amazon.titan-x' cannot be customized in us-east-1" in message
    )
    message = error(
        tmp_path, training={"customizations": [{**CUSTOMIZATION, "kind": "CONTINUED_PRE_TRAINING"}]}
    )
    assert (
        "training.customizations[0].kind: CONTINUED_PRE_TRAINING is not offered for amazon.nova-micro"
        in message
    )
    llama = {**CUSTOMIZATION, "base_model": "meta.llama3-1-8b-instruct-v1:0:128k", "serving": "on_demand"}
    message = error(tmp_path, region="us-west-2", training={"customizations": [llama]})
    assert (
        "training.customizations[0].serving: on_demand deployment of custom models is offered for" in message
    )
    assert load(
        tmp_path, region="us-west-2", training={"customizations": [{**llama, "serving": "provisioned"}]}
    )


def test_training_needs_something_and_unique_names(tmp_path):
    message = error(tmp_path, training={})
    assert "training: needs at least one of pipelines or customizations" in message
    message = error(
        tmp_path,
        training={
            "pipelines": [pipeline(name="same")],
            "customizations": [{**CUSTOMIZATION, "name": "same"}],
        },
    )
    assert "names same more than once" in message


def test_approved_models_roll_out_only_to_plain_real_time_endpoints(tmp_path):
    component = endpoint(inference_components=True)
    message = error(
        tmp_path,
        inference={"endpoints": [component]},
        training={"pipelines": [pipeline(deploy_to="support-llm")]},
    )
    assert "training.pipelines[0].deploy_to[0]: 'support-llm' is an inference-component endpoint" in message
    assert "the model is a property of the AWS::SageMaker::InferenceComponent" in message


def test_approved_models_roll_out_to_asynchronous_endpoints(tmp_path):
    queued = endpoint(async_inference={}, min_instances=0)
    profile = load(
        tmp_path,
        inference={"endpoints": [queued]},
        training={"pipelines": [pipeline(deploy_to="support-llm")]},
    )
    assert profile.training.pipelines[0].deploy_to == ("support-llm",)  # a single name: a list of one


def test_deploy_to_lists_several_endpoints_each_checked(tmp_path):
    endpoints = [
        endpoint(),
        endpoint(name="long-documents", async_inference={}, min_instances=0),
        endpoint(name="support-llm-inf2", inference_components=True),
    ]
    profile = load(
        tmp_path,
        inference={"endpoints": endpoints},
        training={"pipelines": [pipeline(deploy_to=["support-llm", "long-documents"])]},
    )
    assert profile.training.pipelines[0].deploy_to == ("support-llm", "long-documents")
    message = error(
        tmp_path,
        inference={"endpoints": endpoints},
        training={"pipelines": [pipeline(deploy_to=["support-llm", "support-llm-inf2", "nowhere"])]},
    )
    assert (
        "training.pipelines[0].deploy_to[1]: 'support-llm-inf2' is an inference-component endpoint" in message
    )
    assert "training.pipelines[0].deploy_to[2]: 'nowhere' is not an inference endpoint" in message
    assert "deploy_to[0]" not in message


def test_deploy_to_names_each_endpoint_once_and_one_pipeline_per_endpoint(tmp_path):
    message = error(tmp_path, training={"pipelines": [pipeline(deploy_to=["a-b", "a-b"])]})
    assert "training.pipelines[0].deploy_to: names 'a-b' more than once" in message
    message = error(
        tmp_path,
        inference={"endpoints": [endpoint()]},
        training={
            "pipelines": [
                pipeline(deploy_to=["support-llm"]),
                pipeline(name="other-tuning", deploy_to="support-llm"),
            ]
        },
    )
    assert "endpoint 'support-llm' is a deploy_to target of support-tuning, other-tuning" in message


def test_deploy_to_endpoints_share_the_registered_serving_container(tmp_path):
    message = error(
        tmp_path,
        inference={"endpoints": [endpoint(), endpoint(name="other", container="tgi")]},
        training={"pipelines": [pipeline(deploy_to=["support-llm", "other"])]},
    )
    assert "training.pipelines[0].deploy_to: endpoints with different containers (lmi, tgi)" in message


def test_job_names_derived_from_the_profile_stay_within_the_limit(tmp_path):
    long_name = "a" + "b" * 30
    message = error(
        tmp_path,
        name="team-" + "x" * 20,
        training={"pipelines": [pipeline(name=long_name)]},
    )
    assert f"training.pipelines[0].name: '{long_name}' makes" in message
    assert "longer than 50 characters" in message


# --------------------------------------------------------------------------------------------------
# Data capture and Model Monitor: what SageMaker accepts


def test_model_monitor_is_an_opt_in_that_needs_data_capture(tmp_path):
    hourly = "cron(0 * ? * * *)"
    opted_in = load(tmp_path, inference={"endpoints": [endpoint(monitoring_schedule=hourly)]})
    assert opted_in.inference.endpoints[0].monitoring_schedule == hourly
    message = error(
        tmp_path, inference={"endpoints": [endpoint(monitoring_schedule=hourly, data_capture_percentage=0)]}
    )
    assert (
        "inference.endpoints[0].monitoring_schedule: 'cron(0 * ? * * *)' needs data capture "
        "(data_capture_percentage above 0)" in message
    )


def test_inference_components_capture_nothing_by_default(tmp_path):
    profile = load(tmp_path, inference={"endpoints": [endpoint(inference_components=True, min_instances=0)]})
    assert profile.inference.endpoints[0].data_capture_percentage == 0


def test_data_capture_on_inference_components_is_refused_with_the_reason(tmp_path):
    components = endpoint(name="components", inference_components=True, data_capture_percentage=20)
    message = error(tmp_path, inference={"endpoints": [endpoint(), components]})
    assert (
        "inference.endpoints[1].data_capture_percentage: 20 is not supported with inference_components: "
        "true: SageMaker documents data capture per endpoint and production variant, not per inference "
        "component (model-monitor-data-capture-endpoint.html)" in message
    )


def test_model_monitor_on_inference_components_is_refused_with_the_reason(tmp_path):
    components = endpoint(inference_components=True, monitoring_schedule="cron(0 * ? * * *)")
    message = error(tmp_path, inference={"endpoints": [components]})
    assert (
        "inference.endpoints[0].monitoring_schedule: 'cron(0 * ? * * *)' is not supported with "
        "inference_components: true: Model Monitor supports only endpoints that host a single model "
        "(model-monitor.html)" in message
    )


def test_the_drift_job_can_be_tuned_or_turned_off(tmp_path):
    tuned = {"schedule": "rate(6 hours)", "window_hours": 6, "distance_threshold": 0.4}
    profile = load(tmp_path, inference={"endpoints": [endpoint()], "drift": tuned})
    assert (profile.inference.drift.window_hours, profile.inference.drift.distance_threshold) == (6, 0.4)
    assert load(tmp_path, inference={"endpoints": [endpoint()], "drift": None}).inference.drift is None
    message = error(tmp_path, inference={"endpoints": [endpoint()], "drift": {"window_hours": 48}})
    assert "inference.drift.window_hours: 48" in message


def test_no_builtin_profile_uses_model_monitor():
    """Model Monitor "is no longer open to new customers" (SageMaker developer guide, Data capture)."""
    for profile in load_profiles("all"):
        for settings in profile.inference.endpoints if profile.inference else ():
            assert settings.monitoring_schedule is None, f"{profile.name}: {settings.name}"


LLAMA = {"architecture": "llama-3.1-8b"}


def test_a_neuron_endpoint_needs_twice_the_weights_in_host_memory(tmp_path):
    small = endpoint(instance_type="ml.inf2.xlarge", container="lmi-neuron", model=LLAMA)
    message = error(tmp_path, inference={"endpoints": [small]})
    assert (
        "inference.endpoints[0].instance_type: 'ml.inf2.xlarge' has 16 GiB of host memory; Neuron compiles "
        "and loads the model under models/support-llm/ (16.1 GB of weights) through host memory" in message
    )
    assert "use ml.inf2.8xlarge (128 GiB) or larger" in message
    fits = endpoint(instance_type="ml.inf2.8xlarge", container="lmi-neuron", model=LLAMA)
    assert load(tmp_path, inference={"endpoints": [fits]}).inference.endpoints[0].model.size_gb > 16


def test_a_neuron_endpoint_sizes_the_kv_cache_of_its_compiled_batch(tmp_path):
    # LMI's default batch (32) x 4,096 tokens: 17.2 GB of KV cache on top of 16.1 GB of weights.
    batch = endpoint(instance_type="ml.inf2.8xlarge", container="lmi-neuron", model=LLAMA, max_num_seqs=32)
    message = error(tmp_path, inference={"endpoints": [batch]})
    assert "inference.endpoints[0].max_model_len: 4096 x max_num_seqs 32 needs 17.2 GB of KV cache" in message


def test_an_endpoint_max_model_len_fits_the_model_and_the_gpu(tmp_path):
    too_long = endpoint(model={"architecture": "mistral-7b-v0.3"}, max_model_len=65536)
    message = error(tmp_path, inference={"endpoints": [too_long]})
    assert (
        "inference.endpoints[0].max_model_len: 65536 is above the 32768 positions of mistral-7b-v0.3"
        in message
    )
    long_documents = endpoint(model=LLAMA, instance_type="ml.g5.2xlarge", max_model_len=32768)
    assert (
        load(tmp_path, inference={"endpoints": [long_documents]}).inference.endpoints[0].max_model_len
        == 32768
    )


def test_the_built_in_endpoints_name_their_model_and_long_documents_take_long_contracts():
    profile = load_profile("custom-model")
    assert all(e.model is not None for e in profile.inference.endpoints)
    by_name = {e.name: e for e in profile.inference.endpoints}
    assert by_name["long-documents"].max_model_len >= 32768  # ~24k words of contract plus the summary
    assert by_name["support-llm-inf2"].instance_type == "ml.inf2.8xlarge"
    hosted = load_profile("self-hosted").hosting.hosts
    assert all(h.model.architecture for h in hosted)


IMAGE_EVALUATION = {
    "entry_point": "evaluate.py",
    "holdout_prefix": "evaluation/brand/holdout/",
    "weights_prefix": "evaluation/brand/weights/",
    "instance_type": "ml.g5.2xlarge",
    "metrics": [
        {"name": "clip_score", "regex": "clip_score=([0-9.]+)", "threshold": 30, "goal": "maximize"},
        {"name": "fid", "regex": "fid=([0-9.]+)", "threshold": 60},
    ],
}


def test_an_image_pipeline_loads_with_its_evaluation(tmp_path):
    profile = load(
        tmp_path,
        training={"pipelines": [pipeline(image="huggingface-training", image_evaluation=IMAGE_EVALUATION)]},
    )
    evaluation = profile.training.pipelines[0].image_evaluation
    assert [m.name for m in evaluation.metrics] == ["clip_score", "fid"]
    assert evaluation.max_runtime_hours == 2


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"holdout_prefix": "training/support/holdout/"},
            "image_evaluation.holdout_prefix: 'training/support/holdout/' overlaps data_prefix "
            "'training/support/': the training job would read the held-out photos",
        ),
        (
            {"weights_prefix": "evaluation/brand/"},
            "weights_prefix: 'evaluation/brand/' overlaps holdout_prefix 'evaluation/brand/holdout/'",
        ),
        ({"instance_type": "ml.p9.xlarge"}, "instance_type: 'ml.p9.xlarge' is not a known training type"),
        (
            {"metrics": [IMAGE_EVALUATION["metrics"][0]] * 2},
            "metrics: names 'clip_score' more than once",
        ),
    ],
)
def test_a_wrong_image_evaluation_names_the_field(tmp_path, changes, message):
    evaluation = {**IMAGE_EVALUATION, **changes}
    assert message in error(tmp_path, training={"pipelines": [pipeline(image_evaluation=evaluation)]})


def test_image_evaluation_and_a_judge_gate_exclude_each_other(tmp_path):
    gate = {"set": "support-questions", "judge_metrics": ["correctness"], "thresholds": {"correctness": 0.5}}
    message = error(
        tmp_path,
        training={"pipelines": [pipeline(image_evaluation=IMAGE_EVALUATION, evaluation_gate=gate)]},
    )
    assert (
        "image_evaluation: cannot be combined with evaluation_gate (a judge scores text answers)" in message
    )


def test_a_diffusers_endpoint_is_not_sized_as_a_language_model_and_needs_a_gpu(tmp_path):
    llm = {"architecture": "llama-3.1-8b"}
    message = error(tmp_path, inference={"endpoints": [endpoint(container="diffusers", model=llm)]})
    assert "inference.endpoints[0].model: sizes a language model" in message
    message = error(
        tmp_path,
        inference={
            "endpoints": [endpoint(container="diffusers", model=None, instance_type="ml.inf2.xlarge")]
        },
    )
    assert "'diffusers' does not run on ml.inf2.xlarge (neuron); use lmi-neuron" in message


def imagery_bedrock(**batch) -> dict:
    return {
        "models": ["stability.sd3-5-large-v1:0"],
        "guardrail": {
            "tier": "STANDARD",
            "languages": ["en"],
            "mandatory": False,
            "blocked_input_message": "No.",
            "blocked_output_message": "No.",
            "content_filters": [{"type": "SEXUAL", "modalities": ["TEXT", "IMAGE"]}],
        },
        "image_batch": {"categories": {"sofa": "The sofa in a living room."}, **batch},
    }


def test_an_image_batch_loads_with_its_defaults(tmp_path):
    profile = load(tmp_path, region="us-west-2", bedrock=imagery_bedrock())
    batch = profile.bedrock.image_batch
    assert (batch.model, batch.strength, batch.max_concurrency) == ("stability.sd3-5-large-v1:0", 0.65, 4)
    assert (batch.input_prefix, batch.output_prefix) == ("batches/input/", "batches/output/")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"output_prefix": "batches/input/out/"},
            "bedrock.image_batch.output_prefix: 'batches/input/out/' overlaps input_prefix",
        ),
        ({"model": "stability.stable-image-core-v1:1"}, "has no image-to-image request here"),
        ({"strength": 1.5}, "bedrock.image_batch.strength"),
        ({"categories": {}}, "bedrock.image_batch.categories"),
    ],
)
def test_a_wrong_image_batch_names_the_field(tmp_path, change, message):
    assert message in error(tmp_path, region="us-west-2", bedrock=imagery_bedrock(**change))


def test_an_image_batch_needs_its_model_listed_and_a_guardrail_that_reads_images(tmp_path):
    bedrock = imagery_bedrock()
    bedrock["models"] = ["amazon.nova-lite-v1:0"]
    message = error(tmp_path, region="us-west-2", bedrock=bedrock)
    assert "bedrock.image_batch.model: 'stability.sd3-5-large-v1:0' is not listed under models" in message
    bedrock = imagery_bedrock()
    bedrock["guardrail"]["content_filters"] = [{"type": "SEXUAL"}]
    message = error(tmp_path, region="us-west-2", bedrock=bedrock)
    assert "bedrock.image_batch: needs a guardrail content filter whose modalities include IMAGE" in message
    bedrock = imagery_bedrock()
    del bedrock["guardrail"]
    message = error(tmp_path, region="us-west-2", bedrock=bedrock)
    assert "bedrock.image_batch: needs the guardrail" in message
