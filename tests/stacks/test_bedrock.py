"""BedrockStack (managed-api profile): template assertions per feature."""

from __future__ import annotations

import json
import re

import pytest

from genai_stack.catalog import bedrock_catalog, guardrail_profile
from genai_stack.components.model_access import INVOKE_ACTIONS
from genai_stack.config import load_profile

PROFILE = "managed-api"
GUARDED = "bedrock:GuardrailIdentifier"


@pytest.fixture(scope="module")
def settings():
    return load_profile(PROFILE).bedrock


@pytest.fixture(scope="module")
def bedrock(synthesized) -> dict:
    return synthesized.template(PROFILE, "Bedrock")["Resources"]


def of_type(resources: dict, resource_type: str) -> dict[str, dict]:
    return {k: r for k, r in resources.items() if r["Type"] == resource_type}


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def identity_statements(templates: dict[str, dict]) -> list[tuple[str, dict]]:
    """Every statement of every identity policy (not resource policies) in the given templates."""
    found = []
    for stack, template in templates.items():
        for logical_id, resource in template["Resources"].items():
            documents = []
            if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
                documents.append(resource["Properties"]["PolicyDocument"])
            if resource["Type"] == "AWS::IAM::Role":
                documents += [p["PolicyDocument"] for p in resource["Properties"].get("Policies", [])]
            for document in documents:
                found += [(f"{stack}/{logical_id}", s) for s in document["Statement"]]
    return found


def is_generation_resource(resource) -> bool:
    """A model, inference profile or application profile resource that is not an embedding model."""
    text = json.dumps(resource)
    embeddings = [m for m, info in bedrock_catalog().models.items() if info.modality == "embeddings"]
    if any(f"foundation-model/{m}" in text for m in embeddings):
        return False
    if "GatewayProfileembeddings" in text:  # the application profile of an embedding alias
        return False
    return "foundation-model/" in text or "inference-profile" in text or "InferenceProfileArn" in text


# --------------------------------------------------------------------------------------------------
# Model access and guardrail enforcement


@pytest.fixture(scope="module")
def access_policy(bedrock) -> list[dict]:
    (policy,) = [
        p for i, p in of_type(bedrock, "AWS::IAM::ManagedPolicy").items() if i.startswith("ModelAccess")
    ]
    return policy["Properties"]["PolicyDocument"]["Statement"]


