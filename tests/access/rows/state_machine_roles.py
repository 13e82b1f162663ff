"""Step Functions state machine roles (the calls each Task state makes with the role) and the
EventBridge rule roles that start a state machine.

- `arn:aws:states:::sagemaker:createTrainingJob.sync`: sagemaker:CreateTrainingJob,
  DescribeTrainingJob, StopTrainingJob (and ListTags) on the training job, iam:PassRole of the job's
  role with iam:PassedToService sagemaker.amazonaws.com, events:PutTargets, PutRule, DescribeRule on
  rule/StepFunctionsGetEventsForSageMakerTrainingJobsRule (Step Functions developer guide, "IAM
  policies for Amazon SageMaker": https://docs.aws.amazon.com/step-functions/latest/dg/sagemaker-iam.html).
- `arn:aws:states:::bedrock:createModelCustomizationJob.sync`: bedrock:CreateModelCustomizationJob,
  GetModelCustomizationJob, StopModelCustomizationJob, iam:PassRole of the customization role to
  bedrock.amazonaws.com (Step Functions developer guide, "IAM policies for Amazon Bedrock":
  https://docs.aws.amazon.com/step-functions/latest/dg/bedrock-iam.html); creating with JobTags /
  CustomModelTags also needs bedrock:TagResource ("Tagging Amazon Bedrock resources":
  https://docs.aws.amazon.com/bedrock/latest/userguide/tagging.html); a custom model encrypted with
  CustomModelKmsKeyId needs kms:Decrypt, GenerateDataKey, DescribeKey and CreateGrant for the role
  that creates the job, through Bedrock ("Encryption of custom models":
  https://docs.aws.amazon.com/bedrock/latest/userguide/encryption-custom-job.html).
- `arn:aws:states:::aws-sdk:<service>:<action>`: the IAM action of the API ("AWS SDK service
  integrations": https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html).
  s3:copyObject: s3:GetObject on the source, s3:PutObject on the copy (S3 API reference, CopyObject:
  https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html), and the keys of both buckets.
  bedrock:createEvaluationJob: bedrock:CreateEvaluationJob on evaluation-job (its ARN is Bedrock's:
  evaluation-job/<12 characters>, API reference GetEvaluationJob), iam:PassRole of the job's role
  to bedrock.amazonaws.com and, with jobTags, bedrock:TagResource ("Required console permissions to
  create an automatic model evaluation job", model-evaluation-type-automatic.html, grants both).
- `arn:aws:states:::sagemaker:createTransformJob.sync` (a training gate's candidate answers):
  sagemaker:CreateTransformJob, DescribeTransformJob, StopTransformJob, ListTags on the transform job,
  events:PutTargets, PutRule, DescribeRule on rule/StepFunctionsGetEventsForSageMakerTransformJobsRule
  (sagemaker-iam, as for training jobs). aws-sdk:sagemaker:createModel: sagemaker:CreateModel on the
  model (and AddTags for its Tags), iam:PassRole of ExecutionRoleArn to sagemaker.amazonaws.com
  (SageMaker API reference, CreateModel; sagemaker-roles); aws-sdk:sagemaker:deleteModel:
  sagemaker:DeleteModel on the model.
- Lambda tasks (a function ARN or `arn:aws:states:::lambda:invoke` with FunctionName):
  lambda:InvokeFunction on the function ("IAM policies for AWS Lambda":
  https://docs.aws.amazon.com/step-functions/latest/dg/lambda-iam.html).
- LoggingConfiguration: logs:CreateLogDelivery, GetLogDelivery, UpdateLogDelivery, DeleteLogDelivery,
  ListLogDeliveries, PutResourcePolicy, DescribeResourcePolicies, DescribeLogGroups on "*" ("Logging
  Step Functions executions in CloudWatch Logs": https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html).
- TracingConfiguration: xray:PutTraceSegments, PutTelemetryRecords, GetSamplingRules,
  GetSamplingTargets on "*" ("Trace Step Functions request data in AWS X-Ray":
  https://docs.aws.amazon.com/step-functions/latest/dg/concepts-xray-tracing.html).
- An EventBridge rule target that is a state machine is started with the target's role:
  states:StartExecution on the state machine (EventBridge user guide, "Using identity-based
  policies for Amazon EventBridge", Step Functions targets:
  https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-identity-based.html).
"""

