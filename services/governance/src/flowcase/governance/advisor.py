"""The approach advisor: workflow, case, or the two layered, with the figures behind it.

The rule is the article's, shared with the workflow's what-if (`flowcase.events.approach`):
applied here to one process type's metrics over an assessment period.

Resolution-time drift and audit-trail gaps are reported with the advice as warnings; they do
not change it, because they say how well exceptions are handled, not how much of the work needs
judgment. The rule that is overridden most is named, so the figures point at what to fix.
"""

from __future__ import annotations

from dataclasses import dataclass

from flowcase.events.approach import AdvisorPolicy, Approach, approach_for
from flowcase.governance.drift import Drift
from flowcase.governance.facts import AuditKind
from flowcase.governance.metrics import ProcessMetrics


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
    approach, reason = approach_for(
        metrics.volume, metrics.exception_rate, metrics.overrides_per_100, policy
    )
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
