"""The open-loop schedule: request i is due at start + i / rate, whatever the system does.

Latency is measured from the due time, not from when a request was actually sent, so a stalled
system cannot slow the driver down and hide its own queueing (no coordinated omission).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class RateStep:
    """One offered rate held for a number of seconds."""

    rate: float
    seconds: float

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.seconds <= 0:
            raise ValueError(f"a step needs a positive rate and duration, not {self}")

    @property
    def count(self) -> int:
        """Requests due inside the window (the last one strictly before its end)."""
        return math.ceil(self.rate * self.seconds)

    def offset(self, index: int) -> float:
        """Seconds after the step's start at which request `index` is due."""
        return index / self.rate

    def offsets(self) -> list[float]:
        return [self.offset(i) for i in range(self.count)]


def steps_of(rates: list[float], seconds: float) -> list[RateStep]:
    """The rates in the order given, each held `seconds` (stepping up reads saturation)."""
    return [RateStep(rate, seconds) for rate in rates]
