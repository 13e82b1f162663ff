"""Knowledge bases on Aurora PostgreSQL Serverless v2 with pgvector (customer-service profile)."""

from __future__ import annotations

import json

import pytest

from genai_stack.config import load_profile

PROFILE = "customer-service"


@pytest.fixture(scope="module")
def settings():
    return load_profile(PROFILE).bedrock


def one(synthesized, resource_type: str, stack: str = "Foundation") -> dict:
    (resource,) = synthesized.resources(PROFILE, stack, resource_type).values()
    return resource


def test_the_cluster_scales_to_zero_within_the_profile_s_capacity(synthesized, settings):
    props = one(synthesized, "AWS::RDS::DBCluster")["Properties"]
    assert props["ServerlessV2ScalingConfiguration"] == {
        "MinCapacity": settings.aurora.min_capacity,
        "MaxCapacity": settings.aurora.max_capacity,
        "SecondsUntilAutoPause": settings.aurora.auto_pause_minutes * 60,
    }
    assert props["Engine"] == "aurora-postgresql"
    assert props["EngineVersion"].startswith("16.")
    assert props["EnableHttpEndpoint"] is True  # the Data API: Bedrock's way in


def test_the_cluster_is_encrypted_protected_and_retained(synthesized):
    cluster = one(synthesized, "AWS::RDS::DBCluster")
    props = cluster["Properties"]
    assert props["StorageEncrypted"] is True
    assert props["KmsKeyId"] == {"Fn::GetAtt": ["PlatformKey1C4A1A63", "Arn"]}
    assert props["DeletionProtection"] is True
    assert props["EnableIAMDatabaseAuthentication"] is True
    assert props["BackupRetentionPeriod"] == 7
    assert cluster["DeletionPolicy"] == cluster["UpdateReplacePolicy"] == "Retain"
    for secret in synthesized.resources(PROFILE, "Foundation", "AWS::SecretsManager::Secret").values():
        assert secret["DeletionPolicy"] == "Retain"
        assert "KmsKeyId" in secret["Properties"]


def test_the_admin_has_the_profile_s_name_and_a_password_aurora_manages(synthesized, settings):
    props = one(synthesized, "AWS::RDS::DBCluster")["Properties"]
    assert props["MasterUsername"] == settings.aurora.admin_username == "vectors_admin"
    assert "MasterUserPassword" not in props  # no password in the template, not even a reference
    assert props["ManageMasterUserPassword"] is True
    assert props["MasterUserSecret"] == {"KmsKeyId": {"Fn::GetAtt": ["PlatformKey1C4A1A63", "Arn"]}}
    # The schema function signs in to the Data API with that secret.
    schema = one(synthesized, "Custom::PgvectorSchema")["Properties"]
    assert schema["AdminSecretArn"] == {
        "Fn::GetAtt": ["AuroraVectorStoreCluster518200D0", "MasterUserSecret.SecretArn"]
    }


def rotation_schedules(synthesized) -> dict[str, dict]:
    schedules = synthesized.resources(PROFILE, "Foundation", "AWS::SecretsManager::RotationSchedule")
    return {json.dumps(s["Properties"]["SecretId"]): s for s in schedules.values()}


