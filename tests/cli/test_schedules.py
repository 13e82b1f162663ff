"""Off-hours schedules replayed over a year (stacks/planning/schedules.py): the hours `genai-stack plan`
charges a fleet that scales to zero outside them."""

from __future__ import annotations

import pytest

from genai_stack.planning.schedules import monthly_hours


@pytest.mark.parametrize(
    ("start", "stop", "hours"),
    [
        # 07:00-20:00 on weekdays: 2026 has 261 weekdays, 13 h each, over 12 months.
        ("0 7 * * MON-FRI", "0 20 * * MON-FRI", 261 * 13 / 12),
        ("0 7 * * 1-5", "0 20 * * 1-5", 261 * 13 / 12),  # numbers and names alike
        ("0 8 * * *", "0 18 * * *", 365 * 10 / 12),  # every day
        ("30 6 * * 1-5", "0 19 * * 1-5", 261 * 12.5 / 12),  # minutes count
        ("0 */6 * * *", "0 1/6 * * *", 365 * 4 / 12),  # steps: up 1 h in every 6
        # Up from Monday 07:00 to Friday 20:00, through the nights (109 h a week).
        ("0 7 * * MON", "0 20 * * FRI", None),
        ("0 20 * * MON-FRI", "0 7 * * MON-FRI", 8760 / 12 - 261 * 13 / 12),  # the inverse: off by day
    ],
)
def test_the_hours_a_month_a_scheduled_fleet_is_up(start, stop, hours):
    got = monthly_hours(start, stop)
    if hours is None:  # weekdays through the nights: a bit under 4.35 weeks of 109 h
        assert 109 * 52 / 12 - 5 < got < 109 * 53 / 12
    else:
        assert got == pytest.approx(hours)


def test_a_fleet_up_over_new_year_counts_from_the_first_minute():
    """The year wraps around: a fleet started on 31 December and stopped on 2 January is up on 1 January."""
    assert monthly_hours("0 0 31 12 *", "0 0 2 1 *") == pytest.approx((24 + 24) / 12)


@pytest.mark.parametrize("cron", ["0 25 * * *", "0 7 * * MON-XYZ", "0 7 * 13 *", "0 7-3 * * *"])
def test_an_impossible_cron_field_is_an_error(cron):
    with pytest.raises(ValueError, match="cron field"):
        monthly_hours(cron, "0 20 * * *")
