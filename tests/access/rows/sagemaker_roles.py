"""SageMaker execution roles: what SageMaker does with the role of a model (endpoints, inference
components) and of a training job.

SageMaker developer guide, "How to use SageMaker AI execution roles", sections "CreateModel API:
Execution Role Permissions" and "CreateTrainingJob API: Execution Role Permissions":
https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html
- pull the container image: ecr:GetAuthorizationToken ("*"), ecr:BatchCheckLayerAvailability,
  ecr:GetDownloadUrlForLayer, ecr:BatchGetImage on the image's repository;
- read the model (S3Prefix: s3:ListBucket with s3:prefix, s3:GetObject under it) or the training
  channels, write the training output and checkpoints (s3:PutObject), through the bucket's key;
- logs: logs:CreateLogStream and logs:PutLogEvents on the streams of
  /aws/sagemaker/Endpoints/<endpoint> (stream <variant>/<instance-id>), /aws/sagemaker/InferenceComponents/<component> and
  /aws/sagemaker/TrainingJobs (stream <job>/algo-1-<epoch>) ("Log Amazon SageMaker AI events by
  using Amazon CloudWatch": https://docs.aws.amazon.com/sagemaker/latest/dg/logging-cloudwatch.html);
- cloudwatch:PutMetricData in the namespaces /aws/sagemaker/Endpoints,
  /aws/sagemaker/InferenceComponents and /aws/sagemaker/TrainingJobs ("Amazon SageMaker AI metrics
  in Amazon CloudWatch": https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html).
- OutputDataConfig.KmsKeyId: "the SageMaker execution role must include permissions to call
  kms:Encrypt" (API reference, OutputDataConfig:
  https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_OutputDataConfig.html).
- Data capture writes <DestinationS3Uri>/<endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl ("Capture
  data from real-time endpoint": https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture-endpoint.html);
  asynchronous inference reads the request's input object and writes S3OutputPath / S3FailurePath
  with the execution role ("Create an asynchronous inference endpoint", prerequisites:
  https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-create-endpoint-prerequisites.html).
- A batch transform (a training gate's candidate, with the endpoint's role) reads its input and
  writes its output with the model's execution role, and logs to /aws/sagemaker/TransformJobs
  (sagemaker-roles, "CreateTransformJob API: Execution Role Permissions").
- An endpoint config KmsKeyId encrypts the instance's storage volume: the grant SageMaker creates for
  the volume is for an AWS resource (kms:GrantIsForAWSResource; AWS KMS developer guide, condition
  keys: https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-grant-is-for-aws-resource).
"""

from __future__ import annotations

import json

from tests.access.deployment import Deployment, Role
from tests.access.rows import Call
from tests.access.rows.s3_objects import denied_object, get_object, list_objects, put_object
from tests.access.rows.service_resources import (
    ecr_repository,
    log_stream_arn,
    resources,
    s3_uri,
    write_log_rows,
)
from tests.access.rows.state_machine_roles import all_states, run_value, training_job_name

ENDPOINT_WHY = "SageMaker hosts the model with its execution role (sagemaker-roles, CreateModel API)"
TRAINING_WHY = "SageMaker runs the training job with its role (sagemaker-roles, CreateTrainingJob API)"
ECR_ACTIONS = ("ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage")
INSTANCE = "i-0123456789abcdef0"


def _image_rows(deployment: Deployment, image: str, why: str) -> list[Call]:
    repository = ecr_repository(deployment, image)
    return [
        Call("ecr:GetAuthorizationToken", "*", f"{why}: registry login; the action only works on '*'"),
        *(Call(action, repository, f"{why}: pull the image") for action in ECR_ACTIONS),
        Call(
            "ecr:BatchGetImage",
            repository.rsplit("/", 1)[0] + "/another-repository",
            "only the image's repository",
            expect="deny",
        ),
    ]


def _log_rows(deployment: Deployment, group: str, stream: str, why: str) -> list[Call]:
    # Only the stream-level actions: which ARN CloudWatch Logs evaluates for the group-level ones
    # (CreateLogGroup, DescribeLogStreams) is not documented unambiguously (the Service
    # Authorization Reference says log-group:NAME, the LogGroup.arn field says to use NAME:*).
    return write_log_rows(deployment, group, stream, why)


