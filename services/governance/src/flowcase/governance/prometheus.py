"""Governance's Prometheus series, served by the runtime's `/metrics` (the default registry).

- `flowcase_governance_projection_lag_seconds{group}`: now minus the broker timestamp of the
  newest event projected. Events projected per topic are the event library's
  `flowcase_messages_processed_total{topic, group="governance"}`, not a second counter.
- per process type, the headline figures of the last 7 days (`flowcase_governance_*`), read from
  the facts when `/metrics` is scraped, so they are never older than the projection.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

from prometheus_client import REGISTRY, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from flowcase.governance.advisor import Approach
from flowcase.governance.facts import AuditKind
from flowcase.governance.metrics import ProcessMetrics
from flowcase.governance.reports import ProcessReport

PROJECTION_LAG = Gauge(
    "flowcase_governance_projection_lag_seconds",
    "Now minus the broker timestamp of the newest event projected.",
    ["group"],
)

# name, help, figure of the headline metrics (None: no data, no sample).
_FIGURES: tuple[tuple[str, str, Callable[[ProcessMetrics], float | None]], ...] = (
    ("requests", "Requests submitted in the last 7 days.", lambda m: m.volume),
    (
        "exception_ratio",
        "Requests escalated or overridden, over volume (the line is 0.2).",
        lambda m: m.exception_rate,
    ),
    ("escalation_ratio", "Requests escalated, over volume.", lambda m: m.escalation_rate),
    (
        "override_ratio",
        "Requests with at least one manual override, over volume.",
        lambda m: m.override_share,
    ),
    (
        "overrides_per_100_requests",
        "Manual overrides per 100 requests.",
        lambda m: m.overrides_per_100,
    ),
    (
        "sla_breach_ratio",
        "Requests with a step past its SLA, over volume.",
        lambda m: m.sla_breach_rate,
    ),
    (
        "audit_gap_ratio",
        "Decisions (human approvals and case decisions) with an audit-trail gap, over decisions.",
        lambda m: m.audit.share,
    ),
    (
        "resolution_median_seconds",
        "Median case resolution time of cases resolved in the last 7 days.",
        lambda m: m.resolution.median_seconds,
    ),
    (
        "promise_attainment_ratio",
        "Requests resolved within their promise (resolve_within), in the workflow or a case, "
        "over promises kept or broken.",
        lambda m: m.promises.attainment,
    ),
)


class ProcessFigures(Collector):
    """The headline figures of every process type, as of the last `refresh`."""

    def __init__(self, overview: Callable[[], Awaitable[list[ProcessReport]]]) -> None:
        self._overview = overview
        self._reports: list[ProcessReport] = []

    async def refresh(self) -> None:
        self._reports = await self._overview()

    def describe(self) -> Iterable[Any]:
        # No names reserved up front: several services may share one process (tests).
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        reports = self._reports
        for name, documentation, figure in _FIGURES:
            family = GaugeMetricFamily(
                f"flowcase_governance_{name}", documentation, labels=["process_type"]
            )
            for report in reports:
                value = figure(report.totals)
                if value is not None:
                    family.add_metric([report.process_type], value)
            yield family
        drift = GaugeMetricFamily(
            "flowcase_governance_resolution_drift",
            "1 when resolution-time drift is flagged over the last 6 days.",
            labels=["process_type"],
        )
        recommendation = GaugeMetricFamily(
            "flowcase_governance_recommendation",
            "1 for the recommended approach of the process type, 0 for the others.",
            labels=["process_type", "approach"],
        )
        audit_by_kind = GaugeMetricFamily(
            "flowcase_governance_audit_gap_kind_ratio",
            "Records of each kind (decision, override, resolution) with an audit-trail gap, over "
            "the records of that kind.",
            labels=["process_type", "kind"],
        )
        for report in reports:
            for kind in AuditKind:
                share = report.totals.audit.share_of(kind)
                if share is not None:
                    audit_by_kind.add_metric([report.process_type, kind.value], share)
        yield audit_by_kind
        for report in reports:
            drift.add_metric([report.process_type], 1 if report.drift.flagged else 0)
            for approach in Approach:
                chosen = report.advice.approach is approach
                recommendation.add_metric([report.process_type, approach.value], int(chosen))
        yield drift
        yield recommendation


class RefreshOnScrape:
    """ASGI middleware: a GET of `/metrics` first refreshes the process figures."""

    def __init__(self, app: Any, figures: ProcessFigures) -> None:
        self.app = app
        self.figures = figures

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/metrics":
            await self.figures.refresh()
        await self.app(scope, receive, send)


def register(figures: ProcessFigures) -> None:
    REGISTRY.register(figures)


def unregister(figures: ProcessFigures) -> None:
    REGISTRY.unregister(figures)
