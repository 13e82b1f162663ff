"""What OUR code EMITS, captured by running it: one small exercise per emitting function.

Each exercise imports the function's handler afresh inside exactly the environment the template gives
that function (its resolved Environment.Variables, plus the variables the Lambda runtime sets; every
other POWERTOOLS_* variable removed), drives the code path that publishes metrics with stubbed AWS
clients, and captures what is published:
- embedded metric format (Powertools Metrics prints `{"_aws": {"CloudWatchMetrics": [...]}}` to
  stdout; CloudWatch "Specification: Embedded metric format":
  https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html):
  every (namespace, metric, dimension set) of every document, with the document's dimension values;
- PutMetricData calls (the drift monitor), through a recording client.
Powertools reads POWERTOOLS_SERVICE_NAME when a metrics object is built and then adds a `service`
dimension; unit tests that do not set the variable miss it, which is why the environment here is
the template's.

The model hosts' CloudWatch agent is read from the configuration file their user data writes (the
resolved launch template): the agent names a plugin's measurement `<plugin>_<measurement>` (`nvidia_smi_`
for nvidia_gpu) and publishes each `aggregation_dimensions` set as its own series, besides the
per-instance series with `host` and the plugin's dimensions ("Manually create or edit the CloudWatch
agent configuration file":
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch-Agent-Configuration-File-Details.html;
"Collect NVIDIA GPU metrics":
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch-Agent-NVIDIA-GPU.html);
a measurement listed in its plugin's `drop_original_metrics` publishes only the aggregated sets.

Neuron hosts publish NeuronCore utilisation with our own reader of neuron-monitor's reports
(stacks/templates/neuron_metrics.py, embedded in the user data): it is run here as the host runs it,
with the namespace and host name of the user data, on a report shaped as the Neuron Monitor User Guide
shows it, and a fake `aws` that records the put-metric-data call.
"""

from __future__ import annotations

import base64
import contextlib
import importlib
import io
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from tests.access.deployment import Deployment, Function
from tests.signals.readers import Identity

ACCOUNT = "123456789012"


@dataclass(frozen=True)
class Emitted:
    identity: Identity
    emitter: str  # who publishes it (function path or host fleet) and how


# ----------------------------------------------------------------------------------- environment
@contextlib.contextmanager
def lambda_environment(function: Function, region: str) -> Iterator[None]:
    """Exactly the function's template variables (plus what Lambda's runtime sets: "Defined runtime
    environment variables", https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html)."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith("POWERTOOLS_"):
            del os.environ[name]
    os.environ.update({key: str(value) for key, value in function.environment.items()})
    os.environ.update(
        {
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_LAMBDA_FUNCTION_NAME": function.name,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
    )
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def fresh_import(module_name: str) -> Iterator[Any]:
    """The module imported anew (its cold-start code reads this environment); the session's copy is
    put back afterwards."""
    saved = sys.modules.pop(module_name, None)
    try:
        yield importlib.import_module(module_name)
    finally:
        if saved is not None:
            sys.modules[module_name] = saved
        else:
            sys.modules.pop(module_name, None)


@contextlib.contextmanager
def patched(target: Any, **values: Any) -> Iterator[None]:
    old = {name: getattr(target, name) for name in values}
    for name, value in values.items():
        setattr(target, name, value)
    try:
        yield
    finally:
        for name, value in old.items():
            setattr(target, name, value)


def reset_powertools_metrics() -> None:
    """Powertools' `Metrics` keeps metrics, dimensions and metadata at class level across instances."""
    from aws_lambda_powertools.metrics import Metrics

    metrics = Metrics()
    metrics.clear_metrics()
    metrics.clear_default_dimensions()


def emf_identities(stdout: str) -> list[Identity]:
    found = []
    for line in stdout.splitlines():
        line = line.strip()
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            for dimension_set in directive["Dimensions"]:
                values = {name: document[name] for name in dimension_set}
                for metric in directive["Metrics"]:
                    found.append(Identity.of(directive["Namespace"], metric["Name"], values))
    return found


