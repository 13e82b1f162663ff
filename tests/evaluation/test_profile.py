"""The evaluation section (stacks/profile/evaluation.py): sets are JSONL files next to the profile, and
every problem of a set names its file, line and field; evaluations must name what the profile has."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from genai_stack.config import ProfileError, load_profile
from tests.support import REPO_ROOT

PROFILES = REPO_ROOT / "profiles"


def copy_of_managed_api(tmp_path: Path) -> Path:
    """managed-api with its prompts and evaluation sets, in a folder of the test's own."""
    for folder in ("prompts/managed-api", "evaluation/managed-api"):
        shutil.copytree(PROFILES / folder, tmp_path / folder)
    shutil.copy(PROFILES / "managed-api.yaml", tmp_path / "managed-api.yaml")
    return tmp_path / "managed-api.yaml"


def edit(path: Path, change) -> None:
    document = yaml.safe_load(path.read_text())
    change(document)
    path.write_text(yaml.safe_dump(document, allow_unicode=True))


def error_of(path: Path) -> str:
    with pytest.raises(ProfileError) as caught:
        load_profile(str(path))
    return str(caught.value)


def test_managed_api_s_sets_load_with_their_rows():
    evaluation = load_profile("managed-api").evaluation
    copy, facts = evaluation.sets
    assert (len(copy.rows), len(facts.rows)) == (6, 7)
    assert {r.language for r in facts.rows} == {"en", "zh-Hant"}
    assert all(r.variables and r.reference for r in copy.rows)


def test_every_bad_row_is_reported_by_file_line_and_field(tmp_path):
    path = copy_of_managed_api(tmp_path)
    rows = tmp_path / "evaluation/managed-api/product-facts.jsonl"
    lines = rows.read_text(encoding="utf-8").splitlines()
    lines[1] = '{"prompt": "ok", "reference": "ok", "category": "has space"}'
    lines[3] = "not json"
    lines[4] = '{"prompt": "ok", "answer": "?"}'
    lines[5] = '{"reference": "no prompt"}'
    lines[6] = "[1, 2]"
    rows.write_text("\n".join(lines) + "\n", encoding="utf-8")
    message = error_of(path)
    where = "evaluation.sets[1].file: evaluation/managed-api/product-facts.jsonl"
    for expected in (
        f"{where}:2: category: String should match pattern",
        f"{where}:4: not a JSON object (Expecting value)",
        f"{where}:5: answer: is not a field of a row (prompt, variables, reference, category, language)",
        f"{where}:6: gives exactly one of prompt (the question as sent) or variables (a template's)",
        f"{where}:7: not a JSON object (a list)",
    ):
        assert expected in message, message


def test_a_missing_set_file_is_named(tmp_path):
    path = copy_of_managed_api(tmp_path)
    (tmp_path / "evaluation/managed-api/campaign-copy.jsonl").unlink()
    assert "evaluation.sets[0].file: 'evaluation/managed-api/campaign-copy.jsonl' cannot be read" in error_of(
        path
    )


def test_evaluations_name_what_the_profile_has_and_rows_carry_what_they_need(tmp_path):
    path = copy_of_managed_api(tmp_path)

    def change(document):
        evaluation = document["evaluation"]
        evaluation["judge"] = "apac.amazon.nova-pro-v1:0"  # known, but not callable from us-east-1
        evaluation["models"][0].update(alias="nope", prompt="nope")
        evaluation["knowledge_bases"][0]["knowledge_base"] = "nope"

    edit(path, change)
    message = error_of(path)
    assert (
        "evaluation.judge: 'apac.amazon.nova-pro-v1:0' is neither listed under bedrock.models or "
        "inference_profiles nor a model or inference profile of the catalog that us-east-1 can call"
    ) in " ".join(message.split())
    assert "evaluation.models[0].alias: 'nope' is not a gateway alias" in message
    assert "evaluation.models[0].prompt: 'nope' is not a name of bedrock.prompts (campaign-copy)" in message
    assert (
        "evaluation.knowledge_bases[0].knowledge_base: 'nope' is not a name of bedrock.knowledge_bases"
        in message
    )