def test_the_policy_accepts_the_current_and_the_previous_guardrail_version(bedrock):
    """The version window: a custom resource fed the guardrail ARN and the published version, whose
    Current and Previous (`ARN:VERSION`, lambdas/guardrail_window) the policy lists; it needs no AWS
    permission of its own."""
    ((_window_id, window),) = of_type(bedrock, "Custom::GuardrailVersionWindow").items()
    props = window["Properties"]
    assert props["GuardrailArn"] == {"Fn::GetAtt": ["GuardrailA5094A7B", "GuardrailArn"]}
    assert props["Version"] == {"Fn::GetAtt": ["GuardrailVersionFD7632EA", "Version"]}
    handler_policies = [
        s
        for k, r in of_type(bedrock, "AWS::IAM::Policy").items()
        if k.startswith("GuardrailVersionWindowHandler")
        for s in r["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert not [s for s in handler_policies if any(a.startswith("bedrock:") for a in as_list(s["Action"]))]


def test_callers_may_decrypt_the_guardrail_s_key_and_nothing_else_with_it(
    access_policy, bedrock, synthesized
):
    """Callers of a KMS-encrypted guardrail need kms:Decrypt on its key (Bedrock user guide,
    guardrails-permissions-kms); the exact key ARN the guardrail names. The platform key's policy
    lets the account's IAM policies grant it (KMS "Default key policy": the account statement)."""
    (statement,) = [s for s in access_policy if s.get("Sid") == "DecryptTheGuardrail"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "kms:Decrypt"
    (guardrail,) = of_type(bedrock, "AWS::Bedrock::Guardrail").values()
    assert statement["Resource"] == guardrail["Properties"]["KmsKeyArn"]
    assert not [s for s in access_policy if s is not statement and "kms:" in json.dumps(s["Action"])]
    (key,) = synthesized.resources(PROFILE, "Foundation", "AWS::KMS::Key").values()
    key_policy = key["Properties"]["KeyPolicy"]["Statement"]
    # The only Deny is on grants that are not for AWS resources (PlatformKey): none touches Decrypt.
    denies = [s for s in key_policy if s["Effect"] == "Deny"]
    assert [s["Action"] for s in denies] == ["kms:CreateGrant"]
    account_root = {"Fn::Join": ["", ["arn:aws:iam::", {"Ref": "AWS::AccountId"}, ":root"]]}
    (account,) = [s for s in key_policy if s["Principal"].get("AWS") == account_root]
    assert account["Action"] == "kms:*"
    assert account["Resource"] == "*"
    assert "Condition" not in account


def test_invoke_is_allowed_on_exactly_the_profile_s_models(access_policy, settings):
    catalog = bedrock_catalog()
    allowed = {
        r
        for s in access_policy
        if s["Effect"] == "Allow" and s["Action"] == INVOKE_ACTIONS
        for r in as_list(s["Resource"])
        if isinstance(r, str)
    }
    expected = {f"arn:aws:bedrock:us-east-1::foundation-model/{m}" for m in settings.models}
    for profile_id in settings.inference_profiles:
        profile = catalog.inference_profiles[profile_id]
        expected |= {
            f"arn:aws:bedrock:{r}::foundation-model/{profile.model_id}"
            for r in profile.destinations("us-east-1")
        }
    assert allowed == expected
    assert not any("*" in r for s in access_policy for r in as_list(s["Resource"]) if isinstance(r, str))


def test_destination_region_models_are_reachable_only_through_the_profile(access_policy):
    (statement,) = [s for s in access_policy if s["Sid"] == "InvokeProfile0Destinations"]
    callers = json.dumps(statement["Condition"]["StringLike"]["bedrock:InferenceProfileArn"])
    assert ":inference-profile/us.anthropic.claude-haiku-4-5-20251001-v1:0" in callers
    assert "AppProfilespringsavings" in callers  # the campaign profile copies the same system profile


def test_generation_needs_the_pinned_guardrail_version_and_anything_else_is_denied(access_policy, bedrock):
    generation = [
        s
        for s in access_policy
        if s["Effect"] == "Allow"
        and s["Action"] == INVOKE_ACTIONS
        and not s["Sid"].startswith("InvokeEmbedding")  # models and application profiles
    ]
    assert len(generation) >= 3
    (window_id,) = of_type(bedrock, "Custom::GuardrailVersionWindow")
    for statement in generation:
        identifiers = statement["Condition"]["StringEquals"][GUARDED]
        assert identifiers == [
            {"Fn::GetAtt": [window_id, "Current"]},
            {"Fn::GetAtt": [window_id, "Previous"]},
        ]
    (deny,) = [s for s in access_policy if s["Effect"] == "Deny"]
    assert deny["Action"] == INVOKE_ACTIONS
    assert (
        deny["Condition"]["StringNotEquals"][GUARDED] == generation[0]["Condition"]["StringEquals"][GUARDED]
    )
    denied = json.dumps(deny["Resource"])
    for statement in generation:
        for resource in as_list(statement["Resource"]):
            assert json.dumps(resource) in denied


def test_embedding_models_are_not_subject_to_the_guardrail(access_policy):
    (statement,) = [s for s in access_policy if s["Sid"] == "InvokeEmbeddingModels"]
    assert statement["Resource"] == "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0"
    assert "Condition" not in statement


def test_apply_guardrail_names_the_guardrail_and_its_profile_in_every_destination(access_policy):
    (statement,) = [s for s in access_policy if s["Sid"] == "ApplyTheGuardrail"]
    resources = json.dumps(statement["Resource"])
    assert '"GuardrailA5094A7B", "GuardrailArn"' in resources
    for region in guardrail_profile("us-east-1").destinations:
        assert f"arn:aws:bedrock:{region}:" in resources
    assert resources.count(":guardrail-profile/us.guardrail.v1:0") == 3


# The one role that invokes generation models without the guardrail: Bedrock's evaluation jobs, which
# cannot take one for a model's inference (CreateEvaluationJob has no guardrail field but a RAG job's),
# on the profile's own evaluation sets (stacks/components/model_evaluation.py, docs/evaluation.md).
# The model access of the roles Bedrock runs evaluation jobs with (the evaluation runs' and each training
# gate's): an evaluation job takes no guardrail for the models it invokes (model_evaluation.py).
UNGUARDED_BY_DESIGN = re.compile(r"/(Evaluation|Pipeline[A-Za-z0-9]+Gate)AccessPolicy")


def test_every_role_that_may_invoke_a_generation_model_carries_the_guardrail_condition(synthesized):
    """Over every stack of every profile whose guardrail is mandatory (the issue's enforcement proof)."""
    checked = exempted = 0
    for name, templates in synthesized.templates.items():
        bedrock_settings = load_profile(name).bedrock
        if not (bedrock_settings and bedrock_settings.guardrail and bedrock_settings.guardrail.mandatory):
            continue
        for where, statement in identity_statements(templates):
            actions = set(as_list(statement["Action"]))
            if statement["Effect"] != "Allow" or not actions & set(INVOKE_ACTIONS):
                continue
            if any(is_generation_resource(r) for r in as_list(statement["Resource"])):
                if UNGUARDED_BY_DESIGN.search(where):
                    exempted += 1
                    continue
                assert GUARDED in statement.get("Condition", {}).get("StringEquals", {}), where
                checked += 1
    assert checked >= 3
    assert exempted, "the exemption is still needed (managed-api evaluates models)"


@pytest.mark.parametrize(
    ("profile", "stack", "holder"),
    [
        (PROFILE, "Bedrock", "EvaluationJobRole"),
        ("custom-model", "Training", "PipelinesupporttuningGateJobRole"),
    ],
)
def test_only_an_evaluation_job_role_gets_the_unguarded_evaluation_access(
    synthesized, profile, stack, holder
):
    resources = synthesized.template(profile, stack)["Resources"]
    (policy_id,) = [
        i
        for i, r in resources.items()
        if r["Type"] == "AWS::IAM::ManagedPolicy" and UNGUARDED_BY_DESIGN.search(f"/{i}")
    ]
    holders = [
        i
        for i, r in resources.items()
        if r["Type"] == "AWS::IAM::Role"
        and {"Ref": policy_id} in r["Properties"].get("ManagedPolicyArns", [])
    ]
    assert len(holders) == 1
    assert holders[0].startswith(holder)
    trust = resources[holders[0]]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "bedrock.amazonaws.com"}]


def test_no_data_or_model_action_on_a_wildcard_resource(synthesized):
    """No identity policy grants a Bedrock, S3, KMS or DynamoDB action on Resource '*', except the
    actions that have no resource type or none for what is named (acknowledged in stacks/compliance.py
    and stacks/components/model_evaluation.py)."""
    no_resource_type = {
        "bedrock:GetModelInvocationLoggingConfiguration",
        "bedrock:PutModelInvocationLoggingConfiguration",
        "bedrock:DeleteModelInvocationLoggingConfiguration",
        "bedrock:RetrieveAndGenerate",  # "*" only (Service Authorization Reference)
        "bedrock:CreateEvaluationJob",  # no application-inference-profile type; held to the profile's tags
    }
    for where, statement in identity_statements(synthesized.templates[PROFILE]):
        # A Deny on '*' grants nothing (the spend cap's deny policy: stacks/components/spend_cap.py).
        if "*" not in as_list(statement["Resource"]) or statement["Effect"] != "Allow":
            continue
        data_actions = {
            a for a in as_list(statement["Action"]) if a.split(":")[0] in {"bedrock", "s3", "kms", "dynamodb"}
        }
        assert data_actions <= no_resource_type, f"{where}: {sorted(data_actions - no_resource_type)} on '*'"


def test_the_access_policy_arn_is_an_output(synthesized):
    outputs = synthesized.template(PROFILE, "Bedrock")["Outputs"]
    assert outputs["ModelAccessPolicyArn"]["Value"] == {"Ref": "ModelAccessPolicy2E8025FC"}


# --------------------------------------------------------------------------------------------------
# Guardrail


@pytest.fixture(scope="module")
def guardrail(bedrock) -> dict:
    (resource,) = of_type(bedrock, "AWS::Bedrock::Guardrail").values()
    return resource["Properties"]


def test_guardrail_has_every_policy_type_from_the_profile(guardrail, settings):
    g = settings.guardrail
    filters = {f["Type"]: f for f in guardrail["ContentPolicyConfig"]["FiltersConfig"]}
    assert set(filters) == {f.type for f in g.content_filters}
    assert filters["PROMPT_ATTACK"]["OutputStrength"] == "NONE"
    assert guardrail["ContentPolicyConfig"]["ContentFiltersTierConfig"] == {"TierName": "STANDARD"}
    topics = guardrail["TopicPolicyConfig"]
    assert [t["Name"] for t in topics["TopicsConfig"]] == [t.name for t in g.denied_topics]
    assert topics["TopicsConfig"][0]["Examples"] == g.denied_topics[0].examples
    assert topics["TopicsTierConfig"] == {"TierName": "STANDARD"}
    words = guardrail["WordPolicyConfig"]
    assert [w["Text"] for w in words["WordsConfig"]] == g.words
    assert words["ManagedWordListsConfig"] == [{"Type": "PROFANITY"}]
    pii = guardrail["SensitiveInformationPolicyConfig"]
    assert {p["Type"]: p["Action"] for p in pii["PiiEntitiesConfig"]} == {
        p.type: p.action for p in g.pii_entities
    }
    assert pii["RegexesConfig"][0]["Pattern"] == g.regexes[0].pattern
    # No grounding check: its CLASSIC tier cannot read the profile's Traditional Chinese.
    assert g.contextual_grounding is None
    assert "ContextualGroundingPolicyConfig" not in guardrail
    assert guardrail["BlockedInputMessaging"] == g.blocked_input_message
    assert guardrail["BlockedOutputsMessaging"] == g.blocked_output_message


def test_the_grounding_check_carries_the_profile_s_thresholds(synthesized):
    """customer-service (English only) keeps the contextual grounding check."""
    (guardrail,) = synthesized.resources("customer-service", "Bedrock", "AWS::Bedrock::Guardrail").values()
    filters = guardrail["Properties"]["ContextualGroundingPolicyConfig"]["FiltersConfig"]
    assert {f["Type"]: f["Threshold"] for f in filters} == {"GROUNDING": 0.8, "RELEVANCE": 0.6}


def test_guardrail_uses_the_platform_key_and_the_us_guardrail_profile(guardrail):
    assert guardrail["KmsKeyArn"]["Fn::GetStackOutput"]["StackName"] == "managed-api-foundation"
    profile_arn = json.dumps(guardrail["CrossRegionConfig"]["GuardrailProfileArn"])
    assert ":guardrail-profile/us.guardrail.v1:0" in profile_arn


def test_a_numbered_version_is_published_and_kept(bedrock):
    (version,) = of_type(bedrock, "AWS::Bedrock::GuardrailVersion").values()
    assert re.fullmatch(r"genai-stack config [0-9a-f]{16}", version["Properties"]["Description"])
    assert version["DeletionPolicy"] == version["UpdateReplacePolicy"] == "Retain"


# --------------------------------------------------------------------------------------------------
# Knowledge base, vector store and ingestion


def test_the_knowledge_base_uses_the_foundation_s_s3_vectors_index_and_its_own_role(bedrock):
    (kb,) = of_type(bedrock, "AWS::Bedrock::KnowledgeBase").values()
    props = kb["Properties"]
    vector = props["KnowledgeBaseConfiguration"]["VectorKnowledgeBaseConfiguration"]
    assert (
        vector["EmbeddingModelArn"]
        == "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0"
    )
    assert vector["EmbeddingModelConfiguration"]["BedrockEmbeddingModelConfiguration"]["Dimensions"] == 1024
    storage = props["StorageConfiguration"]
    assert storage["Type"] == "S3_VECTORS"
    assert (
        storage["S3VectorsConfiguration"]["IndexArn"]["Fn::GetStackOutput"]["StackName"]
        == "managed-api-foundation"
    )
    # The role lives beside the knowledge base (docs/architecture.md "Where each role lives"), and the
    # knowledge base is created after its policies: Bedrock checks the role's access on creation.
    role_id, _ = props["RoleArn"]["Fn::GetAtt"]
    assert (
        bedrock[role_id]["Metadata"]["aws:cdk:path"]
        == "managed-api/Bedrock/KnowledgeBaseRole-product-facts/Role/Resource"
    )
    policies = [
        k
        for k, r in of_type(bedrock, "AWS::IAM::Policy").items()
        if {"Ref": role_id} in r["Properties"]["Roles"]
    ]
    assert policies
    assert set(policies) <= set(kb["DependsOn"])


def test_the_data_source_reads_its_prefix_with_the_profile_s_chunking(bedrock):
    (source,) = of_type(bedrock, "AWS::Bedrock::DataSource").values()
    props = source["Properties"]
    assert props["DataSourceConfiguration"]["S3Configuration"]["InclusionPrefixes"] == [
        "knowledge-bases/product-facts/"
    ]
    assert props["VectorIngestionConfiguration"]["ChunkingConfiguration"] == {
        "ChunkingStrategy": "FIXED_SIZE",
        "FixedSizeChunkingConfiguration": {"MaxTokens": 300, "OverlapPercentage": 20},
    }
    assert props["DataDeletionPolicy"] == "RETAIN"
    assert "KmsKeyArn" in props["ServerSideEncryptionConfiguration"]


def test_the_vector_store_is_encrypted_retained_and_sized_for_the_embeddings(synthesized):
    (bucket,) = synthesized.resources(PROFILE, "Foundation", "AWS::S3Vectors::VectorBucket").values()
    assert bucket["Properties"]["EncryptionConfiguration"]["SseType"] == "aws:kms"
    indexes = synthesized.resources(PROFILE, "Foundation", "AWS::S3Vectors::Index")
    index = indexes["VectorStoreIndexproductfacts02DAB1C3"]
    props = index["Properties"]
    assert (props["DataType"], props["Dimension"], props["DistanceMetric"]) == ("float32", 1024, "cosine")
    assert props["MetadataConfiguration"]["NonFilterableMetadataKeys"] == [
        "AMAZON_BEDROCK_TEXT",
        "AMAZON_BEDROCK_METADATA",
    ]
    # The gateway's semantic cache (gateway.semantic_cache: 512 dimensions): its answers in one
    # non-filterable key, scope and expires_at left filterable.
    cache = indexes["VectorStoreIndexsemanticcacheBE116934"]["Properties"]
    assert (cache["Dimension"], cache["DistanceMetric"]) == (512, "cosine")
    assert cache["MetadataConfiguration"]["NonFilterableMetadataKeys"] == ["entry"]
    for resource in (bucket, index, indexes["VectorStoreIndexsemanticcacheBE116934"]):
        assert resource["DeletionPolicy"] == resource["UpdateReplacePolicy"] == "Retain"
    (key,) = synthesized.resources(PROFILE, "Foundation", "AWS::KMS::Key").values()
    statements = {s.get("Sid"): s for s in key["Properties"]["KeyPolicy"]["Statement"]}
    assert statements["AllowS3VectorsIndexing"]["Principal"] == {
        "Service": "indexing.s3vectors.amazonaws.com"
    }
    assert statements["AllowS3VectorsIndexing"]["Action"] == "kms:Decrypt"


def test_the_knowledge_base_role_reads_only_its_prefix_and_writes_only_its_index(synthesized):
    policies = synthesized.resources(PROFILE, "Foundation", "AWS::IAM::Policy")
    (policy,) = [p for k, p in policies.items() if k.startswith("KnowledgeBaseRoleproductfacts")]
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert set(statements) == {
        "EmbedWithTheModel",
        "ListTheDocumentPrefix",
        "ReadTheDocuments",
        "UseTheVectorIndex",
        "UseThePlatformKey",
    }
    assert statements["ListTheDocumentPrefix"]["Condition"] == {
        "StringLike": {"s3:prefix": ["knowledge-bases/product-facts/*"]}
    }
    assert json.dumps(statements["ReadTheDocuments"]["Resource"]).endswith(
        '"/knowledge-bases/product-facts/*"]]}'
    )
    assert statements["UseTheVectorIndex"]["Resource"] == {
        "Fn::GetAtt": ["VectorStoreIndexproductfacts02DAB1C3", "IndexArn"]
    }
    (role,) = [
        r
        for k, r in synthesized.resources(PROFILE, "Foundation", "AWS::IAM::Role").items()
        if k.startswith("KnowledgeBaseRoleproductfacts")
    ]
    trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Principal"] == {"Service": "bedrock.amazonaws.com"}
    assert set(trust["Condition"]) == {"StringEquals", "ArnLike"}


def test_ingestion_runs_on_schedule_on_document_changes_and_is_checked(bedrock):
    rules = {k: r["Properties"] for k, r in of_type(bedrock, "AWS::Events::Rule").items()}
    (schedule,) = [r for k, r in rules.items() if k.startswith("IngestionScheduleproductfacts")]
    assert schedule["ScheduleExpression"] == "rate(1 day)"
    assert json.loads(schedule["Targets"][0]["Input"]) == {
        "action": "ingest",
        "knowledge_base": "product-facts",
    }
    (changes,) = [r for k, r in rules.items() if k.startswith("IngestionDocumentChanges")]
    pattern = changes["EventPattern"]
    assert pattern["source"] == ["aws.s3"]
    assert pattern["detail-type"] == ["Object Created", "Object Deleted"]
    assert pattern["detail"]["object"]["key"] == [{"prefix": "knowledge-bases/product-facts/"}]
    (check,) = [r for k, r in rules.items() if k.startswith("IngestionStatusCheck")]
    assert check["ScheduleExpression"] == "rate(15 minutes)"
    assert json.loads(check["Targets"][0]["Input"]) == {"action": "check"}


def test_the_data_bucket_sends_its_events_to_eventbridge_without_a_helper_function(synthesized):
    buckets = synthesized.resources(PROFILE, "Foundation", "AWS::S3::Bucket")
    (data,) = [b for k, b in buckets.items() if k.startswith("Data")]
    assert data["Properties"]["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {"EventBridgeEnabled": True}
    }
    # No notifications helper (Custom::S3BucketNotifications and its function): the only function of
    # the foundation is the write-once evidence copier (foundation.evidence_lock).
    functions = synthesized.resources(PROFILE, "Foundation", "AWS::Lambda::Function")
    assert [k for k in functions if not k.startswith("EvidenceCopyFunction")] == []
    assert not synthesized.resources(PROFILE, "Foundation", "Custom::S3BucketNotifications")


def test_a_failed_ingestion_raises_an_alarm_on_the_topic(bedrock):
    (alarm,) = [
        a["Properties"]
        for k, a in of_type(bedrock, "AWS::CloudWatch::Alarm").items()
        if k.startswith("IngestionIngestionFailed")
    ]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("GenAiStack/KnowledgeBases", "IngestionJobFailed")
    # Powertools adds `service` to what the check publishes (the signal contract runs it to prove it).
    assert alarm["Dimensions"] == [
        {"Name": "KnowledgeBase", "Value": "product-facts"},
        {"Name": "service", "Value": "managed-api-kb-ingestion"},
    ]
    assert alarm["TreatMissingData"] == "breaching"  # the check stopped
    assert alarm["AlarmActions"]
    assert alarm["AlarmActions"] == alarm["OKActions"]


def test_the_ingestion_function_may_start_jobs_only_on_its_knowledge_bases(bedrock):
    policies = of_type(bedrock, "AWS::IAM::Policy")
    (policy,) = [p for k, p in policies.items() if k.startswith("IngestionHandlerRole")]
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert set(statements["IngestTheKnowledgeBases"]["Action"]) == {
        "bedrock:StartIngestionJob",
        "bedrock:ListIngestionJobs",
    }
    assert statements["IngestTheKnowledgeBases"]["Resource"] == {
        "Fn::GetAtt": ["KnowledgeBaseproductfactsKnowledgeBaseF3C66163", "KnowledgeBaseArn"]
    }


# --------------------------------------------------------------------------------------------------
# Invocation logging


def test_invocation_logging_is_configured_by_the_custom_resource(bedrock, settings):
    (resource,) = of_type(bedrock, "Custom::BedrockInvocationLogging").values()
    props = resource["Properties"]
    assert props["KeyPrefix"] == "bedrock-invocation-logs/"
    assert props["TakeOver"] == str(settings.invocation_logging.take_over).lower()
    assert props["TextDataDeliveryEnabled"] == "true"
    assert props["BucketName"]["Fn::GetStackOutput"]["StackName"] == "managed-api-foundation"
    (log_group,) = [
        g for k, g in of_type(bedrock, "AWS::Logs::LogGroup").items() if k.startswith("InvocationLoggingLogs")
    ]
    assert log_group["Properties"]["RetentionInDays"] == settings.invocation_logging.log_retention_days
    assert "KmsKeyId" in log_group["Properties"]


def test_the_invocation_logging_resource_keeps_its_logical_id(bedrock):
    """Pinned: with a new logical ID CloudFormation would create the new resource, then delete the old
    one, whose Delete would remove the very configuration the new one had just put (same settings)."""
    assert list(of_type(bedrock, "Custom::BedrockInvocationLogging")) == [
        "InvocationLoggingConfigurationF4938977"
    ]


def test_the_logging_handler_may_manage_only_the_logging_setting_and_pass_only_the_delivery_role(bedrock):
    policies = of_type(bedrock, "AWS::IAM::Policy")
    (policy,) = [p for k, p in policies.items() if k.startswith("InvocationLoggingConfigurationHandlerRole")]
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert statements["ManageInvocationLogging"]["Resource"] == "*"
    assert all(
        a.endswith("ModelInvocationLoggingConfiguration")
        for a in statements["ManageInvocationLogging"]["Action"]
    )
    assert statements["PassTheDeliveryRole"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "bedrock.amazonaws.com"}
    }
    (delivery,) = [p for k, p in policies.items() if k.startswith("InvocationLoggingDeliveryRole")]
    (write,) = delivery["Properties"]["PolicyDocument"]["Statement"]
    assert json.dumps(write["Resource"]).endswith(':log-stream:aws/bedrock/modelinvocations"]]}')