def _metrics(namespace: str, why: str) -> Call:
    return Call("cloudwatch:PutMetricData", "*", why, context={"cloudwatch:namespace": namespace})


def _prefix_rows(deployment: Deployment, uri: str, why: str) -> list[Call]:
    bucket_name, key = s3_uri(uri)
    if key.endswith("/"):
        return [
            *list_objects(deployment, bucket_name, key, f"{why}: list the S3 prefix"),
            *get_object(deployment, bucket_name, f"{key}config.json", f"{why}: read under the prefix"),
        ]
    return [
        *list_objects(deployment, bucket_name, key, f"{why}: list the S3 key"),
        *get_object(deployment, bucket_name, key, f"{why}: read the object"),
    ]


def endpoint_role(role: Role, deployment: Deployment) -> list[Call] | None:
    models = [
        r
        for r in resources(deployment, "AWS::SageMaker::Model")
        if r.properties.get("ExecutionRoleArn") == role.arn
    ]
    if not models:
        return None
    result: list[Call] = []
    for model in models:
        model_name = deployment.resolver.get_att(model.stack, model.logical_id, "ModelName")
        container = model.properties["PrimaryContainer"]
        result += _image_rows(deployment, container["Image"], ENDPOINT_WHY)
        source = (container.get("ModelDataSource") or {}).get("S3DataSource")
        if source:
            result += _prefix_rows(deployment, source["S3Uri"], f"{ENDPOINT_WHY}: the model")
            bucket_name, _ = s3_uri(source["S3Uri"])
            result.append(
                denied_object(
                    deployment,
                    "s3:GetObject",
                    bucket_name,
                    "models/another-model/config.json",
                    "not another model's weights",
                )
            )
        for endpoint, config, component in _hosting(deployment, model_name):
            why = f"{ENDPOINT_WHY}: endpoint {endpoint}"
            result += _log_rows(
                deployment, f"/aws/sagemaker/Endpoints/{endpoint}", f"AllTraffic/{INSTANCE}", why
            )
            result.append(_metrics("/aws/sagemaker/Endpoints", why))
            if component:
                result += _log_rows(
                    deployment,
                    f"/aws/sagemaker/InferenceComponents/{component}",
                    f"{component}/{INSTANCE}",
                    why,
                )
                result.append(_metrics("/aws/sagemaker/InferenceComponents", why))
            capture = config.get("DataCaptureConfig")
            if capture and capture.get("EnableCapture"):
                bucket_name, key = s3_uri(capture["DestinationS3Uri"].rstrip("/") + "/")
                result += put_object(
                    deployment,
                    bucket_name,
                    f"{key}{endpoint}/AllTraffic/2026/12/01/15/capture-0001.jsonl",
                    f"{why}: data capture (model-monitor-data-capture-endpoint)",
                )
                result.append(
                    denied_object(
                        deployment,
                        "s3:PutObject",
                        bucket_name,
                        f"{key}another-endpoint/AllTraffic/capture.jsonl",
                        "captures only under the endpoint's own prefix",
                    )
                )
            asynchronous = (config.get("AsyncInferenceConfig") or {}).get("OutputConfig")
            if asynchronous:
                bucket_name, output = s3_uri(asynchronous["S3OutputPath"])
                _, failure = s3_uri(asynchronous["S3FailurePath"])
                # The gateway puts its requests under input/gateway/, beside the outputs
                # (lambdas/gateway/images.py EndpointImages); other callers under input/.
                request = output.rstrip("/").rsplit("/", 1)[0] + "/input/gateway/request-0001.json"
                async_why = f"{why}: asynchronous inference (async-inference-create-endpoint-prerequisites)"
                result += get_object(deployment, bucket_name, request, async_why)
                result += put_object(deployment, bucket_name, f"{output}request-0001.out", async_why)
                result += put_object(deployment, bucket_name, f"{failure}request-0001-error.out", async_why)
            if config.get("KmsKeyId"):
                result.append(
                    Call(
                        "kms:CreateGrant",
                        config["KmsKeyId"],
                        f"{why}: the storage volume is encrypted with the config's key (conditions-kms)",
                        context={
                            "kms:GrantIsForAWSResource": True,
                            "kms:ViaService": f"sagemaker.{deployment.region}.amazonaws.com",
                        },
                    )
                )
    result += _candidate_rows(deployment, role)
    result += [
        Call(
            "cloudwatch:PutMetricData",
            "*",
            "only SageMaker's namespaces",
            context={"cloudwatch:namespace": "GenAiStack/Gateway"},
            expect="deny",
        ),
        Call(
            "logs:PutLogEvents",
            log_stream_arn(deployment, "/aws/sagemaker/Endpoints/another-endpoint", f"AllTraffic/{INSTANCE}"),
            "not another endpoint's logs",
            expect="deny",
        ),
    ]
    return result


