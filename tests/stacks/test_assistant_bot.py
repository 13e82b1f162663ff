"""utility-assistant's Lex V2 bot: the intents and slots the fulfilment function expects, the function
attached to every locale of both aliases, Lex allowed to invoke it for this bot's aliases only; and the
profile checks that refuse an assistant where it cannot work."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from genai_stack import PROFILES_DIR
from genai_stack.components.assistant_bot import INTENT_SLOTS, TEST_ALIAS_ID, bot_texts
from genai_stack.config import ProfileError, load_profile
from lambdas.assistant_fulfilment.logic import INTENTS

NAME = "utility-assistant"


@pytest.fixture(scope="module")
def orchestration(synthesized):
    return synthesized.template(NAME, "Orchestration")


def one(template: dict, resource_type: str) -> tuple[str, dict]:
    (found,) = [(k, r) for k, r in template["Resources"].items() if r["Type"] == resource_type]
    return found


def test_the_intents_are_the_function_s_and_each_locale_has_them_with_their_slots(orchestration):
    assert [*INTENT_SLOTS, "FallbackIntent"] == list(INTENTS)
    _, bot = one(orchestration, "AWS::Lex::Bot")
    locales = {locale["LocaleId"]: locale for locale in bot["Properties"]["BotLocales"]}
    assert sorted(locales) == ["en_GB", "zh_HK"]
    for locale_id, locale in locales.items():
        intents = {i["Name"]: i for i in locale["Intents"]}
        assert set(intents) == set(INTENTS)
        assert intents["FallbackIntent"]["ParentIntentSignature"] == "AMAZON.FallbackIntent"
        for name, intent in intents.items():
            assert intent["FulfillmentCodeHook"] == {"Enabled": True}, (locale_id, name)
        for name, slots in INTENT_SLOTS.items():
            declared = {s["Name"]: s for s in intents[name]["Slots"]}
            assert list(declared) == [slot for slot, _, _ in slots]
            for slot, slot_type, obfuscated in slots:
                assert declared[slot]["SlotTypeName"] == slot_type
                assert declared[slot]["ValueElicitationSetting"]["SlotConstraint"] == "Required"
                assert ("ObfuscationSetting" in declared[slot]) is obfuscated
            utterances = [u["Utterance"] for u in intents[name]["SampleUtterances"]]
            assert utterances == bot_texts()[locale_id]["intents"][name]["utterances"]
            assert len(utterances) >= 10  # Lex's guidance: ten or more per intent
            for reference in re.findall(r"{(\w+)}", " ".join(utterances)):
                assert reference in {slot for slot, _, _ in slots}, (locale_id, name, reference)
        (district,) = locale["SlotTypes"]
        assert len(district["SlotTypeValues"]) == 18
        assert {"Sha Tin", "Kwun Tong"} <= {v["SampleValue"]["Value"] for v in district["SlotTypeValues"]}


def test_the_function_is_attached_to_every_locale_of_the_live_and_the_test_alias(orchestration):
    function_id, _ = one_function(orchestration)
    hook = {
        "Enabled": True,
        "CodeHookSpecification": {
            "LambdaCodeHook": {
                "LambdaArn": {"Fn::GetAtt": [function_id, "Arn"]},
                "CodeHookInterfaceVersion": "1.0",
            }
        },
    }
    _, alias = one(orchestration, "AWS::Lex::BotAlias")
    _, bot = one(orchestration, "AWS::Lex::Bot")
    for settings in (
        alias["Properties"]["BotAliasLocaleSettings"],
        bot["Properties"]["TestBotAliasSettings"]["BotAliasLocaleSettings"],
    ):
        assert {s["LocaleId"]: s["BotAliasLocaleSetting"] for s in settings} == {"en_GB": hook, "zh_HK": hook}
    version_id, version = one(orchestration, "AWS::Lex::BotVersion")
    assert alias["Properties"]["BotVersion"] == {"Fn::GetAtt": [version_id, "BotVersion"]}
    # Only BotId replaces a BotVersion: the locales' digest is in the logical id, so a change of the
    # bot is a new resource, i.e. a new published version the alias moves to.
    # (config_digest: a digest of the resolved locales, tests/stacks/test_versioning.py)
    digest = version["Properties"]["Description"].removeprefix("genai-stack config ")
    assert re.fullmatch(r"[0-9a-f]{16}", digest)
    assert version_id.startswith(f"AssistantVersion{digest[:8]}")
    logs = alias["Properties"]["ConversationLogSettings"]["TextLogSettings"]
    assert logs[0]["Enabled"] is True


def one_function(orchestration: dict) -> tuple[str, dict]:
    (found,) = [
        (k, r)
        for k, r in orchestration["Resources"].items()
        if r["Type"] == "AWS::Lambda::Function"
        and "assistant_fulfilment" in json.dumps(r["Properties"].get("Handler", ""))
    ]
    return found


def test_lex_may_invoke_the_function_for_this_bot_s_two_aliases_only(orchestration):
    function_id, _ = one_function(orchestration)
    alias_id, _ = one(orchestration, "AWS::Lex::BotAlias")
    bot_id, _ = one(orchestration, "AWS::Lex::Bot")
    permissions = [
        r["Properties"]
        for r in orchestration["Resources"].values()
        if r["Type"] == "AWS::Lambda::Permission"
        and r["Properties"]["FunctionName"] == {"Fn::GetAtt": [function_id, "Arn"]}
    ]
    assert {p["Principal"] for p in permissions} == {"lexv2.amazonaws.com"}
    assert all(p["SourceAccount"] == {"Ref": "AWS::AccountId"} for p in permissions)
    sources = [json.dumps(p["SourceArn"]) for p in permissions]
    assert json.dumps({"Fn::GetAtt": [alias_id, "Arn"]}) in sources
    (test,) = [s for s in sources if TEST_ALIAS_ID in s]
    assert bot_id in test
    assert ":bot-alias/" in test


# --------------------------------------------------------------------------------------------------
# The profile checks


def variant(tmp_path, change) -> str:
    document = yaml.safe_load((PROFILES_DIR / f"{NAME}.yaml").read_text(encoding="utf-8"))
    change(document)
    path = tmp_path / "assistant.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ProfileError) as raised:
        load_profile(str(path))
    return " ".join(str(raised.value).split())


def test_the_assistant_needs_iam_auth_a_chat_alias_and_a_gateway_knowledge_base(tmp_path):
    def keys(doc):
        doc["gateway"]["auth"] = "api_key"
        doc["gateway"]["tenants"] = [{"name": "contact-centre"}]

    assert "assistant.alias: needs gateway.auth: iam" in variant(tmp_path, keys)

    def unknown(doc):
        doc["assistant"]["alias"] = "embedder"
        doc["assistant"]["knowledge_base"] = "manuals"

    message = variant(tmp_path, unknown)
    assert "'embedder' is not a chat alias of the gateway (answers)" in message
    assert "'manuals' is not one of gateway.knowledge_bases (service-faq)" in message


def test_cantonese_is_refused_where_lex_does_not_offer_it(tmp_path):
    def singapore(doc):
        doc["region"] = "ap-southeast-1"
        doc["bedrock"]["models"] = ["amazon.nova-lite-v1:0"]  # not offered there: only the assistant's error
        del doc["bedrock"]["knowledge_bases"]

    message = variant(tmp_path, singapore)
    assert "zh_HK (Cantonese) is not offered in ap-southeast-1" in message


def test_the_committed_profile_loads():
    assistant = load_profile(NAME).assistant
    assert assistant.locales == ["en_GB", "zh_HK"]
