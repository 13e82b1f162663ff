"""Drift of LLM traffic, measured from what SageMaker and Bedrock already write to S3.

SageMaker Model Monitor is no longer open to new customers (SageMaker developer guide, "Data capture",
https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture.html), and its analyzers
are built for tabular data anyway. This job reads the last window of

- SageMaker data capture: JSON lines under `data-capture/<endpoint>/<variant>/yyyy/mm/dd/hh/`, one
  record per request, `{"captureData": {"endpointInput": {"observedContentType", "mode", "data",
  "encoding"}, "endpointOutput": {...}}, "eventMetadata": {"eventId", "inferenceTime"}, ...}`, where
  `data` is the payload as text for content types listed in the endpoint's CaptureContentTypeHeader
  (`encoding` JSON or CSV) and base64 otherwise (`encoding` BASE64: "If no headers are specified
  SageMaker AI will by default base64 encode when capturing the data", API reference,
  CaptureContentTypeHeader; "Capture data from real-time endpoint", model-monitor-data-capture-endpoint);
- Bedrock model invocation logs: gzipped JSON records under
  `<prefix>AWSLogs/<account>/BedrockModelInvocationLogs/<region>/yyyy/mm/dd/hh/` with `modelId`,
  `timestamp`, `input.inputBodyJson` and `output.outputBodyJson` (Bedrock user guide, "Monitor model
  invocation using CloudWatch Logs and Amazon S3", model-invocation-logging.html); bodies too large for
  the record go under a `data/` folder and are skipped, as is the permission-check object Bedrock writes;

and publishes, per endpoint or model: request count, prompt and answer length (p50, p90, characters),
language mix (share of non-ASCII and of CJK characters in prompts), refusal rate (answers that open
with a refusal, or that a guardrail blocked) and guardrail-intervention rate, and the cosine distance of
the window's mean text embedding (prompts, and answers) from a baseline centroid kept in S3 (the first
window with enough records becomes the baseline). The embedding is hashed character trigrams in a fixed
dimension, pure Python: cheap, deterministic across runs (blake2b, not Python's salted `hash`), and
sensitive to changes of topic, language and template, which is what drift means here.

Every function takes its AWS clients as arguments.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from botocore.exceptions import ClientError

DIMENSIONS = 256
BASELINE_VERSION = 1
ALL_MODELS = "all"
# Bounds per target and run, so one busy hour cannot exhaust the function's time or memory.
MAX_OBJECTS = 2000
MAX_RECORDS = 20_000
MAX_TEXT = 4000  # characters of a prompt or answer that are embedded

Source = Literal["sagemaker", "bedrock"]

# Answers that open with one of these are counted as refusals (English and Chinese; a heuristic).
_REFUSAL = re.compile(
    r"^\W*(?:"
    r"i(?:'m| am) (?:sorry|afraid|unable|not able)|"
    r"i can(?:not|'t|no) (?:help|assist|provide|comply|answer|do that|share)|"
    r"i (?:won't|will not|must decline)|"
    r"sorry, (?:but )?i can|"
    r"as an ai\b|"
    r"(?:很)?抱歉|對不起|对不起|我(?:無法|无法|不能)"
    r")",
    re.IGNORECASE,
)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
# Keys whose string values are prompt or answer text in the request and response bodies of the LMI,
# TGI and OpenAI-style containers and of the Bedrock Converse and InvokeModel APIs.
_PROMPT_KEYS = frozenset({"inputs", "prompt", "inputText", "text", "content", "input"})
_ANSWER_KEYS = frozenset(
    {"generated_text", "text", "outputText", "generation", "completion", "content", "output"}
)
_NOT_USER = frozenset({"assistant", "system"})
_SKIP_KEYS = frozenset({"system", "parameters", "inferenceConfig", "toolConfig", "usage", "metrics"})


@dataclass(frozen=True)
class Target:
    """One place to read: `name` is the metric dimension (the SageMaker endpoint name, or `bedrock`)."""

    name: str
    source: Source
    bucket: str
    prefix: str  # below it: yyyy/mm/dd/hh/
    baseline_bucket: str
    baseline_key: str


@dataclass(frozen=True)
class Exchange:
    group: str  # the endpoint, or the Bedrock model id as logged
    prompt: str
    answer: str
    intervened: bool = False


@dataclass
class Stats:
    group: str
    requests: int = 0
    prompt_lengths: list[int] = field(default_factory=list)
    answer_lengths: list[int] = field(default_factory=list)
    prompt_chars: int = 0
    non_ascii_chars: int = 0
    cjk_chars: int = 0
    refusals: int = 0
    interventions: int = 0
    prompt_sum: list[float] = field(default_factory=lambda: [0.0] * DIMENSIONS)
    answer_sum: list[float] = field(default_factory=lambda: [0.0] * DIMENSIONS)

    def add(self, exchange: Exchange) -> None:
        self.requests += 1
        self.prompt_lengths.append(len(exchange.prompt))
        self.answer_lengths.append(len(exchange.answer))
        self.prompt_chars += len(exchange.prompt)
        self.non_ascii_chars += sum(1 for c in exchange.prompt if ord(c) > 127)
        self.cjk_chars += len(_CJK.findall(exchange.prompt))
        self.interventions += int(exchange.intervened)
        self.refusals += int(exchange.intervened or is_refusal(exchange.answer))
        for total, text in ((self.prompt_sum, exchange.prompt), (self.answer_sum, exchange.answer)):
            for index, value in enumerate(embed(text)):
                total[index] += value

    def centroid(self, which: Literal["prompt", "answer"]) -> list[float]:
        total = self.prompt_sum if which == "prompt" else self.answer_sum
        return [value / self.requests for value in total] if self.requests else [0.0] * DIMENSIONS


# ---------------------------------------------------------------------------------------------- text


def embed(text: str, dims: int = DIMENSIONS) -> list[float]:
    """Hashed character trigrams of the lower-cased, space-normalised text, L2-normalised."""
    normalised = " " + " ".join(text[:MAX_TEXT].lower().split()) + " "
    vector = [0.0] * dims
    for index in range(len(normalised) - 2):
        digest = hashlib.blake2b(normalised[index : index + 3].encode(), digest_size=4).digest()
        vector[int.from_bytes(digest, "big") % dims] += 1.0
    norm = math.sqrt(sum(v * v for v in vector))
    return [v / norm for v in vector] if norm else vector


def cosine_distance(a: list[float], b: list[float]) -> float | None:
    """1 - cosine similarity; None when either vector is zero."""
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    if not norm:
        return None
    return max(0.0, 1.0 - sum(x * y for x, y in zip(a, b, strict=True)) / norm)


def is_refusal(answer: str) -> bool:
    return bool(_REFUSAL.match(answer[:200]))


def percentile(values: list[int], share: float) -> float:
    """Nearest-rank percentile (0 < share <= 1) of a non-empty list."""
    ordered = sorted(values)
    return float(ordered[max(0, math.ceil(share * len(ordered)) - 1)])


def _texts(value: Any, keys: frozenset[str], *, skip_roles: frozenset[str] = frozenset()) -> Iterator[str]:
    """String values under `keys` anywhere in a JSON value; messages of `skip_roles` are left out."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item, keys, skip_roles=skip_roles)
    elif isinstance(value, dict):
        if value.get("role") in skip_roles:
            return
        for key, item in value.items():
            if key in _SKIP_KEYS:
                continue
            if key in keys or key in ("messages", "choices", "message", "results", "candidates"):
                yield from _texts(item, keys, skip_roles=skip_roles)


