"""Drift monitor (lambdas/drift_monitor): for each target of DRIFT_TARGETS it lists and reads the
captured requests or invocation logs under its prefix (logic.py read_exchanges: ListObjectsV2,
GetObject), reads and writes its baseline (load_baseline / save_baseline: ListObjectsV2, GetObject, PutObject) and
publishes metrics (PutMetricData).

cloudwatch:PutMetricData has no resource type ("*"); cloudwatch:namespace carries the namespace
(Service Authorization Reference, Amazon CloudWatch:
https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatch.html).
S3 rows: rows/s3_objects.py.
"""

from __future__ import annotations

import json

from tests.access.deployment import Deployment, Function
from tests.access.rows import Call
from tests.access.rows.s3_objects import get_object, list_objects, put_object

PACKAGE = "drift_monitor"
HANDLERS = ("lambdas.drift_monitor.handler.on_event",)
APIS = frozenset({"s3.ListObjectsV2", "s3.GetObject", "s3.PutObject", "cloudwatch.PutMetricData"})


def rows(function: Function, deployment: Deployment) -> list[Call]:
    env = function.environment
    result = [
        Call(
            "cloudwatch:PutMetricData",
            "*",
            "logic.py publishes the drift metrics",
            context={"cloudwatch:namespace": env["DRIFT_NAMESPACE"]},
            api="cloudwatch.PutMetricData",
        )
    ]
    for target in json.loads(env["DRIFT_TARGETS"]):
        hour = f"{target['prefix']}2026/12/01/10/"
        result += list_objects(
            deployment, target["bucket"], hour, "logic.py read_exchanges lists an hour's objects"
        )
        result += get_object(deployment, target["bucket"], f"{hour}capture.jsonl", "logic.py read_exchanges")
        # load_baseline lists the baseline key first: S3 answers GetObject on a missing key with 403
        # (not 404) to a caller without s3:ListBucket (S3 API reference, GetObject, "Permissions").
        result += list_objects(
            deployment,
            target["baseline_bucket"],
            target["baseline_key"],
            "logic.py load_baseline asks whether the baseline exists",
        )
        result += get_object(
            deployment, target["baseline_bucket"], target["baseline_key"], "logic.py load_baseline"
        )
        result += put_object(
            deployment, target["baseline_bucket"], target["baseline_key"], "logic.py save_baseline"
        )
        result.append(
            Call(
                "s3:GetObject",
                f"arn:{deployment.partition}:s3:::{target['bucket']}/another-prefix/data.jsonl",
                "only the target's own prefix",
                context={"s3:TlsVersion": "1.2"},
                expect="deny",
            )
        )
    result.append(
        Call(
            "s3:GetObject",
            f"arn:{deployment.partition}:s3:::another-bucket/data.jsonl",
            "no other bucket",
            context={"s3:TlsVersion": "1.2"},
            expect="deny",
        )
    )
    return result
