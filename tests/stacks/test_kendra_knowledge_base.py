"""A knowledge base on an existing Amazon Kendra GenAI index (`vector_store: kendra`): the profile rules,
the KENDRA knowledge base with no data source and no vector store, and a service role that may only
retrieve from that one index (checked with the access harness's evaluator, as AWS evaluates it)."""

from __future__ import annotations

import json

import pytest
import yaml
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

from genai_stack import PROFILES_DIR
from genai_stack.components.knowledge_base import KnowledgeBase
from genai_stack.components.knowledge_base_role import KnowledgeBaseRole
from genai_stack.components.vector_store import KendraStorage
from genai_stack.config import ProfileError, load_profile
from tests.access.evaluator import Policy, Request, evaluate

INDEX_ID = "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
ACCOUNT, REGION = "123456789012", "ap-southeast-2"
INDEX_ARN = f"arn:aws:kendra:{REGION}:{ACCOUNT}:index/{INDEX_ID}"
KENDRA_KB = {
    "name": "service-manuals",
    "description": "Field-service manuals already indexed in the utility's Kendra index.",
    "vector_store": "kendra",
    "kendra_index_id": INDEX_ID,
}


def profile_with(tmp_path, kb: dict, region: str = REGION):
    document = yaml.safe_load((PROFILES_DIR / "utility-assistant.yaml").read_text(encoding="utf-8"))
    document["region"] = region
    document["bedrock"]["knowledge_bases"].append(kb)
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return load_profile(str(path))


def refused(tmp_path, kb: dict, region: str = REGION) -> str:
    with pytest.raises(ProfileError) as raised:
        profile_with(tmp_path, kb, region)
    return " ".join(str(raised.value).split())


def test_a_kendra_knowledge_base_names_its_index_and_nothing_to_embed(tmp_path):
    kb = next(k for k in profile_with(tmp_path, KENDRA_KB).bedrock.knowledge_bases if k.on_kendra)
    assert (kb.kendra_index_id, kb.embedding_model, kb.dimensions) == (INDEX_ID, None, None)
    without = {k: v for k, v in KENDRA_KB.items() if k != "kendra_index_id"}
    assert "kendra_index_id: is required with vector_store: kendra" in refused(tmp_path, without)
    embedded = {**KENDRA_KB, "embedding_model": "amazon.titan-embed-text-v2:0"}
    assert "embedding_model: is not used with vector_store: kendra" in refused(tmp_path, embedded)
    vectors = {
        "name": "xy",
        "description": "d",
        "kendra_index_id": INDEX_ID,
        "embedding_model": "amazon.titan-embed-text-v2:0",
        "dimensions": 1024,
    }
    assert "kendra_index_id: is only for vector_store: kendra" in refused(tmp_path, vectors)
    tuned = {**KENDRA_KB, "ingestion_schedule": "rate(1 hour)"}
    assert "ingestion_schedule: is not used with vector_store: kendra" in refused(tmp_path, tuned)
    bare = {"name": "xy", "description": "d"}
    assert "embedding_model: is required with vector_store: s3_vectors" in refused(tmp_path, bare)


def test_kendra_is_refused_where_aws_offers_no_genai_index(tmp_path):
    message = refused(tmp_path, KENDRA_KB, region="ap-northeast-1")
    assert "'kendra' needs a Kendra GenAI index, which ap-northeast-1 does not offer" in message
    assert "ap-southeast-2, eu-west-1, us-east-1, us-west-2" in message


@pytest.fixture(scope="module")
def template() -> dict:
    app = App()
    stack = Stack(app, "Kb", env=Environment(account=ACCOUNT, region=REGION))
    key = kms.Key(stack, "Key")
    bucket = s3.Bucket(stack, "Data")
    storage = KendraStorage(index_arn=INDEX_ARN)
    role = KnowledgeBaseRole(
        stack,
        "Role",
        name="service-manuals",
        embedding_model_id=None,
        storage=storage,
        data_bucket=bucket,
        prefix="knowledge-bases/service-manuals/",
        encryption_key=key,
    ).role
    KnowledgeBase(
        stack,
        "Kb",
        name="p-service-manuals",
        description="d",
        embedding_model_id=None,
        dimensions=None,
        storage=storage,
        role=role,
        data_bucket=bucket,
        prefix="knowledge-bases/service-manuals/",
        chunking=load_profile("utility-assistant").bedrock.knowledge_bases[0].chunking,
        encryption_key=key,
    )
    return Template.from_stack(stack).to_json()


def test_the_knowledge_base_is_kendra_typed_with_no_data_source_or_vector_store(template):
    (kb,) = [
        r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::Bedrock::KnowledgeBase"
    ]
    assert kb["KnowledgeBaseConfiguration"] == {
        "Type": "KENDRA",
        "KendraKnowledgeBaseConfiguration": {"KendraIndexArn": INDEX_ARN},
    }
    assert "StorageConfiguration" not in kb
    assert not [r for r in template["Resources"].values() if r["Type"] == "AWS::Bedrock::DataSource"]