class LambdaContext:
    function_name = "exercise"
    memory_limit_in_mb = 256
    invoked_function_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:exercise"
    aws_request_id = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


class RecordingCloudWatch:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def put_metric_data(self, **kwargs: Any) -> dict:
        self.calls.append(kwargs)
        return {}

    def identities(self) -> list[Identity]:
        return [
            Identity.of(
                call["Namespace"], datum["MetricName"], {d["Name"]: d["Value"] for d in datum["Dimensions"]}
            )
            for call in self.calls
            for datum in call["MetricData"]
        ]


# ------------------------------------------------------------------------------------- exercises
def exercise_kb_ingestion(module: Any, function: Function, deployment: Deployment) -> None:
    """The scheduled `check`: IngestionJobFailed per knowledge base (the latest job failed)."""
    with patched(module, bedrock_agent=lambda: None, latest_job_failed=lambda client, target: True):
        module.on_event({"action": "check"}, LambdaContext())


def exercise_model_deployer(module: Any, function: Function, deployment: Deployment) -> None:
    """An approval rolled to every endpoint of its group (ModelDeployed), then a failed rollout of
    each endpoint (RolloutFailed). SageMaker itself is stubbed out at logic.deploy_each."""
    for group, targets in module.DEPLOYMENTS.items():

        def deploy_each(client: Any, deployments: Any, arn: str, targets: Any = targets) -> Any:
            return [{"action": "updated", "endpoint": t.endpoint_name} for t in targets], [], []

        event = {
            "source": "aws.sagemaker",
            "detail-type": module.DETAIL_TYPE,
            "detail": {
                "ModelPackageGroupName": group,
                "ModelPackageArn": f"arn:aws:sagemaker:{deployment.region}:{ACCOUNT}:model-package/{group}/1",
                "ModelApprovalStatus": "Approved",
            },
        }
        with patched(module, sagemaker=lambda: None, deploy_each=deploy_each):
            module.approval(json.dumps(event))
        for target in targets:
            failed = {
                "source": "aws.sagemaker",
                "detail-type": module.ENDPOINT_DETAIL_TYPE,
                "detail": {
                    "EndpointName": target.endpoint_name,
                    "EndpointStatus": "Failed",
                    "FailureReason": "x",
                },
            }
            module.endpoint_state(json.dumps(failed))


def exercise_drift_monitor(module: Any, function: Function, deployment: Deployment) -> RecordingCloudWatch:
    """One scheduled run over enough exchanges, with a baseline, so every metric is published
    (distances, rates, lengths, the heartbeat). S3 reads are stubbed at logic level."""
    from lambdas.drift_monitor import logic

    minimum = module.SETTINGS.min_records
    model = "amazon.nova-lite-v1:0"  # a Bedrock model id as invocation logs record it

    def read_exchanges(s3: Any, target: Any, start: Any, end: Any) -> tuple[list, bool]:
        group = target.name if target.source == "sagemaker" else model
        return [logic.Exchange(group=group, prompt="hello 你好", answer="hi") for _ in range(minimum)], False

    def load_baseline(s3: Any, target: Any) -> dict:
        vector = logic.embed("something else")
        groups = [target.name] if target.source == "sagemaker" else [model, logic.ALL_MODELS]
        return {group: {"prompt": vector, "answer": vector} for group in groups}

    cloudwatch = RecordingCloudWatch()
    with (
        patched(
            logic, read_exchanges=read_exchanges, load_baseline=load_baseline, save_baseline=lambda *a: None
        ),
        patched(module, s3=lambda: None, cloudwatch=lambda: cloudwatch),
    ):
        module.on_event(
            {"source": "aws.events", "detail-type": "Scheduled Event", "time": "2026-11-23T11:20:00Z"},
            LambdaContext(),
        )
    return cloudwatch