def prompt_text(body: Any) -> str:
    """The user's text in a request body (assistant turns and system prompts left out)."""
    if isinstance(body, dict) and "messages" in body:
        body = body["messages"]
    return "\n".join(t for t in _texts(body, _PROMPT_KEYS, skip_roles=_NOT_USER) if t)


def answer_text(body: Any) -> str:
    return "\n".join(t for t in _texts(body, _ANSWER_KEYS) if t)


def guardrail_intervened(body: Any) -> bool:
    """Converse reports `stopReason: guardrail_intervened`; InvokeModel adds
    `amazon-bedrock-guardrailAction: INTERVENED` to the response body (Bedrock user guide, guardrails)."""
    if not isinstance(body, dict):
        return False
    return (
        body.get("stopReason") == "guardrail_intervened"
        or body.get("amazon-bedrock-guardrailAction") == "INTERVENED"
    )


# ---------------------------------------------------------------------------------------- records


def _payload(part: Any) -> Any:
    """The captured payload of endpointInput/endpointOutput: text decoded, JSON parsed where it is JSON."""
    if not isinstance(part, dict) or not isinstance(part.get("data"), str):
        return None
    data, encoding = part["data"], str(part.get("encoding", "")).upper()
    if encoding == "BASE64":
        try:
            data = base64.b64decode(data, validate=True).decode("utf-8", errors="replace")
        except (binascii.Error, ValueError):
            return None
    if encoding == "CSV":
        return data
    try:
        return json.loads(data)
    except ValueError:
        return data


