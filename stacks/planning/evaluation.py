"""The evaluation jobs a profile asks for, what each depends on, what a change triggers and what a
run costs (`genai-stack eval plan`; docs/evaluation.md).

One Bedrock evaluation job per evaluated model (automated jobs take a single model: Bedrock API
reference, CreateEvaluationJob, inferenceConfig) and per knowledge-base evaluation (a RAG job takes
one knowledge base). A run is billed as the inferences it makes, the evaluated model's and the
judge's, at their on-demand prices; algorithmic scores add nothing (Amazon Bedrock pricing, Model
evaluation).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Literal

from genai_stack import PACKAGE_DIR
from genai_stack.catalog import bedrock_catalog, bedrock_prices
from genai_stack.lambdas.gateway.routing import estimated_tokens
from genai_stack.profile.document import Profile
from genai_stack.profile.evaluation import ALGORITHMIC, GENERATION, JUDGED, RETRIEVAL, EvaluationRow

# Estimates of what Bedrock sends, where the profile does not say (docs/evaluation.md, "Cost").
ANSWER_TOKENS = 300  # an answer's tokens, when no prompt template gives max_tokens
JUDGE_INSTRUCTIONS_TOKENS = 800  # a judge prompt's rubric and instructions, per metric and row
JUDGE_OUTPUT_TOKENS = 200  # the judge's verdict and explanation, per metric and row
RETRIEVED_TOKENS = 5 * 300  # retrieve_and_generate: five retrieved chunks of about 300 tokens
VARIABLE = re.compile(r"{{\s*([A-Za-z_][A-Za-z0-9_]*)\s*}}")


@cache
def context_windows() -> dict[str, int]:
    return json.loads((PACKAGE_DIR / "data" / "context_windows.json").read_text())["tokens"]


@dataclass(frozen=True)
class PlannedJob:
    """One evaluation job of a run."""

    name: str  # the evaluation's name, and the model for a model evaluation
    kind: Literal["model", "knowledge_base", "traffic", "gate"]
    evaluation: str
    target: str  # the evaluated model, or the knowledge base (and its generator)
    set: str
    rows: int
    metrics: tuple[str, ...]  # Bedrock's metric names
    judge: str | None
    depends_on: dict[str, str]  # input -> a digest of it: what, when it changes, re-runs the job
    input_tokens: int  # the evaluated model's, then the judge's, over the run
    output_tokens: int
    judge_input_tokens: int
    judge_output_tokens: int
    usd: float
    notes: tuple[str, ...] = ()
    # What the deployed job names (stacks/components/model_evaluation.py): a model job's alias, the
    # alias target it evaluates (its campaign profile, or the model: GatewayRoute.key), prompt and task
    # type; a knowledge-base job's knowledge base and generator.
    alias: str | None = None
    via: str | None = None
    prompt: str | None = None
    task: str | None = None
    knowledge_base: str | None = None
    generator: str | None = None
    # A traffic job's: the model evaluation job whose accepted scores it is compared with, and how
    # many days of logged invocations its sample is drawn from.
    compare_with: str | None = None
    days: int | None = None

    def as_dict(self) -> dict:
        return {**self.__dict__, "metrics": list(self.metrics), "notes": list(self.notes)}


@dataclass
class Plan:
    profile: str
    jobs: list[PlannedJob] = field(default_factory=list)
    triggered: list[str] = field(default_factory=list)  # job names a change re-runs (with a base)
    prompt_checks: list[str] = field(default_factory=list)

    @property
    def usd(self) -> float:
        return round(sum(j.usd for j in self.jobs), 4)

    def as_dict(self) -> dict:
        return {
            "profile": self.profile,
            "jobs": [j.as_dict() for j in self.jobs],
            "triggered": self.triggered,
            "prompt_checks": self.prompt_checks,
            "usd": self.usd,
        }


def _digest(value: object) -> str:
    text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _price(model: str) -> tuple[float, float] | None:
    return bedrock_prices().get(bedrock_catalog().model_of(model).model_id)


def rendered(template_text: str, row: EvaluationRow) -> str:
    """The prompt a row makes: its own, or the template with its variables filled in."""
    if row.prompt is not None:
        return row.prompt
    values = row.variables or {}
    return VARIABLE.sub(lambda m: values.get(m.group(1), m.group(0)), template_text)


def plan(profile: Profile) -> Plan:
    """Every job of one run of the profile's evaluations, with its inputs, tokens and cost."""
    result = Plan(profile.name)
    evaluation = profile.evaluation
    if evaluation is None:
        return result
    bedrock, gateway = profile.bedrock, profile.gateway
    prompts = {p.name: p for p in bedrock.prompts}
    guardrail = {"guardrail": _digest(bedrock.guardrail.model_dump())} if bedrock.guardrail else {}
    judge_price = _price(evaluation.judge)
    for job in evaluation.models:
        rows = evaluation.set_named(job.set).rows
        template = prompts.get(job.prompt) if job.prompt else None
        texts = [rendered(template.text if template else "", row) for row in rows]
        answer = template.max_tokens if template else ANSWER_TOKENS
        metrics = tuple(ALGORITHMIC[m].builtin for m in job.metrics) + tuple(
            JUDGED[m].builtin for m in job.judge_metrics
        )
        depends = {
            f"evaluation:{job.name}": _digest(job.model_dump()),  # its metrics, task, alias, prompt
            **({"judge": evaluation.judge} if job.judge_metrics else {}),
            f"set:{job.set}": _digest([r.model_dump() for r in rows]),
            **({f"prompt:{job.prompt}": _digest([template.text, template.model_dump()])} if template else {}),
            **guardrail,
        }
        evaluated: set[str] = set()
        for target in gateway.aliases[job.alias]:
            model = target.bedrock_model(bedrock)
            if model is None or model in evaluated:  # a model twice (directly and through a campaign
                continue  # profile) is evaluated once: the job evaluates the model
            evaluated.add(model)
            input_tokens = sum(estimated_tokens(t) for t in texts)
            output_tokens = answer * len(rows)
            judged = len(job.judge_metrics)
            judge_in = judged * sum(
                estimated_tokens(t, r.reference or "") + answer + JUDGE_INSTRUCTIONS_TOKENS
                for t, r in zip(texts, rows, strict=True)
            )
            judge_out = judged * len(rows) * JUDGE_OUTPUT_TOKENS
            price = _price(model)
            notes = []
            if "robustness" in job.metrics:
                notes.append("not counted: robustness re-runs perturbed prompts")
            usd = _usd(price, input_tokens, output_tokens) + _usd(judge_price, judge_in, judge_out)
            result.jobs.append(
                PlannedJob(
                    name=f"{job.name}/{model}",
                    kind="model",
                    evaluation=job.name,
                    target=model,
                    set=job.set,
                    rows=len(rows),
                    metrics=metrics,
                    judge=evaluation.judge if job.judge_metrics else None,
                    depends_on={**depends, f"alias:{job.alias}:{model}": _digest(target.model_dump())},
                    input_tokens=input_tokens,
                    output_tokens=output_tokens,
                    judge_input_tokens=judge_in,
                    judge_output_tokens=judge_out,
                    usd=round(usd, 4),
                    notes=tuple(notes),
                    alias=job.alias,
                    via=target.application_inference_profile or target.bedrock,
                    prompt=job.prompt,
                    task=job.task,
                )
            )
            window = context_windows().get(bedrock_catalog().model_of(model).model_id)
            longest = max((estimated_tokens(t) for t in texts), default=0)
            if window is None:
                last = result.jobs[-1]
                result.jobs[-1] = replace(
                    last, notes=(*last.notes, "no context window on record: prompt lengths not checked")
                )
            elif longest + answer > window:
                result.prompt_checks.append(
                    f"{job.name}/{model}: the longest prompt of set {job.set!r} is about {longest} tokens; "
                    f"with {answer} output tokens it is over the model's context of {window}"
                )
    knowledge_bases = {kb.name: kb for kb in bedrock.knowledge_bases}
    for job in evaluation.knowledge_bases:
        rows = evaluation.set_named(job.set).rows
        table = RETRIEVAL if job.mode == "retrieve" else GENERATION
        questions = sum(estimated_tokens(r.prompt or "") for r in rows)
        generated = job.mode == "retrieve_and_generate"
        input_tokens = questions + len(rows) * RETRIEVED_TOKENS if generated else 0
        output_tokens = len(rows) * ANSWER_TOKENS if generated else 0
        per_row = RETRIEVED_TOKENS + (ANSWER_TOKENS if generated else 0) + JUDGE_INSTRUCTIONS_TOKENS
        judge_in = len(job.metrics) * (
            questions + sum(estimated_tokens(r.reference or "") for r in rows) + len(rows) * per_row
        )
        judge_out = len(job.metrics) * len(rows) * JUDGE_OUTPUT_TOKENS
        usd = _usd(_price(job.generator) if job.generator else None, input_tokens, output_tokens)
        usd += _usd(judge_price, judge_in, judge_out)
        kb = knowledge_bases[job.knowledge_base]
        result.jobs.append(
            PlannedJob(
                name=job.name,
                kind="knowledge_base",
                evaluation=job.name,
                target=f"{job.knowledge_base}" + (f" + {job.generator}" if job.generator else ""),
                set=job.set,
                rows=len(rows),
                metrics=tuple(table[m].builtin for m in job.metrics),
                judge=evaluation.judge,
                depends_on={
                    f"evaluation:{job.name}": _digest(job.model_dump()),  # metrics, mode, generator
                    "judge": evaluation.judge,
                    f"set:{job.set}": _digest([r.model_dump() for r in rows]),
                    # Without kendra_index_id when unset, so a vector knowledge base's digest is what it was
                    # before Kendra was a choice (and its accepted runs stay valid).
                    f"knowledge_base:{job.knowledge_base}": _digest(
                        {k: v for k, v in kb.model_dump().items() if k != "kendra_index_id" or v is not None}
                    ),
                    **guardrail,
                },
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                judge_input_tokens=judge_in,
                judge_output_tokens=judge_out,
                usd=round(usd, 4),
                notes=("not counted: retrieval (query embeddings, vector-store reads)",),
                knowledge_base=job.knowledge_base,
                generator=job.generator,
            )
        )
    result.jobs += _traffic_jobs(profile, judge_price)
    result.jobs += [gate.planned for gate in gate_jobs(profile).values()]
    for template in bedrock.prompts:
        result.prompt_checks += lint_template(template.name, template.text)
    return result


