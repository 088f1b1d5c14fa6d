from datetime import UTC, datetime, timedelta, timezone

import pytest

from flowcase.governance.windows import Granularity, Period, window_of, windows

# Thursday 2026-11-26, 14:37:12 UTC
THURSDAY = datetime(2026, 11, 26, 14, 37, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("granularity", "start", "end"),
    [
        (
            Granularity.HOUR,
            datetime(2026, 11, 26, 14, tzinfo=UTC),
            datetime(2026, 11, 26, 15, tzinfo=UTC),
        ),
        (Granularity.DAY, datetime(2026, 11, 26, tzinfo=UTC), datetime(2026, 11, 27, tzinfo=UTC)),
        (Granularity.WEEK, datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC)),
    ],
)
def test_windows_are_aligned_to_utc_and_weeks_start_on_monday(granularity, start, end):
    assert window_of(THURSDAY, granularity) == Period(start, end)


def test_an_instant_in_another_zone_falls_in_its_utc_window():
    # 01:30 on Monday in UTC+02:00 is still Sunday 23:30 UTC: the previous week.
    monday_in_athens = datetime(2026, 11, 30, 1, 30, tzinfo=timezone(timedelta(hours=2)))
    assert window_of(monday_in_athens, Granularity.WEEK).start == datetime(2026, 11, 23, tzinfo=UTC)
    assert window_of(monday_in_athens, Granularity.DAY).start == datetime(2026, 11, 29, tzinfo=UTC)


def test_a_window_holds_its_start_but_not_its_end():
    window = window_of(THURSDAY, Granularity.DAY)
    assert window.start in window
    assert window.end - timedelta(microseconds=1) in window
    assert window.end not in window
    assert None not in window


def test_windows_lists_every_window_between_two_instants_empty_or_not():
    series = windows(Granularity.DAY, THURSDAY, THURSDAY + timedelta(days=2, hours=12))
    assert [w.start.day for w in series] == [26, 27, 28, 29]


def test_a_single_instant_gives_a_single_window():
    assert windows(Granularity.WEEK, THURSDAY, THURSDAY) == [window_of(THURSDAY, Granularity.WEEK)]