def parse_capture(record: Any, group: str) -> Exchange | None:
    """One SageMaker data-capture record; None if it has no request."""
    capture = record.get("captureData") if isinstance(record, dict) else None
    if not isinstance(capture, dict):
        return None
    request = _payload(capture.get("endpointInput"))
    if request is None:
        return None
    response = _payload(capture.get("endpointOutput"))
    return Exchange(group=group, prompt=prompt_text(request), answer=answer_text(response))


def parse_invocation_log(record: Any) -> Exchange | None:
    """One Bedrock model invocation log record; None if it carries no request body."""
    if not isinstance(record, dict) or not isinstance(record.get("input"), dict):
        return None
    request = record["input"].get("inputBodyJson")
    if request is None:
        return None
    output = record.get("output") if isinstance(record.get("output"), dict) else {}
    response = output.get("outputBodyJson")
    return Exchange(
        group=str(record.get("modelId", "unknown")),
        prompt=prompt_text(request),
        answer=answer_text(response),
        intervened=guardrail_intervened(response),
    )


def record_time(record: Any, source: Source) -> datetime | None:
    try:
        raw = record["eventMetadata"]["inferenceTime"] if source == "sagemaker" else record["timestamp"]
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except (KeyError, TypeError, ValueError):
        return None


def json_records(body: bytes) -> Iterator[Any]:
    """JSON values of a (possibly gzipped) JSON-lines object; unparsable lines are skipped."""
    if body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)
    for line in body.decode("utf-8", errors="replace").splitlines():
        line = line.strip()
        if line:
            try:
                yield json.loads(line)
            except ValueError:
                continue


# -------------------------------------------------------------------------------------------- S3


def window(now: datetime, hours: int) -> tuple[datetime, datetime]:
    """The last `hours` whole hours before `now` (UTC)."""
    end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return end - timedelta(hours=hours), end


def hour_prefixes(prefix: str, start: datetime, end: datetime) -> list[str]:
    """`<prefix>yyyy/mm/dd/hh/` for every hour in [start, end)."""
    prefixes, hour = [], start
    while hour < end:
        prefixes.append(f"{prefix}{hour:%Y/%m/%d/%H}/")
        hour += timedelta(hours=1)
    return prefixes


def _skipped(source: Source, key: str, prefix: str) -> bool:
    rest = key[len(prefix) :]
    if source == "bedrock":
        # Large bodies are written apart under data/; Bedrock also writes a permission-check object.
        return "/data/" in f"/{rest}" or rest.endswith("permission-check")
    return not rest.endswith(".jsonl")


