"""`genai-stack smoke PROFILE`: whether a deployed profile is in the state its templates promise.

After `cdk deploy --all`, with the caller's credentials: every stack of the profile is deployed and
settled; no alarm of the profile is in ALARM; its budgets exist with the profile's limits and its
anomaly monitor exists; each SageMaker endpoint is InService and each model host's load balancer sees
healthy hosts (an endpoint or fleet scaled to zero is skipped with a note); the gateway answers a chat
per alias, an embedding per embeddings alias and an image per image alias, blocks each word its
guardrail filters and each example of its denied topics, in the languages the profile wrote them (the
probes of a language AWS does not document for those policies), and the answer's log line and metric
reach CloudWatch; the first knowledge base ingests a document and Retrieve finds it. Everything is a
read except the gateway's calls, the key smoke creates for them and the knowledge-base document, both
removed afterwards.

What it looks for comes from the profile's templates, synthesized offline as `cdk synth` would: the
stacks and their resources by logical ID; CloudFormation's DescribeStackResources gives the deployed
names. Each check is a function of the clients it needs (injected: tests stub them) returning results;
`run_smoke` picks the checks the templates call for; the command prints the table and exits 1 when
anything failed.
"""

from __future__ import annotations

import base64
import json
import re
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from botocore.exceptions import BotoCoreError, ClientError

from genai_stack.catalog import cost_region
from genai_stack.cli.app import EXIT_ERROR, app, errors, fail, report_checks
from genai_stack.config import Profile, ProfileError, load_profile

Status = Literal["pass", "fail", "skip"]
SETTLED = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE")
# DescribeAlarms takes up to 100 names a call (CloudWatch API reference, DescribeAlarms AlarmNames).
ALARM_NAMES_PER_CALL = 100


@dataclass(frozen=True)
class Result:
    """One check: `detail` says what was found and, unless it passed, what to do."""

    check: str
    status: Status
    detail: str


@dataclass
class Stack:
    """One stack of the profile: its template (offline) and, once read, its deployed resources."""

    name: str
    region: str
    template: dict
    physical: dict[str, str] = field(default_factory=dict)  # logical ID -> physical ID
    outputs: dict[str, str] = field(default_factory=dict)

    def of_type(self, resource_type: str) -> list[tuple[str, dict]]:
        return [
            (logical_id, resource)
            for logical_id, resource in self.template.get("Resources", {}).items()
            if resource["Type"] == resource_type
        ]


def stacks_of(profile: Profile, templates: Mapping[str, dict]) -> list[Stack]:
    """The profile's stacks by name; the cost stack lives where Budgets and Cost Explorer are
    (stacks/stage.py), every other stack in the profile's region."""
    return [
        Stack(
            name=name,
            region=cost_region(profile.region) if name == f"{profile.name}-cost" else profile.region,
            template=template,
        )
        for name, template in templates.items()
    ]


# --------------------------------------------------------------------------------------------------
# The checks


def check_stack(cloudformation: Any, stack: Stack) -> list[Result]:
    """The stack exists and is settled; reads its resources' deployed names into `stack.physical`."""
    check = f"stack {stack.name}"
    try:
        (described,) = cloudformation.describe_stacks(StackName=stack.name)["Stacks"]
    except ClientError as error:
        if "does not exist" not in error.response.get("Error", {}).get("Message", ""):
            raise
        return [Result(check, "fail", f"not deployed in {stack.region}: run `cdk deploy --all`")]
    status = described["StackStatus"]
    stack.outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    if status not in SETTLED:
        return [Result(check, "fail", f"{status}: wait for it to settle, or see its events")]
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack.name):
        for resource in page["StackResourceSummaries"]:
            if resource.get("PhysicalResourceId"):
                stack.physical[resource["LogicalResourceId"]] = resource["PhysicalResourceId"]
    return [Result(check, "pass", status)]


