from typing import TypeVar
from uuid import UUID

from flowcase.events import Outcome
from flowcase.events.catalogue import workflow
from flowcase.governance.facts import (
    AuditKind,
    AuditRecord,
    Facts,
    First,
    Last,
    Missing,
    RequestFact,
)
from flowcase.governance.projector import fold, project

T = TypeVar("T")


def stated(first: First[T] | Last[T] | None) -> T:
    """The value a fact states; the test fails if it states none."""
    assert first is not None
    return first.value


def test_a_submission_states_the_request_its_type_and_time(history):
    request_id = history.submit("invoice_approval", history.at(hours=9))
    (fact,) = project(history.events[0])
    assert fact == RequestFact(
        request_id,
        request_type=First("invoice_approval", history.at(hours=9), history.events[0].event_id),
        submitted_at=history.at(hours=9),
    )


def test_events_governance_does_not_need_state_nothing(history):
    request_id = history.submit("t", history.at())
    history.add(
        workflow.ApprovalRequested(request_id=request_id, step="s", approver_role="r", rule="x"),
        history.at(),
    )
    assert project(history.events[-1]) == ()


def test_a_request_is_pieced_together_from_its_events(history):
    request_id = history.submit("t", history.at(hours=1))
    history.start(request_id, "t", history.at(hours=1, minutes=1), version=3)
    history.escalate(request_id, "t", history.at(hours=2), version=3)
    history.finish(request_id, Outcome.RESOLVED_BY_CASE, history.at(hours=5))
    request = fold(history.events).requests[request_id]
    assert request.process_type == "t"
    assert request.submitted_at == history.at(hours=1)
    assert stated(request.definition_version) == 3
    assert request.escalated_at == history.at(hours=2)
    assert stated(request.outcome) is Outcome.RESOLVED_BY_CASE
    assert request.escalated


def test_a_migrated_request_counts_under_the_version_it_moved_to(history):
    request_id = history.submit("t", history.at())
    history.start(request_id, "t", history.at(minutes=1), version=1)
    history.enter(request_id, "approve", history.at(minutes=2))
    history.migrate(request_id, "approve", history.at(hours=3), to_version=2)
    history.enter(request_id, "approve", history.at(hours=3))
    history.override(request_id, history.at(hours=4), rule="amount < 1000", version=2)
    history.escalate(request_id, "t", history.at(hours=5), version=2)
    for events in (history.events, history.events[::-1]):
        facts = fold(events)
        assert stated(facts.requests[request_id].definition_version) == 2
        [override] = facts.overrides.values()
        assert override.definition_version == 2
        # The wait at the step runs from its first entry; the migration closed it for now.
        step = facts.steps[(request_id, "approve")]
        assert (step.entered_at, step.completed_at) == (history.at(minutes=2), history.at(hours=3))


def test_the_same_event_twice_changes_nothing(history):
    request_id = history.submit("t", history.at())
    history.override(request_id, history.at(hours=1))
    once = fold(history.events)
    assert fold(history.events + history.events) == once
    assert len(once.overrides) == 1


def test_late_and_out_of_order_events_give_the_same_facts(history):
    request_id = history.submit("t", history.at())
    history.enter(request_id, "approve", history.at(minutes=5))
    history.complete(request_id, "approve", history.at(minutes=50))
    history.finish(request_id, Outcome.COMPLETED, history.at(hours=1))
    assert fold(reversed(history.events)) == fold(history.events)


def test_a_step_entered_again_keeps_its_first_entry_and_last_completion(history):
    request_id = history.submit("t", history.at())
    history.enter(request_id, "approve", history.at(minutes=10), sla_due_at=history.at(hours=1))
    history.complete(request_id, "approve", history.at(minutes=20))
    history.enter(request_id, "approve", history.at(minutes=30), sla_due_at=history.at(hours=2))
    history.complete(request_id, "approve", history.at(minutes=40))
    step = fold(history.events).steps[(request_id, "approve")]
    assert (step.entered_at, step.sla_due_at) == (history.at(minutes=10), history.at(hours=1))
    assert step.completed_at == history.at(minutes=40)