def _traffic_jobs(profile: Profile, judge_price: tuple[float, float] | None) -> list[PlannedJob]:
    """One job per Bedrock target of each traffic evaluation's alias, compared with the model
    evaluation job of the same target. Bedrock invokes no model (the responses are the logged ones);
    the judge reads a sampled prompt and answer per metric and row, estimated from the compared set."""
    evaluation, bedrock, gateway = profile.evaluation, profile.bedrock, profile.gateway
    prompts = {p.name: p for p in bedrock.prompts}
    models = {m.name: m for m in evaluation.models}
    jobs = []
    for job in evaluation.traffic:
        compared = models[job.compare_with]
        rows = evaluation.set_named(compared.set).rows
        template = prompts.get(compared.prompt) if compared.prompt else None
        texts = [rendered(template.text if template else "", row) for row in rows]
        prompt_tokens = sum(estimated_tokens(t) for t in texts) / max(len(rows), 1)
        answer = template.max_tokens if template else ANSWER_TOKENS
        judged = len(job.judge_metrics)
        judge_in = round(judged * job.sample * (prompt_tokens + answer + JUDGE_INSTRUCTIONS_TOKENS))
        judge_out = judged * job.sample * JUDGE_OUTPUT_TOKENS
        seen: set[str] = set()
        for target in gateway.aliases[job.alias]:
            model = target.bedrock_model(bedrock)
            if model is None or model in seen:
                continue
            seen.add(model)
            jobs.append(
                PlannedJob(
                    name=f"{job.name}/{model}",
                    kind="traffic",
                    evaluation=job.name,
                    target=model,
                    set=f"traffic-{job.alias}",
                    rows=job.sample,
                    metrics=tuple(JUDGED[m].builtin for m in job.judge_metrics),
                    judge=evaluation.judge,
                    # Runs on the schedule: a deployment changes no logged invocation.
                    depends_on={
                        f"evaluation:{job.name}": _digest(job.model_dump()),
                        "judge": evaluation.judge,
                    },
                    input_tokens=0,
                    output_tokens=0,
                    judge_input_tokens=judge_in,
                    judge_output_tokens=judge_out,
                    usd=round(_usd(judge_price, judge_in, judge_out), 4),
                    notes=(
                        "a sample of logged invocations: the judge only (their answers are already paid for)",
                        "not counted: ApplyGuardrail text units of the redaction (prompt and answer a row)",
                    ),
                    alias=job.alias,
                    via=target.application_inference_profile or target.bedrock,
                    task=JUDGE_TASK_TYPE,
                    compare_with=f"{compared.name}/{model}",
                    days=job.days,
                )
            )
    return jobs