def read_exchanges(s3: Any, target: Target, start: datetime, end: datetime) -> tuple[list[Exchange], bool]:
    """The exchanges of [start, end) and whether the per-run bounds cut the window short."""
    exchanges: list[Exchange] = []
    objects = 0
    paginator = s3.get_paginator("list_objects_v2")
    for hour_prefix in hour_prefixes(target.prefix, start, end):
        for page in paginator.paginate(Bucket=target.bucket, Prefix=hour_prefix):
            for item in page.get("Contents", []):
                if _skipped(target.source, item["Key"], hour_prefix):
                    continue
                if objects >= MAX_OBJECTS or len(exchanges) >= MAX_RECORDS:
                    return exchanges, True
                objects += 1
                body = s3.get_object(Bucket=target.bucket, Key=item["Key"])["Body"].read()
                for record in json_records(body):
                    when = record_time(record, target.source)
                    if when is not None and not start <= when.astimezone(UTC) < end:
                        continue
                    exchange = (
                        parse_capture(record, target.name)
                        if target.source == "sagemaker"
                        else parse_invocation_log(record)
                    )
                    if exchange is not None:
                        exchanges.append(exchange)
    return exchanges, False


def load_baseline(s3: Any, target: Target) -> dict[str, Any]:
    """{group: {"prompt": [...], "answer": [...], ...}}; empty when none was written yet (or an old one).

    Whether it exists is asked with ListObjectsV2 first: the role may list only the baseline key (and
    the sources), and S3 answers GetObject on a missing key with 403 AccessDenied, not 404, to a
    caller without s3:ListBucket on the bucket (Amazon S3 API reference, GetObject, "Permissions").
    """
    listed = s3.list_objects_v2(Bucket=target.baseline_bucket, Prefix=target.baseline_key, MaxKeys=1)
    if not any(item.get("Key") == target.baseline_key for item in listed.get("Contents", [])):
        return {}
    try:
        body = s3.get_object(Bucket=target.baseline_bucket, Key=target.baseline_key)["Body"].read()
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return {}  # deleted between the two calls
        raise
    document = json.loads(body)
    if document.get("version") != BASELINE_VERSION or document.get("dimensions") != DIMENSIONS:
        return {}
    return document.get("groups", {})


def save_baseline(s3: Any, target: Target, groups: dict[str, Any]) -> None:
    document = {"version": BASELINE_VERSION, "dimensions": DIMENSIONS, "groups": groups}
    s3.put_object(
        Bucket=target.baseline_bucket,
        Key=target.baseline_key,
        Body=json.dumps(document).encode(),
        ContentType="application/json",
    )


# --------------------------------------------------------------------------------------- analysis


@dataclass(frozen=True)
class Report:
    target: str
    group: str
    metrics: dict[str, float]
    baseline_written: bool


def group_stats(target: Target, exchanges: Iterable[Exchange]) -> dict[str, Stats]:
    stats: dict[str, Stats] = {}
    for exchange in exchanges:
        groups = [exchange.group]
        if target.source == "bedrock":
            groups.append(ALL_MODELS)
        for group in groups:
            stats.setdefault(group, Stats(group=group)).add(exchange)
    return stats


def metrics_of(stats: Stats, baseline: dict[str, Any] | None, *, min_records: int) -> dict[str, float]:
    """The metric values of one group. Rates and distances need `min_records` records: fewer publish
    only the count and lengths (an idle hour must not look like drift)."""
    values: dict[str, float] = {"Requests": float(stats.requests)}
    if not stats.requests:
        return values
    values |= {
        "PromptLengthP50": percentile(stats.prompt_lengths, 0.5),
        "PromptLengthP90": percentile(stats.prompt_lengths, 0.9),
        "AnswerLengthP50": percentile(stats.answer_lengths, 0.5),
        "AnswerLengthP90": percentile(stats.answer_lengths, 0.9),
    }
    if stats.requests < min_records:
        return values
    if stats.prompt_chars:
        values["NonAsciiShare"] = 100.0 * stats.non_ascii_chars / stats.prompt_chars
        values["CjkShare"] = 100.0 * stats.cjk_chars / stats.prompt_chars
    values["RefusalRate"] = 100.0 * stats.refusals / stats.requests
    values["GuardrailInterventionRate"] = 100.0 * stats.interventions / stats.requests
    if baseline:
        for which, name in (("prompt", "PromptDistance"), ("answer", "AnswerDistance")):
            distance = cosine_distance(stats.centroid(which), baseline.get(which) or [])
            if distance is not None:
                values[name] = round(distance, 6)
    return values


