"""Pages with a block generated from the code (`make docs-cost` and friends): the block between its
markers must be what the code makes now; with WRITE_COST_DOCS=1 the test rewrites it first."""

from __future__ import annotations

import os
import re
from pathlib import Path


def check_generated_block(
    page: Path, start: str, end: str, content: str, *, env: str = "WRITE_COST_DOCS"
) -> None:
    text = page.read_text(encoding="utf-8")
    block = f"{start}\n{content}\n{end}"
    pattern = re.compile(re.escape(start) + r"\n.*?\n" + re.escape(end), re.DOTALL)
    assert len(pattern.findall(text)) == 1, f"{page} needs one {start} ... {end} block"
    if os.environ.get(env) == "1":
        page.write_text(pattern.sub(lambda _: block, text), encoding="utf-8")
        text = page.read_text(encoding="utf-8")
    assert pattern.search(text).group(0) == block, f"{page} is stale: run `make docs-cost`"
