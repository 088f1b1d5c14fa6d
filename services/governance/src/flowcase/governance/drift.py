"""Resolution-time drift: the median rising window after window while volume does not.

The article's signal: "average resolution time trending up while volume is flat or declining"
means exception handling is not scaling. Over the last N windows (N >= 4):

- the resolution trend is the Theil-Sen slope of the per-window median resolution time against
  the window's index, relative to the level (the median of those medians). Windows where no case
  was resolved have no median and are skipped, not counted as zero (a zero would be a fake fall);
  the remaining points keep their window index, so the gap keeps its width.
- the volume trend is the Theil-Sen slope of the per-window request volume, relative to the
  median volume. A window with no requests is a real zero and stays in.
- volume is *flat* when its relative slope lies within +/- `flat_band` per window (5% by default,
  half the drift threshold, so a resolution-time rise must outpace any volume rise at least
  twice over to count as drift), *rising* above it and *falling* below it. With a median volume of
  zero the sign of the slope decides.
- drift is flagged when the resolution trend is at least `rise` (10%) per window and volume is
  flat or falling. With fewer than 4 windows, or fewer than `min_points` windows with a median,
  or a level of zero, there is no verdict: `sufficient` is False, nothing is flagged, and
  `reason` says which.
- windows at the end of a series with nothing in them (no request, no case resolved: a period
  that runs past the data) are left out before the last N are taken, and counted
  (`left_out_after`), so a drifting history is judged on its data, not turned into "no verdict"
  by the empty weeks after it. `used` is the span of the windows the verdict rests on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from flowcase.governance.metrics import ProcessMetrics
from flowcase.governance.stats import median, theil_sen_slope
from flowcase.governance.windows import Period

MIN_WINDOWS = 4


class Trend(StrEnum):
    RISING = "rising"
    FLAT = "flat"
    FALLING = "falling"


@dataclass(frozen=True)
class DriftPolicy:
    windows: int = 6
    min_points: int = 4
    rise: float = 0.10
    flat_band: float = 0.05

    def __post_init__(self) -> None:
        if self.windows < MIN_WINDOWS:
            raise ValueError(f"drift needs at least {MIN_WINDOWS} windows, not {self.windows}")
        if not 2 <= self.min_points <= self.windows:
            raise ValueError(f"min_points must lie in 2..{self.windows}, not {self.min_points}")


@dataclass(frozen=True)
class Drift:
    """The verdict and the figures behind it; slopes are per window, times in seconds."""

    windows: int
    points: int
    slope_seconds: float | None
    level_seconds: float | None
    relative_slope: float | None
    volume_slope: float | None
    volume_level: float | None
    volume_trend: Trend | None
    flagged: bool
    reason: str | None = None
    """Why there is no verdict (None when there is one)."""
    used: Period | None = None
    """From the start of the first window the verdict used to the end of the last."""
    left_out_after: int = 0
    """Empty windows after the data, not used."""

    @property
    def sufficient(self) -> bool:
        return self.relative_slope is not None and self.volume_trend is not None


def detect_drift(
    medians: Sequence[float | None], volumes: Sequence[int], policy: DriftPolicy = DriftPolicy()
) -> Drift:
    """Drift over the last `policy.windows` of two aligned per-window series."""
    if len(medians) != len(volumes):
        raise ValueError("medians and volumes must cover the same windows")
    medians, volumes = medians[-policy.windows :], volumes[-policy.windows :]
    points = [(float(i), m) for i, m in enumerate(medians) if m is not None]
    enough = len(medians) >= MIN_WINDOWS and len(points) >= policy.min_points

    slope = theil_sen_slope(points) if enough else None
    level = median([m for _, m in points]) if enough else None
    relative = slope / level if slope is not None and level else None

    volume_slope = theil_sen_slope(list(enumerate(map(float, volumes)))) if enough else None
    volume_level = median([float(v) for v in volumes]) if enough else None
    trend = _trend(volume_slope, volume_level, policy.flat_band)

    reason = None
    if len(medians) < MIN_WINDOWS:
        reason = f"{len(medians)} windows with data, {MIN_WINDOWS} needed"
    elif len(points) < policy.min_points:
        reason = (
            f"{len(points)} of the last {len(medians)} windows had a case resolved, "
            f"{policy.min_points} needed"
        )
    elif not level:
        reason = "the median resolution time is zero"
    return Drift(
        windows=len(medians),
        points=len(points),
        reason=reason,
        slope_seconds=slope,
        level_seconds=level,
        relative_slope=relative,
        volume_slope=volume_slope,
        volume_level=volume_level,
        volume_trend=trend,
        flagged=(
            relative is not None
            and relative >= policy.rise
            and trend in (Trend.FLAT, Trend.FALLING)
        ),
    )


def resolution_drift(
    series: Sequence[ProcessMetrics], policy: DriftPolicy = DriftPolicy()
) -> Drift:
    """Drift over the last windows of a `metrics.series` (oldest first) that have data."""
    with_data = len(series)
    while with_data and _empty(series[with_data - 1]):
        with_data -= 1
    used = series[:with_data][-policy.windows :]
    drift = detect_drift(
        [m.resolution.median_seconds for m in used], [m.volume for m in used], policy
    )
    return replace(
        drift,
        used=Period(used[0].period.start, used[-1].period.end) if used else None,
        left_out_after=len(series) - with_data,
    )


def _empty(window: ProcessMetrics) -> bool:
    return window.volume == 0 and window.resolution.resolved == 0 and window.resolution.opened == 0


def _trend(slope: float | None, level: float | None, flat_band: float) -> Trend | None:
    if slope is None or level is None:
        return None
    relative = slope / level if level else slope
    band = flat_band if level else 0.0
    if relative > band:
        return Trend.RISING
    if relative < -band:
        return Trend.FALLING
    return Trend.FLAT
