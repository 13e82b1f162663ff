"""ModelGateway: the OpenAI-compatible API (API Gateway REST + lambdas/gateway) with usage plans."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from stacks import compliance
from stacks.components.monitoring import MonitoringHub
from stacks.components.python_function import PythonFunction, encrypted_log_group, profile_scoped
from stacks.config import gateway_function_timeout_seconds

PATHS = (
    ("POST", ("chat", "completions")),
    ("POST", ("embeddings",)),
    ("GET", ("models",)),
    ("GET", ("models", "{id}")),  # one alias (OpenAI clients retrieve a model by id)
)
EMF_NAMESPACE = "GenAiStack/Gateway"  # lambdas/gateway/metrics.py
# API Gateway's own errors in the OpenAI format: (response type, status, error type, code). A wrong or
# missing key is OpenAI's 401 invalid_api_key (API Gateway says 403); throttles and quotas are 429.
GATEWAY_RESPONSES = (
    (apigw.ResponseType.INVALID_API_KEY, "401", "invalid_request_error", "invalid_api_key"),
    (apigw.ResponseType.ACCESS_DENIED, "403", "invalid_request_error", "access_denied"),
    (apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN, "403", "invalid_request_error", "missing_auth"),
    (apigw.ResponseType.THROTTLED, "429", "rate_limit_error", "rate_limit_exceeded"),
    (apigw.ResponseType.QUOTA_EXCEEDED, "429", "rate_limit_error", "quota_exceeded"),
    (apigw.ResponseType.REQUEST_TOO_LARGE, "413", "invalid_request_error", "request_too_large"),
    (apigw.ResponseType.INTEGRATION_TIMEOUT, "504", "timeout", "gateway_timeout"),
    (apigw.ResponseType.DEFAULT_4_XX, None, "invalid_request_error", "gateway_error"),
    (apigw.ResponseType.DEFAULT_5_XX, None, "server_error", "gateway_error"),
)


def openai_error_template(error_type: str, code: str) -> str:
    """A gateway response body in the OpenAI error format around API Gateway's quoted message."""
    return (
        '{"error": {"message": $context.error.messageString, '
        f'"type": "{error_type}", "param": null, "code": "{code}"}}}}'
    )


DIMENSIONS = "alias,service,target,tenant"  # the dimension set of the per-request EMF document


@dataclass(frozen=True)
class GatewayNetwork:
    """Where the function runs when it calls self-hosted models: the hosts' VPC, as their client."""

    vpc: ec2.IVpc
    subnets: ec2.SubnetSelection
    client_security_group: ec2.ISecurityGroup


@dataclass(frozen=True)
class Tenant:
    name: str
    rate_per_second: float
    burst: int
    monthly_quota: int | None


