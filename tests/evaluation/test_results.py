"""Reading evaluation job output (lambdas/evaluation/results.py) on sample files: the line format the
Bedrock user guide documents ("Review model evaluation job reports and metrics in Amazon S3"), and
the judge and knowledge-base variants (a Builtin. prefix, null scores, scores per conversation turn)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambdas.evaluation.results import (
    ALL,
    Drop,
    OutputError,
    Scores,
    bedrock_category,
    drops,
    read_output,
    report,
    split_category,
)

SAMPLES = Path(__file__).parent / "samples"


def read(name: str, scores: Scores | None = None) -> Scores:
    path = SAMPLES / name
    return read_output(path.read_text(encoding="utf-8").splitlines(), source=name, scores=scores)


def test_the_documented_format_gives_means_overall_and_per_category():
    scores = read("automated_output.jsonl")
    assert scores.rows == 2
    assert scores.mean("Accuracy") == pytest.approx((0.31920555233955383 + 0.75) / 2)
    assert scores.mean("Accuracy", "cards", "en") == 0.75
    assert scores.mean("Accuracy", "savings", ALL) == pytest.approx(0.31920555233955383)


def test_judge_scores_drop_the_builtin_prefix_and_count_a_null_as_unscored_not_zero():
    scores = read("judge_output.jsonl")
    assert scores.overall() == {"Correctness": 0.75, "Harmfulness": 0.0}
    assert scores.unscored == {"Harmfulness": 1}
    assert scores.mean("Correctness", "savings", "zh-Hant") == 0.5


def test_knowledge_base_scores_per_turn_are_read():
    """A RAG dataset has no category field (its rows are conversation turns): all in general/und."""
    scores = read("rag_output.jsonl")
    assert scores.overall() == {"CitationPrecision": 0.5, "Faithfulness": 1.0}
    assert scores.mean("Faithfulness", "general", "und") == 1.0


def test_files_of_one_job_add_up():
    scores = read("judge_output.jsonl", read("automated_output.jsonl"))
    assert scores.rows == 4
    assert set(scores.overall()) == {"Accuracy", "Correctness", "Harmfulness"}


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("not json", "not JSON"),
        ("[1]", "not a JSON object"),
        ('{"inputRecord": {}}', "holds no scores"),
        ('{"automatedEvaluationResult": {"scores": [{"result": 1}]}}', "a score without a metricName"),
    ],
)
def test_a_line_out_of_format_names_its_file_and_line(line, why):
    with pytest.raises(OutputError, match=f"^out.jsonl:2: {why}"):
        read_output(
            [
                '{"automatedEvaluationResult": {"scores": []}, "conversationTurns": [{"results": [{"metricName": "X", "result": 1}]}]}',
                line,
            ],
            source="out.jsonl",
        )


def test_a_drop_beyond_the_tolerance_is_found_and_harm_counts_upward():
    accepted = {"Correctness": 0.80, "Harmfulness": 0.02, "Completeness": 0.7}
    now = {"Correctness": 0.74, "Harmfulness": 0.10, "Completeness": 0.66, "Faithfulness": 0.9}
    assert drops(now, accepted, 0.05) == [Drop("Correctness", 0.80, 0.74), Drop("Harmfulness", 0.02, 0.10)]
    assert drops(now, {}, 0.05) == []  # no accepted run yet: nothing to fall from
    assert drops({"Correctness": 0.75}, accepted, 0.05) == []  # exactly the tolerance is not beyond it
    # Robustness is a change in quality under perturbation: lower is more robust.
    assert drops({"Robustness": 0.10}, {"Robustness": 0.20}, 0.05) == []
    assert drops({"Robustness": 0.30}, {"Robustness": 0.20}, 0.05) == [Drop("Robustness", 0.20, 0.30)]


def test_the_report_shows_each_metric_against_the_accepted_run():
    scores = read("judge_output.jsonl")
    text = report(job="copy-quality", target="amazon.nova-lite-v1:0", scores=scores,
                  accepted={"Correctness": 0.9}, tolerance=0.05)  # fmt: skip
    assert "| Correctness | 0.750 | 0.900 | -0.150 | DROP |" in text
    assert "| Harmfulness | 0.000 | - | - | new |" in text
    assert "| Correctness | savings | zh-Hant | 0.500 | 1 |" in text
    assert "Unscored (the judge returned no score): Harmfulness 1" in text


def test_category_and_language_travel_in_bedrock_s_category_field():
    assert split_category(bedrock_category("cards", "zh-Hant")) == ("cards", "zh-Hant")
    assert split_category(None) == ("general", "und")
