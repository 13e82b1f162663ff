"""The customer assistant's Lex V2 bot role (stacks/components/assistant_bot.py): Lex writes the text
conversation logs of the live alias to its log group (logs:CreateLogStream and logs:PutLogEvents on the
group's streams: "IAM policies for conversation logs", Lex V2 developer guide,
https://docs.aws.amazon.com/lexv2/latest/dg/conversation-logs-policies.html; CloudWatch Logs'
log-stream ARN arn:${Partition}:logs:${Region}:${Account}:log-group:${LogGroupName}:log-stream:${LogStreamName}),
and nothing else: no other log group, no model."""

from __future__ import annotations

from tests.access.deployment import Deployment, Role
from tests.access.rows import Call
from tests.access.rows.service_resources import resources

WHY = "Lex writes the live alias's text conversation log"


def rows(role: Role, deployment: Deployment) -> list[Call] | None:
    bots = [
        r.properties for r in resources(deployment, "AWS::Lex::Bot") if r.properties["RoleArn"] == role.arn
    ]
    if not bots:
        return None
    result: list[Call] = []
    for alias in resources(deployment, "AWS::Lex::BotAlias"):
        for setting in alias.properties["ConversationLogSettings"]["TextLogSettings"]:
            group = setting["Destination"]["CloudWatch"]["CloudWatchLogGroupArn"].removesuffix(":*")
            stream = f"{group}:log-stream:{setting['Destination']['CloudWatch']['LogPrefix']}session-1"
            result += [
                Call("logs:CreateLogStream", stream, WHY),
                Call("logs:PutLogEvents", stream, WHY),
                Call("logs:DeleteLogGroup", group, "never removes its log", expect="deny"),
            ]
    other = deployment.arn("logs", "log-group:/aws/lambda/someone-else:log-stream:x")
    result += [
        Call("logs:PutLogEvents", other, "no other log group", expect="deny"),
        Call(
            "bedrock:InvokeModel",
            deployment.arn("bedrock", "foundation-model/amazon.nova-lite-v1:0", account=""),
            "no model: the bot's answers come from the fulfilment function",
            expect="deny",
        ),
    ]
    return result


BUILDERS = (rows,)
