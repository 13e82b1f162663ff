"""PythonCustomResource: a CloudFormation custom resource whose handler is a package under `lambdas/`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import CustomResource
from aws_cdk import aws_kms as kms
from aws_cdk import custom_resources as cr
from constructs import Construct

from genai_stack import compliance
from genai_stack.components.python_function import PythonFunction, encrypted_log_group


class PythonCustomResource(Construct):
    """The handler (`lambdas.<package>.handler.on_event`) runs behind the CDK provider framework,
    which reports to CloudFormation; both log to KMS-encrypted log groups. Grant the handler what it
    needs through `handler.function`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        package: str,
        description: str,
        resource_type: str,
        properties: Mapping[str, Any],
        encryption_key: kms.IKey,
        log_retention_days: int,
        timeout_seconds: int = 60,
    ) -> None:
        super().__init__(scope, construct_id)
        self.handler = PythonFunction(
            self,
            "Handler",
            package=package,
            description=description,
            encryption_key=encryption_key,
            log_retention_days=log_retention_days,
            timeout_seconds=timeout_seconds,
        )
        provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=self.handler.function,
            log_group=encrypted_log_group(
                self, "ProviderLogs", encryption_key=encryption_key, days=log_retention_days
            ),
            provider_function_env_encryption=encryption_key,
        )
        compliance.acknowledge_provider_framework(provider, self.handler.function)
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=provider.service_token,
            resource_type=resource_type,
            properties=dict(properties),
        )
