"""SpendCap: an AWS Budgets action that stops model invocation when a budget's actual spend reaches a
share of its limit (the profile's `budget.stop_invocations`).

What AWS does with it (AWS::Budgets::BudgetsAction, CloudFormation template reference; "Configuring
a budget action", AWS Cost Management user guide):
- ActionType APPLY_IAM_POLICY: when the budget's ACTUAL spend passes ActionThreshold (PERCENTAGE of
  the limit), Budgets attaches `PolicyArn` to the `Roles` of the definition (role names), acting as
  ExecutionRoleArn, a role it assumes (trust: budgets.amazonaws.com). ApprovalModel AUTOMATIC runs
  it at once; MANUAL waits for an approval in the console. The subscribers hear about it.
- The execution role needs iam:AttachRolePolicy and iam:DetachRolePolicy (the user guide's example
  policy "Allow AWS Budgets to apply IAM policies and SCPs"); here only on the listed roles and only
  for the deny policy (iam:PolicyARN is a condition key of both actions: Service Authorization
  Reference, IAM).
- The deny policy names the actions that spend on models: Converse and ConverseStream are authorized
  as bedrock:InvokeModel and bedrock:InvokeModelWithResponseStream (Bedrock API reference, Converse),
  and SageMaker endpoints as sagemaker:InvokeEndpoint, InvokeEndpointWithResponseStream and
  InvokeEndpointAsync. An explicit deny wins over every allow ("Policy evaluation logic", IAM user
  guide), so the roles keep every other permission (logs, metrics, tables) and answer with errors
  the gateway turns into 5xx responses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from constructs import Construct

INVOCATION_ACTIONS = (
    "bedrock:InvokeModel",
    "bedrock:InvokeModelWithResponseStream",
    "sagemaker:InvokeEndpoint",
    "sagemaker:InvokeEndpointWithResponseStream",
    "sagemaker:InvokeEndpointAsync",
)
MAX_SUBSCRIBERS = 11  # BudgetsAction Subscribers: 1 to 11 (CloudFormation template reference)


class SpendCap(Construct):
    """The deny policy, the role Budgets acts as, and the action on `budget_name`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        budget_name: str,
        roles: Sequence[iam.IRole],
        at_percent: float,
        approval: Literal["automatic", "manual"],
        topic: sns.ITopic,
        emails: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        if not roles:
            raise ValueError("SpendCap needs at least one role that invokes models")
        self.deny_policy = iam.ManagedPolicy(
            self,
            "DenyModelInvocation",
            description="Attached by the AWS Budgets action when the profile's spend cap is reached: "
            "denies model invocation (detach it, or reverse the action, to resume)",
            statements=[
                iam.PolicyStatement(
                    sid="SpendCapReached",
                    effect=iam.Effect.DENY,
                    actions=list(INVOCATION_ACTIONS),
                    # A Deny: every model and endpoint, whatever ARN a role may later be allowed.
                    resources=["*"],
                )
            ],
        )
        self.execution_role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("budgets.amazonaws.com"),
            description="Assumed by AWS Budgets to attach and detach the spend cap's deny policy",
        )
        self.execution_role.add_to_policy(
            iam.PolicyStatement(
                actions=["iam:AttachRolePolicy", "iam:DetachRolePolicy"],
                resources=[role.role_arn for role in roles],
                conditions={"ArnEquals": {"iam:PolicyARN": self.deny_policy.managed_policy_arn}},
            )
        )
        subscribers = [budgets.CfnBudgetsAction.SubscriberProperty(type="SNS", address=topic.topic_arn)]
        subscribers += [
            budgets.CfnBudgetsAction.SubscriberProperty(type="EMAIL", address=email)
            for email in list(emails)[: MAX_SUBSCRIBERS - 1]
        ]
        self.action = budgets.CfnBudgetsAction(
            self,
            "Action",
            budget_name=budget_name,
            action_type="APPLY_IAM_POLICY",
            notification_type="ACTUAL",
            action_threshold=budgets.CfnBudgetsAction.ActionThresholdProperty(
                type="PERCENTAGE", value=at_percent
            ),
            approval_model=approval.upper(),
            definition=budgets.CfnBudgetsAction.DefinitionProperty(
                iam_action_definition=budgets.CfnBudgetsAction.IamActionDefinitionProperty(
                    policy_arn=self.deny_policy.managed_policy_arn,
                    roles=[role.role_name for role in roles],
                )
            ),
            execution_role_arn=self.execution_role.role_arn,
            subscribers=subscribers,
        )
        # Budgets attaches the policy as the role: it must exist (with its permissions) first.
        self.action.node.add_dependency(self.execution_role)
