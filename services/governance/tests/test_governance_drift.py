"""The drift test on series worked out by hand (nearest-rank medians throughout)."""

import pytest

from flowcase.governance.drift import DriftPolicy, Trend, detect_drift, resolution_drift
from flowcase.governance.metrics import series
from flowcase.governance.projector import fold
from flowcase.governance.windows import Granularity, Period

HOUR = 3600.0


def test_a_rising_median_with_flat_volume_is_drift():
    drift = detect_drift([100, 120, 140, 160, 180, 200], [10] * 6)
    # Every pairwise slope is 20; the level is rank 3 of six medians: 140.
    assert (drift.slope_seconds, drift.level_seconds) == (20, 140)
    assert drift.relative_slope == pytest.approx(20 / 140)
    assert (drift.volume_slope, drift.volume_level, drift.volume_trend) == (0, 10, Trend.FLAT)
    assert drift.sufficient
    assert drift.flagged


def test_rising_volume_explains_a_rising_median():
    drift = detect_drift([100, 120, 140, 160, 180, 200], [10, 12, 14, 16, 18, 20])
    # Volume slope 2 over a level of 14: 14% a window, above the 5% flat band.
    assert drift.volume_trend is Trend.RISING
    assert not drift.flagged


def test_falling_volume_with_a_rising_median_is_drift():
    drift = detect_drift([100, 120, 140, 160, 180, 200], [20, 18, 16, 14, 12, 10])
    assert drift.volume_trend is Trend.FALLING
    assert drift.flagged


def test_a_rise_of_exactly_ten_percent_a_window_is_drift():
    # Slope 10 over a level of 100 (rank 2 of four).
    drift = detect_drift([90, 100, 110, 120], [5, 5, 5, 5])
    assert drift.relative_slope == pytest.approx(0.10)
    assert drift.flagged


def test_a_rise_just_under_ten_percent_is_not():
    # Slope 10 over a level of 110.
    assert not detect_drift([100, 110, 120, 130], [5, 5, 5, 5]).flagged


def test_volume_rising_by_exactly_the_flat_band_is_flat():
    # Volume slope 1 over a level of 20: exactly 5% a window.
    drift = detect_drift([90, 100, 110, 120], [19, 20, 21, 22])
    assert drift.volume_trend is Trend.FLAT
    assert drift.flagged


def test_windows_without_resolved_cases_are_skipped_and_empty_volume_counts_as_zero():
    drift = detect_drift([100, None, 140, 160, 180, 200], [10, 0, 10, 10, 10, 10])
    # Medians at x = 0, 2, 3, 4, 5: every slope is 20; level is rank 3 of five: 160.
    assert (drift.points, drift.slope_seconds, drift.level_seconds) == (5, 20, 160)
    # Volume: of the 15 pairwise slopes ten are 0, one -10 and four positive; rank 8 is 0.
    assert (drift.volume_slope, drift.volume_trend) == (0, Trend.FLAT)
    assert drift.flagged


def test_only_the_last_n_windows_count():
    # The early fall is older than the six windows looked at.
    drift = detect_drift([900, 800, 100, 120, 140, 160, 180, 200], [10] * 8)
    assert drift.windows == 6
    assert drift.flagged


def test_fewer_than_four_windows_give_no_verdict():
    drift = detect_drift([100, 200, 300], [1, 1, 1])
    assert not drift.sufficient
    assert not drift.flagged
    assert drift.slope_seconds is None
    assert drift.reason == "3 windows with data, 4 needed"


def test_too_few_windows_with_a_median_give_no_verdict():
    drift = detect_drift([100, None, None, 200, None, 300], [1] * 6)
    assert (drift.windows, drift.points) == (6, 3)
    assert not drift.sufficient
    assert not drift.flagged
    assert drift.reason == "3 of the last 6 windows had a case resolved, 4 needed"


def test_a_level_of_zero_gives_no_verdict():
    drift = detect_drift([0, 0, 0, 5], [1, 1, 1, 1])
    assert drift.relative_slope is None
    assert not drift.flagged
    assert drift.reason == "the median resolution time is zero"


def test_with_no_requests_at_all_volume_is_flat():
    drift = detect_drift([100, 120, 140, 160], [0, 0, 0, 0])
    assert drift.volume_trend is Trend.FLAT
    assert drift.flagged


def test_a_policy_of_fewer_than_four_windows_is_refused():
    with pytest.raises(ValueError, match="at least 4"):
        DriftPolicy(windows=3)
    with pytest.raises(ValueError, match="min_points"):
        DriftPolicy(windows=4, min_points=5)


def test_series_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="same windows"):
        detect_drift([1, 2, 3, 4], [1, 2, 3])


def weekly_cases(history, hours_by_week, requests_by_week):
    for week, (hours, requests) in enumerate(zip(hours_by_week, requests_by_week, strict=True)):
        for _ in range(requests):
            history.submit("complaint", history.at(days=7 * week))
        case_id = history.open_case("complaint", history.at(days=7 * week))
        history.resolve(case_id, history.at(days=7 * week, hours=hours))
    return series(
        fold(history.events), "complaint", Granularity.WEEK, history.at(), history.at(days=21)
    )


def test_drift_read_off_a_weekly_series_of_events(history):
    weeks = weekly_cases(history, hours_by_week=(10, 12, 14, 16), requests_by_week=(3, 3, 3, 3))
    drift = resolution_drift(weeks)
    # Slope 2 hours a week over a level of 12 hours (rank 2 of four).
    assert (drift.slope_seconds, drift.level_seconds) == (2 * HOUR, 12 * HOUR)
    assert drift.flagged
    assert (drift.reason, drift.left_out_after) == (None, 0)
    assert drift.used == Period(weeks[0].period.start, weeks[3].period.end)


def test_empty_weeks_after_the_data_do_not_hide_a_drift_and_are_named(history):
    weekly_cases(history, hours_by_week=(10, 12, 14, 16), requests_by_week=(3, 3, 3, 3))
    # A period that runs three weeks past the last event: three empty windows at the end.
    weeks = series(
        fold(history.events), "complaint", Granularity.WEEK, history.at(), history.at(days=42)
    )
    assert [w.volume for w in weeks] == [3, 3, 3, 3, 0, 0, 0]

    drift = resolution_drift(weeks)

    assert drift.flagged
    assert (drift.windows, drift.left_out_after) == (4, 3)
    assert drift.used == Period(weeks[0].period.start, weeks[3].period.end)
    # Counted as windows, the empty ones would have left 2 of 6 with a median: no verdict.
    assert not detect_drift(
        [w.resolution.median_seconds for w in weeks[-6:]], [w.volume for w in weeks[-6:]]
    ).sufficient


def test_no_drift_when_volume_doubles_every_week(history):
    weeks = weekly_cases(history, hours_by_week=(10, 12, 14, 16), requests_by_week=(1, 2, 4, 8))
    drift = resolution_drift(weeks)
    # Volume slopes 1, 1.5, 2, 2.33, 3, 4: rank 3 is 2, over a level of 2 (rank 2 of 1, 2, 4, 8).
    assert (drift.volume_slope, drift.volume_level, drift.volume_trend) == (2, 2, Trend.RISING)
    assert not drift.flagged


def test_a_steady_history_does_not_drift(history):
    weeks = weekly_cases(history, hours_by_week=(10, 11, 10, 11), requests_by_week=(3, 3, 3, 3))
    assert not resolution_drift(weeks).flagged
