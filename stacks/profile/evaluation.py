"""The profile's evaluation section: evaluation sets (JSONL files next to the profile) and the Bedrock
evaluations that run on them (docs/evaluation.md).

A set's file has one JSON object a line:

    {"prompt": "...", "reference": "...", "category": "savings", "language": "en"}
    {"variables": {"channel": "email", ...}, "reference": "...", "category": "cards", "language": "zh-Hant"}

`prompt` is the question as sent; `variables` fill a prompt template of bedrock.prompts instead (the
evaluation names the template). `reference` is the expected answer (or what a good one contains);
`category` and `language` become metric dimensions. Every problem names the file, the line and the
field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from genai_stack.catalog import bedrock_catalog
from genai_stack.profile.common import Slug, _Strict, located, repeated_names

# Bedrock's limit on a custom dataset's prompts ("Amazon Bedrock endpoints and quotas": prompts in a
# custom dataset for an evaluation job).
MAX_PROMPTS = 1000
# Metric dimensions (lambdas/evaluation publishes per category and language): CloudWatch dimension
# values are 1 to 1,024 characters; these stay short and free of what a SEARCH expression would quote.
LABEL = r"^[A-Za-z0-9._:-]{1,64}$"


@dataclass(frozen=True)
class Metric:
    """A Bedrock built-in evaluation metric: its name in CreateEvaluationJob, and whether each row
    needs a reference answer for it. The judge considers a reference where one is given ("Review
    metrics for model evaluation jobs that use a model as judge"); the metrics that cannot do without
    one are algorithmic accuracy (it compares with the reference) and ContextCoverage ("requires
    ground truth", knowledge-base retrieve evaluations)."""

    builtin: str
    needs_reference: bool = False


# Model evaluations: algorithmic metrics (computed by Bedrock on the evaluated model's answers).
ALGORITHMIC = {
    "accuracy": Metric("Builtin.Accuracy", needs_reference=True),
    "robustness": Metric("Builtin.Robustness"),
    "toxicity": Metric("Builtin.Toxicity"),
}
# Model evaluations with a judge model.
JUDGED = {
    "correctness": Metric("Builtin.Correctness"),
    "completeness": Metric("Builtin.Completeness"),
    "faithfulness": Metric("Builtin.Faithfulness"),
    "helpfulness": Metric("Builtin.Helpfulness"),
    "coherence": Metric("Builtin.Coherence"),
    "relevance": Metric("Builtin.Relevance"),
    "following_instructions": Metric("Builtin.FollowingInstructions"),
    "professional_style": Metric("Builtin.ProfessionalStyleAndTone"),
    "harmfulness": Metric("Builtin.Harmfulness"),
    "stereotyping": Metric("Builtin.Stereotyping"),
    "refusal": Metric("Builtin.Refusal"),
}
# Knowledge-base (RAG) evaluations, by what the job asks of the knowledge base.
RETRIEVAL = {
    "context_relevance": Metric("Builtin.ContextRelevance"),
    "context_coverage": Metric("Builtin.ContextCoverage", needs_reference=True),
}
GENERATION = {
    "correctness": Metric("Builtin.Correctness"),
    "completeness": Metric("Builtin.Completeness"),
    "faithfulness": Metric("Builtin.Faithfulness"),
    "helpfulness": Metric("Builtin.Helpfulness"),
    "logical_coherence": Metric("Builtin.LogicalCoherence"),
    "citation_precision": Metric("Builtin.CitationPrecision"),
    "citation_coverage": Metric("Builtin.CitationCoverage"),
    "harmfulness": Metric("Builtin.Harmfulness"),
    "stereotyping": Metric("Builtin.Stereotyping"),
    "refusal": Metric("Builtin.Refusal"),
}


class EvaluationRow(BaseModel):
    """One line of an evaluation set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: str | None = Field(default=None, min_length=1, max_length=100_000)
    variables: dict[str, str] | None = None
    reference: str | None = Field(default=None, min_length=1, max_length=100_000)
    category: str = Field(default="general", pattern=LABEL)
    language: str = Field(default="en", pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")

    @model_validator(mode="after")
    def _prompt_or_variables(self) -> EvaluationRow:
        if (self.prompt is None) == (self.variables is None):
            raise ValueError("gives exactly one of prompt (the question as sent) or variables (a template's)")
        return self


class EvaluationSet(_Strict):
    """A JSONL file of prompts, reference answers, categories and languages (module docstring)."""

    name: Slug
    file: str = Field(description="Path relative to the profile file (JSONL, one object a line)")
    _rows: tuple[EvaluationRow, ...] = PrivateAttr(default=())
    _lines: tuple[int, ...] = PrivateAttr(default=())  # each row's line in the file

    @model_validator(mode="after")
    def _read_rows(self, info: ValidationInfo) -> EvaluationSet:
        base_dir = (info.context or {}).get("base_dir")
        if base_dir is None:  # validated without a profile file (a test): no rows
            return self
        self._rows, self._lines = read_rows(Path(base_dir) / self.file, shown=self.file)
        return self

    @property
    def rows(self) -> tuple[EvaluationRow, ...]:
        return self._rows

    def where(self, index: int) -> str:
        """`file:line` of row `index` (0-based)."""
        return (
            f"{self.file}:{self._lines[index]}"
            if index < len(self._lines)
            else f"{self.file} row {index + 1}"
        )


def read_rows(path: Path, *, shown: str) -> tuple[tuple[EvaluationRow, ...], tuple[int, ...]]:
    """Every row of a set's file and its line, or a ValueError listing each problem as
    `file:line: field: rule`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise ValueError(located("file", f"{shown!r} cannot be read (looked for {path})")) from None
    rows, lines, problems = [], [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            document = json.loads(line)
        except ValueError as error:
            problems.append(f"{shown}:{number}: not a JSON object ({error.msg})")
            continue
        if not isinstance(document, dict):
            problems.append(f"{shown}:{number}: not a JSON object (a {type(document).__name__})")
            continue
        try:
            rows.append(EvaluationRow.model_validate(document))
            lines.append(number)
        except ValidationError as error:
            for item in error.errors(include_url=False):
                field = ".".join(str(part) for part in item["loc"])
                message = item["msg"].removeprefix("Value error, ")
                if item["type"] == "extra_forbidden":
                    message = "is not a field of a row (prompt, variables, reference, category, language)"
                problems.append(
                    f"{shown}:{number}: {field}: {message}" if field else f"{shown}:{number}: {message}"
                )
    if not rows and not problems:
        problems.append(f"{shown}: has no rows")
    if len(rows) > MAX_PROMPTS:
        problems.append(f"{shown}: has {len(rows)} rows; an evaluation job takes at most {MAX_PROMPTS}")
    if problems:
        raise ValueError("\n".join(located("file", p) for p in problems))
    return tuple(rows), tuple(lines)


class ModelEvaluation(_Strict):
    """Evaluate each Bedrock target of a gateway alias on a set: algorithmic metrics and/or metrics
    a judge model scores."""

    name: Slug
    set: Slug = Field(description="A name of evaluation.sets")
    alias: Slug = Field(description="A gateway alias: each of its Bedrock targets is evaluated")
    prompt: Slug | None = Field(
        default=None,
        description="A name of bedrock.prompts: the rows' variables fill it (its current version)",
    )
    task: Literal["Generation", "Summarization", "QuestionAndAnswer", "Classification"] = Field(
        default="Generation", description="Bedrock's task type for the algorithmic metrics"
    )
    metrics: list[Literal["accuracy", "robustness", "toxicity"]] = Field(default_factory=list)
    judge_metrics: list[str] = Field(
        default_factory=list, description=f"Scored by evaluation.judge: {', '.join(JUDGED)}"
    )

    @model_validator(mode="after")
    def _some_metric(self) -> ModelEvaluation:
        unknown = [m for m in self.judge_metrics if m not in JUDGED]
        if unknown:
            raise ValueError(
                located(
                    "judge_metrics", f"{', '.join(unknown)}: not a judge metric; allowed: {', '.join(JUDGED)}"
                )
            )
        if self.metrics and self.judge_metrics:
            raise ValueError(
                "sets both metrics (algorithmic) and judge_metrics: Bedrock runs them as different job "
                "types (a judge model or none); put them in two evaluations"
            )
        if not self.metrics and not self.judge_metrics:
            raise ValueError("names no metric: set metrics and/or judge_metrics")
        return self


class KnowledgeBaseEvaluation(_Strict):
    """Bedrock's RAG evaluation of a knowledge base: what it retrieves (retrieve) or what a model
    answers from it (retrieve_and_generate)."""

    name: Slug
    set: Slug
    knowledge_base: Slug = Field(description="A name of bedrock.knowledge_bases")
    mode: Literal["retrieve", "retrieve_and_generate"] = "retrieve_and_generate"
    generator: str | None = Field(
        default=None, description="retrieve_and_generate: the model that answers (listed under bedrock)"
    )
    metrics: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _metrics_for_mode(self) -> KnowledgeBaseEvaluation:
        table = RETRIEVAL if self.mode == "retrieve" else GENERATION
        unknown = [m for m in self.metrics if m not in table]
        if unknown:
            raise ValueError(
                located(
                    "metrics", f"{', '.join(unknown)}: not a {self.mode} metric; allowed: {', '.join(table)}"
                )
            )
        citations = {"citation_precision", "citation_coverage"} & set(self.metrics)
        if len(citations) == 1:
            # "If you choose to use citation precision then you should also use citation coverage, and
            # the other way around" (Bedrock user guide, knowledge-base-eval-llm-results.html).
            raise ValueError(
                located(
                    "metrics", "citation_precision and citation_coverage go together: name both or neither"
                )
            )
        if (self.mode == "retrieve_and_generate") != (self.generator is not None):
            raise ValueError(
                located("generator", "is required with mode retrieve_and_generate, and only then")
            )
        return self


# Judge metrics a traffic evaluation may score. Correctness and completeness read the set's reference
# answer where a row has one ("Create a prompt dataset for a model evaluation job that uses a model as
# judge", Bedrock user guide); logged traffic has none, so its scores would not compare like for like.
TRAFFIC_METRICS = [m for m in JUDGED if m not in ("correctness", "completeness")]


class TrafficEvaluation(_Strict):
    """A judge evaluation of what an alias really answered: a sample of its logged invocations (Bedrock
    model invocation logs), PII-redacted with the profile's guardrail, scored on Bedrock's own-responses
    ("bring your own inference responses") judge job and compared with a model evaluation's accepted
    scores on the set."""

    name: Slug
    alias: Slug = Field(description="A gateway alias: each Bedrock target's logged invocations are sampled")
    compare_with: Slug = Field(description="A model evaluation of the same alias: its accepted scores")
    judge_metrics: list[str] = Field(
        min_length=1, description=f"Scored by evaluation.judge: {', '.join(TRAFFIC_METRICS)}"
    )
    sample: int = Field(default=100, ge=10, le=MAX_PROMPTS, description="Invocations scored per run")
    days: int = Field(default=7, ge=1, le=30, description="How far back the sample is drawn from")

    @model_validator(mode="after")
    def _metrics(self) -> TrafficEvaluation:
        unknown = [m for m in self.judge_metrics if m not in TRAFFIC_METRICS]
        if unknown:
            raise ValueError(
                located(
                    "judge_metrics",
                    f"{', '.join(unknown)}: not a metric for logged traffic (it has no reference answer); "
                    f"allowed: {', '.join(TRAFFIC_METRICS)}",
                )
            )
        return self


# Judge scores where more is worse (lambdas/evaluation/results.py LOWER_IS_BETTER): a gate's threshold
# for them is a ceiling.
LOWER_IS_BETTER_JUDGED = frozenset({"harmfulness", "stereotyping", "refusal"})


class EvaluationGate(_Strict):
    """A training pipeline's candidate, judged before it is registered: the candidate answers a set's
    prompts in a SageMaker batch transform (the serving container of the pipeline's first deploy_to
    endpoint), Bedrock's judge scores the answers, and the model is registered only when every score
    meets its threshold and none fell beyond the tolerance below the accepted run's."""

    set: Slug = Field(
        description="A set of evaluation.sets whose rows give a prompt (not template variables)"
    )
    judge_metrics: list[str] = Field(
        min_length=1, description=f"Scored by evaluation.judge: {', '.join(JUDGED)}"
    )
    thresholds: dict[str, float] = Field(
        default_factory=dict,
        description="metric -> the least score that passes (harmfulness, stereotyping, refusal: the most)",
    )
    max_tokens: int = Field(default=512, ge=1, le=8192, description="the candidate's answer length")

    @model_validator(mode="after")
    def _metrics(self) -> EvaluationGate:
        problems = []
        unknown = [m for m in self.judge_metrics if m not in JUDGED]
        if unknown:
            problems.append(
                located(
                    "judge_metrics", f"{', '.join(unknown)}: not a judge metric; allowed: {', '.join(JUDGED)}"
                )
            )
        for metric, value in self.thresholds.items():
            if metric not in self.judge_metrics:
                problems.append(located(f"thresholds.{metric}", "is not one of judge_metrics"))
            elif not 0 <= value <= 1:
                problems.append(located(f"thresholds.{metric}", f"{value} is not a score (0 to 1)"))
        if problems:
            raise ValueError("\n".join(problems))
        return self


class Evaluation(_Strict):
    """Evaluations as code (docs/evaluation.md): sets, what runs on them, when, and how much a score
    may fall before it alarms."""

    judge: str = Field(description="The judge model (listed under bedrock.models or inference_profiles)")
    sets: list[EvaluationSet] = Field(min_length=1)
    models: list[ModelEvaluation] = Field(default_factory=list)
    knowledge_bases: list[KnowledgeBaseEvaluation] = Field(default_factory=list)
    traffic: list[TrafficEvaluation] = Field(
        default_factory=list, description="Samples of logged traffic, run on the schedule only"
    )
    schedule: str = Field(
        default="cron(0 3 ? * SUN *)",
        pattern=r"^(cron|rate)\(.+\)$",
        description="EventBridge schedule of the runs (besides every prompt, guardrail or knowledge-base "
        "change)",
    )
    tolerance: float = Field(
        default=0.05, gt=0, le=1, description="Alarm when a score falls more than this below the accepted run"
    )

    @model_validator(mode="after")
    def _names(self) -> Evaluation:
        problems = repeated_names(self, "sets", "models", "knowledge_bases", "traffic")
        taken = {m.name for m in self.models}
        for field_name in ("knowledge_bases", "traffic"):
            names = {item.name for item in getattr(self, field_name)}
            problems += [
                located(field_name, f"{n!r} is also another evaluation's name") for n in sorted(names & taken)
            ]
            taken |= names
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def set_named(self, name: str) -> EvaluationSet | None:
        return next((s for s in self.sets if s.name == name), None)


def _callable(model_or_profile: str, region: str | None) -> bool:
    """A catalog model offered in `region`, or a system inference profile callable from it."""
    if region is None:
        return False
    catalog = bedrock_catalog()
    if model_or_profile in catalog.inference_profiles:
        return region in catalog.inference_profiles[model_or_profile].source_regions
    model = catalog.models.get(model_or_profile)
    return model is not None and region in model.regions


def evaluation_problems(evaluation: Evaluation, bedrock, gateway, training=None, region=None) -> list[str]:
    """The evaluations against the rest of the profile: the judge is a model the profile lists, or one
    the catalog knows and the region can call (the evaluation jobs' own role invokes it; the profile's
    model-access policy need not grant it), generators are listed models, sets, aliases, prompts and
    knowledge bases exist, the rows carry what the metrics and templates need; something is evaluated
    (an evaluation, or a training pipeline's gate)."""
    if bedrock is None:
        return ["needs the bedrock section: evaluations run on Amazon Bedrock"]
    listed = set(bedrock.models) | set(bedrock.inference_profiles)
    problems = []
    gates = [p for p in (training.pipelines if training else ()) if p.evaluation_gate is not None]
    if not (evaluation.models or evaluation.knowledge_bases or evaluation.traffic or gates):
        problems.append(
            located(
                "models",
                "knowledge_bases and traffic are empty and no training pipeline has an evaluation_gate: "
                "nothing would be evaluated",
            )
        )
    if evaluation.judge not in listed and not _callable(evaluation.judge, region):
        problems.append(
            located(
                "judge",
                f"{evaluation.judge!r} is neither listed under bedrock.models or inference_profiles nor "
                f"a model or inference profile of the catalog that {region or 'the region'} can call",
            )
        )
    prompts = {p.name: p for p in bedrock.prompts}
    knowledge_bases = {kb.name for kb in bedrock.knowledge_bases}
    aliases = gateway.aliases if gateway else {}
    for index, job in enumerate(evaluation.models):
        where = f"models[{index}]"
        rows = _rows(evaluation, job.set, f"{where}.set", problems)
        targets = aliases.get(job.alias)
        if targets is None:
            known = ", ".join(sorted(aliases)) or "none: add a gateway"
            problems.append(
                located(f"{where}.alias", f"{job.alias!r} is not a gateway alias (aliases: {known})")
            )
        elif not any(t.bedrock_model(bedrock) for t in targets):
            problems.append(located(f"{where}.alias", f"{job.alias!r} has no Bedrock target to evaluate"))
        template = prompts.get(job.prompt) if job.prompt else None
        if job.prompt and template is None:
            known = ", ".join(sorted(prompts)) or "none"
            problems.append(
                located(f"{where}.prompt", f"{job.prompt!r} is not a name of bedrock.prompts ({known})")
            )
        needed = [m for m in job.metrics if ALGORITHMIC[m].needs_reference]
        needed += [m for m in job.judge_metrics if JUDGED[m].needs_reference]
        problems += _row_problems(rows, where, needed, template, job.prompt)
    for index, job in enumerate(evaluation.knowledge_bases):
        where = f"knowledge_bases[{index}]"
        rows = _rows(evaluation, job.set, f"{where}.set", problems)
        if job.knowledge_base not in knowledge_bases:
            known = ", ".join(sorted(knowledge_bases)) or "none"
            problems.append(
                located(
                    f"{where}.knowledge_base",
                    f"{job.knowledge_base!r} is not a name of bedrock.knowledge_bases ({known})",
                )
            )
        if job.generator and job.generator not in listed:
            problems.append(located(f"{where}.generator", f"{job.generator!r} is not listed under bedrock"))
        table = RETRIEVAL if job.mode == "retrieve" else GENERATION
        needed = [m for m in job.metrics if table[m].needs_reference]
        problems += _row_problems(rows, where, needed, None, None)
    problems += _traffic_problems(evaluation, bedrock)
    return problems


@cache
def transform_instance_types() -> frozenset[str]:
    """The instance types a batch transform takes (botocore's SageMaker model, TransformInstanceType)."""
    import botocore.session

    shape = botocore.session.get_session().get_service_model("sagemaker").shape_for("TransformInstanceType")
    return frozenset(shape.enum)


def gate_problems(training, evaluation: Evaluation | None, inference=None) -> list[str]:
    """A pipeline's evaluation_gate needs the evaluation section (its judge and sets) and an endpoint
    to take the serving container from: a GPU one (an Inferentia2 container compiles the model when it
    starts, which a transform job gives no time for), whose instance type a batch transform takes and
    whose context holds each prompt and the answer (TGI: the prompt in half of it, MAX_INPUT_TOKENS)."""
    from genai_stack.lambdas.gateway.routing import estimated_tokens

    endpoints = {e.name: e for e in inference.endpoints} if inference else {}
    problems = []
    for index, pipeline in enumerate(training.pipelines if training else ()):
        if pipeline.evaluation_gate is None:
            continue
        where = f"training.pipelines[{index}].evaluation_gate"
        if evaluation is None:
            problems.append(located(where, "needs the evaluation section: its judge scores the candidate"))
        else:
            # The candidate answers each row's prompt as written: no template fills variables.
            found = _rows(evaluation, pipeline.evaluation_gate.set, f"{where}.set", problems)
            problems += _row_problems(found, where, [], None, None)
        if not pipeline.deploy_to:
            problems.append(
                located(
                    where, "needs deploy_to: the candidate answers in the first endpoint's serving container"
                )
            )
        endpoint = endpoints.get(pipeline.deploy_to[0]) if pipeline.deploy_to else None
        if endpoint is not None:
            problems += _endpoint_problems(
                where, pipeline.evaluation_gate, endpoint, evaluation, estimated_tokens
            )
    return problems


def _endpoint_problems(where: str, gate: EvaluationGate, endpoint, evaluation, estimated_tokens) -> list[str]:
    problems = []
    first = f"the first deploy_to endpoint {endpoint.name!r}"
    if endpoint.container == "diffusers":
        return [located(where, f"{first} serves an image model; a judge scores text answers")]
    if endpoint.container == "lmi-neuron":
        problems.append(
            located(
                where,
                f"runs the candidate in {first}'s container, and lmi-neuron compiles the model when it "
                "starts: list a GPU endpoint first in deploy_to",
            )
        )
    if endpoint.instance_type not in transform_instance_types():
        problems.append(
            located(where, f"{first}'s {endpoint.instance_type} is not a batch transform instance type")
        )
    rows = evaluation.set_named(gate.set) if evaluation else None
    longest = max((estimated_tokens(r.prompt or "") for r in rows.rows), default=0) if rows else 0
    prompt_room = endpoint.max_model_len // 2 if endpoint.container == "tgi" else endpoint.max_model_len
    if longest + gate.max_tokens > endpoint.max_model_len or longest > prompt_room:
        problems.append(
            located(
                f"{where}.max_tokens",
                f"{gate.max_tokens} with the set's longest prompt (about {longest} tokens) does not fit "
                f"{first}'s max_model_len of {endpoint.max_model_len}",
            )
        )
    return problems


def _traffic_problems(evaluation: Evaluation, bedrock) -> list[str]:
    """A traffic evaluation needs the logs it samples, the guardrail PII policy it redacts with, and a
    model evaluation of the same alias scoring its metrics to compare with."""
    problems = []
    models = {m.name: m for m in evaluation.models}
    for index, job in enumerate(evaluation.traffic):
        where = f"traffic[{index}]"
        logging = bedrock.invocation_logging
        if not (logging.enabled and logging.text):
            problems.append(
                located(
                    where,
                    "samples Bedrock's invocation logs: bedrock.invocation_logging needs enabled and text",
                )
            )
        rail = bedrock.guardrail
        if rail is None or not (rail.pii_entities or rail.regexes):
            problems.append(
                located(
                    where,
                    "redacts the sample with the guardrail's PII policy: bedrock.guardrail needs "
                    "pii_entities or regexes",
                )
            )
        compared = models.get(job.compare_with)
        if compared is None:
            known = ", ".join(sorted(models)) or "none"
            problems.append(
                located(f"{where}.compare_with", f"{job.compare_with!r} is not a model evaluation ({known})")
            )
            continue
        if compared.alias != job.alias:
            problems.append(
                located(
                    f"{where}.compare_with",
                    f"{job.compare_with!r} evaluates alias {compared.alias!r}, not {job.alias!r}",
                )
            )
        missing = [m for m in job.judge_metrics if m not in compared.judge_metrics]
        if missing:
            problems.append(
                located(
                    f"{where}.judge_metrics",
                    f"{', '.join(missing)}: not scored by {job.compare_with!r}, so there is nothing to "
                    "compare with",
                )
            )
    return problems


def _rows(evaluation: Evaluation, name: str, where: str, problems: list[str]) -> EvaluationSet | None:
    found = evaluation.set_named(name)
    if found is None:
        known = ", ".join(s.name for s in evaluation.sets)
        problems.append(located(where, f"{name!r} is not a name of evaluation.sets ({known})"))
    return found


def _row_problems(
    found: EvaluationSet | None, where: str, needs_reference: list[str], template, prompt_name
) -> list[str]:
    """Each row's fit for the evaluation, by its file and line: a reference where a metric needs one;
    variables covering the template's (with a template), a prompt (without)."""
    problems = []
    for index, row in enumerate(found.rows if found else ()):
        at = f"{found.where(index)} (set {found.name!r})"
        if needs_reference and row.reference is None:
            problems.append(
                located(where, f"{at}: has no reference, which {', '.join(needs_reference)} need")
            )
        if template is not None:
            missing = sorted(set(template.variables) - set(row.variables or {}))
            if row.variables is None or missing:
                names = ", ".join(missing or template.variables)
                problems.append(located(where, f"{at}: prompt {prompt_name!r} needs variables {names}"))
        elif prompt_name is None and row.prompt is None:
            problems.append(located(where, f"{at}: has variables but the evaluation names no prompt"))
    return problems
