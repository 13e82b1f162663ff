"""The Bedrock evaluation jobs' service role (CreateEvaluationJob RoleArn): what Bedrock does with it
while a job runs, from AWS's service-role pages (Bedrock user guide, "Service role requirements" of
automatic, judge and knowledge-base evaluation jobs: automatic-service-roles.html,
judge-service-roles.html, rag-eval-service-roles.html):

- the dataset: s3:GetObject and s3:ListBucket; the output location: s3:GetObject, s3:ListBucket,
  s3:PutObject, s3:GetBucketLocation, s3:AbortMultipartUpload, s3:ListBucketMultipartUploads;
  the bucket's key through S3 (model-evaluation-security-data.html);
- invoking the evaluated model (here the alias target's application inference profile, and what it
  copies: bedrock_arns.invocation_targets), the judge (evaluatorModelConfig) and a retrieve_and_generate
  job's generator (modelArn); the inference profiles read (bedrock:GetInferenceProfile);
- bedrock:Retrieve and bedrock:RetrieveAndGenerate on the knowledge base ("we give permissions to both
  ... regardless of the action you choose to evaluate");
- a retrieve_and_generate job with a guardrail: using a guardrail needs ApplyGuardrail on it
  (bedrock_arns.apply_guardrail_rows);
- a traffic job (own inference responses, `precomputedInferenceSource`) invokes only the judge.
The s3:prefix Bedrock lists with is not documented: the rows list with the dataset's key and the output
prefix, and the role grants the list without a prefix condition, as the pages do.
"""

from __future__ import annotations

from tests.access.deployment import Deployment, Role
from tests.access.rows import Call
from tests.access.rows.bedrock_arns import (
    apply_guardrail_rows,
    foundation_model,
    guardrail,
    invocation_targets,
)
from tests.access.rows.s3_objects import TLS, denied_object, get_object, list_objects, put_object
from tests.access.rows.service_resources import resources, s3_arn, s3_uri
from tests.access.rows.state_machine_roles import run_value, tasks_passing

WHY = "Bedrock runs the evaluation job with its service role (automatic/judge/rag-eval-service-roles)"


def _copied_model(deployment: Deployment, profile_arn: str) -> str:
    """The model or system inference profile an application inference profile copies."""
    for profile in resources(deployment, "AWS::Bedrock::ApplicationInferenceProfile"):
        arn = deployment.resolver.get_att(profile.stack, profile.logical_id, "InferenceProfileArn")
        if arn == profile_arn:
            return deployment.resolver.resolve(
                profile.stack, profile.properties["ModelSource"]["CopyFrom"]
            ).rsplit("/", 1)[-1]
    raise KeyError(f"no application inference profile {profile_arn} in {deployment.profile}")


def _invoke(deployment: Deployment, model_id: str, through: str | None, why: str) -> list[Call]:
    result = []
    for resource, context in invocation_targets(deployment, model_id, through):
        result.append(Call("bedrock:InvokeModel", resource, why, context=context))
        if ":inference-profile/" in resource or ":application-inference-profile/" in resource:
            result.append(Call("bedrock:GetInferenceProfile", resource, f"{why}: the profile is read"))
    return result


def rows(role: Role, deployment: Deployment) -> list[Call] | None:
    jobs = tasks_passing(deployment, ":bedrock:createEvaluationJob", role.arn)
    if not jobs:
        return None
    result: list[Call] = []
    for job in jobs:
        automated = job["EvaluationConfig"]["Automated"]
        dataset = automated["DatasetMetricConfigs"][0]["Dataset"]["DatasetLocation"]["S3Uri.$"]
        bucket_name, key = s3_uri(run_value(dataset))
        result += list_objects(deployment, bucket_name, key, f"{WHY}: the dataset")
        result += get_object(deployment, bucket_name, key, f"{WHY}: the dataset")
        result.append(denied_object(deployment, "s3:PutObject", bucket_name, key, "the dataset is read-only"))
        out_bucket, prefix = s3_uri(run_value(job["OutputDataConfig"]["S3Uri.$"]))
        output = (
            f"{prefix}job-0123456789ab/abcd1234efgh/models/m/taskTypes/Generation/datasets/d/x_output.jsonl"
        )
        result += list_objects(deployment, out_bucket, prefix, f"{WHY}: the output location")
        result += put_object(deployment, out_bucket, output, f"{WHY}: the results")
        result += get_object(deployment, out_bucket, output, f"{WHY}: the output location")
        result += [
            Call(action, s3_arn(deployment, out_bucket), f"{WHY}: the output bucket", context=TLS)
            for action in ("s3:GetBucketLocation", "s3:ListBucketMultipartUploads")
        ]
        result.append(
            Call("s3:AbortMultipartUpload", s3_arn(deployment, out_bucket, output), WHY, context=TLS)
        )
        result += [
            denied_object(
                deployment, "s3:GetObject", out_bucket, "bedrock-invocation-logs/x.json.gz", "not the logs"
            ),
            denied_object(
                deployment, "s3:PutObject", out_bucket, "evaluation/accepted/x.json", "not the baselines"
            ),
        ]
        for judge in (automated.get("EvaluatorModelConfig") or {}).get("BedrockEvaluatorModels", []):
            result += _invoke(deployment, judge["ModelIdentifier"], None, f"{WHY}: the judge")
        for model in job["InferenceConfig"].get("Models", []):
            if "PrecomputedInferenceSource" in model:  # a traffic job: the dataset holds the answers
                continue
            identifier = model["BedrockModel"]["ModelIdentifier"]
            result += _invoke(
                deployment, _copied_model(deployment, identifier), identifier, f"{WHY}: the model"
            )
        for rag in job["InferenceConfig"].get("RagConfigs", []):
            config = rag["KnowledgeBaseConfig"]
            if "RetrieveConfig" in config:
                kb_id = config["RetrieveConfig"]["KnowledgeBaseId"]
            else:
                generate = config["RetrieveAndGenerateConfig"]["KnowledgeBaseConfiguration"]
                kb_id = generate["KnowledgeBaseId"]
                model_id = generate["ModelArn"].rsplit("/", 1)[-1]
                result += _invoke(deployment, model_id, None, f"{WHY}: the generator")
                rail = (generate.get("GenerationConfiguration") or {}).get("GuardrailConfiguration")
                if rail:
                    found = guardrail(deployment, rail["GuardrailId"], rail["GuardrailVersion"])
                    result += apply_guardrail_rows(deployment, found, api=None)
            knowledge_base = deployment.arn("bedrock", f"knowledge-base/{kb_id}")
            result.append(Call("bedrock:Retrieve", knowledge_base, f"{WHY}: the knowledge base"))
            if (
                "RetrieveAndGenerateConfig" in config
            ):  # no resource type: "*" (Service Authorization Reference)
                result.append(Call("bedrock:RetrieveAndGenerate", "*", f"{WHY}: the knowledge base answers"))
        result += [
            Call(
                "bedrock:InvokeModel",
                foundation_model(deployment, "anthropic.claude-opus-4-5-20251101-v1:0"),
                "no model the evaluations do not use",
                expect="deny",
            ),
            Call(
                "bedrock:Retrieve",
                deployment.arn("bedrock", "knowledge-base/ANOTHERKB1"),
                "no other knowledge base",
                expect="deny",
            ),
        ]
    return result


BUILDERS = (rows,)