def test_both_logins_rotate_on_the_profile_s_schedule_and_not_at_deploy_time(synthesized, settings):
    # Pinned: a rotation schedule under a new logical ID is created before the old one is deleted, and
    # that deletion turns the secret's rotation off (cloudformation-coverage-roadmap issue 1813).
    assert set(synthesized.resources(PROFILE, "Foundation", "AWS::SecretsManager::RotationSchedule")) == {
        "AuroraVectorStoreAdminRotationDAC6BA11",
        "AuroraVectorStoreLoginRotationSchedule8BD54C42",
    }
    schedules = rotation_schedules(synthesized)
    admin = schedules[
        json.dumps({"Fn::GetAtt": ["AuroraVectorStoreCluster518200D0", "MasterUserSecret.SecretArn"]})
    ]
    login = schedules[json.dumps({"Ref": "AuroraVectorStoreBedrockLoginDBF8021E"})]
    for schedule in (admin, login):
        assert schedule["Properties"]["RotationRules"] == {
            "AutomaticallyAfterDays": settings.aurora.rotation.every_days
        }
        assert schedule["Properties"]["RotateImmediatelyOnUpdate"] is False
    # Aurora rotates its own secret (managed rotation: no function); the login needs ours, which may
    # only be invoked once Secrets Manager is allowed to, and only after the schema made the role.
    assert not {"RotationLambdaARN", "HostedRotationLambda"} & set(admin["Properties"])
    assert login["Properties"]["RotationLambdaARN"] == {
        "Fn::GetAtt": ["AuroraVectorStoreLoginRotationFunction56D7AC15", "Arn"]
    }
    assert {
        "AuroraVectorStoreSchemaBA75BF7D",
        "AuroraVectorStoreSecretsManagerInvokesRotationF78BDE85",
    } <= set(login["DependsOn"])


def test_the_rotation_function_reaches_the_cluster_only_through_the_data_api(synthesized, settings):
    functions = synthesized.resources(PROFILE, "Foundation", "AWS::Lambda::Function")
    (rotation,) = [f for k, f in functions.items() if k.startswith("AuroraVectorStoreLoginRotation")]
    props = rotation["Properties"]
    assert props["Handler"] == "lambdas.login_rotation.handler.on_event"
    assert "VpcConfig" not in props  # no network path to the cluster: the Data API is the way in
    variables = props["Environment"]["Variables"]
    assert variables["STRATEGY"] == settings.aurora.rotation.bedrock_login == "alternating_users"
    assert variables["LOGIN_SECRET_ARN"] == {"Ref": "AuroraVectorStoreBedrockLoginDBF8021E"}
    (permission,) = synthesized.resources(PROFILE, "Foundation", "AWS::Lambda::Permission").values()
    assert permission["Properties"]["Principal"] == "secretsmanager.amazonaws.com"
    assert permission["Properties"]["SourceAccount"] == {"Ref": "AWS::AccountId"}


def test_the_network_is_isolated_with_flow_logs_and_no_way_in(synthesized):
    foundation = synthesized.template(PROFILE, "Foundation")["Resources"]
    types = {r["Type"] for r in foundation.values()}
    assert not types & {"AWS::EC2::NatGateway", "AWS::EC2::InternetGateway", "AWS::EC2::SecurityGroupIngress"}
    assert "AWS::EC2::FlowLog" in types
    for group in synthesized.resources(PROFILE, "Foundation", "AWS::EC2::SecurityGroup").values():
        assert not group["Properties"].get("SecurityGroupIngress")
    for subnet in synthesized.resources(PROFILE, "Foundation", "AWS::EC2::Subnet").values():
        assert subnet["Properties"]["MapPublicIpOnLaunch"] is False


def test_the_schema_resource_creates_one_table_per_knowledge_base(synthesized, settings):
    props = one(synthesized, "Custom::PgvectorSchema")["Properties"]
    tables = json.loads(props["Tables"])
    assert tables == sorted(
        ({"dimensions": kb.dimensions, "name": kb.table_name} for kb in settings.knowledge_bases),
        key=lambda t: t["name"],
    )
    assert props["Database"] == "vectors"
    assert props["AdminSecretArn"] != props["BedrockSecretArn"]


def test_knowledge_bases_use_the_rds_store_with_the_bedrock_login(synthesized):
    kbs = synthesized.resources(PROFILE, "Bedrock", "AWS::Bedrock::KnowledgeBase")
    assert len(kbs) == 2
    for kb in kbs.values():
        storage = kb["Properties"]["StorageConfiguration"]
        assert storage["Type"] == "RDS"
        rds = storage["RdsConfiguration"]
        assert rds["DatabaseName"] == "vectors"
        assert rds["TableName"].startswith("bedrock_integration.service_")
        assert rds["FieldMapping"] == {
            "PrimaryKeyField": "id",
            "VectorField": "embedding",
            "TextField": "chunks",
            "MetadataField": "metadata",
            "CustomMetadataField": "custom_metadata",
        }
        assert "BedrockLogin" in json.dumps(rds["CredentialsSecretArn"])