def exercise_evaluation(module: Any, function: Function, deployment: Deployment) -> RecordingCloudWatch:
    """Each job's `collect` as the state machine sends it (the Collect states of the template's
    definition that invoke this function), over a completed job's output (the judge sample of
    tests/evaluation/samples, its categories replaced by every category and language of the job's
    set) and an accepted run it is compared with: Score per dimension set, and Regressions."""
    from pathlib import Path

    from genai_stack.config import load_profile
    from genai_stack.planning.evaluation import gate_jobs, run_jobs
    from tests.access.rows.service_resources import resources
    from tests.access.rows.state_machine_roles import all_states

    sample = json.loads(
        (Path(__file__).resolve().parents[1] / "evaluation/samples/judge_output.jsonl")
        .read_text()
        .splitlines()[0]
    )
    profile = load_profile(deployment.profile)
    datasets = {job.key: job.dataset for job in run_jobs(profile)}
    for gate in gate_jobs(profile).values():  # a gate's rows carry their category beside the request
        datasets[gate.key] = "".join(
            json.dumps({"category": json.loads(line)["genai_stack"]["category"]}) + "\n"
            for line in gate.requests.splitlines()
        )
    cloudwatch = RecordingCloudWatch()
    run = {"id": "20261206T030001Z-0123456789ab", "digests": {}}
    for machine in resources(deployment, "AWS::StepFunctions::StateMachine"):
        for state in all_states(json.loads(machine.properties["DefinitionString"])).values():
            if state.get("Resource") != function.arn or state["Parameters"].get("action") != "collect":
                continue
            job = state["Parameters"]["job"]
            lines = []
            for row in datasets[job["key"]].splitlines():
                category = json.loads(row).get("category", "general|en")
                scores = [{"metricName": m, "result": 0.5} for m in job["metrics"]]
                lines.append(
                    json.dumps(
                        {
                            **sample,
                            "inputRecord": {"category": category},
                            "automatedEvaluationResult": {"scores": scores},
                        }
                    )
                )
            with patched(
                sys.modules[module.collect.__module__],
                keys_under=lambda s3, place, prefix: [f"{prefix}x/y/z_output.jsonl"],
                load_json=lambda s3, place, key: {"overall": {}, "run": "earlier"},
                save=lambda *a, **k: None,
            ):
                module.collect(
                    _OutputOnly("\n".join(lines)),
                    cloudwatch,
                    module.PLACE,
                    profile=module.SETTINGS.profile,
                    namespace=module.SETTINGS.namespace,
                    run=run,
                    job={**job, "tolerance": 0.05},
                    check={"status": "Completed"},
                )
    return cloudwatch


class _OutputOnly:
    """An S3 client that answers every GetObject with one output file's text."""

    def __init__(self, text: str) -> None:
        self.text = text

    def get_object(self, **_: Any) -> dict:
        return {"Body": io.BytesIO(self.text.encode())}


def exercise_gateway(module: Any, function: Function, deployment: Deployment) -> None:
    """The per-request EMF documents the handler writes (handler.EmfMetrics, as on_event uses it), for
    every alias and target of the template's GATEWAY_CONFIG (image aliases included) and one tenant; a rating per chat alias
    when feedback is on; and a request that hits a bug of ours, through on_event (UnhandledErrors)."""
    from lambdas.gateway.local import event_for
    from lambdas.gateway.service import Usage

    config = json.loads(function.environment["GATEWAY_CONFIG"])
    routes = {**config.get("chat", {}), **{alias: [t] for alias, t in config.get("embeddings", {}).items()}}
    for alias, targets in routes.items():  # every alias and every target that may answer it
        for target in targets:
            name = (
                target.get("model")
                or target.get("endpoint")
                or target.get("host")
                or target.get("resource_name")
            )
            module.EmfMetrics().record(
                Usage(alias=alias, target=str(name), latency_ms=1.0), tenant="tenant-a"
            )

    for alias, image in config.get("images", {}).items():  # an image request of every target
        from lambdas.gateway.config import ImageAlias, image_targets

        for target in image_targets(ImageAlias.model_validate(image), lambda service: object()):
            module.EmfMetrics().record(
                Usage(alias=alias, target=target.name, latency_ms=1.0, cost_usd=target.price_per_image),
                tenant="tenant-a",
            )

    for alias in (config.get("semantic_cache") or {}).get("aliases", {}):  # a semantic cache hit
        from lambdas.gateway.semantic_cache import Probe

        module.EmfMetrics().record(
            Usage(alias=alias, target="semantic-cache", latency_ms=1.0), tenant="tenant-a"
        )
        hit = Probe(alias, "scope", "key", None, answer={"choices": [{}]}, similarity=0.97, saved_tokens=9)
        module.EmfMetrics().record_semantic(hit)
    for route in config.get("routes", {}):  # a request to every route (routing.py)
        module.EmfMetrics().record_route(route, large=True)
    if config.get("feedback"):  # a rating of an answer of every chat alias (POST /v1/feedback)
        from lambdas.gateway.feedback import Answered

        for alias, targets in config.get("chat", {}).items():
            name = targets[0].get("model") or targets[0].get("endpoint") or targets[0].get("host")
            module.EmfMetrics().record_rating(Answered("tenant-a", alias, str(name), "v1"), 1.0)

    def bug() -> Any:
        raise RuntimeError("a bug of ours")

    module.gateway = bug
    answer = module.on_event(event_for("GET", "/v1/models", {}, b""), LambdaContext())
    assert answer["statusCode"] == 500, answer


