"""Every formula of `metrics` on a hand-made history, with the answer worked out by hand."""

from datetime import timedelta
from uuid import uuid4

import pytest

from flowcase.events import Outcome
from flowcase.events.catalogue import case as case_events
from flowcase.events.catalogue.workflow import StepKind
from flowcase.governance.facts import AuditKind, Facts, Missing
from flowcase.governance.metrics import AuditGap, measure, process_types, series
from flowcase.governance.projector import fold
from flowcase.governance.windows import Granularity, window_of

MINUTE, HOUR = 60.0, 3600.0


def monday(history):
    return window_of(history.at(), Granularity.DAY)


def test_exceptions_and_overrides_of_a_window(history):
    # Ten requests on Monday: seven ran definition v1, three v2.
    rs = [history.submit("invoice", history.at(hours=9, minutes=n)) for n in range(10)]
    for n, request_id in enumerate(rs):
        history.start(request_id, "invoice", history.at(hours=9, minutes=n), version=1 + (n >= 7))
    history.escalate(rs[0], "invoice", history.at(hours=10))  # escalated
    history.override(rs[1], history.at(hours=10), rule="amount < 5000", version=1)  # overridden
    history.override(rs[1], history.at(hours=11), rule="amount < 5000", version=1)  # ... twice
    history.override(rs[2], history.at(hours=10), rule="amount < 5000", version=1)  # both
    history.escalate(rs[2], "invoice", history.at(hours=12))
    history.override(rs[8], history.at(hours=10), rule=None, version=2)  # no rule named

    m = measure(fold(history.events), "invoice", monday(history))

    assert (m.volume, m.escalated, m.overridden, m.exceptions, m.overrides) == (10, 2, 3, 4, 4)
    assert m.exception_rate == pytest.approx(0.4)
    assert m.escalation_rate == pytest.approx(0.2)
    assert m.override_share == pytest.approx(0.3)
    assert m.overrides_per_100 == pytest.approx(40.0)
    top, other = m.rule_overrides
    assert (top.rule, top.definition_version, top.overrides, top.requests) == (
        "amount < 5000",
        1,
        3,
        2,
    )
    assert top.share == pytest.approx(2 / 7)
    assert (other.rule, other.definition_version, other.overrides, other.share) == (
        None,
        2,
        1,
        1 / 3,
    )
    assert m.most_overridden_rule == top


def test_a_request_counts_in_the_window_of_its_submission_not_of_its_escalation(history):
    # Submitted 23:50 on Monday; escalated and overridden on Tuesday.
    request_id = history.submit("invoice", history.at(hours=23, minutes=50))
    history.escalate(request_id, "invoice", history.at(days=1, minutes=10))
    history.override(request_id, history.at(days=1, minutes=20))

    mon, tue = series(
        fold(history.events), "invoice", Granularity.DAY, history.at(), history.at(days=1)
    )

    assert (mon.volume, mon.exceptions, mon.overrides, mon.exception_rate) == (1, 1, 1, 1.0)
    assert (tue.volume, tue.exceptions, tue.overrides, tue.exception_rate) == (0, 0, 0, None)


def test_a_request_without_its_submission_is_not_in_volume_yet(history):
    request_id = history.submit("invoice", history.at(hours=1))
    history.escalate(request_id, "invoice", history.at(hours=2))
    late_submission, *rest = history.events
    assert measure(fold(rest), "invoice", monday(history)).volume == 0
    assert measure(fold([*rest, late_submission]), "invoice", monday(history)).exceptions == 1


@pytest.fixture
def steps(history):
    """Five requests through `approve` (SLA 25 minutes after entry), two through `validate`.

    approve waits: 10, 20, 30, 40 minutes and one still open but flagged by SlaBreached.
    validate waits: 1 minute each, with no SLA stated.
    """
    rs = [history.submit("invoice", history.at(hours=9)) for _ in range(5)]
    for request_id, wait in zip(rs[:4], (10, 20, 30, 40), strict=True):
        history.enter(
            request_id, "approve", history.at(hours=9), sla_due_at=history.at(hours=9, minutes=25)
        )
        history.complete(request_id, "approve", history.at(hours=9, minutes=wait))
    history.enter(rs[4], "approve", history.at(hours=9), sla_due_at=history.at(hours=9, minutes=25))
    history.breach(rs[4], "approve", history.at(hours=9, minutes=25))
    for request_id in rs[:2]:
        history.enter(request_id, "validate", history.at(hours=8), kind=StepKind.VALIDATE)
        history.complete(
            request_id, "validate", history.at(hours=8, minutes=1), kind=StepKind.VALIDATE
        )
    return fold(history.events)


