"""InferenceStack: the SageMaker endpoints of the training-and-tuning approach. It only wires: one
ModelEndpoint per endpoint of the profile, with its roles, and its monitoring; a
rule that tells the alarm topic when any of them fails or rolls an update back; and
the drift monitor over the captured data of the endpoints that capture (SageMaker Model Monitor is an
opt-in per endpoint, `monitoring_schedule`, for accounts that already have it)."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from genai_stack.components.drift_monitor import DriftMonitor, DriftSource
from genai_stack.components.endpoint_failure_notice import EndpointFailureNotice
from genai_stack.components.endpoint_layout import captures_data, data_capture_prefix, monitoring_prefix
from genai_stack.components.model_endpoint import VARIANT, ModelEndpoint
from genai_stack.components.model_endpoint_role import ModelEndpointRole
from genai_stack.components.monitoring import MonitoringHub
from genai_stack.config import PROFILE_TAG, Inference, Training
from genai_stack.service_roles import endpoint_role


class InferenceStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Inference,
        profile_name: str,
        training: Training | None,
        cost_tags: Mapping[str, str] | None = None,
        artifacts_bucket: s3.IBucket,
        encryption_key: kms.IKey,
        log_retention_days: int,
        hub: MonitoringHub,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.endpoints: dict[str, ModelEndpoint] = {}
        self.roles: dict[str, ModelEndpointRole] = {}
        # endpoints a training pipeline deploys its approved versions to
        approved_models = {name for p in (training.pipelines if training else ()) for name in p.deploy_to}
        for settings_ in settings.endpoints:
            roles = self.roles[settings_.name] = endpoint_role(
                self,
                settings_,
                profile_name=profile_name,
                training=training,
                artifacts_bucket=artifacts_bucket,
                encryption_key=encryption_key,
            )
            endpoint = ModelEndpoint(
                self,
                f"Endpoint-{settings_.name}",
                settings=settings_,
                endpoint_name=f"{profile_name}-{settings_.name}",
                role=roles.role,
                monitor_role=roles.monitor_role,
                artifacts_bucket=artifacts_bucket,
                encryption_key=encryption_key,
                region=self.region,
                log_retention_days=log_retention_days,
                # A training pipeline deploys its approved versions to this endpoint.
                approved_models=settings_.name in approved_models,
                # The cost tag and the profile's own, on the configurations it makes for them.
                tags={**(cost_tags or {}), PROFILE_TAG: profile_name},
            )
            endpoint.monitor(hub)
            self.endpoints[settings_.name] = endpoint
            CfnOutput(self, f"EndpointName-{settings_.name}", value=endpoint.endpoint_name)

        if self.endpoints:
            EndpointFailureNotice(
                self,
                "EndpointFailures",
                endpoint_names=[e.endpoint_name for e in self.endpoints.values()],
                topic=hub.alarm_topic,
            )

        capturing = [e for e in self.endpoints.values() if captures_data(e.settings)]
        self.drift: DriftMonitor | None = None
        if settings.drift is not None and capturing:
            self.drift = DriftMonitor(
                self,
                "Drift",
                profile_name=profile_name,
                sources=[
                    DriftSource(
                        name=e.endpoint_name,
                        source="sagemaker",
                        bucket=artifacts_bucket,
                        prefix=f"{data_capture_prefix(e.endpoint_name)}{VARIANT}/",
                        baseline_bucket=artifacts_bucket,
                        baseline_key=f"{monitoring_prefix(e.endpoint_name)}drift/baseline.json",
                        alarm_targets=(e.endpoint_name,),
                    )
                    for e in capturing
                ],
                settings=settings.drift,
                encryption_key=encryption_key,
                log_retention_days=log_retention_days,
                hub=hub,
            )

    @property
    def endpoint_names(self) -> dict[str, str]:
        """Short name (as in the profile) -> SageMaker endpoint name."""
        return {name: endpoint.endpoint_name for name, endpoint in self.endpoints.items()}
