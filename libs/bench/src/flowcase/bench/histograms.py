"""Latency histograms (HDR) and the summary every stage reports."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hdrh.histogram import HdrHistogram

# Microseconds from 1 µs to 10 minutes at 3 significant digits: a latency is reported to
# within 0.1 %, whether it is a 2 ms append or a 90 s queue at saturation.
_LOWEST_US = 1
_HIGHEST_US = 600_000_000
_DIGITS = 3
PERCENTILES = (50.0, 95.0, 99.0, 99.9)


class LatencyHistogram:
    def __init__(self) -> None:
        self._histogram = HdrHistogram(_LOWEST_US, _HIGHEST_US, _DIGITS)

    @classmethod
    def of_seconds(cls, values: Iterable[float]) -> LatencyHistogram:
        histogram = cls()
        for value in values:
            histogram.record_seconds(value)
        return histogram

    def record_seconds(self, seconds: float) -> None:
        # Clocks of two processes may disagree by a hair: a negative latency counts as zero.
        micros = min(max(round(seconds * 1_000_000), _LOWEST_US), _HIGHEST_US)
        self._histogram.record_value(micros)

    @property
    def count(self) -> int:
        return int(self._histogram.get_total_count())

    def summary(self) -> dict[str, Any]:
        """Count, p50/p95/p99/p999, max and mean in milliseconds (None when nothing recorded)."""
        if self.count == 0:
            return {"count": 0, **{_label(p): None for p in PERCENTILES}, "max": None, "mean": None}
        return {
            "count": self.count,
            **{_label(p): _ms(self._histogram.get_value_at_percentile(p)) for p in PERCENTILES},
            "max": _ms(self._histogram.get_max_value()),
            "mean": _ms(self._histogram.get_mean_value()),
        }


def _label(percentile: float) -> str:
    return "p" + f"{percentile:g}".replace(".", "")


def _ms(micros: float) -> float:
    return round(micros / 1000, 2)
