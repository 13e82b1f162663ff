"""The AWS services that publish to the profile's KMS-encrypted alarm topic, as AWS evaluates them.

A service publishing to an encrypted topic needs sns:Publish from the topic policy and, since SNS
encrypts the message with the topic's key on the publisher's behalf, kms:GenerateDataKey* and
kms:Decrypt from the key policy (SNS developer guide, "Enable compatibility between event sources
from AWS services and encrypted topics":
https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services).
Not rows of a role: the requester is the service principal itself (CloudWatch alarms, AWS Budgets,
Cost Anomaly Detection, EventBridge rules; stacks/components/alarm_topic.py ALARM_PUBLISHERS), so only
the topic and key policies decide. Where a publisher's statements require aws:SourceAccount, the same
request from another account's budget is refused. EC2 Auto Scaling notifications come from its
service-linked role: rows/autoscaling_service_linked_role.py.
"""

from __future__ import annotations

from tests.access.deployment import Deployment
from tests.access.evaluator import Decision, Request, evaluate
from tests.access.rows import Call

OTHER_ACCOUNT = "210987654321"

# A resource of each publisher that would send (aws:SourceArn), by service principal.
SOURCES = {
    "cloudwatch.amazonaws.com": lambda d, account: d.arn("cloudwatch", "alarm:any", account=account),
    "budgets.amazonaws.com": lambda d, account: f"arn:{d.partition}:budgets::{account}:budget/any",
    "costalerts.amazonaws.com": lambda d, account: f"arn:{d.partition}:ce::{account}:anomalysubscription/any",
    "events.amazonaws.com": lambda d, account: d.arn("events", "rule/any", account=account),
}
KEY_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")


def encrypted_topics(deployment: Deployment) -> dict[str, str]:
    """Topic ARN -> the ARN of the key it is encrypted with."""
    found = {}
    for stack, template in deployment.templates.items():
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] == "AWS::SNS::Topic" and "KmsMasterKeyId" in resource["Properties"]:
                key = deployment.resolver.resolve(stack, resource["Properties"]["KmsMasterKeyId"])
                found[deployment.resolver.ref(stack, logical_id)] = key
    return found


def rows(deployment: Deployment) -> list[tuple[str, Call]]:
    from genai_stack.components.alarm_topic import ALARM_PUBLISHERS

    topics = encrypted_topics(deployment)
    assert topics, f"{deployment.profile}: no encrypted alarm topic"
    result: list[tuple[str, Call]] = []
    for topic, key in topics.items():
        for publisher in ALARM_PUBLISHERS:
            service = publisher.service
            own = {
                "aws:SourceAccount": deployment.account,
                "aws:SourceArn": SOURCES[service](deployment, deployment.account),
            }
            why = f"{service} publishes alarms/notices to the encrypted topic (alarm_topic.ALARM_PUBLISHERS)"
            result.append((service, Call("sns:Publish", topic, why, context=own)))
            result += [(service, Call(action, key, why, context=own)) for action in KEY_ACTIONS]
            other = {
                "aws:SourceAccount": OTHER_ACCOUNT,
                "aws:SourceArn": SOURCES[service](deployment, OTHER_ACCOUNT),
            }
            denied = f"{service} on behalf of another account (source conditions)"
            # Every publisher's topic statement carries a source condition.
            result.append((service, Call("sns:Publish", topic, denied, context=other, expect="deny")))
            if publisher.key_source_account:
                result += [
                    (service, Call(action, key, denied, context=other, expect="deny"))
                    for action in KEY_ACTIONS
                ]
        stranger = "s3.amazonaws.com"
        result.append(
            (stranger, Call("sns:Publish", topic, "a service that is not a publisher", expect="deny"))
        )
        result.append(
            (stranger, Call("kms:GenerateDataKey", key, "a service that is not a publisher", expect="deny"))
        )
    return result


def decide(deployment: Deployment, service: str, call: Call) -> Decision:
    """A request by the service principal: no identity policies, the resource's policy alone."""
    request = Request(service, call.action, call.resource, {"aws:SecureTransport": True, **call.context})
    return evaluate(request, [], deployment.resource_policy_for(call.resource))
