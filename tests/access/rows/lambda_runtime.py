"""What the Lambda service does with every function's execution role, whatever the code does.

- Logs: Lambda writes the function's output to its log group with the execution role
  (logs:CreateLogStream, logs:PutLogEvents on the log stream). Lambda developer guide, "Defining
  Lambda function permissions with an execution role" and "Sending Lambda function logs to
  CloudWatch Logs": https://docs.aws.amazon.com/lambda/latest/dg/lambda-intro-execution-role.html,
  https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs.html
  Log stream ARN format (Service Authorization Reference, CloudWatch Logs, resource type
  log-stream): arn:${Partition}:logs:${Region}:${Account}:log-group:${LogGroupName}:log-stream:${LogStreamName}
  https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatchlogs.html
  Lambda's stream names look like `2026/12/01/[$LATEST]abcd...`.
- VPC: "Lambda uses your function's permissions to create and manage network interfaces":
  ec2:CreateNetworkInterface, ec2:DescribeNetworkInterfaces (only works on "*"),
  ec2:DeleteNetworkInterface, ec2:AssignPrivateIpAddresses, ec2:UnassignPrivateIpAddresses. Lambda
  developer guide, "Giving Lambda functions access to resources in an Amazon VPC":
  https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc.html
  (also the AWSLambdaVPCAccessExecutionRole managed policy:
  https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AWSLambdaVPCAccessExecutionRole.html)
  EC2 resource ARNs: arn:${Partition}:ec2:${Region}:${Account}:network-interface/${Id}, subnet/${Id},
  security-group/${Id} (Service Authorization Reference, Amazon EC2).
- Failure destinations of asynchronous invocations: Lambda sends the record with the execution
  role (sqs:SendMessage for an SQS destination). Lambda developer guide, "Capturing records of
  Lambda asynchronous invocations": https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html
  An SQS queue encrypted with a customer managed key needs kms:GenerateDataKey and kms:Decrypt for
  the sender (SQS developer guide, "Key management":
  https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-key-management.html).
- SQS event sources: Lambda reads the queue with the execution role (sqs:ReceiveMessage,
  sqs:DeleteMessage, sqs:GetQueueAttributes). Lambda developer guide, "Using Lambda with Amazon SQS":
  https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html
"""

from __future__ import annotations

from tests.access.deployment import Deployment, Function
from tests.access.rows import Call

STREAM = "2026/12/01/[$LATEST]abcd"
LOGS_WHY = "Lambda writes the function's logs with its execution role (lambda-intro-execution-role, monitoring-cloudwatchlogs)"
VPC_WHY = "Lambda creates and manages the function's ENIs with its execution role (configuration-vpc)"


def stream_arn(deployment: Deployment, log_group: str, stream: str = STREAM) -> str:
    return deployment.arn("logs", f"log-group:{log_group}:log-stream:{stream}")


