"""InferenceStack: the SageMaker endpoints of the training-and-tuning approach. It only wires: one
ModelEndpoint per endpoint of the profile, with its roles from the foundation, and its monitoring."""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.components.model_endpoint import ModelEndpoint
from stacks.components.model_endpoint_role import ModelEndpointRole
from stacks.components.monitoring import MonitoringHub
from stacks.config import Inference


class InferenceStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Inference,
        profile_name: str,
        roles: dict[str, ModelEndpointRole],
        artifacts_bucket: s3.IBucket,
        encryption_key: kms.IKey,
        log_retention_days: int,
        hub: MonitoringHub,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.endpoints: dict[str, ModelEndpoint] = {}
        for settings_ in settings.endpoints:
            endpoint = ModelEndpoint(
                self,
                f"Endpoint-{settings_.name}",
                settings=settings_,
                endpoint_name=f"{profile_name}-{settings_.name}",
                role=roles[settings_.name].role,
                monitor_role=roles[settings_.name].monitor_role,
                artifacts_bucket=artifacts_bucket,
                encryption_key=encryption_key,
                region=self.region,
                log_retention_days=log_retention_days,
            )
            endpoint.monitor(hub)
            self.endpoints[settings_.name] = endpoint
            CfnOutput(self, f"EndpointName-{settings_.name}", value=endpoint.endpoint_name)

    @property
    def endpoint_names(self) -> dict[str, str]:
        """Short name (as in the profile) -> SageMaker endpoint name."""
        return {name: endpoint.endpoint_name for name, endpoint in self.endpoints.items()}
