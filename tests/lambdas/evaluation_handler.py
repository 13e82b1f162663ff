"""The evaluation function's handler (lambdas/evaluation) as its state machines call it, over S3 and
CloudWatch on a moto server: shared by the tests of the runs, the traffic samples and the gates."""

from __future__ import annotations

import importlib
from typing import Any

from tests.support.moto_server import moto_client, reset_moto

REGION = "us-east-1"
NAMESPACE = "GenAiStack/Evaluation"


def client(service: str, endpoint: str) -> Any:
    return moto_client(service, endpoint, REGION)


def load_handler(endpoint: str, monkeypatch, *, bucket: str, profile: str, logs_prefix: str | None = None):
    """A fresh moto state with the data bucket, and the handler module reloaded with the function's
    environment (EVALUATION_LOGS_PREFIX only with `logs_prefix`: traffic jobs), its clients on moto."""
    reset_moto(endpoint)
    client("s3", endpoint).create_bucket(Bucket=bucket)
    for name, value in {
        "EVALUATION_BUCKET": bucket,
        "EVALUATION_PREFIX": "evaluation/",
        "EVALUATION_PROFILE": profile,
        "EVALUATION_NAMESPACE": NAMESPACE,
        "POWERTOOLS_SERVICE_NAME": f"{profile}-evaluation",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    if logs_prefix is None:
        monkeypatch.delenv("EVALUATION_LOGS_PREFIX", raising=False)
    else:
        monkeypatch.setenv("EVALUATION_LOGS_PREFIX", logs_prefix)
    module = importlib.reload(importlib.import_module("lambdas.evaluation.handler"))
    monkeypatch.setattr(module, "s3", lambda: client("s3", endpoint))
    monkeypatch.setattr(module, "cloudwatch", lambda: client("cloudwatch", endpoint))
    return module


class Context:
    function_name = "evaluation"
    memory_limit_in_mb = 512
    invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:evaluation"
    aws_request_id = "req-1"
    remaining_ms = 900_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def call(handler, event: dict, context: Context | None = None) -> Any:
    return handler.on_event(event, context or Context())
