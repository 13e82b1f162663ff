"""docs/operations.md lists every alarm of every built-in profile as deployed (tests/signals/alarm_docs.py).

`make docs-alarms` rewrites the section (WRITE_ALARM_DOCS=1); without it a stale page fails here."""

from __future__ import annotations

import os

from tests.signals import alarm_docs
from tests.signals.contract import aws_table

AWS: dict[tuple[str, str], str] = {}
for namespace, groups in aws_table().items():
    for group in groups:  # the first page that lists a metric names it
        for metric in group["metrics"]:
            AWS.setdefault((namespace, metric), f"AWS: {group['source']['title']}")


def emitters_by_metric(emitted) -> dict[str, dict[tuple[str, str], str]]:
    return {
        profile: {
            **AWS,
            **{
                (e.identity.namespace, e.identity.name): e.emitter.replace(" (", ", ").rstrip(")")
                for e in items
            },
        }
        for profile, items in emitted.items()
    }


def test_every_alarm_metric_has_a_runbook_entry(synthesized):
    table = alarm_docs.rows(synthesized.templates, {})
    missing = sorted({row[2] for row in table if not row[4]})
    assert not missing, (
        f"alarms whose metrics have no RUNBOOK entry in tests/signals/alarm_docs.py: {missing}"
    )


def test_the_operations_page_lists_every_alarm_as_deployed(synthesized, emitted):
    table = alarm_docs.rows(synthesized.templates, emitters_by_metric(emitted))
    assert all("no emitter" not in row[2] for row in table), [r for r in table if "no emitter" in r[2]]
    section = alarm_docs.render(table)
    if os.environ.get("WRITE_ALARM_DOCS") == "1":
        alarm_docs.write(section)
    page = alarm_docs.PAGE.read_text()
    assert alarm_docs.current_section(page) == section, "docs/operations.md is stale: run make docs-alarms"