def test_the_role_may_only_retrieve_from_its_index(template):
    (policy,) = [
        r["Properties"]["PolicyDocument"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy"
    ]
    role = f"arn:aws:iam::{ACCOUNT}:role/kb"
    other = f"arn:aws:kendra:{REGION}:{ACCOUNT}:index/ffffffff-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
    rows = [
        ("kendra:Retrieve", INDEX_ARN, True),
        ("kendra:DescribeIndex", INDEX_ARN, True),
        ("kendra:Retrieve", other, False),
        ("kendra:BatchPutDocument", INDEX_ARN, False),  # the index's documents are not the role's
        (
            "bedrock:InvokeModel",
            f"arn:aws:bedrock:{REGION}::foundation-model/amazon.titan-embed-text-v2:0",
            False,
        ),
        ("s3:GetObject", "arn:aws:s3:::data/knowledge-bases/service-manuals/a.pdf", False),
    ]
    wrong = [
        (action, resource)
        for action, resource, allowed in rows
        if evaluate(Request(role, action, resource), [Policy("kb", json.loads(json.dumps(policy)))]).allowed
        != allowed
    ]
    assert not wrong


def test_a_profile_whose_only_knowledge_base_is_on_kendra_has_no_spend_cap_to_apply(tmp_path):
    """The spend cap denies model invocation to the gateway and the knowledge bases' roles; a Kendra
    knowledge base's role invokes no model."""
    document = yaml.safe_load((PROFILES_DIR / "utility-assistant.yaml").read_text(encoding="utf-8"))
    for section in ("gateway", "assistant"):
        document.pop(section)
    document["bedrock"]["knowledge_bases"] = [KENDRA_KB]
    document["budget"]["stop_invocations"] = {"at_percent": 100, "approval": "automatic"}
    path = tmp_path / "kendra-only.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ProfileError) as raised:
        load_profile(str(path))
    assert "budget.stop_invocations: has no role to stop" in str(raised.value)


def test_smoke_ingests_into_vector_knowledge_bases_only(tmp_path):
    from genai_stack.cli import smoke

    profile = profile_with(tmp_path, KENDRA_KB)

    class Deployed:
        def __init__(self, name, resources, physical):
            self.name, self.resources, self.physical = name, resources, physical

        def of_type(self, kind):
            return [(k, r) for k, r in self.resources.items() if r["Type"] == kind]

    foundation = Deployed(
        "utility-assistant-foundation",
        {"DataBucketE1": {"Type": "AWS::S3::Bucket"}},
        {"DataBucketE1": "data"},
    )
    bedrock = Deployed(
        "utility-assistant-bedrock",
        {
            f"Kb{n}": {
                "Type": "AWS::Bedrock::KnowledgeBase",
                "Properties": {"Name": f"utility-assistant-{n}"},
            }
            for n in ("service-faq", "service-manuals")
        },
        {"Kbservice-faq": "KB1", "Kbservice-manuals": "KB2"},
    )
    targets = smoke.knowledge_base_targets(profile, [foundation, bedrock])
    assert [t.name for t in targets] == ["service-faq"]


@pytest.fixture(scope="module")
def kendra_variant(tmp_path_factory):
    """utility-assistant with a second knowledge base on a Kendra index, synthesized through the real
    stacks (cdk-nag runs in the synthesis)."""
    from genai_stack.cli.synth import synthesize

    directory = tmp_path_factory.mktemp("kendra")
    document = yaml.safe_load((PROFILES_DIR / "utility-assistant.yaml").read_text(encoding="utf-8"))
    document["name"] = "kendra-variant"
    document["bedrock"]["knowledge_bases"].append(KENDRA_KB)
    document["gateway"]["knowledge_bases"].append(KENDRA_KB["name"])
    path = directory / "kendra-variant.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    (synthesis,) = synthesize(str(path), directory / "cdk.out")
    return synthesis.templates


def test_through_the_stacks_the_kendra_knowledge_base_has_its_index_and_no_ingestion(kendra_variant):
    bedrock = kendra_variant["kendra-variant-bedrock"]["Resources"]
    kbs = {
        r["Properties"]["Name"]: r["Properties"]
        for r in bedrock.values()
        if r["Type"] == "AWS::Bedrock::KnowledgeBase"
    }
    kendra = kbs["kendra-variant-service-manuals"]["KnowledgeBaseConfiguration"]
    assert kendra["Type"] == "KENDRA"
    arn = json.dumps(kendra["KendraKnowledgeBaseConfiguration"]["KendraIndexArn"])
    assert f":kendra:{REGION}:" in arn
    assert f":index/{INDEX_ID}" in arn
    assert kbs["kendra-variant-service-faq"]["KnowledgeBaseConfiguration"]["Type"] == "VECTOR"
    sources = [r for r in bedrock.values() if r["Type"] == "AWS::Bedrock::DataSource"]
    assert len(sources) == 1  # service-faq's only
    ingestion = [
        r["Properties"]["Environment"]["Variables"]["KNOWLEDGE_BASES"]
        for r in bedrock.values()
        if r["Type"] == "AWS::Lambda::Function"
        and "KNOWLEDGE_BASES" in json.dumps(r["Properties"].get("Environment", {}))
    ]
    assert ingestion
    assert "service-manuals" not in json.dumps(ingestion)
    foundation = json.dumps(kendra_variant["kendra-variant-foundation"])
    assert "service-manuals" not in foundation  # no vector index, no retired 0.1 role
    orchestration = json.dumps(kendra_variant["kendra-variant-orchestration"])
    assert "service-manuals" in orchestration  # the gateway may ground on it
