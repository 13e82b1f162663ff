"""How many hours a month a fleet with an off-hours schedule is up: the `start` and `stop` cron
expressions of its Auto Scaling scheduled actions (5 fields: minute hour day-of-month month
day-of-week, Unix cron as Amazon EC2 Auto Scaling takes it: "Scheduled scaling for Amazon EC2 Auto
Scaling", https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-scheduled-scaling.html)
replayed over a year, the up time averaged per month. The cost model (stacks/planning/cost.py) charges a
scheduled fleet for these hours, not for all 730."""

from __future__ import annotations

import calendar
import datetime as dt
from functools import cache

HOURS_PER_MONTH = 730  # AWS pricing's month (stacks/planning/cost.py)
_DAYS = {"SUN": 0, "MON": 1, "TUE": 2, "WED": 3, "THU": 4, "FRI": 5, "SAT": 6}
_MONTHS = {name.upper(): index for index, name in enumerate(calendar.month_abbr) if name}


def _values(field: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    """The values a cron field allows: *, n, a-b, lists, steps (*/n, a-b/n, n/m) and names (MON, JAN)."""

    def number(text: str) -> int:
        if text in names:
            return names[text]
        if not text.isdigit():
            raise ValueError(f"cron field {field!r}: {text!r} is not a number or a name")
        return int(text)

    values: set[int] = set()
    for part in field.upper().split(","):
        spec, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if spec in ("*", "?"):
            first, last = low, high
        elif "-" in spec:
            first_text, last_text = spec.split("-", 1)
            first, last = number(first_text), number(last_text)
        else:
            first = number(spec)
            last = high if step_text else first
        if not (low <= first <= last <= high) or step < 1:
            raise ValueError(f"cron field {field!r}: {part!r} is not within {low}-{high}")
        values.update(range(first, last + 1, step))
    return values


def _events(cron: str, year: int) -> list[dt.datetime]:
    minute, hour, day, month, weekday = cron.split()
    minutes = _values(minute, 0, 59, {})
    hours = _values(hour, 0, 23, {})
    days = _values(day, 1, 31, {})
    months = _values(month, 1, 12, _MONTHS)
    weekdays = {d % 7 for d in _values(weekday, 0, 7, _DAYS)}  # 7 is Sunday too
    # Unix cron: when both day fields are restricted, a day matches either of them.
    both = day not in ("*", "?") and weekday not in ("*", "?")
    events = []
    date = dt.date(year, 1, 1)
    while date.year == year:
        by_day, by_weekday = date.day in days, (date.isoweekday() % 7) in weekdays
        if date.month in months and ((by_day or by_weekday) if both else (by_day and by_weekday)):
            events += [
                dt.datetime.combine(date, dt.time(h, m)) for h in sorted(hours) for m in sorted(minutes)
            ]
        date += dt.timedelta(days=1)
    return events


@cache
def monthly_hours(start: str, stop: str, year: int = 2026) -> float:
    """Average hours a month between each `start` and the next `stop`, over `year` (the schedule
    repeats: the year wraps around, so a fleet up at midnight on 1 January counts from the start)."""
    timeline = sorted(
        [(t, "start") for t in _events(start, year)] + [(t, "stop") for t in _events(stop, year)]
    )
    if not timeline:
        return float(HOURS_PER_MONTH)
    up = timeline[-1][1] == "start"  # the state the year ends in is the state it begins in
    since = dt.datetime(year, 1, 1)
    total = dt.timedelta()
    for moment, action in timeline:
        if up and action == "stop":
            total += moment - since
            up = False
        elif not up and action == "start":
            since, up = moment, True
    if up:
        total += dt.datetime(year + 1, 1, 1) - since
    return total.total_seconds() / 3600 / 12