from __future__ import annotations

import json

from genai_stack.catalog import bedrock_catalog
from tests.access.deployment import Deployment, Role
from tests.access.rows import Call, request_tag_context, resource_tag_context, sagemaker_tagged_create
from tests.access.rows.bedrock_arns import foundation_model
from tests.access.rows.s3_objects import TLS, denied_object, get_object, put_object
from tests.access.rows.service_resources import Resource, resources, s3_arn

LOG_DELIVERY = (
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
)
XRAY = (
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
)
SAGEMAKER_RULE = "rule/StepFunctionsGetEventsForSageMakerTrainingJobsRule"
TRANSFORM_RULE = "rule/StepFunctionsGetEventsForSageMakerTransformJobsRule"


def _definition(machine: Resource) -> dict:
    return json.loads(machine.properties["DefinitionString"])


def all_states(definition: dict) -> dict[str, dict]:
    """Every state of a definition by name, the states of Parallel branches and Map processors too."""
    found = {}
    for name, state in definition["States"].items():
        found[name] = state
        for branch in state.get("Branches", []):
            found.update(all_states(branch))
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            found.update(all_states(processor))
    return found


def tasks_passing(deployment: Deployment, resource_suffix: str, role_arn: str) -> list[dict]:
    """The Parameters of every Task state (in any state machine, Parallel branches included) whose
    Resource ends with `resource_suffix` and that passes `role_arn` (RoleArn): the jobs a service role
    runs."""
    return [
        state["Parameters"]
        for machine in resources(deployment, "AWS::StepFunctions::StateMachine")
        for state in all_states(_definition(machine)).values()
        if state.get("Type") == "Task"
        and state.get("Resource", "").endswith(resource_suffix)
        and state["Parameters"].get("RoleArn") == role_arn
    ]


def run_value(text: str) -> str:
    """A States.Format('...{}...', <bucket literal>?, $.run.id) path as the run writes it: the literals
    filled in, the run id and token as a run of the evaluation state machine makes them."""
    template, _, rest = text.removeprefix("States.Format(").partition("',")
    template = template.strip("'")
    values = [v.strip() for v in rest.rstrip(")").split(",")]
    for value in values:
        if value.startswith("'"):
            filled = value.strip("'")
        elif value == "$.run.id":
            filled = "20261206T030001Z-0123456789ab"
        elif value == "$.run.token":
            filled = "0123456789ab"
        else:
            raise NotImplementedError(f"no example value for {value}")
        template = template.replace("{}", filled, 1)
    return template


def _pass_role(deployment: Deployment, role_arn: str, service: str, why: str) -> list[Call]:
    return [
        Call("iam:PassRole", role_arn, why, context={"iam:PassedToService": service}),
        Call(
            "iam:PassRole",
            role_arn,
            f"the role goes to {service} only",
            context={"iam:PassedToService": "ec2.amazonaws.com"},
            expect="deny",
        ),
        Call(
            "iam:PassRole",
            deployment.arn("iam", "role/another-role", region=""),
            "no other role may be passed",
            context={"iam:PassedToService": service},
            expect="deny",
        ),
    ]


def training_job_name(definition: dict, parameters: dict) -> str:
    """The training job's name: literal, or the path of a Pass state's
    States.Format('<prefix>{}', ...) with the execution's hash in place of {}."""
    if "TrainingJobName" in parameters:
        return parameters["TrainingJobName"]
    path = parameters["TrainingJobName.$"]  # e.g. $.job.name
    result_path, _, field = path.rpartition(".")
    for state in definition["States"].values():
        if state.get("Type") == "Pass" and state.get("ResultPath") == result_path:
            expression = state["Parameters"][f"{field}.$"]
            return expression.split("'")[1].replace("{}", "0123456789abcdef0123456789abcdef")
    raise KeyError(f"no Pass state sets {path}")


