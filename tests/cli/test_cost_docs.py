"""Each built-in profile's docs page shows its idle cost exactly as `genai-stack cost` counts it
(stacks/cost.py idle_cost_markdown), between markers. `make docs-cost` rewrites the blocks
(WRITE_COST_DOCS=1); without it a stale page fails here."""

from __future__ import annotations

import os
import re

import pytest

from stacks.config import REPO_ROOT, builtin_profile_names, load_profile
from stacks.cost import estimate, idle_cost_markdown

START = "<!-- cost:start (generated from stacks/cost.py; make docs-cost) -->"
END = "<!-- cost:end -->"
BLOCK = re.compile(re.escape(START) + r"\n.*?\n" + re.escape(END), re.DOTALL)


@pytest.mark.parametrize("name", builtin_profile_names())
def test_the_profile_page_shows_the_cost_model_s_idle_cost(synthesized, name):
    page = REPO_ROOT / "docs" / "profiles" / f"{name}.md"
    text = page.read_text(encoding="utf-8")
    block = f"{START}\n{idle_cost_markdown(estimate(load_profile(name), synthesized.templates[name]))}\n{END}"
    assert len(BLOCK.findall(text)) == 1, f"{page} needs one {START} ... {END} block"
    if os.environ.get("WRITE_COST_DOCS") == "1":
        page.write_text(BLOCK.sub(lambda _: block, text), encoding="utf-8")
        text = page.read_text(encoding="utf-8")
    assert BLOCK.search(text).group(0) == block, f"{page} is stale: run `make docs-cost`"