def check_alarms(cloudwatch: Any, names: Sequence[str]) -> list[Result]:
    """No alarm of the profile is in ALARM (OK or INSUFFICIENT_DATA pass: a new deployment has no data
    yet), and every alarm the templates define exists."""
    states: dict[str, str] = {}
    for start in range(0, len(names), ALARM_NAMES_PER_CALL):
        batch = list(names[start : start + ALARM_NAMES_PER_CALL])
        for page in cloudwatch.get_paginator("describe_alarms").paginate(
            AlarmNames=batch, AlarmTypes=["MetricAlarm", "CompositeAlarm"]
        ):
            for alarm in page.get("MetricAlarms", []) + page.get("CompositeAlarms", []):
                states[alarm["AlarmName"]] = alarm["StateValue"]
    missing = sorted(set(names) - set(states))
    firing = sorted(name for name, state in states.items() if state == "ALARM")
    if missing or firing:
        problems = (
            [f"in ALARM: {', '.join(firing)} (docs/operations.md says what each means)"] if firing else []
        )
        problems += [f"missing: {', '.join(missing)}"] if missing else []
        return [Result("alarms", "fail", "; ".join(problems))]
    counts = {state: list(states.values()).count(state) for state in sorted(set(states.values()))}
    return [Result("alarms", "pass", ", ".join(f"{n} {state}" for state, n in counts.items()) or "none")]