# --------------------------------------------------------------------------------------------------
# Application inference profiles, prompts, functions, monitoring


def test_application_profiles_copy_their_source_and_carry_the_campaign_tag(bedrock, settings):
    profiles = {
        r["Properties"]["InferenceProfileName"]: r["Properties"]
        for r in of_type(bedrock, "AWS::Bedrock::ApplicationInferenceProfile").values()
    }
    campaigns = {f"managed-api-{a.name}" for a in settings.application_inference_profiles}
    assert campaigns <= set(
        profiles
    )  # and one per gateway alias and model: tests/stacks/test_gateway_spend.py
    spring = profiles["managed-api-spring-savings"]
    assert ":inference-profile/us.anthropic.claude-haiku-4-5-20251001-v1:0" in json.dumps(
        spring["ModelSource"]["CopyFrom"]
    )
    tags = {t["Key"]: t["Value"] for t in spring["Tags"]}
    assert tags["campaign"] == "spring-savings"
    assert tags["genai-stack:cost-center"] == "marketing-genai"
    cards = profiles["managed-api-card-rewards"]
    assert (
        cards["ModelSource"]["CopyFrom"]
        == "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0"
    )


def test_prompts_become_versioned_bedrock_prompts_with_their_variables(bedrock, settings):
    (prompt,) = of_type(bedrock, "AWS::Bedrock::Prompt").values()
    variant = prompt["Properties"]["Variants"][0]
    text = variant["TemplateConfiguration"]["Text"]
    assert text["Text"] == settings.prompts[0].text
    assert [v["Name"] for v in text["InputVariables"]] == [
        "audience",
        "campaign",
        "channel",
        "disclosure",
        "facts",
        "language",
    ]
    assert variant["ModelId"] == "us.anthropic.claude-haiku-4-5-20251001-v1:0"
    (version,) = of_type(bedrock, "AWS::Bedrock::PromptVersion").values()
    assert version["DeletionPolicy"] == "Retain"
    assert re.fullmatch(r"genai-stack config [0-9a-f]{16}", version["Properties"]["Description"])


