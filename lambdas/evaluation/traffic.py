"""A traffic job's dataset: a sample of what an alias target really answered, from Bedrock's model
invocation logs, PII-redacted with the profile's guardrail before anything is written.

1. Read the logs of the last `days` days (`<prefix>yyyy/mm/dd/hh/` of the data bucket, newest hour
   first, at most MAX_OBJECTS objects) and keep the records of the target (`modelId` one of the
   target's identifiers) that someone other than the evaluation jobs made (their role's records are
   the evaluations' own answers). A record is used when its prompt and answer are text the parser
   reads (drift_monitor.logic; the prompt with the request's system instructions, judged_prompt),
   within MAX_PROMPT and MAX_ANSWER, and the model's guardrail did not intervene (then the answer is
   the blocked message, not the model's). The window ends at the hour the run started in.
2. Draw a uniform sample with a seed of the run's token (a retried step draws the same rows).
3. Redact: ApplyGuardrail on the prompt (source INPUT) and on the answer (OUTPUT). The answer is sent
   without grounding source and query, so no contextual grounding check runs ("Contextual grounding
   checks require 3 components": Bedrock user guide, guardrails-contextual-grounding-check.html). The
   guardrail's masked text replaces an ANONYMIZED entity. A record is dropped, never written, when
   any policy BLOCKED it or when PII was detected without being masked (a policy in detect mode).
   Records are redacted in sample order until `sample` rows are kept.
4. Write `dataset.jsonl` in Bedrock's own-responses format ({prompt, category, modelResponses:
   [{response, modelIdentifier}]}: "Prepare a dataset for an evaluation job using your own inference
   response data", Bedrock user guide) and `sample.json`, the counts of what was read, matched, dropped
   and why.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ..drift_monitor.logic import hour_prefixes, json_records, parse_invocation_log, prompt_text, record_time
from .results import bedrock_category

MAX_OBJECTS = 3000  # log objects read per run (Bedrock writes several an hour)
MAX_PROMPT = 8000  # characters of a prompt (with its instructions); longer records are not sampled
# Characters of an answer: ApplyGuardrail's contextual grounding response limit is 5,000 characters
# (Bedrock quotas, "Contextual grounding response length in text units": 5 units of 1,000 characters).
MAX_ANSWER = 5000
READ_RESERVE_SECONDS = 300  # reading stops when less than this is left: the redaction needs it
REDACT_RESERVE_SECONDS = 30  # redaction stops when less than this is left: the files are written
CATEGORY = bedrock_category("traffic", "und")  # one category; "und": the language is not known


@dataclass(frozen=True)
class Source:
    bucket: str
    prefix: str  # <INVOCATION_LOG_PREFIX>AWSLogs/<account>/BedrockModelInvocationLogs/<region>/


@dataclass
class Counts:
    objects: int = 0
    records: int = 0
    matched: int = 0
    unreadable: int = 0  # the target's records without a readable prompt and answer, or too long
    intervened: int = 0  # the model's guardrail intervened: the answer is its message
    blocked: int = 0  # dropped by the redaction: a policy blocked the prompt or the answer
    unmasked: int = 0  # dropped: PII detected and not masked
    rows: int = 0
    cut: bool = False  # MAX_OBJECTS (or the time to read) reached before the window's oldest hour
    short: bool = False  # the time ran out before `sample` rows were redacted

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def instructions(body: object) -> str:
    """The system text of a request body: Converse's `system` blocks, a `system` string, or the
    messages of role system."""
    if not isinstance(body, dict):
        return ""
    found = []
    system = body.get("system")
    if isinstance(system, str):
        found.append(system)
    elif isinstance(system, list):
        found += [b["text"] for b in system if isinstance(b, dict) and isinstance(b.get("text"), str)]
    for message in body.get("messages") or []:
        if isinstance(message, dict) and message.get("role") == "system":
            content = message.get("content")
            if isinstance(content, str):
                found.append(content)
            elif isinstance(content, list):
                found += [
                    b["text"] for b in content if isinstance(b, dict) and isinstance(b.get("text"), str)
                ]
    return "\n".join(t for t in found if t.strip())


def judged_prompt(record: dict) -> str:
    """What the judge reads as the prompt: the instructions the model was given, then what the user
    asked, so following_instructions and professional_style are scored against the real instructions."""
    body = record["input"].get("inputBodyJson")
    asked = prompt_text(body).strip()
    given = instructions(body).strip()
    return f"{given}\n\n{asked}" if given and asked else asked


@dataclass(frozen=True)
class Candidate:
    prompt: str
    answer: str


@dataclass
class Reservoir:
    """Algorithm R: a uniform sample of `size` from a stream of unknown length."""

    size: int
    rng: random.Random
    seen: int = 0
    items: list[Candidate] = field(default_factory=list)

    def offer(self, item: Candidate) -> None:
        self.seen += 1
        if len(self.items) < self.size:
            self.items.append(item)
            return
        slot = self.rng.randrange(self.seen)
        if slot < self.size:
            self.items[slot] = item


def is_theirs(record: Any, excluded_roles: tuple[str, ...]) -> bool:
    """A record the evaluation jobs made: their role's sessions (`assumed-role/<name>/...`)."""
    identity = record.get("identity") if isinstance(record, dict) else None
    arn = str(identity.get("arn", "")) if isinstance(identity, dict) else ""
    return any(f":assumed-role/{role}/" in arn for role in excluded_roles)