def test_step_waits_and_the_share_past_sla(history, steps):
    m = measure(steps, "invoice", monday(history))
    approve, validate = m.steps
    assert (approve.step, approve.kind, approve.executions, approve.completed) == (
        "approve",
        StepKind.APPROVAL,
        5,
        4,
    )
    # Nearest rank over [10, 20, 30, 40] minutes: p50 is rank 2, p95 rank 4.
    assert (approve.wait_p50_seconds, approve.wait_p95_seconds) == (20 * MINUTE, 40 * MINUTE)
    # Judged: the four completed plus the flagged open one; past: 30, 40 and the flagged one.
    assert (approve.judged, approve.past_sla, approve.past_sla_share) == (5, 3, 0.6)
    assert (validate.wait_p50_seconds, validate.judged, validate.past_sla_share) == (60.0, 0, None)
    assert m.worst_step == approve
    # Requests with a step past SLA: the 30- and 40-minute ones and the flagged one.
    assert (m.sla_breached, m.sla_breach_rate) == (3, 0.6)


def test_a_configured_default_sla_judges_steps_that_state_none(history, steps):
    m = measure(steps, "invoice", monday(history), default_sla=timedelta(seconds=30))
    approve, validate = m.steps
    assert (validate.judged, validate.past_sla, validate.past_sla_share) == (2, 2, 1.0)
    assert approve.past_sla_share == 0.6  # its own SLA still rules
    assert m.worst_step == validate
    assert m.sla_breach_rate == 1.0  # the two 10- and 20-minute approvals waited in validate


def test_the_worst_step_without_any_sla_is_the_slowest(history):
    request_id = history.submit("invoice", history.at())
    for step, minutes in (("fast", 1), ("slow", 9)):
        history.enter(request_id, step, history.at())
        history.complete(request_id, step, history.at(minutes=minutes))
    worst = measure(fold(history.events), "invoice", monday(history)).worst_step
    assert worst is not None
    assert worst.step == "slow"


def test_audit_trail_gaps_with_the_offending_ids(history):
    request_id = history.submit("complaint", history.at())
    history.approve(request_id, "triage", history.at(minutes=1), actor="m", rationale="clear")
    override = history.override(request_id, history.at(minutes=2), actor=None)
    case_id = history.open_case("complaint", history.at(minutes=3), request_id=request_id)
    history.decide(case_id, "d-ok", history.at(minutes=4))
    history.decide(case_id, "d-why", history.at(minutes=5), rationale=None)
    history.decide(case_id, "d-ack", history.at(minutes=6), gap_acknowledged=True)
    history.case_override(case_id, "o-1", history.at(minutes=7), actor=None)
    history.resolve(case_id, history.at(minutes=8), relied_on=())

    audit = measure(fold(history.events), "complaint", monday(history)).audit

    case = f"case/{case_id}"
    assert audit.records == 7
    # The headline is the decisions': the approval and three case decisions, two with a gap.
    assert audit.share == pytest.approx(2 / 4)
    assert [(audit.records_of(k), audit.share_of(k)) for k in AuditKind] == [
        (4, 0.5),
        (2, 1.0),
        (1, 1.0),
    ]
    assert audit.gaps == (
        AuditGap(f"{case}/decision/d-ack", AuditKind.DECISION, (Missing.ACKNOWLEDGED_GAP,)),
        AuditGap(f"{case}/decision/d-why", AuditKind.DECISION, (Missing.RATIONALE,)),
        AuditGap(f"{case}/override/o-1", AuditKind.OVERRIDE, (Missing.ACTOR,)),
        AuditGap(f"{case}/resolution", AuditKind.RESOLUTION, (Missing.RELIED_ON,)),
        AuditGap(
            f"request/{request_id}/override/{override.payload.override_id}",
            AuditKind.OVERRIDE,
            (Missing.ACTOR,),
        ),
    )
    assert audit.offending_ids[0] == f"{case}/decision/d-ack"


def test_complete_resolutions_do_not_hide_unexplained_decisions(history):
    # 80 cases, each decided once and resolved with everything a resolution needs; 24 of the
    # decisions give no rationale. Over every record that read 15 %; over decisions it is 30 %.
    for n in range(80):
        request_id = history.submit("complaint", history.at(minutes=n))
        case_id = history.open_case("complaint", history.at(minutes=n), request_id=request_id)
        history.decide(case_id, "d-1", history.at(minutes=n), rationale=None if n < 24 else "ok")
        history.resolve(case_id, history.at(minutes=n + 1))

    audit = measure(fold(history.events), "complaint", monday(history)).audit

    assert (audit.records, len(audit.gaps)) == (160, 24)
    assert audit.share == pytest.approx(0.30)
    assert audit.share_of(AuditKind.RESOLUTION) == 0.0