def test_functions_run_python_3_14_arm64_with_powertools_from_ssm_and_encrypted_environment(bedrock):
    functions = {
        k: r["Properties"]
        for k, r in of_type(bedrock, "AWS::Lambda::Function").items()
        if "Providerframework" not in k
    }
    for handler in (
        "GuardrailVersionWindowHandler",
        "IngestionHandler",
        "InvocationLoggingConfigurationHandler",
    ):
        assert any(k.startswith(handler) for k in functions), handler
    for props in functions.values():
        assert props["Runtime"] == "python3.14"
        assert props["Architectures"] == ["arm64"]
        assert props["Layers"] == ["{{resolve:ssm:/aws/service/powertools/python/arm64/python3.14/3.37.0}}"]
        assert "KmsKeyArn" in props
        assert props["Handler"].startswith("lambdas.")
        assert props["Handler"].endswith(".handler.on_event")


def test_function_assets_hold_only_their_own_package(synthesized):
    handlers = {"kb_ingestion", "invocation_logging"}
    seen = set()
    for asset in synthesized.outdir.glob("asset.*"):
        files = sorted(str(p.relative_to(asset)) for p in asset.rglob("*") if p.is_file())
        packages = {f.split("/")[1] for f in files if f.count("/") >= 2}
        if packages & handlers:
            assert len(packages) == 1, files
            assert "lambdas/__init__.py" in files
            assert not any("__pycache__" in f for f in files)
            seen |= packages
    assert seen == handlers


