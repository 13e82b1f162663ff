"""Helpers the tests share."""

from pathlib import Path

# The checkout the tests run in (the package's own paths are genai_stack.PROFILES_DIR and LAMBDAS_DIR).
REPO_ROOT = Path(__file__).resolve().parents[2]
