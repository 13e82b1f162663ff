"""Lambda entry point: an EventBridge "Object Created" event of a log bucket -> a copy in the evidence
bucket (logic.py says why a copy).

Event (S3 user guide, "EventBridge event message structure"): detail.bucket.name, detail.object.key,
detail.object.version-id. Environment: EVIDENCE_BUCKET, SOURCES (JSON: bucket name -> {"prefixes":
[...], "excluded": [...], "destination": "..."}).

A failed copy raises: Lambda retries the event twice, then sends it to the on-failure queue
(stacks/components/evidence_vault.py), and the function's Errors metric, which an alarm watches,
counts each failure. The object is logged before the copy, so a failure's log line names it.
"""

from __future__ import annotations

import json
import os
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .logic import NotEvidence, Source, copy_to_evidence

logger = Logger(service="evidence-copy")


class _Object(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    key: str = Field(min_length=1)
    version_id: str | None = Field(default=None, alias="version-id")


class _Bucket(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=3)


class _Detail(BaseModel):
    model_config = ConfigDict(extra="ignore")
    bucket: _Bucket
    object: _Object


class Event(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    detail_type: str = Field(alias="detail-type", pattern=r"^Object Created$")
    detail: _Detail


@cache
def s3_client() -> Any:
    return boto3.client("s3")


def sources() -> dict[str, Source]:
    raw = json.loads(os.environ["SOURCES"])
    return {
        bucket: Source(
            bucket=bucket,
            prefixes=tuple(spec["prefixes"]),
            destination=spec["destination"],
            excluded=tuple(spec.get("excluded", ())),
        )
        for bucket, spec in raw.items()
    }


def on_event(event: dict[str, Any], context: Any) -> dict[str, str]:
    try:
        parsed = Event.model_validate(event)
    except ValidationError as error:
        raise ValueError(f"not an S3 Object Created event: {error}") from None
    bucket, key = parsed.detail.bucket.name, parsed.detail.object.key
    source = sources().get(bucket)
    if source is None:
        raise NotEvidence(f"bucket {bucket} is not a source of evidence")
    logger.info("copying", extra={"source": f"{bucket}/{key}", "version": parsed.detail.object.version_id})
    copied = copy_to_evidence(
        s3_client(),
        evidence_bucket=os.environ["EVIDENCE_BUCKET"],
        source=source,
        key=key,
        version_id=parsed.detail.object.version_id,
    )
    logger.info("copied", extra={"source": f"{bucket}/{key}", **copied})
    return copied