def test_resolution_time_is_the_median_of_cases_resolved_in_the_window(history):
    for hours in (2, 4, 10, 3):
        case_id = history.open_case("complaint", history.at(hours=1))
        # The 3-hour case resolves on Tuesday: it belongs to Tuesday's median.
        history.resolve(case_id, history.at(days=1 if hours == 3 else 0, hours=1 + hours))
    mon, tue = series(
        fold(history.events), "complaint", Granularity.DAY, history.at(), history.at(days=1)
    )
    # Monday resolved 2, 4 and 10 hours after opening; nearest-rank median is rank 2: 4 hours.
    assert (mon.resolution.opened, mon.resolution.resolved) == (4, 3)
    assert mon.resolution.median_seconds == 4 * HOUR
    assert mon.resolution.still_open == 0
    assert (tue.resolution.opened, tue.resolution.resolved) == (0, 1)
    assert tue.resolution.median_seconds == 27 * HOUR


def test_the_median_of_an_even_count_of_cases_is_the_lower_middle(history):
    for hours in (1, 2, 3, 4):
        case_id = history.open_case("complaint", history.at())
        history.resolve(case_id, history.at(hours=hours))
    m = measure(fold(history.events), "complaint", monday(history))
    assert m.resolution.median_seconds == 2 * HOUR


def test_all_cases_still_open_have_no_median(history):
    for _ in range(3):
        history.open_case("complaint", history.at(hours=2))
    resolution = measure(fold(history.events), "complaint", monday(history)).resolution
    assert (resolution.opened, resolution.still_open, resolution.resolved) == (3, 3, 0)
    assert resolution.median_seconds is None


def test_a_case_takes_its_process_type_from_its_request_when_it_states_none(history):
    request_id = history.submit("complaint", history.at())
    case_id = history.open_case(None, history.at(hours=1), request_id=request_id)
    history.resolve(case_id, history.at(hours=3))
    m = measure(fold(history.events), "complaint", monday(history))
    assert (m.resolution.resolved, m.resolution.median_seconds) == (1, 2 * HOUR)


def test_an_empty_window_has_zero_counts_and_no_rates(history):
    history.submit("invoice", history.at(days=3))
    m = measure(fold(history.events), "invoice", monday(history))
    assert (m.volume, m.exceptions, m.overrides, m.sla_breached) == (0, 0, 0, 0)
    assert m.exception_rate is m.override_share is m.overrides_per_100 is m.sla_breach_rate is None
    assert (m.steps, m.rule_overrides, m.worst_step, m.most_overridden_rule) == ((), (), None, None)
    assert (m.audit.records, m.audit.share, m.audit.offending_ids) == (0, None, ())
    assert m.resolution.median_seconds is None


def test_no_facts_at_all(history):
    facts = Facts()
    assert process_types(facts) == []
    assert measure(facts, "invoice", monday(history)).volume == 0


def test_a_series_lists_empty_windows_between_busy_ones(history):
    history.submit("invoice", history.at(hours=1))
    history.submit("invoice", history.at(days=3, hours=1))
    volumes = [
        m.volume
        for m in series(
            fold(history.events), "invoice", Granularity.DAY, history.at(), history.at(days=3)
        )
    ]
    assert volumes == [1, 0, 0, 1]


def test_a_single_window_series_equals_measuring_that_window(history):
    request_id = history.submit("invoice", history.at(hours=5))
    history.override(request_id, history.at(hours=6))
    facts = fold(history.events)
    (only,) = series(
        facts, "invoice", Granularity.HOUR, history.at(hours=5), history.at(hours=5, minutes=59)
    )
    assert only == measure(facts, "invoice", window_of(history.at(hours=5), Granularity.HOUR))
    assert only.overrides == 1


def test_a_week_adds_up_its_days(history):
    for day in range(7):
        for n in range(day + 1):
            request_id = history.submit("invoice", history.at(days=day, hours=n))
            if n == 0:
                history.escalate(request_id, "invoice", history.at(days=day, hours=n + 1))
    facts = fold(history.events)
    days = series(facts, "invoice", Granularity.DAY, history.at(), history.at(days=6))
    week = measure(facts, "invoice", window_of(history.at(), Granularity.WEEK))
    assert week.volume == sum(d.volume for d in days) == 28
    assert week.exceptions == sum(d.exceptions for d in days) == 7
    assert week.exception_rate == pytest.approx(0.25)


