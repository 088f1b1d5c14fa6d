"""Time series sampled during a run (CPU, memory, consumer lag) and their summaries (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from statistics import fmean
from typing import Any


@dataclass(frozen=True)
class Sample:
    """Figures by name (a process, or a consumer group) at one wall-clock time."""

    at: float
    values: Mapping[str, float]


def cpu_percent(before: Mapping[int, float], after: Mapping[int, float], seconds: float) -> float:
    """Percent of one core used by a group of processes between two readings of their CPU
    seconds (user + system) by pid. A pid new in `after` started during the interval, so all
    its CPU time falls in it; a pid gone from `after` exited, and its last slice is lost."""
    if seconds <= 0:
        return 0.0
    used = sum(total - before.get(pid, 0.0) for pid, total in after.items())
    return round(100 * max(used, 0.0) / seconds, 1)


def within(samples: list[Sample], start: float, end: float) -> list[Sample]:
    """The samples whose interval overlaps the window. Each covers the time since the one before
    it, so the first after `end` covers the window's last part; a short window on a loaded
    machine may have no sample inside it at all, and still had its CPU spent."""
    inside = [s for s in samples if start <= s.at <= end]
    after = next((s for s in samples if s.at > end), None)
    return [*inside, after] if after is not None else inside


def summarise(samples: list[Sample], *, scale: float = 1.0, digits: int = 1) -> dict[str, Any]:
    """Per name: mean, max and the last value (values divided by `scale`)."""
    names = sorted({name for s in samples for name in s.values})
    summary: dict[str, Any] = {}
    for name in names:
        values = [s.values[name] / scale for s in samples if name in s.values]
        summary[name] = {
            "mean": round(fmean(values), digits),
            "max": round(max(values), digits),
            "last": round(values[-1], digits),
        }
    return summary


def series(samples: list[Sample], origin: float) -> list[dict[str, Any]]:
    """The samples as JSON rows, time in seconds since `origin`."""
    return [{"t": round(s.at - origin, 2), **dict(s.values)} for s in samples]
