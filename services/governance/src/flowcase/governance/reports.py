"""The service layer of the read side: what the API, the dashboard and /metrics show.

It loads the slice of facts a span of windows needs and hands it to the pure core: `measure`
over the whole span (the headline figures and the advice), `series` per window, the drift test
over that series, and `advise`. Nothing here computes a figure itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from flowcase.governance.advisor import Advice, AdvisorPolicy, advise
from flowcase.governance.drift import Drift, DriftPolicy, resolution_drift
from flowcase.governance.facts import CaseFact, Facts
from flowcase.governance.metrics import ProcessMetrics, cases_of, measure, process_types, series
from flowcase.governance.ports import FactStore
from flowcase.governance.windows import Granularity, Period, window_of, windows

DEFAULT_WINDOWS = 7
MAX_WINDOWS = 1000


class SpanError(ValueError):
    """A span of windows that cannot be measured; `field` names the query value at fault."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class Span:
    """The windows a report covers, oldest first, and the period they make together."""

    granularity: Granularity
    windows: tuple[Period, ...]

    @property
    def period(self) -> Period:
        return Period(self.windows[0].start, self.windows[-1].end)

    @classmethod
    def of(
        cls,
        granularity: Granularity,
        *,
        now: datetime,
        since: datetime | None = None,
        until: datetime | None = None,
        count: int = DEFAULT_WINDOWS,
    ) -> Span:
        """The windows from the one holding `since` to the one holding the instant before `until`.

        `until` defaults to now (the current window is included); without `since`, the span is
        the last `count` windows.
        """
        end = until or now
        if since is not None and since >= end:
            raise SpanError("since", "must be before until")
        last = window_of(end - timedelta(microseconds=1), granularity)
        if since is None:
            first_start = last.start - (count - 1) * granularity.length
        else:
            first_start = window_of(since, granularity).start
        span = windows(granularity, first_start, last.start)
        if len(span) > MAX_WINDOWS:
            raise SpanError(
                "since",
                f"{len(span)} {granularity} windows; at most {MAX_WINDOWS}, "
                "choose a coarser granularity or a shorter span",
            )
        return cls(granularity, tuple(span))


@dataclass(frozen=True)
class ProcessReport:
    """One process type over a span: headline figures, the series, drift and the advice."""

    process_type: str
    span: Span
    totals: ProcessMetrics
    series: tuple[ProcessMetrics, ...]
    drift: Drift
    advice: Advice


@dataclass(frozen=True)
class Policies:
    default_sla: timedelta | None = None
    advisor: AdvisorPolicy = field(default_factory=AdvisorPolicy)
    drift: DriftPolicy = field(default_factory=DriftPolicy)


class Reports:
    def __init__(
        self,
        repository: FactStore,
        policies: Policies | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._repository = repository
        self.policies = policies or Policies()
        self._clock = clock

    def span(
        self,
        granularity: Granularity = Granularity.DAY,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        count: int = DEFAULT_WINDOWS,
    ) -> Span:
        return Span.of(granularity, now=self._clock(), since=since, until=until, count=count)

    async def process_types(self) -> list[str]:
        return await self._repository.process_types()

    async def overview(self, span: Span) -> list[ProcessReport]:
        """Every known process type, those without traffic in the span included."""
        known = await self._repository.process_types()
        facts = await self._repository.load(span.period)
        types = sorted(set(known) | set(process_types(facts)))
        return [self._report(facts, t, span) for t in types]

    async def process(self, process_type: str, span: Span) -> ProcessReport | None:
        """The report of one process type; None when no event ever named it."""
        if process_type not in await self._repository.process_types():
            return None
        facts = await self._repository.load(span.period, process_type)
        return self._report(facts, process_type, span)

    async def process_page(
        self, process_type: str, span: Span
    ) -> tuple[ProcessReport, list[CaseFact]] | None:
        """The report of one process type and its cases of the span (the per-process page);
        None when no event ever named it."""
        if process_type not in await self._repository.process_types():
            return None
        facts = await self._repository.load(span.period, process_type)
        return self._report(facts, process_type, span), cases_of(facts, process_type, span.period)

    def _report(self, facts: Facts, process_type: str, span: Span) -> ProcessReport:
        sla, now = self.policies.default_sla, self._clock()
        per_window = series(
            facts,
            process_type,
            span.granularity,
            span.windows[0].start,
            span.windows[-1].start,
            default_sla=sla,
            now=now,
        )
        totals = measure(facts, process_type, span.period, default_sla=sla, now=now)
        drift = resolution_drift(per_window, self.policies.drift)
        return ProcessReport(
            process_type=process_type,
            span=span,
            totals=totals,
            series=tuple(per_window),
            drift=drift,
            advice=advise(totals, drift, self.policies.advisor),
        )
