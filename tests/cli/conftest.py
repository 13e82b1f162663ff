"""Fixtures of the CLI tests."""

from __future__ import annotations

import pytest

from tests.support.stubs import Stubs


@pytest.fixture
def stubs():
    """Stubbed clients per (service, region); the test fails if a queued answer was never asked for."""
    found = Stubs()
    yield found
    found.verify()