def exercise_image_batch(module: Any, function: Function, deployment: Deployment) -> None:
    """Three items through the handler: an image written (ImagesGenerated, EstimatedCost), one the
    guardrail refused (ImagesRefused) and a bad manifest line (BadItems). S3 and Bedrock are stubbed
    out at logic.process, whose own tests (tests/lambdas/test_image_batch.py) cover them."""
    from lambdas.image_batch.logic import BadItem, ImageRefused, Result

    settings = module.SETTINGS
    outcomes = [
        Result(
            "SKU-1",
            "sofa",
            "batches/input/a.png",
            "batches/output/images/run/SKU-1.png",
            0,
            settings.price_per_image,
        ),
        ImageRefused("SKU-2: the guardrail blocked the image"),
        BadItem("SKU-3: category 'bed' is not one of sofa"),
    ]

    def process(raw: Any, **_: Any) -> Any:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    with patched(module, process=process, _clients=lambda: (None, None)):
        for _ in range(3):
            with contextlib.suppress(BadItem, ImageRefused):
                module.on_event({"item": {}, "run": "run"}, LambdaContext())


EXERCISES: dict[str, Callable[[Any, Function, Deployment], Any]] = {
    "lambdas.kb_ingestion.handler.on_event": exercise_kb_ingestion,
    "lambdas.model_deployer.handler.handler": exercise_model_deployer,
    "lambdas.drift_monitor.handler.on_event": exercise_drift_monitor,
    "lambdas.evaluation.handler.on_event": exercise_evaluation,
    "lambdas.gateway.handler.on_event": exercise_gateway,
    "lambdas.image_batch.handler.on_event": exercise_image_batch,
}


def run_exercise(function: Function, deployment: Deployment) -> list[Emitted]:
    exercise = EXERCISES[function.handler]
    module_name = function.handler.rsplit(".", 1)[0]
    out = io.StringIO()
    reset_powertools_metrics()
    with (
        lambda_environment(function, deployment.region),
        fresh_import(module_name) as module,
        contextlib.redirect_stdout(out),
    ):
        result = exercise(module, function, deployment)
    reset_powertools_metrics()
    found = [Emitted(i, f"{function.path} (EMF)") for i in emf_identities(out.getvalue())]
    if isinstance(result, RecordingCloudWatch):
        found += [Emitted(i, f"{function.path} (PutMetricData)") for i in result.identities()]
    return found


# ----------------------------------------------------------------------------- CloudWatch agent
AGENT_PREFIX = {"mem": "mem_", "disk": "disk_", "nvidia_gpu": "nvidia_smi_", "cpu": "cpu_"}
AGENT_PLUGIN_DIMENSIONS = {"disk": ("device", "fstype", "path"), "nvidia_gpu": ("index", "name", "arch")}


