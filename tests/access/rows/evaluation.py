"""The evaluation runs' function (lambdas/evaluation): it reads and writes under the evaluation prefix
of the data bucket (runs.py load_json, save, keys_under: GetObject, PutObject, ListObjectsV2) and
publishes the scores (PutMetricData). With traffic jobs (traffic.py) it also reads Bedrock's invocation
logs of its account and Region (ListObjectsV2, GetObject) and redacts the sample with the profile's
guardrail (ApplyGuardrail, bedrock_arns.apply_guardrail_rows). S3 rows: rows/s3_objects.py;
cloudwatch:namespace: Service Authorization Reference, Amazon CloudWatch.
"""

from __future__ import annotations

from tests.access.deployment import Deployment, Function
from tests.access.rows import Call
from tests.access.rows.bedrock_arns import apply_guardrail_rows, guardrail
from tests.access.rows.s3_objects import denied_object, get_object, list_objects, put_object

PACKAGE = "evaluation"
HANDLERS = ("lambdas.evaluation.handler.on_event",)
APIS = frozenset(
    {
        "s3.ListObjectsV2",
        "s3.GetObject",
        "s3.PutObject",
        "cloudwatch.PutMetricData",
        "bedrock-runtime.ApplyGuardrail",
    }
)
RUN = "20261206T030001Z-0123456789ab"


def rows(function: Function, deployment: Deployment) -> list[Call]:
    env = function.environment
    bucket, prefix = env["EVALUATION_BUCKET"], env["EVALUATION_PREFIX"]
    output = f"{prefix}runs/{RUN}/job_ab12cd/output/job-ab12cd-0123456789ab/abcd1234efgh/x_output.jsonl"
    result = [
        Call(
            "cloudwatch:PutMetricData",
            "*",
            "runs.py put_metrics publishes scores and regressions",
            context={"cloudwatch:namespace": env["EVALUATION_NAMESPACE"]},
            api="cloudwatch.PutMetricData",
        ),
        Call(
            "cloudwatch:PutMetricData",
            "*",
            "only its namespace",
            context={"cloudwatch:namespace": "AWS/Bedrock"},
            expect="deny",
        ),
        *list_objects(
            deployment, bucket, f"{prefix}runs/{RUN}/job_ab12cd/output/", "runs.py collect lists the output"
        ),
        *get_object(deployment, bucket, output, "runs.py collect reads Bedrock's output"),
        *get_object(deployment, bucket, f"{prefix}state/last-run.json", "runs.py select reads the last run"),
        *get_object(
            deployment, bucket, f"{prefix}accepted/job_ab12cd.json", "runs.py collect reads the baseline"
        ),
        *put_object(deployment, bucket, f"{prefix}accepted/job_ab12cd.json", "runs.py collect/accept"),
        *put_object(deployment, bucket, f"{prefix}runs/{RUN}/report.md", "runs.py finish writes the report"),
        *put_object(
            deployment, bucket, f"{prefix}latest/copy-quality.json", "runs.py finish writes the verdict"
        ),
        *list_objects(deployment, bucket, f"{prefix}runs/{RUN}/", "runs.py accept lists the run's scores"),
        denied_object(
            deployment, "s3:GetObject", bucket, "bedrock-invocation-logs/x.json.gz", "only its prefix"
        ),
        denied_object(deployment, "s3:PutObject", bucket, "knowledge-bases/x.pdf", "only its prefix"),
        Call(
            "s3:ListBucket",
            f"arn:{deployment.partition}:s3:::{bucket}",
            "lists only its prefix",
            context={"s3:TlsVersion": "1.2", "s3:prefix": "bedrock-invocation-logs/"},
            expect="deny",
        ),
    ]
    logs = env.get("EVALUATION_LOGS_PREFIX")
    if logs:
        result += _traffic_rows(deployment, bucket, prefix, logs)
    return result


def _traffic_rows(deployment: Deployment, bucket: str, prefix: str, logs: str) -> list[Call]:
    """traffic.py: the invocation logs of this account and Region, read only; the profile's guardrail."""
    hour = f"{logs}2026/12/06/02/"
    (guardrail_id,) = [
        deployment.resolver.get_att(stack, logical_id, "GuardrailId")
        for stack, template in deployment.templates.items()
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Bedrock::Guardrail"
    ]
    elsewhere = logs.replace(f"/{deployment.region}/", "/eu-west-1/")
    assert elsewhere != logs, f"{logs} does not name the Region"
    return [
        *list_objects(deployment, bucket, hour, "traffic.py candidates lists an hour of the logs"),
        *get_object(deployment, bucket, f"{hour}{deployment.account}_x.json.gz", "traffic.py reads a log"),
        *put_object(
            deployment, bucket, f"{prefix}runs/{RUN}/job_ab12cd/dataset.jsonl", "traffic.py writes the sample"
        ),
        denied_object(deployment, "s3:PutObject", bucket, f"{hour}x.json.gz", "the logs are read only"),
        denied_object(
            deployment,
            "s3:GetObject",
            bucket,
            f"{elsewhere}2026/12/06/02/x.json.gz",
            "only its Region's logs",
        ),
        *apply_guardrail_rows(
            deployment, guardrail(deployment, guardrail_id, "1"), api="bedrock-runtime.ApplyGuardrail"
        ),
    ]