def _training_job(deployment: Deployment, definition: dict, parameters: dict) -> list[Call]:
    job = deployment.arn("sagemaker", f"training-job/{training_job_name(definition, parameters)}")
    why = "createTrainingJob.sync (sagemaker-iam)"
    tags = _tags(parameters.get("Tags", []))
    # The job is created with the pipeline's Tags: the request carries them, the job then has them.
    carried = resource_tag_context(tags)
    stop_untagged = Call(
        "sagemaker:StopTrainingJob", job, "not a job without the pipeline's tags", expect="deny"
    )
    return [
        *sagemaker_tagged_create("sagemaker:CreateTrainingJob", job, tags, why),
        Call("sagemaker:DescribeTrainingJob", job, why),
        Call("sagemaker:StopTrainingJob", job, why, context=carried),
        Call("sagemaker:ListTags", job, why),
        *([stop_untagged] if tags else []),
        *_pass_role(deployment, parameters["RoleArn"], "sagemaker.amazonaws.com", why),
        *(
            Call(
                f"events:{action}",
                deployment.arn("events", SAGEMAKER_RULE),
                f"{why}: the managed rule that reports job state",
            )
            for action in ("PutTargets", "PutRule", "DescribeRule")
        ),
        Call(
            "sagemaker:CreateTrainingJob",
            deployment.arn("sagemaker", "training-job/another-job"),
            "only the pipeline's jobs",
            expect="deny",
        ),
        Call(
            "events:PutTargets",
            deployment.arn("events", "rule/another-rule"),
            "only Step Functions' managed rule",
            expect="deny",
        ),
    ]


def _transform_job(deployment: Deployment, parameters: dict) -> list[Call]:
    job = deployment.arn("sagemaker", f"transform-job/{run_value(parameters['TransformJobName.$']).lower()}")
    why = "createTransformJob.sync (sagemaker-iam)"
    tags = _tags(parameters.get("Tags", []))
    return [
        *sagemaker_tagged_create("sagemaker:CreateTransformJob", job, tags, why),
        Call("sagemaker:DescribeTransformJob", job, why),
        Call("sagemaker:StopTransformJob", job, why, context=resource_tag_context(tags)),
        Call("sagemaker:ListTags", job, why),
        *(
            [Call("sagemaker:StopTransformJob", job, "not a job without the pipeline's tags", expect="deny")]
            if tags
            else []
        ),
        *(
            Call(f"events:{action}", deployment.arn("events", TRANSFORM_RULE), f"{why}: the managed rule")
            for action in ("PutTargets", "PutRule", "DescribeRule")
        ),
        Call(
            "sagemaker:CreateTransformJob",
            deployment.arn("sagemaker", "transform-job/another-job"),
            "only the gate's transform jobs",
            context=request_tag_context(tags),
            expect="deny",
        ),
    ]


def _pipeline_tags(deployment: Deployment) -> dict[str, str]:
    """The tags a profile's pipelines put on what they create: its cost tag and its profile tag."""
    cost = dict([deployment.cost_tag]) if deployment.cost_tag else {}
    return {**cost, "genai-stack:profile": deployment.profile}


def _tags(tag_list: list[dict[str, str]]) -> dict[str, str]:
    """A task's `[{"Key", "Value"}]` tag list as a mapping."""
    return {tag["Key"]: tag["Value"] for tag in tag_list}


