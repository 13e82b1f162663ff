"""Roles that AWS services assume to deliver logs into our log groups.

- Bedrock model invocation logging: Bedrock writes to the log stream `aws/bedrock/modelinvocations`
  of the configured log group with the role the logging configuration names (logs:CreateLogStream,
  logs:PutLogEvents on arn:aws:logs:REGION:ACCOUNT:log-group:NAME:log-stream:aws/bedrock/modelinvocations).
  Bedrock user guide, "Monitor model invocation using CloudWatch Logs and Amazon S3", CloudWatch
  Logs destination: https://docs.aws.amazon.com/bedrock/latest/userguide/model-invocation-logging.html
- VPC flow logs to CloudWatch Logs: the flow logs service creates one stream per network interface
  (`eni-...-all`) and puts the records with the flow log's role. VPC user guide, "IAM role for
  publishing flow logs to CloudWatch Logs" and "Publish flow logs to CloudWatch Logs":
  https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-iam-role.html,
  https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-cwl.html
- API Gateway's account-level CloudWatch role (AWS::ApiGateway::Account CloudWatchRoleArn): API Gateway
  writes access logs and execution logs with it; AWS's page asks for the managed policy
  AmazonAPIGatewayPushToCloudWatchLogs, whose statements are on "*" (one role per account and Region,
  for every API, so no deny rows). API Gateway developer guide, "Set up CloudWatch logging for REST
  APIs in API Gateway", permissions for CloudWatch logging:
  https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-logging.html
"""

from __future__ import annotations

from tests.access.deployment import Deployment, Role
from tests.access.rows import Call
from tests.access.rows.service_resources import (
    another_log_group_row,
    log_stream_arn,
    ref_by_path,
    resources,
    write_log_rows,
)

BEDROCK_STREAM = "aws/bedrock/modelinvocations"
INVOCATION_WHY = "Bedrock delivers invocation logs with the role (model-invocation-logging)"
FLOW_LOG_WHY = "VPC flow logs publish each ENI's records with the role (flow-logs-iam-role, flow-logs-cwl)"
FLOW_LOG_STREAM = "eni-0123456789abcdef0-all"
API_GATEWAY_WHY = "API Gateway writes the API's logs with the account's CloudWatch role (set-up-logging)"


def invocation_logging(role: Role, deployment: Deployment) -> list[Call] | None:
    configurations = [
        r.properties
        for r in resources(deployment, "Custom::BedrockInvocationLogging")
        if r.properties.get("CloudWatchRoleArn") == role.arn
    ]
    if not configurations:
        return None
    result: list[Call] = []
    for configuration in configurations:
        group = configuration["LogGroupName"]
        result += write_log_rows(deployment, group, BEDROCK_STREAM, INVOCATION_WHY)
        result.append(
            Call(
                "logs:PutLogEvents",
                log_stream_arn(deployment, group, "another-stream"),
                "only Bedrock's stream of the group",
                expect="deny",
            )
        )
    result.append(another_log_group_row(deployment, BEDROCK_STREAM, "only the invocation log group"))
    return result


def flow_logs(role: Role, deployment: Deployment) -> list[Call] | None:
    flow_logs_of_role = [
        r.properties
        for r in resources(deployment, "AWS::EC2::FlowLog")
        if r.properties.get("DeliverLogsPermissionArn") == role.arn
    ]
    if not flow_logs_of_role:
        return None
    result: list[Call] = []
    for flow_log in flow_logs_of_role:
        assert flow_log["LogDestinationType"] == "cloud-watch-logs", flow_log
        result += write_log_rows(deployment, flow_log["LogGroupName"], FLOW_LOG_STREAM, FLOW_LOG_WHY)
    result.append(another_log_group_row(deployment, FLOW_LOG_STREAM, "only the flow log's log group"))
    return result


def api_gateway_account(role: Role, deployment: Deployment) -> list[Call] | None:
    if not any(
        r.properties.get("CloudWatchRoleArn") == role.arn
        for r in resources(deployment, "AWS::ApiGateway::Account")
    ):
        return None
    access_logs = ref_by_path(deployment, "AWS::Logs::LogGroup", "/Gateway/AccessLogs/Resource")
    # Execution logs go to API-Gateway-Execution-Logs_{rest-api-id}/{stage}, a group API Gateway
    # creates itself (set-up-logging).
    execution_logs = "API-Gateway-Execution-Logs_a1b2c3d4e5/prod"
    return [
        *write_log_rows(deployment, access_logs, "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6", API_GATEWAY_WHY),
        Call(
            "logs:CreateLogGroup",
            deployment.arn("logs", f"log-group:{execution_logs}"),
            API_GATEWAY_WHY + "; it creates the execution log group",
        ),
        *write_log_rows(deployment, execution_logs, "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6", API_GATEWAY_WHY),
        Call("logs:DescribeLogGroups", "*", API_GATEWAY_WHY + "; the action only works on '*'"),
    ]


BUILDERS = (invocation_logging, flow_logs, api_gateway_account)