def test_a_late_event_changes_its_own_window_only(history):
    early = history.submit("invoice", history.at(hours=1))
    history.submit("invoice", history.at(days=1, hours=1))
    facts = fold(history.events)
    before = series(facts, "invoice", Granularity.DAY, history.at(), history.at(days=1))
    # Days later, the escalation of Monday's request arrives.
    history.escalate(early, "invoice", history.at(days=4))
    after = series(
        fold(history.events[-1:], into=facts),
        "invoice",
        Granularity.DAY,
        history.at(),
        history.at(days=1),
    )
    assert (before[0].exceptions, after[0].exceptions) == (0, 1)
    assert after[1] == before[1]


def test_process_types_are_kept_apart(history):
    invoice = history.submit("invoice", history.at())
    history.submit("complaint", history.at())
    history.override(invoice, history.at(hours=1))
    case_id = history.open_case("onboarding", history.at())
    history.resolve(case_id, history.at(hours=1))
    facts = fold(history.events)
    assert process_types(facts) == ["complaint", "invoice", "onboarding"]
    assert measure(facts, "complaint", monday(history)).overrides == 0
    assert measure(facts, "invoice", monday(history)).overrides == 1


def test_outcomes_resolved_by_case_count_as_escalations(history):
    request_id = history.submit("invoice", history.at())
    history.finish(request_id, Outcome.RESOLVED_BY_CASE, history.at(hours=3))
    assert measure(fold(history.events), "invoice", monday(history)).escalated == 1


def test_promises_kept_and_broken_where_the_request_was_when_it_fell_due(history):
    due = history.at(hours=13)  # every promise below: four hours from 9:00

    def request(**start):
        request_id = history.submit("complaint", history.at(hours=9))
        history.start(request_id, "complaint", history.at(hours=9), **start)
        return request_id

    kept = request(due_at=due)
    history.finish(kept, Outcome.COMPLETED, history.at(hours=10))
    late = request(due_at=due)  # done two hours late, never a case
    history.finish(late, Outcome.COMPLETED, history.at(hours=15))
    in_case = request(due_at=due)  # a case at 11:00, resolved an hour late
    history.escalate(in_case, "complaint", history.at(hours=11))
    history.finish(in_case, Outcome.RESOLVED_BY_CASE, history.at(hours=14))
    escalated_late = request(due_at=due)  # due while still in the workflow, a case afterwards
    history.escalate(escalated_late, "complaint", history.at(hours=14))
    history.finish(escalated_late, Outcome.RESOLVED_BY_CASE, history.at(hours=16))
    request(due_at=due)  # still open
    refused = request(due_at=due)
    history.finish(refused, Outcome.REJECTED, history.at(hours=9))
    request()  # promised nothing

    facts = fold(history.events)
    before_due = measure(facts, "complaint", monday(history), now=history.at(hours=12))
    promises = before_due.promises
    assert (promises.judged, promises.kept) == (4, 1)
    assert (promises.broken_in_workflow, promises.broken_in_case) == (2, 1)
    assert promises.attainment == pytest.approx(0.25)
    assert promises.late_p50_seconds == 2 * HOUR  # of 2, 1 and 3 hours late
    # Past its due time the open request's promise is broken too, in the workflow.
    after_due = measure(facts, "complaint", monday(history), now=history.at(hours=14)).promises
    assert (after_due.judged, after_due.broken_in_workflow) == (5, 3)
    # Without a clock only ended requests are judged.
    assert measure(facts, "complaint", monday(history)).promises.judged == 4


def test_a_paused_clock_moves_the_promise_on(history):
    request_id = history.submit("complaint", history.at(hours=9))
    history.start(request_id, "complaint", history.at(hours=9), due_at=history.at(hours=13))
    history.escalate(request_id, "complaint", history.at(hours=10))
    # The case waited two hours on the requester: the promise is now 15:00.
    history.add(
        case_events.ClockResumed(
            case_id=uuid4(), request_id=request_id, due_at=history.at(hours=15)
        ),
        history.at(hours=12),
    )
    history.finish(request_id, Outcome.RESOLVED_BY_CASE, history.at(hours=14))
    for events in (history.events, history.events[::-1]):
        promises = measure(fold(events), "complaint", monday(history)).promises
        assert (promises.judged, promises.kept) == (1, 1)
