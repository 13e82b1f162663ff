"""What a run sends Bedrock (stacks/planning/evaluation.py): each set in Bedrock's dataset format, and
each planned job as a CreateEvaluationJob request that botocore's model of the API accepts."""

from __future__ import annotations

import json

import pytest
from botocore.stub import Stubber

from genai_stack.config import load_profile
from genai_stack.planning.evaluation import bedrock_dataset, create_request, plan
from tests.support.stubs import offline_client

ROLE = "arn:aws:iam::123456789012:role/managed-api-evaluation"
OUTPUT = "s3://managed-api-data-123456789012/evaluation/output/"
PROFILE = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6"


@pytest.fixture(scope="module")
def managed_api():
    return load_profile("managed-api")


def requests(profile) -> list[dict]:
    made = []
    for index, job in enumerate(plan(profile).jobs):
        made.append(
            create_request(
                job,
                job_name=f"e{index}-0f8fad5b-d9cb-469f-a165-70867728950e",
                role_arn=ROLE,
                dataset_uri=f"s3://cdk-hnb659fds-assets-123456789012-us-east-1/{index}.jsonl",
                output_uri=OUTPUT,
                model=PROFILE if job.kind == "model" else None,
                knowledge_base_id="KB12345678" if job.kind == "knowledge_base" else None,
                generator="amazon.nova-lite-v1:0" if job.evaluation == "facts-rag" else None,
                guardrail=("abcdef123456", "3") if job.evaluation == "facts-rag" else None,
                tags={"genai-stack:profile": "managed-api", "evaluation": job.evaluation},
            )
        )
    return made


def test_every_request_is_one_bedrock_accepts_by_its_api_model(managed_api):
    client = offline_client("bedrock")
    with Stubber(client) as stubber:  # the Stubber validates each request against the service model
        for request in requests(managed_api):
            stubber.add_response(
                "create_evaluation_job",
                {"jobArn": "arn:aws:bedrock:us-east-1:123456789012:evaluation-job/abcdefgh1234"},
                request,
            )
            client.create_evaluation_job(**request)
        stubber.assert_no_pending_responses()


def test_the_requests_carry_the_profile_s_metrics_judge_and_targets(managed_api):
    copy, _, rag, retrieval, traffic, _ = requests(managed_api)
    automated = copy["evaluationConfig"]["automated"]
    assert automated["evaluatorModelConfig"] == {
        "bedrockEvaluatorModels": [{"modelIdentifier": "us.anthropic.claude-haiku-4-5-20251001-v1:0"}]
    }
    (metrics,) = automated["datasetMetricConfigs"]
    assert metrics["metricNames"] == [
        "Builtin.Correctness",
        "Builtin.FollowingInstructions",
        "Builtin.ProfessionalStyleAndTone",
        "Builtin.Harmfulness",
    ]
    assert copy["inferenceConfig"] == {"models": [{"bedrockModel": {"modelIdentifier": PROFILE}}]}
    generate = rag["inferenceConfig"]["ragConfigs"][0]["knowledgeBaseConfig"]["retrieveAndGenerateConfig"]
    assert generate["knowledgeBaseConfiguration"]["generationConfiguration"] == {
        "guardrailConfiguration": {"guardrailId": "abcdef123456", "guardrailVersion": "3"}
    }
    assert rag["applicationType"] == "RagEvaluation"
    retrieve = retrieval["inferenceConfig"]["ragConfigs"][0]["knowledgeBaseConfig"]["retrieveConfig"]
    assert retrieve["knowledgeBaseRetrievalConfiguration"] == {
        "vectorSearchConfiguration": {"numberOfResults": 5}
    }
    # The sampled traffic's answers are in its dataset: Bedrock invokes only the judge.
    assert traffic["applicationType"] == "ModelEvaluation"
    assert traffic["inferenceConfig"] == {
        "models": [
            {
                "precomputedInferenceSource": {
                    "inferenceSourceIdentifier": "copywriter.us.anthropic.claude-haiku-4-5-20251001-v1-0"
                }
            }
        ]
    }
    assert (
        traffic["evaluationConfig"]["automated"]["evaluatorModelConfig"] == automated["evaluatorModelConfig"]
    )


def test_sets_become_bedrock_datasets(managed_api):
    evaluation = managed_api.evaluation
    template = {p.name: p for p in managed_api.bedrock.prompts}["campaign-copy"].text
    copy = bedrock_dataset(evaluation.set_named("campaign-copy").rows, kind="model", template_text=template)
    assert set(copy[0]) == {"prompt", "referenceResponse", "category"}
    assert copy[0]["category"] == "savings|en"
    assert "{{" not in copy[0]["prompt"]  # the template, filled in with the row's variables
    assert "2.1% p.a." in copy[0]["prompt"]
    rows = evaluation.set_named("product-facts").rows
    facts = bedrock_dataset(rows, kind="knowledge_base")
    assert rows[3].language == "zh-Hant"
    assert facts[3] == {
        "conversationTurns": [
            {
                "prompt": {"content": [{"text": rows[3].prompt}]},
                "referenceResponses": [{"content": [{"text": rows[3].reference}]}],
            }
        ]
    }
    assert all(json.dumps(line, ensure_ascii=False) for line in facts)
