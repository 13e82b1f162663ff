"""BedrockStack: the managed-API approach — model access, guardrail, knowledge bases, invocation
logging, application inference profiles, prompts and model monitoring. It only wires."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from genai_stack.catalog import bedrock_catalog, bedrock_image_prices, guardrail_profile
from genai_stack.components.application_inference_profile import (
    ALIAS_TAG,
    ApplicationInferenceProfile,
    GatewayRoute,
    gateway_routes,
)
from genai_stack.components.drift_monitor import ALL_MODELS as DRIFT_ALL_MODELS
from genai_stack.components.drift_monitor import DriftMonitor, DriftSource, invocation_log_hours_prefix
from genai_stack.components.guardrail import Guardrail
from genai_stack.components.image_batch import ImageBatch
from genai_stack.components.invocation_logging import InvocationLogging
from genai_stack.components.knowledge_base import KnowledgeBase
from genai_stack.components.knowledge_base_ingestion import IngestionTarget, KnowledgeBaseIngestion
from genai_stack.components.model_access import (
    ApplicationProfileRef,
    GuardrailRef,
    ModelAccess,
    model_or_profile_arn,
)
from genai_stack.components.model_evaluation import EvaluatedJob, ModelEvaluation
from genai_stack.components.model_monitoring import ModelMonitoring, MonitoredProfile
from genai_stack.components.monitoring import MonitoringHub
from genai_stack.components.prompt_template import PromptTemplate
from genai_stack.components.vector_store import VectorStorage
from genai_stack.config import PROFILE_TAG, Bedrock, Evaluation, Gateway
from genai_stack.planning.evaluation import RunJob
from genai_stack.service_roles import knowledge_base_role


class BedrockStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        profile_name: str,
        settings: Bedrock,
        encryption_key: kms.IKey,
        data_bucket: s3.IBucket,
        knowledge_base_storage: dict[str, VectorStorage],
        log_retention_days: int,
        hub: MonitoringHub,
        gateway: Gateway | None = None,
        cost_tags: Mapping[str, str] | None = None,
        custom_serving: Sequence[Literal["on_demand", "provisioned"]] = (),
        evaluation: Evaluation | None = None,
        evaluation_jobs: Sequence[RunJob] = (),
        **kwargs,
    ) -> None:
        """`gateway`: the profile's model gateway; each of its Bedrock targets gets an application
        inference profile here (tagged with `cost_tags` and the alias), see `self.gateway_profiles`.
        `evaluation` and `evaluation_jobs` (planning.evaluation.run_jobs): the profile's evaluations,
        run here because everything they evaluate is here (components/model_evaluation.py)."""
        super().__init__(scope, construct_id, **kwargs)
        catalog = bedrock_catalog()

        guardrail = None
        guardrail_profile_arns: tuple[str, ...] = ()
        self.knowledge_bases: dict[str, KnowledgeBase] = {}
        self.invoking_roles: list[iam.IRole] = []  # roles that invoke models (budget.stop_invocations)
        if settings.guardrail is not None:
            created_guardrail = Guardrail(
                self,
                "Guardrail",
                name=f"{profile_name}-guardrail",
                settings=settings.guardrail,
                encryption_key=encryption_key,
                cross_region_profile=guardrail_profile(self.region)
                if settings.guardrail.tier == "STANDARD"
                else None,
                log_retention_days=log_retention_days,
            )
            guardrail, guardrail_profile_arns = created_guardrail.ref, created_guardrail.profile_arns
            CfnOutput(self, "GuardrailArn", value=guardrail.arn)
            CfnOutput(self, "GuardrailVersion", value=guardrail.version)

        app_profiles = []
        monitored: list[MonitoredProfile] = []  # where this profile's own Bedrock traffic is counted
        campaigns: dict[str, ApplicationProfileRef] = {}
        for app in settings.application_inference_profiles:
            created = ApplicationInferenceProfile(
                self,
                f"AppProfile-{app.name}",
                name=f"{profile_name}-{app.name}",
                copy_from_arn=model_or_profile_arn(self, app.source, catalog),
                description=app.description,
                tags=app.tags,
            )
            campaigns[app.name] = ApplicationProfileRef(arn=created.arn, source=app.source)
            app_profiles.append(campaigns[app.name])
            monitored.append(
                MonitoredProfile(
                    f"campaign {app.name} ({app.source})",
                    created.arn,
                    created.profile.attr_inference_profile_id,
                )
            )
            CfnOutput(self, f"AppProfileArn-{app.name}", value=created.arn)

        # Every Bedrock call of the gateway goes through an application inference profile, so the
        # cost-allocation tag reaches its tokens (stacks/components/application_inference_profile.py).
        self.gateway_routes: list[GatewayRoute] = gateway_routes(profile_name, gateway, settings)
        self.gateway_profiles: dict[tuple[str, str, str], ApplicationProfileRef] = {}
        names = [r.name for r in self.gateway_routes if r.campaign is None]
        if len(names) != len(set(names)):
            raise ValueError(f"gateway application inference profile names collide: {sorted(names)}")
        for route in self.gateway_routes:
            if route.campaign is not None:
                self.gateway_profiles[route.key] = campaigns[route.campaign]
                continue
            created = ApplicationInferenceProfile(
                self,
                f"GatewayProfile-{route.kind}-{route.alias}-{route.model}",
                name=route.name,
                copy_from_arn=model_or_profile_arn(self, route.model, catalog),
                description=f"genai-stack {profile_name} gateway {route.kind} alias {route.alias}",
                tags={**(cost_tags or {}), ALIAS_TAG: route.alias},
            )
            ref = ApplicationProfileRef(arn=created.arn, source=route.model)
            self.gateway_profiles[route.key] = ref
            app_profiles.append(ref)
            monitored.append(
                MonitoredProfile(
                    f"gateway {route.alias} ({route.model})",
                    created.arn,
                    created.profile.attr_inference_profile_id,
                )
            )

        access = ModelAccess(
            self,
            "ModelAccess",
            catalog=catalog,
            models=settings.models,
            inference_profiles=settings.inference_profiles,
            application_profiles=app_profiles,
            guardrail=guardrail,
            guardrail_profile_arns=guardrail_profile_arns,
            enforce_guardrail=bool(settings.guardrail and settings.guardrail.mandatory),
            # The gateway's custom-model targets (training.customizations served on_demand or
            # provisioned): their pipelines tag the serving resources with the profile's tag.
            custom_serving=custom_serving,
            owner_tag=(PROFILE_TAG, profile_name),
        )
        self.model_access_policy = access.policy
        self.guardrail = guardrail
        CfnOutput(self, "ModelAccessPolicyArn", value=access.policy.managed_policy_arn)

        ingestion_targets = []
        for kb in settings.knowledge_bases:
            created = KnowledgeBase(
                self,
                f"KnowledgeBase-{kb.name}",
                name=f"{profile_name}-{kb.name}",
                description=kb.description,
                embedding_model_id=kb.embedding_model,
                dimensions=kb.dimensions,
                storage=knowledge_base_storage[kb.name],
                role=knowledge_base_role(
                    self,
                    kb,
                    storage=knowledge_base_storage[kb.name],
                    data_bucket=data_bucket,
                    encryption_key=encryption_key,
                ).role,
                data_bucket=data_bucket,
                prefix=kb.prefix,
                chunking=kb.chunking,
                encryption_key=encryption_key,
            )
            self.knowledge_bases[kb.name] = created
            CfnOutput(self, f"KnowledgeBaseId-{kb.name}", value=created.id)
            if created.data_source_id is None:  # a Kendra index: it embeds and syncs its documents itself
                continue
            self.invoking_roles.append(created.role)  # embeddings (budget.stop_invocations denies them)
            ingestion_targets.append(
                IngestionTarget(
                    name=kb.name,
                    knowledge_base_id=created.id,
                    knowledge_base_arn=created.arn,
                    data_source_id=created.data_source_id,
                    prefix=kb.prefix,
                    schedule=kb.ingestion_schedule,
                    storage=knowledge_base_storage[kb.name],
                )
            )
        if ingestion_targets:
            KnowledgeBaseIngestion(
                self,
                "Ingestion",
                knowledge_bases=ingestion_targets,
                data_bucket=data_bucket,
                encryption_key=encryption_key,
                log_retention_days=log_retention_days,
                hub=hub,
            )

        logging = settings.invocation_logging
        if logging.enabled:
            InvocationLogging(
                self,
                "InvocationLogging",
                bucket=data_bucket,
                encryption_key=encryption_key,
                log_retention_days=logging.log_retention_days,
                text=logging.text,
                image=logging.image,
                embedding=logging.embedding,
                take_over=logging.take_over,
            )
            if logging.drift is not None and logging.text:
                # Drift of the logged text invocations, per model and for all models together.
                DriftMonitor(
                    self,
                    "Drift",
                    profile_name=profile_name,
                    sources=[
                        DriftSource(
                            name="bedrock",
                            source="bedrock",
                            bucket=data_bucket,
                            prefix=invocation_log_hours_prefix(self.account, self.region),
                            baseline_bucket=data_bucket,
                            baseline_key="monitoring/bedrock-invocations/drift/baseline.json",
                            alarm_targets=(DRIFT_ALL_MODELS,),
                        )
                    ],
                    settings=logging.drift,
                    encryption_key=encryption_key,
                    log_retention_days=log_retention_days,
                    hub=hub,
                )

        prompt_versions: dict[str, str] = {}
        for prompt in settings.prompts:
            created = PromptTemplate(
                self,
                f"Prompt-{prompt.name}",
                name=f"{profile_name}-{prompt.name}",
                text=prompt.text,
                variables=prompt.variables,
                model_id=prompt.model,
                max_tokens=prompt.max_tokens,
                temperature=prompt.temperature,
                encryption_key=encryption_key,
                description=prompt.description,
            )
            CfnOutput(self, f"PromptVersionArn-{prompt.name}", value=created.version.attr_arn)
            prompt_versions[prompt.name] = created.version.attr_version

        self.evaluation: ModelEvaluation | None = None
        if evaluation is not None and evaluation_jobs:
            self.evaluation = self._evaluation(
                profile_name=profile_name,
                evaluation=evaluation,
                jobs=evaluation_jobs,
                prompt_versions=prompt_versions,
                guardrail=guardrail,
                guardrail_profile_arns=guardrail_profile_arns,
                data_bucket=data_bucket,
                encryption_key=encryption_key,
                log_retention_days=log_retention_days,
                hub=hub,
                cost_tags=cost_tags or {},
            )
            self.invoking_roles.append(self.evaluation.service_role)  # budget.stop_invocations stops it too
            CfnOutput(
                self, "EvaluationStateMachineArn", value=self.evaluation.state_machine.state_machine_arn
            )

        self.image_batch: ImageBatch | None = None
        if settings.image_batch is not None and guardrail is not None:  # the profile requires a guardrail
            self.image_batch = ImageBatch(
                self,
                "ImageBatch",
                settings=settings.image_batch,
                name=profile_name,
                data_bucket=data_bucket,
                encryption_key=encryption_key,
                guardrail=guardrail,
                guardrail_profile_arns=guardrail_profile_arns,
                price_per_image=bedrock_image_prices().get(settings.image_batch.model, 0.0),
                log_retention_days=log_retention_days,
            )
            self.image_batch.monitor(hub)
            self.invoking_roles.append(self.image_batch.worker.role)  # budget.stop_invocations stops it too
            CfnOutput(
                self, "ImageBatchStateMachineArn", value=self.image_batch.state_machine.state_machine_arn
            )

        ModelMonitoring(
            self,
            "Monitoring",
            model_ids=[*settings.models, *settings.inference_profiles],
            profiles=monitored,
            guardrail=guardrail,
            throttle_threshold=settings.alarms.throttles,
            server_error_threshold=settings.alarms.server_errors,
            hub=hub,
        )

    def _evaluation(
        self,
        *,
        profile_name: str,
        evaluation: Evaluation,
        jobs: Sequence[RunJob],
        prompt_versions: Mapping[str, str],
        guardrail: GuardrailRef | None,
        guardrail_profile_arns: Sequence[str],
        data_bucket: s3.IBucket,
        encryption_key: kms.IKey,
        log_retention_days: int,
        hub: MonitoringHub,
        cost_tags: Mapping[str, str],
    ) -> ModelEvaluation:
        """The evaluation runs, wired to what they evaluate: each model job's alias target (its
        application inference profile) and prompt version, each traffic job's alias target, each
        knowledge-base job's knowledge base."""
        evaluated = []
        for run_job in jobs:
            planned = run_job.planned
            if planned.kind == "model":
                evaluated.append(
                    EvaluatedJob(
                        job=run_job,
                        model=self.gateway_profiles[("chat", planned.alias, planned.via)],
                        prompt_version=prompt_versions[planned.prompt] if planned.prompt else "-",
                    )
                )
            elif planned.kind == "traffic":  # what the target's logged invocations name
                logged_as = tuple(
                    self.gateway_profiles[r.key].arn
                    for r in self.gateway_routes
                    if (r.kind, r.alias, r.model) == ("chat", planned.alias, planned.target)
                )
                evaluated.append(EvaluatedJob(job=run_job, logged_as=logged_as))
            else:
                knowledge_base = self.knowledge_bases[planned.knowledge_base]
                evaluated.append(
                    EvaluatedJob(
                        job=run_job,
                        knowledge_base_id=knowledge_base.id,
                        knowledge_base_arn=knowledge_base.arn,
                    )
                )
        return ModelEvaluation(
            self,
            "Evaluation",
            profile_name=profile_name,
            jobs=evaluated,
            judge=evaluation.judge,
            schedule=evaluation.schedule,
            tolerance=evaluation.tolerance,
            catalog=bedrock_catalog(),
            guardrail=guardrail,
            guardrail_profile_arns=guardrail_profile_arns,
            data_bucket=data_bucket,
            encryption_key=encryption_key,
            log_retention_days=log_retention_days,
            hub=hub,
            job_tags=cost_tags,
        )