def agent_config(user_data: str) -> dict | None:
    start = user_data.find("<<'AGENT_CONFIG'\n")
    if start < 0:
        return None
    start = user_data.index("\n", start) + 1
    return json.loads(user_data[start : user_data.index("\nAGENT_CONFIG", start)])


def agent_identities(config: dict) -> Iterator[Identity]:
    metrics = config["metrics"]
    namespace = metrics.get("namespace", "CWAgent")
    for plugin, settings in metrics["metrics_collected"].items():
        appended = settings.get("append_dimensions", {})
        dropped = set(settings.get("drop_original_metrics", []))
        for measurement in settings.get("measurement", []):
            name = (
                measurement
                if measurement.startswith(AGENT_PREFIX[plugin])
                else AGENT_PREFIX[plugin] + measurement
            )
            full = {"host": "ip-10-0-0-1.ec2.internal", **appended}
            full |= {d: f"<{d}>" for d in AGENT_PLUGIN_DIMENSIONS.get(plugin, ())}
            if not dropped & {name, measurement}:
                yield Identity.of(namespace, name, full)
            for names in metrics.get("aggregation_dimensions", []):
                if set(names) <= set(full):
                    yield Identity.of(namespace, name, {n: full[n] for n in names})


NEURON_REPORT = {
    "neuron_runtime_data": [
        {"report": {"neuroncore_counters": {"neuroncores_in_use": {"0": {"neuroncore_utilization": 42.0}}}}}
    ]
}


def _readonly(user_data: str, name: str) -> str:
    return re.search(rf'^readonly {name}="([^"]*)"$', user_data, re.M).group(1)


def neuron_metrics_identities(user_data: str) -> list[Identity]:
    """Run the user data's neuron_metrics.py as its systemd unit does, on one report; what it puts."""
    match = re.search(r"<<'NEURON_METRICS'\n(.*?)\nNEURON_METRICS\n", user_data, re.S)
    if match is None:
        return []
    with tempfile.TemporaryDirectory() as folder:
        script, calls, fake = (os.path.join(folder, n) for n in ("neuron_metrics.py", "calls", "aws"))
        with open(script, "w") as file:
            file.write(match.group(1))
        with open(fake, "w") as file:
            file.write(f'#!/bin/bash\nprintf "%s\\n" "$@" > {calls}\n')
        os.chmod(fake, 0o700)
        namespace, host = _readonly(user_data, "METRICS_NAMESPACE"), _readonly(user_data, "HOST_NAME")
        subprocess.run(  # noqa: S603 - the script of our own user data, with the tests' Python
            [sys.executable, script, namespace, host],
            input=json.dumps(NEURON_REPORT) + "\n",
            env={"PATH": f"{folder}:/usr/bin:/bin"},
            check=True,
            text=True,
        )
        with open(calls) as file:
            call = file.read().splitlines()
    arguments = dict(zip(call[2::2], call[3::2], strict=True))
    name, value = arguments["--dimensions"].split("=", 1)
    return [Identity.of(arguments["--namespace"], arguments["--metric-name"], {name: value})]


def host_emitters(deployment: Deployment) -> list[Emitted]:
    found = []
    for stack, template in deployment.templates.items():
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] != "AWS::EC2::LaunchTemplate":
                continue
            encoded = deployment.resolver.resolve(
                stack, resource["Properties"]["LaunchTemplateData"].get("UserData")
            )
            if not encoded:
                continue
            user_data = base64.b64decode(encoded).decode()
            config = agent_config(user_data)
            if config is None:
                continue
            path = resource.get("Metadata", {}).get("aws:cdk:path", logical_id)
            found += [Emitted(i, f"{path} (CloudWatch agent)") for i in agent_identities(config)]
            found += [Emitted(i, f"{path} (neuron_metrics.py)") for i in neuron_metrics_identities(user_data)]
    return found


def emitters_of(deployment: Deployment) -> list[Emitted]:
    found = host_emitters(deployment)
    for function in deployment.functions:
        if function.handler in EXERCISES:
            found += run_exercise(function, deployment)
    return found
