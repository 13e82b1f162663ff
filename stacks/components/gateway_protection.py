"""How the model gateway's REST API is protected when deployed (profile `gateway.endpoint`).

- `public`: a REGIONAL endpoint behind an AWS WAF web ACL (GatewayWebAcl): AWS managed common and
  known-bad-inputs rule groups and a rate-based rule per client IP, logging to an encrypted log group.
- `private`: a PRIVATE endpoint associated with the consumers' execute-api interface VPC endpoints, with a
  resource policy that denies every request not coming through one of them (private_api_policy).

Both: execution logging at ERROR with data tracing off, into a log group created here before the stage
(execution_log_group), so that API Gateway does not create it itself, unencrypted and never expiring.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from aws_cdk import ArnFormat, Fn, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from genai_stack.components.python_function import log_stream_arn, profile_scoped

# The managed rules that inspect the request BODY are counted, not blocked ("Baseline rule groups", AWS
# WAF guide: https://docs.aws.amazon.com/waf/latest/developerguide/aws-managed-rule-groups-baseline.html).
# A body here is a prompt: SizeRestrictions_BODY blocks any body over 8 KB (a long prompt or
# conversation history is routinely above it), and the others block text that looks like an attack
# on a web application (<script>, ../../etc/passwd, http://169.254.169.254, ${jndi:...}), which a
# prompt about code or security legitimately contains; the gateway answers JSON only, never renders
# or fetches what a prompt says, and is not Java. Counted rules stay visible in the WAF logs and
# metrics. Bodies are bounded by the gateway (gateway.max_body_kb, 413) and API Gateway's 10 MB limit,
# checked by the request validator and the guardrail. Header, URI, query and cookie rules still block.
COUNT_ONLY_RULES: dict[str, tuple[str, ...]] = {
    "AWSManagedRulesCommonRuleSet": (
        "SizeRestrictions_BODY",
        "EC2MetaDataSSRF_BODY",
        "GenericLFI_BODY",
        "GenericRFI_BODY",
        "CrossSiteScripting_BODY",
    ),
    "AWSManagedRulesKnownBadInputsRuleSet": ("JavaDeserializationRCE_BODY", "Log4JRCE_BODY"),
}
MANAGED_RULE_GROUPS = ("AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet")
# Headers that carry a caller's key: never written to the WAF logs (AWS WAF guide, "Log fields" /
# RedactedFields: https://docs.aws.amazon.com/waf/latest/APIReference/API_LoggingConfiguration.html).
REDACTED_HEADERS = ("authorization", "x-api-key")


@dataclass(frozen=True)
class GatewayProtection:
    """`public` (WAF, `waf_rate_limit` requests per client IP per 5 minutes) or `private` (reachable
    only through `vpc_endpoint_ids`)."""

    endpoint: Literal["public", "private"] = "public"
    vpc_endpoint_ids: Sequence[str] = ()
    waf_rate_limit: int = 3000

    def __post_init__(self) -> None:
        if self.endpoint == "private" and not self.vpc_endpoint_ids:
            raise ValueError("a private gateway needs at least one execute-api VPC endpoint id")

    @property
    def private(self) -> bool:
        return self.endpoint == "private"

    def endpoint_configuration(self, scope: Construct) -> apigw.EndpointConfiguration:
        """PRIVATE associated with the VPC endpoints, or REGIONAL. The association makes API Gateway
        create the Route 53 alias `{rest-api-id}-{vpce-id}.execute-api.{region}.amazonaws.com`, which
        callers in the VPC (or on premises through it) can use with or without the endpoint's private
        DNS (API Gateway guide, "Invoke a private API", Route 53 alias:
        https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-private-api-test-invoke-url.html)."""
        if not self.private:
            return apigw.EndpointConfiguration(types=[apigw.EndpointType.REGIONAL])
        return apigw.EndpointConfiguration(
            types=[apigw.EndpointType.PRIVATE],
            vpc_endpoints=[
                ec2.InterfaceVpcEndpoint.from_interface_vpc_endpoint_attributes(
                    scope, f"CallerEndpoint{index}", vpc_endpoint_id=vpce, port=443
                )
                for index, vpce in enumerate(self.vpc_endpoint_ids)
            ],
        )

    def resource_policy(self, *, auth: Literal["api_key", "iam"]) -> iam.PolicyDocument | None:
        return private_api_policy(self.vpc_endpoint_ids, auth=auth) if self.private else None

    def base_url(self, api: apigw.RestApi) -> str:
        """The OpenAI base_url a client can call: the stage URL for a public API; for a private one the
        Route 53 alias of the first associated VPC endpoint (the stage URL `{id}.execute-api...` resolves
        only inside a VPC whose endpoint has private DNS on)."""
        if not self.private:
            return f"{api.url}v1"
        stack = Stack.of(api)
        return Fn.join(
            "",
            [
                "https://",
                api.rest_api_id,
                f"-{self.vpc_endpoint_ids[0]}.execute-api.{stack.region}.{stack.url_suffix}/",
                api.deployment_stage.stage_name,  # a Ref: the URL waits for the stage
                "/v1",
            ],
        )


PUBLIC = GatewayProtection()  # the construct's default: WAF in front of a regional API


def private_api_policy(
    vpc_endpoint_ids: Sequence[str], *, auth: Literal["api_key", "iam"]
) -> iam.PolicyDocument:
    """The resource policy of a private API: deny every caller whose request does not come through one of
    `vpc_endpoint_ids` (aws:SourceVpce), allow execute-api:Invoke through them. The shape of AWS's own
    example ("Create a resource policy for a private API", API Gateway guide:
    https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-private-api-create.html#apigateway-private-api-set-up-resource-policy);
    without a resource policy a private API answers nobody.

    With `auth: api_key` the callers are anonymous to IAM, so the allow names every principal (the key
    and usage plan are checked after it); with `auth: iam` it names this account, so that only this
    account's principals whose identity policies allow execute-api:Invoke get through, never another
    account's (API Gateway guide, "How API Gateway resource policies affect authorization workflow")."""
    ids = list(vpc_endpoint_ids)
    every_method = ["execute-api:/*"]  # this API's methods: API Gateway expands the prefix itself
    return iam.PolicyDocument(
        statements=[
            iam.PolicyStatement(
                sid="DenyAnyPathButTheVpcEndpoints",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["execute-api:Invoke"],
                resources=every_method,
                conditions={"StringNotEquals": {"aws:SourceVpce": ids}},
            ),
            iam.PolicyStatement(
                sid="InvokeThroughTheVpcEndpoints",
                effect=iam.Effect.ALLOW,
                principals=[iam.AnyPrincipal() if auth == "api_key" else iam.AccountRootPrincipal()],
                actions=["execute-api:Invoke"],
                resources=every_method,
                conditions={"StringEquals": {"aws:SourceVpce": ids}},
            ),
        ]
    )


def execution_log_group(
    scope: Construct,
    construct_id: str,
    *,
    api: apigw.RestApi,
    encryption_key: kms.IKey,
    days: int,
) -> logs.LogGroup:
    """The stage's execution log group, created before the stage (which depends on it).

    API Gateway writes execution logs to `API-Gateway-Execution-Logs_{rest-api-id}/{stage_name}` and
    creates that group itself when it is missing (API Gateway guide, "Set up CloudWatch logging for REST
    APIs": https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-logging.html), unencrypted
    and never expiring. Created here like every other log group of the house (encrypted_log_group): the
    platform key (its policy lets CloudWatch Logs use it for this account's log groups), the profile's
    retention, retained on delete."""
    stage = api.deployment_stage
    # The stage's name as written in the template (a literal): `stage.stage_name` is a Ref to the stage,
    # which would make the group and the stage depend on each other.
    stage_name = stage.node.default_child.stage_name
    log_group = logs.LogGroup(
        scope,
        construct_id,
        log_group_name=Fn.join("", ["API-Gateway-Execution-Logs_", api.rest_api_id, f"/{stage_name}"]),
        encryption_key=encryption_key,
        removal_policy=RemovalPolicy.RETAIN,
    )
    log_group.node.default_child.retention_in_days = days
    stage.node.add_dependency(log_group)
    return log_group


class GatewayWebAcl(Construct):
    """A REGIONAL AWS WAF web ACL on the gateway's stage.

    Rules, in order: a rate-based rule (block a client IP above `rate_limit` requests in 5 minutes),
    AWSManagedRulesCommonRuleSet (its body rules counted, not blocked: COUNT_ONLY_RULES) and
    AWSManagedRulesKnownBadInputsRuleSet. Everything else is allowed on to API Gateway, which then
    checks keys, usage plans and the body.

    Logs go to `aws-waf-logs-<profile>-gateway` (the prefix AWS WAF requires of a CloudWatch Logs
    destination; AWS WAF guide, "Sending web ACL traffic logs to an Amazon CloudWatch Logs log group":
    https://docs.aws.amazon.com/waf/latest/developerguide/logging-cw-logs.html), encrypted with the
    platform key (CloudWatch Logs itself uses the key, under the key policy's logs statement; the log
    delivery service only calls PutLogEvents), with the profile's retention, retained on delete; the
    key headers are redacted.

    Log delivery needs a CloudWatch Logs resource policy that lets delivery.logs.amazonaws.com create
    streams and put events in the group; AWS adds one at PutLoggingConfiguration only when the deploying
    role may call logs:PutResourcePolicy (CloudWatch Logs guide, "Logs sent to CloudWatch Logs":
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/AWS-logs-infrastructure-CWL.html). The
    template carries that policy itself (the documented statement, limited to this group's streams,
    this account and its log sources), and the logging configuration waits for it.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: apigw.Stage,
        encryption_key: kms.IKey,
        log_retention_days: int,
        rate_limit: int,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        metric_prefix = profile_scoped(self, "gateway").replace("-", "_")

        def visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
            return wafv2.CfnWebACL.VisibilityConfigProperty(
                cloud_watch_metrics_enabled=True,
                metric_name=f"{metric_prefix}_{name}",
                sampled_requests_enabled=True,
            )

        rules = [
            wafv2.CfnWebACL.RuleProperty(
                name="RatePerClientIp",
                priority=0,
                action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                        aggregate_key_type="IP", limit=rate_limit, evaluation_window_sec=300
                    )
                ),
                visibility_config=visibility("rate"),
            )
        ]
        for priority, group in enumerate(MANAGED_RULE_GROUPS, start=1):
            overrides = [
                wafv2.CfnWebACL.RuleActionOverrideProperty(
                    name=rule, action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={})
                )
                for rule in COUNT_ONLY_RULES.get(group, ())
            ] or None
            rules.append(
                wafv2.CfnWebACL.RuleProperty(
                    name=group,
                    priority=priority,
                    override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                            vendor_name="AWS", name=group, rule_action_overrides=overrides
                        )
                    ),
                    visibility_config=visibility(group),
                )
            )
        self.web_acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            scope="REGIONAL",  # API Gateway takes regional web ACLs only
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            description="genai-stack gateway: AWS managed common and known-bad-inputs rules, rate per IP",
            rules=rules,
            visibility_config=visibility("webacl"),
        )
        self.association = wafv2.CfnWebACLAssociation(
            self, "Association", resource_arn=stage.stage_arn, web_acl_arn=self.web_acl.attr_arn
        )

        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"aws-waf-logs-{profile_scoped(self, 'gateway')}",
            encryption_key=encryption_key,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.log_group.node.default_child.retention_in_days = log_retention_days
        self.log_group.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AWSLogDeliveryWrite",
                principals=[iam.ServicePrincipal("delivery.logs.amazonaws.com")],
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_stream_arn(self.log_group)],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": stack.format_arn(service="logs", resource="*")},
                },
            )
        )
        # The destination is the group's ARN without GetAtt's trailing ':*' (the ARN WAF's logging API
        # documents: arn:aws:logs:Region:account-id:log-group:aws-waf-logs-...).
        destination = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=self.log_group.log_group_name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        self.logging = wafv2.CfnLoggingConfiguration(
            self,
            "Logging",
            resource_arn=self.web_acl.attr_arn,
            log_destination_configs=[destination],
            redacted_fields=[
                wafv2.CfnLoggingConfiguration.FieldToMatchProperty(single_header={"Name": header})
                for header in REDACTED_HEADERS
            ],
        )
        self.logging.node.add_dependency(self.log_group)
