"""Windows of event time: hour, day and week, aligned to UTC, weeks starting on Monday."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum


class Granularity(StrEnum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"

    @property
    def length(self) -> timedelta:
        return {
            Granularity.HOUR: timedelta(hours=1),
            Granularity.DAY: timedelta(days=1),
            Granularity.WEEK: timedelta(weeks=1),
        }[self]


@dataclass(frozen=True)
class Period:
    """A half-open span of event time, `start <= t < end`: a window, or several put together."""

    start: datetime
    end: datetime

    def __contains__(self, at: datetime | None) -> bool:
        return at is not None and self.start <= at < self.end


def window_of(at: datetime, granularity: Granularity) -> Period:
    """The window of `granularity` holding the instant `at` (which must be timezone-aware)."""
    at = at.astimezone(UTC)
    start = at.replace(minute=0, second=0, microsecond=0)
    if granularity is not Granularity.HOUR:
        start = start.replace(hour=0)
    if granularity is Granularity.WEEK:
        start -= timedelta(days=start.weekday())
    return Period(start, start + granularity.length)


def windows(granularity: Granularity, first: datetime, last: datetime) -> list[Period]:
    """Every window from the one holding `first` to the one holding `last`, empty ones included."""
    window, stop = window_of(first, granularity), window_of(last, granularity)
    series = []
    while window.start <= stop.start:
        series.append(window)
        window = Period(window.end, window.end + granularity.length)
    return series
