"""The approach advisor: workflow, case, or the two layered, with the figures behind it.

The rule, from the article's metrics ("exception rate above 20% or frequent manual overrides:
the approach is probably wrong for the work"; "workflow ... when that order holds"; "case ...
when the next step routinely depends on what you find"), applied to one process type over an
assessment period (a few weeks of traffic, say):

1. Fewer than `min_volume` requests (30): no recommendation. One request more or less would
   move the exception rate by over 3 points, too coarse to place work against a 20% line.
2. Exception rate above `majority` (50%): **case**. Most requests leave the defined path or
   need a person to force them through: the work is judgment, the case record should carry it.
3. Exception rate above `threshold` (20%): **layered**. The workflow is wrong for this much of
   the work, yet a routine majority still follows it: keep workflow intake for the majority and
   escalate the significant minority to case.
4. Exception rate at most 20% but more than `override_limit` (20) overrides per 100 requests:
   **layered**. Few requests, but overridden again and again: that minority needs judgment the
   workflow cannot script, and should escalate to case instead of being forced through.
5. Otherwise (low exception rate, few overrides): **workflow**.

Resolution-time drift and audit-trail gaps are reported with the advice as warnings; they do
not change it, because they say how well exceptions are handled, not how much of the work needs
judgment. The rule that is overridden most is named, so the figures point at what to fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from flowcase.governance.drift import Drift
from flowcase.governance.facts import AuditKind
from flowcase.governance.metrics import ProcessMetrics


class Approach(StrEnum):
    WORKFLOW = "workflow"
    CASE = "case"
    LAYERED = "layered"


@dataclass(frozen=True)
class AdvisorPolicy:
    min_volume: int = 30
    threshold: float = 0.20
    majority: float = 0.50
    override_limit: float = 20.0


@dataclass(frozen=True)
class Advice:
    """The recommendation (None with too little data), why, and the figures it rests on."""

    process_type: str
    approach: Approach | None
    reason: str
    volume: int
    exception_rate: float | None
    escalation_rate: float | None
    override_share: float | None
    overrides_per_100: float | None
    sla_breach_rate: float | None
    audit_gap_share: float | None
    worst_step: str | None
    most_overridden_rule: str | None
    over_threshold: bool
    warnings: tuple[str, ...]


def advise(
    metrics: ProcessMetrics, drift: Drift | None = None, policy: AdvisorPolicy = AdvisorPolicy()
) -> Advice:
    """Recommend an approach for `metrics.process_type` from its metrics over a period."""
    approach, reason = _decide(metrics, policy)
    worst = metrics.worst_step
    rule = metrics.most_overridden_rule
    return Advice(
        process_type=metrics.process_type,
        approach=approach,
        reason=reason,
        volume=metrics.volume,
        exception_rate=metrics.exception_rate,
        escalation_rate=metrics.escalation_rate,
        override_share=metrics.override_share,
        overrides_per_100=metrics.overrides_per_100,
        sla_breach_rate=metrics.sla_breach_rate,
        audit_gap_share=metrics.audit.share,
        worst_step=worst.step if worst else None,
        most_overridden_rule=(
            f"{rule.rule or '(no rule)'} (v{rule.definition_version})" if rule else None
        ),
        over_threshold=(
            metrics.exception_rate is not None and metrics.exception_rate > policy.threshold
        ),
        warnings=_warnings(metrics, drift),
    )


def _decide(metrics: ProcessMetrics, policy: AdvisorPolicy) -> tuple[Approach | None, str]:
    rate, per_100 = metrics.exception_rate, metrics.overrides_per_100
    if metrics.volume < policy.min_volume or rate is None or per_100 is None:
        return None, f"{metrics.volume} requests; at least {policy.min_volume} are needed"
    figures = f"exception rate {rate:.0%}, {per_100:.0f} overrides per 100 requests"
    if rate > policy.majority:
        return Approach.CASE, f"{figures}: most requests need judgment"
    if rate > policy.threshold:
        return (
            Approach.LAYERED,
            f"{figures}: over {policy.threshold:.0%}, but a routine majority follows the path",
        )
    if per_100 > policy.override_limit:
        return (
            Approach.LAYERED,
            f"{figures}: overrides concentrate on a minority that needs judgment",
        )
    return Approach.WORKFLOW, f"{figures}: the defined path holds"


def _warnings(metrics: ProcessMetrics, drift: Drift | None) -> tuple[str, ...]:
    warnings = []
    if drift is not None and drift.flagged and drift.relative_slope is not None:
        warnings.append(
            f"resolution time drifting up {drift.relative_slope:.0%} per window "
            f"while volume is {drift.volume_trend}"
        )
    audit = metrics.audit
    lacking = [
        f"{len(audit.gaps_of(kind))} of {audit.records_of(kind)} {kind.value}s"
        for kind in AuditKind
        if audit.gaps_of(kind)
    ]
    if lacking:
        warnings.append(f"{', '.join(lacking)} lack an actor, rationale or what they relied on")
    return tuple(warnings)
