"""Runs last (tests/conftest.py orders it): every boto3 call the Lambda unit tests made from our
Lambda code (recorded by tests/access/recording.py) has access rows, i.e. its operation is declared
by the package's row family, which test_coverage.py checks has rows in the built-in profiles."""

from __future__ import annotations

import pytest

from tests.access.recording import RECORDING
from tests.access.rows import lambda_packages


def test_every_recorded_lambda_call_has_access_rows():
    if RECORDING.lambda_tests_run == 0:
        pytest.skip("no test under tests/lambdas ran in this session, so no Lambda boto3 call was recorded")
    families = lambda_packages()
    missing = sorted(
        f"lambdas/{package}: {service}.{operation}"
        for package, service, operation in RECORDING.calls
        if package not in families or f"{service}.{operation}" not in families[package].APIS
    )
    assert not missing, (
        "boto3 calls made by Lambda code without access rows (tests/access/rows/):\n" + "\n".join(missing)
    )