def test_a_metric_must_fit_the_evaluation_s_mode(tmp_path):
    path = copy_of_managed_api(tmp_path)
    edit(
        path,
        lambda d: d["evaluation"]["knowledge_bases"][1].update(metrics=["context_relevance", "faithfulness"]),
    )
    message = error_of(path)
    assert "evaluation.knowledge_bases[1].metrics: faithfulness: not a retrieve metric; allowed: " in message
    assert "context_relevance, context_coverage" in message


def test_the_citation_metrics_go_together(tmp_path):
    path = copy_of_managed_api(tmp_path)
    edit(
        path,
        lambda d: d["evaluation"]["knowledge_bases"][0].update(
            metrics=["faithfulness", "citation_precision"]
        ),
    )
    assert (
        "evaluation.knowledge_bases[0].metrics: citation_precision and citation_coverage go together"
        in error_of(path)
    )


def test_a_row_without_a_reference_is_refused_where_a_metric_needs_one(tmp_path):
    """context_coverage (facts-retrieval) needs ground truth; the judge metrics take a reference where
    one is given, so correctness does not refuse a row without one."""
    path = copy_of_managed_api(tmp_path)
    rows = tmp_path / "evaluation/managed-api/product-facts.jsonl"
    first, *rest = rows.read_text(encoding="utf-8").splitlines()
    row = json.loads(first)
    del row["reference"]
    rows.write_text("\n\n" + "\n".join([json.dumps(row), *rest]) + "\n", encoding="utf-8")
    message = error_of(path)
    assert (
        "evaluation.knowledge_bases[1]: evaluation/managed-api/product-facts.jsonl:3 (set 'product-facts'): "
        "has no reference, which context_coverage need"
    ) in message  # its line in the file (two blank lines before it)
    assert "knowledge_bases[0]" not in message


def test_a_template_s_variables_must_all_be_given(tmp_path):
    path = copy_of_managed_api(tmp_path)
    rows = tmp_path / "evaluation/managed-api/campaign-copy.jsonl"
    first, *rest = rows.read_text(encoding="utf-8").splitlines()
    row = json.loads(first)
    del row["variables"]["facts"]
    rows.write_text("\n".join([json.dumps(row), *rest]) + "\n", encoding="utf-8")
    assert (
        "evaluation.models[0]: evaluation/managed-api/campaign-copy.jsonl:1 (set 'campaign-copy'): "
        "prompt 'campaign-copy' needs variables facts"
    ) in error_of(path)


def test_algorithmic_and_judge_metrics_are_separate_evaluations(tmp_path):
    path = copy_of_managed_api(tmp_path)
    edit(path, lambda d: d["evaluation"]["models"][0].update(metrics=["toxicity"]))
    assert "Bedrock runs them as different job types (a judge model or none)" in error_of(path)


def test_a_traffic_evaluation_needs_logs_a_pii_policy_and_a_model_evaluation_to_compare_with(tmp_path):
    path = copy_of_managed_api(tmp_path)

    def change(document):
        bedrock = document["bedrock"]
        bedrock["invocation_logging"]["text"] = False
        bedrock["guardrail"]["pii_entities"] = []
        bedrock["guardrail"]["regexes"] = []
        document["evaluation"]["traffic"][0].update(
            compare_with="facts-rag", judge_metrics=["harmfulness", "correctness"]
        )

    edit(path, change)
    message = error_of(path)
    assert (
        "evaluation.traffic[0].judge_metrics: correctness: not a metric for logged traffic (it has no "
        "reference answer)" in message
    )
    edit(path, lambda d: d["evaluation"]["traffic"][0].update(judge_metrics=["harmfulness", "coherence"]))
    message = error_of(path)
    assert "bedrock.invocation_logging needs enabled and text" in message
    assert "bedrock.guardrail needs pii_entities or regexes" in message
    assert (
        "evaluation.traffic[0].compare_with: 'facts-rag' is not a model evaluation (copy-quality)" in message
    )
    edit(path, lambda d: d["evaluation"]["traffic"][0].update(compare_with="copy-quality"))
    message = error_of(path)
    assert "evaluation.traffic[0].judge_metrics: coherence: not scored by 'copy-quality'" in message


