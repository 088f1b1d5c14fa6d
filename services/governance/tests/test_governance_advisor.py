"""The advisor's rule at each of its lines, and on a history end to end."""

from datetime import UTC, datetime

import pytest

from flowcase.governance.advisor import AdvisorPolicy, Approach, advise
from flowcase.governance.drift import detect_drift
from flowcase.governance.metrics import (
    AuditGaps,
    ProcessMetrics,
    Promises,
    Resolution,
    RuleOverrides,
    measure,
)
from flowcase.governance.projector import fold
from flowcase.governance.windows import Granularity, Period, window_of

PERIOD = Period(datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC))


def metrics(volume, *, escalated=0, overridden=0, overrides=0, rules=()):
    return ProcessMetrics(
        process_type="invoice",
        period=PERIOD,
        volume=volume,
        escalated=escalated,
        overridden=overridden,
        exceptions=escalated + overridden,
        overrides=overrides,
        sla_breached=0,
        steps=(),
        rule_overrides=rules,
        audit=AuditGaps(records_by_kind={}, gaps=()),
        resolution=Resolution(opened=0, still_open=0, resolved=0, median_seconds=None),
        promises=Promises(0, 0, 0, 0, None),
    )


@pytest.mark.parametrize(
    ("escalated", "overridden", "overrides", "approach"),
    [
        (5, 5, 5, Approach.WORKFLOW),  # 10% exceptions, 5 overrides per 100
        (10, 10, 10, Approach.WORKFLOW),  # exactly 20% is not above the threshold
        (11, 10, 10, Approach.LAYERED),  # 21%
        (30, 20, 20, Approach.LAYERED),  # exactly 50% is not most
        (31, 20, 20, Approach.CASE),  # 51%
        (0, 5, 21, Approach.LAYERED),  # 5% overridden, but 21 overrides per 100
        (0, 5, 20, Approach.WORKFLOW),  # 20 per 100 is not above the limit
    ],
)
def test_the_rule(escalated, overridden, overrides, approach):
    m = metrics(100, escalated=escalated, overridden=overridden, overrides=overrides)
    assert advise(m).approach is approach


def test_too_few_requests_give_no_recommendation():
    advice = advise(metrics(29, escalated=29))
    assert advice.approach is None
    assert advice.reason == "29 requests; at least 30 are needed"
    assert advise(metrics(30, escalated=30)).approach is Approach.CASE


def test_no_requests_give_no_recommendation():
    assert advise(metrics(0)).approach is None


def test_the_advice_carries_its_figures():
    rule = RuleOverrides("amount < 5000", 2, overrides=12, requests=9, requests_on_version=80)
    advice = advise(metrics(100, escalated=15, overridden=10, overrides=12, rules=(rule,)))
    assert advice.approach is Approach.LAYERED
    assert advice.reason == (
        "exception rate 25%, 12 overrides per 100 requests: over 20%, "
        "but a routine majority follows the path"
    )
    assert (advice.volume, advice.exception_rate, advice.escalation_rate) == (100, 0.25, 0.15)
    assert (advice.override_share, advice.overrides_per_100) == (0.10, 12.0)
    assert advice.most_overridden_rule == "amount < 5000 (v2)"
    assert advice.over_threshold
    assert advice.warnings == ()


def test_the_thresholds_are_a_policy():
    m = metrics(100, escalated=15)
    assert advise(m).approach is Approach.WORKFLOW
    strict = AdvisorPolicy(threshold=0.10)
    assert advise(m, policy=strict).approach is Approach.LAYERED
    assert advise(m, policy=strict).over_threshold


def test_drift_warns_without_changing_the_advice():
    # Slope 20 over a level of 120 (rank 2 of four): 17% a window.
    drift = detect_drift([100, 120, 140, 160], [10, 10, 10, 10])
    advice = advise(metrics(100, escalated=5), drift)
    assert advice.approach is Approach.WORKFLOW
    assert advice.warnings == ("resolution time drifting up 17% per window while volume is flat",)


def test_a_history_end_to_end(history):
    # 40 requests in one week: 30 run straight through, 10 escalate and 2 of those are also
    # overridden (exception rate 25%); the case decisions of two lack a rationale.
    for n in range(40):
        request_id = history.submit("access", history.at(days=n % 7, hours=1))
        if n < 10:
            history.escalate(request_id, "access", history.at(days=n % 7, hours=2))
            case_id = history.open_case(
                "access", history.at(days=n % 7, hours=2), request_id=request_id
            )
            history.decide(
                case_id, "d-1", history.at(days=n % 7, hours=3), rationale=None if n < 2 else "ok"
            )
        if n < 2:
            history.override(request_id, history.at(days=n % 7, hours=2), rule="team == it")
    week = measure(fold(history.events), "access", window_of(history.at(), Granularity.WEEK))
    advice = advise(week)
    assert (advice.volume, advice.exception_rate, advice.overrides_per_100) == (40, 0.25, 5.0)
    assert advice.approach is Approach.LAYERED
    assert advice.most_overridden_rule == "team == it (v1)"
    # The headline counts decisions: 2 of the 10 case decisions (the overrides have no gap).
    assert advice.audit_gap_share == pytest.approx(2 / 10)
    assert advice.warnings == ("2 of 10 decisions lack an actor, rationale or what they relied on",)