def _candidate_rows(deployment: Deployment, role: Role) -> list[Call]:
    """A training gate's transform, run with this role (stacks/components/candidate_evaluation.py)."""
    why = "SageMaker runs the transform with the model's execution role (sagemaker-roles, CreateTransformJob API)"
    result: list[Call] = []
    for machine in resources(deployment, "AWS::StepFunctions::StateMachine"):
        states = all_states(json.loads(machine.properties["DefinitionString"])).values()
        tasks = [s for s in states if s.get("Type") == "Task"]
        if not any(
            t["Resource"].endswith(":sagemaker:createModel")
            and t["Parameters"].get("ExecutionRoleArn") == role.arn
            for t in tasks
        ):
            continue
        for task in (t for t in tasks if ":sagemaker:createTransformJob" in t["Resource"]):
            parameters = task["Parameters"]
            name = run_value(parameters["TransformJobName.$"])
            source = run_value(parameters["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri.$"])
            bucket_name, key = s3_uri(source)
            result += list_objects(deployment, bucket_name, key, f"{why}: the requests")
            result += get_object(deployment, bucket_name, key, f"{why}: the requests")
            out_bucket, out = s3_uri(run_value(parameters["TransformOutput"]["S3OutputPath.$"]))
            result += put_object(deployment, out_bucket, f"{out}requests.jsonl.out", f"{why}: the answers")
            result += _log_rows(
                deployment, "/aws/sagemaker/TransformJobs", f"{name}/{INSTANCE}-1765000000", why
            )
            result.append(_metrics("/aws/sagemaker/TransformJobs", why))
            result += [
                denied_object(
                    deployment, "s3:PutObject", out_bucket, "evaluation/accepted/x.json", "not the baselines"
                ),
                denied_object(
                    deployment, "s3:GetObject", bucket_name, "evaluation/latest/x.json", "only the requests"
                ),
            ]
    return result


def _hosting(deployment: Deployment, model_name: str) -> list[tuple[str, dict, str | None]]:
    """(endpoint name, endpoint config properties, inference component name or None)."""
    configs = {
        deployment.resolver.get_att(r.stack, r.logical_id, "EndpointConfigName"): r.properties
        for r in resources(deployment, "AWS::SageMaker::EndpointConfig")
    }
    endpoints = {
        r.properties["EndpointName"]: configs[r.properties["EndpointConfigName"]]
        for r in resources(deployment, "AWS::SageMaker::Endpoint")
    }
    found = [
        (name, config, None)
        for name, config in endpoints.items()
        if any(v.get("ModelName") == model_name for v in config["ProductionVariants"])
    ]
    found += [
        (
            r.properties["EndpointName"],
            endpoints[r.properties["EndpointName"]],
            r.properties["InferenceComponentName"],
        )
        for r in resources(deployment, "AWS::SageMaker::InferenceComponent")
        if r.properties["Specification"].get("ModelName") == model_name
    ]
    return found


