"""The engine, one step kind, escalation reason and override at a time, on small definitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from flowcase.events.catalogue import Outcome, Priority
from flowcase.events.catalogue.workflow import (
    ActionFailed,
    ApprovalDecided,
    ApprovalDecision,
    ApprovalRequested,
    EscalatedToCase,
    EscalationReason,
    InstanceCompleted,
    InstanceStarted,
    OverrideApplied,
    OverrideKind,
    PromiseBroken,
    SlaBreached,
    StepEntered,
)
from flowcase.workflow.definition_files import parse_definition, shipped_folder
from flowcase.workflow.effects import CancelTimer, RunAction, ScheduleTimer, SendNotification
from flowcase.workflow.engine import TriggerRefused, decide
from flowcase.workflow.state import Status
from flowcase.workflow.triggers import (
    CloseByCase,
    DecideApproval,
    FireTimer,
    ForceCompletion,
    ForceRoute,
    ReportActionFailed,
    ReportActionSucceeded,
    SkipStep,
)

CASE_ID = UUID("c2a9e1f0-4b3d-5e6f-8a7b-9c0d1e2f3a4b")
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # the Journey's clock (conftest.py)

VALIDATE = """\
- name: check
  kind: validate
  required: [customer.email]
  rules:
    - rule: payload.amount > 0
      message: The amount is positive
"""

ROUTE = """\
- name: route
  kind: route
  rules:
    - when: payload.amount >= 1000
      team: treasury
      queue: large
  otherwise: {team: payables}
"""

APPROVAL = """\
- name: approve
  kind: approval
  approvers:
    - when: payload.amount >= 10000
      role: cfo
    - when: payload.amount >= 1000
      role: finance-manager
  timeout: 2d
"""

ACTION = """\
- name: pay
  kind: action
  connector: erp
  operation: schedule-payment
  input: {amount: payload.amount, team: state.team}
  retry: {attempts: 4, backoff: 2s, max_backoff: 30s}