def _customization_job(deployment: Deployment, parameters: dict) -> list[Call]:
    why = "createModelCustomizationJob.sync (bedrock-iam)"
    job = deployment.arn("bedrock", "model-customization-job/abcd1234efgh")
    model = deployment.arn(
        "bedrock", f"custom-model/{parameters['BaseModelIdentifier'].rsplit('/', 1)[-1]}/abcd1234efgh"
    )
    base = parameters["BaseModelIdentifier"]
    # The job is created with the pipeline's tags, as JobTags and as CustomModelTags (equal lists).
    tags = _tags(parameters.get("JobTags", []))
    assert tags == _tags(parameters.get("CustomModelTags", [])), "the job and the model carry the same tags"
    requested = request_tag_context(tags)
    result = [
        Call("bedrock:CreateModelCustomizationJob", base, f"{why}: the base model", context=requested),
        Call("bedrock:CreateModelCustomizationJob", model, f"{why}: the new custom model", context=requested),
        Call("bedrock:GetModelCustomizationJob", job, f"{why}: waits for the job"),
        Call(
            "bedrock:StopModelCustomizationJob",
            job,
            f"{why}: stops the job when the execution stops (the job carries the pipeline's JobTags)",
            context=resource_tag_context(_tags(parameters.get("JobTags", []))),
        ),
        *_pass_role(deployment, parameters["RoleArn"], "bedrock.amazonaws.com", why),
        Call(
            "bedrock:CreateModelCustomizationJob",
            foundation_model(deployment, "amazon.nova-pro-v1:0"),
            "only the configured base model",
            expect="deny",
        ),
    ]
    if tags:
        extra = request_tag_context({**tags, "owner": "someone-else"})
        result += [
            Call(
                "bedrock:StopModelCustomizationJob",
                job,
                "not a job without the pipeline's tags",
                expect="deny",
            ),
            Call("bedrock:TagResource", job, f"{why}: JobTags (tagging)", context=requested),
            Call("bedrock:TagResource", model, f"{why}: CustomModelTags (tagging)", context=requested),
            Call(
                "bedrock:CreateModelCustomizationJob", base, "not without the pipeline's tags", expect="deny"
            ),
            Call(
                "bedrock:CreateModelCustomizationJob",
                base,
                "not with a tag of its own",
                context=extra,
                expect="deny",
            ),
            Call("bedrock:TagResource", job, "no tags but the pipeline's", context=extra, expect="deny"),
        ]
    key = parameters.get("CustomModelKmsKeyId")
    if key:
        via = {"kms:ViaService": f"bedrock.{deployment.region}.amazonaws.com"}
        result += [
            Call(action, key, f"{why}: CustomModelKmsKeyId (encryption-custom-job)", context=via)
            for action in ("kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey")
        ]
        # Bedrock, a service integrated with KMS, creates the grant on the caller's behalf: the request
        # carries kms:GrantIsForAWSResource true (AWS KMS developer guide, conditions-kms.html).
        result.append(
            Call(
                "kms:CreateGrant",
                key,
                f"{why}: CustomModelKmsKeyId (encryption-custom-job)",
                context={**via, "kms:GrantIsForAWSResource": True},
            )
        )
    return result