def _usd(price: tuple[float, float] | None, input_tokens: int, output_tokens: int) -> float:
    return (input_tokens * price[0] + output_tokens * price[1]) / 1000 if price else 0.0


def lint_template(name: str, text: str) -> list[str]:
    """What a template's text gets wrong offline: braces that open a variable and never close it, or
    close one never opened, and variables whose names are not identifiers."""
    problems = []
    opened, closed = text.count("{{"), text.count("}}")
    if opened != closed:
        problems.append(f"prompt {name}: {opened} '{{{{' but {closed} '}}}}': a variable is not closed")
    for match in re.finditer(r"{{(.*?)}}", text, re.DOTALL):
        if not re.fullmatch(r"\s*[A-Za-z_][A-Za-z0-9_]*\s*", match.group(1)):
            problems.append(f"prompt {name}: {{{{{match.group(1)}}}}} is not a variable name")
    return problems


def triggered(base: Plan, current: Plan) -> list[str]:
    """The jobs of `current` whose inputs differ from `base`'s (or that `base` does not have). Traffic
    jobs are never among them: they run on the schedule, and a deployment changes no logged call; nor
    are training gates, which run with their pipeline."""
    before = {job.name: job.depends_on for job in base.jobs}
    return [
        job.name
        for job in current.jobs
        if job.kind not in ("traffic", "gate") and before.get(job.name) != job.depends_on
    ]