def test_a_traffic_evaluation_compares_within_one_alias(tmp_path):
    path = copy_of_managed_api(tmp_path)
    edit(path, lambda d: d["evaluation"]["traffic"][0].update(alias="drafts"))
    assert (
        "evaluation.traffic[0].compare_with: 'copy-quality' evaluates alias 'copywriter', not 'drafts'"
        in error_of(path)
    )


def copy_of_custom_model(tmp_path: Path) -> Path:
    shutil.copytree(PROFILES / "evaluation/custom-model", tmp_path / "evaluation/custom-model")
    shutil.copy(PROFILES / "custom-model.yaml", tmp_path / "custom-model.yaml")
    return tmp_path / "custom-model.yaml"


def gate_of(document: dict) -> dict:
    return document["training"]["pipelines"][0]["evaluation_gate"]


def test_a_gate_needs_the_evaluation_section_and_names_its_set(tmp_path):
    path = copy_of_custom_model(tmp_path)
    edit(path, lambda d: gate_of(d).update(set="nope"))
    assert (
        "training.pipelines[0].evaluation_gate.set: 'nope' is not a name of evaluation.sets (support-questions)"
        in error_of(path)
    )
    edit(path, lambda d: (gate_of(d).update(set="support-questions"), d.pop("evaluation")))
    assert "training.pipelines[0].evaluation_gate: needs the evaluation section" in error_of(path)


def test_a_gate_s_thresholds_are_scores_of_its_metrics(tmp_path):
    path = copy_of_custom_model(tmp_path)
    edit(path, lambda d: gate_of(d).update(thresholds={"coherence": 0.5, "correctness": 2}))
    message = error_of(path)
    assert "thresholds.coherence: is not one of judge_metrics" in message
    assert "thresholds.correctness: 2.0 is not a score (0 to 1)" in message


def test_a_gate_s_requests_must_fit_the_endpoint_it_answers_in(tmp_path):
    """support-llm serves 8,192 tokens: a prompt and 8,192 tokens of answer do not fit."""
    path = copy_of_custom_model(tmp_path)
    edit(path, lambda d: gate_of(d).update(max_tokens=8192))
    assert "does not fit the first deploy_to endpoint 'support-llm''s max_model_len of 8192" in error_of(path)


def test_a_gate_runs_in_a_gpu_container_on_a_transform_instance():
    """An Inferentia2 container compiles the model when it starts; a transform takes only its types."""
    from types import SimpleNamespace

    from genai_stack.profile.evaluation import EvaluationGate, _endpoint_problems, transform_instance_types

    gate = EvaluationGate(set="support-questions", judge_metrics=["correctness"])
    neuron = SimpleNamespace(
        name="inf2", container="lmi-neuron", instance_type="ml.inf2.8xlarge", max_model_len=4096
    )
    (problem,) = _endpoint_problems("gate", gate, neuron, None, lambda *t: 0)
    assert "lmi-neuron compiles the model when it starts" in problem
    assert "ml.g6.2xlarge" in transform_instance_types()
    odd = SimpleNamespace(name="x", container="lmi", instance_type="ml.nonesuch.xlarge", max_model_len=4096)
    (problem,) = _endpoint_problems("gate", gate, odd, None, lambda *t: 0)
    assert "ml.nonesuch.xlarge is not a batch transform instance type" in problem
