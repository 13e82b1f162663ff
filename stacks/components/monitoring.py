"""MonitoringHub: how every stack of a profile contributes dashboard widgets and alarms.

The stage creates one hub per profile, right after the foundation (it needs the alarm topic), and
hands it to every stack. Stacks create their alarms in their own scope and register them here; the
observability stack, built last, renders the profile's one dashboard from what was registered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_sns as sns
from constructs import Construct


@dataclass(frozen=True)
class DashboardSection:
    title: str
    widgets: tuple[cloudwatch.IWidget, ...]


class MonitoringHub:
    """Collects dashboard sections and alarms; alarms notify the profile's alarm topic."""

    def __init__(self, *, alarm_topic: sns.ITopic) -> None:
        self.alarm_topic = alarm_topic
        self._sections: list[DashboardSection] = []
        self._alarms: list[cloudwatch.IAlarm] = []

    @property
    def sections(self) -> tuple[DashboardSection, ...]:
        return tuple(self._sections)

    @property
    def alarms(self) -> tuple[cloudwatch.IAlarm, ...]:
        return tuple(self._alarms)

    def add_section(self, title: str, widgets: Sequence[cloudwatch.IWidget]) -> None:
        """A titled group of widgets on the profile's dashboard."""
        if not widgets:
            raise ValueError(f"dashboard section {title!r} has no widgets")
        if any(section.title == title for section in self._sections):
            raise ValueError(f"dashboard section {title!r} is added twice")
        self._sections.append(DashboardSection(title=title, widgets=tuple(widgets)))

    def alarm(
        self,
        scope: Construct,
        construct_id: str,
        *,
        metric: cloudwatch.IMetric,
        threshold: float,
        description: str,
        missing: cloudwatch.TreatMissingData,
        periods: int = 1,
    ) -> cloudwatch.Alarm:
        """An alarm on `metric` reaching `threshold` (>=) in `periods` consecutive periods, added with
        `add_alarm`. `missing` is a choice, not CloudWatch's default: say why beside the call
        (tests/signals/test_alarm_behaviour.py checks every alarm sets it)."""
        created = cloudwatch.Alarm(
            scope,
            construct_id,
            metric=metric,
            threshold=threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=periods,
            alarm_description=description,
            treat_missing_data=missing,
        )
        self.add_alarm(created)
        return created

    def add_alarm(self, alarm: cloudwatch.Alarm) -> None:
        """The alarm notifies the alarm topic on ALARM and OK and shows in the dashboard's status widget."""
        action = cw_actions.SnsAction(self.alarm_topic)
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)
        self._alarms.append(alarm)
