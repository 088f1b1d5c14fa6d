"""What an ops leader should look at now: alerts drawn from a process report (pure).

- **drift**: resolution-time drift is flagged (see docs/governance-metrics.md).
- **exception_rate**: the exception rate is over the threshold (20%) on at least the advisor's
  minimum volume (30 requests); below that one request moves the rate by over 3 points.
- **bottleneck**: a step whose share of executions past SLA is over `bottleneck_share` (20%),
  worst first.
- **audit_gap**: decisions (human approvals, case decisions) recorded with a gap, with their
  ids; the shares of overrides and resolutions with a gap come with it as figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from flowcase.governance.facts import AuditKind
from flowcase.governance.reports import ProcessReport


class AlertKind(StrEnum):
    DRIFT = "drift"
    EXCEPTION_RATE = "exception_rate"
    BOTTLENECK = "bottleneck"
    AUDIT_GAP = "audit_gap"


@dataclass(frozen=True)
class AlertPolicy:
    bottleneck_share: float = 0.20


@dataclass(frozen=True)
class Alert:
    kind: AlertKind
    process_type: str
    summary: str
    figures: dict[str, float | int | str | None] = field(default_factory=dict)
    step: str | None = None
    record_ids: tuple[str, ...] = ()


def alerts(
    report: ProcessReport, advisor_min_volume: int, policy: AlertPolicy = AlertPolicy()
) -> list[Alert]:
    t, totals, drift = report.process_type, report.totals, report.drift
    found: list[Alert] = []
    if drift.flagged and drift.relative_slope is not None:
        found.append(
            Alert(
                AlertKind.DRIFT,
                t,
                f"resolution time rising {drift.relative_slope:.0%} per {report.span.granularity}"
                f" while volume is {drift.volume_trend}",
                {
                    "relative_slope": drift.relative_slope,
                    "slope_seconds": drift.slope_seconds,
                    "level_seconds": drift.level_seconds,
                    "volume_trend": drift.volume_trend,
                    "windows": drift.windows,
                },
            )
        )
    rate = totals.exception_rate
    if report.advice.over_threshold and rate is not None and totals.volume >= advisor_min_volume:
        found.append(
            Alert(
                AlertKind.EXCEPTION_RATE,
                t,
                f"exception rate {rate:.0%} of {totals.volume} requests is over the 20% line",
                {
                    "exception_rate": rate,
                    "volume": totals.volume,
                    "escalation_rate": totals.escalation_rate,
                    "override_share": totals.override_share,
                },
            )
        )
    slow = [
        s
        for s in totals.steps_worst_first
        if s.past_sla_share is not None and s.past_sla_share > policy.bottleneck_share
    ]
    for step in slow:
        found.append(
            Alert(
                AlertKind.BOTTLENECK,
                t,
                f"step {step.step}: {step.past_sla_share:.0%} of {step.judged} executions "
                "waited past SLA",
                {
                    "past_sla_share": step.past_sla_share,
                    "judged": step.judged,
                    "wait_p50_seconds": step.wait_p50_seconds,
                    "wait_p95_seconds": step.wait_p95_seconds,
                },
                step=step.step,
            )
        )
    audit = totals.audit
    if decisions := audit.gaps_of(AuditKind.DECISION):
        found.append(
            Alert(
                AlertKind.AUDIT_GAP,
                t,
                f"{len(decisions)} of {audit.records_of(AuditKind.DECISION)} decisions lack an "
                "actor, a rationale or what they relied on",
                {
                    "gap_share": audit.share,
                    "decisions": audit.records_of(AuditKind.DECISION),
                    "override_gap_share": audit.share_of(AuditKind.OVERRIDE),
                    "resolution_gap_share": audit.share_of(AuditKind.RESOLUTION),
                },
                record_ids=tuple(gap.record_id for gap in decisions),
            )
        )
    return found
