"""The idle phase: nothing offered for its length, with the lag sampler's queries paused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flowcase.bench.run import NoProgress, hold_idle


class _Lag:
    """What the idle phase uses of the lag sampler: the wait for a caught-up sample, and the
    pause (the real one queries the broker), each setting of it noted."""

    def __init__(self) -> None:
        self.settings: list[bool] = []

    @property
    def paused(self) -> bool:
        return self.settings[-1] if self.settings else False

    @paused.setter
    def paused(self, value: bool) -> None:
        self.settings.append(value)

    async def next_sample(self, seconds: float, accept: Callable[[Any], bool]) -> None:
        return None


async def test_no_idle_phase_unless_asked() -> None:
    lag = _Lag()
    assert await hold_idle(0, lag, NoProgress()) is None  # type: ignore[arg-type]
    assert lag.settings == []


async def test_the_idle_window_pauses_the_lag_sampler_and_resumes_it() -> None:
    lag = _Lag()
    window = await hold_idle(0.3, lag, NoProgress())  # type: ignore[arg-type]
    assert window is not None
    start, end = window
    assert end - start >= 0.3
    assert lag.settings == [True, False]