"""


def escalation(journey) -> EscalatedToCase:
    [escalated] = journey.of(EscalatedToCase)
    assert journey.now.status is Status.ESCALATED
    return escalated


# Step kinds


def test_validate_passes_a_complete_request(definition, journey) -> None:
    run = journey(definition(VALIDATE))
    run.submit({"amount": 5, "customer": {"email": "a@example.com"}})
    assert run.outcomes() == [("check", "valid")]
    assert run.now.status is Status.COMPLETED


def test_validate_rejects_with_every_reason(definition, journey) -> None:
    schema = "{type: object, properties: {amount: {type: number}}}"
    run = journey(definition(VALIDATE, schema=schema))
    run.submit({"amount": "ten"})
    [completed] = run.of(InstanceCompleted)
    assert completed.outcome is Outcome.REJECTED
    assert [r.field for r in completed.reasons] == ["", "payload.amount", "payload.customer.email"]
    assert completed.reasons[0].reason.startswith("The amount is positive (`payload.amount > 0`")
    assert completed.reasons[1].reason == "'ten' is not of type 'number'"
    assert run.now.status is Status.REJECTED
    assert run.outcomes() == [("check", "invalid")]


def test_validate_rejects_a_failed_rule_with_its_message(definition, journey) -> None:
    run = journey(definition(VALIDATE))
    run.submit({"amount": -1, "customer": {"email": "a@example.com"}})
    [completed] = run.of(InstanceCompleted)
    assert [(r.field, r.reason) for r in completed.reasons] == [("", "The amount is positive")]


@pytest.mark.parametrize(
    ("amount", "team", "queue", "rule"),
    [(5000, "treasury", "large", "payload.amount >= 1000"), (10, "payables", None, None)],
)
def test_route_takes_the_first_matching_rule_else_otherwise(
    definition, journey, amount, team, queue, rule
) -> None:
    run = journey(definition(ROUTE))
    run.submit({"amount": amount})
    assert run.outcomes() == [("route", team)]
    assert (run.now.route.team, run.now.route.queue, run.now.route.rule) == (team, queue, rule)


def test_sla_met_when_its_step_completes_in_time(definition, journey) -> None:
    run = journey(definition("- {name: watch, kind: sla, within: 15m, until: pay}\n" + ACTION))
    run.submit({"amount": 10})
    entered = run.of(StepEntered)[0]
    assert entered.sla_due_at == run.clock + timedelta(minutes=15)
    assert run.effects(ScheduleTimer)[0].timer_id == "watch/sla"
    run.send(ReportActionSucceeded(step="pay", result={"id": 1}), after=timedelta(minutes=5))
    assert run.effects(CancelTimer) == [
        CancelTimer(request_id=run.request_id, timer_id="watch/sla")
    ]
    assert run.now.status is Status.COMPLETED


def test_sla_breach_escalates(definition, journey) -> None:
    run = journey(definition("- {name: watch, kind: sla, within: 15m, until: pay}\n" + ACTION))
    run.submit({"amount": 10})
    run.send(FireTimer(timer_id="watch/sla"), after=timedelta(minutes=15))
    [breach] = run.of(SlaBreached)
    assert (breach.step, breach.sla_seconds) == ("watch", 900)
    escalated = escalation(run)
    assert (escalated.reason_code, escalated.step) == (EscalationReason.SLA_BREACHED, "watch")
    # The step in progress closes with the reason, so the case's history has no loose end.
    assert run.outcomes()[-1] == ("pay", "sla_breached")
    assert escalated.history[-1].outcome == "sla_breached"


def test_sla_without_until_lasts_until_the_instance_completes(definition, journey) -> None:
    run = journey(definition("- {name: watch, kind: sla, within: 1h}\n" + ACTION))
    run.submit({"amount": 10})
    run.send(ReportActionSucceeded(step="pay"))
    assert run.effects(CancelTimer)[0].timer_id == "watch/sla"


def test_approval_is_asked_of_the_first_matching_role(definition, journey) -> None:
    run = journey(definition(APPROVAL))
    run.submit({"amount": 20000})
    [requested] = run.of(ApprovalRequested)
    assert (requested.approver_role, requested.rule) == ("cfo", "payload.amount >= 10000")
    assert requested.due_at == run.clock + timedelta(days=2)
    assert run.effects(ScheduleTimer) == [
        ScheduleTimer(
            request_id=run.request_id, timer_id="approve/approval-timeout", fire_at=requested.due_at
        )
    ]
    run.send(DecideApproval(step="approve", decision=ApprovalDecision.APPROVED, actor="cfo-1"))
    assert run.outcomes() == [("approve", "approved")]
    [decided] = run.of(ApprovalDecided)
    assert run.last.turn.actor_of(decided) == "cfo-1"
    assert run.effects(CancelTimer)[0].timer_id == "approve/approval-timeout"
    assert run.now.status is Status.COMPLETED


def test_approval_below_every_threshold_is_not_required(definition, journey) -> None:
    run = journey(definition(APPROVAL))
    run.submit({"amount": 10})
    assert run.outcomes() == [("approve", "not_required")]
    assert run.of(ApprovalRequested) == []


def test_approval_denied_escalates(definition, journey) -> None:
    run = journey(definition(APPROVAL))
    run.submit({"amount": 5000})
    run.send(
        DecideApproval(
            step="approve", decision=ApprovalDecision.DENIED, actor="fm", rationale="Duplicate"
        )
    )
    escalated = escalation(run)
    assert escalated.reason_code is EscalationReason.APPROVAL_DENIED
    assert escalated.reason == "finance-manager denied the approval: Duplicate"


def test_approval_timeout_escalates(definition, journey) -> None:
    run = journey(definition(APPROVAL))
    run.submit({"amount": 5000})
    run.send(FireTimer(timer_id="approve/approval-timeout"), after=timedelta(days=2))
    escalated = escalation(run)
    assert (escalated.reason_code, escalated.step) == (
        EscalationReason.APPROVAL_TIMED_OUT,
        "approve",
    )
    assert run.outcomes() == [("approve", "approval_timed_out")]


def test_an_approval_must_be_for_the_waiting_step(definition, journey) -> None:
    run = journey(definition(APPROVAL))
    run.submit({"amount": 5000})
    with pytest.raises(TriggerRefused):
        run.send(DecideApproval(step="other", decision=ApprovalDecision.APPROVED, actor="x"))
    run.send(DecideApproval(step="approve", decision=ApprovalDecision.APPROVED, actor="x"))
    with pytest.raises(TriggerRefused):
        run.send(DecideApproval(step="approve", decision=ApprovalDecision.APPROVED, actor="x"))


def test_action_runs_through_its_connector_with_its_retry_policy(definition, journey) -> None:
    run = journey(definition(ROUTE + ACTION))
    run.submit({"amount": 5000})
    assert run.effects(RunAction) == [
        RunAction(
            request_id=run.request_id,
            step="pay",
            connector="erp",
            operation="schedule-payment",
            input={"amount": 5000, "team": "treasury"},
            idempotency_key=f"{run.request_id}/pay",
            attempts=4,
            backoff=timedelta(seconds=2),
            max_backoff=timedelta(seconds=30),
        )
    ]
    run.send(ReportActionSucceeded(step="pay", attempts=2, result={"payment_id": "P-1"}))
    assert run.now.outputs == {"pay": {"payment_id": "P-1"}}
    assert run.now.status is Status.COMPLETED


def test_action_failed_after_retries_escalates(definition, journey) -> None:
    run = journey(definition(ACTION))
    run.submit({"amount": 5})
    run.send(ReportActionFailed(step="pay", attempts=4, error="HTTP 503"))
    [failed] = run.of(ActionFailed)
    assert (failed.attempts, failed.error) == (4, "HTTP 503")
    escalated = escalation(run)
    assert escalated.reason_code is EscalationReason.ACTION_FAILED


def test_a_late_action_report_changes_nothing(definition, journey) -> None:
    run = journey(definition(ACTION))
    run.submit({"amount": 5})
    run.send(ForceCompletion(actor="sup", reason="Paid by hand"))
    decision = run.send(ReportActionSucceeded(step="pay"))
    assert (decision.turn.events, decision.effects) == ((), ())


def test_notify_sends_to_the_recipients_the_expression_gives(definition, journey) -> None:
    run = journey(
        definition(
            "- name: tell\n  kind: notify\n  channel: email\n"
            "  to: \"[request.requester, 'audit@example.com']\"\n  template: done\n"
        )
    )
    run.submit({"amount": 5}, requester="jdoe@example.com")
    [sent] = run.effects(SendNotification)
    assert sent.recipients == ("jdoe@example.com", "audit@example.com")
    assert (sent.channel, sent.template) == ("email", "done")
    assert run.outcomes() == [("tell", "sent")]


BRANCH = """\
- name: choose
  kind: branch
  cases:
    - when: payload.kind == 'small'
      goto: small
    - when: payload.kind == 'none'
      goto: end