def check_budgets(budgets: Any, *, account: str, expected: Mapping[str, float]) -> list[Result]:
    """Each budget of the templates exists with its monthly limit in USD (`expected`: name -> limit)."""
    results = []
    for name, limit in sorted(expected.items()):
        check = f"budget {name}"
        try:
            budget = budgets.describe_budget(AccountId=account, BudgetName=name)["Budget"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "NotFoundException":
                raise
            results.append(Result(check, "fail", "missing: the cost stack's deploy did not create it"))
            continue
        amount = float(budget["BudgetLimit"]["Amount"])
        unit = budget["BudgetLimit"]["Unit"]
        if unit != "USD" or abs(amount - limit) > 0.005:
            results.append(Result(check, "fail", f"limit {amount:g} {unit}, the profile says {limit:g} USD"))
        else:
            results.append(Result(check, "pass", f"{amount:g} USD a month"))
    return results


def check_anomaly_monitors(ce: Any, arns: Sequence[str]) -> list[Result]:
    """The cost anomaly monitors of the templates exist."""
    found = {
        m["MonitorArn"] for m in ce.get_anomaly_monitors(MonitorArnList=list(arns)).get("AnomalyMonitors", [])
    }
    missing = sorted(set(arns) - found)
    if missing:
        return [Result("cost anomaly monitor", "fail", f"missing: {', '.join(missing)}")]
    return [Result("cost anomaly monitor", "pass", f"{len(found)} monitor(s)")]


def check_endpoints(sagemaker: Any, names: Sequence[str]) -> list[Result]:
    """Each SageMaker endpoint is InService; one scaled to zero instances is skipped (nothing to ask)."""
    results = []
    for name in names:
        check = f"endpoint {name}"
        try:
            endpoint = sagemaker.describe_endpoint(EndpointName=name)
        except ClientError as error:
            if "Could not find endpoint" not in error.response.get("Error", {}).get("Message", ""):
                raise
            results.append(Result(check, "fail", "missing: the inference stack's deploy did not create it"))
            continue
        status = endpoint["EndpointStatus"]
        instances = sum(v.get("CurrentInstanceCount", 0) for v in endpoint.get("ProductionVariants", []))
        if status == "InService" and instances == 0:
            results.append(Result(check, "skip", "scaled to zero instances: no health to ask for"))
        elif status == "InService":
            results.append(Result(check, "pass", f"InService, {instances} instance(s)"))
        else:
            reason = endpoint.get("FailureReason", "")
            results.append(Result(check, "fail", f"{status}{': ' + reason if reason else ''}"))
    return results


def check_hosts(autoscaling: Any, elbv2: Any, fleets: Sequence[tuple[str, str]]) -> list[Result]:
    """Each model host fleet (Auto Scaling group, load-balancer target group): at least one healthy
    host when the group wants any; a fleet at zero (off hours) is skipped."""
    results = []
    for group, target_group in fleets:
        check = f"hosts {group}"
        groups = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"]
        if not groups:
            results.append(Result(check, "fail", "missing: the hosting stack's deploy did not create it"))
            continue
        if groups[0]["DesiredCapacity"] == 0:
            results.append(Result(check, "skip", "scaled to zero (off hours): no host to ask"))
            continue
        health = elbv2.describe_target_health(TargetGroupArn=target_group)["TargetHealthDescriptions"]
        states = [t["TargetHealth"]["State"] for t in health]
        healthy = states.count("healthy")
        if healthy:
            results.append(Result(check, "pass", f"{healthy} of {len(states)} host(s) healthy"))
        else:
            reasons = sorted({t["TargetHealth"].get("Reason", t["TargetHealth"]["State"]) for t in health})
            results.append(
                Result(
                    check, "fail", f"no healthy host of {len(states)} ({', '.join(reasons) or 'no targets'})"
                )
            )
    return results


# --------------------------------------------------------------------------------------------------
# The gateway, called as an application would


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def request_id(self) -> str | None:
        """API Gateway's id of the request (x-amzn-RequestId), which the gateway's log lines carry as
        correlation_id (lambdas/gateway/handler.py)."""
        return next((v for k, v in self.headers.items() if k.lower() == "x-amzn-requestid"), None)


# POST `path` (below the gateway's base URL) with a JSON body; the caller adds its credentials.
Caller = Callable[[str, dict[str, Any]], Answer]
SMOKE_PROMPT = "Reply with the single word OK."


def _error(answer: Answer) -> str:
    error = answer.body.get("error") if isinstance(answer.body, dict) else None
    message = error.get("message") if isinstance(error, dict) else str(answer.body)[:200]
    return f"HTTP {answer.status}: {message}"


def check_chat(call: Caller, alias: str, answered: list[tuple[str, Answer]] | None = None) -> list[Result]:
    """A chat completion through `alias` answers with text (appended to `answered` when it does)."""
    check = f"gateway chat {alias}"
    answer = call(
        "/chat/completions",
        {
            "model": alias,
            "messages": [{"role": "user", "content": SMOKE_PROMPT}],
            "max_tokens": 16,
            "temperature": 0,
        },
    )
    choices = answer.body.get("choices") or [{}]
    text = (choices[0].get("message") or {}).get("content")
    if answer.status == 200 and text:
        if answered is not None:
            answered.append((alias, answer))
        return [
            Result(
                check,
                "pass",
                f"answered ({answer.body.get('model', alias)}, id {answer.body.get('id', '?')})",
            )
        ]
    return [Result(check, "fail", _error(answer) if answer.status != 200 else "HTTP 200 without any text")]


def check_embedding(call: Caller, alias: str) -> list[Result]:
    """An embedding through `alias` is a non-empty vector."""
    check = f"gateway embedding {alias}"
    answer = call("/embeddings", {"model": alias, "input": "smoke test"})
    data = answer.body.get("data") or [{}]
    vector = data[0].get("embedding") or []
    if answer.status == 200 and vector:
        return [Result(check, "pass", f"{len(vector)} dimensions")]
    return [Result(check, "fail", _error(answer) if answer.status != 200 else "HTTP 200 without a vector")]


# A prompt no content filter objects to, for one image per image alias (billed: one image each).
SMOKE_IMAGE_PROMPT = "A plain white ceramic mug on a wooden table, soft daylight, product photo."
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_image(call: Caller, alias: str) -> list[Result]:
    """One image through `alias` comes back as a PNG (b64_json), and says which target made it (an
    endpoint alias may be answered by its fallback while the endpoint starts: x-genai-target)."""
    check = f"gateway image {alias}"
    answer = call(
        "/images/generations",
        {"model": alias, "prompt": SMOKE_IMAGE_PROMPT, "size": "1024x1024", "response_format": "b64_json"},
    )
    data = answer.body.get("data") or [{}]
    try:
        image = base64.b64decode(data[0].get("b64_json") or "", validate=True)
    except ValueError:
        image = b""
    if answer.status == 200 and image.startswith(PNG_SIGNATURE):
        target = next((v for k, v in answer.headers.items() if k.lower() == "x-genai-target"), "?")
        return [Result(check, "pass", f"a {len(image):,}-byte PNG from {target}")]
    return [Result(check, "fail", _error(answer) if answer.status != 200 else "HTTP 200 without a PNG")]


def guardrail_probes(guardrail: Any) -> list[str]:
    """Prompts the guardrail must block: one per filtered word and every denied topic's examples, in
    the languages the profile wrote them. AWS documents few languages for denied topics and word filters
    (guardrails-supported-languages.html), so a deployed guardrail is tried with each profile's own
    examples, e.g. marketing-copy-apac's Traditional Chinese ones."""
    words = [
        f"請介紹{word}。" if re.search(r"[\u4e00-\u9fff]", word) else f"Tell me about {word}."
        for word in guardrail.words
    ]
    return words + [example for topic in guardrail.denied_topics for example in topic.examples]


def check_guardrail_blocks(call: Caller, alias: str, prompt: str, blocked_message: str) -> list[Result]:
    """A prompt the guardrail must block (a filtered word, a denied topic's example) comes back blocked:
    the gateway answers with the guardrail's blocked-input message and finish_reason content_filter
    (lambdas/gateway/guardrail.py)."""
    check = "guardrail blocks"
    answer = call(
        "/chat/completions",
        {"model": alias, "messages": [{"role": "user", "content": prompt}], "max_tokens": 16},
    )
    choice = (answer.body.get("choices") or [{}])[0]
    if answer.status == 200 and choice.get("finish_reason") == "content_filter":
        return [Result(check, "pass", f"{prompt!r} was blocked")]
    if answer.status != 200:
        return [Result(check, "fail", _error(answer))]
    text = (choice.get("message") or {}).get("content", "")
    what = "the blocked message" if text == blocked_message else "a model answer"
    reason = choice.get("finish_reason")
    return [
        Result(
            check,
            "fail",
            f"{prompt!r} was answered (finish_reason {reason!r}, {what}): is the guardrail on, and does "
            "it cover this language?",
        )
    ]


def gateway_checks(
    profile: Profile, call: Caller, answered: list[tuple[str, Answer]] | None = None
) -> list[Result]:
    """Chat per alias, embedding per embeddings alias, an image per image alias, and each of the
    guardrail's probes blocked
    (guardrail_probes). The chat answers go to `answered`."""
    gateway = profile.gateway
    assert gateway is not None
    results: list[Result] = []
    for alias in gateway.aliases:
        results += _guarded(f"gateway chat {alias}", lambda a=alias: check_chat(call, a, answered))
    for alias in gateway.embeddings:
        results += _guarded(f"gateway embedding {alias}", lambda a=alias: check_embedding(call, a))
    for alias in gateway.images:
        results += _guarded(f"gateway image {alias}", lambda a=alias: check_image(call, a))
    guardrail = profile.bedrock.guardrail if profile.bedrock else None
    probes = guardrail_probes(guardrail) if guardrail is not None else []
    first = next(iter(gateway.aliases))
    for probe in probes:
        results += _guarded(
            "guardrail blocks",
            lambda p=probe: check_guardrail_blocks(call, first, p, guardrail.blocked_input_message),
        )
    if not probes:
        results.append(
            Result("guardrail blocks", "skip", "the guardrail filters no words and has no topic examples")
        )
    return results


# CloudWatch Logs and EMF metrics arrive within minutes: smoke waits this long at most, asking every
# POLL_SECONDS.
SIGNAL_WAIT_SECONDS = 300.0
POLL_SECONDS = 20.0


def check_signals(
    logs: Any,
    cloudwatch: Any,
    *,
    log_group: str,
    request_id: str,
    alias: str,
    service: str,
    since: float,
    wait: float = SIGNAL_WAIT_SECONDS,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Result]:
    """The answer's log line (the gateway's "answered" line with the request's correlation_id) and its
    EMF metric (GenAiStack/Gateway Requests for the alias, with Powertools' service dimension:
    lambdas/gateway/metrics.py) arrive in CloudWatch within `wait` seconds."""
    deadline = clock() + wait
    logged = counted = False
    while True:
        if not logged:
            events = logs.filter_log_events(
                logGroupName=log_group,
                startTime=int(since * 1000) - 60_000,
                filterPattern=f'"{request_id}"',
                limit=10,
            ).get("events", [])
            logged = any('"answered"' in event["message"] for event in events)
        if not counted:
            datapoints = cloudwatch.get_metric_statistics(
                Namespace="GenAiStack/Gateway",
                MetricName="Requests",
                Dimensions=[{"Name": "alias", "Value": alias}, {"Name": "service", "Value": service}],
                StartTime=since - 300,
                EndTime=clock() + 60,
                Period=60,
                Statistics=["Sum"],
            ).get("Datapoints", [])
            counted = sum(d.get("Sum", 0) for d in datapoints) >= 1
        if (logged and counted) or clock() >= deadline:
            break
        sleep(POLL_SECONDS)
    late = f"within {wait:g} s"
    return [
        Result(
            "gateway log line",
            "pass" if logged else "fail",
            f"request {request_id} logged in {log_group}"
            if logged
            else f"no answered line for {request_id} {late}",
        ),
        Result(
            "gateway metrics",
            "pass" if counted else "fail",
            f"Requests counted for {alias}"
            if counted
            else f"no GenAiStack/Gateway Requests for {alias} {late}",
        ),
    ]


def http_caller(
    base_url: str, headers: Callable[[str, bytes], dict[str, str]], timeout: float = 30
) -> Caller:
    """POSTs over HTTPS with urllib; `headers(url, body)` gives the credentials' headers."""
    import urllib.error
    import urllib.request

    def call(path: str, body: dict[str, Any]) -> Answer:
        url = base_url.rstrip("/") + path
        data = json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - the gateway's https URL from the stack's output
            url, data=data, method="POST", headers={"Content-Type": "application/json", **headers(url, data)}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - as above
                return Answer(response.status, json.loads(response.read() or b"{}"), dict(response.headers))
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                return Answer(error.code, json.loads(raw))
            except ValueError:
                return Answer(error.code, {"error": {"message": raw[:200].decode(errors="replace")}})

    return call


def sigv4_headers(credentials: Any, region: str) -> Callable[[str, bytes], dict[str, str]]:
    """gateway.auth: iam: each request signed with the caller's credentials for execute-api."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    def sign(url: str, body: bytes) -> dict[str, str]:
        request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "application/json"})
        SigV4Auth(credentials, "execute-api", region).add_auth(request)
        return dict(request.headers.items())

    return sign


# --------------------------------------------------------------------------------------------------
# A knowledge base ingests a document and answers from it

INGESTION_WAIT_SECONDS = 900.0
SMOKE_DOCUMENT_PREFIX = "genai-stack-smoke-"


@dataclass(frozen=True)
class KnowledgeBaseTarget:
    name: str
    knowledge_base_id: str
    data_source_id: str
    bucket: str
    prefix: str


def check_knowledge_base(
    s3: Any,
    agent: Any,
    runtime: Any,
    target: KnowledgeBaseTarget,
    *,
    token: str,
    wait: float = INGESTION_WAIT_SECONDS,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Result]:
    """Put a document with a unique `token` under the knowledge base's prefix; the ingestion the upload
    starts (its EventBridge rule: stacks/components/knowledge_base_ingestion.py) completes within `wait`
    and Retrieve finds the token; the document is deleted afterwards, whatever happened (its deletion
    starts the ingestion that removes it)."""
    check = f"knowledge base {target.name}"
    key = f"{target.prefix}{SMOKE_DOCUMENT_PREFIX}{token}.txt"
    started = clock()
    s3.put_object(
        Bucket=target.bucket,
        Key=key,
        Body=f"genai-stack smoke test document. The verification code is {token}.".encode(),
        ContentType="text/plain",
    )
    try:
        status = None
        while True:
            jobs = agent.list_ingestion_jobs(
                knowledgeBaseId=target.knowledge_base_id,
                dataSourceId=target.data_source_id,
                sortBy={"attribute": "STARTED_AT", "order": "DESCENDING"},
                maxResults=5,
            ).get("ingestionJobSummaries", [])
            recent = [j for j in jobs if j["startedAt"].timestamp() >= started - 5]
            status = recent[0]["status"] if recent else None
            if status in ("COMPLETE", "FAILED", "STOPPED") or clock() - started >= wait:
                break
            sleep(POLL_SECONDS)
        if status != "COMPLETE":
            what = f"the ingestion job is {status}" if status else "no ingestion job started"
            return [
                Result(
                    check,
                    "fail",
                    f"{what} {clock() - started:.0f} s after the upload (see the ingestion alarm)",
                )
            ]
        found = runtime.retrieve(
            knowledgeBaseId=target.knowledge_base_id,
            retrievalQuery={
                "text": f"What is the verification code of the genai-stack smoke test document? {token}"
            },
            retrievalConfiguration={"vectorSearchConfiguration": {"numberOfResults": 5}},
        ).get("retrievalResults", [])
        if any(token in (r.get("content") or {}).get("text", "") for r in found):
            return [Result(check, "pass", f"ingested and retrieved in {clock() - started:.0f} s")]
        return [
            Result(
                check, "fail", f"ingested, but Retrieve did not return the document ({len(found)} results)"
            )
        ]
    finally:
        s3.delete_object(Bucket=target.bucket, Key=key)


def _referenced(value: Any) -> str | None:
    """The logical ID a `Ref` or `Fn::GetAtt` names."""
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            return value["Fn::GetAtt"][0]
    return None


def knowledge_base_targets(profile: Profile, stacks: Sequence[Stack]) -> list[KnowledgeBaseTarget]:
    """The profile's knowledge bases as deployed: ids from the bedrock stack, the data bucket from the
    foundation stack."""
    if profile.bedrock is None or not profile.bedrock.knowledge_bases:
        return []
    by_name = {s.name: s for s in stacks}
    foundation, bedrock = by_name.get(f"{profile.name}-foundation"), by_name.get(f"{profile.name}-bedrock")
    if foundation is None or bedrock is None:
        return []
    buckets = [
        foundation.physical[k]
        for k, _ in foundation.of_type("AWS::S3::Bucket")
        if k.startswith("DataBucket") and k in foundation.physical
    ]
    if not buckets:
        return []
    sources = {
        _referenced(r["Properties"]["KnowledgeBaseId"]): bedrock.physical.get(k, "")
        for k, r in bedrock.of_type("AWS::Bedrock::DataSource")
    }
    targets = []
    # A knowledge base on a Kendra index has no data source of ours to ingest into (its index syncs its
    # own connectors): the ingest-and-retrieve check takes the vector knowledge bases only.
    for kb in (k for k in profile.bedrock.knowledge_bases if not k.on_kendra):
        for logical_id, resource in bedrock.of_type("AWS::Bedrock::KnowledgeBase"):
            if (
                resource["Properties"].get("Name") == f"{profile.name}-{kb.name}"
                and logical_id in bedrock.physical
            ):
                source = sources.get(logical_id, "")
                targets.append(
                    KnowledgeBaseTarget(
                        name=kb.name,
                        knowledge_base_id=bedrock.physical[logical_id],
                        data_source_id=source.split("|")[-1],
                        bucket=buckets[0],
                        prefix=kb.prefix,
                    )
                )
    return targets


# --------------------------------------------------------------------------------------------------
# Which checks a deployed profile calls for


@dataclass
class Clients:
    """boto3 clients per region (stubbed in tests): `for_region(service, region)`; `credentials()` for
    requests smoke signs itself (the gateway with gateway.auth: iam)."""

    make: Callable[[str, str], Any]
    credentials: Callable[[], Any] = lambda: None

    def for_region(self, service: str, region: str) -> Any:
        return self.make(service, region)


def make_clients() -> Clients:
    import boto3

    cache: dict[tuple[str, str], Any] = {}

    def make(service: str, region: str) -> Any:
        if (service, region) not in cache:
            cache[(service, region)] = boto3.Session(region_name=region).client(service)
        return cache[(service, region)]

    return Clients(make, lambda: boto3.Session().get_credentials())


# A key is in the key table and its usage plan at once; API Gateway may take a few seconds to accept a
# new API key for a usage plan, so the first request waits this long.
KEY_SETTLE_SECONDS = 10.0


def run_gateway(
    profile: Profile,
    stacks: Sequence[Stack],
    clients: Clients,
    *,
    make_caller: Callable[[str, Callable[[str, bytes], dict[str, str]]], Caller] = http_caller,
    sleep: Callable[[float], None] | None = None,
) -> list[Result]:
    """The gateway as an application calls it: with a key smoke creates for the profile's first tenant
    and revokes afterwards (gateway.auth: api_key), or signed with the caller's credentials (iam)."""
    from genai_stack.cli.keys import KeyManager, KeyOperationError, key_table_name

    gateway = profile.gateway
    assert gateway is not None
    orchestration = next((s for s in stacks if s.name == f"{profile.name}-orchestration"), None)
    base_url = orchestration.outputs.get("GatewayBaseUrl") if orchestration else None
    if gateway.endpoint == "private":
        return [
            Result(
                "gateway",
                "skip",
                "a PRIVATE API answers only through the callers' execute-api VPC endpoints: run smoke "
                "from a host in that network to include it",
            )
        ]
    if not base_url:
        return [Result("gateway", "fail", f"no GatewayBaseUrl output on {profile.name}-orchestration")]
    since = time.time()
    answered: list[tuple[str, Answer]] = []
    if gateway.auth == "iam":
        results = gateway_checks(
            profile, make_caller(base_url, sigv4_headers(clients.credentials(), profile.region)), answered
        )
        return results + _signals(orchestration, clients, answered, since, sleep)
    if not gateway.tenants:
        return [Result("gateway", "skip", "gateway.auth api_key without tenants: no key to call it with")]
    tenant = gateway.tenants[0].name
    try:
        manager = KeyManager(
            apigateway=clients.for_region("apigateway", profile.region),
            dynamodb=clients.for_region("dynamodb", profile.region),
            profile=profile.name,
            table=key_table_name(clients.for_region("cloudformation", profile.region), profile.name),
        )
        key, issued = manager.create(tenant)
    except KeyOperationError as error:
        return [Result("gateway key", "fail", str(error))]
    results = [Result("gateway key", "pass", f"created {issued.key_id} for tenant {tenant}")]
    try:
        (sleep or time.sleep)(KEY_SETTLE_SECONDS)
        bearer = {"Authorization": f"Bearer {key}"}
        results += gateway_checks(profile, make_caller(base_url, lambda url, body: bearer), answered)
    finally:
        try:
            manager.revoke(tenant, key_id=issued.key_id)
            results.append(Result("gateway key", "pass", f"revoked {issued.key_id}"))
        except (KeyOperationError, ClientError, BotoCoreError) as error:
            results.append(
                Result(
                    "gateway key",
                    "fail",
                    f"could not revoke {issued.key_id} ({error}): genai-stack keys revoke {profile.name} "
                    f"{tenant} --key-id {issued.key_id}",
                )
            )
    return results + _signals(orchestration, clients, answered, since, sleep)


GATEWAY_HANDLER = "lambdas.gateway.handler.on_event"


def _signals(
    stack: Stack | None,
    clients: Clients,
    answered: Sequence[tuple[str, Answer]],
    since: float,
    sleep: Callable[[float], None] | None,
) -> list[Result]:
    """The log line and metric of the first chat answer, in the gateway function's log group (its
    LoggingConfig) under its Powertools service name (its environment), read from the template."""
    if stack is None or not answered:
        return [Result("gateway log line and metrics", "skip", "no chat answered to look for")]
    alias, answer = answered[0]
    if not answer.request_id:
        return [Result("gateway log line and metrics", "fail", "the answer had no x-amzn-RequestId header")]
    functions = [
        r
        for _, r in stack.of_type("AWS::Lambda::Function")
        if r["Properties"].get("Handler") == GATEWAY_HANDLER
    ]
    if not functions:
        return [
            Result("gateway log line and metrics", "fail", f"no gateway function in {stack.name}'s template")
        ]
    properties = functions[0]["Properties"]
    log_group = stack.physical.get(properties["LoggingConfig"]["LogGroup"]["Ref"], "")
    service = properties["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
    return _guarded(
        "gateway log line and metrics",
        lambda: check_signals(
            clients.for_region("logs", stack.region),
            clients.for_region("cloudwatch", stack.region),
            log_group=log_group,
            request_id=answer.request_id or "",
            alias=alias,
            service=service,
            since=since,
            **({"sleep": sleep} if sleep else {}),
        ),
    )


def _guarded(check: str, run: Callable[[], list[Result]]) -> list[Result]:
    """A refused call is a failed check, not a traceback (the smoke role lacks a permission, or the
    service refused)."""
    try:
        return run()
    except ClientError as error:
        details = error.response.get("Error", {})
        return [
            Result(
                check,
                "fail",
                f"could not check: {details.get('Code', '')} {details.get('Message', '')}".strip(),
            )
        ]
    except BotoCoreError as error:
        return [Result(check, "fail", f"could not check: {error}")]


def _physical(stacks: Iterable[Stack], resource_type: str) -> list[tuple[Stack, str, dict, str]]:
    return [
        (stack, logical_id, resource, stack.physical[logical_id])
        for stack in stacks
        for logical_id, resource in stack.of_type(resource_type)
        if logical_id in stack.physical
    ]


def run_smoke(profile: Profile, stacks: Sequence[Stack], clients: Clients, *, account: str) -> list[Result]:
    """Every check the profile's templates call for, stacks first (they name what the others read)."""
    results: list[Result] = []
    for stack in stacks:
        results += _guarded(
            f"stack {stack.name}",
            lambda s=stack: check_stack(clients.for_region("cloudformation", s.region), s),
        )
    deployed = [s for s in stacks if s.physical]
    by_region: dict[str, list[str]] = {}
    for stack, _, _, name in _physical(deployed, "AWS::CloudWatch::Alarm"):
        by_region.setdefault(stack.region, []).append(name)
    for region, names in sorted(by_region.items()):
        results += _guarded(
            "alarms", lambda r=region, n=names: check_alarms(clients.for_region("cloudwatch", r), n)
        )
    budgets = {
        name: float(resource["Properties"]["Budget"]["BudgetLimit"]["Amount"])
        for _, _, resource, name in _physical(deployed, "AWS::Budgets::Budget")
    }
    if budgets:
        results += _guarded(
            "budgets",
            lambda: check_budgets(
                clients.for_region("budgets", "us-east-1"), account=account, expected=budgets
            ),
        )
    monitors = [(s.region, arn) for s, _, _, arn in _physical(deployed, "AWS::CE::AnomalyMonitor")]
    if monitors:
        results += _guarded(
            "cost anomaly monitor",
            lambda: check_anomaly_monitors(
                clients.for_region("ce", "us-east-1"), [arn for _, arn in monitors]
            ),
        )
    # An endpoint's physical ID is its ARN ("Ref returns the Amazon Resource Name (ARN) of the
    # endpoint": AWS::SageMaker::Endpoint); DescribeEndpoint takes the name, its last part.
    endpoints = [
        (s.region, arn.rsplit("/", 1)[-1]) for s, _, _, arn in _physical(deployed, "AWS::SageMaker::Endpoint")
    ]
    for region in sorted({r for r, _ in endpoints}):
        names = [n for r, n in endpoints if r == region]
        results += _guarded(
            "endpoints", lambda r=region, n=names: check_endpoints(clients.for_region("sagemaker", r), n)
        )
    if profile.gateway is not None and any(s.name == f"{profile.name}-orchestration" for s in deployed):
        results += _guarded("gateway", lambda: run_gateway(profile, deployed, clients))
    targets = knowledge_base_targets(profile, deployed)
    if targets:  # the first knowledge base: one ingestion is minutes and a few cents of embeddings
        target = targets[0]
        results += _guarded(
            f"knowledge base {target.name}",
            lambda: check_knowledge_base(
                clients.for_region("s3", profile.region),
                clients.for_region("bedrock-agent", profile.region),
                clients.for_region("bedrock-agent-runtime", profile.region),
                target,
                token=uuid.uuid4().hex,
            ),
        )
    fleets = _fleets(deployed)
    for region in sorted({r for r, _, _ in fleets}):
        pairs = [(g, t) for r, g, t in fleets if r == region]
        results += _guarded(
            "hosts",
            lambda r=region, p=pairs: check_hosts(
                clients.for_region("autoscaling", r), clients.for_region("elbv2", r), p
            ),
        )
    return results


def _fleets(stacks: Sequence[Stack]) -> list[tuple[str, str, str]]:
    """(region, Auto Scaling group name, target group ARN) of each model host fleet: the group's
    TargetGroupARNs name its target group by Ref."""
    fleets = []
    for stack in stacks:
        for logical_id, resource in stack.of_type("AWS::AutoScaling::AutoScalingGroup"):
            if logical_id not in stack.physical:
                continue
            for reference in resource["Properties"].get("TargetGroupARNs", []):
                target = reference.get("Ref") if isinstance(reference, dict) else None
                if target in stack.physical:
                    fleets.append((stack.region, stack.physical[logical_id], stack.physical[target]))
    return fleets


@app.command()
def smoke(
    profile: Annotated[str, typer.Argument(help="A built-in profile name or a profile file.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Check a deployed profile with your AWS credentials. Exit status 1 and a table
    of what failed; skipped checks (an endpoint or host fleet scaled to zero) alone exit 0.

    Checks: every stack deployed and settled, no alarm in ALARM, budgets with the profile's limits and
    the cost anomaly monitor, SageMaker endpoints InService, model hosts healthy behind their load
    balancers, the gateway's chat and embedding answers per alias (with a key smoke creates and
    revokes) and a prompt its guardrail must block.

    [b]Example[/]: AWS_PROFILE=prod genai-stack smoke managed-api --json
    """
    from genai_stack.cli.synth import synthesize

    try:
        loaded = load_profile(profile)
    except ProfileError as error:
        fail(str(error))
    with (
        errors.status(f"Synthesizing {loaded.name} (offline) to see what it deploys"),
        tempfile.TemporaryDirectory() as outdir,
    ):
        (synthesis,) = synthesize(profile, Path(outdir))
    clients = make_clients()
    try:
        account = loaded.account or clients.for_region("sts", loaded.region).get_caller_identity()["Account"]
    except (BotoCoreError, ClientError) as error:
        fail(f"no usable AWS credentials for {loaded.region}: {error}", EXIT_ERROR)
    results = run_smoke(loaded, stacks_of(loaded, synthesis.templates), clients, account=account)
    report_checks(
        results,
        command="smoke",
        profile=loaded,
        json_output=json_output,
        verdict="passed",
        clear="The deployment answers as its templates say.",
        failed_message="Fix the failed checks.",
    )
