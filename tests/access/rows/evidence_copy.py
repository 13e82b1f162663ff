"""Evidence copy (lambdas/evidence_copy): for each source of SOURCES it reads a new log object, by
version (logic.py copy_to_evidence: HeadObject and GetObject with VersionId, which S3 authorizes as
s3:GetObjectVersion; without one, s3:GetObject), and puts its copy into the evidence bucket
(PutObject, under the source's destination). It must not delete or re-lock a copy, nor read outside
the sources' prefixes. S3 rows: rows/s3_objects.py (Service Authorization Reference, Amazon S3:
https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html).
"""

from __future__ import annotations

import json

from tests.access.deployment import Deployment, Function
from tests.access.rows import Call
from tests.access.rows.s3_objects import TLS, denied_object, get_object, put_object

PACKAGE = "evidence_copy"
HANDLERS = ("lambdas.evidence_copy.handler.on_event",)
APIS = frozenset({"s3.HeadObject", "s3.GetObject", "s3.PutObject"})
SAMPLES = {
    "": "data/2026-12-02-04-10-11-0123456789ABCDEF",
    "bedrock-invocation-logs/": "bedrock-invocation-logs/AWSLogs/123456789012/BedrockModelInvocationLogs/"
    "us-east-1/2026/12/02/04/20261202T041000123Z_0123456789abcdef.json.gz",
}


def rows(function: Function, deployment: Deployment) -> list[Call]:
    evidence = function.environment["EVIDENCE_BUCKET"]
    result: list[Call] = []
    for bucket, spec in json.loads(function.environment["SOURCES"]).items():
        for prefix in spec["prefixes"]:
            key = SAMPLES[prefix]
            arn = f"arn:{deployment.partition}:s3:::{bucket}/{key}"
            result += get_object(deployment, bucket, key, "logic.py reads the new object (no version id)")
            result += [
                Call(
                    "s3:GetObjectVersion",
                    arn,
                    "logic.py heads and reads the event's version",
                    context=TLS,
                    api="s3.GetObject",
                ),
                Call(
                    "s3:GetObjectVersion", arn, "HeadObject with VersionId", context=TLS, api="s3.HeadObject"
                ),
            ]
            result += put_object(deployment, evidence, spec["destination"] + key, "logic.py puts the copy")
            result += [
                denied_object(
                    deployment, "s3:DeleteObjectVersion", evidence, spec["destination"] + key, "copies stay"
                ),
                denied_object(
                    deployment, "s3:PutObjectRetention", evidence, spec["destination"] + key, "nor re-locked"
                ),
                denied_object(deployment, "s3:DeleteObject", bucket, key, "nor the source removed"),
            ]
        result.append(
            denied_object(
                deployment, "s3:GetObject", bucket, "knowledge-bases/faq/private.pdf", "only log prefixes"
            )
            if spec["prefixes"] != [""]
            else denied_object(
                deployment, "s3:PutObject", bucket, "data/forged-log", "the source is read only"
            )
        )
    result.append(
        denied_object(
            deployment, "s3:PutObject", evidence, "somewhere-else/x", "copies only under their destination"
        )
    )
    return result
