"""Lambda entry point of the evaluation runs' state machine (stacks/components/model_evaluation.py):
one function, seven steps, chosen by the payload's `action` (runs.py does the work):

- select  {reason, digests, jobs: [{key, digest, schedule_only}], execution, started} -> the run
- sample  {run, job: {key, identifiers, excluded_roles, label, sample, days}, guardrail: {id, version}}
          -> the counts of a traffic job's sample (traffic.py), its dataset written
- gate_dataset {run, job: {key, label}, output_key} -> a training gate's dataset from the candidate's
          answers (gate.py)
- gate_verdict {run, evaluation, result, answers, thresholds} -> {passed, reason, customer_metadata}
- collect {run, job, check} -> the job's summary (scores, drops, or why it did not complete)
- report  {run, results} -> {report, failed, regressed}
- accept  {run: "<run id>"} -> the accepted jobs

A payload that is not one of these is refused with the fields it lacks: the state machine sends only
these, and a hand-started execution with a typo must fail loudly rather than do something else.

Environment (validated at cold start): EVALUATION_BUCKET, EVALUATION_PREFIX, EVALUATION_PROFILE,
EVALUATION_NAMESPACE; EVALUATION_LOGS_PREFIX (the invocation logs' folder of this account and Region
in the same bucket) with traffic jobs.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, Literal

import boto3
from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from . import gate
from .runs import Place, accept, collect, finish, select
from .traffic import Source, sample

logger = Logger(service="evaluation")

RUN_ID = r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{12}$"
KEY = r"^[a-z0-9_]{1,64}$"


class _Settings(BaseModel):
    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    prefix: str = Field(min_length=1, pattern=r"/$")
    profile: str = Field(min_length=1)
    namespace: str = Field(min_length=1)
    logs_prefix: str = Field(default="", pattern=r"^$|/$")


def _settings(environ: dict[str, str]) -> _Settings:
    try:
        return _Settings(
            bucket=environ.get("EVALUATION_BUCKET", ""),
            prefix=environ.get("EVALUATION_PREFIX", ""),
            profile=environ.get("EVALUATION_PROFILE", ""),
            namespace=environ.get("EVALUATION_NAMESPACE", ""),
            logs_prefix=environ.get("EVALUATION_LOGS_PREFIX", ""),
        )
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise RuntimeError(f"evaluation function environment is not valid: {problems}") from None


SETTINGS = _settings(dict(os.environ))
PLACE = Place(SETTINGS.bucket, SETTINGS.prefix)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Job(_Strict):
    key: str = Field(pattern=KEY)
    digest: str = Field(min_length=1)
    schedule_only: bool = False


class _Select(_Strict):
    action: Literal["select"]
    reason: Literal["schedule", "deployment", "manual"]
    digests: dict[str, str]
    jobs: list[_Job] = Field(min_length=1)
    execution: str = Field(min_length=1)
    started: str = Field(min_length=1)


class _Run(BaseModel):
    model_config = ConfigDict(extra="allow")  # the rest of select's answer (keys, selected) passes through

    id: str = Field(pattern=RUN_ID)
    token: str = Field(pattern=r"^[0-9a-f]{12}$")
    digests: dict[str, str]


class _TrafficJob(_Strict):
    key: str = Field(pattern=KEY)
    identifiers: list[str] = Field(min_length=1)
    excluded_roles: list[str]
    label: str = Field(pattern=r"^[a-zA-Z0-9]([a-zA-Z0-9._-]){0,255}$")
    sample: int = Field(ge=1, le=1000)
    days: int = Field(ge=1, le=30)


class _Guardrail(_Strict):
    id: str = Field(min_length=1)
    version: str = Field(min_length=1)


class _Sample(_Strict):
    action: Literal["sample"]
    run: _Run
    job: _TrafficJob
    guardrail: _Guardrail


class _GateJob(_Strict):
    key: str = Field(pattern=KEY)
    label: str = Field(pattern=r"^[a-zA-Z0-9]([a-zA-Z0-9._-]){0,255}$")


class _GateDataset(_Strict):
    action: Literal["gate_dataset"]
    run: _Run
    job: _GateJob
    output_key: str = Field(min_length=1)


class _GateVerdict(_Strict):
    action: Literal["gate_verdict"]
    run: _Run
    evaluation: str = Field(min_length=1)
    result: dict[str, Any]
    answers: dict[str, int]
    thresholds: dict[str, float]


class _JobSummary(_Strict):
    key: str = Field(pattern=KEY)
    baseline_key: str = Field(pattern=KEY)
    evaluation: str
    kind: Literal["model", "knowledge_base", "traffic", "gate"]
    target: str
    alias: str
    prompt_version: str
    metrics: list[str]
    tolerance: float = Field(ge=0, le=1)


class _Collect(_Strict):
    action: Literal["collect"]
    run: _Run
    job: _JobSummary
    check: dict[str, Any]


class _Report(_Strict):
    action: Literal["report"]
    run: _Run
    results: list[dict[str, Any]]


class _Accept(_Strict):
    action: Literal["accept"]
    run: str = Field(pattern=RUN_ID)


_REQUEST = TypeAdapter(
    Annotated[
        _Select | _Sample | _GateDataset | _GateVerdict | _Collect | _Report | _Accept,
        Field(discriminator="action"),
    ]
)


@cache
def s3() -> Any:
    return boto3.client("s3")


@cache
def cloudwatch() -> Any:
    return boto3.client("cloudwatch")


@cache
def bedrock_runtime() -> Any:
    return boto3.client("bedrock-runtime")


@logger.inject_lambda_context(clear_state=True)
def on_event(event: dict[str, Any], context: Any) -> Any:
    try:
        request = _REQUEST.validate_python(event)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'event'}: {e['msg']}" for e in error.errors())
        raise ValueError(f"not an evaluation step: {problems}") from None
    common = {"profile": SETTINGS.profile, "namespace": SETTINGS.namespace}
    if isinstance(request, _Select):
        result = select(
            s3(),
            PLACE,
            reason=request.reason,
            jobs=[j.model_dump() for j in request.jobs],
            digests=request.digests,
            execution=request.execution,
            started=request.started,
        )
        logger.info(
            "run selected", extra={"run": result["id"], "jobs": result["keys"], "reason": request.reason}
        )
    elif isinstance(request, _Sample):
        if not SETTINGS.logs_prefix:
            raise RuntimeError(
                "a traffic job needs EVALUATION_LOGS_PREFIX: the stack sets it with traffic jobs"
            )
        run, job = request.run.model_dump(), request.job
        folder = PLACE.key("runs", run["id"], job.key)
        counts = sample(
            s3(),
            bedrock_runtime(),
            logs=Source(SETTINGS.bucket, SETTINGS.logs_prefix),
            bucket=SETTINGS.bucket,
            dataset_key=f"{folder}/dataset.jsonl",
            summary_key=f"{folder}/sample.json",
            identifiers=tuple(job.identifiers),
            excluded_roles=tuple(job.excluded_roles),
            label=job.label,
            size=job.sample,
            days=job.days,
            seed=run["token"],
            # The run's start (its id), not the clock: a retried step reads the same window.
            now=datetime.strptime(run["id"][:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC),
            guardrail=request.guardrail.id,
            guardrail_version=request.guardrail.version,
            time_left=lambda: context.get_remaining_time_in_millis() / 1000,
        )
        result = counts.as_dict()
        logger.info("traffic sampled", extra={"run": run["id"], "job": job.key, **result})
    elif isinstance(request, _GateDataset):
        run = request.run.model_dump()
        result = gate.dataset(
            s3(), PLACE, run=run, key=request.job.key, label=request.job.label, output_key=request.output_key
        )
        logger.info("candidate's answers read", extra={"run": run["id"], "job": request.job.key, **result})
    elif isinstance(request, _GateVerdict):
        run = request.run.model_dump()
        result = gate.verdict(
            s3(),
            PLACE,
            run=run,
            evaluation=request.evaluation,
            result=request.result,
            thresholds=request.thresholds,
            answers=request.answers,
        )
        logger.info(
            "gate decided", extra={"run": run["id"], "passed": result["passed"], "reason": result["reason"]}
        )
    elif isinstance(request, _Collect):
        run = request.run.model_dump()
        result = collect(
            s3(), cloudwatch(), PLACE, run=run, job=request.job.model_dump(), check=request.check, **common
        )
        logger.info(
            "job collected", extra={"run": run["id"], "job": result["key"], "status": result["status"]}
        )
    elif isinstance(request, _Report):
        result = finish(s3(), PLACE, run=request.run.model_dump(), results=request.results)
        logger.info("run reported", extra=result)
    else:
        result = accept(s3(), cloudwatch(), PLACE, run_id=request.run, **common)
        logger.info("run accepted", extra=result)
    return result
