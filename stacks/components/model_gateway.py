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
from aws_cdk import aws_s3 as s3
from constructs import Construct

from genai_stack import compliance
from genai_stack.components.gateway_protection import (
    PUBLIC,
    GatewayProtection,
    GatewayWebAcl,
    execution_log_group,
)
from genai_stack.components.monitoring import MonitoringHub
from genai_stack.components.python_function import PythonFunction, encrypted_log_group, profile_scoped
from genai_stack.components.tag_conditions import key_through_s3, through
from genai_stack.config import PROFILE_TAG, GatewayFeedback, gateway_function_timeout_seconds
from genai_stack.lambdas.gateway.errors import GATEWAY_RESPONSES
from genai_stack.lambdas.gateway.images import IMAGE_PREFIX
from genai_stack.lambdas.gateway_authorizer.keys import AUTHORIZER_CACHE_SECONDS, TOKEN_PATTERN

PATHS = (
    ("POST", ("chat", "completions")),
    ("POST", ("embeddings",)),
    ("GET", ("models",)),
    ("GET", ("models", "{id}")),  # one alias (OpenAI clients retrieve a model by id)
)
IMAGES_ROUTE = ("POST", ("images", "generations"))  # only when the profile has image aliases
FEEDBACK_ROUTE = ("POST", ("feedback",))  # only with gateway.feedback
# The semantic cache's alarm: this share of an alias's lookups failing (ModelGateway._semantic).
SEMANTIC_ERROR_PERCENT = 50.0
SATISFACTION_MARGIN = 1e-6  # the satisfaction alarm's threshold: just above 0 (ModelGateway._satisfaction)
STREAMED_ROUTE = ("chat", "completions")  # lambdas/gateway/runtime.py STREAMED_PATHS
EMF_NAMESPACE = "GenAiStack/Gateway"  # lambdas/gateway/metrics.py


ENDPOINT_IMAGES = compliance.Acknowledgement(
    finding="AwsSolutions-IAM5",
    reason=(
        "An image alias on an asynchronous endpoint writes each request under a new random name below "
        "the endpoint's async/<endpoint>/input/gateway/ prefix and reads the answer SageMaker writes "
        "under its output/ or failure/ prefix with a name SageMaker makes per request."
    ),
)
GENERATED_IMAGES = compliance.Acknowledgement(
    finding="AwsSolutions-IAM5",
    reason=(
        "The gateway writes each generated image under a new random name below gateway-images/ in the "
        "data bucket and signs its GET URL (lambdas/gateway/images.py); the names are made per request, "
        "so the role is scoped to that prefix."
    ),
)


def openai_error_template(error_type: str, code: str) -> str:
    """A gateway response body in the OpenAI error format around API Gateway's quoted message."""
    return (
        '{"error": {"message": $context.error.messageString, '
        f'"type": "{error_type}", "param": null, "code": "{code}"}}}}'
    )


def usage_plan_name(scope: Construct, tenant: str) -> str:
    """The usage plan of a tenant, by name (`genai-stack keys` finds it by this name)."""
    return profile_scoped(scope, f"gateway-{tenant}")


DIMENSIONS = "alias,service,target,tenant"  # the dimension set of the per-request EMF document
FEEDBACK_DIMENSIONS = "alias,prompt_version,service,target,tenant"  # the per-rating document