def _aws_sdk(deployment: Deployment, service: str, action: str, parameters: dict) -> list[Call]:
    why = f"aws-sdk:{service}:{action} (supported-services-awssdk)"
    if (service, action) == ("sagemaker", "createModelPackage"):
        group = parameters["ModelPackageGroupName"]
        return [
            Call(
                "sagemaker:CreateModelPackage",
                deployment.arn("sagemaker", f"model-package-group/{group}"),
                why,
            ),
            Call(
                "sagemaker:CreateModelPackage",
                deployment.arn("sagemaker", "model-package-group/another-group"),
                "only the pipeline's model package group",
                expect="deny",
            ),
        ]
    if (service, action) == ("sagemaker", "createModel"):
        model = deployment.arn("sagemaker", f"model/{run_value(parameters['ModelName.$']).lower()}")
        tags = _tags(parameters.get("Tags", []))
        return [
            *sagemaker_tagged_create("sagemaker:CreateModel", model, tags, why),
            *_pass_role(deployment, parameters["ExecutionRoleArn"], "sagemaker.amazonaws.com", why),
            Call(
                "sagemaker:CreateModel",
                deployment.arn("sagemaker", "model/another-model"),
                "only the gate's candidates",
                context=request_tag_context(tags),
                expect="deny",
            ),
        ]
    if (service, action) == ("sagemaker", "deleteModel"):
        model = deployment.arn("sagemaker", f"model/{run_value(parameters['ModelName.$']).lower()}")
        rows = [
            Call(
                "sagemaker:DeleteModel", model, why, context=resource_tag_context(_pipeline_tags(deployment))
            )
        ]
        rows.append(
            Call("sagemaker:DeleteModel", model, "not a model without the pipeline's tags", expect="deny")
        )
        return rows
    if (service, action) == ("s3", "copyObject"):
        source_bucket, _, source_key = parameters["CopySource"].partition("/")
        target_key = run_value(parameters["Key.$"])
        copy_why = f"{why}: CopyObject reads the source and writes the copy (API_CopyObject)"
        return [
            # The source is a file asset in the CDK bootstrap bucket (not in these templates; SSE-S3 or
            # the AWS managed key, usable through S3 by the account's principals).
            Call("s3:GetObject", s3_arn(deployment, source_bucket, source_key), copy_why, context=TLS),
            *put_object(deployment, parameters["Bucket"], target_key, copy_why),
            denied_object(
                deployment,
                "s3:PutObject",
                parameters["Bucket"],
                "evaluation/accepted/x.json",
                "only the run's datasets",
            ),
            denied_object(
                deployment, "s3:GetObject", source_bucket, "another-asset.zip", "only its dataset assets"
            ),
        ]
    if (service, action) == ("bedrock", "createEvaluationJob"):
        # Authorized on the models the job names (foundation-model among CreateEvaluationJob's resource
        # types, Service Authorization Reference): the judge's, here as the row's resource.
        judges = (parameters["EvaluationConfig"]["Automated"].get("EvaluatorModelConfig") or {}).get(
            "BedrockEvaluatorModels", []
        )
        model = foundation_model(deployment, "amazon.nova-lite-v1:0")
        if judges:
            profile = bedrock_catalog().inference_profiles.get(judges[0]["ModelIdentifier"])
            model = foundation_model(
                deployment, profile.model_id if profile else judges[0]["ModelIdentifier"]
            )
        job = deployment.arn("bedrock", "evaluation-job/abcd1234efgh")
        tags = _tags(parameters.get("JobTags", []))
        requested = request_tag_context(tags)
        rows = [
            Call("bedrock:CreateEvaluationJob", model, why, context=requested),
            *_pass_role(deployment, parameters["RoleArn"], "bedrock.amazonaws.com", why),
        ]
        if tags:
            rows += [
                Call("bedrock:TagResource", job, f"{why}: JobTags (tagging)", context=requested),
                Call("bedrock:CreateEvaluationJob", model, "not without the profile's tags", expect="deny"),
                Call(
                    "bedrock:TagResource",
                    job,
                    "no tag of its own",
                    context=request_tag_context({**tags, "owner": "someone-else"}),
                    expect="deny",
                ),
            ]
        return rows
    if (service, action) == ("bedrock", "getEvaluationJob"):
        return [
            Call("bedrock:GetEvaluationJob", deployment.arn("bedrock", "evaluation-job/abcd1234efgh"), why)
        ]
    if (service, action) == ("bedrock", "getModelCustomizationJob"):
        return [
            Call(
                "bedrock:GetModelCustomizationJob",
                deployment.arn("bedrock", "model-customization-job/abcd1234efgh"),
                why,
            )
        ]
    raise NotImplementedError(f"no rows for the Task resource aws-sdk:{service}:{action}")


def _invoke(deployment: Deployment, function_arn: str) -> list[Call]:
    why = "a Lambda task invokes the function (lambda-iam)"
    return [
        Call("lambda:InvokeFunction", function_arn, why),
        Call(
            "lambda:InvokeFunction",
            deployment.arn("lambda", "function:another-function"),
            "no other function",
            expect="deny",
        ),
    ]


