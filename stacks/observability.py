"""The custom CloudWatch metrics a profile pays for: who emits them, with which dimensions, how many
series the profile's settings make.

CloudWatch bills each custom metric, "a unique combination of metric name and dimensions" (namespace,
name and dimension values: CloudWatch user guide, "Metrics concepts", Dimensions:
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_concepts.html#Dimension),
per month it is published in (Amazon CloudWatch pricing page, Metrics). So the series count follows
the dimension values the emitting code can put: one gateway series per alias, target that may answer
and tenant, one ingestion series per knowledge base, and so on. The cost model prices the result
(stacks/planning/cost.py); tests/signals checks every set below against what the code emits when run with the
template's environment (names and dimension names), so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from genai_stack.config import Profile

GATEWAY = "GenAiStack/Gateway"
GATEWAY_PER_REQUEST = (
    "Latency",
    "InputTokens",
    "OutputTokens",
    "EstimatedCost",
    "CacheHit",
    "Fallback",
    "GuardrailIntervention",
)
GATEWAY_PER_ALIAS = ("Requests", "FellBack", "EstimatedCost")
SEMANTIC_PER_LOOKUP = ("SemanticCacheHit", "SemanticCacheErrors")
SEMANTIC_PER_HIT = ("SemanticCacheSimilarity", "SemanticCacheSavedTokens", "SemanticCacheSavedCost")
DRIFT = "GenAiStack/Drift"
EVALUATION = "GenAiStack/Evaluation"  # stacks/components/model_evaluation.py NAMESPACE
DRIFT_METRICS = (
    "Requests",
    "PromptLengthP50",
    "PromptLengthP90",
    "AnswerLengthP50",
    "AnswerLengthP90",
    "NonAsciiShare",
    "CjkShare",
    "RefusalRate",
    "GuardrailInterventionRate",
    "PromptDistance",
    "AnswerDistance",
)


@dataclass(frozen=True)
class MetricSet:
    """Metrics one emitter publishes with one dimension set, and how many value combinations the
    profile gives that set (`series` per metric name)."""

    emitter: str
    namespace: str
    metrics: tuple[str, ...]
    dimensions: tuple[str, ...]
    series: int
    why: str

    @property
    def count(self) -> int:
        return len(self.metrics) * self.series


def _gateway_sets(profile: Profile) -> list[MetricSet]:
    gateway = profile.gateway
    if gateway is None:
        return []
    tenants = max(1, len(gateway.tenants))  # API keys; `anonymous` without one
    # target: any target of the alias that may answer, `cache` for a cache hit (chat only) and
    # `semantic-cache` for a semantic cache hit (the aliases that use it).
    cache = int(gateway.cache.enabled)
    semantic = sorted(gateway.semantic_cache.aliases) if gateway.semantic_cache else []
    chat = {
        alias: len(targets) + cache + int(alias in semantic) for alias, targets in gateway.aliases.items()
    }
    aliases = {**chat, **dict.fromkeys(gateway.embeddings, 1)}
    routes = sum(aliases.values())
    emitter = "lambdas/gateway/metrics.py (EMF)"
    return [
        MetricSet(
            emitter,
            GATEWAY,
            GATEWAY_PER_REQUEST,
            ("alias", "service", "target", "tenant"),
            routes * tenants,
            f"{routes} alias-target pairs x {tenants} tenants",
        ),
        MetricSet(
            emitter, GATEWAY, GATEWAY_PER_ALIAS, ("alias", "service"), len(aliases), f"{len(aliases)} aliases"
        ),
        MetricSet(emitter, GATEWAY, ("UnhandledErrors",), ("service",), 1, "one per gateway"),
        *_feedback_sets(profile, tenants, sum(chat.values()), emitter),
        *(
            [
                MetricSet(
                    emitter, GATEWAY, metrics, ("alias", "service"), len(semantic), f"{len(semantic)} aliases"
                )
                for metrics in (SEMANTIC_PER_LOOKUP, SEMANTIC_PER_HIT)
            ]
            if semantic
            else []
        ),
        *(
            [
                MetricSet(
                    emitter,
                    GATEWAY,
                    ("RoutedLarge",),
                    ("alias", "service"),
                    len(gateway.routes),
                    f"{len(gateway.routes)} routes",
                )
            ]
            if gateway.routes
            else []
        ),
    ]


# Prompt versions a rating names (metadata.prompt_version): "none" and one named version, as an
# estimate; every further version in use adds as many series.
PROMPT_VERSIONS_ESTIMATE = 2


def _feedback_sets(profile: Profile, tenants: int, chat_routes: int, emitter: str) -> list[MetricSet]:
    """`chat_routes`: the chat alias-target pairs that may answer (a rating names its answer's target)."""
    gateway = profile.gateway
    if gateway is None or gateway.feedback is None:
        return []
    return [
        MetricSet(
            emitter,
            GATEWAY,
            ("Satisfaction",),
            ("alias", "prompt_version", "service", "target", "tenant"),
            chat_routes * tenants * PROMPT_VERSIONS_ESTIMATE,
            f"{chat_routes} chat alias-target pairs x {tenants} tenants x {PROMPT_VERSIONS_ESTIMATE} prompt "
            "versions (none and one named; each further version adds as many)",
        ),
        MetricSet(
            emitter,
            GATEWAY,
            ("Satisfaction",),
            ("alias", "service"),
            len(gateway.aliases),
            f"{len(gateway.aliases)} chat aliases",
        ),
    ]


def _bedrock_sets(profile: Profile) -> list[MetricSet]:
    bedrock = profile.bedrock
    if bedrock is None:
        return []
    result = []
    if bedrock.knowledge_bases:
        result.append(
            MetricSet(
                "lambdas/kb_ingestion/handler.py (EMF)",
                "GenAiStack/KnowledgeBases",
                ("IngestionJobFailed",),
                ("KnowledgeBase", "service"),
                len(bedrock.knowledge_bases),
                f"{len(bedrock.knowledge_bases)} knowledge bases",
            )
        )
    if bedrock.image_batch is not None:
        result.append(
            MetricSet(
                "lambdas/image_batch/handler.py (EMF)",
                "GenAiStack/ImageBatch",
                ("ImagesGenerated", "EstimatedCost", "ImagesRefused", "BadItems"),
                ("service",),
                1,
                "one image batch worker",
            )
        )
    logging = bedrock.invocation_logging
    if logging is not None and logging.enabled and logging.drift is not None and logging.text:
        # Target: each Bedrock model id seen in the logs, and `all` (lambdas/drift_monitor/logic.py);
        # the profile's models bound what the roles may invoke.
        models = len(bedrock.models) + len(bedrock.inference_profiles) + 1
        result += _drift_sets(models, "Bedrock models the profile may invoke, and all")
    return result


def _drift_sets(targets: int, why: str) -> list[MetricSet]:
    emitter = "lambdas/drift_monitor/logic.py (PutMetricData)"
    return [
        MetricSet(
            emitter, DRIFT, DRIFT_METRICS, ("Profile", "Source", "Target"), targets, f"{targets} {why}"
        ),
        MetricSet(emitter, DRIFT, ("RunsCompleted",), ("Profile",), 1, "one per drift job"),
    ]


def _inference_sets(profile: Profile) -> list[MetricSet]:
    inference = profile.inference
    if inference is None:
        return []
    result = []
    pipelines = profile.training.pipelines if profile.training else ()
    deployed = sorted({endpoint for p in pipelines for endpoint in p.deploy_to})
    if deployed:
        result.append(
            MetricSet(
                "lambdas/model_deployer/handler.py (EMF)",
                "GenAiStack/ModelRegistry",
                ("ModelDeployed", "RolloutFailed"),
                ("EndpointName", "service"),
                len(deployed),
                f"{len(deployed)} endpoints receiving approved models",
            )
        )
    capturing = [e for e in inference.endpoints if e.data_capture_percentage]
    if inference.drift is not None and capturing:
        result += _drift_sets(len(capturing), "endpoints capturing data")
    return result


def _host_sets(profile: Profile) -> list[MetricSet]:
    """Model hosts publish per fleet only (dimension ModelHost; the CloudWatch agent drops its
    per-instance series: model_host_user_data.cloudwatch_agent_config): memory and disk used % on
    every fleet, GPU utilisation on GPU fleets, NeuronCore utilisation (neuron_metrics.py) on Neuron ones."""
    hosting = profile.hosting
    if hosting is None or not hosting.hosts:
        return []
    namespace = "GenAiStack/ModelHosts"  # model_host_fleet.METRICS_NAMESPACE
    hosts = hosting.hosts
    gpu = sum(h.server == "vllm-gpu" for h in hosts)
    result = [
        MetricSet(
            "CloudWatch agent (model_host_user_data.py)",
            namespace,
            ("mem_used_percent", "disk_used_percent"),
            ("ModelHost",),
            len(hosts),
            f"{len(hosts)} host fleets",
        )
    ]
    if gpu:
        result.append(
            MetricSet(
                "CloudWatch agent nvidia_gpu (model_host_user_data.py)",
                namespace,
                ("nvidia_smi_utilization_gpu",),
                ("ModelHost",),
                gpu,
                f"{gpu} GPU fleets",
            )
        )
    if len(hosts) - gpu:
        result.append(
            MetricSet(
                "stacks/templates/neuron_metrics.py (PutMetricData)",
                namespace,
                ("NeuronCoreUtilization",),
                ("ModelHost",),
                len(hosts) - gpu,
                f"{len(hosts) - gpu} Neuron fleets",
            )
        )
    return result


def _evaluation_sets(profile: Profile) -> list[MetricSet]:
    """Score per job, metric and category of its set (over its languages), and the job overall
    (lambdas/evaluation/runs.py score_data); Regressions per evaluation. A new prompt
    version starts new Score series (PromptVersion), the old ones stop."""
    from genai_stack.planning.evaluation import gate_jobs, run_jobs

    jobs = run_jobs(profile)
    gates = list(gate_jobs(profile).values())
    if not jobs and not gates:
        return []
    emitter = "lambdas/evaluation/runs.py (PutMetricData)"
    series = 0
    for job in jobs:
        if job.planned.kind == "model":
            categories = len({r.category for r in profile.evaluation.set_named(job.planned.set).rows})
        else:
            # A knowledge-base dataset carries no category (its rows are conversation turns):
            # `general`; a traffic sample has the one category `traffic` (lambdas/evaluation/traffic.py).
            categories = 1
        series += len(job.planned.metrics) * (categories + 1)
    for gate in gates:  # collect's Score of a training gate: per category of its set, and overall
        categories = len({r.category for r in profile.evaluation.set_named(gate.planned.set).rows})
        series += len(gate.planned.metrics) * (categories + 1)
    evaluations = len({job.planned.evaluation for job in jobs}) + len(gates)
    return [
        MetricSet(
            emitter,
            EVALUATION,
            ("Score",),
            ("Profile", "Evaluation", "Alias", "Target", "PromptVersion", "Metric", "Category"),
            series,
            f"{len(jobs) + len(gates)} jobs: each metric per category of the set, and overall",
        ),
        MetricSet(
            emitter, EVALUATION, ("Regressions",), ("Profile", "Evaluation"), evaluations, "per evaluation"
        ),
    ]


def custom_metric_sets(profile: Profile) -> list[MetricSet]:
    """Every custom metric set the profile's code publishes (AWS services' own metrics are free)."""
    return [
        *_gateway_sets(profile),
        *_bedrock_sets(profile),
        *_evaluation_sets(profile),
        *_inference_sets(profile),
        *_host_sets(profile),
    ]
