"""Signal contract: every alarm and dashboard metric of every built-in profile has an emitter, and
every metric our code emits is read.

Why: an alarm on an identity nobody publishes never fires, and a widget on one stays empty, while the
templates, cdk-nag and cfn-lint all look fine (issue 20: Powertools' `service` dimension made the
knowledge-base and rollout alarms watch nothing). Readers come from the synthesized templates
(readers.py), AWS's own metrics from AWS's documentation (aws_metrics.json, each entry with its
page), ours from running the emitting code with the template's environment (emitters.py).

An emitted metric nothing reads fails too, unless EXPLORATORY lists it with a reason (custom metrics
are paid per series: read it, stop publishing it, or say why it is kept); a stale EXPLORATORY key fails.
"""

from __future__ import annotations

import copy

import pytest

from genai_stack.config import builtin_profile_names
from tests.access.conftest import deployment_of
from tests.signals.conftest import keyed, readers_of
from tests.signals.contract import check, reads
from tests.signals.emitters import Emitted
from tests.signals.readers import Identity

PROFILES = builtin_profile_names()

# emitted shape key -> why it is published although nothing reads it (kept for ad-hoc analysis)
EXPLORATORY: dict[str, str] = {}


def shape_key(profile: str, emitted: Emitted) -> str:
    identity = emitted.identity
    return f"{profile}/{identity.namespace}/{identity.name}{{{', '.join(sorted(identity.dimension_names))}}}"


def _failures(profile, readers, deployment, emitted, *, only=None, skip=()) -> list[str]:
    failures = []
    for key, reader in readers.items():
        if key in skip or (only is not None and key != only):
            continue
        why = check(reader.read, deployment, emitted)
        if why:
            failures.append(f"{profile} / {reader.stack} / {reader.where}: {reader.read}\n    {why}")
    return failures


@pytest.mark.parametrize("profile", PROFILES)
def test_every_alarm_and_widget_metric_has_an_emitter(profile, readers, emitted, signal_deployments):
    assert readers[profile], f"{profile}: no alarm or widget metric found (extraction broke?)"
    failures = _failures(profile, readers[profile], signal_deployments[profile], emitted[profile])
    assert not failures, "metrics read that nothing emits:\n" + "\n".join(failures)


def _unread(profile, readers, emitted) -> dict[str, Emitted]:
    result = {}
    for item in emitted:
        shape = (item.identity.namespace, item.identity.name, item.identity.dimension_names)
        if not any(reads(reader.read, shape) for reader in readers.values()):
            result.setdefault(shape_key(profile, item), item)
    return result


@pytest.mark.parametrize("profile", PROFILES)
def test_every_emitted_metric_is_read(profile, readers, emitted):
    unread = _unread(profile, readers[profile], emitted[profile])
    unexplained = {k: v for k, v in unread.items() if k not in EXPLORATORY}
    assert not unexplained, "emitted, read by no alarm or widget, not EXPLORATORY:\n" + "\n".join(
        f"{key} by {item.emitter}" for key, item in unexplained.items()
    )


def test_exploratory_keys_name_emitted_metrics(emitted):
    shapes = {shape_key(profile, item) for profile, items in emitted.items() for item in items}
    stale = [key for key in EXPLORATORY if key not in shapes]
    assert not stale, f"EXPLORATORY keys that name nothing emitted: {stale}"


def test_every_profile_emits_something_of_its_own(emitted):
    """The exercises must capture: a profile with alarms on our namespaces but no capture is broken."""
    for profile in PROFILES:
        assert any(not e.identity.namespace.startswith(("AWS/", "/aws/")) for e in emitted[profile]), profile


# -------------------------------------------------------------------------- the checker can fail
def _passing_alarm_with_dimensions(profile, readers, deployment, emitted):
    for reader in readers.values():
        identity = reader.read
        if (
            not reader.where.startswith("Dashboard")
            and isinstance(identity, Identity)
            and len(identity.dimensions) >= 2
            and check(identity, deployment, emitted) is None
        ):
            return reader
    raise AssertionError(f"{profile}: no passing alarm with two dimensions to mutate")


@pytest.mark.parametrize("profile", ["managed-api", "custom-model"])
def test_removing_a_dimension_from_an_alarm_is_found(
    profile, synthesized, readers, emitted, signal_deployments
):
    deployment = signal_deployments[profile]
    reader = _passing_alarm_with_dimensions(profile, readers[profile], deployment, emitted[profile])
    templates = copy.deepcopy(synthesized.templates[profile])
    props = templates[reader.stack]["Resources"][reader.where]["Properties"]
    dimensions = (
        props["Dimensions"]
        if "Dimensions" in props
        else props["Metrics"][1]["MetricStat"]["Metric"]["Dimensions"]
    )
    dimensions.pop()
    mutated = deployment_of(synthesized, profile, templates)
    changed = keyed(readers_of(synthesized, profile, mutated, templates))
    failures = _failures(profile, changed, mutated, emitted[profile], only=reader.key)
    assert failures, f"{reader.key} without a dimension still passed"
    assert "dimension" in failures[0].lower(), failures


def test_renaming_an_emitted_metric_is_found(readers, emitted, signal_deployments):
    profile = "managed-api"
    ours = [e for e in emitted[profile] if e.identity.namespace == "GenAiStack/Gateway"]
    assert ours, "the gateway's EMF was not captured"
    renamed = [
        Emitted(Identity(e.identity.namespace, e.identity.name + "Renamed", e.identity.dimensions), e.emitter)
        if e.identity.name == "InputTokens"
        else e
        for e in emitted[profile]
    ]
    deployment = signal_deployments[profile]
    before = _failures(profile, readers[profile], deployment, emitted[profile])
    after = _failures(profile, readers[profile], deployment, renamed)
    assert not before
    assert any("InputTokens" in f for f in after), after
    assert any("InputTokensRenamed" in key for key in _unread(profile, readers[profile], renamed))
