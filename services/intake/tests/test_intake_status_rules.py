"""The status read model's rules, without servers: never backwards, whatever the arrival order."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from flowcase.events.catalogue import case, intake, workflow
from flowcase.events.catalogue.base import EventPayload
from flowcase.events.envelope import Envelope
from flowcase.intake.status import (
    DeadLetter,
    RequestState,
    RequestStatus,
    advance,
    observe,
    observe_dead_letter,
)

REQUEST = UUID("0b5e6a0e-8f3c-4c1e-9a57-6d2f3c4b5a69")
CASE = UUID("c2a9e1f0-4b3d-5e6f-8a7b-9c0d1e2f3a4b")
T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def event(payload: EventPayload, minute: int) -> Envelope:
    return Envelope.wrap(
        payload, source="test", request_id=REQUEST, occurred_at=T0 + timedelta(minutes=minute)
    )


def submitted(minute: int = 0) -> Envelope:
    return event(
        intake.RequestSubmitted(
            request_id=REQUEST,
            request_type="invoice_approval",
            requester="ap-clerk-7",
            priority="normal",
            submitted_at=T0,
            channel="http",
            payload={"amount": 1},
        ),
        minute,
    )


def step(name: str, minute: int) -> Envelope:
    return event(workflow.StepEntered(request_id=REQUEST, step=name, kind="route"), minute)


def approval_requested(minute: int) -> Envelope:
    return event(
        workflow.ApprovalRequested(
            request_id=REQUEST, step="approve", approver_role="manager", rule="amount > 0"
        ),
        minute,
    )


def approved(minute: int) -> Envelope:
    return event(
        workflow.ApprovalDecided(request_id=REQUEST, step="approve", decision="approved"), minute
    )


def completed(minute: int, outcome: str = "completed") -> Envelope:
    return event(workflow.InstanceCompleted(request_id=REQUEST, outcome=outcome), minute)


def case_opened(minute: int) -> Envelope:
    return event(
        case.CaseOpened(case_id=CASE, request_id=REQUEST, origin="escalation", title="t"), minute
    )


def fold(envelopes: list[Envelope]) -> RequestState:
    state = None
    for envelope in envelopes:
        seen = observe(envelope, request_id=REQUEST)
        assert seen is not None
        state = advance(state, seen)
    assert state is not None
    return state


def test_the_path_of_a_routine_request() -> None:
    history = [submitted(0), step("route", 1)]
    assert fold(history).status is RequestStatus.IN_WORKFLOW
    history += [approval_requested(2)]
    assert fold(history).status is RequestStatus.WAITING_FOR_APPROVAL
    history += [approved(3)]
    assert fold(history).status is RequestStatus.IN_WORKFLOW
    history += [completed(4)]
    state = fold(history)
    assert state.status is RequestStatus.COMPLETED
    assert state.requester == "ap-clerk-7"
    assert state.submitted_at == T0


def test_a_late_step_after_completion_changes_nothing() -> None:
    state = fold([submitted(0), completed(5), step("route", 1)])
    assert state.status is RequestStatus.COMPLETED


def test_the_submission_arriving_after_the_workflow_fills_in_without_moving_back() -> None:
    state = fold([step("route", 1), approval_requested(2), submitted(0)])
    assert state.status is RequestStatus.WAITING_FOR_APPROVAL
    assert state.request_type == "invoice_approval"
    assert state.channel == "http"


def test_a_case_seen_before_the_escalation_keeps_the_case_id() -> None:
    escalation = event(
        workflow.EscalatedToCase(
            request_id=REQUEST,
            request_type="invoice_approval",
            process="invoice-approval",
            definition_version=1,
            reason_code="rule",
            reason="always",
            step="escalate",
            intake_payload={},
            history=[],
        ),
        3,
    )
    state = fold([submitted(0), case_opened(4), escalation])
    assert state.status is RequestStatus.ESCALATED
    assert state.case_id == CASE
    resolved = event(case.CaseResolved(case_id=CASE, outcome_code="fixed"), 9)
    assert fold([submitted(0), case_opened(4), resolved, escalation]).status is (
        RequestStatus.RESOLVED_BY_CASE
    )


def test_events_that_only_show_progress_do_not_leave_waiting_for_approval() -> None:
    breach = event(
        workflow.SlaBreached(request_id=REQUEST, step="approve", sla_seconds=60, due_at=T0),
        5,
    )
    state = fold([submitted(0), approval_requested(2), breach])
    assert state.status is RequestStatus.WAITING_FOR_APPROVAL
    assert fold([submitted(0), breach]).status is RequestStatus.IN_WORKFLOW


def test_a_request_moved_to_another_version_is_still_waiting_for_its_approval() -> None:
    migrated = event(
        workflow.InstanceMigrated(
            request_id=REQUEST,
            migration_id=uuid4(),
            from_version=1,
            to_version=2,
            step="approve",
            to_step="controller-approval",
            reason="the controller approves now",
        ),
        3,
    )
    seen = observe(migrated, request_id=REQUEST)
    assert seen is not None
    assert seen.summary == (
        "moved from v1 to v2 (step approve -> controller-approval): the controller approves now"
    )
    state = fold([submitted(0), approval_requested(2), migrated])
    assert state.status is RequestStatus.WAITING_FOR_APPROVAL


def test_a_broken_promise_says_when_it_fell_due_and_where_the_request_waited() -> None:
    broken = event(
        workflow.PromiseBroken(request_id=REQUEST, due_at=T0 + timedelta(hours=4), step="approve"),
        240,
    )
    seen = observe(broken, request_id=REQUEST)
    assert seen is not None
    assert seen.summary == "past its promised time (2026-11-24T13:00:00+00:00) at step approve"
    state = fold([submitted(0), approval_requested(2), broken])
    assert state.status is RequestStatus.WAITING_FOR_APPROVAL


def test_the_first_terminal_outcome_is_final() -> None:
    state = fold([submitted(0), completed(4, "rejected"), completed(5, "completed")])
    assert state.status is RequestStatus.REJECTED


def test_every_arrival_order_ends_in_the_same_status() -> None:
    history = [submitted(0), step("route", 1), approval_requested(2), approved(3), completed(4)]
    finals = {fold(list(order)).status for order in itertools.permutations(history)}
    assert finals == {RequestStatus.COMPLETED}


def test_a_case_without_a_request_and_details_of_a_case_are_not_observed() -> None:
    note = event(case.NoteAdded(case_id=CASE, note_id="n-1", text="private"), 1)
    assert observe(note, request_id=REQUEST) is None
    assert observe(case_opened(1), request_id=None) is None


def test_an_observation_of_a_brand_new_request_id_starts_its_state() -> None:
    other = uuid4()
    seen = observe(step("route", 1), request_id=other)
    assert seen is not None
    assert advance(None, seen).request_id == other


def test_a_request_the_workflow_dead_letters_is_rejected_with_the_reason() -> None:
    dead = DeadLetter(
        envelope=submitted(),
        reason="handler-failed",
        error="OverflowError('date value out of range')",
        failed_at=T0 + timedelta(minutes=1),
    )
    seen = observe_dead_letter(dead)
    assert seen is not None
    # Its own timeline entry, not taken for the submission it carries.
    assert seen.event_id != submitted().event_id
    state = advance(fold([submitted()]), seen)
    assert state.status is RequestStatus.REJECTED
    assert "handler-failed" in seen.summary
    assert "OverflowError" in seen.summary
    # Whatever the order they are read in.
    submission = observe(submitted(), request_id=REQUEST)
    assert submission is not None
    assert advance(advance(None, seen), submission).status is RequestStatus.REJECTED


def test_a_dead_letter_of_anything_but_a_request_says_nothing() -> None:
    dead = DeadLetter(envelope=step("route", 1), reason="poison", error="", failed_at=T0)
    assert observe_dead_letter(dead) is None
