"""Lambda entry point: one item of an image batch (the Distributed Map's child workflow calls it; see
logic.py for what an item is and what the worker does).

Input: {"item": <the manifest line>, "run": <the execution's name>}. Output: the result the map writes
to the batch's results (sku, category, source, output, seed, cost_usd). The errors BadItem,
ImageRefused and ModelBusy reach the state machine by name (a Lambda function error's type is the
exception's class name), which retries ModelBusy only.

Environment: BATCH, the settings as JSON (model_id, strength, negative_prompt, categories,
input_prefix, output_prefix, bucket, key_id, price_per_image, guardrail [identifier, version] or
null), validated at cold start.

Metrics (CloudWatch embedded metric format, namespace GenAiStack/ImageBatch, Powertools' `service`
dimension): per item ImagesGenerated and EstimatedCost (USD at the catalog's price per image) when an
image is written, ImagesRefused or BadItems when not; the dashboard's cost per image is
SUM(EstimatedCost) / SUM(ImagesGenerated).
"""

from __future__ import annotations

import json
import os
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from .logic import BadItem, BatchSettings, ImageRefused, process

NAMESPACE = "GenAiStack/ImageBatch"
logger = Logger(service="image-batch")


def load_settings(text: str | None) -> BatchSettings:
    if not text:
        raise RuntimeError("BATCH is not set")
    data = json.loads(text)
    guardrail = data.get("guardrail")
    return BatchSettings(
        model_id=data["model_id"],
        strength=float(data["strength"]),
        negative_prompt=data.get("negative_prompt", ""),
        categories=dict(data["categories"]),
        input_prefix=data["input_prefix"],
        output_prefix=data["output_prefix"],
        bucket=data["bucket"],
        key_id=data.get("key_id"),
        price_per_image=float(data["price_per_image"]),
        guardrail=(guardrail[0], guardrail[1]) if guardrail else None,
    )


# Throttling goes back to the state machine (ModelBusy, retried with backoff and jitter) after one
# retry of botocore's own ("standard" mode, 2 attempts); two attempts of at most 40 s each fit the
# item's default timeout of 120 s (SD3.5 Large makes a 1-megapixel image in seconds).
CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=5, read_timeout=40)


@cache
def _clients() -> tuple[Any, Any]:
    return boto3.client("s3", config=CLIENT_CONFIG), boto3.client("bedrock-runtime", config=CLIENT_CONFIG)


def _count(name: str, **values: float) -> None:
    metrics = EphemeralMetrics(namespace=NAMESPACE)
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    for metric, value in values.items():
        metrics.add_metric(name=metric, unit=MetricUnit.NoUnit, value=value)
    metrics.flush_metrics()


def handle(event: dict[str, Any], settings: BatchSettings, s3: Any, bedrock: Any) -> dict[str, Any]:
    run = event.get("run")
    if not isinstance(run, str) or not run:
        raise BadItem("the worker needs the execution's name as 'run'")
    try:
        result = process(event.get("item"), run=run, settings=settings, s3=s3, bedrock=bedrock)
    except BadItem as error:
        logger.warning("bad manifest line", extra={"reason": str(error)})
        _count("BadItems")
        raise
    except ImageRefused as error:
        logger.info("image refused", extra={"reason": str(error)})
        _count("ImagesRefused")
        raise
    _count("ImagesGenerated", EstimatedCost=result.cost_usd)
    logger.info("image written", extra={"sku": result.sku, "output": result.output})
    return result.as_dict()


SETTINGS = load_settings(os.environ.get("BATCH")) if os.environ.get("BATCH") else None


@logger.inject_lambda_context(clear_state=True)
def on_event(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = SETTINGS or load_settings(os.environ.get("BATCH"))
    s3, bedrock = _clients()
    return handle(event, settings, s3, bedrock)
