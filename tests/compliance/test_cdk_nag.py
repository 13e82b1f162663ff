"""cdk-nag's AWS Solutions pack gates every synthesis; acknowledgements carry reasons."""

from __future__ import annotations

import dataclasses
import re

import pytest
from aws_cdk import Stack, Stage
from aws_cdk import aws_s3 as s3

from genai_stack import compliance
from tests.conftest import cdk_app


def bare_bucket_app(tmp_path, acknowledge: compliance.Acknowledgement | None = None):
    app = cdk_app(tmp_path)
    stack = Stack(Stage(app, "gate-test"), "Stack")
    bucket = s3.Bucket(stack, "Bare", enforce_ssl=True)  # no server access logs: AwsSolutions-S1
    if acknowledge:
        compliance.acknowledge(bucket, acknowledge)
    compliance.enable_checks(app)
    return app


def test_every_builtin_profile_synthesizes_with_the_pack_and_no_open_finding(synthesized):
    # The session synthesis ran build_app("all"), which enables the pack; a finding would have failed it.
    assert synthesized.profiles
    assert (synthesized.outdir / "manifest.json").is_file()


def test_the_gate_is_live_an_unacknowledged_finding_fails_synthesis(tmp_path):
    with pytest.raises(RuntimeError, match=r"(?s)ValidationFailed.*gate-test/Stack/Bare/Resource"):
        bare_bucket_app(tmp_path).synth()
    report = (tmp_path / "validation-report.json").read_text()
    assert '"ruleName": "AwsSolutions-S1"' in report


def test_an_acknowledgement_with_its_reason_clears_exactly_that_finding(tmp_path):
    ack = compliance.Acknowledgement(
        finding="AwsSolutions-S1", reason="A test bucket that receives no requests; nothing to log."
    )
    bare_bucket_app(tmp_path, acknowledge=ack).synth()  # raises if the finding were still open


def test_every_acknowledgement_and_checkov_skip_names_a_finding_and_gives_a_reason():
    entries = [
        v
        for v in vars(compliance).values()
        if isinstance(v, (compliance.Acknowledgement, compliance.CheckovSkip))
    ]
    assert entries, "compliance.py defines no entries at all: this test would check nothing"
    for entry in entries:
        fields = dataclasses.asdict(entry)
        finding = fields.get("finding") or fields.get("check")
        assert re.fullmatch(r"AwsSolutions-[A-Za-z]+\d+(\[.+\])?|CKV2?_AWS_\d+", finding), finding
        assert len(entry.reason.split()) >= 8, f"{finding}: the reason is too short to explain anything"
