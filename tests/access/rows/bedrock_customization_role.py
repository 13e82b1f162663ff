"""The Bedrock model customization service role (CreateModelCustomizationJob RoleArn): Bedrock reads
the training and validation data and writes the job output with it.

Bedrock user guide, "Create a service role for model customization": s3:GetObject and s3:ListBucket
on the training and validation data, s3:GetObject, s3:PutObject and s3:ListBucket on the output
location; data encrypted with a KMS key needs the key's permissions ("Encryption of custom models":
kms:Decrypt to read, kms:GenerateDataKey to write, through S3):
https://docs.aws.amazon.com/bedrock/latest/userguide/model-customization-iam-role.html,
https://docs.aws.amazon.com/bedrock/latest/userguide/encryption-custom-job.html
The s3:prefix Bedrock lists with is taken as the S3 URI's key (the object, or the output prefix).
"""

from __future__ import annotations

from tests.access.deployment import Deployment, Role
from tests.access.rows import Call
from tests.access.rows.s3_objects import denied_object, get_object, list_objects, put_object
from tests.access.rows.service_resources import s3_uri
from tests.access.rows.state_machine_roles import tasks_passing

WHY = "Bedrock runs the customization job with its service role (model-customization-iam-role)"


def rows(role: Role, deployment: Deployment) -> list[Call] | None:
    jobs = tasks_passing(deployment, ":bedrock:createModelCustomizationJob.sync", role.arn)
    if not jobs:
        return None
    result: list[Call] = []
    for job in jobs:
        inputs = [job["TrainingDataConfig"]["S3Uri"]] + [
            v["S3Uri"] for v in (job.get("ValidationDataConfig") or {}).get("Validators", [])
        ]
        for uri in inputs:
            bucket_name, key = s3_uri(uri)
            result += list_objects(deployment, bucket_name, key, f"{WHY}: training and validation data")
            result += get_object(deployment, bucket_name, key, f"{WHY}: training and validation data")
            result.append(
                denied_object(deployment, "s3:PutObject", bucket_name, key, "the training data is read-only")
            )
        bucket_name, prefix = s3_uri(job["OutputDataConfig"]["S3Uri"])
        output = f"{prefix}abcd1234efgh/step_wise_training_metrics.csv"
        result += list_objects(deployment, bucket_name, prefix, f"{WHY}: the output location")
        result += put_object(deployment, bucket_name, output, f"{WHY}: the job's metrics and output")
        result += get_object(deployment, bucket_name, output, f"{WHY}: the output location")
        data_bucket, _ = s3_uri(inputs[0])
        result += [
            denied_object(
                deployment,
                "s3:GetObject",
                data_bucket,
                "customization/another-job/train.jsonl",
                "not another job's data",
            ),
            denied_object(
                deployment,
                "s3:PutObject",
                bucket_name,
                "models/support-llm/model.safetensors",
                "writes only under the output prefix",
            ),
        ]
    return result


BUILDERS = (rows,)
