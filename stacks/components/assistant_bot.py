"""AssistantBot: an Amazon Lex V2 bot for a utility's customers, in front of the model gateway.

Intents CheckBill, ReportOutage and ConnectService take their slots and are fulfilled by one function
(lambdas/assistant_fulfilment) over a DynamoDB stand-in of the utility's systems; AMAZON.FallbackIntent
sends what the customer typed to the gateway, grounded on a knowledge base, and replies with the answer
and its sources. The utterances, prompts and district values per locale are data
(stacks/data/assistant_bot.json); the intent and slot names are the contract with the function.

What AWS checks, and where it is written:
- the bot's role is assumed by Lex V2 (`lexv2.amazonaws.com`) and writes the text conversation logs to
  its log group ("IAM policies for conversation logs", Lex V2 developer guide:
  https://docs.aws.amazon.com/lexv2/latest/dg/conversation-logs-policies.html);
- one Lambda function per bot alias and locale, attached in the alias's locale settings with code hook
  interface version 1.0 ("Attaching a Lambda function to a bot alias":
  https://docs.aws.amazon.com/lexv2/latest/dg/lambda-attach.html), and a resource policy that lets
  `lexv2.amazonaws.com` invoke it for this bot's aliases only (the live alias and the test alias
  TSTALIASID the console uses);
- the function calls the gateway with SigV4, so its role may `execute-api:Invoke` exactly
  POST /v1/chat/completions of the gateway's stage ("Control access to a REST API with IAM
  permissions": https://docs.aws.amazon.com/apigateway/latest/developerguide/permissions.html);
- account numbers and phone numbers are obfuscated in the conversation logs (slot obfuscation,
  "Slot obfuscation": https://docs.aws.amazon.com/lexv2/latest/dg/monitoring-obfuscate.html).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lex as lex
from constructs import Construct

from genai_stack import PACKAGE_DIR
from genai_stack.components.monitoring import MonitoringHub
from genai_stack.components.python_function import PythonFunction, encrypted_log_group
from genai_stack.components.versioning import config_digest

# Intent -> its slots in the order they are asked: (name, slot type, obfuscated in the logs).
INTENT_SLOTS: dict[str, tuple[tuple[str, str, bool], ...]] = {
    "CheckBill": (("AccountNumber", "AMAZON.AlphaNumeric", True),),
    "ReportOutage": (("District", "District", False), ("ContactNumber", "AMAZON.PhoneNumber", True)),
    "ConnectService": (
        ("PremisesNumber", "AMAZON.AlphaNumeric", False),
        ("MoveInDate", "AMAZON.Date", False),
    ),
}
TEST_ALIAS_ID = "TSTALIASID"  # the draft version's test alias every bot has
CODE_HOOK_VERSION = "1.0"
CONFIDENCE_THRESHOLD = 0.40


@cache
def bot_texts() -> dict[str, Any]:
    return json.loads((PACKAGE_DIR / "data" / "assistant_bot.json").read_text(encoding="utf-8"))["locales"]


def _message(text: str) -> lex.CfnBot.MessageGroupProperty:
    return lex.CfnBot.MessageGroupProperty(
        message=lex.CfnBot.MessageProperty(plain_text_message=lex.CfnBot.PlainTextMessageProperty(value=text))
    )


def _slot(name: str, slot_type: str, obfuscated: bool, prompt: str) -> lex.CfnBot.SlotProperty:
    return lex.CfnBot.SlotProperty(
        name=name,
        slot_type_name=slot_type,
        value_elicitation_setting=lex.CfnBot.SlotValueElicitationSettingProperty(
            slot_constraint="Required",
            prompt_specification=lex.CfnBot.PromptSpecificationProperty(
                message_groups_list=[_message(prompt)], max_retries=2, allow_interrupt=True
            ),
        ),
        obfuscation_setting=lex.CfnBot.ObfuscationSettingProperty(
            obfuscation_setting_type="DefaultObfuscation"
        )
        if obfuscated
        else None,
    )


def bot_locale(locale: str) -> lex.CfnBot.BotLocaleProperty:
    """One locale: the three intents with their slots, the fallback, the District slot type."""
    texts = bot_texts()[locale]
    hook = lex.CfnBot.FulfillmentCodeHookSettingProperty(enabled=True)
    intents = [
        lex.CfnBot.IntentProperty(
            name=intent,
            sample_utterances=[
                lex.CfnBot.SampleUtteranceProperty(utterance=u)
                for u in texts["intents"][intent]["utterances"]
            ],
            slots=[
                _slot(name, slot_type, obfuscated, texts["intents"][intent]["slots"][name])
                for name, slot_type, obfuscated in slots
            ],
            slot_priorities=[
                lex.CfnBot.SlotPriorityProperty(priority=index, slot_name=name)
                for index, (name, _, _) in enumerate(slots, start=1)
            ],
            fulfillment_code_hook=hook,
        )
        for intent, slots in INTENT_SLOTS.items()
    ]
    intents.append(
        lex.CfnBot.IntentProperty(
            name="FallbackIntent", parent_intent_signature="AMAZON.FallbackIntent", fulfillment_code_hook=hook
        )
    )
    district = lex.CfnBot.SlotTypeProperty(
        name="District",
        description="Hong Kong's 18 districts (English names; Chinese names as synonyms)",
        slot_type_values=[
            lex.CfnBot.SlotTypeValueProperty(
                sample_value=lex.CfnBot.SampleValueProperty(value=item["value"]),
                synonyms=[lex.CfnBot.SampleValueProperty(value=s) for s in item["synonyms"]],
            )
            for item in texts["districts"]
        ],
        value_selection_setting=lex.CfnBot.SlotValueSelectionSettingProperty(
            resolution_strategy="TOP_RESOLUTION"
        ),
    )
    return lex.CfnBot.BotLocaleProperty(
        locale_id=locale,
        description=texts["description"],
        nlu_confidence_threshold=CONFIDENCE_THRESHOLD,
        intents=intents,
        slot_types=[district],
    )


class AssistantBot(Construct):
    """The bot, a version per change, the `live` alias with the fulfilment function, text conversation
    logs (KMS), and the function's access: the records table and the gateway's chat completions."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        locales: Sequence[str],
        records: dynamodb.ITable,
        gateway_api: apigw.RestApi,
        gateway_url: str,
        alias: str,
        knowledge_base: str,
        hotline: str,
        idle_session_seconds: int,
        encryption_key: kms.IKey,
        log_retention_days: int,
        conversation_log_days: int,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.function = PythonFunction(
            self,
            "Fulfilment",
            package="assistant_fulfilment",
            description=f"{name}: fulfils the Lex bot's intents and asks the gateway for the rest",
            encryption_key=encryption_key,
            log_retention_days=log_retention_days,
            timeout_seconds=30,
            environment={
                "RECORDS_TABLE": records.table_name,
                "GATEWAY_URL": gateway_url,
                "GATEWAY_ALIAS": alias,
                "KNOWLEDGE_BASE": knowledge_base,
                "HOTLINE": hotline,
            },
        )
        role = self.function.function.role
        records.grant(role, "dynamodb:GetItem", "dynamodb:PutItem")
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="AskTheGateway",
                actions=["execute-api:Invoke"],
                resources=[gateway_api.arn_for_execute_api("POST", "/v1/chat/completions", "api")],
            )
        )

        self.log_group = encrypted_log_group(
            self, "ConversationLogs", encryption_key=encryption_key, days=conversation_log_days
        )
        self.role = iam.Role(
            self,
            "Role",
            # No aws:SourceAccount condition: the Lex V2 page's trust policy has none, and no page says
            # Lex sends the key (a condition it does not meet would silently stop the logs). The role
            # can only write this bot's log group.
            assumed_by=iam.ServicePrincipal("lexv2.amazonaws.com"),
            description=f"{name}: the Lex V2 bot writes its text conversation logs",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ConversationLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )

        def code_hook(kind: Any) -> Any:  # CfnBot (the test alias) and CfnBotAlias have their own types
            return kind.BotAliasLocaleSettingsProperty(
                enabled=True,
                code_hook_specification=kind.CodeHookSpecificationProperty(
                    lambda_code_hook=kind.LambdaCodeHookProperty(
                        lambda_arn=self.function.function.function_arn,
                        code_hook_interface_version=CODE_HOOK_VERSION,
                    )
                ),
            )

        self.bot = lex.CfnBot(
            self,
            "Bot",
            name=name,
            description="A utility's customer assistant: bills, outages, connections, and questions",
            role_arn=self.role.role_arn,
            data_privacy={"ChildDirected": False},
            idle_session_ttl_in_seconds=idle_session_seconds,
            auto_build_bot_locales=True,
            bot_locales=[bot_locale(locale) for locale in locales],
            test_bot_alias_settings=lex.CfnBot.TestBotAliasSettingsProperty(
                bot_alias_locale_settings=[
                    lex.CfnBot.BotAliasLocaleSettingsItemProperty(
                        locale_id=locale,
                        bot_alias_locale_setting=code_hook(lex.CfnBot),
                    )
                    for locale in locales
                ]
            ),
        )
        self.bot.node.add_dependency(self.role)
        # A new numbered version whenever the bot changes, and the live alias moves to it. Only BotId
        # replaces an AWS::Lex::BotVersion (CloudFormation template reference: Description and the locale
        # specification update in place, and publish nothing), so the digest of the locales is in the
        # logical id: a change is a new resource, a new version. The old one is deleted after the alias
        # has moved: callers use the alias.
        digest = config_digest(self.bot, {"locales": self.bot.bot_locales})
        self.version = lex.CfnBotVersion(
            self,
            f"Version{digest[:8]}",
            bot_id=self.bot.attr_id,
            description=f"genai-stack config {digest}",
            bot_version_locale_specification=[
                lex.CfnBotVersion.BotVersionLocaleSpecificationProperty(
                    locale_id=locale,
                    bot_version_locale_details=lex.CfnBotVersion.BotVersionLocaleDetailsProperty(
                        source_bot_version="DRAFT"
                    ),
                )
                for locale in locales
            ],
        )
        self.alias = lex.CfnBotAlias(
            self,
            "Alias",
            bot_id=self.bot.attr_id,
            bot_alias_name="live",
            bot_version=self.version.attr_bot_version,
            description="The version customers talk to",
            bot_alias_locale_settings=[
                lex.CfnBotAlias.BotAliasLocaleSettingsItemProperty(
                    locale_id=locale,
                    bot_alias_locale_setting=code_hook(lex.CfnBotAlias),
                )
                for locale in locales
            ],
            conversation_log_settings=lex.CfnBotAlias.ConversationLogSettingsProperty(
                text_log_settings=[
                    lex.CfnBotAlias.TextLogSettingProperty(
                        enabled=True,
                        destination=lex.CfnBotAlias.TextLogDestinationProperty(
                            cloud_watch=lex.CfnBotAlias.CloudWatchLogGroupLogDestinationProperty(
                                cloud_watch_log_group_arn=self.log_group.log_group_arn, log_prefix="live/"
                            )
                        ),
                    )
                ]
            ),
        )
        for alias_id, source in (
            ("Live", self.alias.attr_arn),
            (
                "Test",
                stack.format_arn(
                    service="lex", resource="bot-alias", resource_name=f"{self.bot.attr_id}/{TEST_ALIAS_ID}"
                ),
            ),
        ):
            self.function.function.add_permission(
                f"InvokedByLex{alias_id}",
                principal=iam.ServicePrincipal("lexv2.amazonaws.com"),
                source_arn=source,
                source_account=stack.account,
            )

    def monitor(self, hub: MonitoringHub) -> None:
        """An alarm when the fulfilment function fails as a function (a timeout, out of memory, a cold
        start), which the customer meets as Lex's own error; the function answers every other failure
        itself with the hotline. A dashboard section with its invocations and errors."""
        period = Duration.minutes(5)
        errors = self.function.function.metric_errors(period=period)
        hub.alarm(
            self,
            "FulfilmentErrors",
            metric=errors,
            threshold=1,
            description="Assistant fulfilment function: a timeout, out-of-memory or failed cold start",
            # Lambda publishes Errors only for periods with invocations: no data is no failure.
            missing=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        hub.add_section(
            "Customer assistant",
            [
                cloudwatch.GraphWidget(
                    title="Assistant turns fulfilled and failed (5 min)",
                    left=[self.function.function.metric_invocations(period=period), errors],
                    width=12,
                )
            ],
        )