def _training_tasks(deployment: Deployment) -> list[tuple[dict, dict]]:
    """(definition, parameters) of every createTrainingJob task of the deployment's state machines."""
    tasks = []
    for machine in resources(deployment, "AWS::StepFunctions::StateMachine"):
        definition = json.loads(machine.properties["DefinitionString"])
        for state in definition["States"].values():
            if state.get("Type") == "Task" and ":sagemaker:createTrainingJob" in state.get("Resource", ""):
                tasks.append((definition, state["Parameters"]))
    return tasks


def _channel_uri(definition: dict, source: dict) -> str:
    """A channel's S3 URI; `$.training.ModelArtifacts.S3ModelArtifacts` (an image evaluation's model
    channel) is the model.tar.gz the Train state's job writes under its S3OutputPath."""
    if "S3Uri" in source:
        return source["S3Uri"]
    assert source["S3Uri.$"] == "$.training.ModelArtifacts.S3ModelArtifacts", source
    train = next(s for s in definition["States"].values() if s.get("ResultPath") == "$.training")
    job = training_job_name(definition, train["Parameters"])
    return f"{train['Parameters']['OutputDataConfig']['S3OutputPath']}{job}/output/model.tar.gz"


def training_role(role: Role, deployment: Deployment) -> list[Call] | None:
    tasks = [(d, t) for d, t in _training_tasks(deployment) if t.get("RoleArn") == role.arn]
    if not tasks:
        return None
    result: list[Call] = []
    for definition, task in tasks:
        job = training_job_name(definition, task)
        result += _image_rows(deployment, task["AlgorithmSpecification"]["TrainingImage"], TRAINING_WHY)
        for channel in task["InputDataConfig"]:
            result += _prefix_rows(
                deployment,
                _channel_uri(definition, channel["DataSource"]["S3DataSource"]),
                f"{TRAINING_WHY}: channel {channel['ChannelName']}",
            )
        output = task["OutputDataConfig"]
        bucket_name, prefix = s3_uri(output["S3OutputPath"])
        result += put_object(
            deployment, bucket_name, f"{prefix}{job}/output/model.tar.gz", f"{TRAINING_WHY}: the model"
        )
        if output.get("KmsKeyId"):
            result.append(
                Call(
                    "kms:Encrypt",
                    output["KmsKeyId"],
                    f"{TRAINING_WHY}: OutputDataConfig.KmsKeyId (API_OutputDataConfig)",
                )
            )
        checkpoints = task.get("CheckpointConfig", {}).get("S3Uri.$") or task.get("CheckpointConfig", {}).get(
            "S3Uri"
        )
        if checkpoints:
            # States.Format('s3://bucket/prefix/{}/', $.job.name): the job's own checkpoint prefix.
            uri = (
                checkpoints.split("'")[1].replace("{}", job)
                if checkpoints.startswith("States.")
                else checkpoints
            )
            bucket_name, key = s3_uri(uri)
            why = f"{TRAINING_WHY}: checkpoints (model-checkpoints: https://docs.aws.amazon.com/sagemaker/latest/dg/model-checkpoints.html)"
            result += list_objects(deployment, bucket_name, key, why)
            result += get_object(deployment, bucket_name, f"{key}checkpoint-100/model.safetensors", why)
            result += put_object(deployment, bucket_name, f"{key}checkpoint-100/model.safetensors", why)
        result += _log_rows(
            deployment, "/aws/sagemaker/TrainingJobs", f"{job}/algo-1-1764601200", TRAINING_WHY
        )
        result.append(_metrics("/aws/sagemaker/TrainingJobs", TRAINING_WHY))
        data_bucket, data_key = s3_uri(task["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"])
        result += [
            denied_object(
                deployment,
                "s3:GetObject",
                data_bucket,
                "training/another-pipeline/train.jsonl",
                "not another pipeline's data",
            ),
            denied_object(
                deployment,
                "s3:PutObject",
                data_bucket,
                f"{data_key}train.jsonl",
                "the training data is read-only",
            ),
            Call(
                "cloudwatch:PutMetricData",
                "*",
                "only the training namespace",
                context={"cloudwatch:namespace": "/aws/sagemaker/Endpoints"},
                expect="deny",
            ),
        ]
    return result


BUILDERS = (endpoint_role, training_role)
