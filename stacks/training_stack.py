"""TrainingStack: SageMaker training pipelines (train -> evaluate -> register), the approval-to-
deployment loop, and Bedrock model customization. It only wires the constructs of stacks/components
to their roles and the foundation's buckets and key, and registers their monitoring. The endpoints'
roles are the inference stack's (`endpoint_roles`)."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from genai_stack.catalog import bedrock_catalog, image_uri
from genai_stack.components.bedrock_customization import BedrockCustomization
from genai_stack.components.candidate_evaluation import GateProps
from genai_stack.components.endpoint_layout import container_environment
from genai_stack.components.model_deployment import EndpointDeployment, ModelDeployment
from genai_stack.components.model_endpoint_role import ModelEndpointRole
from genai_stack.components.monitoring import MonitoringHub
from genai_stack.components.training_pipeline import TrainingPipeline
from genai_stack.config import PROFILE_TAG, Inference, InferenceEndpoint, Training
from genai_stack.config import TrainingPipeline as TrainingPipelineSettings
from genai_stack.planning.evaluation import GateJob
from genai_stack.service_roles import customization_role, training_role


class TrainingStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Training,
        inference: Inference | None,
        profile_name: str,
        endpoint_roles: Mapping[str, ModelEndpointRole],
        data_bucket: s3.IBucket,
        artifacts_bucket: s3.IBucket,
        encryption_key: kms.IKey,
        log_retention_days: int,
        hub: MonitoringHub,
        cost_tags: dict[str, str],
        gates: Mapping[str, GateJob] | None = None,
        judge: str | None = None,
        **kwargs,
    ) -> None:
        """`gates` (planning.evaluation.gate_jobs) and `judge`: the pipelines' evaluation gates and the
        profile's judge model."""
        super().__init__(scope, construct_id, **kwargs)
        endpoints = {e.name: e for e in inference.endpoints} if inference else {}
        deployments = []
        self.pipelines: dict[str, TrainingPipeline] = {}
        for pipeline in settings.pipelines:
            targets = [endpoints[name] for name in pipeline.deploy_to]
            built = TrainingPipeline(
                self,
                f"Pipeline-{pipeline.name}",
                settings=pipeline,
                pipeline_name=f"{profile_name}-{pipeline.name}",
                role=training_role(
                    self,
                    pipeline,
                    data_bucket=data_bucket,
                    artifacts_bucket=artifacts_bucket,
                    encryption_key=encryption_key,
                ).role,
                data_bucket=data_bucket,
                artifacts_bucket=artifacts_bucket,
                encryption_key=encryption_key,
                region=self.region,
                log_retention_days=log_retention_days,
                inference_image_uri=_inference_image(targets, self.region),
                tags={**cost_tags, PROFILE_TAG: profile_name},
                gate=_gate(
                    pipeline,
                    (gates or {}).get(pipeline.name),
                    judge,
                    targets,
                    endpoint_roles,
                    profile_name,
                    self.region,
                ),
            )
            built.monitor(hub)
            self.pipelines[pipeline.name] = built
            CfnOutput(self, f"StateMachine-{pipeline.name}", value=built.state_machine.state_machine_arn)
            # One approval, every listed endpoint (lambdas/model_deployer rolls each).
            deployments += [
                _deployment(built, target, profile_name, endpoint_roles, encryption_key) for target in targets
            ]
        if deployments:
            ModelDeployment(
                self,
                "ModelDeployment",
                deployments=deployments,
                encryption_key=encryption_key,
                log_retention_days=log_retention_days,
                tags={**cost_tags, PROFILE_TAG: profile_name},
            ).monitor(hub)
        # What each served customization answers as, for the gateway: name -> (serving, the name of
        # the deployment or Provisioned Throughput its pipeline keeps pointed at the newest model).
        self.custom_models: dict[str, tuple[str, str]] = {}
        for job in settings.customizations:
            customization = BedrockCustomization(
                self,
                f"Customization-{job.name}",
                settings=job,
                job_prefix=f"{profile_name}-{job.name}",
                role=customization_role(
                    self,
                    job,
                    data_bucket=data_bucket,
                    artifacts_bucket=artifacts_bucket,
                    encryption_key=encryption_key,
                ).role,
                data_bucket=data_bucket,
                artifacts_bucket=artifacts_bucket,
                encryption_key=encryption_key,
                region=self.region,
                log_retention_days=log_retention_days,
                # The cost tag and the profile's own tag (PROFILE_TAG, which never changes): the
                # stopping, moving and deleting statements admit resources with either.
                tags={**cost_tags, PROFILE_TAG: profile_name},
            )
            customization.monitor(hub)
            if job.serving == "on_demand":
                self.custom_models[job.name] = ("on_demand", customization.deployment_name)
            elif job.serving == "provisioned":
                self.custom_models[job.name] = ("provisioned", customization.provisioned_model_name)
            CfnOutput(self, f"StateMachine-{job.name}", value=customization.state_machine.state_machine_arn)


def _gate(
    pipeline: TrainingPipelineSettings,
    gate: GateJob | None,
    judge: str | None,
    targets: list[InferenceEndpoint],
    endpoint_roles: Mapping[str, ModelEndpointRole],
    profile_name: str,
    region: str,
) -> GateProps | None:
    """A pipeline's gate, evaluated in its first deploy_to endpoint's container, with that endpoint's
    execution role (the profile check requires deploy_to with a gate)."""
    if gate is None:
        return None
    if judge is None or not targets:  # the profile check refuses this (profile.evaluation.gate_problems)
        raise ValueError(f"{pipeline.name}: an evaluation gate needs the judge and a deploy_to endpoint")
    endpoint = targets[0]
    return GateProps(
        profile_name=profile_name,
        gate=gate,
        judge=judge,
        catalog=bedrock_catalog(),
        model_image=image_uri(endpoint.container, region),
        model_environment=container_environment(endpoint),
        model_role=endpoint_roles[endpoint.name].role,
        instance_type=endpoint.instance_type,
    )


def _inference_image(targets: list[InferenceEndpoint], region: str) -> str | None:
    """The serving image registered with each model version: the endpoints' container (one, see
    stacks/profile/training.py training_problems), or None without endpoints (the training image is
    registered)."""
    return image_uri(targets[0].container, region) if targets else None


def _deployment(
    pipeline: TrainingPipeline,
    endpoint: InferenceEndpoint,
    profile_name: str,
    endpoint_roles: Mapping[str, ModelEndpointRole],
    encryption_key: kms.IKey,
) -> EndpointDeployment:
    """What the deployer needs to roll `endpoint` to an approved model of `pipeline`: the role, container
    settings and network isolation of the model the stack created, and the platform key, which the
    endpoint's configuration uses for captured data (and, without local NVMe, its volume). The other
    settings come from the endpoint's configuration, which the deployer copies."""
    return EndpointDeployment(
        model_package_group=pipeline.model_package_group_name,
        endpoint_name=f"{profile_name}-{endpoint.name}",
        execution_role_arn=endpoint_roles[endpoint.name].role.role_arn,
        kms_key_arn=encryption_key.key_arn,
        enable_network_isolation=True,
        environment=container_environment(endpoint),
    )