def plan_markdown(result: Plan) -> str:
    """The plan as docs/evaluation.md shows it (a test keeps the page equal to this)."""
    rows = [
        "| Job | Set (rows) | Metrics | Model tokens in / out | Judge tokens in / out | USD |",
        "|---|---|---|---:|---:|---:|",
    ]
    for job in result.jobs:
        metrics = ", ".join(m.removeprefix("Builtin.") for m in job.metrics)
        model = f"{job.input_tokens:,} / {job.output_tokens:,}"
        judge = f"{job.judge_input_tokens:,} / {job.judge_output_tokens:,}"
        rows.append(
            f"| {job.name} | {job.set} ({job.rows}) | {metrics} | {model} | {judge} | {job.usd:.4f} |"
        )
    rows.append(f"| **one run** | | | | | **{result.usd:.4f}** |")
    return "\n".join(rows)


# ---------------------------------------------------------------------------------------------------
# What a run sends Bedrock: each set in Bedrock's dataset format, and each job's CreateEvaluationJob
# request (the state machine that runs them fills in the deployed names: role, buckets, ARNs).

# The task type of judge and knowledge-base jobs. The API takes Summarization, Classification,
# QuestionAndAnswer, Generation or Custom (Bedrock API reference, EvaluationDatasetMetricConfig:
# https://docs.aws.amazon.com/bedrock/latest/APIReference/API_EvaluationDatasetMetricConfig.html), and
# ignores it for knowledge-base jobs. AWS's examples of judge and RAG jobs write "General", which that
# list does not have: Generation is the listed value of the same task, and a model evaluation's own
# `task` (default Generation) is used for judge jobs too.
JUDGE_TASK_TYPE = "Generation"
DATASET_NAME = re.compile(r"[^0-9a-zA-Z._-]")


