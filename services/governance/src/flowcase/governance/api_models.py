"""The JSON the metrics API answers with, built from the pure core's types.

Rates and shares are fractions (0.25 is 25%); times are seconds; null means no data (a zero
denominator), never zero. Definitions: docs/governance-metrics.md.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from flowcase.governance.advisor import Advice, Approach
from flowcase.governance.alerts import Alert, AlertKind
from flowcase.governance.drift import Drift, Trend
from flowcase.governance.facts import AuditKind, Missing
from flowcase.governance.metrics import AuditGaps, ProcessMetrics, RuleOverrides, StepMetrics
from flowcase.governance.reports import ProcessReport
from flowcase.governance.windows import Granularity


class Window(BaseModel):
    start: datetime = Field(description="First instant of the window (inclusive), UTC.")
    end: datetime = Field(description="End of the window (exclusive), UTC.")


class Figures(BaseModel):
    """The per-request figures of one window, or of the whole period."""

    window: Window
    volume: int = Field(description="Requests submitted in the window.")
    escalated: int
    overridden: int = Field(description="Requests with at least one manual override.")
    exceptions: int = Field(description="Requests escalated or overridden.")
    overrides: int
    exception_rate: float | None = Field(description="exceptions / volume; 0.2 is the line.")
    escalation_rate: float | None
    override_share: float | None
    overrides_per_100: float | None
    sla_breach_rate: float | None
    audit_gap_share: float | None = Field(
        description="Decisions (human approvals and case decisions) with an audit-trail gap, "
        "over decisions."
    )
    cases_opened: int
    cases_still_open: int
    cases_resolved: int
    resolution_median_seconds: float | None
    promises_judged: int = Field(
        description="Requests promised a resolution time (`resolve_within`) whose promise is "
        "kept or broken by now."
    )
    promise_attainment: float | None = Field(
        description="Promises kept (ended by their due time, in the workflow or a case), over "
        "promises judged."
    )
    promises_broken_in_workflow: int = Field(description="Due while still in the workflow.")
    promises_broken_in_case: int = Field(description="Due after the request became a case.")
    promise_late_p50_seconds: float | None = Field(
        description="How late the broken promises that have ended were, the median."
    )

    @classmethod
    def of(cls, m: ProcessMetrics) -> Figures:
        return cls(
            window=Window(start=m.period.start, end=m.period.end),
            volume=m.volume,
            escalated=m.escalated,
            overridden=m.overridden,
            exceptions=m.exceptions,
            overrides=m.overrides,
            exception_rate=m.exception_rate,
            escalation_rate=m.escalation_rate,
            override_share=m.override_share,
            overrides_per_100=m.overrides_per_100,
            sla_breach_rate=m.sla_breach_rate,
            audit_gap_share=m.audit.share,
            cases_opened=m.resolution.opened,
            cases_still_open=m.resolution.still_open,
            cases_resolved=m.resolution.resolved,
            resolution_median_seconds=m.resolution.median_seconds,
            promises_judged=m.promises.judged,
            promise_attainment=m.promises.attainment,
            promises_broken_in_workflow=m.promises.broken_in_workflow,
            promises_broken_in_case=m.promises.broken_in_case,
            promise_late_p50_seconds=m.promises.late_p50_seconds,
        )


class Recommendation(BaseModel):
    approach: Approach | None = Field(description="null: too few requests to recommend.")
    reason: str
    over_threshold: bool = Field(description="The exception rate is over 20%.")
    volume: int
    exception_rate: float | None
    escalation_rate: float | None
    override_share: float | None
    overrides_per_100: float | None
    sla_breach_rate: float | None
    audit_gap_share: float | None = Field(
        description="Decisions (human approvals and case decisions) with an audit-trail gap, "
        "over decisions."
    )
    worst_step: str | None
    most_overridden_rule: str | None = Field(description="`<rule> (v<definition version>)`.")
    warnings: list[str] = Field(description="Drift and audit-trail gaps; they do not change it.")

    @classmethod
    def of(cls, a: Advice) -> Recommendation:
        return cls(
            approach=a.approach,
            reason=a.reason,
            over_threshold=a.over_threshold,
            volume=a.volume,
            exception_rate=a.exception_rate,
            escalation_rate=a.escalation_rate,
            override_share=a.override_share,
            overrides_per_100=a.overrides_per_100,
            sla_breach_rate=a.sla_breach_rate,
            audit_gap_share=a.audit_gap_share,
            worst_step=a.worst_step,
            most_overridden_rule=a.most_overridden_rule,
            warnings=list(a.warnings),
        )


class DriftFigures(BaseModel):
    flagged: bool
    sufficient: bool = Field(description="False: too few windows or medians for a verdict.")
    windows: int
    points: int = Field(description="Windows with a resolution median.")
    slope_seconds: float | None = Field(description="Theil-Sen slope per window.")
    level_seconds: float | None
    relative_slope: float | None = Field(description="slope / level; drift from 0.10.")
    volume_trend: Trend | None
    reason: str | None = Field(description="Why there is no verdict; null when there is one.")
    used_from: datetime | None = Field(description="Start of the first window the verdict used.")
    used_until: datetime | None = Field(description="End of the last window the verdict used.")
    left_out_after: int = Field(
        description="Empty windows after the data (the period runs past it), not used."
    )

    @classmethod
    def of(cls, d: Drift) -> DriftFigures:
        return cls(
            flagged=d.flagged,
            sufficient=d.sufficient,
            reason=d.reason,
            used_from=d.used.start if d.used else None,
            used_until=d.used.end if d.used else None,
            left_out_after=d.left_out_after,
            windows=d.windows,
            points=d.points,
            slope_seconds=d.slope_seconds,
            level_seconds=d.level_seconds,
            relative_slope=d.relative_slope,
            volume_trend=d.volume_trend,
        )


class ProcessSummary(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "process_type": "invoice-approval",
                    "granularity": "day",
                    "period": {"start": "2026-11-18T00:00:00Z", "end": "2026-11-25T00:00:00Z"},
                    "totals": {
                        "window": {
                            "start": "2026-11-18T00:00:00Z",
                            "end": "2026-11-25T00:00:00Z",
                        },
                        "volume": 120,
                        "escalated": 30,
                        "overridden": 6,
                        "exceptions": 33,
                        "overrides": 7,
                        "exception_rate": 0.275,
                        "escalation_rate": 0.25,
                        "override_share": 0.05,
                        "overrides_per_100": 5.83,
                        "sla_breach_rate": 0.1,
                        "audit_gap_share": 0.04,
                        "cases_opened": 30,
                        "cases_still_open": 4,
                        "cases_resolved": 26,
                        "resolution_median_seconds": 14400.0,
                        "promises_judged": 80,
                        "promise_attainment": 0.9,
                        "promises_broken_in_workflow": 2,
                        "promises_broken_in_case": 6,
                        "promise_late_p50_seconds": 5400.0,
                    },
                    "worst_step": "approve",
                    "drift": {
                        "flagged": False,
                        "sufficient": True,
                        "windows": 6,
                        "points": 6,
                        "slope_seconds": 120.0,
                        "level_seconds": 14400.0,
                        "relative_slope": 0.008,
                        "volume_trend": "flat",
                    },
                    "recommendation": {
                        "approach": "layered",
                        "reason": "exception rate 28%, 6 overrides per 100 requests: over 20%, "
                        "but a routine majority follows the path",
                        "over_threshold": True,
                        "volume": 120,
                        "exception_rate": 0.275,
                        "escalation_rate": 0.25,
                        "override_share": 0.05,
                        "overrides_per_100": 5.83,
                        "sla_breach_rate": 0.1,
                        "audit_gap_share": 0.04,
                        "worst_step": "approve",
                        "most_overridden_rule": "amount <= 1000 (v2)",
                        "warnings": [],
                    },
                }
            ]
        }
    )

    process_type: str
    granularity: Granularity
    period: Window
    totals: Figures = Field(description="The figures over the whole period.")
    worst_step: str | None
    drift: DriftFigures
    recommendation: Recommendation

    @classmethod
    def of(cls, r: ProcessReport) -> ProcessSummary:
        return cls(
            process_type=r.process_type,
            granularity=r.span.granularity,
            period=Window(start=r.span.period.start, end=r.span.period.end),
            totals=Figures.of(r.totals),
            worst_step=r.advice.worst_step,
            drift=DriftFigures.of(r.drift),
            recommendation=Recommendation.of(r.advice),
        )


class ProcessList(BaseModel):
    processes: list[ProcessSummary]


class StepFigures(BaseModel):
    step: str
    kind: str | None
    executions: int
    completed: int
    wait_p50_seconds: float | None
    wait_p95_seconds: float | None
    judged: int = Field(description="Executions whose SLA verdict is known.")
    past_sla: int
    past_sla_share: float | None

    @classmethod
    def of(cls, s: StepMetrics) -> StepFigures:
        return cls(
            step=s.step,
            kind=s.kind,
            executions=s.executions,
            completed=s.completed,
            wait_p50_seconds=s.wait_p50_seconds,
            wait_p95_seconds=s.wait_p95_seconds,
            judged=s.judged,
            past_sla=s.past_sla,
            past_sla_share=s.past_sla_share,
        )


class RuleOverrideFigures(BaseModel):
    rule: str | None = Field(description="null: overrides that named no rule.")
    definition_version: int
    overrides: int
    requests: int
    requests_on_version: int
    share: float | None

    @classmethod
    def of(cls, r: RuleOverrides) -> RuleOverrideFigures:
        return cls(
            rule=r.rule,
            definition_version=r.definition_version,
            overrides=r.overrides,
            requests=r.requests,
            requests_on_version=r.requests_on_version,
            share=r.share,
        )


class AuditGapRecord(BaseModel):
    record_id: str = Field(examples=["case/6f1c…/decision/d-2"])
    kind: AuditKind
    missing: list[Missing]


class AuditKindFigures(BaseModel):
    kind: AuditKind
    records: int = Field(description="Records of this kind in the period.")
    gaps: int = Field(description="Those with a gap.")
    share: float | None = Field(description="gaps ÷ records; null without records.")


class AuditGapFigures(BaseModel):
    records: int = Field(description="Decisions, overrides and resolutions in the period.")
    share: float | None = Field(
        description="The headline: decisions (human approvals and case decisions) with a gap, "
        "over decisions."
    )
    by_kind: list[AuditKindFigures] = Field(description="decision, override, resolution.")
    gaps: list[AuditGapRecord] = Field(description="Every record with a gap, of every kind.")

    @classmethod
    def of(cls, a: AuditGaps) -> AuditGapFigures:
        return cls(
            records=a.records,
            share=a.share,
            by_kind=[
                AuditKindFigures(
                    kind=kind,
                    records=a.records_of(kind),
                    gaps=len(a.gaps_of(kind)),
                    share=a.share_of(kind),
                )
                for kind in AuditKind
            ],
            gaps=[
                AuditGapRecord(record_id=g.record_id, kind=g.kind, missing=list(g.missing))
                for g in a.gaps
            ],
        )


class ProcessDetail(ProcessSummary):
    model_config = ConfigDict(json_schema_extra=None)

    series: list[Figures] = Field(description="One entry per window, empty windows included.")
    steps: list[StepFigures] = Field(description="Steps entered in the period, by name.")
    rule_overrides: list[RuleOverrideFigures] = Field(description="Most overridden first.")
    audit_gaps: AuditGapFigures

    @classmethod
    def of(cls, r: ProcessReport) -> ProcessDetail:
        return cls(
            **ProcessSummary.of(r).model_dump(),
            series=[Figures.of(m) for m in r.series],
            steps=[StepFigures.of(s) for s in r.totals.steps],
            rule_overrides=[RuleOverrideFigures.of(o) for o in r.totals.rule_overrides],
            audit_gaps=AuditGapFigures.of(r.totals.audit),
        )


class AlertEntry(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "kind": "exception_rate",
                    "process_type": "vendor-onboarding",
                    "summary": "exception rate 34% of 80 requests is over the 20% line",
                    "figures": {"exception_rate": 0.3375, "volume": 80},
                    "step": None,
                    "record_ids": [],
                }
            ]
        }
    )

    kind: AlertKind
    process_type: str
    summary: str
    figures: dict[str, float | int | str | None]
    step: str | None = Field(description="The step, for a bottleneck.")
    record_ids: list[str] = Field(description="The offending records, for an audit gap.")

    @classmethod
    def of(cls, a: Alert) -> AlertEntry:
        return cls(
            kind=a.kind,
            process_type=a.process_type,
            summary=a.summary,
            figures=a.figures,
            step=a.step,
            record_ids=list(a.record_ids),
        )


class AlertList(BaseModel):
    period: Window
    granularity: Granularity
    alerts: list[AlertEntry]