- name: large
  kind: notify
  channel: email
  to: "'large@example.com'"
  template: large
- name: small
  kind: notify
  channel: email
  to: "'small@example.com'"
  template: small
"""


@pytest.mark.parametrize(
    ("kind", "outcomes"),
    [
        ("small", [("choose", "small"), ("small", "sent")]),
        ("none", [("choose", "end")]),
    ],
)
def test_branch_jumps_to_the_first_matching_case(definition, journey, kind, outcomes) -> None:
    run = journey(definition(BRANCH))
    run.submit({"kind": kind})
    assert run.outcomes() == outcomes
    assert run.now.status is Status.COMPLETED


def test_no_branch_matched_escalates(definition, journey) -> None:
    run = journey(definition(BRANCH))
    run.submit({"kind": "medium"})
    escalated = escalation(run)
    assert (escalated.reason_code, escalated.step) == (EscalationReason.NO_BRANCH_MATCHED, "choose")


ESCALATE = """\
- name: triage
  kind: escalate
  when: payload.severity == 'high'
  reason: High severity needs an investigation
  priority: urgent
"""


def test_escalate_by_rule_carries_the_payload_history_and_priority(definition, journey) -> None:
    run = journey(definition(ROUTE + ESCALATE))
    run.submit({"amount": 5, "severity": "high"}, requester="jdoe")
    escalated = escalation(run)
    assert escalated.reason_code is EscalationReason.RULE
    assert escalated.reason == "High severity needs an investigation"
    assert escalated.priority is Priority.URGENT
    assert escalated.intake_payload == {"amount": 5, "severity": "high"}
    assert [(r.step, r.outcome) for r in escalated.history] == [
        ("route", "payables"),
        ("triage", "rule"),
    ]


def test_escalate_rule_that_does_not_hold_lets_the_request_through(definition, journey) -> None:
    run = journey(definition(ESCALATE))
    run.submit({"severity": "low"})
    assert run.outcomes() == [("triage", "not_escalated")]
    assert run.now.status is Status.COMPLETED


def test_a_rule_that_cannot_be_evaluated_escalates(definition, journey) -> None:
    run = journey(definition(ROUTE))
    run.submit({"no_amount": True})
    escalated = escalation(run)
    assert escalated.reason_code is EscalationReason.RULE
    assert escalated.reason.startswith("rule failed at route: `payload.amount >= 1000`")


# Cases and timers


def test_a_resolved_case_closes_the_escalated_instance(definition, journey) -> None:
    run = journey(definition(ESCALATE))
    run.submit({"severity": "high"})
    run.send(CloseByCase(case_id=CASE_ID), after=timedelta(days=3))
    [completed] = run.of(InstanceCompleted)
    assert (completed.outcome, completed.case_id) == (Outcome.RESOLVED_BY_CASE, CASE_ID)
    assert run.now.status is Status.RESOLVED_BY_CASE
    again = run.send(CloseByCase(case_id=CASE_ID))
    assert again.turn.events == ()


def test_a_case_resolution_for_a_running_instance_changes_nothing(definition, journey) -> None:
    run = journey(definition(ACTION))
    run.submit({"amount": 5})
    assert run.send(CloseByCase(case_id=CASE_ID)).turn.events == ()


def test_escalation_cancels_every_timer(definition, journey) -> None:
    run = journey(definition("- {name: watch, kind: sla, within: 1h}\n" + APPROVAL))
    run.submit({"amount": 5000})
    assert {t.timer_id for t in run.effects(ScheduleTimer)} == {
        "watch/sla",
        "approve/approval-timeout",
    }
    run.send(DecideApproval(step="approve", decision=ApprovalDecision.DENIED, actor="fm"))
    assert {t.timer_id for t in run.effects(CancelTimer)} == {
        "watch/sla",
        "approve/approval-timeout",
    }
    assert run.now.timers() == {}


def test_a_cancelled_or_repeated_timer_fires_nothing(definition, journey) -> None:
    run = journey(definition(APPROVAL))
    run.submit({"amount": 5000})
    run.send(DecideApproval(step="approve", decision=ApprovalDecision.APPROVED, actor="fm"))
    assert run.send(FireTimer(timer_id="approve/approval-timeout")).turn.events == ()
    assert run.send(FireTimer(timer_id="no/such-timer")).turn.events == ()


def test_a_repeated_submission_changes_nothing(definition, journey) -> None:
    run = journey(definition(APPROVAL))
    run.submit({"amount": 5000})
    assert run.submit({"amount": 5000}).turn.events == ()


def test_nothing_but_a_submission_starts_an_instance(definition) -> None:
    with pytest.raises(TriggerRefused):
        decide(
            definition(APPROVAL), None, FireTimer(timer_id="x"), datetime(2026, 1, 1, tzinfo=UTC)
        )


# Overrides


def test_skip_step_records_who_and_why_and_moves_on(definition, journey) -> None:
    run = journey(definition(APPROVAL + ACTION))
    run.submit({"amount": 5000})
    run.send(SkipStep(step="approve", actor="supervisor", reason="Approved on the phone"))
    [override] = run.of(OverrideApplied)
    assert override.model_dump(include={"override", "step", "rule", "reason"}) == {
        "override": OverrideKind.SKIP_STEP,
        "step": "approve",
        "rule": "payload.amount >= 1000",
        "reason": "Approved on the phone",
    }
    assert run.last.turn.actor_of(override) == "supervisor"
    assert run.outcomes() == [("approve", "skipped")]
    assert run.now.current_step == "pay"
    assert run.effects(CancelTimer)[0].timer_id == "approve/approval-timeout"


def test_skip_step_must_name_the_waiting_step(definition, journey) -> None:
    run = journey(definition(APPROVAL + ACTION))
    run.submit({"amount": 5000})
    with pytest.raises(TriggerRefused):
        run.send(SkipStep(step="pay", actor="supervisor", reason="Stale screen"))


def test_force_route_overrides_the_decided_route(definition, journey) -> None:
    run = journey(definition(ROUTE + APPROVAL))
    run.submit({"amount": 5000})
    run.send(ForceRoute(team="audit", actor="supervisor", reason="Vendor under review"))
    [override] = run.of(OverrideApplied)
    assert (override.override, override.step, override.rule, override.target) == (
        OverrideKind.FORCE_ROUTE,
        "route",
        "payload.amount >= 1000",
        "audit",
    )
    assert run.now.route.team == "audit"


def test_force_route_needs_a_decided_route(definition, journey) -> None:
    run = journey(definition(APPROVAL))
    run.submit({"amount": 5000})
    with pytest.raises(TriggerRefused):
        run.send(ForceRoute(team="audit", actor="supervisor", reason="Because"))


def test_force_completion_completes_and_cancels_timers(definition, journey) -> None:
    run = journey(definition(APPROVAL))
    run.submit({"amount": 5000})
    run.send(ForceCompletion(actor="supervisor", reason="Handled outside the tool"))
    assert run.of(OverrideApplied)[0].override is OverrideKind.FORCE_COMPLETION
    assert run.outcomes() == [("approve", "force_completed")]
    assert run.of(InstanceCompleted)[0].outcome is Outcome.COMPLETED
    assert run.effects(CancelTimer)[0].timer_id == "approve/approval-timeout"


def test_overrides_need_a_running_instance(definition, journey) -> None:
    run = journey(definition(ESCALATE))
    run.submit({"severity": "high"})
    with pytest.raises(TriggerRefused):
        run.send(ForceCompletion(actor="supervisor", reason="The case owns it now"))


def test_an_override_needs_an_actor_and_a_reason() -> None:
    with pytest.raises(ValueError, match="at least 1 character"):
        ForceCompletion(actor="supervisor", reason="")


def test_the_definition_must_be_the_pinned_version(definition, journey) -> None:
    run = journey(definition(APPROVAL))
    run.submit({"amount": 5000})
    with pytest.raises(ValueError, match="runs test_type v1"):
        decide(definition(APPROVAL, version=2), run.state, FireTimer(timer_id="x"), run.clock)


# The request's promise: one clock from submission to resolution ------------------------------


def test_the_promise_starts_at_submission_and_goes_with_the_escalation(journey) -> None:
    text = (shipped_folder() / "access_complaint.yaml").read_text()
    promised = parse_definition(
        text.replace("steps:\n", "resolve_within: {high: 4h, normal: 2d}\nsteps:\n", 1), "p.yaml"
    )
    payload = {"system": "payroll", "complaint": "I was locked out"}
    high = journey(promised)
    high.submit(payload, priority=Priority.HIGH)
    [started] = high.of(InstanceStarted)
    assert started.due_at == T0 + timedelta(hours=4)
    # Access complaints always escalate: the case is told when the clock started and ends.
    [escalated] = high.of(EscalatedToCase)
    assert (escalated.submitted_at, escalated.due_at) == (T0, T0 + timedelta(hours=4))
    # A priority the definition names no promise for has none.
    low = journey(promised, UUID(int=5))
    low.submit(payload, priority=Priority.LOW)
    assert low.of(InstanceStarted)[0].due_at is None
    assert low.of(EscalatedToCase)[0].due_at is None


def test_a_broken_promise_is_stated_once_and_the_request_goes_on(journey) -> None:
    text = (shipped_folder() / "invoice_approval.yaml").read_text()
    promised = parse_definition(
        text.replace("steps:\n", "resolve_within: {normal: 4h}\nsteps:\n", 1), "p.yaml"
    )
    invoice = {"invoice_id": "INV-1", "vendor": "Acme", "amount": 12_000, "currency": "EUR"}
    waiting = journey(promised)
    waiting.submit(invoice)
    assert (
        ScheduleTimer(
            request_id=waiting.request_id,
            timer_id="request/promise",
            fire_at=T0 + timedelta(hours=4),
        )
        in waiting.last.effects
    )
    waiting.send(FireTimer(timer_id="request/promise"), after=timedelta(hours=4))
    [broken] = waiting.of(PromiseBroken)
    assert (broken.due_at, broken.step) == (T0 + timedelta(hours=4), "finance-approval")
    # Stated once: the timer is spent; the request still waits for its approval.
    assert waiting.send(FireTimer(timer_id="request/promise")).turn.events == ()
    assert waiting.now.status is Status.RUNNING
    assert "finance-approval/approval-timeout" in waiting.now.timers()

    # A request that became a case before its due time leaves the clock to the case.
    escalated = journey(promised, UUID(int=9))
    escalated.submit(invoice)
    escalated.send(
        DecideApproval(step="finance-approval", decision=ApprovalDecision.DENIED, actor="fd")
    )
    assert escalated.now.status is Status.ESCALATED
    assert (
        CancelTimer(request_id=escalated.request_id, timer_id="request/promise")
        in escalated.last.effects
    )
    assert escalated.of(PromiseBroken) == []


def test_a_broken_promise_takes_the_path_the_definition_names(journey) -> None:
    text = (shipped_folder() / "invoice_approval.yaml").read_text()
    path = (
        "resolve_within: {normal: 4h}\n"
        "when_promise_broken:\n"
        "  raise_priority: high\n"
        "  reassign: {team: finance-escalations, queue: overdue}\n"
        "  notify: {channel: email, to: request.requester, template: invoice-overdue}\n"
    )
    promised = parse_definition(text.replace("steps:\n", path + "steps:\n", 1), "p.yaml")
    waiting = journey(promised)
    waiting.submit({"invoice_id": "INV-1", "vendor": "Acme", "amount": 12_000, "currency": "EUR"})
    waiting.send(FireTimer(timer_id="request/promise"), after=timedelta(hours=4))
    [broken] = waiting.of(PromiseBroken)
    assert (broken.raised_to, broken.reassigned_to, broken.queue) == (
        Priority.HIGH,
        "finance-escalations",
        "overdue",
    )
    assert waiting.now.priority is Priority.HIGH
    assert waiting.now.route is not None
    assert (waiting.now.route.team, waiting.now.route.queue) == ("finance-escalations", "overdue")
    [told] = waiting.effects(SendNotification)
    assert (told.recipients, told.template) == (("jdoe@example.com",), "invoice-overdue")
    assert told.idempotency_key == f"{waiting.request_id}/request/promise"
    # Still waiting for its approval, now on the reassigned team's desk.
    assert waiting.now.current_step == "finance-approval"