def bedrock_dataset(rows: tuple[EvaluationRow, ...], *, kind: str, template_text: str = "") -> list[dict]:
    """The rows as Bedrock reads them ("Create a custom prompt dataset" pages of the Bedrock user
    guide): a model evaluation's {prompt, referenceResponse, category}, the category carrying the
    language (`<category>|<language>`, lambdas/evaluation/results.py reads both back); a knowledge
    base's one conversation turn {prompt.content[].text, referenceResponses[].content[].text}."""
    from genai_stack.lambdas.evaluation.results import bedrock_category

    lines = []
    for row in rows:
        prompt = rendered(template_text, row)
        if kind == "model":
            line = {"prompt": prompt, "category": bedrock_category(row.category, row.language)}
            if row.reference is not None:
                line["referenceResponse"] = row.reference
        else:
            turn: dict = {"prompt": {"content": [{"text": prompt}]}}
            if row.reference is not None:
                turn["referenceResponses"] = [{"content": [{"text": row.reference}]}]
            line = {"conversationTurns": [turn]}
        lines.append(line)
    return lines


def create_request(
    job: PlannedJob,
    *,
    job_name: str,
    role_arn: str,
    dataset_uri: str,
    output_uri: str,
    model: str | None = None,
    knowledge_base_id: str | None = None,
    generator: str | None = None,
    guardrail: tuple[str, str] | None = None,
    tags: dict[str, str] | None = None,
) -> dict:
    """CreateEvaluationJob's parameters for one planned job (Bedrock API reference,
    CreateEvaluationJob). `model`: what the job invokes (an application inference profile ARN carries
    the cost-allocation tag); `generator` and `guardrail` (id, version): a retrieve_and_generate job's
    answering model and the guardrail it answers under."""
    judged = job.judge is not None
    metrics = {
        "taskType": (job.task if job.kind == "model" else None) or JUDGE_TASK_TYPE,
        "dataset": {"name": DATASET_NAME.sub("-", job.set)[:63], "datasetLocation": {"s3Uri": dataset_uri}},
        "metricNames": list(job.metrics),
    }
    automated: dict = {"datasetMetricConfigs": [metrics]}
    if judged:
        automated["evaluatorModelConfig"] = {"bedrockEvaluatorModels": [{"modelIdentifier": job.judge}]}
    request: dict = {
        "jobName": job_name,
        "roleArn": role_arn,
        "applicationType": "ModelEvaluation" if job.kind == "model" else "RagEvaluation",
        "evaluationConfig": {"automated": automated},
        "outputDataConfig": {"s3Uri": output_uri},
        "jobTags": [{"key": k, "value": v} for k, v in sorted((tags or {}).items())],
    }
    if job.kind == "model":
        request["inferenceConfig"] = {"models": [{"bedrockModel": {"modelIdentifier": model or job.target}}]}
        return request
    if job.kind in ("traffic", "gate"):
        # Bedrock scores the responses in the dataset ("Prepare a dataset for an evaluation job using
        # your own inference response data", Bedrock user guide); every row's modelIdentifier is this
        # inferenceSourceIdentifier (own_responses_source).
        request["applicationType"] = "ModelEvaluation"
        request["inferenceConfig"] = {
            "models": [
                {"precomputedInferenceSource": {"inferenceSourceIdentifier": own_responses_source(job)}}
            ]
        }
        return request
    if knowledge_base_id is None:
        raise ValueError(f"{job.name}: a knowledge-base job needs the knowledge base's id")
    if generator is None:
        retrieval = {"vectorSearchConfiguration": {"numberOfResults": RETRIEVED_TOKENS // 300}}
        config = {
            "retrieveConfig": {
                "knowledgeBaseId": knowledge_base_id,
                "knowledgeBaseRetrievalConfiguration": retrieval,
            }
        }
    else:
        knowledge_base: dict = {"knowledgeBaseId": knowledge_base_id, "modelArn": generator}
        if guardrail is not None:
            knowledge_base["generationConfiguration"] = {
                "guardrailConfiguration": {"guardrailId": guardrail[0], "guardrailVersion": guardrail[1]}
            }
        config = {
            "retrieveAndGenerateConfig": {
                "type": "KNOWLEDGE_BASE",
                "knowledgeBaseConfiguration": knowledge_base,
            }
        }
    request["inferenceConfig"] = {"ragConfigs": [{"knowledgeBaseConfig": config}]}
    return request


def own_responses_source(job: PlannedJob) -> str:
    """The label of a traffic or gate job's responses (EvaluationPrecomputedInferenceSource's
    inferenceSourceIdentifier: [a-zA-Z0-9]([a-zA-Z0-9._-]){0,255})."""
    return re.sub(r"[^a-zA-Z0-9._-]", "-", f"{job.alias}.{job.target}")[:256]


# ---------------------------------------------------------------------------------------------------
# The jobs as the deployed state machine runs them (stacks/components/model_evaluation.py).

KEY_LENGTH = 40  # a key's readable part; with "_" and a digest of 6: at most 47 characters
# Bedrock's evaluation job names: [a-z0-9](-*[a-z0-9]){0,62} (botocore model bedrock 2023-04-20,
# CreateEvaluationJob jobName). A job is named `<key with '-'>-<12 hex digits of the run>`.
JOB_NAME = re.compile(r"^[a-z0-9](-*[a-z0-9]){0,62}$")
RUN_TOKEN_LENGTH = 12


@dataclass(frozen=True)
class RunJob:
    """One job of the deployed evaluations. `key` ([a-z0-9_], unique in the profile) names the job's
    states, its folder under `evaluation/runs/<run>/` and its accepted scores; `digest` changes with
    any of its inputs (PlannedJob.depends_on); `dataset` is the set as Bedrock reads it (JSONL)."""

    key: str
    planned: PlannedJob
    dataset: str
    digest: str

    @property
    def baseline_key(self) -> str:
        """Whose accepted scores the job is compared with: its own, or a traffic job's model job's."""
        return job_key(self.planned.compare_with or self.planned.name)

    @property
    def job_name_prefix(self) -> str:
        return self.key.replace("_", "-")


def job_key(name: str) -> str:
    """A job's key: its name in lower case with every other character run as `_`, and a digest of the
    name, so that two names that read alike stay two keys."""
    readable = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:KEY_LENGTH].strip("_")
    return f"{readable}_{hashlib.sha256(name.encode()).hexdigest()[:6]}"


def run_jobs(profile: Profile) -> list[RunJob]:
    """The planned jobs with what a run needs: their key, digest and dataset."""
    evaluation = profile.evaluation
    if evaluation is None:
        return []
    prompts = {p.name: p for p in profile.bedrock.prompts}
    result = []
    for job in plan(profile).jobs:
        if job.kind == "gate":  # run by its training pipeline (gate_jobs)
            continue
        if job.kind == "traffic":  # sampled from the invocation logs at run time
            dataset = ""
        else:
            rows = evaluation.set_named(job.set).rows
            template = prompts[job.prompt].text if job.prompt else ""
            lines = bedrock_dataset(rows, kind=job.kind, template_text=template)
            dataset = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
        key = job_key(job.name)
        if not JOB_NAME.match(f"{key.replace('_', '-')}-{'0' * RUN_TOKEN_LENGTH}"):
            raise ValueError(f"{job.name}: key {key} makes no valid Bedrock job name")  # pragma: no cover
        result.append(RunJob(key=key, planned=job, dataset=dataset, digest=_digest(job.depends_on)))
    keys = [j.key for j in result]
    if len(keys) != len(set(keys)):  # pragma: no cover - a digest of 6 hex digits of distinct names
        raise ValueError(f"evaluation job keys collide: {keys}")
    return result


# ---------------------------------------------------------------------------------------------------
# Training gates (stacks/components/candidate_evaluation.py): a pipeline's candidate answers a set in a
# SageMaker batch transform, and a judge job scores the answers before the model is registered.

GATE_ALIAS = "candidate"


@dataclass(frozen=True)
class GateJob:
    """One pipeline's gate. `requests`: the batch transform's input (JSONL), one chat request a row in
    the messages format of the LMI and TGI containers, the row's reference and category beside it
    under `genai_stack` (the transform's InputFilter sends the container only the request, and its
    JoinSource keeps the whole line with the answer); `thresholds`: Bedrock metric name (without
    `Builtin.`) -> the least score that passes, or the most for LOWER_IS_BETTER metrics."""

    pipeline: str
    key: str
    planned: PlannedJob
    requests: str
    thresholds: dict[str, float]
    tolerance: float


def gate_jobs(profile: Profile) -> dict[str, GateJob]:
    """Each training pipeline's gate, by pipeline name."""
    evaluation, training = profile.evaluation, profile.training
    if evaluation is None or training is None:
        return {}
    judge_price = _price(evaluation.judge)
    gates = {}
    for pipeline in training.pipelines:
        gate = pipeline.evaluation_gate
        if gate is None:
            continue
        rows = evaluation.set_named(gate.set).rows
        metrics = tuple(JUDGED[m].builtin for m in gate.judge_metrics)
        judge_in = len(metrics) * sum(
            estimated_tokens(r.prompt or "", r.reference or "") + gate.max_tokens + JUDGE_INSTRUCTIONS_TOKENS
            for r in rows
        )
        judge_out = len(metrics) * len(rows) * JUDGE_OUTPUT_TOKENS
        from genai_stack.lambdas.evaluation.results import bedrock_category

        lines = []
        for row in rows:
            request = {
                "messages": [{"role": "user", "content": row.prompt}],
                "max_tokens": gate.max_tokens,
                "temperature": 0,
                "genai_stack": {
                    "reference": row.reference,
                    "category": bedrock_category(row.category, row.language),
                },
            }
            lines.append(json.dumps(request, ensure_ascii=False) + "\n")
        planned = PlannedJob(
            name=f"gate/{pipeline.name}",
            kind="gate",
            evaluation=f"gate-{pipeline.name}",
            target=pipeline.name,
            set=gate.set,
            rows=len(rows),
            metrics=metrics,
            judge=evaluation.judge,
            depends_on={"gate": _digest(gate.model_dump()), "judge": evaluation.judge},
            input_tokens=0,
            output_tokens=len(rows) * gate.max_tokens,
            judge_input_tokens=judge_in,
            judge_output_tokens=judge_out,
            usd=round(_usd(judge_price, judge_in, judge_out), 4),
            notes=("per candidate; not counted: the batch transform's instance time",),
            alias=GATE_ALIAS,
            task=JUDGE_TASK_TYPE,
        )
        gates[pipeline.name] = GateJob(
            pipeline=pipeline.name,
            key=job_key(planned.name),
            planned=planned,
            requests="".join(lines),
            thresholds={JUDGED[m].builtin.removeprefix("Builtin."): v for m, v in gate.thresholds.items()},
            tolerance=evaluation.tolerance,
        )
    return gates