def candidates(
    s3: Any,
    source: Source,
    *,
    identifiers: tuple[str, ...],
    excluded_roles: tuple[str, ...],
    now: datetime,
    days: int,
    reservoir: Reservoir,
    time_left: Callable[[], float] = lambda: float("inf"),
) -> Counts:
    """Offer the target's usable records of the window to `reservoir`, newest hour first. The window is
    the `days` before the hour `now` is in (that hour, still being written, is left out), so a retried
    step reads the same records."""
    counts = Counts()
    end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    for key in _log_keys(s3, source, start, end):
        if counts.objects >= MAX_OBJECTS or time_left() < READ_RESERVE_SECONDS:
            counts.cut = True
            return counts
        counts.objects += 1
        body = s3.get_object(Bucket=source.bucket, Key=key)["Body"].read()
        for record in json_records(body):
            counts.records += 1
            when = record_time(record, "bedrock")
            if when is not None and not start <= when.astimezone(UTC) < end:
                continue
            if not isinstance(record, dict) or record.get("modelId") not in identifiers:
                continue
            if is_theirs(record, excluded_roles):
                continue
            counts.matched += 1
            exchange = parse_invocation_log(record)
            if exchange is None or exchange.intervened:
                counts.intervened += exchange is not None
                counts.unreadable += exchange is None
                continue
            prompt, answer = judged_prompt(record), exchange.answer.strip()
            if not prompt or not answer or len(prompt) > MAX_PROMPT or len(answer) > MAX_ANSWER:
                counts.unreadable += 1
                continue
            reservoir.offer(Candidate(prompt, answer))
    return counts


def _log_keys(s3: Any, source: Source, start: datetime, end: datetime) -> Iterator[str]:
    """The log objects of the hours in [start, end), newest hour first: one listing per day
    (`<prefix>yyyy/mm/dd/`), not per hour. Large bodies are written apart under data/, and Bedrock
    also writes a permission-check object: neither is a log."""
    paginator = s3.get_paginator("list_objects_v2")
    hours = set(hour_prefixes(source.prefix, start, end))
    days = sorted({prefix[: -len("hh/")] for prefix in hours}, reverse=True)
    for day in days:
        keys = []
        for page in paginator.paginate(Bucket=source.bucket, Prefix=day):
            keys += [item["Key"] for item in page.get("Contents", [])]
        for key in sorted(keys, reverse=True):
            hour, _, rest = key[len(day) :].partition("/")
            if f"{day}{hour}/" not in hours or "/data/" in f"/{rest}" or rest.endswith("permission-check"):
                continue
            yield key


# ------------------------------------------------------------------------------------ redaction