def rows(function: Function, deployment: Deployment, *, own_code: bool) -> list[Call]:
    result = [
        Call("logs:CreateLogStream", stream_arn(deployment, function.log_group), LOGS_WHY),
        Call("logs:PutLogEvents", stream_arn(deployment, function.log_group), LOGS_WHY),
    ]
    if own_code:
        # Our functions' roles are scoped to their own log group (CDK's provider framework uses
        # AWSLambdaBasicExecutionRole, which is not).
        result.append(
            Call(
                "logs:PutLogEvents",
                stream_arn(deployment, "/aws/lambda/another-function"),
                "a function writes only its own log group",
                expect="deny",
            )
        )
    vpc = function.properties.get("VpcConfig")
    if vpc and vpc.get("SubnetIds"):
        eni = deployment.arn("ec2", "network-interface/eni-0123456789abcdef0")
        result.append(
            Call("ec2:CreateNetworkInterface", deployment.arn("ec2", "network-interface/*"), VPC_WHY)
        )
        result += [
            Call("ec2:CreateNetworkInterface", deployment.arn("ec2", f"subnet/{subnet}"), VPC_WHY)
            for subnet in vpc["SubnetIds"]
        ]
        result += [
            Call("ec2:CreateNetworkInterface", deployment.arn("ec2", f"security-group/{group}"), VPC_WHY)
            for group in vpc.get("SecurityGroupIds", [])
        ]
        result += [
            Call("ec2:DescribeNetworkInterfaces", "*", VPC_WHY + "; this action only works on Resource '*'"),
            Call("ec2:DeleteNetworkInterface", eni, VPC_WHY),
            Call("ec2:AssignPrivateIpAddresses", eni, VPC_WHY),
            Call("ec2:UnassignPrivateIpAddresses", eni, VPC_WHY),
        ]
    for destination in _failure_destinations(function, deployment):
        if destination.split(":")[2] == "sqs":
            result += queue_rows(
                deployment,
                destination,
                ["sqs:SendMessage"],
                "Lambda sends failed asynchronous events (invocation-async-retain-records)",
            )
    for queue in _sqs_event_sources(function, deployment):
        result += queue_rows(
            deployment,
            queue,
            ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
            "Lambda polls the event source queue with the execution role (with-sqs)",
        )
    return result


def queue_rows(
    deployment: Deployment, queue: str, actions: list[str], why: str, api: str | None = None
) -> list[Call]:
    """`actions` on an SQS queue, plus the key a KMS-encrypted queue needs (sqs-key-management:
    senders need kms:GenerateDataKey and kms:Decrypt, receivers kms:Decrypt)."""
    result = [Call(action, queue, why, api=api) for action in actions]
    key = _queue_key(queue, deployment)
    if key:
        via = {"kms:ViaService": f"sqs.{deployment.region}.amazonaws.com"}
        kms = ["kms:GenerateDataKey", "kms:Decrypt"] if "sqs:SendMessage" in actions else ["kms:Decrypt"]
        result += [
            Call(action, key, f"{why}; the queue is KMS-encrypted (sqs-key-management)", context=via, api=api)
            for action in kms
        ]
    return result


def _sqs_event_sources(function: Function, deployment: Deployment) -> list[str]:
    sources = []
    for stack, template in deployment.templates.items():
        for resource in template["Resources"].values():
            if resource["Type"] != "AWS::Lambda::EventSourceMapping":
                continue
            props = deployment.resolver.resolve(stack, resource["Properties"])
            if (
                props["FunctionName"] in (function.name, function.arn)
                and props["EventSourceArn"].split(":")[2] == "sqs"
            ):
                sources.append(props["EventSourceArn"])
    return sources


def _failure_destinations(function: Function, deployment: Deployment) -> list[str]:
    destinations = []
    dead_letter = (function.properties.get("DeadLetterConfig") or {}).get("TargetArn")
    if dead_letter:
        destinations.append(dead_letter)
    template = deployment.templates[function.stack]
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Lambda::EventInvokeConfig":
            continue
        props = deployment.resolver.resolve(function.stack, resource["Properties"])
        if props["FunctionName"] not in (function.name, function.arn):
            continue
        on_failure = ((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        if on_failure:
            destinations.append(on_failure)
        del logical_id
    return destinations


def _queue_key(queue_arn: str, deployment: Deployment) -> str | None:
    for stack, template in deployment.templates.items():
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] != "AWS::SQS::Queue":
                continue
            if deployment.resolver.get_att(stack, logical_id, "Arn") != queue_arn:
                continue
            key = (resource.get("Properties") or {}).get("KmsMasterKeyId")
            if key is None:
                return None
            key = deployment.resolver.resolve(stack, key)
            if key.startswith("alias/aws/"):
                return None  # an AWS managed key: its key policy allows every caller in the account
            if not key.startswith("arn:"):
                key = deployment.arn("kms", f"key/{key}")
            return key
    return None