def test_events_stated_at_one_instant_are_ordered_by_event_id(history):
    # Two sources disagree about the type at the same instant: the lower event id wins, whichever
    # arrives first.
    request_id = history.submit("first", history.at())
    history.start(request_id, "second", history.at())
    expected = min(history.events, key=lambda e: e.event_id).payload.request_type
    for events in (history.events, history.events[::-1]):
        assert fold(events).requests[request_id].process_type == expected


def test_a_case_opened_from_an_escalation_proves_the_escalation(history):
    request_id = UUID(int=7)
    history.open_case("complaint", history.at(hours=3), request_id=request_id)
    request = fold(history.events).requests[request_id]
    assert request.escalated_at == history.at(hours=3)
    assert request.process_type == "complaint"


def test_a_resolution_before_its_opening_arrives_still_makes_one_case(history):
    case_id = history.open_case("complaint", history.at(hours=1))
    history.resolve(case_id, history.at(hours=4))
    case = fold(reversed(history.events)).cases[case_id]
    assert (case.opened_at, case.resolved_at) == (history.at(hours=1), history.at(hours=4))
    assert stated(case.request_type) == "complaint"


def test_audit_records_are_named_by_the_ids_of_their_event(history):
    request_id = history.submit("t", history.at())
    history.approve(
        request_id, "ok", history.at(minutes=1), actor="m", rationale=None, relied_on=()
    )
    case_id = history.open_case("t", history.at(minutes=2), request_id=request_id)
    history.decide(case_id, "d-1", history.at(minutes=3), relied_on=())
    history.resolve(case_id, history.at(minutes=4))
    records = fold(history.events).audit
    assert set(records) == {
        f"request/{request_id}/approval/ok",
        f"case/{case_id}/decision/d-1",
        f"case/{case_id}/resolution",
    }
    approval_record = records[f"request/{request_id}/approval/ok"]
    assert approval_record.kind is AuditKind.DECISION
    assert approval_record.missing == (Missing.RATIONALE, Missing.RELIED_ON)
    assert records[f"case/{case_id}/decision/d-1"].missing == (Missing.RELIED_ON,)
    assert records[f"case/{case_id}/resolution"].missing == ()


def test_a_workflow_override_is_both_an_override_and_an_audit_record(history):
    request_id = history.submit("t", history.at())
    override = history.override(request_id, history.at(hours=1), rule="amount < 5000", actor=None)
    facts = fold(history.events)
    override_id = override.payload.override_id
    assert facts.overrides[override_id].rule == "amount < 5000"
    record = facts.audit[f"request/{request_id}/override/{override_id}"]
    assert record.missing == (Missing.ACTOR,)


def test_an_override_re_published_under_a_new_event_id_counts_once(history):
    request_id = history.submit("t", history.at())
    override = history.override(request_id, history.at(hours=1))
    history.add(override.payload, history.at(hours=1), actor="supervisor")
    facts = fold(history.events)
    assert len(facts.overrides) == 1
    assert len(facts.audit) == 1


def test_a_blank_rationale_is_a_missing_one(history):
    case_id = history.open_case("t", history.at())
    history.decide(case_id, "d-1", history.at(minutes=1), rationale="  ", gap_acknowledged=True)
    (record,) = fold(history.events).audit.values()
    assert record.missing == (Missing.RATIONALE, Missing.ACKNOWLEDGED_GAP)


def test_fold_into_existing_facts_is_the_same_as_folding_everything(history):
    request_id = history.submit("t", history.at())
    history.escalate(request_id, "t", history.at(hours=1))
    history.finish(request_id, Outcome.RESOLVED_BY_CASE, history.at(hours=2))
    first, rest = history.events[:1], history.events[1:]
    assert fold(rest, into=fold(first)) == fold(history.events)
    assert fold([]) == Facts()


def test_the_envelope_actor_is_the_audit_actor(history):
    case_id = history.open_case("t", history.at())
    history.case_override(case_id, "o-1", history.at(minutes=1), actor="agent-42")
    (record,) = project(history.events[-1])
    assert isinstance(record, AuditRecord)
    assert record.actor == "agent-42"
    assert record.record_id == f"case/{case_id}/override/o-1"