def test_the_knowledge_base_roles_reach_the_cluster_only_through_the_data_api(synthesized):
    policies = synthesized.resources(PROFILE, "Foundation", "AWS::IAM::Policy")
    kb_policies = [p for k, p in policies.items() if k.startswith("KnowledgeBaseRole")]
    assert len(kb_policies) == 2
    for policy in kb_policies:
        statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
        assert "UseTheVectorIndex" not in statements
        assert set(statements["QueryTheCluster"]["Action"]) == {
            "rds-data:ExecuteStatement",
            "rds-data:BatchExecuteStatement",
        }
        assert statements["QueryTheCluster"]["Resource"] == statements["DescribeTheCluster"]["Resource"]
        assert "BedrockLogin" in json.dumps(statements["ReadTheLogin"]["Resource"])


def test_chunking_strategies_reach_the_data_sources(synthesized):
    sources = synthesized.resources(PROFILE, "Bedrock", "AWS::Bedrock::DataSource").values()
    strategies = {
        s["Properties"]["DataSourceConfiguration"]["S3Configuration"]["InclusionPrefixes"][0]: s[
            "Properties"
        ]["VectorIngestionConfiguration"]["ChunkingConfiguration"]
        for s in sources
    }
    faq = strategies["knowledge-bases/service-faq/"]
    assert faq["ChunkingStrategy"] == "SEMANTIC"
    assert faq["SemanticChunkingConfiguration"] == {
        "MaxTokens": 300,
        "BufferSize": 0,
        "BreakpointPercentileThreshold": 95,
    }
    manuals = strategies["knowledge-bases/service-manuals/"]
    assert manuals["ChunkingStrategy"] == "HIERARCHICAL"
    assert manuals["HierarchicalChunkingConfiguration"] == {
        "LevelConfigurations": [{"MaxTokens": 1500}, {"MaxTokens": 300}],
        "OverlapTokens": 60,
    }


def test_a_classic_guardrail_has_no_cross_region_profile(synthesized):
    guardrail = one(synthesized, "AWS::Bedrock::Guardrail", "Bedrock")["Properties"]
    assert "CrossRegionConfig" not in guardrail
    assert guardrail["TopicPolicyConfig"]["TopicsTierConfig"] == {"TierName": "CLASSIC"}


def test_ingestion_wakes_the_aurora_store_with_its_login_before_starting_a_job(synthesized):
    # lambdas/kb_ingestion wakes a paused cluster (Data API `SELECT 1`) before StartIngestionJob.
    functions = synthesized.resources(PROFILE, "Bedrock", "AWS::Lambda::Function")
    (ingestion,) = [f for k, f in functions.items() if k.startswith("IngestionHandler")]
    props = ingestion["Properties"]
    assert props["Timeout"] == 120
    config = json.dumps(props["Environment"]["Variables"]["KNOWLEDGE_BASES"])
    assert config.count('\\"cluster_arn\\"') == 2  # both knowledge bases of the profile are on Aurora
    policies = synthesized.resources(PROFILE, "Bedrock", "AWS::IAM::Policy")
    (policy,) = [p for k, p in policies.items() if k.startswith("IngestionHandlerRole")]
    by_sid = {s.get("Sid"): s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert by_sid["WakeTheVectorStores"]["Action"] == "rds-data:ExecuteStatement"
    assert "AuroraVectorStoreCluster" in json.dumps(by_sid["WakeTheVectorStores"]["Resource"])
    assert by_sid["ReadTheVectorStoreLogins"]["Action"] == "secretsmanager:GetSecretValue"
    assert "BedrockLogin" in json.dumps(by_sid["ReadTheVectorStoreLogins"]["Resource"])
    decrypt = by_sid["DecryptTheVectorStoreLogins"]
    assert decrypt["Action"] == "kms:Decrypt"
    assert "secretsmanager." in json.dumps(decrypt["Condition"]["StringEquals"]["kms:ViaService"])
