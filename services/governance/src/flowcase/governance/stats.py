"""The two statistics governance uses: nearest-rank percentiles and the Theil-Sen slope.

Nearest rank, for every percentile and median alike: the p-th percentile of n sorted values is
the value at rank ceil(p/100 * n) (1-based; rank 1 for p = 0). It is always an observed value, so
a reported wait is one some request really had, and a hand count checks it. The median is the
50th percentile, hence the lower of the two middle values when n is even.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import combinations


def percentile(values: Sequence[float], p: float) -> float | None:
    """The nearest-rank p-th percentile (0 <= p <= 100); None for no values."""
    if not 0 <= p <= 100:
        raise ValueError(f"percentile {p} is outside 0..100")
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p * len(ordered) / 100))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float | None:
    return percentile(values, 50)


def theil_sen_slope(points: Sequence[tuple[float, float]]) -> float | None:
    """The median of the slopes between every pair of points with distinct x; None below two.

    Robust: one outlying window moves few of the pairwise slopes and so barely moves their median.
    """
    slopes = [(y2 - y1) / (x2 - x1) for (x1, y1), (x2, y2) in combinations(points, 2) if x1 != x2]
    return median(slopes)