def _actions(value: Any) -> list[str]:
    """The action of every filter in an assessment, at any depth."""
    found = []
    if isinstance(value, dict):
        if isinstance(value.get("action"), str):
            found.append(value["action"])
        for item in value.values():
            found += _actions(item)
    elif isinstance(value, list):
        for item in value:
            found += _actions(item)
    return found


def _pii_actions(assessment: dict) -> list[tuple[str, Any]]:
    policy = assessment.get("sensitiveInformationPolicy") or {}
    entries = [*(policy.get("piiEntities") or []), *(policy.get("regexes") or [])]
    return [(str(e.get("action", "")), e.get("detected")) for e in entries if isinstance(e, dict)]


def redact(runtime: Any, *, guardrail: str, version: str, source: str, text: str) -> tuple[str | None, str]:
    """The text as the guardrail masks it, and why it was dropped ("" when kept): `blocked` when any
    policy blocked it, `unmasked` when PII was detected and left as it was."""
    response = runtime.apply_guardrail(
        guardrailIdentifier=guardrail,
        guardrailVersion=version,
        source=source,
        content=[{"text": {"text": text}}],
    )
    assessments = [a for a in response.get("assessments") or [] if isinstance(a, dict)]
    if any(action == "BLOCKED" for a in assessments for action in _actions(a)):
        return None, "blocked"
    # Detected and left as it was (a policy in detect mode); an entry without `detected` counts as
    # detected: only the guardrail's own False lets the text through.
    if any(
        action == "NONE" and detected is not False
        for a in assessments
        for action, detected in _pii_actions(a)
    ):
        return None, "unmasked"
    if response.get("action") != "GUARDRAIL_INTERVENED":
        return text, ""
    outputs = response.get("outputs") or []
    masked = "".join(o.get("text", "") for o in outputs if isinstance(o, dict))
    return (masked, "") if masked else (None, "blocked")


def sample(
    s3: Any,
    runtime: Any,
    *,
    logs: Source,
    bucket: str,
    dataset_key: str,
    summary_key: str,
    identifiers: tuple[str, ...],
    excluded_roles: tuple[str, ...],
    label: str,
    size: int,
    days: int,
    seed: str,
    now: datetime,
    guardrail: str,
    guardrail_version: str,
    time_left: Callable[[], float] = lambda: float("inf"),
) -> Counts:
    """Write the job's dataset (only redacted rows) and its counts; see the module docstring.
    `time_left`: the seconds the function has left; reading and then redacting stop early enough
    to write what was kept."""
    # A reproducible draw: a retried step samples the same rows.
    rng = random.Random(seed)  # noqa: S311 - sampling, not cryptography
    # Twice the rows wanted: the redaction drops some.
    reservoir = Reservoir(size=2 * size, rng=rng)
    counts = candidates(
        s3,
        logs,
        identifiers=identifiers,
        excluded_roles=excluded_roles,
        now=now,
        days=days,
        reservoir=reservoir,
        time_left=time_left,
    )
    drawn = list(reservoir.items)
    rng.shuffle(drawn)
    lines = []
    for candidate in drawn:
        if len(lines) >= size:
            break
        if time_left() < REDACT_RESERVE_SECONDS:
            counts.short = True
            break
        rail = {"guardrail": guardrail, "version": guardrail_version}
        prompt, why = redact(runtime, **rail, source="INPUT", text=candidate.prompt)
        answer = None
        if prompt is not None:
            answer, why = redact(runtime, **rail, source="OUTPUT", text=candidate.answer)
        if answer is None:
            setattr(counts, why, getattr(counts, why) + 1)
            continue
        response = {"response": answer, "modelIdentifier": label}
        lines.append({"prompt": prompt, "category": CATEGORY, "modelResponses": [response]})
    counts.rows = len(lines)
    text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    if lines:
        s3.put_object(
            Bucket=bucket, Key=dataset_key, Body=text.encode("utf-8"), ContentType="application/jsonl"
        )
    summary = {**counts.as_dict(), "identifiers": list(identifiers), "days": days}
    s3.put_object(
        Bucket=bucket,
        Key=summary_key,
        Body=json.dumps(summary, indent=1).encode(),
        ContentType="application/json",
    )
    return counts
