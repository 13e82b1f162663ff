"""The evaluation runs' function (lambdas/evaluation): it reads and writes under the evaluation prefix
of the data bucket (runs.py load_json, save, keys_under: GetObject, PutObject, ListObjectsV2) and
publishes the scores (PutMetricData). S3 rows: rows/s3_objects.py; cloudwatch:namespace: Service
Authorization Reference, Amazon CloudWatch.
"""

from __future__ import annotations

from tests.access.deployment import Deployment, Function
from tests.access.rows import Call
from tests.access.rows.s3_objects import denied_object, get_object, list_objects, put_object

PACKAGE = "evaluation"
HANDLERS = ("lambdas.evaluation.handler.on_event",)
APIS = frozenset({"s3.ListObjectsV2", "s3.GetObject", "s3.PutObject", "cloudwatch.PutMetricData"})
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
    return result
