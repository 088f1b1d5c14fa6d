"""Submission rate limits per client: a token bucket for each token subject (pure).

Each subject may submit `rate` requests per second on average and `burst` at once. The buckets
live in the process: with several intake replicas behind a balancer, a client's effective limit is
the per-replica limit times the replicas it reaches.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

# Past this many subjects, buckets that have refilled (idle clients) are forgotten.
_PRUNE_ABOVE = 10_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(
        self, *, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, subject: str) -> float:
        """Spend one token of `subject`'s bucket: 0 when allowed, else the seconds to wait."""
        now = self._clock()
        bucket = self._buckets.get(subject)
        if bucket is None:
            if len(self._buckets) >= _PRUNE_ABOVE:
                self._prune(now)
            bucket = self._buckets[subject] = _Bucket(float(self.burst), now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate

    def _prune(self, now: float) -> None:
        full = [
            subject
            for subject, b in self._buckets.items()
            if b.tokens + (now - b.updated) * self.rate >= self.burst
        ]
        for subject in full:
            del self._buckets[subject]


def whole_seconds(wait_seconds: float) -> int:
    """The Retry-After header's whole seconds, never 0."""
    return max(1, math.ceil(wait_seconds))
