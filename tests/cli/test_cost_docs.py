"""Each built-in profile's docs page shows its idle cost exactly as `genai-stack cost` counts it
(stacks/planning/cost.py idle_cost_markdown), between markers, and `genai-stack profiles` reads the same figures
from stacks/data/builtin_profiles.json. `make docs-cost` rewrites both (WRITE_COST_DOCS=1); without it
a stale page or summary fails here."""

from __future__ import annotations

import json
import os

import pytest

from genai_stack.config import builtin_profile_names, load_profile
from genai_stack.planning.cost import (
    BUILTIN_SUMMARY,
    builtin_summary,
    estimate,
    idle_cost_markdown,
    semantic_cache_costs,
    semantic_cache_markdown,
)
from tests.support import REPO_ROOT
from tests.support.generated import check_generated_block

START = "<!-- cost:start (generated from stacks/planning/cost.py; make docs-cost) -->"
END = "<!-- cost:end -->"


@pytest.mark.parametrize("name", builtin_profile_names())
def test_the_profile_page_shows_the_cost_model_s_idle_cost(synthesized, name):
    page = REPO_ROOT / "docs" / "profiles" / f"{name}.md"
    table = idle_cost_markdown(estimate(load_profile(name), synthesized.templates[name]))
    check_generated_block(page, START, END, table)


def test_the_built_in_summary_is_the_cost_model_s(synthesized):
    """The table `genai-stack profiles` prints without synthesis equals the cost model's figures over
    this session's synthesis of every built-in profile."""
    expected = {}
    for name in builtin_profile_names():
        by_stack_name = {
            s.stack_name: synthesized.template(name, s.node.id) for s in synthesized.profiles[name].stacks
        }
        expected[name] = builtin_summary(load_profile(name), by_stack_name)
    text = json.dumps(expected, indent=2, sort_keys=True) + "\n"
    if os.environ.get("WRITE_COST_DOCS") == "1":
        BUILTIN_SUMMARY.write_text(text, encoding="utf-8")
    assert BUILTIN_SUMMARY.read_text(encoding="utf-8") == text, (
        f"{BUILTIN_SUMMARY} is stale: run `make docs-cost`"
    )


SEMANTIC_START = "<!-- semantic-cache-cost:start (generated from stacks/planning/cost.py; make docs-cost) -->"
SEMANTIC_END = "<!-- semantic-cache-cost:end -->"


def test_the_gateway_page_shows_the_semantic_cache_s_arithmetic():
    """docs/gateway.md's semantic cache table: managed-api's drafts (which uses it) and copywriter (for
    comparison), at the cost model's prices, as `genai-stack cost` computes it."""
    costs = semantic_cache_costs(load_profile("managed-api"), aliases=["drafts", "copywriter"])
    check_generated_block(
        REPO_ROOT / "docs" / "gateway.md", SEMANTIC_START, SEMANTIC_END, semantic_cache_markdown(costs)
    )


CROSSOVER_START = "<!-- image-crossover:start (generated from stacks/planning/advisor.py; make docs-cost) -->"
CROSSOVER_END = "<!-- image-crossover:end -->"


def test_the_imagery_page_shows_the_advisor_s_crossover():
    """docs/profiles/product-imagery.md's Bedrock-vs-endpoint table is `genai-stack recommend`'s."""
    from genai_stack.planning.advisor import image_crossover_markdown

    page = REPO_ROOT / "docs" / "profiles" / "product-imagery.md"
    check_generated_block(page, CROSSOVER_START, CROSSOVER_END, image_crossover_markdown())