class ModelGateway(Construct):
    """`config` becomes the function's GATEWAY_CONFIG (tokens allowed). The function role gets the
    profile's model-access policy (so the guardrail enforcement of that policy applies to the gateway
    too), the cache table, Retrieve on the knowledge bases and InvokeEndpoint on the SageMaker endpoints.

    Auth: `api_key` (an API key and usage plan per tenant: rate, burst, monthly quota) or `iam`
    (SigV4-signed callers; usage plans still throttle per key if tenants are given).

    `account_logging_role`: the stage's access logging needs API Gateway's account-level CloudWatch
    Logs role (one per account and region). `create` makes a role of ours (AWS managed policy
    AmazonAPIGatewayPushToCloudWatchLogs), sets it with AWS::ApiGateway::Account, keeps both on delete
    so that other APIs of the account keep logging, and makes the stage wait for it; `existing` relies
    on the role already set (checked by `genai-stack doctor`).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Mapping[str, Any],
        access_policy: iam.IManagedPolicy,
        encryption_key: kms.IKey,
        log_retention_days: int,
        deadline_seconds: float,
        auth: Literal["api_key", "iam"],
        tenants: Sequence[Tenant],
        cache_table: dynamodb.ITable | None = None,
        knowledge_base_arns: Sequence[str] = (),
        sagemaker_endpoints: Sequence[str] = (),
        network: GatewayNetwork | None = None,
        account_logging_role: Literal["create", "existing"] = "create",
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.handler = PythonFunction(
            self,
            "Handler",
            package="gateway",
            description="OpenAI-compatible model gateway",
            encryption_key=encryption_key,
            log_retention_days=log_retention_days,
            environment={"GATEWAY_CONFIG": stack.to_json_string(dict(config))},
            # The request's deadline comes first (a clean 504); API Gateway's 29 s comes last.
            timeout_seconds=gateway_function_timeout_seconds(deadline_seconds),
            memory_size=1024,
            vpc=network.vpc if network else None,
            subnets=network.subnets if network else None,
            security_groups=[network.client_security_group] if network else (),
        )
        role = self.handler.role
        role.add_managed_policy(access_policy)
        if cache_table is not None:
            cache_table.grant(role, "dynamodb:GetItem", "dynamodb:PutItem")
            # The table uses the platform key: exact actions, not grant_encrypt_decrypt's wildcards.
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="UseTheCacheKey",
                    actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                    resources=[encryption_key.key_arn],
                )
            )
        if knowledge_base_arns:
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="RetrieveFromKnowledgeBases",
                    actions=["bedrock:Retrieve"],
                    resources=list(knowledge_base_arns),
                )
            )
        if sagemaker_endpoints:
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="InvokeEndpoints",
                    actions=["sagemaker:InvokeEndpoint"],
                    resources=[
                        stack.format_arn(service="sagemaker", resource="endpoint", resource_name=e.lower())
                        for e in sagemaker_endpoints
                    ],
                )
            )

        access_logs = encrypted_log_group(
            self, "AccessLogs", encryption_key=encryption_key, days=log_retention_days
        )
        self.api = apigw.RestApi(
            self,
            "Api",
            # API Gateway's metrics are keyed by ApiName (and Stage): one name per profile, so that two
            # profiles' gateways in one account and region are two series ("Amazon API Gateway
            # dimensions and metrics": https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-metrics-and-dimensions.html).
            rest_api_name=profile_scoped(self, "gateway"),
            description="genai-stack model gateway (OpenAI-compatible)",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # A stage with AccessLogSetting fails to deploy in an account and region without the
            # CloudWatch Logs role ("CloudWatch Logs role ARN must be set in account settings to enable
            # logging"; API Gateway guide, "Permissions for CloudWatch logging":
            # https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-logging.html).
            # aws-cdk-lib's cloud_watch_role creates the role and AWS::ApiGateway::Account and makes the
            # stage depend on the account. Retained: "When you delete a stack containing this resource,
            # API Gateway can still assume the provided IAM role" (AWS::ApiGateway::Account,
            # https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-apigateway-account.html),
            # so the role must outlive the stack too.
            cloud_watch_role=account_logging_role == "create",
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN
            if account_logging_role == "create"
            else None,
            api_key_source_type=apigw.ApiKeySourceType.HEADER,
            deploy_options=apigw.StageOptions(
                stage_name="api",
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
                # API-level metrics (ApiName, Stage) come without it; MetricsEnabled buys per-method
                # detailed metrics (billed as custom metrics) that no alarm or widget reads.
                metrics_enabled=False,
                tracing_enabled=True,
            ),
        )
        validator = self.api.add_request_validator(
            "BodyValidator", validate_request_body=True, validate_request_parameters=True
        )
        json_object = self.api.add_model(
            "JsonObject",
            content_type="application/json",
            schema=apigw.JsonSchema(schema=apigw.JsonSchemaVersion.DRAFT4, type=apigw.JsonSchemaType.OBJECT),
        )
        integration = apigw.LambdaIntegration(self.handler.function, proxy=True)
        v1 = self.api.root.add_resource("v1")
        for method, parts in PATHS:
            resource = v1
            for part in parts:
                resource = resource.get_resource(part) or resource.add_resource(part)
            resource.add_method(
                method,
                integration,
                api_key_required=auth == "api_key",
                authorization_type=apigw.AuthorizationType.IAM
                if auth == "iam"
                else apigw.AuthorizationType.NONE,
                request_validator=validator if method == "POST" else None,
                request_models={"application/json": json_object} if method == "POST" else None,
            )
        self._openai_gateway_responses()
        compliance.acknowledge(self.api, *compliance.GATEWAY_API_FINDINGS)
        if account_logging_role == "create":
            compliance.acknowledge(
                self.api.node.find_child("CloudWatchRole"), compliance.API_GATEWAY_ACCOUNT_ROLE
            )
        if auth == "api_key":
            compliance.acknowledge(self.api, *compliance.GATEWAY_API_KEY_AUTH)
        compliance.skip_checkov(
            self.api.deployment_stage.node.default_child, *compliance.GATEWAY_STAGE_CHECKOV_SKIPS
        )

        for tenant in tenants:
            plan = self.api.add_usage_plan(
                f"Plan-{tenant.name}",
                description=f"genai-stack gateway tenant {tenant.name}",
                throttle=apigw.ThrottleSettings(rate_limit=tenant.rate_per_second, burst_limit=tenant.burst),
                quota=apigw.QuotaSettings(limit=tenant.monthly_quota, period=apigw.Period.MONTH)
                if tenant.monthly_quota
                else None,
            )
            plan.add_api_stage(stage=self.api.deployment_stage)
            key = self.api.add_api_key(
                f"Key-{tenant.name}", description=f"genai-stack gateway tenant {tenant.name}"
            )
            plan.add_api_key(key)
            CfnOutput(
                stack,
                f"GatewayApiKeyId-{tenant.name}",
                value=key.key_id,
                description=f"API key id of tenant {tenant.name} (get-api-key --include-value shows the key)",
            )
        CfnOutput(stack, "GatewayBaseUrl", value=f"{self.api.url}v1", description="OpenAI base_url")

    def _openai_gateway_responses(self) -> None:
        """Errors API Gateway answers itself (a missing or wrong key, a usage plan's throttle or quota,
        a body over its limit, an integration timeout) as OpenAI error objects, so that OpenAI clients
        raise their typed errors (AuthenticationError, RateLimitError) instead of failing to parse
        `{"message": "Forbidden"}`. Gateway response templates take simple substitutions only;
        $context.error.messageString is the message already quoted as a JSON string ("Gateway
        responses for REST APIs" and "x-amazon-apigateway-gateway-responses.responseTemplates",
        API Gateway developer guide:
        https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-gatewayResponse-definition.html)."""
        for response_type, status, error_type, code in GATEWAY_RESPONSES:
            self.api.add_gateway_response(
                f"OpenAiError{response_type.response_type}",
                type=response_type,
                status_code=status,
                templates={"application/json": openai_error_template(error_type, code)},
            )

    def emf_metric(
        self, name: str, *, statistic: str = "Sum", period: Duration, **dimensions: str
    ) -> cw.Metric:
        """A metric of lambdas/gateway/metrics.py, with the dimensions its document has (plus service)."""
        return cw.Metric(
            namespace=EMF_NAMESPACE,
            metric_name=name,
            dimensions_map=self.handler.emf_dimensions(**dimensions),
            statistic=statistic,
            period=period,
        )

    def monitor(
        self,
        hub: MonitoringHub,
        *,
        server_error_percent: float,
        latency_p90_ms: int,
        fallback_percent: float,
        aliases_with_fallbacks: Sequence[str] = (),
    ) -> None:
        """Alarms (5xx share, p90 latency, unhandled errors, function errors, fallback share per alias
        with more than one target) and a dashboard section.

        TreatMissingData: the API's metrics exist only for periods with requests, UnhandledErrors and
        the per-alias metrics only when something happened, and Lambda's Errors only with
        invocations; so no data means no request and nothing wrong: notBreaching for all of them."""
        period = Duration.minutes(5)
        requests = self.api.metric_count(period=period, statistic="Sum")
        errors = self.api.metric_server_error(period=period, statistic="Sum")
        latency = self.api.metric_latency(period=period, statistic="p90")
        error_rate = cw.MathExpression(
            expression="100 * errors / MAX([requests, 1])",
            label="5xx %",
            using_metrics={"errors": errors, "requests": requests},
            period=period,
        )
        unhandled = self.emf_metric("UnhandledErrors", period=period)
        never = cw.TreatMissingData.NOT_BREACHING
        hub.alarm(
            self,
            "ServerErrorRate",
            metric=error_rate,
            threshold=server_error_percent,
            description=f"Gateway: 5xx above {server_error_percent:g}% of requests in 5 minutes",
            missing=never,
        )
        hub.alarm(
            self,
            "LatencyP90",
            metric=latency,
            threshold=latency_p90_ms,
            periods=3,
            description=f"Gateway: p90 latency above {latency_p90_ms} ms for 15 minutes",
            missing=never,
        )
        hub.alarm(
            self,
            "UnhandledErrors",
            metric=unhandled,
            threshold=1,
            description=(
                "Gateway: a request hit a bug of ours (answered 500 'internal error'); the stack "
                "trace is in the function's log ('unexpected error')"
            ),
            missing=never,
        )
        # The handler answers every exception itself, so Errors counts only what it cannot: timeouts,
        # out-of-memory and failed cold starts (Lambda developer guide, "Types of metrics for Lambda
        # functions", Errors).
        hub.alarm(
            self,
            "FunctionErrors",
            metric=self.handler.function.metric_errors(period=period),
            threshold=1,
            description="Gateway function: a timeout, out-of-memory or failed cold start",
            missing=never,
        )
        for alias in aliases_with_fallbacks:
            served = self.emf_metric("Requests", period=period, alias=alias)
            fell_back = self.emf_metric("FellBack", period=period, alias=alias)
            hub.alarm(
                self,
                f"FallbackShare-{alias}",
                metric=cw.MathExpression(
                    expression="100 * fellback / MAX([served, 1])",
                    label=f"{alias}: answered by a fallback %",
                    using_metrics={"fellback": fell_back, "served": served},
                    period=period,
                ),
                threshold=fallback_percent,
                periods=3,
                description=(
                    f"Gateway alias {alias}: more than {fallback_percent:g}% of requests answered by a "
                    "later target for 15 minutes (its first target fails, throttles or is down)"
                ),
                missing=never,
            )

        def search(metric: str, statistic: str) -> cw.MathExpression:
            # This profile's gateway only: its service name (two profiles may share the account), an
            # exact dimension-value term (CloudWatch user guide, "CloudWatch search expression
            # syntax": https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/search-expression-syntax.html).
            query = (
                "{"
                + f"{EMF_NAMESPACE},{DIMENSIONS}"
                + "}"
                + f' MetricName="{metric}" service="{self.handler.service_name}"'
            )
            return cw.MathExpression(
                expression=f"SEARCH('{query}', '{statistic}', 300)",
                label=metric,
                period=period,
                using_metrics={},
            )

        hub.add_section(
            "Model gateway",
            [
                cw.GraphWidget(title="Requests and 5xx", left=[requests, errors], width=8),
                cw.GraphWidget(title="p90 latency (ms)", left=[latency], width=8),
                cw.GraphWidget(
                    title="Tokens by alias, target, tenant",
                    left=[search("InputTokens", "Sum"), search("OutputTokens", "Sum")],
                    width=8,
                ),
                cw.GraphWidget(title="Estimated cost (USD)", left=[search("EstimatedCost", "Sum")], width=8),
                cw.GraphWidget(
                    title="Cache hits and fallbacks",
                    left=[search("CacheHit", "Sum"), search("Fallback", "Sum")],
                    width=8,
                ),
                cw.GraphWidget(
                    title="Guardrail interventions", left=[search("GuardrailIntervention", "Sum")], width=8
                ),
                cw.GraphWidget(
                    title="p90 latency by alias, target, tenant (ms)",
                    left=[search("Latency", "p90")],
                    width=8,
                ),
            ],
        )