@dataclass(frozen=True)
class GatewayNetwork:
    """Where the function runs in a VPC: the hosts' VPC, in the group their load balancers admit (with
    self-hosted targets), or a VPC of its own (gateway.network)."""

    vpc: ec2.IVpc
    subnets: ec2.SubnetSelection
    security_group: ec2.ISecurityGroup
    # The AWS Private CA whose certificates the hosts' load balancers serve (hosting.tls.private_ca_arn).
    trusted_ca_arn: str | None = None


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

    Auth: `api_key` (bearer keys checked by a Lambda authorizer against `key_table`, each key in its
    tenant's usage plan: rate, burst, monthly quota; keys are minted by `genai-stack keys`) or `iam`
    (SigV4-signed callers).

    `account_logging_role`: the stage's access logging needs API Gateway's account-level CloudWatch
    Logs role (one per account and region). `create` makes a role of ours (AWS managed policy
    AmazonAPIGatewayPushToCloudWatchLogs), sets it with AWS::ApiGateway::Account, keeps both on delete
    so that other APIs of the account keep logging, and makes the stage wait for it; `existing` relies
    on the role already set (checked by `genai-stack doctor`).

    `protection` (stacks/components/gateway_protection.py): public (default: REGIONAL behind an AWS WAF
    web ACL) or private (PRIVATE, only through the given execute-api VPC endpoints). Either way the stage
    logs executions at ERROR without bodies into an encrypted group created before it.
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
        spend_table: dynamodb.ITable | None = None,
        feedback_table: dynamodb.ITable | None = None,
        semantic_cache_index: str | None = None,
        custom_serving: Sequence[str] = (),
        profile_name: str | None = None,
        key_table: dynamodb.ITable | None = None,
        knowledge_base_arns: Sequence[str] = (),
        sagemaker_endpoints: Sequence[str] = (),
        network: GatewayNetwork | None = None,
        account_logging_role: Literal["create", "existing"] = "create",
        protection: GatewayProtection = PUBLIC,
        image_bucket: s3.IBucket | None = None,
        image_endpoints: Sequence[str] = (),
        artifacts_bucket: s3.IBucket | None = None,
    ) -> None:
        """`image_bucket`: the data bucket, when the profile has image aliases: the route
        POST /v1/images/generations, and the images of url responses under IMAGE_PREFIX.
        `image_endpoints`: asynchronous endpoints of image aliases (full names), whose requests and
        answers are in `artifacts_bucket` (stacks/components/endpoint_layout.py async_prefix)."""
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.handler = PythonFunction(
            self,
            "Handler",
            package="gateway",
            description="OpenAI-compatible model gateway",
            encryption_key=encryption_key,
            log_retention_days=log_retention_days,
            environment={
                "GATEWAY_CONFIG": stack.to_json_string(dict(config)),
                # The managed Python runtime's wrapper-script hook starts the gateway's own runtime
                # loop, which can stream (lambdas/gateway/runtime.py says why; "Modifying the runtime
                # environment": https://docs.aws.amazon.com/lambda/latest/dg/runtimes-modify.html).
                "AWS_LAMBDA_EXEC_WRAPPER": "/var/task/lambdas/gateway/bootstrap",
            },
            # The request's deadline comes first (a clean 504); API Gateway's 29 s comes last.
            timeout_seconds=gateway_function_timeout_seconds(deadline_seconds),
            memory_size=1024,
            vpc=network.vpc if network else None,
            subnets=network.subnets if network else None,
            security_groups=[network.security_group] if network else (),
        )
        role = self.handler.role
        role.add_managed_policy(access_policy)
        if cache_table is not None:
            cache_table.grant(role, "dynamodb:GetItem", "dynamodb:PutItem")
        if spend_table is not None:  # the tenants' allowances: one conditional ADD, one settling ADD
            spend_table.grant(role, "dynamodb:UpdateItem")
        if feedback_table is not None:  # who got each answer, and its one rating (feedback.py)
            feedback_table.grant(role, "dynamodb:GetItem", "dynamodb:PutItem")
        if semantic_cache_index is not None:
            # The semantic cache (lambdas/gateway/semantic_cache.py): QueryVectors with a metadata filter
            # and returnMetadata needs GetVectors too (Amazon S3 API reference, QueryVectors,
            # Permissions: https://docs.aws.amazon.com/AmazonS3/latest/API/API_S3VectorBuckets_QueryVectors.html);
            # all three act on the index resource (Service Authorization Reference, Amazon S3 Vectors:
            # https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3vectors.html).
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="UseTheSemanticCache",
                    actions=["s3vectors:QueryVectors", "s3vectors:GetVectors", "s3vectors:PutVectors"],
                    resources=[semantic_cache_index],
                )
            )
            # The vector bucket's SSE-KMS key: "kms:Decrypt - Required for all vector-level operations
            # (PutVectors, GetVectors, QueryVectors, DeleteVectors, ListVectors)" (Amazon S3 user guide,
            # "Data protection and encryption in S3 Vectors":
            # https://docs.aws.amazon.com/AmazonS3/latest/userguide/s3-vectors-data-encryption.html),
            # only through S3 Vectors.
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="DecryptTheSemanticCache",
                    actions=["kms:Decrypt"],
                    resources=[encryption_key.key_arn],
                    conditions=through(self, "s3vectors"),
                )
            )
        if cache_table is not None or spend_table is not None or feedback_table is not None:
            # The tables use the platform key: exact actions, not grant_encrypt_decrypt's wildcards.
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="UseTheCacheKey",
                    actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                    resources=[encryption_key.key_arn],
                )
            )
        if custom_serving:
            if not profile_name:
                raise ValueError(
                    "custom_serving needs profile_name: the lookups are held to the profile's tag"
                )
            # Custom-model targets look their serving resource's ARN up by name (providers/bedrock.py
            # CustomModelChat): only the resources with this profile's tag, which the customization
            # pipelines put on them (aws:ResourceTag is a condition key of both reads: Service
            # Authorization Reference, Amazon Bedrock). Invoking them is in the model-access policy.
            kinds = {
                "on_demand": ("bedrock:GetCustomModelDeployment", "custom-model-deployment"),
                "provisioned": ("bedrock:GetProvisionedModelThroughput", "provisioned-model"),
            }
            for kind in custom_serving:
                action, resource = kinds[kind]
                arn = stack.format_arn(service="bedrock", resource=resource, resource_name="*")
                role.add_to_policy(
                    iam.PolicyStatement(
                        actions=[action],
                        resources=[arn],
                        conditions={"StringEquals": {f"aws:ResourceTag/{PROFILE_TAG}": profile_name}},
                    )
                )
                compliance.acknowledge(
                    role, compliance.CUSTOM_MODEL_SERVING.on(compliance.nag_resource(self, arn))
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
                    # Streamed answers call InvokeEndpointWithResponseStream, an action of its own.
                    actions=["sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointWithResponseStream"],
                    resources=[
                        stack.format_arn(service="sagemaker", resource="endpoint", resource_name=e.lower())
                        for e in sagemaker_endpoints
                    ],
                )
            )
        if network is not None and network.trusted_ca_arn:
            # The CA's certificate and chain, read once per cold start to verify the hosts' HTTPS
            # certificates (lambdas/gateway/providers/http_pool.py PrivateCaTrust): the action acts on
            # the certificate-authority resource type (Service Authorization Reference, AWS Private
            # Certificate Authority; AWS Private CA API reference, GetCertificateAuthorityCertificate).
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="ReadTrustedCertificateAuthority",
                    actions=["acm-pca:GetCertificateAuthorityCertificate"],
                    resources=[network.trusted_ca_arn],
                )
            )

        if image_bucket is not None:
            # Write the images and sign their GET URLs (a pre-signed URL acts with the signer's
            # permissions: Amazon S3 user guide, "Sharing objects with presigned URLs"), under the
            # prefix only.
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="StoreGeneratedImages",
                    actions=["s3:PutObject", "s3:GetObject"],
                    resources=[image_bucket.arn_for_objects(f"{IMAGE_PREFIX}*")],
                )
            )
            # The bucket is the foundation stack's: cdk-nag names the finding after the resolved
            # cross-stack reference, which exists only once the app has resolved it.
            compliance.acknowledge(
                role, GENERATED_IMAGES.on_resolved(image_bucket.arn_for_objects(f"{IMAGE_PREFIX}*"))
            )
            # The bucket's SSE-KMS key, through S3 only.
            role.add_to_policy(key_through_s3(self, encryption_key.key_arn, sid="EncryptGeneratedImages"))

        if image_endpoints:
            if artifacts_bucket is None:
                raise ValueError("image endpoints need the artifacts bucket, which holds their requests")
            self._image_endpoint_access(role, stack, image_endpoints, artifacts_bucket, encryption_key)

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
            # public: REGIONAL behind a WAF web ACL; private: PRIVATE through the callers' VPC endpoints
            # only (stacks/components/gateway_protection.py).
            endpoint_configuration=protection.endpoint_configuration(self),
            policy=protection.resource_policy(auth=auth),
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
            # auth api_key: the authorizer reads the OpenAI client's `Authorization: Bearer <key>` and
            # returns the usage-plan key (_key_authorizer); x-api-key is not read.
            api_key_source_type=apigw.ApiKeySourceType.AUTHORIZER
            if auth == "api_key"
            else apigw.ApiKeySourceType.HEADER,
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
                # Execution logs: errors only, never request or response bodies (prompts), into the
                # encrypted group _protect creates before the stage.
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
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
        # Chat completions stream (stream=true answers server-sent events as the model produces them):
        # API Gateway invokes the function with InvokeWithResponseStream and relays its output as it
        # comes; the function's runtime loop (lambdas/gateway/runtime.py) writes API Gateway's
        # streaming format on this route ("Stream the integration response for your proxy
        # integrations in API Gateway":
        # https://docs.aws.amazon.com/apigateway/latest/developerguide/response-transfer-mode.html).
        streamed = apigw.LambdaIntegration(
            self.handler.function, proxy=True, response_transfer_mode=apigw.ResponseTransferMode.STREAM
        )
        authorizer = (
            self._key_authorizer(
                key_table, encryption_key=encryption_key, log_retention_days=log_retention_days
            )
            if auth == "api_key"
            else None
        )
        v1 = self.api.root.add_resource("v1")
        routes = [*PATHS]
        if image_bucket is not None:
            routes.append(IMAGES_ROUTE)
        if feedback_table is not None:
            routes.append(FEEDBACK_ROUTE)
        for method, parts in routes:
            resource = v1
            for part in parts:
                resource = resource.get_resource(part) or resource.add_resource(part)
            resource.add_method(
                method,
                streamed if parts == STREAMED_ROUTE else integration,
                api_key_required=auth == "api_key",
                authorizer=authorizer,
                authorization_type=apigw.AuthorizationType.IAM
                if auth == "iam"
                else apigw.AuthorizationType.CUSTOM,
                request_validator=validator if method == "POST" else None,
                request_models={"application/json": json_object} if method == "POST" else None,
            )
        self._openai_gateway_responses()
        self._protect(protection, encryption_key=encryption_key, log_retention_days=log_retention_days)
        compliance.acknowledge(self.api, *compliance.GATEWAY_API_FINDINGS)
        if account_logging_role == "create":
            compliance.acknowledge(
                self.api.node.find_child("CloudWatchRole"), compliance.API_GATEWAY_ACCOUNT_ROLE
            )
        if auth == "api_key":
            compliance.acknowledge(self.api, *compliance.GATEWAY_API_KEY_AUTH)
        else:
            compliance.acknowledge(self.api, *compliance.GATEWAY_IAM_AUTH)
        compliance.skip_checkov(
            self.api.deployment_stage.node.default_child, *compliance.GATEWAY_STAGE_CHECKOV_SKIPS
        )

        # One usage plan per tenant (rate, burst, monthly quota). Its keys are not in the template:
        # `genai-stack keys create PROFILE TENANT` mints them (API Gateway key + the key table's
        # hash) and finds the plan by this name, so keys are issued, rotated and revoked without a
        # deploy and never pass through CloudFormation.
        for tenant in tenants:
            plan = self.api.add_usage_plan(
                f"Plan-{tenant.name}",
                name=usage_plan_name(self, tenant.name),
                description=f"genai-stack gateway tenant {tenant.name}",
                throttle=apigw.ThrottleSettings(rate_limit=tenant.rate_per_second, burst_limit=tenant.burst),
                quota=apigw.QuotaSettings(limit=tenant.monthly_quota, period=apigw.Period.MONTH)
                if tenant.monthly_quota
                else None,
            )
            plan.add_api_stage(stage=self.api.deployment_stage)
        CfnOutput(stack, "GatewayBaseUrl", value=self.base_url, description="OpenAI base_url")

    def _key_authorizer(
        self, key_table: dynamodb.ITable | None, *, encryption_key: kms.IKey, log_retention_days: int
    ) -> apigw.TokenAuthorizer:
        """`Authorization: Bearer <key>` (what every OpenAI client sends with `api_key=`) checked by a
        TOKEN authorizer against the key table (hashes only, lambdas/gateway_authorizer), which returns
        the tenant and the usage-plan key API Gateway meters (API key source AUTHORIZER). A header that
        does not match the token pattern is refused 401 by API Gateway without invoking the function;
        answers are cached per key for AUTHORIZER_CACHE_SECONDS, so a revoked key stops working within
        that time ("Use API Gateway Lambda authorizers",
        https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-use-lambda-authorizer.html;
        "Choose an API key source in API Gateway",
        https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-api-key-source.html)."""
        if key_table is None:
            raise ValueError("auth api_key needs the key table (FoundationStack gateway_keys)")
        function = PythonFunction(
            self,
            "Authorizer",
            package="gateway_authorizer",
            description="Gateway key authorizer (Bearer key -> tenant and usage-plan key)",
            encryption_key=encryption_key,
            log_retention_days=log_retention_days,
            environment={"KEY_TABLE": key_table.table_name},
            timeout_seconds=10,
            memory_size=256,
        )
        key_table.grant(function.role, "dynamodb:GetItem")
        # The table is encrypted with the platform key: a read may need kms:Decrypt through DynamoDB
        # ("Encryption at rest: how it works", customer managed key permissions,
        # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/encryption.howitworks.html).
        function.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadTheKeyTable",
                actions=["kms:Decrypt", "kms:DescribeKey"],
                resources=[encryption_key.key_arn],
                conditions=through(self, "dynamodb"),
            )
        )
        self.authorizer_function = function
        return apigw.TokenAuthorizer(
            self,
            "KeyAuthorizer",
            handler=function.function,
            identity_source=apigw.IdentitySource.header("Authorization"),
            validation_regex=TOKEN_PATTERN,
            results_cache_ttl=Duration.seconds(AUTHORIZER_CACHE_SECONDS),
        )

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
                f"OpenAiError{response_type}",
                type=apigw.ResponseType.of(response_type),
                status_code=status,
                templates={"application/json": openai_error_template(error_type, code)},
            )

    def _protect(
        self,
        protection: GatewayProtection,
        *,
        encryption_key: kms.IKey,
        log_retention_days: int,
    ) -> None:
        """The stage's execution log group (before the stage), the web ACL of a public API, and the
        base URL a client uses (for a private API: the Route 53 alias of its first VPC endpoint)."""
        self.execution_logs = execution_log_group(
            self, "ExecutionLogs", api=self.api, encryption_key=encryption_key, days=log_retention_days
        )
        self.web_acl: GatewayWebAcl | None = None
        if protection.private:
            compliance.acknowledge(self.api, compliance.GATEWAY_PRIVATE_NO_WAF)
        else:
            self.web_acl = GatewayWebAcl(
                self,
                "Waf",
                stage=self.api.deployment_stage,
                encryption_key=encryption_key,
                log_retention_days=log_retention_days,
                rate_limit=protection.waf_rate_limit,
            )
        self.base_url = protection.base_url(self.api)

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

    def _image_endpoint_access(
        self,
        role: iam.IRole,
        stack: Stack,
        endpoints: Sequence[str],
        bucket: s3.IBucket,
        encryption_key: kms.IKey,
    ) -> None:
        """InvokeEndpointAsync (an action of its own: Service Authorization Reference, Amazon SageMaker
        AI) on the endpoints; the request written under each endpoint's input prefix (the gateway's own
        sub-prefix), its answer read from the output and failure prefixes, through the bucket's key
        ("Asynchronous inference": the endpoint reads the InputLocation and writes the OutputLocation
        or FailureLocation it returns)."""
        from genai_stack.components.endpoint_layout import async_prefix

        requests = [bucket.arn_for_objects(f"{async_prefix(e)}input/gateway/*") for e in endpoints]
        answers = [
            bucket.arn_for_objects(f"{async_prefix(e)}{kind}/*")
            for e in endpoints
            for kind in ("output", "failure")
        ]
        for statement in (
            iam.PolicyStatement(
                sid="QueueImageRequests",
                actions=["sagemaker:InvokeEndpointAsync"],
                resources=[
                    stack.format_arn(service="sagemaker", resource="endpoint", resource_name=e.lower())
                    for e in endpoints
                ],
            ),
            iam.PolicyStatement(sid="WriteImageRequests", actions=["s3:PutObject"], resources=requests),
            # Whether the answer is there yet: ListObjectsV2 on its key (a GetObject of a missing key
            # is a 403 without s3:ListBucket: Amazon S3 API reference, GetObject).
            iam.PolicyStatement(
                sid="FindImageAnswers",
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={
                    "StringLike": {
                        "s3:prefix": [
                            f"{async_prefix(e)}{kind}/*" for e in endpoints for kind in ("output", "failure")
                        ]
                    }
                },
            ),
            iam.PolicyStatement(sid="ReadImageAnswers", actions=["s3:GetObject"], resources=answers),
            key_through_s3(self, encryption_key.key_arn, sid="EncryptImageRequests"),
        ):
            role.add_to_policy(statement)
        compliance.acknowledge(role, *(ENDPOINT_IMAGES.on_resolved(arn) for arn in (*requests, *answers)))

    def monitor(
        self,
        hub: MonitoringHub,
        *,
        server_error_percent: float,
        latency_p90_ms: int,
        fallback_percent: float,
        aliases_with_fallbacks: Sequence[str] = (),
        feedback: GatewayFeedback | None = None,
        chat_aliases: Sequence[str] = (),
        routes: Sequence[str] = (),
        semantic_aliases: Sequence[str] = (),
    ) -> None:
        """Alarms (5xx share, p90 latency, unhandled errors, function errors, fallback share per alias
        with more than one target, failing semantic cache lookups per alias that uses it) and a
        dashboard section.

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
            self._share_alarm(
                hub,
                f"FallbackShare-{alias}",
                part=("fellback", self.emf_metric("FellBack", period=period, alias=alias)),
                whole=("served", self.emf_metric("Requests", period=period, alias=alias)),
                label=f"{alias}: answered by a fallback %",
                threshold=fallback_percent,
                description=(
                    f"Gateway alias {alias}: more than {fallback_percent:g}% of requests answered by a "
                    "later target for 15 minutes (its first target fails, throttles or is down)"
                ),
            )

        satisfaction_widgets = self._satisfaction(hub, feedback, chat_aliases) if feedback else []
        semantic_widgets = self._semantic(hub, semantic_aliases, period) if semantic_aliases else []
        # Routes (lambdas/gateway/routing.py): the share of each route's requests its large alias answers.
        route_widgets = (
            [
                cw.GraphWidget(
                    title="Routes: share answered by the large alias",
                    left=[
                        self.emf_metric("RoutedLarge", statistic="Average", period=period, alias=name)
                        for name in routes
                    ],
                    width=8,
                )
            ]
            if routes
            else []
        )

        def search(metric: str, statistic: str) -> cw.MathExpression:
            return self._search(metric, statistic, dimensions=DIMENSIONS, period=period)

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
                *satisfaction_widgets,
                *route_widgets,
                *semantic_widgets,
            ],
        )

    def _satisfaction(
        self, hub: MonitoringHub, feedback: GatewayFeedback, aliases: Sequence[str]
    ) -> list[cw.IWidget]:
        """Per chat alias, an alarm on its users' satisfaction falling: the hour's mean score below
        `alarm_below`, counted only in an hour with at least `min_ratings` ratings (the metric's
        SampleCount). hub.alarm compares with >=, so the alarm watches the shortfall alarm_below - mean
        against a threshold just above 0 (a mean equal to alarm_below is not below it); an hour with
        too few ratings gives -1, which never reaches it.
        No rating, no data: notBreaching (nobody said anything was wrong). And the dashboard's widget:
        the mean score by alias, target, tenant and prompt version (lambdas/gateway/metrics.py)."""
        hour = Duration.hours(1)
        for alias in aliases:
            mean = self.emf_metric("Satisfaction", statistic="Average", period=hour, alias=alias)
            ratings = self.emf_metric("Satisfaction", statistic="SampleCount", period=hour, alias=alias)
            hub.alarm(
                self,
                f"Satisfaction-{alias}",
                metric=cw.MathExpression(
                    expression=f"IF(ratings >= {feedback.min_ratings}, {feedback.alarm_below:g} - mean, -1)",
                    label=f"{alias}: how far the mean user score is below {feedback.alarm_below:g}",
                    using_metrics={"mean": mean, "ratings": ratings},
                    period=hour,
                ),
                threshold=SATISFACTION_MARGIN,
                description=(
                    f"Gateway alias {alias}: users' mean score below {feedback.alarm_below:g} over an hour "
                    f"with at least {feedback.min_ratings} ratings (POST /v1/feedback; the dashboard breaks "
                    "it down by target, tenant and prompt version)"
                ),
                missing=cw.TreatMissingData.NOT_BREACHING,
            )
        return [
            cw.GraphWidget(
                title="User satisfaction by alias, target, tenant, prompt version (mean score, 0-1)",
                left=[self._search("Satisfaction", "Average", dimensions=FEEDBACK_DIMENSIONS, period=hour)],
                width=8,
            )
        ]

    def _semantic(self, hub: MonitoringHub, aliases: Sequence[str], period: Duration) -> list[cw.IWidget]:
        """Per alias that uses the semantic cache, an alarm when at least SEMANTIC_ERROR_PERCENT of its
        lookups failed for 15 minutes (the embedding model, S3 Vectors or their permissions: each failure
        is a miss, so the answers keep coming but every one is paid for); and the dashboard's hit rate,
        hit similarity and the USD the hits saved (lambdas/gateway/metrics.py record_semantic).
        No lookup, no data: notBreaching."""
        for alias in aliases:
            self._share_alarm(
                hub,
                f"SemanticCacheErrors-{alias}",
                part=("failed", self.emf_metric("SemanticCacheErrors", period=period, alias=alias)),
                whole=(
                    "lookups",
                    self.emf_metric("SemanticCacheHit", statistic="SampleCount", period=period, alias=alias),
                ),
                label=f"{alias}: semantic cache lookups failing %",
                threshold=SEMANTIC_ERROR_PERCENT,
                description=(
                    f"Gateway alias {alias}: at least {SEMANTIC_ERROR_PERCENT:g}% of semantic cache lookups "
                    "failed for 15 minutes (each is a miss: answers are served, none from the cache)"
                ),
            )

        def per_alias(metric: str, statistic: str) -> list[cw.IMetric]:
            return [self.emf_metric(metric, statistic=statistic, period=period, alias=a) for a in aliases]

        return [
            cw.GraphWidget(
                title="Semantic cache: hit rate and mean similarity of hits (0-1)",
                left=per_alias("SemanticCacheHit", "Average"),
                right=per_alias("SemanticCacheSimilarity", "Average"),
                width=8,
            ),
            cw.GraphWidget(
                title="Semantic cache: USD (left) and tokens (right) its hits saved",
                left=per_alias("SemanticCacheSavedCost", "Sum"),
                right=per_alias("SemanticCacheSavedTokens", "Sum"),
                width=8,
            ),
        ]

    def _share_alarm(
        self,
        hub: MonitoringHub,
        construct_id: str,
        *,
        part: tuple[str, cw.IMetric],
        whole: tuple[str, cw.IMetric],
        label: str,
        threshold: float,
        description: str,
    ) -> None:
        """An alarm on `part` as a percentage of `whole` (each a named metric of 5-minute periods),
        at or above `threshold` for 15 minutes; no data (nothing happened): notBreaching."""
        (part_id, part_metric), (whole_id, whole_metric) = part, whole
        hub.alarm(
            self,
            construct_id,
            metric=cw.MathExpression(
                expression=f"100 * {part_id} / MAX([{whole_id}, 1])",
                label=label,
                using_metrics={part_id: part_metric, whole_id: whole_metric},
                period=Duration.minutes(5),
            ),
            threshold=threshold,
            periods=3,
            description=description,
            missing=cw.TreatMissingData.NOT_BREACHING,
        )

    def _search(self, metric: str, statistic: str, *, dimensions: str, period: Duration) -> cw.MathExpression:
        """A SEARCH over one EMF document's series of `metric`, this profile's gateway only: its service
        name (two profiles may share the account), an exact dimension-value term (CloudWatch user
        guide, "CloudWatch search expression syntax":
        https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/search-expression-syntax.html)."""
        query = (
            "{"
            + f"{EMF_NAMESPACE},{dimensions}"
            + "}"
            + f' MetricName="{metric}" service="{self.handler.service_name}"'
        )
        return cw.MathExpression(
            expression=f"SEARCH('{query}', '{statistic}', {int(period.to_seconds())})",
            label=metric,
            period=period,
            using_metrics={},
        )