def _distributed_map(deployment: Deployment, machine: Resource, state: dict) -> list[Call]:
    """A Distributed Map ("IAM policies for using Distributed Map states":
    https://docs.aws.amazon.com/step-functions/latest/dg/iam-policies-eg-dist-map.html): it starts its
    child workflows as executions of its own state machine, describes and stops them, and redrives map
    runs; its ItemReader reads the manifest (s3:GetObject, with the bucket key) and its ResultWriter
    writes the results (PutObject, GetObject, ListMultipartUploadParts, AbortMultipartUpload)."""
    name = machine.properties["StateMachineName"]
    label = state.get("Label", "map")
    why = "a Distributed Map runs its items as child executions (iam-policies-eg-dist-map)"
    result = [
        Call("states:StartExecution", deployment.arn("states", f"stateMachine:{name}"), why),
        Call("states:DescribeExecution", deployment.arn("states", f"execution:{name}:run-1"), why),
        Call(
            "states:DescribeExecution",
            deployment.arn("states", f"execution:{name}/{label}:0123-child"),
            why,
        ),
        Call("states:StopExecution", deployment.arn("states", f"execution:{name}/{label}:0123-child"), why),
        Call("states:RedriveExecution", deployment.arn("states", f"execution:{name}/{label}:run-1"), why),
        Call(
            "states:StartExecution",
            deployment.arn("states", "stateMachine:another-machine"),
            "no other state machine",
            expect="deny",
        ),
    ]
    reader = state["ItemReader"]["Parameters"]
    # Key.$ States.Format('<prefix>{}', $.manifest): the manifest is under the prefix.
    prefix = reader["Key.$"].split("'")[1].replace("{}", "")
    result += get_object(
        deployment,
        reader["Bucket"],
        f"{prefix}catalogue.jsonl",
        "ItemReader (input-output-itemreader)",
        api=None,
    )
    result.append(
        denied_object(
            deployment, "s3:GetObject", reader["Bucket"], "documents/faq.pdf", "only manifests are read"
        )
    )
    writer = state["ResultWriter"]["Parameters"]
    written = f"{writer['Prefix']}0123-map-run/SUCCEEDED_0.json"
    result += put_object(
        deployment, writer["Bucket"], written, "ResultWriter (input-output-resultwriter)", api=None
    )
    for action in ("s3:GetObject", "s3:ListMultipartUploadParts", "s3:AbortMultipartUpload"):
        result.append(
            Call(
                action,
                f"arn:{deployment.partition}:s3:::{writer['Bucket']}/{written}",
                "ResultWriter",
                context=TLS,
            )
        )
    result.append(
        denied_object(
            deployment, "s3:PutObject", writer["Bucket"], f"{prefix}x.jsonl", "the manifests are read-only"
        )
    )
    return result


def state_machine_role(role: Role, deployment: Deployment) -> list[Call] | None:
    machines = [
        r
        for r in resources(deployment, "AWS::StepFunctions::StateMachine")
        if r.properties["RoleArn"] == role.arn
    ]
    if not machines:
        return None
    result: list[Call] = []
    for machine in machines:
        definition = _definition(machine)
        for task in (s for s in all_states(definition).values() if s.get("Type") == "Task"):
            resource, parameters = task["Resource"], task.get("Parameters", {})
            if resource.startswith(f"arn:{deployment.partition}:lambda:"):
                result += _invoke(deployment, resource)
            elif resource.startswith("arn:aws:states:::lambda:invoke"):
                result += _invoke(deployment, parameters["FunctionName"])
            elif resource.startswith("arn:aws:states:::sagemaker:createTrainingJob"):
                result += _training_job(deployment, definition, parameters)
            elif resource.startswith("arn:aws:states:::sagemaker:createTransformJob"):
                result += _transform_job(deployment, parameters)
            elif resource.startswith("arn:aws:states:::bedrock:createModelCustomizationJob"):
                result += _customization_job(deployment, parameters)
            elif resource.startswith("arn:aws:states:::aws-sdk:"):
                service, action = resource.removeprefix("arn:aws:states:::aws-sdk:").split(":", 1)
                result += _aws_sdk(deployment, service, action, parameters)
            else:
                raise NotImplementedError(f"{machine.path}: no rows for the Task resource {resource}")
        for state in all_states(definition).values():
            if state.get("Type") == "Map" and "ItemReader" in state:
                result += _distributed_map(deployment, machine, state)
        if machine.properties.get("LoggingConfiguration"):
            result += [
                Call(action, "*", "execution logs (cw-logs); the actions only work on '*'")
                for action in LOG_DELIVERY
            ]
        if (machine.properties.get("TracingConfiguration") or {}).get("Enabled"):
            result += [Call(action, "*", "X-Ray tracing (concepts-xray-tracing)") for action in XRAY]
    return result


def rule_role(role: Role, deployment: Deployment) -> list[Call] | None:
    machines = [
        target["Arn"]
        for rule in resources(deployment, "AWS::Events::Rule")
        for target in rule.properties.get("Targets", [])
        if target.get("RoleArn") == role.arn and target["Arn"].split(":")[2] == "states"
    ]
    if not machines:
        return None
    why = "EventBridge starts the target state machine with the target's role (eb-use-identity-based)"
    return [Call("states:StartExecution", arn, why) for arn in machines] + [
        Call(
            "states:StartExecution",
            deployment.arn("states", "stateMachine:another-state-machine"),
            "no other state machine",
            expect="deny",
        )
    ]


BUILDERS = (state_machine_role, rule_role)