def test_each_application_inference_profile_has_throttle_and_server_error_alarms_on_the_topic(
    bedrock, settings
):
    """Alarms watch this profile's own traffic: calls through its application inference profiles
    (recorded under the profile's ARN or ID, both summed); base models are shared by every caller of
    the account, so they get dashboard rows but no alarm."""
    alarms = [
        a["Properties"]
        for k, a in of_type(bedrock, "AWS::CloudWatch::Alarm").items()
        if k.startswith("Monitoring")
    ]
    profiles = of_type(bedrock, "AWS::Bedrock::ApplicationInferenceProfile")
    assert len(alarms) == 2 * len(profiles) > 0
    for alarm in alarms:
        stats = [q["MetricStat"]["Metric"] for q in alarm["Metrics"] if "MetricStat" in q]
        assert {m["Namespace"] for m in stats} == {"AWS/Bedrock"}
        (arn, profile_id) = [m["Dimensions"][0]["Value"] for m in stats]
        (logical_id,) = {arn["Fn::GetAtt"][0], profile_id["Fn::GetAtt"][0]}
        assert logical_id in profiles
        assert [arn["Fn::GetAtt"][1], profile_id["Fn::GetAtt"][1]] == [
            "InferenceProfileArn",
            "InferenceProfileId",
        ]
        assert alarm["AlarmActions"]
    thresholds = {a["Metrics"][1]["MetricStat"]["Metric"]["MetricName"]: a["Threshold"] for a in alarms}
    assert thresholds == {
        "InvocationThrottles": settings.alarms.throttles,
        "InvocationServerErrors": settings.alarms.server_errors,
    }


def test_the_dashboard_shows_the_bedrock_and_ingestion_sections(synthesized):
    (dashboard,) = synthesized.resources(PROFILE, "Observability", "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    assert "## Amazon Bedrock models" in body
    assert "## Knowledge base ingestion" in body
    assert "InvocationsIntervened" in body