def analyse(
    s3: Any, target: Target, *, start: datetime, end: datetime, min_records: int
) -> tuple[list[Report], bool]:
    """Read the window, compare with the baseline (writing it for groups that have none yet)."""
    exchanges, truncated = read_exchanges(s3, target, start, end)
    stats = group_stats(target, exchanges)
    if target.source == "sagemaker":
        stats.setdefault(target.name, Stats(group=target.name))  # an idle endpoint still reports 0
    baseline = load_baseline(s3, target)
    written = []
    for group, group_stats_ in stats.items():
        if group not in baseline and group_stats_.requests >= min_records:
            baseline[group] = {
                "prompt": group_stats_.centroid("prompt"),
                "answer": group_stats_.centroid("answer"),
                "records": group_stats_.requests,
                "window": [start.isoformat(), end.isoformat()],
            }
            written.append(group)
    if written:
        save_baseline(s3, target, baseline)
    reports = [
        Report(
            target=target.name,
            group=group,
            # The window that became the baseline has distance 0 by definition: not published.
            metrics=metrics_of(s, None if group in written else baseline.get(group), min_records=min_records),
            baseline_written=group in written,
        )
        for group, s in sorted(stats.items())
    ]
    return reports, truncated


def metric_data(
    reports: Iterable[Report], *, profile: str, source: Source, timestamp: datetime
) -> list[dict[str, Any]]:
    """CloudWatch MetricData: dimensions Profile, Source and Target (the endpoint, the Bedrock model id
    as logged, or `all` for every Bedrock model together)."""
    data = []
    for report in reports:
        dimensions = [
            {"Name": "Profile", "Value": profile},
            {"Name": "Source", "Value": source},
            {"Name": "Target", "Value": report.group[:1024]},
        ]
        for name, value in report.metrics.items():
            unit = (
                "Count" if name == "Requests" else "Percent" if name.endswith(("Rate", "Share")) else "None"
            )
            data.append(
                {
                    "MetricName": name,
                    "Dimensions": dimensions,
                    "Timestamp": timestamp,
                    "Value": value,
                    "Unit": unit,
                }
            )
    return data


def put_metrics(cloudwatch: Any, namespace: str, data: list[dict[str, Any]]) -> None:
    for index in range(0, len(data), 20):
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=data[index : index + 20])


def heartbeat(profile: str, timestamp: datetime) -> dict[str, Any]:
    """One per completed run: the alarm on its absence tells that the job stopped running."""
    return {
        "MetricName": "RunsCompleted",
        "Dimensions": [{"Name": "Profile", "Value": profile}],
        "Timestamp": timestamp,
        "Value": 1.0,
        "Unit": "Count",
    }


def run(
    s3: Any,
    cloudwatch: Any,
    targets: Iterable[Target],
    *,
    now: datetime,
    window_hours: int,
    min_records: int,
    profile: str,
    namespace: str,
) -> dict[str, Any]:
    """Analyse every target over the last window and publish; returns a summary for the log."""
    start, end = window(now, window_hours)
    summary: dict[str, Any] = {"window": [start.isoformat(), end.isoformat()], "targets": {}}
    for target in targets:
        reports, truncated = analyse(s3, target, start=start, end=end, min_records=min_records)
        # Timestamped at the window's end, the time the metrics describe.
        put_metrics(
            cloudwatch, namespace, metric_data(reports, profile=profile, source=target.source, timestamp=end)
        )
        summary["targets"][target.name] = {
            "truncated": truncated,
            "groups": {r.group: {**r.metrics, "baseline_written": r.baseline_written} for r in reports},
        }
    put_metrics(cloudwatch, namespace, [heartbeat(profile, end)])
    return summary
